"""Sphinx configuration of the pyro_personax documentation.

Build: ``make docs`` (HTML in ``build/docs``), or
``python -m sphinx -b html -W docs build/docs``.

Notebooks: the pages of ``notebooks/`` are copied here at build time. With
``PERSONAX_DOCS_EXECUTE=1`` (what ``make docs`` sets) each is executed while the site is
built, so the pages show their figures; ``PERSONAX_SMOKE=1`` runs them at smoke size.
Otherwise they are shown as stored (without outputs), or, with
``PERSONAX_DOCS_NOTEBOOKS=<folder>``, as executed copies from that folder (what the test
suite does with the notebooks it has just run at smoke size). ``PERSONAX_DOCS_TIMEOUT`` is
the limit per notebook in seconds (default 7200).

The API reference is written at build time into ``api/``: one page per module of the
installed package, from its numpydoc docstrings.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

import pyro_personax  # noqa: E402  (the installed package: its version and modules)

project = "pyro_personax"
author = "pyro_personax contributors"
copyright = "pyro_personax contributors, MIT License"  # noqa: A001
release = version = pyro_personax.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx.ext.viewcode", "numpydoc", "myst_nb"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", ".gitignore"]
html_theme = "alabaster"
html_title = f"pyro_personax {release}"
suppress_warnings = ["myst.header"]  # the README's first heading is level 1 after its badges

# autodoc and numpydoc
autodoc_typehints = "none"  # the numpydoc sections say the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
myst_heading_anchors = 3

# notebooks
_EXECUTE = os.environ.get("PERSONAX_DOCS_EXECUTE", "0") not in ("", "0", "false", "no")
nb_execution_mode = "force" if _EXECUTE else "off"
# a folder of notebooks already executed (with their outputs), shown instead of the stored ones
_EXECUTED = os.environ.get("PERSONAX_DOCS_NOTEBOOKS", "")
if _EXECUTE:  # the kernels inherit this: figures are captured as outputs (MPLBACKEND=Agg would drop them)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
nb_execution_timeout = int(os.environ.get("PERSONAX_DOCS_TIMEOUT", "7200"))
nb_execution_raise_on_error = True
nb_execution_in_temp = True  # what a notebook writes (its run folders) stays out of the sources
nb_execution_show_tb = True
nb_merge_streams = True


def _copy_notebooks() -> None:
    out = HERE / "notebooks"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        executed = Path(_EXECUTED, nb.name) if _EXECUTED else None
        shutil.copy2(executed if executed is not None and executed.is_file() else nb, out / nb.name)


# packages whose modules get a page; pyro_personax.cli is the command line (see the README)
_PACKAGES = ("pyro_personax", "pyro_personax.models", "pyro_personax.inference")
_SKIP = ("pyro_personax.cli", "pyro_personax.__main__", "pyro_personax._version")


def _module_names() -> list[str]:
    names = set(_PACKAGES)
    for root in _PACKAGES:
        pkg = importlib.import_module(root)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=root + "."):
            if not info.name.startswith(_SKIP):
                names.add(info.name)
    return sorted(names)


def _write_api() -> None:
    out = HERE / "api"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    names = _module_names()
    for name in names:
        module = importlib.import_module(name)
        is_package = hasattr(module, "__path__")
        lines = [name, "=" * len(name), "", f".. automodule:: {name}"]
        if not is_package:  # a package's names are documented in the module that defines them
            lines += ["   :members:", "   :show-inheritance:"]
        if name == "pyro_personax.facade":  # PersonaX's queries come from its mixin (pyro_personax.queries)
            lines += ["   :inherited-members:"]
        children = [n for n in names if n != name and n.rsplit(".", 1)[0] == name]
        if children:
            lines += ["", ".. toctree::", "   :maxdepth: 1", ""] + [f"   {c}" for c in children]
        (out / f"{name}.rst").write_text("\n".join(lines) + "\n")
    (out / "index.rst").write_text(
        "API reference\n=============\n\n"
        "One page per module, from the numpydoc docstrings. The command line is described in\n"
        "the README (``personax --help``).\n\n"
        ".. toctree::\n   :maxdepth: 1\n\n" + "".join(f"   {p}\n" for p in _PACKAGES)
    )


_copy_notebooks()
_write_api()
