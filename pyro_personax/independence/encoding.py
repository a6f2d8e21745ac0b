"""How the columns of a table are read by the independence tests.

Every column is classified once, then each (trait, feature) pair is cut to its
complete rows and encoded for the test that runs on it:

* ``numeric``: a number (or a bool, read as 0/1). It is *discrete* when it has at
  most ``max_levels`` distinct values (the paper's 3-point trait scale with medians
  has 5: 1, 1.5, 2, 2.5, 3; ``+-1`` face attributes have 2), *continuous* otherwise.
* ``categorical``: strings, objects or a pandas ``category``. Always discrete.

Encodings (documented choices):

* Kernel tests (KCI, RCIT): a numeric column is one column of floats; a categorical
  column with ``L`` levels is one-hot coded, ``(n, L)`` (``(n, 1)`` when ``L = 2``), so a
  Gaussian kernel on it distinguishes every pair of levels (a characteristic kernel on a
  finite set).
* HSIC: a numeric column gets a Gaussian kernel (median heuristic); a categorical
  column gets the delta kernel ``k(a, b) = 1[a == b]`` on its integer codes.
* Chi-square / G-square: integer codes of the distinct values. Both sides must be
  discrete. A continuous column is binned into ``bins`` quantile bins only when the
  user passes ``bins=``; otherwise the test is reported as not applicable.

Missing values (``NaN``, ``None``, ``pd.NA``) are never filled: a row missing either
side of a pair is dropped from that pair only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "VariableInfo",
    "EncodedVariable",
    "NotApplicable",
    "describe_column",
    "describe_columns",
    "complete_pair",
    "kernel_input",
    "integer_codes",
]


class NotApplicable(Exception):
    """A test does not apply to a pair (for example chi-square on a continuous column)."""


@dataclass(frozen=True)
class VariableInfo:
    """How one column is read.

    Parameters
    ----------
    name
        Column name.
    kind
        ``"numeric"`` or ``"categorical"``.
    discrete
        Whether chi-square / G-square may use it without binning.
    num_levels
        Number of distinct non-missing values in the whole column.
    """

    name: str
    kind: str
    discrete: bool
    num_levels: int


@dataclass(frozen=True)
class EncodedVariable:
    """One side of a pair, restricted to the pair's complete rows.

    Parameters
    ----------
    info
        The column's :class:`VariableInfo`.
    values
        ``(n,)`` float64 values for a numeric column, int64 codes into ``levels`` for a
        categorical one.
    levels
        Category names (categorical columns), else ``None``.
    """

    info: VariableInfo
    values: np.ndarray
    levels: tuple[str, ...] | None = None

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.values.shape[0])

    def num_distinct(self) -> int:
        """Number of distinct values among these rows."""
        return int(np.unique(self.values).size)

    def digest(self) -> str:
        """SHA-256 of the values, levels and reading of this variable (cache key part)."""
        h = hashlib.sha256()
        h.update(repr((self.info.kind, self.info.discrete, self.levels)).encode())
        h.update(str(self.values.dtype).encode())
        h.update(np.ascontiguousarray(self.values).tobytes())
        return h.hexdigest()


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(series) or (
        pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype)
    )


def describe_column(series: pd.Series, max_levels: int = 12, discrete: bool | None = None) -> VariableInfo:
    """Classify one column.

    Parameters
    ----------
    series
        ``(N,)`` column; missing values are ignored.
    max_levels
        A numeric column with at most this many distinct values counts as discrete.
    discrete
        Override of the detection (``None`` = detect). A categorical column cannot be
        declared continuous.

    Returns
    -------
    VariableInfo

    Raises
    ------
    ValueError
        If a numeric column holds infinite values, or a categorical column is declared
        continuous.
    """
    name = str(series.name)
    non_missing = series.dropna()
    num_levels = int(non_missing.nunique())
    if _is_numeric(series):
        values = non_missing.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"column {name!r}: expected finite numbers or NaN, found +-inf")
        is_discrete = num_levels <= max_levels if discrete is None else bool(discrete)
        return VariableInfo(name, "numeric", is_discrete, num_levels)
    if discrete is False:
        raise ValueError(
            f"discrete: column {name!r} is categorical ({series.dtype}); it cannot be declared continuous"
        )
    return VariableInfo(name, "categorical", True, num_levels)


def _discrete_overrides(discrete: Mapping[str, bool] | Iterable[str] | None) -> dict[str, bool]:
    if discrete is None:
        return {}
    if isinstance(discrete, str):
        raise TypeError(f"discrete: expected a mapping or a list of column names, found the string {discrete!r}")
    if isinstance(discrete, Mapping):
        return {str(k): bool(v) for k, v in discrete.items()}
    return {str(k): True for k in discrete}


def describe_columns(
    df: pd.DataFrame,
    columns: Iterable[str],
    max_levels: int = 12,
    discrete: Mapping[str, bool] | Iterable[str] | None = None,
) -> dict[str, VariableInfo]:
    """Classify several columns of ``df``.

    Parameters
    ----------
    df
        ``(N, P)`` table.
    columns
        Column names to classify.
    max_levels
        See :func:`describe_column`.
    discrete
        Mapping ``column -> bool`` overriding the detection, or a list of columns to
        treat as discrete. Names not in ``columns`` raise.

    Returns
    -------
    dict
        ``{column: VariableInfo}``.
    """
    columns = list(columns)
    overrides = _discrete_overrides(discrete)
    unknown = sorted(set(overrides) - set(columns))
    if unknown:
        raise ValueError(f"discrete: expected names among the tested columns, found unknown {unknown}")
    return {c: describe_column(df[c], max_levels, overrides.get(c)) for c in columns}


def _encode(series: pd.Series, info: VariableInfo) -> EncodedVariable:
    if info.kind == "numeric":
        return EncodedVariable(info, series.to_numpy(dtype=np.float64))
    as_text = series.astype(str).to_numpy()
    levels, codes = np.unique(as_text, return_inverse=True)
    return EncodedVariable(info, codes.astype(np.int64), tuple(str(v) for v in levels))


def complete_pair(
    df: pd.DataFrame, x_info: VariableInfo, y_info: VariableInfo
) -> tuple[EncodedVariable, EncodedVariable]:
    """Cut a pair of columns to its complete rows and encode both sides.

    Parameters
    ----------
    df
        ``(N, P)`` table holding both columns.
    x_info, y_info
        Readings of the two columns.

    Returns
    -------
    tuple of EncodedVariable
        Both sides over the ``n <= N`` rows where neither is missing.
    """
    x, y = df[x_info.name], df[y_info.name]
    keep = (x.notna() & y.notna()).to_numpy()
    return _encode(x[keep], x_info), _encode(y[keep], y_info)


def kernel_input(var: EncodedVariable) -> np.ndarray:
    """Matrix a kernel test (KCI, RCIT) reads for one side.

    Parameters
    ----------
    var
        Encoded variable with ``n`` rows.

    Returns
    -------
    numpy.ndarray
        ``(n, 1)`` floats for a numeric column; one-hot ``(n, L)`` for a categorical
        column with ``L > 2`` levels present, ``(n, 1)`` for ``L = 2``.
    """
    if var.info.kind == "numeric":
        return var.values.reshape(-1, 1)
    present, codes = np.unique(var.values, return_inverse=True)
    onehot = np.zeros((var.n, present.size), dtype=np.float64)
    onehot[np.arange(var.n), codes] = 1.0
    return onehot[:, 1:] if present.size == 2 else onehot


def integer_codes(var: EncodedVariable, bins: int | None = None) -> np.ndarray:
    """Integer codes for chi-square / G-square.

    Parameters
    ----------
    var
        Encoded variable with ``n`` rows.
    bins
        Number of quantile bins for a continuous column; ``None`` = do not bin.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 codes ``0..L-1``.

    Raises
    ------
    NotApplicable
        If the column is continuous and ``bins`` is ``None``.
    """
    if var.info.discrete:
        return np.unique(var.values, return_inverse=True)[1].astype(np.int64)
    if bins is None:
        raise NotApplicable(
            f"{var.info.name!r} is continuous ({var.info.num_levels} distinct values); "
            "pass bins= to discretise it or discrete= to declare it discrete"
        )
    codes = pd.qcut(var.values, q=bins, labels=False, duplicates="drop")
    return np.asarray(codes, dtype=np.int64)
