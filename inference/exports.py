"""Exports of the edge posterior to other tools: networkx, CSV, causal-learn and DoWhy.

Adjacencies follow :mod:`pyro_personax.graph`: ``A[i, j]`` is the edge parent i ->
child j. Tables are those of :func:`pyro_personax.inference.diagnostics.edge_summary`
(one row per ordered pair, columns ``parent``, ``child``, ``p_edge``, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from pyro_personax.graph import to_dag, to_networkx

__all__ = [
    "adjacency_from_table",
    "table_to_networkx",
    "to_adjacency_csv",
    "read_adjacency_csv",
    "to_causallearn",
    "to_dowhy_gml",
]

logger = logging.getLogger(__name__)

_EDGE_ATTRS = ("p_edge", "strength_mean", "strength_hdi_low", "strength_hdi_high", "r_hat", "ess_bulk")


def _check_table(table: pd.DataFrame, column: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table: expected a pandas DataFrame; found {type(table).__name__}")
    missing = [c for c in ("parent", "child", column) if c not in table.columns]
    if missing:
        raise ValueError(f"table: expected columns parent, child, {column}; missing {missing}")


def _node_order(table: pd.DataFrame, names: Sequence[str] | None) -> list[str]:
    if names is not None:
        return [str(n) for n in names]
    order: list[str] = []
    for node in pd.concat([table["parent"], table["child"]]).astype(str):
        if node not in order:
            order.append(node)
    return order


def _check_adjacency(adjacency, names: Sequence[str]) -> np.ndarray:
    A = np.asarray(adjacency)
    D = len(names)
    if A.shape != (D, D):
        raise ValueError(f"adjacency: expected shape ({D}, {D}) to match names; found {A.shape}")
    if not np.all(np.isfinite(A.astype(float))):
        raise ValueError("adjacency: expected finite values; found NaN or inf")
    if len(set(map(str, names))) != D:
        raise ValueError(f"names: expected unique names; found {list(names)}")
    return A


def adjacency_from_table(
    table: pd.DataFrame, names: Sequence[str] | None = None, column: str = "p_edge"
) -> tuple[np.ndarray, list[str]]:
    """Matrix ``(D, D)`` of one column of an edge table.

    Parameters
    ----------
    table
        Edge table with columns ``parent``, ``child`` and ``column``.
    names
        Node order; default the order of first appearance in the table.
    column
        Column to place in the matrix (pairs not in the table are 0).

    Returns
    -------
    (numpy.ndarray, list of str)
        The ``(D, D)`` matrix (``[i, j]`` = value of i -> j) and the node names.
    """
    _check_table(table, column)
    order = _node_order(table, names)
    index = {n: i for i, n in enumerate(order)}
    A = np.zeros((len(order), len(order)))
    for parent, child, value in zip(table["parent"].astype(str), table["child"].astype(str), table[column]):
        if parent not in index or child not in index:
            raise ValueError(f"table: node {parent!r} or {child!r} is not in names {order}")
        A[index[parent], index[child]] = value
    return A, order


def table_to_networkx(
    table: pd.DataFrame, threshold: float = 0.5, *, acyclic: bool = True, blocks: Sequence[str] | None = None
) -> nx.DiGraph:
    """Directed graph of the edges with ``p_edge > threshold``, with the table's columns as attributes.

    Built by :func:`pyro_personax.graph.to_networkx`.

    Parameters
    ----------
    table
        Edge table (:func:`~pyro_personax.inference.diagnostics.edge_summary`).
    threshold
        Inclusion threshold on ``p_edge`` in ``[0, 1)``.
    acyclic
        Drop the least probable edge of each cycle until the graph is a DAG
        (:func:`pyro_personax.graph.to_dag`).
    blocks
        Optional block name per node (default: the ``parent_block``/``child_block``
        columns when present), stored as the node attribute ``block``.

    Returns
    -------
    networkx.DiGraph
        Every latent is a node; edge attributes ``p_edge``, ``strength_mean``,
        ``strength_hdi_low``, ``strength_hdi_high``, ``r_hat``, ``ess_bulk``,
        ``edge_class`` where present.
    """
    _check_table(table, "p_edge")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold: expected a value in [0, 1); found {threshold}")
    P, names = adjacency_from_table(table)
    keep = to_dag(P, threshold) if acyclic else (P > threshold).astype(int)
    block_of = _blocks_from_table(table, names) if blocks is None else [str(b) for b in blocks]
    edge_attrs = {}
    for column in (c for c in _EDGE_ATTRS if c in table.columns):
        edge_attrs[column] = adjacency_from_table(table, names, column)[0]
    if "edge_class" in table.columns:
        index = {n: i for i, n in enumerate(names)}
        classes = np.full((len(names), len(names)), "", dtype=object)
        for parent, child, value in zip(table["parent"].astype(str), table["child"].astype(str), table["edge_class"]):
            classes[index[parent], index[child]] = str(value)
        edge_attrs["edge_class"] = classes
    return to_networkx(
        keep, names, edge_attrs=edge_attrs, node_attrs=None if block_of is None else {"block": block_of}
    )


def _blocks_from_table(table: pd.DataFrame, names: list[str]) -> list[str] | None:
    if "parent_block" not in table.columns or "child_block" not in table.columns:
        return None
    found = dict(zip(table["parent"].astype(str), table["parent_block"].astype(str)))
    found.update(zip(table["child"].astype(str), table["child_block"].astype(str)))
    return [found[n] for n in names]


def to_adjacency_csv(adjacency, names: Sequence[str], path, *, overwrite: bool = False) -> Path:
    """Write a ``(D, D)`` adjacency (probabilities or 0/1) as CSV with latent names.

    Rows are parents and columns children (``[i, j]`` = i -> j).

    Parameters
    ----------
    adjacency
        Matrix ``(D, D)``.
    names
        ``D`` latent names, used as row index and header.
    path
        Target CSV file.
    overwrite
        Replace an existing file; otherwise an existing file raises FileExistsError.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    A = _check_adjacency(adjacency, names)
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: {path} exists; pass overwrite=True to replace it")
    df = pd.DataFrame(A, index=pd.Index([str(n) for n in names], name="parent"), columns=[str(n) for n in names])
    df.to_csv(path)
    return path


