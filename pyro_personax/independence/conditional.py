"""Level I beyond pairs: PC or FCI (causal-learn) over traits and features.

A pairwise dependence ("league depends on conscientiousness") may vanish given other
columns (birth year, height). :func:`conditional_graph` runs causal-learn's PC or FCI
over the traits and the chosen features with one of the battery's tests and with
background knowledge: tiers (no edge from a later tier into an earlier one, for example
birth year and height before the traits) and single forbidden edges. It returns the
graph (networkx), each edge's marks as causal-learn writes them (``-->``, ``---``,
``o->``, ``o-o``, ``<->``) and, for PC, the separating set of every removed pair.

Only numeric and boolean columns are accepted; rows with a missing cell are dropped.
KCI runs on a seeded subsample of ``kci_max_n`` rows (the battery's large-n strategy);
``chisq`` / ``gsq`` need discrete columns (causal-learn recodes every value as a level).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from pyro_personax.independence.battery import check_columns
from pyro_personax.independence.catalog import CONDITIONAL_TESTS

__all__ = ["ConditionalResult", "conditional_graph", "CONDITIONAL_TESTS"]


@dataclass
class ConditionalResult:
    """Output of :func:`conditional_graph`.

    Parameters
    ----------
    graph
        ``networkx.DiGraph`` over the columns. A directed edge ``a --> b`` is the arc
        ``a -> b``; any other mark is stored as arcs both ways. Every arc has the
        attribute ``mark`` (causal-learn's text, written from ``a`` to ``b`` as found).
    edges
        One row per edge: ``source``, ``target``, ``mark``.
    sepsets
        ``{(a, b): (c, ...)}`` for every pair that PC separated (``a`` before ``b`` in the
        column order); empty for FCI, which does not return them.
    method, test, alpha, n
        What ran, on how many complete rows.
    """

    graph: nx.DiGraph
    edges: pd.DataFrame
    sepsets: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    method: str = "pc"
    test: str = "fisherz"
    alpha: float = 0.05
    n: int = 0

    def adjacent(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` share an edge of any mark."""
        return self.graph.has_edge(a, b) or self.graph.has_edge(b, a)

    def write_graphml(self, path) -> None:
        """Write :attr:`graph` as GraphML (the ``mark`` attribute included)."""
        nx.write_graphml(self.graph, path)


def _matrix(df: pd.DataFrame, traits: Sequence[str], features: Sequence[str]) -> np.ndarray:
    """Complete rows of ``traits + features`` as floats, after the battery's column checks."""
    check_columns(df, traits, features)
    columns = [*traits, *features]
    if len(set(columns)) != len(columns):
        raise ValueError(f"a column is named twice among the traits and features: {columns}")
    for c in features:
        dtype = df[c].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise TypeError(f"df[{c!r}]: expected a numeric or boolean column; found dtype {dtype}")
    return df[columns].astype(float).dropna().to_numpy()


def _background(columns: list[str], tiers, forbidden):
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    bk = BackgroundKnowledge()
    nodes = {c: GraphNode(c) for c in columns}
    for t, tier in enumerate(tiers or ()):
        for c in tier:
            if c not in nodes:
                raise ValueError(f"tiers[{t}]: {c!r} is not among the traits and features")
            bk.add_node_to_tier(nodes[c], t)
    for a, b in forbidden or ():
        if a not in nodes or b not in nodes:
            raise ValueError(f"forbidden: ({a!r}, {b!r}) names a column that is not among the traits and features")
        bk.add_forbidden_by_node(nodes[a], nodes[b])
    return bk


def conditional_graph(
    df: pd.DataFrame,
    traits: Sequence[str],
    features: Sequence[str],
    *,
    method: str = "pc",
    test: str = "fisherz",
    alpha: float = 0.05,
    tiers: Sequence[Iterable[str]] | None = None,
    forbidden: Iterable[tuple[str, str]] = (),
    kci_max_n: int = 2000,
    seed: int = 0,
) -> ConditionalResult:
    """PC or FCI over ``traits`` and ``features`` with background knowledge.

    Parameters
    ----------
    df
        Table with the columns named in ``traits`` and ``features`` (numeric or bool).
    traits, features
        Column names; the graph's nodes in this order.
    method
        ``"pc"`` or ``"fci"`` (causal-learn).
    test
        One of :data:`CONDITIONAL_TESTS`.
    alpha
        Level of each conditional-independence test, in ``(0, 1)``.
    tiers
        Ordered groups of columns: no edge from a later tier into an earlier one (for
        example ``[["birth_year", "height"], traits]``: no trait -> birth year).
    forbidden
        ``(a, b)`` pairs: no edge ``a -> b``.
    kci_max_n
        KCI runs on a seeded subsample of this many complete rows when there are more.
    seed
        Seed of the KCI subsample and of causal-learn's random draws (RCIT).

    Returns
    -------
    ConditionalResult
        The graph, its edges and PC's separating sets.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> c = rng.normal(size=3000)
    >>> df = pd.DataFrame({"t": c + rng.normal(size=3000), "f": c + rng.normal(size=3000), "c": c})
    >>> res = conditional_graph(df, ["t"], ["f", "c"], tiers=[["c"], ["t", "f"]])
    >>> res.adjacent("t", "f"), res.sepsets[("t", "f")]
    (False, ('c',))
    """
    if method not in ("pc", "fci"):
        raise ValueError(f"method: expected 'pc' or 'fci'; found {method!r}")
    if test not in CONDITIONAL_TESTS:
        raise ValueError(f"test: expected one of {CONDITIONAL_TESTS}; found {test!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a number in (0, 1); found {alpha}")
    data = _matrix(df, traits, features)
    columns = [*traits, *features]
    if data.shape[0] < 10:
        raise ValueError(f"df: expected at least 10 complete rows over {columns}; found {data.shape[0]}")
    rng = np.random.default_rng(seed)
    if test == "kci" and data.shape[0] > kci_max_n:
        data = data[np.sort(rng.choice(data.shape[0], size=kci_max_n, replace=False))]
    bk = _background(columns, tiers, forbidden)

    from pyro_personax.independence.pairwise import _global_numpy_seed

    with _global_numpy_seed(seed), contextlib.redirect_stdout(io.StringIO()):
        if method == "pc":
            from causallearn.search.ConstraintBased.PC import pc

            cg = pc(data, alpha, test, background_knowledge=bk, node_names=columns, show_progress=False)
            graph_edges, sepset = cg.G.get_graph_edges(), cg.sepset
        else:
            from causallearn.search.ConstraintBased.FCI import fci

            g, _ = fci(data, test, alpha, background_knowledge=bk, node_names=columns, show_progress=False)
            graph_edges, sepset = g.get_graph_edges(), None

    graph = nx.DiGraph()
    graph.add_nodes_from(columns)
    rows = []
    for e in graph_edges:
        a, b = e.get_node1().get_name(), e.get_node2().get_name()
        mark = str(e).split(" ")[1]
        rows.append({"source": a, "target": b, "mark": mark})
        graph.add_edge(a, b, mark=mark)
        if mark != "-->":
            graph.add_edge(b, a, mark=mark[::-1].translate(str.maketrans("<>", "><")))
    sepsets = {}
    if sepset is not None:
        for i, j in zip(*np.triu_indices(len(columns), 1)):
            found = sepset[i, j]
            a, b = columns[i], columns[j]
            if found is not None and not (graph.has_edge(a, b) or graph.has_edge(b, a)):
                sepsets[(a, b)] = tuple(columns[int(k)] for k in found[0]) if found else ()
    edges = pd.DataFrame(rows, columns=["source", "target", "mark"])
    return ConditionalResult(graph, edges, sepsets, method, test, float(alpha), int(data.shape[0]))
