"""Tests of pyro_personax.graph: order tiers, linear-extension counts, DAG enumeration."""

import itertools
import math

import networkx as nx
import numpy as np
import pytest

from pyro_personax.graph import (
    count_linear_extensions,
    enumerate_dags,
    is_dag,
    log_count_linear_extensions,
    order_tiers,
)

N_DAGS = {1: 1, 2: 3, 3: 25, 4: 543, 5: 29_281}


def _random_dag(D, rng, p):
    A = np.triu(rng.random((D, D)) < p, k=1).astype(int)
    perm = rng.permutation(D)
    return A[np.ix_(perm, perm)]


def _brute_count(A, tiers=None):
    """Orders (as permutations) respecting every edge of A and, optionally, the tiers."""
    D = A.shape[0]
    perms = np.array(list(itertools.permutations(range(D))), dtype=int).reshape(-1, D)
    position = np.argsort(perms, axis=1)  # position[p, node]
    ok = np.ones(len(perms), dtype=bool)
    for i, j in zip(*np.nonzero(A)):
        ok &= position[:, i] < position[:, j]
    if tiers is not None:
        ok &= np.all(np.diff(np.asarray(tiers)[perms], axis=1) >= 0, axis=1)
    return int(ok.sum())


def _brute_dags(allowed, required):
    """All DAGs within `allowed` containing `required`, by trying every edge subset."""
    D = allowed.shape[0]
    pairs = [(i, j) for i in range(D) for j in range(D) if i != j]
    found = set()
    for bits in itertools.product((0, 1), repeat=len(pairs)):
        A = np.zeros((D, D), dtype=int)
        for (i, j), b in zip(pairs, bits):
            A[i, j] = b
        if np.any(A.astype(bool) & ~allowed) or np.any(required & ~A.astype(bool)):
            continue
        if is_dag(A):
            found.add(A.tobytes())
    return found


# ---------------------------------------------------------------- enumerate_dags


@pytest.mark.parametrize("D", [1, 2, 3, 4, 5])
def test_enumerate_dags_counts_distinct_and_acyclic(D):
    G = enumerate_dags(np.ones((D, D), dtype=bool))
    assert G.shape == (N_DAGS[D], D, D)
    assert G.dtype == np.int8
    assert not G[0].any()  # the empty graph comes first
    assert set(np.unique(G)) <= {0, 1}
    assert not np.any(np.diagonal(G, axis1=1, axis2=2))
    assert len(np.unique(G.reshape(len(G), -1), axis=0)) == len(G)
    rng = np.random.default_rng(D)
    sample = G if len(G) <= 600 else G[rng.choice(len(G), size=300, replace=False)]
    assert all(is_dag(A) for A in sample)


def test_enumerate_dags_is_deterministic():
    allowed = np.ones((4, 4), dtype=bool)
    np.testing.assert_array_equal(enumerate_dags(allowed), enumerate_dags(allowed))


@pytest.mark.parametrize("D, seed", [(3, 0), (3, 1), (4, 2), (4, 3)])
def test_enumerate_dags_respects_allowed_and_required(D, seed):
    rng = np.random.default_rng(seed)
    allowed = rng.random((D, D)) < 0.7
    np.fill_diagonal(allowed, rng.random(D) < 0.5)  # the diagonal is ignored
    off = [(i, j) for i in range(D) for j in range(D) if i != j and allowed[i, j]]
    required = np.zeros((D, D), dtype=bool)
    required[off[rng.integers(len(off))]] = True
    G = enumerate_dags(allowed, required)
    assert len(G) > 0
    forbidden = ~allowed | np.eye(D, dtype=bool)
    assert not np.any(G.astype(bool) & forbidden)
    assert np.all(G[:, required] == 1)
    expected = _brute_dags(allowed & ~np.eye(D, dtype=bool), required)
    assert len(G) == len(expected)
    assert {A.astype(int).tobytes() for A in G} == expected


def test_enumerate_dags_required_cycle_gives_no_graph():
    required = np.zeros((3, 3), dtype=bool)
    required[0, 1] = required[1, 2] = required[2, 0] = True
    G = enumerate_dags(np.ones((3, 3), dtype=bool), required)
    assert G.shape == (0, 3, 3)


def test_enumerate_dags_errors():
    with pytest.raises(ValueError, match=r"allowed must be a square \(D, D\).*\(2, 3\)"):
        enumerate_dags(np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"D=7.*3,781,503"):
        enumerate_dags(np.ones((7, 7), dtype=bool))
    allowed = np.ones((3, 3), dtype=bool)
    allowed[0, 1] = False
    required = np.zeros((3, 3), dtype=bool)
    required[0, 1] = True
    with pytest.raises(ValueError, match=r"required.*\(0, 1\)"):
        enumerate_dags(allowed, required)
    with pytest.raises(ValueError, match="required must have the shape"):
        enumerate_dags(np.ones((3, 3)), np.zeros((4, 4)))


