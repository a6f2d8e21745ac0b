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

from collections.abc import Sequence
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

if TYPE_CHECKING:  # torch is imported by the functions that need it
    import torch

__all__ = [
    "acyclicity",
    "is_dag",
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
    if hasattr(A, "detach"):  # a torch tensor
        A = A.detach().cpu().numpy()
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be a square (D, D) matrix; found shape {A.shape}")
    return A


def topological_order(A) -> list[int] | None:
    """A topological order of the graph ``A`` (parents before children), or ``None``.

    Parameters
    ----------
    A
        Adjacency ``(D, D)`` (numpy or torch); non-zero entries are edges i -> j.

    Returns
    -------
    list of int or None
        Node indices in an order where every parent precedes its children, or
        ``None`` when the graph has a directed cycle.
    """
    A = _as_numpy_adjacency(A) != 0
    D = A.shape[0]
    indegree = A.sum(axis=0).astype(int)
    ready = [j for j in range(D) if indegree[j] == 0]
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in np.flatnonzero(A[i]):
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(int(j))
    return order if len(order) == D else None


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
    edge_probs=None,
    weights=None,
) -> nx.DiGraph:
    """Build a ``networkx.DiGraph`` from an adjacency ``(D, D)`` (``[i, j]`` = i -> j).

    Parameters
    ----------
    adjacency
        0/1 or weighted adjacency ``(D, D)``; non-zero entries become edges.
    names
        Node names, length ``D`` (default ``0..D-1``).
    edge_probs
        Optional ``(D, D)`` probabilities stored as the edge attribute ``probability``.
    weights
        Optional ``(D, D)`` values stored as the edge attribute ``weight``.
    """
    A = _as_numpy_adjacency(adjacency)
    D = A.shape[0]
    names = list(range(D)) if names is None else list(names)
    if len(names) != D:
        raise ValueError(f"to_networkx: {len(names)} names for a graph of {D} nodes")
    G = nx.DiGraph()
    G.add_nodes_from(names)
    P = None if edge_probs is None else _as_numpy_adjacency(edge_probs)
    W = None if weights is None else _as_numpy_adjacency(weights)
    for i, j in zip(*np.nonzero(A)):
        attrs = {}
        if P is not None:
            attrs["probability"] = float(P[i, j])
        if W is not None:
            attrs["weight"] = float(W[i, j])
        G.add_edge(names[i], names[j], **attrs)
    return G
