"""Graph metrics: learned adjacencies or edge probabilities against a true DAG.

Adjacency matrices follow the convention of :mod:`pyro_personax.graph`: ``A[i, j]`` is
the edge parent ``i`` -> child ``j``. Edge scores exclude the diagonal and, when a
``mask`` is given, the cells where ``mask`` is ``False`` (e.g. edges forbidden by the
latent layout, whose probability is 0 by construction).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from pyro_personax.checks import check_int
from pyro_personax.metrics._checks import _as_binary, _as_square, _edge_cells

__all__ = [
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
]

LOG_LOSS_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] in the log loss


def permute_adjacency(A, perm) -> np.ndarray:
    """Re-index a learned adjacency (or edge-probability matrix) to the true latents.

    Parameters
    ----------
    A
        ``(D_learned, D_learned)`` or a stack ``(..., D_learned, D_learned)``.
    perm
        ``(D,)`` from :func:`match_latents`: learned ``perm[j]`` matches true ``j``.

    Returns
    -------
    numpy.ndarray
        ``(..., D, D)`` with ``out[..., j, k] = A[..., perm[j], perm[k]]``.
    """
    A = np.asarray(A)
    perm = np.asarray(perm, dtype=int)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A: expected (..., D, D); found shape {A.shape}")
    if (
        perm.ndim != 1
        or len(np.unique(perm)) != len(perm)
        or perm.min(initial=0) < 0
        or (perm.max(initial=-1) >= A.shape[-1])
    ):
        raise ValueError(f"perm: expected distinct indices in [0, {A.shape[-1]}); found {perm}")
    return A[..., perm[:, None], perm[None, :]]


def shd(estimate, truth) -> int:
    """Structural Hamming distance between two directed graphs.

    Counted over unordered node pairs ``{i, j}``: a pair costs 1 when its edge state
    differs (missing edge, extra edge, or **a reversed edge: 1**, the causal-discovery
    convention), so ``shd <= D (D - 1) / 2``. A bidirected estimate (both ``i -> j`` and
    ``j -> i``) against a single true edge also costs 1.

    Parameters
    ----------
    estimate, truth
        0/1 adjacencies ``(D, D)``, ``[i, j]`` = parent i -> child j.

    Returns
    -------
    int
    """
    E, T = _as_binary(estimate, "estimate"), _as_binary(truth, "truth")
    if E.shape != T.shape:
        raise ValueError(f"estimate and truth: shapes differ, {E.shape} and {T.shape}")
    differs = (E != T) | (E.T != T.T)
    return int(np.triu(differs, k=1).sum())


def cpdag(adjacency) -> np.ndarray:
    """The completed partially directed graph (CPDAG) of a DAG's Markov equivalence class.

    Conditional independences identify a DAG only up to its equivalence class: the
    skeleton and the v-structures (``i -> k <- j`` with ``i``, ``j`` not adjacent), plus the
    orientations those force. The CPDAG keeps exactly these edges directed and makes
    every other edge undirected. Computed with causal-learn's ``dag2cpdag``.

    Parameters
    ----------
    adjacency
        0/1 DAG ``(D, D)``, ``[i, j]`` = parent i -> child j.

    Returns
    -------
    numpy.ndarray
        Integer ``(D, D)``: a directed edge ``i -> j`` has ``[i, j] = 1`` and
        ``[j, i] = 0``; an undirected edge ``i - j`` has both set. Pass two CPDAGs to
        :func:`shd` for the SHD between equivalence classes (an edge directed in one and
        undirected in the other costs 1).

    Examples
    --------
    >>> chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])  # 0 -> 1 -> 2
    >>> cpdag(chain)
    array([[0, 1, 0],
           [1, 0, 1],
           [0, 1, 0]])
    """
    import networkx as nx
    from causallearn.graph.Dag import Dag
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.utils.DAG2CPDAG import dag2cpdag

    A = _as_binary(adjacency, "adjacency")
    if not nx.is_directed_acyclic_graph(nx.from_numpy_array(A.astype(int), create_using=nx.DiGraph)):
        raise ValueError("adjacency: expected a DAG; found a directed cycle (repair it first, e.g. graph.to_dag)")
    nodes = [GraphNode(f"X{i + 1}") for i in range(len(A))]
    dag = Dag(nodes)
    for i, j in zip(*np.nonzero(A)):
        dag.add_directed_edge(nodes[i], nodes[j])
    # causal-learn's encoding: i -> j is graph[j, i] = 1, graph[i, j] = -1; i - j is -1 both ways
    g = dag2cpdag(dag).graph
    out = ((g.T == 1) & (g == -1)) | ((g == -1) & (g.T == -1))
    return out.astype(int)


COMPELLED, REVERSIBLE = "compelled", "reversible"


def orientations(dag) -> np.ndarray:
    """How each edge of a DAG is oriented: by its Markov equivalence class, or only by the model.

    Parameters
    ----------
    dag
        0/1 DAG ``(D, D)``, ``[i, j]`` = parent i -> child j.

    Returns
    -------
    numpy.ndarray
        ``(D, D)`` object array: ``"compelled"`` (:data:`COMPELLED`) for an edge every DAG
        of the class directs the same way (v-structures and the orientations they
        force), ``"reversible"`` (:data:`REVERSIBLE`) for an edge some equivalent DAG
        reverses (only the functional form of the structural equations orients it),
        ``""`` off the graph (:func:`cpdag`).

    Examples
    --------
    >>> orientations(np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]]))[:, 2].tolist()  # 0 -> 2 <- 1
    ['compelled', 'compelled', '']
    """
    A = _as_binary(dag, "dag").astype(bool)
    C = cpdag(A.astype(int)).astype(bool)
    out = np.full(A.shape, "", dtype=object)
    out[A & ~C.T] = COMPELLED
    out[A & C.T] = REVERSIBLE
    return out


def expected_shd(samples, truth) -> float:
    """Posterior expected SHD: the mean :func:`shd` over edge samples.

    Parameters
    ----------
    samples
        0/1 graphs ``(S, D, D)``.
    truth
        0/1 ``(D, D)``.

    Returns
    -------
    float
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 3:
        raise ValueError(f"samples: expected shape (S, D, D); found {samples.shape}")
    T = _as_binary(truth, "truth")
    if samples.shape[1:] != T.shape:
        raise ValueError(f"samples: expected (S, {T.shape[0]}, {T.shape[1]}); found {samples.shape}")
    if not np.isin(samples, (0.0, 1.0)).all():
        raise ValueError("samples: expected 0/1 graph samples")
    S = samples.astype(bool)
    differs = (S != T) | (np.swapaxes(S, 1, 2) != T.T)
    iu = np.triu_indices(T.shape[0], k=1)
    return float(differs[:, iu[0], iu[1]].sum(1).mean())


