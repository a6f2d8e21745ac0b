"""Graph math for latent causal graphs.

Convention (public API, used everywhere in the package)
--------------------------------------------------------
An adjacency matrix ``A`` of shape ``(..., D, D)`` encodes the edge
**parent i -> child j** in ``A[..., i, j]`` (the NOTEARS convention): column ``j``
lists the parents of ``j``. Weighted matrices use the same layout; any non-zero entry
is an edge.

Functions that take tensors are batched over leading dimensions and follow the
input's dtype and device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

if TYPE_CHECKING:  # torch is imported by the functions that need it
    import torch

__all__ = [
    "acyclicity",
    "best_dag",
    "count_linear_extensions",
    "enumerate_dags",
    "is_dag",
    "log_count_linear_extensions",
    "order_tiers",
    "to_dag",
    "topological_order",
    "to_networkx",
]


def acyclicity(A: torch.Tensor) -> torch.Tensor:
    """NOTEARS acyclicity measure ``h(A) = tr(exp(A o A)) - D``.

    ``h(A) = 0`` exactly when the weighted graph ``A`` has no directed cycle, and
    ``h(A) > 0`` otherwise; it is differentiable in ``A``.

    Parameters
    ----------
    A
        Weighted adjacency, shape ``(..., D, D)``, ``A[..., i, j]`` = edge i -> j.

    Returns
    -------
    torch.Tensor
        Shape ``(...)``: one value per matrix in the batch.
    """
    import torch

    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"acyclicity: A must have shape (..., D, D); found {tuple(A.shape)}")
    D = A.shape[-1]
    expm = torch.linalg.matrix_exp(A * A)
    return expm.diagonal(dim1=-2, dim2=-1).sum(-1) - D


def _as_numpy_adjacency(A) -> np.ndarray:
    return _square_matrix(A, "", "adjacency")


def topological_order(A) -> list[int] | None:
    """A topological order of the graph ``A`` (parents before children), or ``None``.

    :func:`networkx.topological_sort` on the graph with nodes ``0..D-1`` and edges added
    in row-major order. The order is deterministic: generation by generation (Kahn's
    algorithm with a first-in first-out queue), the roots by index, and within a later
    generation a node comes as its last parent is reached.

    Parameters
    ----------
    A
        Adjacency ``(D, D)`` (numpy or torch); non-zero entries are edges i -> j.

    Returns
    -------
    list of int or None
        Node indices in an order where every parent precedes its children, or
        ``None`` when the graph has a directed cycle (a self-loop included).

    Examples
    --------
    >>> topological_order(np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0]]))
    [1, 0, 2]
    >>> topological_order(np.array([[0, 1], [1, 0]])) is None
    True
    """
    A = _as_numpy_adjacency(A) != 0
    G = nx.DiGraph()
    G.add_nodes_from(range(A.shape[0]))
    G.add_edges_from((int(i), int(j)) for i, j in zip(*np.nonzero(A)))
    try:
        return list(nx.topological_sort(G))
    except nx.NetworkXUnfeasible:
        return None


def is_dag(A) -> bool:
    """Whether ``A`` (``(D, D)``, numpy or torch, non-zero = edge) is acyclic.

    A self-loop counts as a cycle.
    """
    return topological_order(A) is not None


def to_dag(edge_probs, threshold: float = 0.5) -> np.ndarray:
    """Threshold edge probabilities into a graph that is acyclic by construction.

    Edges with probability ``> threshold`` are kept; then, while the graph has a
    directed cycle, the least probable edge *on that cycle* is dropped. Edges that lie
    on no cycle are never removed.

    Parameters
    ----------
    edge_probs
        Posterior edge probabilities, shape ``(D, D)``, ``[i, j]`` = P(i -> j).
    threshold
        Inclusion threshold in ``[0, 1)``.

    Returns
    -------
    numpy.ndarray
        Integer 0/1 adjacency ``(D, D)``, acyclic, zero diagonal.
    """
    P = _as_numpy_adjacency(edge_probs).astype(float)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"to_dag: threshold must be in [0, 1); found {threshold}")
    if np.any(~np.isfinite(P)) or np.any((P < 0) | (P > 1)):
        raise ValueError("to_dag: edge_probs must be finite probabilities in [0, 1]")
    A = (P > threshold).astype(int)
    np.fill_diagonal(A, 0)
    G = nx.from_numpy_array(A, create_using=nx.DiGraph)
    while True:
        try:
            cycle = nx.find_cycle(G)
        except nx.NetworkXNoCycle:
            break
        i, j = min(((u, v) for u, v in cycle), key=lambda e: (P[e[0], e[1]], e))
        G.remove_edge(i, j)
        A[i, j] = 0
    return A


def to_networkx(
    adjacency,
    names: Sequence[str] | None = None,
    *,
    edge_attrs: Mapping[str, object] | None = None,
    node_attrs: Mapping[str, Sequence] | None = None,
) -> nx.DiGraph:
    """Build a ``networkx.DiGraph`` from an adjacency ``(D, D)`` (``[i, j]`` = i -> j).

    The one graph builder of the package: the facade's :meth:`~pyro_personax.PersonaX.graph`
    and the report's exports use it, and name the edge probability ``"p_edge"``.

    Parameters
    ----------
    adjacency
        0/1 or weighted adjacency ``(D, D)``; non-zero entries become edges.
    names
        Node names, length ``D`` (default ``0..D-1``).
    edge_attrs
        Optional attribute name -> ``(D, D)`` values; entry ``[i, j]`` is stored on edge
        i -> j (floats as ``float``, others as ``str``).
    node_attrs
        Optional attribute name -> ``D`` values, one per node.

    Examples
    --------
    >>> G = to_networkx(np.array([[0, 1], [0, 0]]), ["a", "b"], edge_attrs={"p_edge": np.full((2, 2), 0.8)})
    >>> G.edges["a", "b"]["p_edge"]
    0.8
    """
    A = _as_numpy_adjacency(adjacency)
    D = A.shape[0]
    names = list(range(D)) if names is None else list(names)
    if len(names) != D:
        raise ValueError(f"to_networkx: {len(names)} names for a graph of {D} nodes")
    edge_values = {}
    for key, values in (edge_attrs or {}).items():
        values = np.asarray(values)
        if values.shape != (D, D):
            raise ValueError(f"to_networkx: edge_attrs[{key!r}] has shape {values.shape}; expected ({D}, {D})")
        edge_values[key] = values
    G = nx.DiGraph()
    for i, name in enumerate(names):
        attrs = {}
        for key, values in (node_attrs or {}).items():
            if len(values) != D:
                raise ValueError(f"to_networkx: node_attrs[{key!r}] has {len(values)} values; expected {D}")
            attrs[key] = values[i]
        G.add_node(name, **attrs)
    for i, j in zip(*np.nonzero(A)):
        G.add_edge(names[i], names[j], **{key: _attr(values[i, j]) for key, values in edge_values.items()})
    return G


def _attr(value):
    return float(value) if isinstance(value, (int, float, np.integer, np.floating)) else str(value)


# --------------------------------------------------------------------------------------
# Orders, tiers and enumeration (pure numpy / networkx)
# --------------------------------------------------------------------------------------

#: Largest tier :func:`count_linear_extensions` accepts (its DP visits ``2**n`` subsets).
MAX_TIER_SIZE = 24
#: Largest graph :func:`enumerate_dags` accepts.
MAX_ENUMERATE_NODES = 6
# Number of labelled DAGs on D nodes (OEIS A003024), for error messages.
_N_DAGS = {5: 29_281, 6: 3_781_503, 7: 1_138_779_265}


def _square_matrix(x, func: str, name: str) -> np.ndarray:
    """``x`` as a numpy ``(D, D)`` array; a ``ValueError`` naming ``func``/``name`` if not."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        where = f"{func}: " if func else ""
        raise ValueError(f"{where}{name} must be a square (D, D) matrix; found shape {x.shape}")
    return x


