"""A fit on CUDA, and its save / load round trip to the CPU (run where CUDA is present)."""

import numpy as np
import pytest

from pyro_personax import PersonaX
from pyro_personax.inference import resolve_device
from pyro_personax.synthetic import persona


@pytest.mark.gpu
def test_fit_on_cuda_then_load_on_the_cpu_gives_the_same_posterior(tmp_path):
    dataset, truth = persona(200, seed=0)
    data = dataset.to_multimodal()
    px = PersonaX(data, latent_dims=dict(truth.layout.modality_dims), shared_dim=truth.layout.shared_dim)
    px.fit(data, num_epochs=2, num_chains=2, device="auto", refine_graph=False, progress=False, seed=0)
    assert resolve_device("auto").type == "cuda" and px.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in px.guide(0).parameters())
    P = px.edge_probabilities().to_numpy()
    latents = px.get_latent_representation(data)
    px.save(tmp_path / "model")
    back = PersonaX.load(tmp_path / "model", device="cpu")
    assert back.device.type == "cpu" and all(p.device.type == "cpu" for p in back.guide(0).parameters())
    np.testing.assert_allclose(back.edge_probabilities().to_numpy(), P, atol=1e-6)
    np.testing.assert_allclose(back.get_latent_representation(data), latents, rtol=1e-4, atol=1e-4)
