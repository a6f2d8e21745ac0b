"""Tests of pyro_personax.graph: acyclicity, DAG checks, thresholding into a DAG, networkx export."""
import math

import networkx as nx
import numpy as np
import pytest
import torch

from pyro_personax.graph import acyclicity, is_dag, to_dag, to_networkx, topological_order


def _random_dag(D, rng, p=0.5):
    A = np.triu(rng.random((D, D)) < p, k=1).astype(float) * rng.normal(size=(D, D))
    perm = rng.permutation(D)
    return A[np.ix_(perm, perm)]


def test_acyclicity_is_zero_on_dags():
    rng = np.random.default_rng(0)
    for _ in range(5):
        A = torch.as_tensor(_random_dag(6, rng), dtype=torch.float64)
        assert abs(acyclicity(A).item()) < 1e-10
    assert acyclicity(torch.zeros(4, 4)).item() == 0.0


@pytest.mark.parametrize("cycle", [[0, 1], [0, 1, 2]])
def test_acyclicity_is_positive_on_cycles(cycle):
    A = torch.zeros(4, 4, dtype=torch.float64)
    for a, b in zip(cycle, cycle[1:] + cycle[:1]):
        A[a, b] = 1.0
    assert acyclicity(A).item() > 0.1


def test_acyclicity_exact_value_on_two_cycle():
    # A o A = [[0, a^2], [b^2, 0]]: exp has trace 2 cosh(ab), so h = 2 cosh(ab) - 2.
    a, b = 0.7, 1.3
    A = torch.tensor([[0.0, a], [b, 0.0]], dtype=torch.float64)
    expected = 2 * math.cosh(a * b) - 2
    assert acyclicity(A).item() == pytest.approx(expected, abs=1e-12)
    # a self-loop of weight w on one node: h = exp(w^2) - 1
    assert acyclicity(torch.tensor([[0.5]], dtype=torch.float64)).item() == pytest.approx(math.exp(0.25) - 1, abs=1e-12)


def test_acyclicity_gradcheck():
    A = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(acyclicity, (A,))


@pytest.mark.parametrize("batch", [(), (3,), (2, 1)])
def test_acyclicity_batched_shapes(batch):
    A = torch.rand(*batch, 4, 4)
    h = acyclicity(A)
    assert h.shape == batch
    flat = A.reshape(-1, 4, 4)
    expected = torch.stack([acyclicity(a) for a in flat]).reshape(batch)
    torch.testing.assert_close(h, expected)


def test_acyclicity_rejects_non_square():
    with pytest.raises(ValueError, match=r"\(\.\.\., D, D\)"):
        acyclicity(torch.zeros(3, 4))


def test_topological_order_and_is_dag():
    A = np.zeros((4, 4))
    A[2, 0] = A[0, 1] = A[3, 1] = 1
    order = topological_order(A)
    pos = {v: i for i, v in enumerate(order)}
    assert pos[2] < pos[0] < pos[1] and pos[3] < pos[1]
    assert is_dag(A)
    A[1, 2] = 1
    assert topological_order(A) is None and not is_dag(A)
    assert not is_dag(np.eye(2))  # self-loop


def _kahn_fifo(A):
    """Kahn's algorithm with a first-in first-out queue, written out: the reference order."""
    A = np.asarray(A) != 0
    indegree = A.sum(axis=0).astype(int)
    ready = [j for j in range(A.shape[0]) if indegree[j] == 0]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in np.flatnonzero(A[i]):
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(int(j))
    return order if len(order) == A.shape[0] else None


def test_topological_order_is_networkx_and_the_same_order_as_kahns_algorithm():
    rng = np.random.default_rng(0)
    for _ in range(200):
        D = int(rng.integers(1, 12))
        A = (rng.random((D, D)) < 0.3).astype(int)
        if rng.random() < 0.7:  # mostly DAGs under a random order of the nodes
            perm = rng.permutation(D)
            A = np.triu(A, 1)[np.ix_(perm, perm)]
        assert topological_order(A) == _kahn_fifo(A)
        nx_graph = nx.from_numpy_array(A, create_using=nx.DiGraph)
        assert is_dag(A) == nx.is_directed_acyclic_graph(nx_graph)
    assert topological_order(np.zeros((0, 0))) == []


def test_to_dag_drops_least_probable_edge_on_cycle():
    P = np.zeros((3, 3))
    P[0, 1], P[1, 2], P[2, 0] = 0.9, 0.8, 0.6
    P[0, 2] = 0.7  # with 2->0 also a 2-cycle 0->2->0
    A = to_dag(P, threshold=0.5)
    assert is_dag(A)
    assert A[2, 0] == 0  # least probable edge of every cycle it lies on
    assert A[0, 1] == A[1, 2] == A[0, 2] == 1


def test_to_dag_keeps_edges_off_cycles_and_thresholds():
    rng = np.random.default_rng(1)
    P = rng.random((6, 6))
    np.fill_diagonal(P, 0)
    A = to_dag(P, threshold=0.3)
    assert is_dag(A)
    assert np.all(A <= (P > 0.3))
    assert np.all(np.diag(A) == 0)
    # only edges that lie on a cycle of the thresholded graph are dropped
    T = nx.from_numpy_array((P > 0.3).astype(int), create_using=nx.DiGraph)
    dropped = list(zip(*np.nonzero((P > 0.3) & (A == 0))))
    assert dropped
    for i, j in dropped:
        assert nx.has_path(T, j, i)
    # an edge off every cycle survives: make node 5 a sink reached from 0
    Q = P.copy()
    Q[5, :] = 0.0
    Q[0, 5] = 0.99
    assert to_dag(Q, threshold=0.3)[0, 5] == 1


def test_to_dag_rejects_bad_input():
    with pytest.raises(ValueError, match="threshold"):
        to_dag(np.zeros((2, 2)), threshold=1.0)
    with pytest.raises(ValueError, match="probabilities"):
        to_dag(np.full((2, 2), 1.5))
    with pytest.raises(ValueError, match="square"):
        to_dag(np.zeros((2, 3)))


def test_to_networkx_names_and_attributes():
    A = np.array([[0, 1], [0, 0]])
    P = np.array([[0, 0.8], [0.1, 0]])
    G = to_networkx(A, names=["a", "b"], edge_attrs={"p_edge": P, "weight": 2 * P}, node_attrs={"block": ["x", "y"]})
    assert list(G.edges) == [("a", "b")]
    assert G.edges["a", "b"]["p_edge"] == pytest.approx(0.8)
    assert G.edges["a", "b"]["weight"] == pytest.approx(1.6)
    assert G.nodes["b"]["block"] == "y"
    with pytest.raises(ValueError, match=r"edge_attrs\['p_edge'\] has shape \(1, 1\)"):
        to_networkx(A, edge_attrs={"p_edge": np.ones((1, 1))})
    assert nx.is_directed_acyclic_graph(G)
    with pytest.raises(ValueError, match="names"):
        to_networkx(A, names=["a"])