def order_tiers(allowed) -> np.ndarray:
    """Finest ordered partition of the nodes compatible with a mask of allowed edges.

    The tiers are the strongly connected components of the directed graph whose
    edges are the allowed ones (diagonal ignored), numbered in a topological order of
    its condensation. Every allowed edge ``i -> j`` between two different tiers
    therefore goes from a lower tier to a higher one, and the nodes of one tier are
    mutually reachable through allowed edges. Among components that are not ordered
    by the allowed edges, the one holding the smallest node index comes first, so the
    numbering is deterministic.

    Parameters
    ----------
    allowed
        Boolean (or 0/1) mask ``(D, D)``; ``allowed[i, j]`` = the edge i -> j may exist.

    Returns
    -------
    numpy.ndarray
        Integer tier index per node, shape ``(D,)``, values ``0..T-1``.

    Examples
    --------
    A node that may only send edges, into three nodes that may all connect:

    >>> allowed = np.ones((4, 4), dtype=bool)
    >>> allowed[:, 0] = False
    >>> order_tiers(allowed)
    array([0, 1, 1, 1])
    """
    mask = _square_matrix(allowed, "order_tiers", "allowed") != 0
    D = mask.shape[0]
    G = nx.DiGraph()
    G.add_nodes_from(range(D))
    G.add_edges_from((int(i), int(j)) for i, j in zip(*np.nonzero(mask)) if i != j)
    C = nx.condensation(G)
    first = {c: min(C.nodes[c]["members"]) for c in C.nodes}
    tiers = np.zeros(D, dtype=int)
    for t, c in enumerate(nx.lexicographical_topological_sort(C, key=first.__getitem__)):
        tiers[list(C.nodes[c]["members"])] = t
    return tiers


