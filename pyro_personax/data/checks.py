"""Checks shared by the data containers and loaders: features with one value.

A feature (an embedding dimension, a biographical field, a column of a tabular
modality) that holds one value across all entities where it is observed carries no
information. It is not an error: the data are kept as given and a warning naming the
features is logged on the ``pyro_personax.data.checks`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

__all__ = ["constant_features", "warn_constant", "constant_warnings_off"]

logger = logging.getLogger(__name__)

_ROWS = 65536  # rows per chunk: a check must not hold a second copy of the data
_SHOWN = 10  # feature names listed in one warning


def constant_features(values: np.ndarray, observed: np.ndarray | None = None) -> np.ndarray:
    """Columns of ``values`` that hold one value across the observed entries.

    Parameters
    ----------
    values
        ``(N, d)`` numeric array (``NaN`` counts as unobserved).
    observed
        Optional ``(N,)`` row mask or ``(N, d)`` cell mask, ``True`` = observed.

    Returns
    -------
    numpy.ndarray
        Sorted indices of the columns with at least two observed entries, all equal.
    """
    n, d = values.shape
    lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
    count = np.zeros(d, dtype=np.int64)
    for start in range(0, n, _ROWS):
        chunk = values[start : start + _ROWS]
        seen = ~np.isnan(chunk) if chunk.dtype.kind == "f" else np.ones(chunk.shape, dtype=bool)
        if observed is not None:
            obs = observed[start : start + _ROWS]
            seen &= obs[:, None] if obs.ndim == 1 else obs
        if not seen.any():
            continue
        count += seen.sum(axis=0)
        lo = np.minimum(lo, np.where(seen, chunk, np.inf).min(axis=0))
        hi = np.maximum(hi, np.where(seen, chunk, -np.inf).max(axis=0))
    return np.flatnonzero((count >= 2) & (lo == hi))


def warn_constant(where: str, names: Sequence[str]) -> None:
    """Log one warning naming the ``names`` of ``where`` that hold a single value."""
    if not len(names):
        return
    shown = ", ".join(str(n) for n in names[:_SHOWN])
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    logger.warning(
        "%s: %d feature(s) hold one value across all entities where observed (%s%s); they carry no "
        "information about the entities (the data are kept as given)", where, len(names), shown, more)


class _DropConstant(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "hold one value across all entities" not in record.msg


@contextmanager
def constant_warnings_off():
    """Silence :func:`warn_constant` (for data that were already checked and reported)."""
    dropper = _DropConstant()
    logger.addFilter(dropper)
    try:
        yield
    finally:
        logger.removeFilter(dropper)