def _scored_cells(probs, truth, mask) -> tuple[np.ndarray, np.ndarray]:
    """``(y, s)``: 0/1 truth and scores of the scored cells (off-diagonal and ``mask``)."""
    P = _as_square(probs, "probs")
    T = _as_binary(truth, "truth")
    if P.shape != T.shape:
        raise ValueError(f"probs and truth: shapes differ, {P.shape} and {T.shape}")
    cells = _edge_cells(P.shape[0], mask)
    y, s = T[cells].astype(int), P[cells]
    if y.size == 0:
        raise ValueError("mask: selects no off-diagonal cell; nothing to score")
    return y, s


def _scored(probs, truth, mask) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_scored_cells`, for ranking metrics: both classes must be present."""
    y, s = _scored_cells(probs, truth, mask)
    if y.min(initial=1) == y.max(initial=0):
        raise ValueError(
            f"truth: the scored cells hold only one class ({int(y.sum())} edges of {y.size}); "
            "edge AUROC/AUPRC are undefined"
        )
    return y, s


def edge_auroc(probs, truth, mask=None) -> float:
    """Area under the ROC curve of edge scores against the true edges.

    Parameters
    ----------
    probs
        ``(D, D)`` edge probabilities (or any scores), ``[i, j]`` = i -> j.
    truth
        0/1 ``(D, D)``.
    mask
        Optional boolean ``(D, D)``; only cells with ``True`` are scored. The diagonal is
        always excluded.

    Returns
    -------
    float
        1 when every true edge scores above every non-edge; 0.5 for uninformative scores.
    """
    y, s = _scored(probs, truth, mask)
    return float(roc_auc_score(y, s))


def edge_auprc(probs, truth, mask=None) -> float:
    """Average precision (area under the precision-recall curve) of edge scores.

    Parameters
    ----------
    probs, truth, mask
        As for :func:`edge_auroc`.

    Returns
    -------
    float
        1 for a perfect ranking; the edge density for uninformative scores.
    """
    y, s = _scored(probs, truth, mask)
    return float(average_precision_score(y, s))


def edge_calibration(probs, truth, n_bins: int = 10, mask=None) -> tuple[pd.DataFrame, float]:
    """Reliability table and expected calibration error (ECE) of edge probabilities.

    Cells (off-diagonal, and ``mask`` when given) are put into ``n_bins`` equal-width
    bins of predicted probability; the last bin includes 1.
    ``ECE = sum_b (n_b / n) |mean_prob_b - frac_true_b|``.

    Parameters
    ----------
    probs
        ``(D, D)`` or a stack ``(R, D, D)`` (e.g. several data sets) of probabilities in
        ``[0, 1]``.
    truth
        0/1 with the same shape as ``probs``.
    n_bins
        Number of bins, >= 1.
    mask
        Optional boolean ``(D, D)`` of scored cells.

    Returns
    -------
    (table, ece)
        ``table`` has one row per bin: ``bin_lower``, ``bin_upper``, ``count``,
        ``mean_prob``, ``frac_true`` (NaN for empty bins).
    """
    check_int("n_bins", n_bins)
    P, T = np.asarray(probs, dtype=float), np.asarray(truth, dtype=float)
    if P.shape != T.shape or P.ndim not in (2, 3) or P.shape[-1] != P.shape[-2]:
        raise ValueError(f"probs and truth: expected equal shapes (D, D) or (R, D, D); found {P.shape}, {T.shape}")
    if not np.isfinite(P).all() or P.min() < 0 or P.max() > 1:
        raise ValueError("probs: expected probabilities in [0, 1]")
    if not np.isin(T, (0.0, 1.0)).all():
        raise ValueError("truth: expected a 0/1 adjacency")
    cells = np.broadcast_to(_edge_cells(P.shape[-1], mask), P.shape)
    p, y = P[cells], T[cells]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    rows, ece = [], 0.0
    for b in range(n_bins):
        sel = which == b
        n_b = int(sel.sum())
        mean_p = float(p[sel].mean()) if n_b else np.nan
        frac = float(y[sel].mean()) if n_b else np.nan
        if n_b:
            ece += n_b / p.size * abs(mean_p - frac)
        rows.append((edges[b], edges[b + 1], n_b, mean_p, frac))
    table = pd.DataFrame(rows, columns=["bin_lower", "bin_upper", "count", "mean_prob", "frac_true"])
    return table, float(ece)


def _scored_probabilities(probs, truth, mask) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_scored_cells`, and the scores must be probabilities in ``[0, 1]``."""
    y, p = _scored_cells(probs, truth, mask)
    if p.min() < 0 or p.max() > 1:
        raise ValueError("probs: expected probabilities in [0, 1]")
    return y, p


def _log_loss(y: np.ndarray, p: np.ndarray, eps: float) -> float:
    """Mean negative Bernoulli log-likelihood of 0/1 ``y`` under ``p`` clipped to ``[eps, 1 - eps]``."""
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps: expected a number in (0, 0.5); found {eps!r}")
    q = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(np.where(y == 1, np.log(q), np.log1p(-q))))


def edge_brier(probs, truth, mask=None) -> float:
    """Brier score of edge probabilities: mean squared error against the 0/1 truth.

    Parameters
    ----------
    probs
        ``(D, D)`` edge probabilities in ``[0, 1]``, ``[i, j]`` = P(i -> j).
    truth
        0/1 ``(D, D)``.
    mask
        Optional boolean ``(D, D)``; only cells with ``True`` are scored. The diagonal is
        always excluded.

    Returns
    -------
    float
        ``mean((P - T)^2)`` over the scored cells: 0 for a perfect 0/1 prediction, 0.25
        for all-0.5 probabilities.
    """
    y, p = _scored_probabilities(probs, truth, mask)
    return float(np.mean((p - y) ** 2))


def edge_log_loss(probs, truth, mask=None, eps: float = LOG_LOSS_EPS) -> float:
    """Log loss of edge probabilities: mean negative log-likelihood of the 0/1 truth.

    Parameters
    ----------
    probs, truth, mask
        As for :func:`edge_brier`.
    eps
        Probabilities are clipped to ``[eps, 1 - eps]`` first, so one confident mistake
        costs at most ``-log(eps)`` instead of infinity.

    Returns
    -------
    float
        ``-mean(T log P + (1 - T) log(1 - P))`` over the scored cells; ``log 2`` for
        all-0.5 probabilities.
    """
    y, p = _scored_probabilities(probs, truth, mask)
    return _log_loss(y, p, eps)


def edge_probability_report(probs, truth, mask=None, n_bins: int = 10) -> dict:
    """Ranking, calibration and confident-error figures of edge probabilities in one place.

    ECE averages the gap between predicted and observed edge frequency over bins and
    can be small for a predictor that is sure and wrong on a few cells or that says
    nothing (a constant at the edge density has ECE 0). The report therefore also gives
    the log loss against that constant predictor and the shares of confident errors.

    Parameters
    ----------
    probs
        ``(D, D)`` edge probabilities in ``[0, 1]``, ``[i, j]`` = P(i -> j).
    truth
        0/1 ``(D, D)``.
    mask
        Optional boolean ``(D, D)`` of scored cells; the diagonal is always excluded
        (the rule of :func:`edge_auroc`).
    n_bins
        Bins of :func:`edge_calibration`.

    Returns
    -------
    dict
        Floats ``auroc``, ``auprc`` (NaN when the scored cells hold one class only),
        ``brier`` (:func:`edge_brier`), ``ece`` (:func:`edge_calibration`),
        ``log_loss`` (:func:`edge_log_loss` with ``eps`` = :data:`LOG_LOSS_EPS`),
        ``log_loss_constant`` (the log loss of the constant predictor ``P`` = the true
        edge density over the scored cells, the same clipping), ``log_loss_ratio``
        (``log_loss / log_loss_constant``; below 1 is better than knowing only the
        density), ``true_edges_below_0.1`` (share of true edges with ``P < 0.1``; NaN
        without true edges), ``wrong_above_0.9`` (share of cells with ``P > 0.9`` that
        are not true edges; NaN when no cell has ``P > 0.9``); and ``reliability``, the
        :func:`edge_calibration` table (one row per bin with its ``count``).
    """
    y, p = _scored_probabilities(probs, truth, mask)
    both = y.min() != y.max()
    table, ece = edge_calibration(probs, truth, n_bins=n_bins, mask=mask)
    loss = _log_loss(y, p, LOG_LOSS_EPS)
    loss_const = _log_loss(y, np.full(p.shape, y.mean()), LOG_LOSS_EPS)
    confident = p > 0.9
    return {
        "auroc": edge_auroc(probs, truth, mask) if both else np.nan,
        "auprc": edge_auprc(probs, truth, mask) if both else np.nan,
        "brier": edge_brier(probs, truth, mask),
        "ece": ece,
        "log_loss": loss,
        "log_loss_constant": loss_const,
        "log_loss_ratio": loss / loss_const,  # loss_const > 0: the clipping keeps P off 0 and 1
        "true_edges_below_0.1": float(np.mean(p[y == 1] < 0.1)) if y.any() else np.nan,
        "wrong_above_0.9": float(np.mean(y[confident] == 0)) if confident.any() else np.nan,
        "reliability": table,
    }
