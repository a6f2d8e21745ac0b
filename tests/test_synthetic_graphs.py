"""Random DAG generators, SEM simulation and measurement maps."""

import numpy as np
import pytest
from scipy.stats import kurtosis

from pyro_personax.graph import is_dag
from pyro_personax.layout import LatentLayout
from pyro_personax.synthetic.graphs import (
    erdos_renyi_dag,
    observe_latents,
    scale_free_dag,
    simulate_sem,
)

LAYOUT = LatentLayout(1, {"face": 3, "text": 2}, forbidden=[("text_1", "face_2")], required=[("face_1", "text_2")])


@pytest.mark.parametrize("make", [erdos_renyi_dag, scale_free_dag])
@pytest.mark.parametrize("seed", range(5))
def test_generators_respect_layout(make, seed):
    A = make(LAYOUT, 2, seed=seed)
    assert A.shape == (6, 6) and A.dtype.kind == "i"
    assert is_dag(A)
    assert not (A.astype(bool) & ~LAYOUT.allowed_mask()).any()
    assert A[LAYOUT.index("face_1"), LAYOUT.index("text_2")] == 1
    assert A[:, 0].sum() == 0  # nothing into the shared block


@pytest.mark.parametrize("make", [erdos_renyi_dag, scale_free_dag])
def test_same_seed_same_graph(make):
    np.testing.assert_array_equal(make(8, 2, seed=3), make(8, 2, seed=3))
    assert any(not np.array_equal(make(8, 2, seed=3), make(8, 2, seed=s)) for s in range(4, 9))


def test_erdos_renyi_mean_degree():
    D, degree = 12, 2.0
    edges = [erdos_renyi_dag(D, degree, seed=s).sum() for s in range(200)]
    assert np.mean(edges) == pytest.approx(degree * D / 2, rel=0.08)
    assert erdos_renyi_dag(D, 0.0, seed=0).sum() == 0


def test_scale_free_has_hubs():
    D = 30
    out_deg = np.concatenate([scale_free_dag(D, 1, seed=s).sum(1) for s in range(30)])
    in_deg = np.concatenate([scale_free_dag(D, 1, seed=s).sum(0) for s in range(30)])
    assert in_deg.max() == 1  # exactly one parent per node (except the first)
    assert out_deg.max() >= 8  # preferential attachment makes hubs
    assert np.mean(out_deg) == pytest.approx((D - 1) / D, rel=1e-9)


def test_generator_errors():
    with pytest.raises(TypeError, match="layout"):
        erdos_renyi_dag("six", 1.0)
    with pytest.raises(ValueError, match="expected_degree"):
        erdos_renyi_dag(4, -1.0)
    with pytest.raises(ValueError, match="edges_per_node"):
        scale_free_dag(4, -1)


CHAIN = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])


@pytest.mark.parametrize("mechanism", ["linear", "mlp"])
@pytest.mark.parametrize("noise", ["gaussian", "laplace", "uniform"])
def test_simulate_sem_shapes_and_dependence(mechanism, noise):
    z = simulate_sem(CHAIN, 3000, mechanism=mechanism, noise=noise, seed=1)
    assert z.shape == (3000, 3)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-9)
    # the root's noise kind shows in its kurtosis
    expected = {"gaussian": 0.0, "laplace": 3.0, "uniform": -1.2}[noise]
    assert kurtosis(z[:, 0]) == pytest.approx(expected, abs=0.5)
    # parent and child are dependent, the child is not a copy of its parent
    grid = np.quantile(z[:, 0], np.linspace(0, 1, 21))
    which = np.clip(np.searchsorted(grid, z[:, 0]) - 1, 0, 19)
    means = np.array([z[which == b, 1].mean() for b in range(20)])
    explained = 1 - np.var(z[:, 1] - means[which]) / np.var(z[:, 1])
    assert 0.05 < explained < 0.99


def test_linear_sem_matches_weights():
    A = np.array([[0, 1], [0, 0]])
    z = simulate_sem(A, 20000, weight_range=(1.0, 1.0), standardize=False, noise_scale=0.5, seed=0)
    slope = np.polyfit(z[:, 0], z[:, 1], 1)[0]
    assert abs(slope) == pytest.approx(1.0, abs=0.02)
    assert np.std(z[:, 1] - slope * z[:, 0]) == pytest.approx(0.5, rel=0.03)


def test_simulate_sem_errors():
    with pytest.raises(ValueError, match="cycle"):
        simulate_sem(CHAIN + CHAIN.T, 10)
    with pytest.raises(ValueError, match="mechanism"):
        simulate_sem(CHAIN, 10, mechanism="gp")
    with pytest.raises(ValueError, match="noise"):
        simulate_sem(CHAIN, 10, noise="cauchy")
    with pytest.raises(ValueError, match="num_entities"):
        simulate_sem(CHAIN, 1)
    np.testing.assert_array_equal(simulate_sem(CHAIN, 50, seed=2), simulate_sem(CHAIN, 50, seed=2))


def test_observe_latents_builds_data_and_truth():
    A = erdos_renyi_dag(LAYOUT, 1.5, seed=0)
    z = simulate_sem(A, 400, mechanism="mlp", noise="laplace", seed=0)
    data, truth = observe_latents(z, A, LAYOUT, num_measurements={"face": 2, "text": 3},
                                  measurement_dim=6, seed=0)
    assert data.values["face"].shape == (400, 2, 6)
    assert data.values["text"].shape == (400, 3, 6)
    np.testing.assert_array_equal(truth.adjacency, A)
    assert truth.names == LAYOUT.names
    # a text measurement depends on the text block and the shared latent, not on face latents
    x = data.values["text"][:, 0]
    coef, *_ = np.linalg.lstsq(np.column_stack([z, np.ones(400)]), x, rcond=None)
    face_cols = [LAYOUT.index(n) for n in ("face_1", "face_2", "face_3")]
    other = np.column_stack([z[:, [0, 4, 5]], np.ones(400)])
    resid = x - other @ np.linalg.lstsq(other, x, rcond=None)[0]
    assert np.abs(np.corrcoef(resid.T, z[:, face_cols].T)[:6, 6:]).max() < 0.2
    assert np.abs(coef[[0, 4, 5]]).max() > 0.1
    with pytest.raises(ValueError, match="latents"):
        observe_latents(z[:, :3], A, LAYOUT)
    with pytest.raises(ValueError, match="num_measurements"):
        observe_latents(z, A, LAYOUT, num_measurements={"face": 2})
