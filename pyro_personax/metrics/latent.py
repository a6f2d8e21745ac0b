"""Latent metrics: learned latents ``(N, D_learned)`` against true latents ``(N, D)``.

Learned latents are identified only up to permutation and invertible component-wise
maps, so they are first matched to the true ones (:func:`match_latents`, Hungarian
matching on absolute correlations, optionally within blocks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky
from scipy.linalg.lapack import dpotri
from scipy.optimize import linear_sum_assignment, minimize
from scipy.spatial.distance import pdist, squareform
from scipy.stats import norm, rankdata
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import KFold

from pyro_personax.metrics._checks import _check_pair

logger = logging.getLogger(__name__)

__all__ = ["MCCResult", "R2Result", "correlation_matrix", "match_latents", "mcc", "r2", "block_r2"]

CORRELATION_METHODS = ("pearson", "spearman")
R2_KERNELS = ("ard", "rbf")


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
        Kernel ridge hyper-parameters chosen by cross-validation on the training rows
        (``kernel="rbf"``; NaN for ``"ard"``).
    num_train, num_test
        Rows used to fit and to score.
    kernel
        ``"ard"`` or ``"rbf"``: the regression used (see :func:`r2`).
    length_scales
        ``(D, D_learned)`` fitted RBF length scale of every learned column in the
        regression of every true latent (on normal scores; ``kernel="ard"``,
        ``None`` otherwise). A long length scale (near the bound ``1e3``) means the
        true latent is not read from that column.

    Examples
    --------
    >>> z = np.random.default_rng(0).normal(size=(300, 2))
    >>> res = r2(np.tanh(z), z, seed=0)
    >>> res.num_train, res.num_test, res.value > 0.9, res.length_scales.shape
    (270, 30, True, (2, 2))
    """

    value: float
    per_latent: np.ndarray
    alpha: float
    gamma: float
    num_train: int
    num_test: int
    kernel: str = "rbf"
    length_scales: np.ndarray | None = None

    def __float__(self) -> float:
        return float(self.value)


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(a - mu) / sd for a in (train, *others)]


def _normal_scores(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Every column mapped through the training rows' empirical CDF, then the standard normal quantile.

    A training value of rank ``r`` (ties averaged) among ``n`` goes to ``Phi^{-1}((r - 1/2) / n)``;
    other rows use the same formula with their position among the training values, clipped
    to the training range, so the map is monotone and finite everywhere.
    """
    n = train.shape[0]
    out = [np.empty_like(train, dtype=float)] + [np.empty_like(a, dtype=float) for a in others]
    for c in range(train.shape[1]):
        ref = np.sort(train[:, c])
        for src, dst in zip((train, *others), out):
            pos = 0.5 * (np.searchsorted(ref, src[:, c], "left") + np.searchsorted(ref, src[:, c], "right"))
            dst[:, c] = norm.ppf(np.clip(pos, 0.5, n - 0.5) / n)
    return out


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


def _ard_kernel(num_columns: int):
    """The prior of :func:`r2`'s regression: ``c * RBF(one length scale per column) + white noise``."""
    return ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.ones(num_columns), (1e-2, 1e3)) + WhiteKernel(1e-2, (1e-6, 1e1))


