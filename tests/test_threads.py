"""Torch thread settings of fit: a default, an override, and the caller's setting restored."""

import numpy as np
import pytest
import torch

from pyro_personax import PersonaX
from pyro_personax.data import MultiModalData
from pyro_personax.inference import DEFAULT_NUM_THREADS, FitOptions, torch_threads


def test_torch_threads_sets_and_restores():
    torch.set_num_threads(2)
    try:
        with torch_threads(None) as n:
            assert n == DEFAULT_NUM_THREADS == torch.get_num_threads()
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), torch_threads(1):
            raise RuntimeError("restored on errors too")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="num_threads: expected None or an int >= 1"), torch_threads(bad):
            pass


def test_fit_runs_with_the_requested_threads_and_restores_the_callers(monkeypatch):
    rng = np.random.default_rng(0)
    data = MultiModalData({"face": rng.normal(size=(60, 1, 3)), "text": rng.normal(size=(60, 1, 3))})
    px = PersonaX(data, latent_dims={"face": 1, "text": 1}, mechanism="linear")
    seen = []
    original = px._build

    def build():
        seen.append(torch.get_num_threads())
        return original()

    monkeypatch.setattr(px, "_build", build)
    torch.set_num_threads(2)
    try:
        px.fit(data, num_chains=1, num_epochs=1, batch_size=30, progress=False, device="cpu", refine_graph=False)
        assert seen[-1] == DEFAULT_NUM_THREADS and torch.get_num_threads() == 2
        px.fit(
            data, num_chains=1, num_epochs=1, batch_size=30, progress=False, device="cpu", refine_graph=False,
            num_threads=2,
        )
        assert seen[-1] == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_run_configuration_checks_num_threads():
    assert FitOptions(num_threads=2).num_threads == 2 and FitOptions().num_threads is None
    with pytest.raises(ValueError, match=r"\[fit\]: num_threads: expected None or an int >= 1; found 0"):
        FitOptions.from_mapping({"num_threads": 0}, "run configuration [fit]")
