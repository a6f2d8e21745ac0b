"""Test configuration: clean Pyro state, validation on, seeded, one torch thread."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

import pyro  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Several torch threads spin-wait on a busy 2-core machine; one thread per process.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _pyro_state():
    """Clear the param store, enable validation and seed every test (torch, numpy, random)."""
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="CUDA is not available")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
