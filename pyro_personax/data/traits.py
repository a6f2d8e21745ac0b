"""Aggregation of per-LLM Big Five scores and the agreement between LLMs.

The rule of the paper: per person and trait, drop the LLM scores equal to ``0``
("insufficient information") and missing cells, take the median of the rest; when
none remain the aggregated trait is missing (``NaN``). How much the LLMs disagree is
reported by :func:`trait_agreement`: it is the measurement noise that the
multi-measurement model of Level II exploits.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pyro_personax.data.schema import (
    DEFAULT_LLMS,
    INSUFFICIENT,
    TRAITS,
    final_column,
    missing_fields_message,
    trait_column,
)

__all__ = ["aggregate_traits", "trait_agreement", "krippendorff_alpha", "cohen_kappa", "score_matrix"]

_METRICS = ("nominal", "ordinal", "interval")


def score_matrix(df: pd.DataFrame, llms: Sequence[str], trait: str,
                 pattern: str = "{llm}_{trait}") -> np.ndarray:
    """The ``(N, L)`` float matrix of the scores of ``llms`` for ``trait``.

    Raises a ``ValueError`` naming the missing columns (with the closest names present)
    and a ``TypeError`` naming a non-numeric column. ``NaN`` stays ``NaN``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df: expected a pandas DataFrame; found {type(df).__name__}")
    if len(llms) == 0:
        raise ValueError("llms: expected at least one LLM; found none")
    cols = [trait_column(m, trait, pattern) for m in llms]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(missing_fields_message(missing, list(df.columns), "df"))
    out = []
    for c in cols:
        s = df[c]
        if not (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)):
            raise TypeError(f"df[{c!r}]: expected numeric trait scores; found dtype {s.dtype}")
        out.append(s.to_numpy(dtype=float, na_value=np.nan))
    return np.stack(out, axis=1)


def _median_valid(scores: np.ndarray, insufficient: float) -> np.ndarray:
    valid = np.where(scores == insufficient, np.nan, scores)
    result = np.full(scores.shape[0], np.nan)
    has = ~np.isnan(valid).all(axis=1)
    if has.any():
        result[has] = np.nanmedian(valid[has], axis=1)
    return result


def aggregate_traits(
    df: pd.DataFrame,
    llms: Sequence[str] = DEFAULT_LLMS,
    traits: Sequence[str] = TRAITS,
    pattern: str = "{llm}_{trait}",
    *,
    insufficient: float = INSUFFICIENT,
) -> pd.DataFrame:
    """Aggregate per-LLM trait scores into ``final_<trait>`` columns.

    Per row and trait: scores equal to ``insufficient`` (0, "insufficient information")
    and missing cells are dropped, the median of the remaining scores is taken; ``NaN``
    when none remain.

    Parameters
    ----------
    df
        Table with the columns ``pattern.format(llm=..., trait=...)``, ``N`` rows.
    llms
        LLM keys (default ``("gpt4o", "gemini", "llama")``).
    traits
        Trait keys (default ``("o", "c", "e", "a", "n")``).
    pattern
        Column-name pattern with ``{llm}`` and ``{trait}`` fields.
    insufficient
        The score meaning "insufficient information".

    Returns
    -------
    pandas.DataFrame
        ``(N, len(traits))`` float columns ``final_<trait>``, index of ``df``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a_o": [0, 1], "b_o": [3, 0], "c_o": [2, 0]})
    >>> aggregate_traits(df, llms=("a", "b", "c"), traits=("o",))["final_o"].tolist()
    [2.5, 1.0]
    """
    out = {final_column(t): _median_valid(score_matrix(df, llms, t, pattern), insufficient) for t in traits}
    return pd.DataFrame(out, index=df.index)


def krippendorff_alpha(ratings: np.ndarray, metric: str = "ordinal") -> float:
    """Krippendorff's alpha of a ``(units, coders)`` rating matrix.

    :func:`krippendorff.alpha` (the ``krippendorff`` package) on the pairable units, with
    the undefined cases returned as ``NaN`` instead of raised.

    Parameters
    ----------
    ratings
        ``(N, L)`` float array, ``NaN`` = no rating. Units with fewer than two ratings
        are not pairable and are ignored.
    metric
        ``"nominal"``, ``"ordinal"`` or ``"interval"``.

    Returns
    -------
    float
        ``1 - D_o / D_e``; ``NaN`` when no unit is pairable or all pairable values are
        equal (no expected disagreement).

    Examples
    --------
    >>> r = np.array([[1, 1], [2, 2], [1, 2]], dtype=float)
    >>> round(krippendorff_alpha(r, "nominal"), 4)  # 4 / 9
    0.4444
    """
    import krippendorff

    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {_METRICS}; found {metric!r}")
    ratings = np.asarray(ratings, dtype=float)
    if ratings.ndim != 2:
        raise ValueError(f"ratings: expected a (units, coders) matrix; found shape {ratings.shape}")
    pairable = ratings[(~np.isnan(ratings)).sum(axis=1) >= 2]
    values = pairable[~np.isnan(pairable)]
    if values.size == 0 or np.unique(values).size < 2:  # the library raises on these
        return float("nan")
    return float(krippendorff.alpha(reliability_data=pairable.T, level_of_measurement=metric))


