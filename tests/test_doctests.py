"""Every docstring example of the package runs and prints what it shows.

Modules are imported by their installed names (``pyro_personax.models``, not the
top-level ``models/`` folder), so each is imported once.
"""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import torch

import pyro_personax
import pyro_personax.inference
import pyro_personax.models

# models/ and inference/ are installed as sub-packages from folders of their own
ROOTS = (pyro_personax, pyro_personax.models, pyro_personax.inference)


def _modules() -> list[str]:
    names = {root.__name__ for root in ROOTS}
    for root in ROOTS:
        for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
            if not info.name.split(".")[-1].startswith("__"):
                names.add(info.name)
    return sorted(names)


MODULES = _modules()


def test_the_walk_reaches_the_models_and_inference_layers():
    assert {"pyro_personax.models.latent_flow", "pyro_personax.inference.oracle"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    torch.manual_seed(0)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = {"np": np, "torch": torch}
    for test in finder.find(module, name, globs={**vars(module), **globs}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