def _ard_log_marginal_likelihood(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Log marginal likelihood of :func:`_ard_kernel` at log hyper-parameters ``theta`` and its gradient.

    ``theta`` ``(D + 2,)`` is ``log`` of (amplitude, ``D`` length scales, noise) in the
    order of the kernel's ``theta``; ``X`` ``(n, D)``; ``y`` ``(n,)`` already normalised.
    The value is scikit-learn's ``GaussianProcessRegressor.log_marginal_likelihood``
    (with its diagonal jitter ``1e-10``); the gradient is reduced with matrix products,
    ``sum_ij M_ij (x_id - x_jd)^2 = 2 sum_i x_id^2 (M 1)_i - 2 x_d^T M x_d`` for symmetric
    ``M``, instead of an ``(n, n, D)`` array. Returns ``(-inf, 0)`` where the kernel
    matrix is not positive definite.
    """
    amplitude, scales, noise = np.exp(theta[0]), np.exp(theta[1:-1]), np.exp(theta[-1])
    Xs = X / scales
    rbf = np.exp(-0.5 * squareform(pdist(Xs, metric="sqeuclidean")))
    np.fill_diagonal(rbf, 1.0)
    K = amplitude * rbf
    K[np.diag_indices_from(K)] += noise + 1e-10
    try:
        L = cholesky(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return -np.inf, np.zeros_like(theta)
    alpha = cho_solve((L, True), y, check_finite=False)
    lml = -0.5 * y @ alpha - np.log(np.diag(L)).sum() - 0.5 * len(y) * np.log(2 * np.pi)
    inverse = dpotri(L, lower=True)[0]  # the lower triangle of K^-1
    inverse = np.tril(inverse) + np.tril(inverse, -1).T
    inner = np.outer(alpha, alpha) - inverse
    M = inner * (amplitude * rbf)
    row = M.sum(1)
    grad = np.empty_like(theta)
    grad[0] = 0.5 * M.sum()
    grad[1:-1] = ((Xs**2 * row[:, None]).sum(0) - ((M @ Xs) * Xs).sum(0))
    grad[-1] = 0.5 * noise * np.trace(inner)
    return float(lml), grad


def _ard_predict(Xtr, ytr, Xte, hyper_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP posterior mean at ``Xte`` with an ARD RBF kernel fitted on ``hyper_rows`` of the training rows.

    The hyper-parameters maximise the log marginal likelihood on those rows (``y``
    normalised as ``normalize_y=True`` does) by L-BFGS-B from the kernel's initial values
    within its bounds, as ``GaussianProcessRegressor.fit`` does, with the gradient of
    :func:`_ard_log_marginal_likelihood`. Returns the prediction ``(n_test,)`` and the
    fitted length scales ``(D_learned,)``.
    """
    kernel = _ard_kernel(Xtr.shape[1])
    X, y = Xtr[hyper_rows], ytr[hyper_rows]
    sd = y.std()
    y = (y - y.mean()) / (sd if sd > 0 else 1.0)

    def objective(theta):
        lml, grad = _ard_log_marginal_likelihood(theta, X, y)
        return -lml, -grad

    theta = minimize(objective, kernel.theta, method="L-BFGS-B", jac=True, bounds=kernel.bounds).x
    fitted = kernel.clone_with_theta(theta)
    gp = GaussianProcessRegressor(fitted, normalize_y=True, optimizer=None).fit(Xtr, ytr)
    return gp.predict(Xte), np.atleast_1d(np.asarray(fitted.k1.k2.length_scale, dtype=float))


def r2(
    learned,
    true,
    *,
    train=None,
    test=None,
    test_fraction: float = 0.1,
    max_train: int = 2000,
    kernel: str = "ard",
    hyper_rows: int = 500,
    alphas=(1e-3, 1e-2, 1e-1),
    gammas=(0.05, 0.2, 0.5),
    seed: int = 0,
) -> R2Result:
    """Held-out R^2 of predicting each true latent from all learned latents.

    A non-parametric regression maps the learned latents to each standardised true
    latent. It is fitted on training rows and scored on held-out rows (never
    in-sample); the final fit uses at most ``max_train`` training rows (the kernel
    regressions cost ``O(n^3)``), drawn with ``seed``.

    - ``kernel="ard"`` (default): every learned column is first mapped to normal scores
      through its training rows' empirical CDF, so the score does not change under
      monotone maps of single learned latents (the maps a representation is identified
      up to). Then, per true latent, a Gaussian-process regression with an RBF kernel
      that has one length scale per learned column (automatic relevance determination)
      plus a white-noise term. Its hyper-parameters maximise the marginal likelihood on
      at most ``hyper_rows`` training rows; the prediction is the posterior mean given
      all the training rows used. A column the true latent does not depend on gets a
      long length scale and so does not dilute the fit: learned latents that hold more
      than the true ones (extra dimensions, other blocks) score what they hold.
    - ``kernel="rbf"``: kernel ridge regression on standardised learned latents with one
      isotropic RBF kernel for all true latents, ``alpha`` and ``gamma`` chosen jointly
      by 3-fold cross-validation on at most 1,000 training rows. Every learned column
      counts equally, so columns unrelated to a true latent lower its score.

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
    kernel
        ``"ard"`` or ``"rbf"`` (above).
    hyper_rows
        Training rows used to fit the ARD hyper-parameters (``kernel="ard"``).
    alphas, gammas
        Grids of ridge penalties and RBF widths on standardised inputs (``kernel="rbf"``).
    seed
        Seed of the split and of the subsampling.

    Returns
    -------
    R2Result
        Mean and per-latent held-out R^2 (can be negative for a useless predictor).
    """
    learned, true = _check_pair(learned, true)
    if kernel not in R2_KERNELS:
        raise ValueError(f"kernel: expected one of {R2_KERNELS}; found {kernel!r}")
    if kernel == "ard" and int(hyper_rows) < 6:
        raise ValueError(f"hyper_rows: expected at least 6 rows; found {hyper_rows}")
    train, test = _split_rows(true.shape[0], train, test, test_fraction, seed)
    if len(train) < 6 or len(test) < 2:
        raise ValueError(f"r2: need >= 6 training and >= 2 test rows; found {len(train)} and {len(test)}")
    rng = np.random.default_rng(seed)
    if len(train) > max_train:
        train = np.sort(rng.choice(train, size=max_train, replace=False))
    Ytr, Yte = _standardise(true[train], true[test])
    alpha = gamma = np.nan
    scales = None
    if kernel == "ard":
        Xtr, Xte = _normal_scores(learned[train], learned[test])
        rows = np.sort(rng.permutation(len(train))[: int(hyper_rows)])
        fits = [_ard_predict(Xtr, Ytr[:, j], Xte, rows) for j in range(Ytr.shape[1])]
        pred = np.column_stack([f[0] for f in fits])
        scales = np.vstack([f[1] for f in fits])
    else:
        Xtr, Xte = _standardise(learned[train], learned[test])
        cv_rows = rng.permutation(len(train))[:1000]
        alpha, gamma = _cv_kernel_ridge(Xtr[cv_rows], Ytr[cv_rows], tuple(alphas), tuple(gammas), seed)
        pred = KernelRidge(alpha=alpha, kernel="rbf", gamma=gamma).fit(Xtr, Ytr).predict(Xte)
    ss_res = ((Yte - pred) ** 2).sum(0)
    ss_tot = ((Yte - Yte.mean(0)) ** 2).sum(0)
    per = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, np.nan)
    logger.debug("r2 (%s): per-latent %s", kernel, per)
    return R2Result(float(np.nanmean(per)), per, float(alpha), float(gamma), len(train), len(test), kernel, scales)


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
        Passed to :func:`r2` (``max_train``, ``kernel``, ``hyper_rows``, ``alphas``,
        ``gammas``).

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