def _check_tiers(tiers, D: int, func: str) -> np.ndarray:
    t = np.asarray(tiers)
    if t.shape != (D,):
        raise ValueError(f"{func}: tiers must have shape (D,) = ({D},); found {t.shape}")
    if t.dtype.kind not in "iub":
        if t.dtype.kind != "f" or not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            raise ValueError(f"{func}: tiers must be integers; found dtype {t.dtype}")
    return t.astype(np.int64)


def _count_orders_of_tier(succ: list[int]) -> int:
    """Linear extensions of the graph on ``n = len(succ)`` nodes with child bitmasks ``succ``.

    ``g[S]`` = number of orders of the node set ``S`` that respect the edges inside
    ``S``; the last node of such an order is a node of ``S`` with no child in ``S``, so
    ``g[S] = sum over those v of g[S - {v}]``. Subsets are processed layer by layer
    (by their number of nodes) so that each layer is one set of numpy operations per
    node. A cycle gives 0 by itself; a self-loop is checked first.

    Counts are accumulated in ``uint64``, which is exact for ``n <= 20``
    (``20! < 2**63``). For ``21 <= n <= 24`` the ``uint64`` sums wrap, i.e. they give
    the count modulo ``2**64``; a parallel ``float64`` DP (relative error below
    ``n**2 * 2**-53``, far less than ``2**63`` in absolute terms for ``n <= 24``) picks
    the unique integer with that residue.
    """
    n = len(succ)
    if any(succ[v] >> v & 1 for v in range(n)):  # a self-loop
        return 0
    if n <= 1:
        return 1
    masks = np.arange(1 << n, dtype=np.int64)
    size = np.bitwise_count(masks).astype(np.uint8)
    by_size = np.argsort(size, kind="stable")  # radix sort on uint8
    bounds = np.searchsorted(size[by_size], np.arange(n + 2))
    del masks, size
    wide = n > 20
    g = np.zeros(1 << n, dtype=np.uint64)
    g[0] = 1
    f = None
    if wide:
        f = np.zeros(1 << n, dtype=np.float64)
        f[0] = 1.0
    for k in range(1, n + 1):
        S = by_size[bounds[k] : bounds[k + 1]]
        acc = np.zeros(S.shape[0], dtype=np.uint64)
        acc_f = np.zeros(S.shape[0], dtype=np.float64) if wide else None
        for v in range(n):
            bit = 1 << v
            last = (S & (bit | succ[v])) == bit  # v in S and none of v's children in S
            prev = S ^ bit
            acc += np.where(last, g[prev], np.uint64(0))
            if wide:
                acc_f += np.where(last, f[prev], 0.0)
        g[S] = acc
        if wide:
            f[S] = acc_f
    residue = int(g[-1])
    if not wide:
        return residue
    approx = int(f[-1])
    return residue + ((approx - residue + 2**63) >> 64 << 64)


