"""The package's layers depend downwards only: core <- models <- inference <- facade / sensitivity / CLI.

Read from the source (no import runs): every ``import`` of a ``pyro_personax`` module
is checked against the layer of the importing module, and no module imports a private
name (``_name``) of another layer.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> installed package name
FOLDERS = {"pyro_personax": "pyro_personax", "models": "pyro_personax.models", "inference": "pyro_personax.inference"}
LAYERS = ("core", "models", "inference", "top")


def _layer(module: str) -> int:
    if module == "pyro_personax.models" or module.startswith("pyro_personax.models."):
        return LAYERS.index("models")
    if module == "pyro_personax.inference" or module.startswith("pyro_personax.inference."):
        return LAYERS.index("inference")
    top = ("pyro_personax", "pyro_personax.facade", "pyro_personax.queries", "pyro_personax.persistence",
           "pyro_personax.sensitivity",
           "pyro_personax.__main__")
    if module in top or module == "pyro_personax.cli" or module.startswith(("pyro_personax.cli.",
                                                                            "pyro_personax.sensitivity.")):
        return LAYERS.index("top")
    return LAYERS.index("core")


def _modules():
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def _imports(path: Path):
    """``(line, imported module, [names])`` of every absolute ``pyro_personax`` import."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "pyro_personax":
                yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "pyro_personax":
                    yield node.lineno, a.name, []


MODULES = list(_modules())


def test_the_scan_sees_every_layer():
    layers = {_layer(name) for name, _ in MODULES}
    assert layers == set(range(len(LAYERS)))
    assert len(MODULES) > 60


@pytest.mark.parametrize("name, path", MODULES, ids=[n for n, _ in MODULES])
def test_no_module_imports_a_layer_above_it_or_a_private_name_of_another_layer(name, path):
    mine = _layer(name)
    upward, private = [], []
    for line, module, names in _imports(path):
        theirs = _layer(module)
        if theirs > mine:
            upward.append(f"line {line}: {module} ({LAYERS[theirs]}) from {LAYERS[mine]}")
        hidden = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if hidden and theirs != mine:
            private.append(f"line {line}: {hidden} from {module}")
    assert not upward, f"{name} imports a layer above its own: {upward}"
    assert not private, f"{name} imports private names of another layer: {private}"


def test_the_rule_catches_an_upward_import(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("from pyro_personax.facade import PersonaX\nfrom pyro_personax.models.personax import _cat\n")
    found = [(_layer(m), n) for _, m, n in _imports(source)]
    assert found == [(LAYERS.index("top"), ["PersonaX"]), (LAYERS.index("models"), ["_cat"])]
