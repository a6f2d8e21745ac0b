"""Recovery metrics: latents (MCC, held-out R^2) and graphs (SHD, AUROC, calibration).

Latent metrics compare learned latents ``(N, D_learned)`` with true latents
``(N, D)``. Learned latents are identified only up to permutation and invertible
component-wise maps, so they are first matched to the true ones
(:func:`match_latents`, Hungarian matching on absolute correlations); graph metrics are
then computed on the learned graph re-indexed by that matching
(:func:`permute_adjacency`).

Adjacency matrices follow the convention of :mod:`pyro_personax.graph`:
``A[i, j]`` is the edge parent ``i`` -> child ``j``. Edge scores exclude the diagonal
and, when a ``mask`` is given, the cells where ``mask`` is ``False`` (e.g. edges
forbidden by the latent layout, whose probability is 0 by construction).

The latent metrics live in :mod:`pyro_personax.metrics.latent`, the graph metrics in
:mod:`pyro_personax.metrics.graph`; :func:`evaluate_recovery` scores both at once. The
package depends on numpy, scipy, pandas, scikit-learn, networkx and causal-learn only
(no torch).
"""

from __future__ import annotations

import numpy as np

from pyro_personax.metrics._checks import _as_binary, _as_square
from pyro_personax.metrics.graph import (
    COMPELLED,
    REVERSIBLE,
    cpdag,
    edge_auprc,
    edge_auroc,
    edge_brier,
    edge_calibration,
    edge_log_loss,
    edge_probability_report,
    expected_shd,
    orientations,
    permute_adjacency,
    shd,
)
from pyro_personax.metrics.latent import (
    MCCResult,
    R2Result,
    block_r2,
    correlation_matrix,
    match_latents,
    mcc,
    r2,
)

__all__ = [
    "MCCResult",
    "R2Result",
    "correlation_matrix",
    "match_latents",
    "mcc",
    "r2",
    "block_r2",
    "permute_adjacency",
    "shd",
    "cpdag",
    "orientations",
    "COMPELLED",
    "REVERSIBLE",
    "expected_shd",
    "edge_auroc",
    "edge_auprc",
    "edge_calibration",
    "edge_brier",
    "edge_log_loss",
    "edge_probability_report",
    "evaluate_recovery",
]


def evaluate_recovery(
    learned,
    true,
    edge_probs,
    true_adjacency,
    *,
    threshold: float = 0.5,
    method: str = "spearman",
    train=None,
    test=None,
    seed: int = 0,
    identified=None,
    learned_blocks=None,
    true_blocks=None,
    with_r2: bool = True,
    graph_samples=None,
) -> dict:
    """All recovery metrics at once, graph metrics after matching latents.

    Parameters
    ----------
    learned
        ``(N, D_learned)`` learned latents.
    true
        ``(N, D)`` true latents.
    edge_probs
        ``(D_learned, D_learned)`` learned edge probabilities, or ``None`` (e.g. for a
        baseline without a graph).
    true_adjacency
        0/1 ``(D, D)``.
    threshold
        Edge probability above which an edge is kept for :func:`shd` (no acyclicity
        repair here, to keep this module free of torch; pass the output of
        :func:`pyro_personax.graph.to_dag` as ``edge_probs`` to score a repaired graph).
    method
        Correlation for the matching and MCC.
    train, test
        Rows for :func:`r2` (default: its random split).
    seed
        Seed passed to :func:`r2`.
    identified
        Optional boolean ``(D, D)`` in the true latents' order: the edges the data
        decide (e.g. ``truth.layout.identified_mask()``, the cross-modal edges). The
        graph metrics are then also reported on those cells (``*_identified``) and,
        apart, on the other off-diagonal cells (``*_undecided``).
    learned_blocks, true_blocks
        Optional block name of every learned and true latent: latents are then matched
        within blocks (:func:`match_latents`), for the MCC and the graph metrics.
    with_r2
        Compute ``r2`` (per true latent a Gaussian-process regression, the costly part); ``False``: NaN.
    graph_samples
        Optional 0/1 graphs ``(S, D_learned, D_learned)`` drawn from the posterior (e.g.
        the chains' draws pooled): adds ``expected_shd`` (:func:`expected_shd` after
        matching) and, with ``identified``, ``expected_shd_<part>``.

    Returns
    -------
    dict
        ``mcc``, ``r2``, ``permutation`` and, when ``edge_probs`` is given, ``shd``,
        ``edge_auroc`` and ``edge_auprc`` (NaN when undefined); with ``identified``,
        ``shd_<part>``, ``edge_auroc_<part>``, ``ece_<part>``, ``num_true_<part>`` and
        ``recovered_<part>`` (true edges with ``P > threshold``; with ``graph_samples``
        also ``expected_shd_<part>``) for ``<part>`` in
        ``identified``, ``undecided``, and ``mcc_pinned``: the MCC over the true latents
        with at least one identified true edge (those Sun et al.'s Condition 4.3 pins;
        NaN when there is none).
    """
    m = mcc(learned, true, method, learned_blocks=learned_blocks, true_blocks=true_blocks)
    fit = r2(learned, true, train=train, test=test, seed=seed).value if with_r2 else np.nan
    out = {"mcc": m.value, "r2": fit, "permutation": m.permutation}
    if identified is not None:
        T = _as_binary(true_adjacency, "true_adjacency").astype(bool)
        T &= _as_binary(identified, "identified").astype(bool)
        pinned = T.any(0) | T.any(1)
        out["mcc_pinned"] = float(np.abs(m.correlations[pinned]).mean()) if pinned.any() else np.nan
    if edge_probs is not None:
        P = permute_adjacency(_as_square(edge_probs, "edge_probs"), m.permutation)
        G = (P > threshold) & ~np.eye(len(P), dtype=bool)
        out["shd"] = shd(G.astype(float), true_adjacency)
        T = _as_binary(true_adjacency, "true_adjacency")
        has_both = 0 < T[~np.eye(len(T), dtype=bool)].sum() < len(T) * (len(T) - 1)
        out["edge_auroc"] = edge_auroc(P, T.astype(float)) if has_both else np.nan
        out["edge_auprc"] = edge_auprc(P, T.astype(float)) if has_both else np.nan
        if identified is not None:
            out.update(_graph_scores_by_part(P, T, G, _as_binary(identified, "identified").astype(bool)))
    if graph_samples is not None:
        out.update(_expected_shd_scores(graph_samples, m.permutation, true_adjacency, identified))
    return out