def count_linear_extensions(adjacency, tiers=None) -> int:
    """Number of node orders compatible with a graph (and optionally with tiers).

    Counts the permutations of the ``D`` nodes in which every edge's parent precedes
    its child and, when ``tiers`` is given, every node of a lower tier precedes every
    node of a higher tier. The count is the product over tiers of the count for the
    subgraph induced by the tier; it is 0 when an edge goes from a higher tier to a
    lower one, and 0 for a graph with a directed cycle (a self-loop counts as one).
    Each tier is counted exactly by a dynamic programme over its ``2**n`` node
    subsets, so a tier may have at most ``MAX_TIER_SIZE = 24`` nodes (working memory
    about ``40 * 2**n`` bytes for a tier of ``n`` nodes).

    Parameters
    ----------
    adjacency
        Adjacency ``(D, D)`` (numpy or torch); non-zero ``[i, j]`` = edge i -> j.
    tiers
        Optional integer tier per node, shape ``(D,)``; any integer labels, ordered by
        value (e.g. the output of :func:`order_tiers`). Default: one tier.

    Returns
    -------
    int
        The exact count, as a Python ``int`` (it can exceed ``2**64``).
    """
    func = "count_linear_extensions"
    A = _square_matrix(adjacency, func, "adjacency") != 0
    D = A.shape[0]
    t = np.zeros(D, dtype=np.int64) if tiers is None else _check_tiers(tiers, D, func)
    labels, sizes = np.unique(t, return_counts=True)
    if D and sizes.max() > MAX_TIER_SIZE:
        which = "the graph" if tiers is None else f"tier {labels[sizes.argmax()]}"
        raise ValueError(
            f"{func}: {which} has {sizes.max()} nodes; at most {MAX_TIER_SIZE} nodes per "
            f"tier are supported (the count visits 2**n subsets of each tier); pass finer "
            f"tiers"
        )
    parents, children = np.nonzero(A)
    if np.any(t[parents] > t[children]):
        return 0
    total = 1
    for label in labels:
        nodes = np.flatnonzero(t == label)
        sub = A[np.ix_(nodes, nodes)]
        weights = 1 << np.arange(len(nodes), dtype=np.int64)
        succ = [int(x) for x in sub.astype(np.int64) @ weights]
        total *= _count_orders_of_tier(succ)
        if total == 0:
            return 0
    return total


def log_count_linear_extensions(adjacency, tiers=None) -> float:
    """Natural log of :func:`count_linear_extensions` (``-inf`` when the count is 0).

    Same arguments and limits; the count is computed exactly and its log taken at the
    end, so the result is accurate even where the count exceeds the float64 range.
    """
    count = count_linear_extensions(adjacency, tiers)
    return math.log(count) if count > 0 else -math.inf


