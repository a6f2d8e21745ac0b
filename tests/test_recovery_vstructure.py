"""Recovery of a v-structure a -> c <- b through the PersonaX facade (slow).

Each latent has Laplace noise and is observed only through its own modality's three
noisy nonlinear measurements. After matching learned latents to the true ones by
|Spearman correlation| (Hungarian assignment), the true edges should have
P(edge) > 0.9 and the absent ones P(edge) < 0.1.
"""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr

from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.facade import PersonaX

NAMES = ("a", "b", "c")


def _simulate(n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.laplace(size=n), rng.laplace(size=n)
    c = np.tanh(a) + 0.8 * np.tanh(b) + 0.5 * rng.laplace(size=n)
    z = np.stack([a, b, c], axis=1)
    z = (z - z.mean(0)) / z.std(0)
    measurements = {}
    for j, name in enumerate(NAMES):
        views = []
        for _ in range(3):
            w1, b1 = rng.normal(size=(1, 8)), 0.5 * rng.normal(size=8)
            w2 = rng.normal(size=(8, 4)) / np.sqrt(8)
            x = np.tanh(z[:, j : j + 1] @ w1 + b1) @ w2 + 0.3 * z[:, j : j + 1]
            views.append(x + 0.1 * rng.normal(size=x.shape))
        measurements[name] = views
    return MultiModalData(measurements), z


def _matched_edges(px, data, z):
    learned = px.get_latent_representation(data)
    D = z.shape[1]
    corr = np.abs(spearmanr(learned, z).statistic[:D, D:])
    rows, cols = linear_sum_assignment(-corr)
    learned_of_true = rows[np.argsort(cols)]
    P = px.edge_probabilities().to_numpy()
    return corr[rows, cols], P[np.ix_(learned_of_true, learned_of_true)]


@pytest.mark.slow
@pytest.mark.graph_stage
def test_recovers_v_structure():
    data, z = _simulate(2000, seed=0)
    px = PersonaX(data, latent_dims={name: 1 for name in NAMES}, mechanism="mlp")
    px.fit(data, num_chains=1, num_epochs=100, batch_size=512, progress=False, device="cpu", seed=0)
    corr, P = _matched_edges(px, data, z)
    assert corr.min() > 0.9  # the latents themselves are identified
    true = np.zeros((3, 3), dtype=bool)
    true[0, 2] = true[1, 2] = True
    off = ~true & ~np.eye(3, dtype=bool)
    assert P[true].min() > 0.9, P.round(3)
    assert P[off].max() < 0.1, P.round(3)
