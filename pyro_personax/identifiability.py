"""What the data can decide about a latent graph: edge classes, block graphs, pinned latents.

Each modality's decoders read the shared block and that modality's own block
(:meth:`~pyro_personax.layout.LatentLayout.decoder_inputs`). An edge whose parent every
decoder of its child also reads (both in one block, or a shared parent) can be taken up
by a decoder, so the likelihood does not decide it; only *cross-modal* edges (between
two modality blocks) are identified, under the conditions of Sun et al. (ICLR 2025,
arXiv 2411.06518, Theorem 4.4 with Condition 4.3). Their Condition 4.3 also needs every
modality latent to be tied to other modalities: a latent with no cross-modal neighbour
can be mixed with its block partners without changing the cross-modal graph, so its
identity is not pinned (:func:`unpinned_latents`).

Functions here work on numpy arrays in the layout's latent order (adjacency ``[i, j]`` =
i -> j, see :mod:`pyro_personax.graph`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyro_personax.graph import to_dag
from pyro_personax.layout import SHARED, LatentLayout

__all__ = [
    "EDGE_SELECTIONS",
    "select_edges",
    "block_probabilities",
    "LINK_DIRECTIONS",
    "check_link_direction",
    "latent_block_probabilities",
    "thresholded_graph",
    "unpinned_latents",
    "unpinned_warning",
    "UNDECIDED_REASON",
    "measurement_map_note",
]

EDGE_SELECTIONS = ("identified", "undecided", "all")
LINK_DIRECTIONS = ("either", "out", "in")

#: One sentence on why the non-cross-modal edges are reported apart.
UNDECIDED_REASON = (
    "Edges inside one block or from the shared block are not decided by the data: the decoders that "
    "read the child also read the parent and can take up the edge's mechanism, so their probability "
    "reflects the edge prior, the penalty and the fit's start (Sun et al., ICLR 2025)."
)


def _check(layout: LatentLayout, probs, name: str = "probs") -> np.ndarray:
    if not isinstance(layout, LatentLayout):
        raise TypeError(f"layout: expected a LatentLayout; found {type(layout).__name__}")
    P = np.asarray(probs, dtype=float)
    D = layout.latent_dim
    if P.shape[-2:] != (D, D):
        raise ValueError(f"{name}: expected shape (..., {D}, {D}) for the layout's {D} latents; found {P.shape}")
    return P


def _check_draws(layout: LatentLayout, draws) -> np.ndarray:
    """Whole-graph draws ``(S, D, D)`` for the layout's ``D`` latents, or a ValueError."""
    E = _check(layout, draws, "draws")
    if E.ndim != 3:
        raise ValueError(f"draws: expected shape (S, D, D); found {E.shape}")
    return E


def select_edges(layout: LatentLayout, probs, edges: str = "identified") -> np.ndarray:
    """Edge probabilities ``(D, D)`` restricted to a class of edges (others set to 0).

    Parameters
    ----------
    layout
        The :class:`~pyro_personax.layout.LatentLayout`.
    probs
        ``(D, D)`` edge probabilities.
    edges
        ``"identified"`` (cross-modal), ``"undecided"`` (every other class) or ``"all"``.
    """
    if edges not in EDGE_SELECTIONS:
        raise ValueError(f"edges: expected one of {EDGE_SELECTIONS}; found {edges!r}")
    P = _check(layout, probs)
    if edges == "all":
        return P.copy()
    identified = layout.identified_mask()
    return np.where(identified if edges == "identified" else ~identified, P, 0.0)


def block_probabilities(layout: LatentLayout, draws) -> pd.DataFrame:
    """``P(at least one edge from block A to block B)`` from whole-graph draws.

    Parameters
    ----------
    layout
        The :class:`~pyro_personax.layout.LatentLayout`.
    draws
        0/1 graphs ``(S, D, D)`` drawn from the posterior (pool chains by stacking).

    Returns
    -------
    pandas.DataFrame
        Blocks x blocks (index ``parent_block``, columns ``child_block``), the share of
        draws with an edge from a latent of the row block to one of the column block
        (within a block: an edge inside it).
    """
    E = _check_draws(layout, draws)
    blocks = _blocks_present(layout)
    out = np.zeros((len(blocks), len(blocks)))
    for a, pa in enumerate(blocks):
        for b, ch in enumerate(blocks):
            sub = E[:, layout.block_slice(pa), layout.block_slice(ch)]
            out[a, b] = float((sub.reshape(len(E), -1) != 0).any(axis=1).mean()) if sub.size else 0.0
    return pd.DataFrame(out, index=pd.Index(blocks, name="parent_block"), columns=pd.Index(blocks, name="child_block"))


def _blocks_present(layout: LatentLayout) -> list[str]:
    """Block names in layout order, without an empty shared block."""
    return [b for b in layout.block_names if (b != SHARED or layout.shared_dim > 0)]


def check_link_direction(direction: str) -> str:
    """``direction`` if it is one of :data:`LINK_DIRECTIONS`, else a ValueError naming it."""
    if direction not in LINK_DIRECTIONS:
        raise ValueError(f"direction: expected one of {LINK_DIRECTIONS}; found {direction!r}")
    return direction