def _expected_shd_scores(graph_samples, permutation, true_adjacency, identified) -> dict:
    """``expected_shd`` of matched ``graph_samples`` and, with ``identified``, on each part's cells."""
    samples = np.asarray(graph_samples)
    T = _as_binary(true_adjacency, "true_adjacency").astype(bool)
    if samples.ndim != 3 or samples.shape[1] != samples.shape[2] or samples.shape[1] < len(T):
        raise ValueError(f"graph_samples: expected 0/1 graphs (S, D_learned, D_learned); found shape {samples.shape}")
    if not np.isin(samples, (0, 1)).all():
        raise ValueError("graph_samples: expected 0/1 graph draws; found other values (edge probabilities?)")
    S = permute_adjacency(samples, permutation).astype(bool)
    out = {"expected_shd": expected_shd(S.astype(float), T.astype(float))}
    if identified is not None:
        off = ~np.eye(len(T), dtype=bool)
        mask = _as_binary(identified, "identified").astype(bool) & off
        for part, cells in (("identified", mask), ("undecided", ~mask & off)):
            out[f"expected_shd_{part}"] = expected_shd((S & cells).astype(float), (T & cells).astype(float))
    return out


def _graph_scores_by_part(P: np.ndarray, T: np.ndarray, G: np.ndarray, identified: np.ndarray) -> dict:
    """SHD, AUROC, ECE and recovered true edges on the identified cells and, apart, the others."""
    if identified.shape != T.shape:
        raise ValueError(f"identified: expected shape {T.shape}; found {identified.shape}")
    off = ~np.eye(len(T), dtype=bool)
    out = {}
    for part, mask in (("identified", identified & off), ("undecided", ~identified & off)):
        t = T[mask].astype(bool)
        out[f"num_true_{part}"] = int(t.sum())
        out[f"recovered_{part}"] = int((G[mask] & t).sum())
        out[f"shd_{part}"] = shd((G & mask).astype(float), (T.astype(bool) & mask).astype(float))
        both = 0 < t.sum() < t.size
        out[f"edge_auroc_{part}"] = edge_auroc(P, T.astype(float), mask=mask) if both else np.nan
        out[f"ece_{part}"] = edge_calibration(P, T.astype(float), mask=mask)[1] if mask.any() else np.nan
    return out
