"""What ``benchmarks/learned_latents_exact.py`` reads from a colour block: spread of ``Z11``, the ``Z12`` gain."""

import numpy as np
import pytest
from conftest import load_benchmark

from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents, structural_noise


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("learned_latents_exact")


def test_a_colour_block_mixed_with_e2_spreads_z11_and_makes_z12_pay_for_the_fashion_latent(bench):
    z = sample_variant_mnist_latents(5000, seed=0)
    e2 = structural_noise(z)[:, 1]
    perm = [0, 1, 2, 3]
    clean = bench.carried(z, z, perm)
    # Z12 is no parent of Z21: reading Z21 from both colour latents gains nothing
    assert clean["gain F"] < 0.01 and clean["R2 Z11|match"] > 0.99
    mixed = z.copy()
    mixed[:, 0] = z[:, 0] + 0.5 * e2 / e2.std()  # learned Z11 carries Z12's exogenous term
    out = bench.carried(mixed, z, perm)
    assert out["corr(match, e2)"] > 0.3
    assert out["R2 Z11|colour"] - out["R2 Z11|match"] > 0.1  # Z11 spread over the block
    assert out["gain F"] > 0.05  # the learned Z12 now helps to read Z21
    assert out["gain truth"] == pytest.approx(clean["gain truth"])


def test_scores_read_the_matched_cells(bench):
    P = np.zeros((6, 6))
    P[1, 3] = 0.8  # the match of Z11 (latent 1) -> the match of Z21 (latent 3)
    P[0, 5] = 0.3  # a spurious cross-modal edge
    out = bench.posterior_scores(P, None, [1, 0, 3, 4], ["colour"] * 2 + ["fashion"] * 4)
    assert out["P(Z11->Z21)"] == 0.8 and out["P_LINK"] == 0.8
    assert out["P spur x"] == pytest.approx(0.3 / 15)


def test_a_file_without_the_saved_arrays_is_named(bench, tmp_path):
    np.savez(tmp_path / "seed0.npz", latents=np.zeros((3, 2)))
    with pytest.raises(SystemExit, match="missing"):
        bench.load(tmp_path / "seed0.npz")
    with pytest.raises(SystemExit, match="not found"):
        bench.load(tmp_path / "seed1.npz")


def test_a_heavier_charge_moves_weight_to_graphs_with_fewer_edges(bench):
    from pyro_personax.inference.oracle import ExactGraphPosterior

    graphs = np.zeros((3, 2, 2), dtype=np.int8)
    graphs[1, 0, 1] = 1
    graphs[2, 1, 0] = 1
    post = ExactGraphPosterior(graphs, np.log(np.array([0.2, 0.4, 0.4])), 0.0)
    np.testing.assert_allclose(bench.recharged(post, 0.0), [0.2, 0.4, 0.4])
    w = bench.recharged(post, np.log(2.0))  # each one-edge graph's weight halves before renormalising
    np.testing.assert_allclose(w, np.array([0.2, 0.2, 0.2]) / 0.6)


def test_with_reading_replaces_the_latent_nearest_each_reading(bench):
    from pyro_personax.layout import LatentLayout

    rng = np.random.default_rng(0)
    z = sample_variant_mnist_latents(2000, seed=0)
    noise = rng.normal(size=(2000, 2))
    learned = np.column_stack([z[:, :2], noise[:, 0], z[:, 2] + 0.3 * noise[:, 1], z[:, 3], noise[:, 1]])
    layout = LatentLayout(0, {"colour": 2, "fashion": 4})
    v = bench.with_reading(learned, layout, seed=0)
    changed = [j for j in range(6) if not np.array_equal(v[:, j], learned[:, j])]
    assert changed == [0, 3]  # Z11 itself, and the fashion latent that holds Z21 with noise
    assert abs(np.corrcoef(v[:, 3], z[:, 2])[0, 1]) > abs(np.corrcoef(learned[:, 3], z[:, 2])[0, 1])