def latent_block_probabilities(layout: LatentLayout, draws, direction: str = "either", weights=None) -> pd.DataFrame:
    """``P(latent i has at least one edge with a latent of block B)`` from whole-graph draws.

    Where a modality latent is pinned (it has a cross-modal neighbour, Sun et al.'s
    Condition 4.3) but its partner in another modality block is not, or the fit leaves
    the direction of a lone cross-modal pair undecided, the single edge probabilities spread over
    the partner's block and over both directions; whether the latent is linked with
    that block at all is unchanged by a map inside the partner's block and by the
    direction. Pooled over chains, the cell needs only latent ``i`` matched across
    chains, not the latents of ``B``. A cell collects every edge between ``i`` and the
    ``|B|`` latents of ``B`` in both directions, so spurious edges raise it towards 1:
    a low value is evidence of no link, a high one only where the latent's block
    partners stay low.

    Parameters
    ----------
    layout
        The :class:`~pyro_personax.layout.LatentLayout`.
    draws
        ``(S, D, D)`` 0/1 whole graphs from the posterior; stack the chains' draws to pool them.
    direction
        ``"either"`` (an edge ``i -> b`` or ``b -> i`` for some ``b`` in ``B``), ``"out"``
        (``i -> b``: ``i`` has a child in ``B``) or ``"in"`` (``b -> i``: a parent in ``B``).
    weights
        Optional ``(S,)`` non-negative weights of the graphs (for instance the
        probabilities of an exact posterior's enumerated DAGs), normalised here;
        default: equal.

    Returns
    -------
    pandas.DataFrame
        ``(D, blocks)``, index ``latent`` (names), columns ``block``: the share of draws
        with such an edge. The column of a latent's own block counts edges inside it
        (not decided by the data); between a modality latent and another modality block
        the cell is decided by the data when the latent is pinned.
    """
    E = _check_draws(layout, draws)
    check_link_direction(direction)
    E = E != 0
    linked = {"out": E, "in": E.transpose(0, 2, 1), "either": E | E.transpose(0, 2, 1)}[direction]
    if weights is None:
        w = np.full(len(E), 1.0 / len(E))
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(E),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights: expected {len(E)} finite non-negative values, not all 0; found shape {w.shape}")
        w = w / w.sum()
    blocks = _blocks_present(layout)
    out = np.stack([w @ linked[:, :, layout.block_slice(b)].any(axis=2) for b in blocks], axis=1)
    return pd.DataFrame(out, index=pd.Index(layout.names, name="latent"), columns=pd.Index(blocks, name="block"))


def thresholded_graph(layout: LatentLayout, probs, mask, threshold: float = 0.5) -> np.ndarray:
    """The edges of ``mask`` with ``P > threshold``, made acyclic (:func:`~pyro_personax.graph.to_dag`).

    Parameters
    ----------
    layout, probs
        As in :func:`select_edges`: the layout and ``(D, D)`` edge probabilities.
    mask
        ``(D, D)`` bool: the cells that may hold an edge (others count as 0).
    threshold
        Probability above which an edge counts.

    Returns
    -------
    numpy.ndarray
        ``(D, D)`` bool adjacency, ``[i, j]`` = i -> j.
    """
    P = _check(layout, probs)
    return to_dag(np.where(mask, P, 0.0), threshold) != 0


def unpinned_latents(layout: LatentLayout, probs, threshold: float = 0.5) -> list[str]:
    """Modality latents with no cross-modal neighbour in the thresholded graph.

    The necessary part of Sun et al.'s Condition 4.3: a modality latent without a
    cross-modal edge (in either direction) with ``P > threshold`` after the graph is
    made acyclic can be mixed with the other latents of its block without changing the
    cross-modal graph, so the data do not pin which latent it is.

    Parameters
    ----------
    layout
        The :class:`~pyro_personax.layout.LatentLayout`.
    probs
        ``(D, D)`` edge probabilities.
    threshold
        Probability above which an edge counts.

    Returns
    -------
    list of str
        Names of the unpinned modality latents, in layout order.
    """
    dag = thresholded_graph(layout, probs, layout.identified_mask(), threshold)
    linked = dag.any(axis=0) | dag.any(axis=1)
    blocks = np.array(layout.block_of)
    return [n for n, b, ok in zip(layout.names, blocks, linked) if b != SHARED and not ok]


def unpinned_warning(names) -> str:
    """The one sentence every output uses to warn about :func:`unpinned_latents` ``names``."""
    return (f"latents {', '.join(names)} have no cross-modal neighbour with P > 0.5: the data do not pin which "
            "latent of their block each one is (Sun et al., Condition 4.3)")


def measurement_map_note(layout: LatentLayout) -> str | None:
    """The sentence every output adds when ``layout`` declares a measurement map; ``None`` without one."""
    if not layout.measurement_map:
        return None
    return (f"a measurement map is assumed for {', '.join(layout.measurement_map)}: the within-block edges it "
            "separates count as identified only if the map is true (Yao et al., ICLR 2024)")