# ---------------------------------------------------- count_linear_extensions


@pytest.mark.parametrize("D", [0, 1, 2, 5, 8])
def test_count_empty_graph_is_factorial(D):
    assert count_linear_extensions(np.zeros((D, D))) == math.factorial(D)


def test_count_small_graphs():
    chain = np.eye(6, k=1)
    assert count_linear_extensions(chain) == 1
    assert count_linear_extensions(chain[::-1, ::-1]) == 1  # 5 -> 4 -> ... -> 0
    v = np.zeros((3, 3))
    v[0, 2] = v[1, 2] = 1  # 0 -> 2 <- 1
    assert count_linear_extensions(v) == 2
    two_cycle = np.zeros((3, 3))
    two_cycle[0, 1] = two_cycle[1, 0] = 1
    assert count_linear_extensions(two_cycle) == 0
    self_loop = np.zeros((3, 3))
    self_loop[1, 1] = 1
    assert count_linear_extensions(self_loop) == 0
    assert isinstance(count_linear_extensions(v), int)


def test_count_matches_brute_force_on_random_dags():
    rng = np.random.default_rng(0)
    for _ in range(30):
        D = int(rng.integers(2, 8))
        A = _random_dag(D, rng, p=rng.uniform(0.1, 0.7))
        assert count_linear_extensions(A) == _brute_count(A)
        # weighted entries count as edges, too
        W = A * rng.normal(size=(D, D))
        assert count_linear_extensions(W) == _brute_count(A)


def test_count_with_tiers_matches_brute_force():
    rng = np.random.default_rng(1)
    n_positive = 0
    for trial in range(30):
        D = int(rng.integers(2, 8))
        A = np.triu(rng.random((D, D)) < rng.uniform(0.1, 0.6), k=1).astype(int)
        if trial % 2 == 0:  # tiers compatible with the node order 0..D-1: count > 0
            tiers = np.sort(rng.integers(0, 3, size=D))
        else:  # arbitrary labels (possibly edges into lower tiers: count 0)
            tiers = rng.integers(-2, 3, size=D)
        perm = rng.permutation(D)
        A, tiers = A[np.ix_(perm, perm)], tiers[perm]
        expected = _brute_count(A, tiers)
        assert count_linear_extensions(A, tiers) == expected
        n_positive += expected > 0
    assert n_positive >= 15


def test_count_tiers_product_and_backward_edge():
    A = np.zeros((5, 5))
    A[0, 3] = A[1, 2] = 1  # both within or forward across tiers
    tiers = np.array([0, 0, 0, 1, 1])
    # tier 0 = {0, 1, 2} with 1 -> 2: 3 orders; tier 1 = {3, 4}: 2 orders
    assert count_linear_extensions(A, tiers) == 6
    assert count_linear_extensions(A, tiers) == _brute_count(A, tiers)
    backward = A.copy()
    backward[4, 0] = 1  # tier 1 -> tier 0
    assert count_linear_extensions(backward, tiers) == 0
    assert count_linear_extensions(backward) == _brute_count(backward) > 0
    assert count_linear_extensions(A, tiers.astype(float)) == 6


def test_count_beyond_uint64_is_exact():
    A = np.zeros((21, 21))
    A[3, 17] = 1
    # 21! / 2 > 2**64: exercises the wrapped-uint64 + float64 reconstruction
    assert count_linear_extensions(A) == math.factorial(21) // 2


