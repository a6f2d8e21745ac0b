"""The exact graph posterior, and q(G) fitted to it with the latents observed."""

import numpy as np
import pytest
import torch

from pyro_personax.data import MultiModalData
from pyro_personax.graph import enumerate_dags
from pyro_personax.inference import local_params
from pyro_personax.inference.oracle import (
    exact_graph_posterior,
    fit_graph_given_latents,
    fit_mechanisms_given_latents,
)
from pyro_personax.layout import LatentLayout
from pyro_personax.models import ModelSpec, PersonaXGuide, PersonaXModel
from pyro_personax.synthetic.graphs import erdos_renyi_dag, simulate_sem


def _problem(D, N, seed):
    layout = LatentLayout(0, {f"m{i + 1}": 1 for i in range(D)})
    spec = ModelSpec.from_data(MultiModalData({m: np.zeros((N, 1, 2)) for m in layout.modalities}))
    A = erdos_renyi_dag(layout, expected_degree=1.5, seed=seed)
    z = simulate_sem(A, N, mechanism="mlp", noise="laplace", seed=seed)
    z = torch.tensor((z - z.mean(0)) / z.std(0), dtype=torch.float32)
    return layout, spec, A, z


def test_exact_posterior_equals_brute_force_on_three_latents():
    layout, spec, A, z = _problem(3, 200, seed=0)
    with local_params():
        model = PersonaXModel(layout, spec)
        fit_mechanisms_given_latents(model, z, num_steps=50)
        ex = exact_graph_posterior(model, z, sparsity=2.0)
        assert len(ex.graphs) == 25 and ex.probs.sum() == pytest.approx(1.0, abs=1e-6)
        G = torch.as_tensor(enumerate_dags(np.ones((3, 3), dtype=bool))).float()
        with torch.no_grad():
            direct = torch.stack([model.latent_distribution(g).log_prob(z).sum() for g in G])
            direct = direct + model.graph_log_prior(G, 2.0, 200)
        order = {g.tobytes(): i for i, g in enumerate(ex.graphs.astype(np.float32))}
        idx = [order[g.numpy().tobytes()] for g in G]
        expected = torch.log_softmax(direct, 0).numpy()
        np.testing.assert_allclose(ex.log_prob[idx], expected, atol=1e-3)


@pytest.mark.slow
def test_fitted_order_posterior_matches_the_exact_posterior_on_four_latents():
    """Latents observed, mechanisms fixed: q(G)'s marginals are within 0.05 of p(G | z)'s on average."""
    gaps = []
    for seed in (1, 2, 6):
        layout, spec, A, z = _problem(4, 300, seed)
        with local_params():
            torch.manual_seed(seed)
            model, guide = PersonaXModel(layout, spec), PersonaXGuide(layout, spec)
            fit_mechanisms_given_latents(model, z)
            exact = exact_graph_posterior(model, z).edge_probabilities()
            fitted = fit_graph_given_latents(model, guide, z, seed=seed)
        off = ~np.eye(4, dtype=bool)
        gaps.append(np.abs(exact - fitted)[off].mean())
        skeleton = exact + exact.T
        assert skeleton[A.astype(bool)].mean() > 0.5  # a non-trivial target: the true adjacencies are likely
    assert np.mean(gaps) < 0.05, gaps