def cohen_kappa(a: np.ndarray, b: np.ndarray, weights: str | None = "linear") -> float:
    """Cohen's kappa of two raters on the rows where both rated (``NaN`` = no rating).

    :func:`sklearn.metrics.cohen_kappa_score` on those rows. The ratings are passed as
    integer codes of their sorted distinct values, so any numbers (``1.5`` included) are
    categories and the weights count steps along that order, as scikit-learn does.

    Parameters
    ----------
    a, b
        ``(N,)`` ratings.
    weights
        ``None`` (unweighted), ``"linear"`` or ``"quadratic"`` (over the category order).

    Returns
    -------
    float
        Kappa; ``NaN`` when no row is rated by both or chance agreement is perfect (both
        raters used the same single category).

    Examples
    --------
    >>> cohen_kappa(np.array([1, 1, 1, 2.0]), np.array([1, 1, 2, np.nan]), weights=None)
    0.0
    """
    from sklearn.metrics import cohen_kappa_score

    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights: expected None, 'linear' or 'quadratic'; found {weights!r}")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a, b: expected two (N,) arrays of equal shape; found {a.shape} and {b.shape}")
    both = ~np.isnan(a) & ~np.isnan(b)
    cats = np.unique(np.concatenate([a[both], b[both]]))
    if cats.size < 2:  # no rows, or one category: scikit-learn's kappa is undefined
        return float("nan")
    codes_a, codes_b = np.searchsorted(cats, a[both]), np.searchsorted(cats, b[both])
    return float(cohen_kappa_score(codes_a, codes_b, labels=np.arange(cats.size), weights=weights))


def trait_agreement(
    df: pd.DataFrame,
    llms: Sequence[str] = DEFAULT_LLMS,
    traits: Sequence[str] = TRAITS,
    pattern: str = "{llm}_{trait}",
    *,
    insufficient: float = INSUFFICIENT,
    metric: str = "ordinal",
) -> pd.DataFrame:
    """Per-trait agreement between LLMs, ignoring "insufficient information" scores.

    Parameters
    ----------
    df, llms, traits, pattern, insufficient
        As in :func:`aggregate_traits`.
    metric
        Distance of Krippendorff's alpha (``"ordinal"`` by default: the scale is ordered).

    Returns
    -------
    pandas.DataFrame
        One row per trait (index ``trait``) with columns ``alpha`` (Krippendorff's
        alpha over all LLMs), ``mean_kappa`` (mean pairwise linearly weighted Cohen's
        kappa), ``kappa_<llm1>_<llm2>`` per pair, ``n_pairable`` (rows with at least two
        valid scores), ``n_missing`` (rows with none) and ``insufficient_<llm>`` (share of
        rows where that LLM said ``insufficient``).
    """
    rows = {}
    for t in traits:
        raw = score_matrix(df, llms, t, pattern)
        valid = np.where(raw == insufficient, np.nan, raw)
        n_valid = (~np.isnan(valid)).sum(axis=1)
        row = {"alpha": krippendorff_alpha(valid, metric), "n_pairable": int((n_valid >= 2).sum()),
               "n_missing": int((n_valid == 0).sum())}
        kappas = {}
        for (i, a), (j, b) in itertools.combinations(enumerate(llms), 2):
            kappas[f"kappa_{a}_{b}"] = cohen_kappa(valid[:, i], valid[:, j])
        finite = [k for k in kappas.values() if np.isfinite(k)]
        row["mean_kappa"] = float(np.mean(finite)) if finite else float("nan")
        row.update(kappas)
        for i, m in enumerate(llms):
            row[f"insufficient_{m}"] = float(np.mean(raw[:, i] == insufficient)) if len(raw) else float("nan")
        rows[t] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "trait"
    return out
