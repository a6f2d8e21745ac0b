"""Exports: networkx with probabilities, adjacency CSV, causal-learn GeneralGraph, DoWhy GML."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from pyro_personax.inference import exports

NAMES = ["a", "b", "c"]


@pytest.fixture
def table():
    rows = []
    P = np.array([[0.0, 0.9, 0.2], [0.05, 0.0, 0.7], [0.6, 0.0, 0.0]])  # a->b->c->a is a cycle
    for i, p in enumerate(NAMES):
        for j, c in enumerate(NAMES):
            if i != j:
                rows.append({"parent": p, "child": c, "p_edge": P[i, j], "r_hat": 1.0 + P[i, j],
                             "parent_block": "x", "child_block": "y" if c == "c" else "x"})
    return pd.DataFrame(rows)


def test_adjacency_from_table(table):
    A, names = exports.adjacency_from_table(table)
    assert names == NAMES
    assert A[0, 1] == 0.9 and A[2, 0] == 0.6 and A[1, 0] == 0.05


def test_table_to_networkx_is_acyclic_with_probabilities(table):
    G = exports.table_to_networkx(table, 0.5)
    assert nx.is_directed_acyclic_graph(G)
    assert set(G.nodes) == set(NAMES)
    # the cycle a->b->c->a loses its least probable edge, c->a (0.6)
    assert set(G.edges) == {("a", "b"), ("b", "c")}
    assert G.edges["a", "b"]["p_edge"] == 0.9 and G.edges["b", "c"]["r_hat"] == pytest.approx(1.7)
    assert G.nodes["c"]["block"] == "y"
    cyclic = exports.table_to_networkx(table, 0.5, acyclic=False)
    assert ("c", "a") in cyclic.edges


def test_adjacency_csv_round_trip(tmp_path):
    A = np.array([[0.0, 0.25, 1.0], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    path = exports.to_adjacency_csv(A, NAMES, tmp_path / "adj.csv")
    back, names = exports.read_adjacency_csv(path)
    assert names == NAMES and np.array_equal(back, A)
    with pytest.raises(FileExistsError, match="overwrite"):
        exports.to_adjacency_csv(A, NAMES, path)
    with pytest.raises(ValueError, match="adjacency: expected shape"):
        exports.to_adjacency_csv(A, NAMES[:2], tmp_path / "other.csv")


def test_to_causallearn_general_graph():
    from causallearn.graph.GeneralGraph import GeneralGraph

    A = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    G = exports.to_causallearn(A, NAMES)
    assert isinstance(G, GeneralGraph)
    assert [n.get_name() for n in G.get_nodes()] == NAMES
    # causal-learn encodes i --> j as graph[j, i] = 1 and graph[i, j] = -1
    expected = np.zeros((3, 3), dtype=int)
    for i, j in zip(*np.nonzero(A)):
        expected[j, i], expected[i, j] = 1, -1
    assert np.array_equal(G.graph, expected)
    a, b = G.get_node("a"), G.get_node("b")
    assert G.is_parent_of(a, b) and not G.is_parent_of(b, a)
    with pytest.raises(ValueError, match="2-cycles"):
        exports.to_causallearn(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]), NAMES)


def test_dowhy_gml_parses_as_the_same_digraph():
    names = ["age group", 'say "hi"', "c"]
    A = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]) * np.array([[1, 1, 1], [1, 1, 1], [0, 0, 0]])
    text = exports.to_dowhy_gml(A, names)
    assert text.startswith("graph [") and "directed 1" in text
    G = nx.DiGraph(nx.parse_gml(text))  # what DoWhy does with a GML string
    assert list(G.nodes) == names
    assert set(G.edges) == {("age group", 'say "hi"'), ('say "hi"', "c")}