def test_log_count():
    assert log_count_linear_extensions(np.zeros((6, 6))) == pytest.approx(math.log(720))
    two_cycle = np.array([[0, 1], [1, 0]])
    assert log_count_linear_extensions(two_cycle) == -math.inf
    # 40 nodes in four tiers of 10, each with a v-structure: (10! / 3) ** 4 orders
    D = 40
    A = np.zeros((D, D))
    for start in range(0, D, 10):
        A[start, start + 2] = A[start + 1, start + 2] = 1
    tiers = np.repeat(np.arange(4), 10)
    expected = 4 * math.log(math.factorial(10) // 3)
    assert log_count_linear_extensions(A, tiers) == pytest.approx(expected, rel=1e-12)
    assert count_linear_extensions(A, tiers) == (math.factorial(10) // 3) ** 4


@pytest.mark.parametrize("D", [3, 4])
def test_sum_of_counts_over_all_dags(D):
    # Each of the D! orders admits exactly 2**(D(D-1)/2) DAGs consistent with it.
    total = sum(count_linear_extensions(A) for A in enumerate_dags(np.ones((D, D), bool)))
    assert total == math.factorial(D) * 2 ** (D * (D - 1) // 2)


def test_count_errors():
    with pytest.raises(ValueError, match=r"adjacency must be a square \(D, D\).*\(3, 2\)"):
        count_linear_extensions(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"the graph has 25 nodes.*at most 24"):
        count_linear_extensions(np.zeros((25, 25)))
    tiers = np.array([0] * 5 + [7] * 25)
    with pytest.raises(ValueError, match=r"tier 7 has 25 nodes.*at most 24"):
        count_linear_extensions(np.zeros((30, 30)), tiers)
    with pytest.raises(ValueError, match=r"tiers must have shape \(D,\) = \(3,\); found \(2,\)"):
        count_linear_extensions(np.zeros((3, 3)), [0, 1])
    with pytest.raises(ValueError, match="tiers must be integers"):
        count_linear_extensions(np.zeros((2, 2)), [0.5, 1.0])
    with pytest.raises(ValueError, match="adjacency must be a square"):
        log_count_linear_extensions(np.zeros(4))


# ------------------------------------------------------------------ order_tiers


def test_order_tiers_examples():
    allowed = np.ones((4, 4), dtype=bool)
    allowed[:, 0] = False  # node 0 only sends edges
    np.testing.assert_array_equal(order_tiers(allowed), [0, 1, 1, 1])
    full = np.ones((5, 5), dtype=bool)
    np.fill_diagonal(full, False)
    np.testing.assert_array_equal(order_tiers(full), np.zeros(5))
    np.testing.assert_array_equal(order_tiers(np.ones((5, 5))), np.zeros(5))
    # no edge allowed: every node is its own tier, by index
    np.testing.assert_array_equal(order_tiers(np.zeros((3, 3))), [0, 1, 2])
    # topology before index: only 1 -> 0 allowed
    np.testing.assert_array_equal(order_tiers(np.array([[0, 0], [1, 0]])), [1, 0])
    # incomparable components ordered by their smallest node
    two = np.zeros((4, 4), dtype=bool)
    two[3, 2] = two[2, 3] = True
    np.testing.assert_array_equal(order_tiers(two), [0, 1, 2, 2])
    assert order_tiers(np.zeros((0, 0))).shape == (0,)


@pytest.mark.parametrize("seed", range(6))
def test_order_tiers_random_masks(seed):
    rng = np.random.default_rng(seed)
    D = int(rng.integers(2, 12))
    allowed = rng.random((D, D)) < rng.uniform(0.05, 0.4)
    tiers = order_tiers(allowed)
    assert tiers.shape == (D,)
    assert set(tiers.tolist()) == set(range(tiers.max() + 1))
    off = allowed & ~np.eye(D, dtype=bool)
    for i, j in zip(*np.nonzero(off)):
        assert tiers[i] <= tiers[j]
    G = nx.from_numpy_array(off.astype(int), create_using=nx.DiGraph)
    for i in range(D):
        for j in range(D):
            mutual = nx.has_path(G, i, j) and nx.has_path(G, j, i)
            assert mutual == (tiers[i] == tiers[j])  # tiers are exactly the SCCs


def test_order_tiers_admit_every_allowed_dag():
    rng = np.random.default_rng(5)
    allowed = rng.random((4, 4)) < 0.45
    tiers = order_tiers(allowed)
    assert tiers.max() > 0
    for A in enumerate_dags(allowed):
        assert count_linear_extensions(A, tiers) > 0


def test_order_tiers_errors():
    with pytest.raises(ValueError, match=r"order_tiers: allowed must be a square.*\(2, 3\)"):
        order_tiers(np.ones((2, 3), dtype=bool))


@pytest.mark.parametrize("seed", range(4))
def test_best_dag_is_the_maximum_over_every_dag_with_forbidden_parent_sets_and_tiers(seed):
    from pyro_personax.graph import best_dag

    rng = np.random.default_rng(seed)
    D = 5
    allowed = rng.random((D, D)) < 0.7
    tiers = np.array([0, 0, 1, 1, 1]) if seed % 2 else None
    if tiers is not None:
        allowed &= tiers[:, None] <= tiers[None, :]  # no edge against the tiers
    np.fill_diagonal(allowed, False)
    scores = 3 * rng.normal(size=(2**D, D))
    member = ((np.arange(2**D)[:, None] >> np.arange(D)) & 1).astype(bool)
    for j in range(D):
        scores[(member & ~allowed[:, j]).any(1), j] = -np.inf
    graphs = enumerate_dags(allowed)
    codes = (graphs.astype(np.int64) << np.arange(D)[:, None]).sum(1)  # parent bitmask of every node
    totals = scores[codes, np.arange(D)].sum(1)
    A, order, score = best_dag(scores, tiers=tiers)
    assert score == pytest.approx(totals.max())
    np.testing.assert_array_equal(A, graphs[np.argmax(totals)])
    position = np.argsort(order)
    assert all(position[i] < position[j] for i, j in zip(*np.nonzero(A)))  # a topological order of A
    if tiers is not None:
        assert np.all(np.diff(tiers[order]) >= 0)


def test_best_dag_names_a_wrong_table():
    from pyro_personax.graph import best_dag

    with pytest.raises(ValueError, match=r"\(2\^D, D\)"):
        best_dag(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        best_dag(np.full((4, 2), np.nan))
