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

import pyro_personax.inference.options as options  # noqa: E402

#: The library's own default graph stage, kept before the suite shortens it.
LIBRARY_GRAPH_STAGE = options.DEFAULT_GRAPH_REFINEMENT


@pytest.fixture(autouse=True)
def _pyro_state():
    """Clear the param store, enable validation and seed every test (torch, numpy, random)."""
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture(autouse=True, scope="session")
def _short_graph_stage():
    """A short graph stage after SVI in every ``PersonaX.fit`` of the suite, module-scoped fixtures
    included (pytest sets those up before any function-scoped fixture, so the patch is made once
    for the session)."""
    short = options.GraphRefinement(mechanism_steps=20, graph_steps=20, num_restarts=2, basis_restarts=1,
                                     basis_polish=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(options, "DEFAULT_GRAPH_REFINEMENT", short)
        yield


@pytest.fixture(autouse=True)
def _default_graph_stage_where_marked(request, monkeypatch):
    """Tests marked ``graph_stage`` run the library's default stage (about 3,000 q(G) steps and 8
    starts of the basis search per chain)."""
    if "graph_stage" not in request.keywords:
        return
    monkeypatch.setattr(options, "DEFAULT_GRAPH_REFINEMENT", LIBRARY_GRAPH_STAGE)


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
