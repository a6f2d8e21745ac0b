"""Every notebook executes at smoke size, and none is stored with outputs; the documentation
site builds, with warnings as errors, showing the notebooks as executed here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    """Folder of the notebooks this module has executed, with their outputs."""
    return tmp_path_factory.mktemp("executed-notebooks")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name}: cell {i} is stored with outputs"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch, executed):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PERSONAX_SMOKE", "1")
    # figures become outputs (as in a notebook front end), so the documentation shows them
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    nbformat.write(nb, executed / path.name)


def _has_figure(notebook: Path) -> bool:
    nb = json.loads(notebook.read_text())
    return any("image/png" in out.get("data", {}) for cell in nb["cells"] for out in cell.get("outputs", []))


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path, executed):
    """The site builds with ``-W``. After the executions above (the whole suite), its notebook
    pages are those executed notebooks, and every figure they made is on the page."""
    for name in ("sphinx", "numpydoc", "myst_nb"):
        pytest.importorskip(name)
    ran = all((executed / p.name).is_file() for p in NOTEBOOKS)
    env = {**os.environ, "PERSONAX_DOCS_EXECUTE": "0", "PERSONAX_DOCS_NOTEBOOKS": str(executed) if ran else ""}
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
           "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    pages = ["index", "readme", "what_the_data_can_decide", "tutorials", "input_rules", "experiments",
             "api/index", "api/pyro_personax.independence.pairwise", "api/pyro_personax.models.personax",
             "api/pyro_personax.inference.trainer"]
    pages += [f"notebooks/{nb.stem}" for nb in NOTEBOOKS]
    missing = [p for p in pages if not (out / f"{p}.html").is_file()]
    assert not missing, missing
    api = (out / "api" / "pyro_personax.data.traits.html").read_text()
    assert "krippendorff_alpha" in api and "Parameters" in api  # numpydoc sections rendered
    if ran:
        with_figures = [p for p in NOTEBOOKS if _has_figure(executed / p.name)]
        assert len(with_figures) >= 3, "the executed notebooks kept no figures"
        for p in with_figures:
            assert "<img" in (out / "notebooks" / f"{p.stem}.html").read_text(), p.name