def read_adjacency_csv(path) -> tuple[np.ndarray, list[str]]:
    """Read a CSV written by :func:`to_adjacency_csv`: returns ``(A (D, D), names)``."""
    df = pd.read_csv(path, index_col=0)
    rows, cols = [str(r) for r in df.index], [str(c) for c in df.columns]
    if rows != cols:
        raise ValueError(f"{path}: expected the same names on rows and columns; found {rows} and {cols}")
    A = df.to_numpy(dtype=float)
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{path}: expected finite adjacency entries; found NaN or inf")
    return A, rows


def to_causallearn(adjacency, names: Sequence[str]):
    """causal-learn ``GeneralGraph`` with a directed edge ``i --> j`` for every non-zero ``A[i, j]``.

    Parameters
    ----------
    adjacency
        Matrix ``(D, D)``; non-zero entries are edges (threshold probabilities first,
        e.g. with :func:`pyro_personax.graph.to_dag`).
    names
        ``D`` node names.

    Returns
    -------
    causallearn.graph.GeneralGraph.GeneralGraph
        In causal-learn's matrix encoding ``G.graph[j, i] = 1`` and ``G.graph[i, j] = -1``
        for the edge i --> j.
    """
    from causallearn.graph.Edge import Edge
    from causallearn.graph.Endpoint import Endpoint
    from causallearn.graph.GeneralGraph import GeneralGraph
    from causallearn.graph.GraphNode import GraphNode

    A = _check_adjacency(adjacency, names)
    if np.any(np.diagonal(A) != 0):
        raise ValueError("adjacency: expected a zero diagonal (no self-loops)")
    if np.any((A != 0) & (A.T != 0)):
        raise ValueError("adjacency: expected no 2-cycles (i -> j and j -> i); causal-learn edges are single")
    nodes = [GraphNode(str(n)) for n in names]
    G = GeneralGraph(nodes)
    for i, j in zip(*np.nonzero(A)):
        G.add_edge(Edge(nodes[i], nodes[j], Endpoint.TAIL, Endpoint.ARROW))
    return G


def to_dowhy_gml(adjacency, names: Sequence[str]) -> str:
    """GML string of the directed graph, as DoWhy's ``CausalModel(graph=...)`` accepts it.

    Parameters
    ----------
    adjacency
        Matrix ``(D, D)``; non-zero entries are edges.
    names
        ``D`` node names (GML labels).

    Returns
    -------
    str
        ``graph [ directed 1 node [ id 0 label "name" ] ... edge [ source 0 target 1 ] ]``;
        ``networkx.parse_gml`` (which DoWhy uses) reads the labels back as node names.
    """
    A = _check_adjacency(adjacency, names)
    G = nx.DiGraph()
    G.add_nodes_from(str(n) for n in names)
    G.add_edges_from((str(names[i]), str(names[j])) for i, j in zip(*np.nonzero(A)))
    return "\n".join(nx.generate_gml(G))