def enumerate_dags(allowed, required=None) -> np.ndarray:
    """All DAGs whose edges lie within ``allowed`` and that contain ``required``.

    Graphs are grown one node at a time: a DAG on nodes ``0..k-1`` is extended by node
    ``k`` with a parent set ``P`` and a child set ``C`` (disjoint, among ``0..k-1``),
    which keeps it acyclic exactly when no node of ``C`` reaches a node of ``P``. The
    check is vectorised over all (graph, ``P``, ``C``) combinations with reachability
    bitmasks, and the ``allowed``/``required`` constraints prune every step.

    The number of DAGs grows super-exponentially in ``D`` (1, 3, 25, 543, 29,281 and
    3,781,503 for ``D = 1..6`` with every edge allowed), so ``D`` is limited to
    ``MAX_ENUMERATE_NODES = 6`` (the full 6-node set is a 136 MB array).

    Parameters
    ----------
    allowed
        Boolean (or 0/1) mask ``(D, D)``; ``allowed[i, j]`` = the edge i -> j may
        exist. The diagonal is ignored (self-loops are never produced).
    required
        Optional boolean mask ``(D, D)`` of edges every graph must contain; each must
        be allowed and off the diagonal. Required edges that form a cycle give no graph.

    Returns
    -------
    numpy.ndarray
        ``int8`` array ``(G, D, D)`` of 0/1 adjacencies, ``[g, i, j]`` = edge i -> j,
        all distinct and acyclic. The order is deterministic: graphs are sorted by
        their restriction to nodes ``0..k-1`` for growing ``k``, and within that by the
        edges of node ``k`` (none first), so with no required edge the empty graph
        comes first.
    """
    func = "enumerate_dags"
    allow = _square_matrix(allowed, func, "allowed") != 0
    D = allow.shape[0]
    if D > MAX_ENUMERATE_NODES:
        raise ValueError(
            f"{func}: at most {MAX_ENUMERATE_NODES} nodes are supported; found D={D} (the "
            f"number of DAGs grows super-exponentially: {_N_DAGS[6]:,} DAGs at 6 nodes, "
            f"{_N_DAGS[7]:,} at 7)"
        )
    np.fill_diagonal(allow, False)
    if required is None:
        req = np.zeros((D, D), dtype=bool)
    else:
        req = _square_matrix(required, func, "required") != 0
        if req.shape != (D, D):
            raise ValueError(
                f"{func}: required must have the shape of allowed {(D, D)}; found {req.shape}"
            )
        bad = req & ~allow
        if bad.any():
            edges = [(int(i), int(j)) for i, j in zip(*np.nonzero(bad))]
            raise ValueError(
                f"{func}: required edges must be allowed and off the diagonal; found "
                f"required but not allowed (parent, child) = {edges}"
            )
    adj = np.zeros((1, 0, 0), dtype=np.int8)  # the single (empty) graph on 0 nodes
    for k in range(D):
        # Candidate edges of node k: state 0 = none, 1 = u -> k (parent), 2 = k -> u (child),
        # for each earlier node u; u = 0 varies fastest, so "all none" is candidate 0.
        states = np.indices((3,) * k).reshape(k, -1)[::-1] if k else np.zeros((0, 1), int)
        is_parent, is_child = states == 1, states == 2
        earlier = np.arange(k)
        ok = (
            np.all(~is_parent | allow[earlier, k][:, None], axis=0)
            & np.all(~is_child | allow[k, earlier][:, None], axis=0)
            & np.all(is_parent | ~req[earlier, k][:, None], axis=0)
            & np.all(is_child | ~req[k, earlier][:, None], axis=0)
        )
        is_parent, is_child = is_parent[:, ok], is_child[:, ok]
        weights = 1 << earlier.astype(np.int64)
        parent_bits = weights @ is_parent  # (M,)
        child_bits = weights @ is_child  # (M,)
        # reach[g, u] = bitmask of nodes reachable from u (u included) in graph g.
        n_graphs = adj.shape[0]
        R = adj.astype(bool) | np.eye(k, dtype=bool)
        for _ in range(max(k - 1, 0).bit_length()):
            R = np.matmul(R.astype(np.int32), R.astype(np.int32)) > 0
        # Bitmasks over k <= 5 nodes fit in uint8, which keeps the (graphs, candidates)
        # temporaries small (about 20 MB at the last step of D = 6).
        reach = (R.astype(np.int64) @ weights).astype(np.uint8)  # (n_graphs, k)
        # reach_of_set[g, C] = union of reach[g, u] over u in C, for all 2**k sets C.
        reach_of_set = np.zeros((n_graphs, 1 << k), dtype=np.uint8)
        for u in range(k):
            reach_of_set[:, 1 << u : 2 << u] = reach_of_set[:, : 1 << u] | reach[:, u : u + 1]
        acyclic = (reach_of_set[:, child_bits] & parent_bits.astype(np.uint8)) == 0
        gi, ci = np.nonzero(acyclic)
        new = np.empty((gi.shape[0], k + 1, k + 1), dtype=np.int8)
        new[:, k, k] = 0
        for start in range(0, gi.shape[0], 1 << 20):  # chunks bound the gather temporaries
            rows = slice(start, start + (1 << 20))
            new[rows, :k, :k] = adj[gi[rows]]
            new[rows, :k, k] = is_parent.T[ci[rows]]
            new[rows, k, :k] = is_child.T[ci[rows]]
        adj = new
    return adj


