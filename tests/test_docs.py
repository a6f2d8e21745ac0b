"""The documentation site builds with warnings as errors (notebooks shown as stored).

``make docs`` builds the same site with the notebooks executed.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    for name in ("sphinx", "numpydoc", "myst_nb"):
        pytest.importorskip(name)
    env = {**os.environ, "PERSONAX_DOCS_EXECUTE": "0"}
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    pages = ["index", "readme", "what_the_data_can_decide", "tutorials", "input_rules", "experiments",
             "api/index", "api/pyro_personax.independence.pairwise", "api/pyro_personax.models.personax",
             "api/pyro_personax.inference.trainer"]
    pages += [f"notebooks/{nb.stem}" for nb in sorted((DOCS.parent / "notebooks").glob("*.ipynb"))]
    missing = [p for p in pages if not (out / f"{p}.html").is_file()]
    assert not missing, missing
    api = (out / "api" / "pyro_personax.data.traits.html").read_text()
    assert "krippendorff_alpha" in api and "Parameters" in api  # numpydoc sections rendered
