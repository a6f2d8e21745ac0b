"""Latents read from observations by a regression trained with the truth: the bound of a two-stage method.

A method that first reads the latents from the observations and then fits the graph can
do no better, on the latents, than a regression that was trained with the true latents.
:func:`read_latents` is that regression (one multi-layer perceptron per block of latents);
:func:`out_of_fold` reads every row of a data set by regressions trained on the other rows.
Used by ``recovery_variant_mnist.py`` (its supervised bound), ``equivalent_representations.py``
and ``persona_bound.py``.
"""

from __future__ import annotations

import numpy as np


def read_latents(features: dict, latents: np.ndarray, blocks, fit_rows, seed: int) -> np.ndarray:
    """Each block's latents predicted from that block's features by a regression trained on ``fit_rows``.

    Per block, a multi-layer perceptron (:class:`sklearn.neural_network.MLPRegressor`, two
    hidden layers of 512 and 256 units, early stopping) is trained on the ``fit_rows``'
    standardised features and standardised latents. A feature constant on the fit rows is
    only centred; a missing value (NaN) is set to the fit rows' mean after standardising.

    Parameters
    ----------
    features
        Block name -> ``(N, F_b)`` inputs of that block's latents (NaN where missing).
    latents
        ``(N, D)`` true latents.
    blocks
        ``D`` block names, one per column of ``latents``; each must be a key of ``features``.
    fit_rows
        Indices (or a boolean mask) of the rows the regressions are trained on.
    seed
        Seed of the regressions' initial weights and of their early-stopping split.

    Returns
    -------
    np.ndarray
        ``(N, D)``: the predictions for every row, in the units of the latents standardised
        on ``fit_rows``.
    """
    from sklearn.neural_network import MLPRegressor

    blocks = list(blocks)
    if len(blocks) != latents.shape[1]:
        raise ValueError(f"blocks: expected one name per latent ({latents.shape[1]}); found {len(blocks)}")
    missing = sorted(set(blocks) - set(features))
    if missing:
        raise ValueError(f"features: no inputs for the block(s) {missing}; found {sorted(features)}")
    z = (latents - latents[fit_rows].mean(0)) / latents[fit_rows].std(0)
    predicted = np.zeros_like(z)
    for block in dict.fromkeys(blocks):
        cols = [j for j, b in enumerate(blocks) if b == block]
        X = np.asarray(features[block], dtype=float).reshape(len(z), -1)
        centre, scale = np.nanmean(X[fit_rows], 0), np.nanstd(X[fit_rows], 0)
        X = np.nan_to_num((X - centre) / np.where(scale > 1e-6, scale, 1.0))  # constant on fit_rows: centred only
        net = MLPRegressor(hidden_layer_sizes=(512, 256), alpha=1e-3, max_iter=300, early_stopping=True,
                           n_iter_no_change=20, random_state=seed)
        target = z[fit_rows][:, cols]
        net.fit(X[fit_rows], target[:, 0] if len(cols) == 1 else target)  # a block of one latent: a 1-d target
        predicted[:, cols] = net.predict(X).reshape(len(z), len(cols))
    return predicted


def out_of_fold(features: dict, latents: np.ndarray, blocks, *, folds: int, seed: int) -> np.ndarray:
    """Every row's latents read by :func:`read_latents` trained on the other folds' rows.

    The rows are split at random (``seed``) into ``folds`` parts; each part is predicted by
    regressions trained on the rest, so no row is read by a regression that saw it.

    Returns
    -------
    np.ndarray
        ``(N, D)`` predictions, each fold in the units of the latents standardised on the
        rows it was not part of.
    """
    n = len(latents)
    if not 2 <= folds <= n:
        raise ValueError(f"folds: expected an integer from 2 to the number of rows ({n}); found {folds}")
    part = np.random.default_rng(seed).permutation(n) % folds
    out = np.zeros(latents.shape)
    for k in range(folds):
        out[part == k] = read_latents(features, latents, blocks, part != k, seed)[part == k]
    return out


def with_error(readings: np.ndarray, truth: np.ndarray, r2: float, columns, rng: np.random.Generator) -> np.ndarray:
    """``readings`` ``(N, D)`` with independent Gaussian error added to ``columns``, down to ``r2`` of the truth.

    A column whose squared correlation ``r0`` with its column of ``truth`` ``(N, D)`` exceeds
    ``r2`` gets error of variance ``var (r0 / r2 - 1)``, so that its squared correlation
    falls to about ``r2``; the other columns are copied as they are.
    """
    out = np.array(readings, dtype=float)
    kept = squared_correlations(out, truth)
    for j in columns:
        if kept[j] > r2:
            out[:, j] += np.sqrt(out[:, j].var() * (kept[j] / r2 - 1)) * rng.normal(size=len(out))
    return out


def squared_correlations(readings: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(D,)`` squared correlation of each column of ``readings`` ``(N, D)`` with the same column of ``truth``."""
    return np.array([np.corrcoef(readings[:, j], truth[:, j])[0, 1] ** 2 for j in range(truth.shape[1])])
