"""``benchmarks/markov_check.py``: the cross-modal local Markov check of a restart's graph on its latents."""

import numpy as np
from conftest import load_benchmark

from pyro_personax.synthetic import persona

bench = load_benchmark("markov_check")


def test_descendants_follow_directed_paths_only():
    A = np.zeros((4, 4), dtype=int)
    A[0, 1] = A[1, 2] = A[3, 2] = 1
    want = np.zeros((4, 4), dtype=bool)
    want[0, 1] = want[0, 2] = want[1, 2] = want[3, 2] = True
    np.testing.assert_array_equal(bench.descendants(A), want)


def test_the_true_graph_passes_and_a_graph_without_a_cross_modal_edge_fails_at_its_child():
    _, truth = persona(2000, seed=0)
    z, A, identified = truth.latents, truth.adjacency, truth.layout.identified_mask().astype(bool)
    names = list(truth.layout.names)
    child, parent = names.index("expression"), names.index("extraversion")
    assert A[parent, child] and identified[parent, child]
    true_gains = bench.markov_gains(z, A, identified)
    assert max(zs for _, _, zs in true_gains) < 3
    dropped = A.copy()
    dropped[parent, child] = 0
    gains = {j: (g, zs) for j, g, zs in bench.markov_gains(z, dropped, identified)}
    assert gains[child][0] > 0.05 and gains[child][1] > 3  # the child gains from the latent it lost
    assert all(zs < 3 for j, (_, zs) in gains.items() if j not in (child, parent))
