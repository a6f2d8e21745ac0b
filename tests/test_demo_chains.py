"""The maps and scores of ``benchmarks/demo_chains.py``: bases inside blocks, as densities of the same latents."""

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("demo_chains")


BLOCKS = ["shared", "face", "face", "text", "text", "text"]


def test_the_oracle_map_undoes_a_mixing_inside_each_block_and_never_across(bench):
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(500, 6))
    mixing = bench.near_identity_rotation(BLOCKS, rng, spread=1.0) * rng.uniform(0.5, 2.0, size=6)
    z = truth @ mixing
    M = bench.oracle_map(z, truth, BLOCKS)
    assert np.allclose((z - z.mean(0)) @ M, truth - truth.mean(0), atol=1e-8)
    across = np.not_equal.outer(np.array(BLOCKS), np.array(BLOCKS))
    assert np.all(M[across] == 0)


def test_rotations_are_orthogonal_inside_blocks(bench):
    R = bench.near_identity_rotation(BLOCKS, np.random.default_rng(1))
    assert np.allclose(R @ R.T, np.eye(6))
    assert R[0, 0] == 1.0 and np.all(R[1:3, 3:] == 0)
    assert np.all(np.diag(R) > 0)  # near the identity: no block flipped or permuted


def test_a_basis_is_scored_with_the_log_determinant_of_the_whole_map(bench):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(1000, 3)) * [1.0, 2.0, 3.0]
    M = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    w, logdet = bench.standardised(z, M)
    assert np.allclose(w.std(0), 1.0)
    scale = (z @ M).std(0)
    assert logdet == pytest.approx(np.log(2.0) - np.log(scale).sum())


def test_identified_differences_name_missed_and_spurious_edges_after_matching(bench):
    truth = np.zeros((3, 3), dtype=int)
    truth[0, 2] = 1
    identified = np.ones((3, 3), dtype=bool)
    G = np.zeros((3, 3), dtype=int)
    G[1, 0] = 1  # learned latent 1 is true latent 0's match under perm [1, 0, 2]
    out = bench.differing_identified(G, [1, 0, 2], truth, identified, ["a", "b", "c"])
    assert out == ["a->b (spurious)", "a->c (missed)"]
