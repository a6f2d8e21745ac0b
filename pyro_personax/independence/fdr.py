"""Benjamini-Hochberg false discovery rate control.

The adjustment is :func:`scipy.stats.false_discovery_control` (``method="bh"``); this
module only lets missing p-values through.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["benjamini_hochberg"]


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values).

    ``q_(i) = min_{j >= i} min(1, m * p_(j) / j)`` over the ``m`` finite p-values sorted
    increasingly (:func:`scipy.stats.false_discovery_control`). Missing p-values (``NaN``,
    a test that failed or did not apply) are not counted in ``m`` and stay ``NaN``.

    Parameters
    ----------
    p_values
        ``(m_total,)`` p-values in ``[0, 1]`` or ``NaN``.

    Returns
    -------
    numpy.ndarray
        ``(m_total,)`` float64 q-values, ``NaN`` where the input is ``NaN``.

    Raises
    ------
    ValueError
        If the input is not 1-D or holds values outside ``[0, 1]``.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, np.nan]).round(3).tolist()
    [0.03, 0.04, 0.04, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values: expected a 1-D array, found shape {p.shape}")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p_values: expected values in [0, 1] or NaN, found values outside")
    q = np.full_like(p, np.nan)
    if finite.any():
        q[finite] = stats.false_discovery_control(p[finite], method="bh")
    return q