#: Most nodes :func:`best_dag` searches (its tables have ``D 2^D`` entries).
MAX_BEST_DAG_NODES = 16


def best_dag(node_scores, tiers=None) -> tuple[np.ndarray, np.ndarray, float]:
    """The DAG of highest decomposable score, exactly, by dynamic programming over subsets.

    The score of a DAG is ``sum_j S[parents(j), j]``. The search first takes, for every
    node and every set of candidate parents, the best parent set inside it (a running
    maximum over subsets), then the best order, as the best last node of every set of
    nodes (Silander & Myllymaki, UAI 2006). Work grows as ``D^2 2^D``, memory as ``D 2^D``.

    Parameters
    ----------
    node_scores
        ``(2^D, D)`` array: ``[b, j]`` = score of node ``j`` with the parent set whose
        bitmask is ``b`` (bit ``i`` = node ``i``). ``-inf`` forbids a parent set; entries
        whose parent set holds ``j`` itself are ignored.
    tiers
        Optional ``(D,)`` integer tiers: every node of a lower tier comes before every
        node of a higher one in the returned order (edges against the tiers should be
        forbidden in ``node_scores``; the search only orders by them).

    Returns
    -------
    tuple
        ``(adjacency, order, score)``: the DAG ``(D, D)`` int8 (``[i, j]`` = edge
        ``i -> j``), a topological order ``(D,)`` of it, and its score (``-inf`` when no
        DAG has a finite score).

    Examples
    --------
    >>> S = np.zeros((4, 2)); S[1, 1] = 2.0  # node 1 gains 2 from the parent 0
    >>> A, order, score = best_dag(S)
    >>> A.tolist(), order.tolist(), score
    ([[0, 1], [0, 0]], [0, 1], 2.0)
    """
    S = np.asarray(node_scores, dtype=float)
    if S.ndim != 2 or S.shape[0] != 1 << S.shape[1]:
        raise ValueError(f"best_dag: node_scores must have shape (2^D, D); found {S.shape}")
    D = S.shape[1]
    if D > MAX_BEST_DAG_NODES:
        raise ValueError(f"best_dag: at most {MAX_BEST_DAG_NODES} nodes are supported; found D={D}")
    if np.isnan(S).any() or np.isposinf(S).any():
        raise ValueError("best_dag: node_scores must be finite or -inf; found NaN or +inf")
    t = np.zeros(D, dtype=np.int64) if tiers is None else _check_tiers(tiers, D, "best_dag")
    codes = np.arange(1 << D)
    best_val, best_arg = np.empty((D, 1 << D)), np.empty((D, 1 << D), dtype=np.int64)
    for j in range(D):  # best parent set of j inside every candidate set
        val = np.where((codes >> j) & 1 == 1, -np.inf, S[:, j])
        arg = codes.copy()
        for k in range(D):
            sets = codes[(codes >> k) & 1 == 1]
            sub = sets ^ (1 << k)
            better = val[sub] > val[sets]
            val[sets[better]], arg[sets[better]] = val[sub[better]], arg[sub[better]]
        best_val[j], best_arg[j] = val, arg
    score, last = np.full(1 << D, -np.inf), np.zeros(1 << D, dtype=np.int64)
    score[0] = 0.0
    nodes = np.arange(D)
    for s in range(1, 1 << D):  # every subset after its subsets
        members = nodes[(s >> nodes) & 1 == 1]
        members = members[t[members] == t[members].max()]  # the last node is of the highest tier present
        rest = s ^ (1 << members)
        cand = score[rest] + best_val[members, rest]
        k = int(np.argmax(cand))
        score[s], last[s] = cand[k], members[k]
    A, order, s = np.zeros((D, D), dtype=np.int8), [], (1 << D) - 1
    while s:
        j = int(last[s])
        s ^= 1 << j
        parents = int(best_arg[j, s])
        A[[i for i in range(D) if (parents >> i) & 1], j] = 1
        order.append(j)
    return A, np.asarray(order[::-1], dtype=np.int64), float(score[-1])
