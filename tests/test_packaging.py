"""The distribution's layout: one import path per subpackage, and a complete wheel."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

import pyro_personax

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_exposed():
    assert isinstance(pyro_personax.__version__, str) and pyro_personax.__version__.count(".") >= 1


def test_core_import_is_light():
    """Importing the core, the data, the synthetic data and Level I pulls no torch, pyro or arviz."""
    code = (
        "import sys, pyro_personax, pyro_personax.graph, pyro_personax.layout, pyro_personax.data,"
        " pyro_personax.synthetic, pyro_personax.independence, pyro_personax.metrics;"
        "heavy = [m for m in ('torch', 'pyro', 'arviz') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("sub", ["models", "inference"])
def test_subpackage_imported_once_from_its_folder(sub):
    """pyro_personax.<sub> comes from ./<sub>/, and no second copy exists under a bare name."""
    code = (
        f"import sys, importlib; m = importlib.import_module('pyro_personax.{sub}');"
        "print(m.__file__);"
        f"print('{sub}' in sys.modules);"
        f"print(sum(1 for k, v in sys.modules.items() if getattr(v, '__file__', None) == m.__file__))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent
    ).stdout.split()
    assert Path(out[0]).resolve() == (ROOT / sub / "__init__.py").resolve()
    assert out[1] == "False", f"a bare '{sub}' module was imported"
    assert out[2] == "1", f"pyro_personax.{sub} is loaded under more than one name"


def _source_packages() -> list[str]:
    """The wheel path of every package's ``__init__.py`` in the source tree (``models`` and
    ``inference`` install under ``pyro_personax``)."""
    out = []
    for top, installed in (("pyro_personax", "pyro_personax"), ("models", "pyro_personax/models"),
                           ("inference", "pyro_personax/inference")):
        for init in (ROOT / top).rglob("__init__.py"):
            out.append(str(PurePosixPath(installed, init.relative_to(ROOT / top).as_posix())))
    return sorted(out)


def test_the_source_packages_are_found():
    found = _source_packages()
    assert "pyro_personax/__init__.py" in found and "pyro_personax/sensitivity/__init__.py" in found
    assert "pyro_personax/inference/__init__.py" in found


@pytest.mark.slow
def test_wheel_contains_every_package(tmp_path):
    """Built from a copy of the source, so that no ``build/`` folder of an earlier build
    (which setuptools reuses) can fill the gaps, and nothing is written into the checkout."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "notebooks"))
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("pyro_personax-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in _source_packages() if p not in names]
    assert not missing, f"packages missing from the wheel (add them to [tool.setuptools] packages): {missing}"
    assert not any(n.startswith(("models/", "inference/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "personax = pyro_personax.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
