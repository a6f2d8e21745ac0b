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


@pytest.fixture(autouse=True)
def _short_graph_stage(request, monkeypatch):
    """A short graph stage after SVI in every ``PersonaX.fit`` of the suite, except in tests
    marked ``graph_stage``, which run the default one (about 3,000 q(G) steps and 8 starts of the
    basis search per chain)."""
    if "graph_stage" in request.keywords:
        return

    import pyro_personax.inference.options as options

    short = options.GraphRefinement(mechanism_steps=20, graph_steps=20, num_restarts=2, basis_restarts=1,
                                     basis_polish=1)
    monkeypatch.setattr(options, "DEFAULT_GRAPH_REFINEMENT", short)


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
