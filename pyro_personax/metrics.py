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

This module depends on numpy, scipy, pandas, scikit-learn, networkx and causal-learn only
(no torch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import KFold

logger = logging.getLogger(__name__)

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
    "expected_shd",
    "edge_auroc",
    "edge_auprc",
    "edge_calibration",
    "edge_brier",
    "edge_log_loss",
    "edge_probability_report",
    "evaluate_recovery",
]

CORRELATION_METHODS = ("pearson", "spearman")
LOG_LOSS_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] in the log loss


# ---------------------------------------------------------------------- input checks
def _as_2d(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-d array (N, D); found shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf; drop or mask those rows first")
    return arr


def _check_pair(learned, true) -> tuple[np.ndarray, np.ndarray]:
    learned, true = _as_2d(learned, "learned"), _as_2d(true, "true")
    if learned.shape[0] != true.shape[0]:
        raise ValueError(
            f"learned and true must have the same rows; found {learned.shape[0]} and {true.shape[0]}"
        )
    if learned.shape[1] < true.shape[1]:
        raise ValueError(
            f"learned: expected at least as many columns as true ({true.shape[1]}); found {learned.shape[1]}"
        )
    return learned, true


def _as_square(A, name: str) -> np.ndarray:
    arr = np.asarray(A, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name}: expected a square (D, D) matrix; found shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def _as_binary(A, name: str) -> np.ndarray:
    arr = _as_square(A, name)
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{name}: expected a 0/1 adjacency; threshold probabilities first (graph.to_dag)")
    return arr.astype(bool)


def _edge_cells(D: int, mask) -> np.ndarray:
    """Boolean ``(D, D)`` selection of scored cells: off-diagonal and ``mask``."""
    cells = ~np.eye(D, dtype=bool)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (D, D) or mask.dtype != bool:
            raise ValueError(f"mask: expected a ({D}, {D}) boolean matrix; found {mask.dtype} {mask.shape}")
        cells &= mask
    return cells


# ---------------------------------------------------------------------- latent metrics
def correlation_matrix(learned, true, method: str = "spearman") -> np.ndarray:
    """Correlations between every true and every learned latent.

    Parameters
    ----------
    learned
        Learned latents, shape ``(N, D_learned)``.
    true
        True latents, shape ``(N, D)``.
    method
        ``"pearson"`` or ``"spearman"`` (Pearson on ranks).

    Returns
    -------
    numpy.ndarray
        ``(D, D_learned)``, entry ``[j, k]`` = corr(true_j, learned_k). A constant
        column gives correlation 0.
    """
    if method not in CORRELATION_METHODS:
        raise ValueError(f"method: expected one of {CORRELATION_METHODS}; found {method!r}")
    learned, true = _check_pair(learned, true)
    if method == "spearman":
        learned = np.apply_along_axis(rankdata, 0, learned)
        true = np.apply_along_axis(rankdata, 0, true)
    a = true - true.mean(0)
    b = learned - learned.mean(0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    denom = np.outer(na, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(denom > 0, (a.T @ b) / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(corr, -1.0, 1.0)


def _block_labels(blocks, size: int, name: str) -> np.ndarray:
    labels = np.asarray(list(blocks), dtype=object)
    if labels.shape != (size,):
        raise ValueError(f"{name}: expected one block name per latent ({size}); found {labels.shape[0]}")
    return labels


def _assign(corr: np.ndarray, learned_blocks=None, true_blocks=None) -> np.ndarray:
    """Hungarian matching on ``|corr|`` ``(D, D_learned)``, within blocks when both labels are given."""
    if (learned_blocks is None) != (true_blocks is None):
        raise ValueError("learned_blocks, true_blocks: give both or neither")
    gain = np.abs(corr)
    if learned_blocks is not None:
        lb = _block_labels(learned_blocks, corr.shape[1], "learned_blocks")
        tb = _block_labels(true_blocks, corr.shape[0], "true_blocks")
        for block in np.unique(tb):
            have, need = int((lb == block).sum()), int((tb == block).sum())
            if have < need:
                raise ValueError(f"learned_blocks: block {block!r} has {have} learned latents for {need} true ones")
        gain = np.where(tb[:, None] == lb[None, :], gain, -float(corr.size))
    rows, cols = linear_sum_assignment(-gain)
    perm = np.empty(corr.shape[0], dtype=int)
    perm[rows] = cols
    return perm


def match_latents(learned, true, method: str = "spearman", *, learned_blocks=None, true_blocks=None) -> np.ndarray:
    """Match learned latents to true ones (Hungarian matching on absolute correlation).

    Parameters
    ----------
    learned
        ``(N, D_learned)`` with ``D_learned >= D``.
    true
        ``(N, D)``.
    method
        ``"pearson"`` or ``"spearman"``.
    learned_blocks, true_blocks
        Optional block name of every learned (``D_learned``) and true (``D``) latent:
        each true latent is then matched within its own block only.

    Returns
    -------
    numpy.ndarray
        Integer permutation ``perm`` of length ``D``: learned column ``perm[j]`` is
        matched to true column ``j`` (so ``learned[:, perm]`` is aligned with ``true``).
    """
    return _assign(correlation_matrix(learned, true, method), learned_blocks, true_blocks)


@dataclass(frozen=True, eq=False)
class MCCResult:
    """Mean correlation coefficient after matching.

    Attributes
    ----------
    value
        Mean absolute correlation of the matched pairs (``float(result)`` gives it).
    permutation
        ``(D,)``; learned column ``permutation[j]`` is matched to true column ``j``.
    correlations
        ``(D,)`` signed correlation of each matched pair.
    matrix
        ``(D, D_learned)`` full correlation matrix.
    method
        ``"pearson"`` or ``"spearman"``.

    Examples
    --------
    >>> z = np.random.default_rng(0).normal(size=(200, 2))
    >>> res = mcc(z[:, ::-1], z)
    >>> res.permutation.tolist(), round(float(res), 6)
    ([1, 0], 1.0)
    """

    value: float
    permutation: np.ndarray
    correlations: np.ndarray
    matrix: np.ndarray
    method: str

    def __float__(self) -> float:
        return float(self.value)


def mcc(learned, true, method: str = "spearman", *, learned_blocks=None, true_blocks=None) -> MCCResult:
    """Mean correlation coefficient (MCC) between matched learned and true latents.

    Parameters
    ----------
    learned
        ``(N, D_learned)`` with ``D_learned >= D``.
    true
        ``(N, D)``.
    method
        ``"spearman"`` (invariant to monotone component-wise maps) or ``"pearson"``.
    learned_blocks, true_blocks
        Optional block names, as in :func:`match_latents` (matching within blocks).

    Returns
    -------
    MCCResult
        The value and the matching. MCC is easy to game when true latents are
        correlated; report :func:`r2` and graph metrics beside it.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 3))
    >>> round(mcc(np.exp(z[:, [2, 0, 1]]), z).value, 6)
    1.0
    """
    corr = correlation_matrix(learned, true, method)
    perm = _assign(corr, learned_blocks, true_blocks)
    matched = corr[np.arange(corr.shape[0]), perm]
    return MCCResult(float(np.abs(matched).mean()), perm, matched, corr, method)


@dataclass(frozen=True, eq=False)
class R2Result:
    """Held-out coefficient of determination of true latents from learned ones.

    Attributes
    ----------
    value
        Mean of ``per_latent`` (``float(result)`` gives it).
    per_latent
        ``(D,)`` held-out R^2 of each true latent.
    alpha, gamma
        Kernel ridge hyper-parameters chosen by cross-validation on the training rows.
    num_train, num_test
        Rows used to fit and to score.

    Examples
    --------
    >>> z = np.random.default_rng(0).normal(size=(300, 2))
    >>> res = r2(np.tanh(z), z, seed=0)
    >>> res.num_train, res.num_test, res.value > 0.9
    (270, 30, True)
    """

    value: float
    per_latent: np.ndarray
    alpha: float
    gamma: float
    num_train: int
    num_test: int

    def __float__(self) -> float:
        return float(self.value)


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(a - mu) / sd for a in (train, *others)]


def _cv_kernel_ridge(X, Y, alphas, gammas, seed: int) -> tuple[float, float]:
    """Pick ``(alpha, gamma)`` by 3-fold CV mean squared error on ``(X, Y)``."""
    best, best_err = (alphas[0], gammas[0]), np.inf
    folds = list(KFold(3, shuffle=True, random_state=seed).split(X))
    for alpha in alphas:
        for gamma in gammas:
            err = 0.0
            for tr, va in folds:
                model = KernelRidge(alpha=alpha, kernel="rbf", gamma=gamma).fit(X[tr], Y[tr])
                err += float(((model.predict(X[va]) - Y[va]) ** 2).mean())
            if err < best_err:
                best, best_err = (alpha, gamma), err
    return best


def _split_rows(n: int, train, test, test_fraction: float, seed: int):
    if (train is None) != (test is None):
        raise ValueError("train and test: give both index arrays or neither")
    if train is not None:
        train, test = np.asarray(train, dtype=int), np.asarray(test, dtype=int)
        if np.intersect1d(train, test).size:
            raise ValueError("train and test: the index arrays overlap; R^2 must be scored on held-out rows")
        return train, test
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); found {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def r2(
    learned,
    true,
    *,
    train=None,
    test=None,
    test_fraction: float = 0.1,
    max_train: int = 2000,
    alphas=(1e-3, 1e-2, 1e-1),
    gammas=(0.05, 0.2, 0.5),
    seed: int = 0,
) -> R2Result:
    """Held-out R^2 of predicting each true latent from all learned latents.

    A kernel ridge regression (RBF kernel) maps standardised learned latents to
    standardised true latents. It is fitted on training rows and scored on held-out rows
    (never in-sample). Hyper-parameters ``alpha`` and ``gamma`` are chosen jointly by
    3-fold cross-validation on at most 1,000 training rows; the final fit uses at most
    ``max_train`` training rows (kernel ridge costs ``O(n^3)``), drawn with ``seed``.

    Parameters
    ----------
    learned
        ``(N, D_learned)``.
    true
        ``(N, D)``.
    train, test
        Optional disjoint row indices; default: a random split with ``test_fraction``.
    test_fraction
        Fraction of held-out rows when ``train``/``test`` are not given.
    max_train
        Largest number of training rows used in the final fit.
    alphas, gammas
        Grids of ridge penalties and RBF widths (on standardised inputs).
    seed
        Seed of the split and of the subsampling.

    Returns
    -------
    R2Result
        Mean and per-latent held-out R^2 (can be negative for a useless predictor).
    """
    learned, true = _check_pair(learned, true)
    train, test = _split_rows(true.shape[0], train, test, test_fraction, seed)
    if len(train) < 6 or len(test) < 2:
        raise ValueError(f"r2: need >= 6 training and >= 2 test rows; found {len(train)} and {len(test)}")
    rng = np.random.default_rng(seed)
    if len(train) > max_train:
        train = np.sort(rng.choice(train, size=max_train, replace=False))
    Xtr, Xte = _standardise(learned[train], learned[test])
    Ytr, Yte = _standardise(true[train], true[test])
    cv_rows = rng.permutation(len(train))[:1000]
    alpha, gamma = _cv_kernel_ridge(Xtr[cv_rows], Ytr[cv_rows], tuple(alphas), tuple(gammas), seed)
    pred = KernelRidge(alpha=alpha, kernel="rbf", gamma=gamma).fit(Xtr, Ytr).predict(Xte)
    ss_res = ((Yte - pred) ** 2).sum(0)
    ss_tot = ((Yte - Yte.mean(0)) ** 2).sum(0)
    per = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, np.nan)
    logger.debug("r2: alpha=%g gamma=%g per-latent %s", alpha, gamma, per)
    return R2Result(float(np.nanmean(per)), per, float(alpha), float(gamma), len(train), len(test))


def block_r2(
    learned,
    true,
    learned_blocks,
    true_blocks,
    *,
    train=None,
    test=None,
    test_fraction: float = 0.1,
    seed: int = 0,
    **kwargs,
) -> dict[str, R2Result]:
    """Held-out R^2 of each true latent from the learned latents of its own block only.

    A multi-measurement model identifies latents block by block (the shared block, one
    block per modality), so this asks whether each block holds its own latents'
    information, while :func:`r2` reads every true latent from all learned latents. With
    an isotropic kernel, the other blocks' dimensions also dilute :func:`r2`'s estimate.

    Parameters
    ----------
    learned
        ``(N, D_learned)``.
    true
        ``(N, D)``.
    learned_blocks, true_blocks
        Block name of every learned column (length ``D_learned``) and of every true
        column (length ``D``), e.g. :attr:`~pyro_personax.layout.LatentLayout.block_of`.
        Every block of ``true_blocks`` needs at least as many learned columns.
    train, test, test_fraction, seed
        As in :func:`r2`; every block is scored on the same rows.
    **kwargs
        Passed to :func:`r2` (``max_train``, ``alphas``, ``gammas``).

    Returns
    -------
    dict
        Block name -> :class:`R2Result` of that block's true latents (in the order of
        their columns), for every block of ``true_blocks`` in order of appearance.

    Examples
    --------
    >>> z = np.random.default_rng(0).normal(size=(300, 2))
    >>> res = block_r2(np.tanh(z), z, ["a", "b"], ["a", "b"], seed=0)
    >>> sorted(res), bool(res["a"].value > 0.9)
    (['a', 'b'], True)
    """
    learned, true = _check_pair(learned, true)
    lb, tb = np.asarray(learned_blocks, dtype=object), np.asarray(true_blocks, dtype=object)
    for name, names, width in (("learned_blocks", lb, learned.shape[1]), ("true_blocks", tb, true.shape[1])):
        if names.shape != (width,):
            raise ValueError(f"{name}: expected {width} block names (one per column); found {names.size}")
    train, test = _split_rows(true.shape[0], train, test, test_fraction, seed)
    out = {}
    for block in dict.fromkeys(tb.tolist()):
        cols, own = lb == block, tb == block
        if cols.sum() < own.sum():
            raise ValueError(
                f"learned_blocks: block {block!r} has {int(cols.sum())} learned columns for "
                f"{int(own.sum())} true latents; expected at least as many"
            )
        out[block] = r2(learned[:, cols], true[:, own], train=train, test=test, seed=seed, **kwargs)
    return out


# ---------------------------------------------------------------------- graph metrics
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
    if perm.ndim != 1 or len(np.unique(perm)) != len(perm) or perm.min(initial=0) < 0 or (
        perm.max(initial=-1) >= A.shape[-1]
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
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins: expected a positive int; found {n_bins!r}")
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
        Compute ``r2`` (a cross-validated kernel ridge, the costly part); ``False``: NaN.

    Returns
    -------
    dict
        ``mcc``, ``r2``, ``permutation`` and, when ``edge_probs`` is given, ``shd``,
        ``edge_auroc`` and ``edge_auprc`` (NaN when undefined); with ``identified``,
        ``shd_<part>``, ``edge_auroc_<part>``, ``ece_<part>``, ``num_true_<part>`` and
        ``recovered_<part>`` (true edges with ``P > threshold``) for ``<part>`` in
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
