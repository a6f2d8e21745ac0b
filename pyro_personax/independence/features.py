"""Which columns of a table the Level I battery tests when no features are named.

Testing every column that is not a trait inflates the battery: an identifier, the other
aggregated traits and the per-LLM scores that a ``final_<trait>`` is the median of are
not features, yet each adds pairs to the dependent counts and to the Benjamini-Hochberg
denominators. :func:`default_features` keeps the structured features and says why it
left out each other column. Rules, in order, for every column that is not a trait:

1. ``identifier``: a name in ``id_columns`` (the schema's ``ID`` by default);
2. ``another trait column``: ``final_<trait>`` (:func:`~pyro_personax.data.schema.final_column`);
3. ``per-LLM trait score``: ``<llm>_<trait>`` (:func:`~pyro_personax.data.schema.trait_column`,
   ``<llm>`` a safe name, ``<trait>`` one of :data:`~pyro_personax.data.schema.TRAITS`);
4. ``embedding``: ``face_emb_*`` / ``text_emb_*`` (a Level II modality);
5. ``non-scalar``: cells holding lists or arrays;
6. ``constant``: at most one distinct non-missing value;
7. ``identifier-like``: a string, categorical or integer column with one distinct value
   per non-missing row. The biographical and face-attribute fields of the schema are
   exempt: an integer ``Birthyear`` may be distinct on a small table and is still a feature.

Everything else is tested: on a CelebPersona / AthlePersona table that is exactly the
schema's biographical fields (with the derived ``birth_doy_sin/cos``) and face attributes,
the columns of :attr:`~pyro_personax.data.datasets.PersonaDataset.feature_columns`; on
another table, its other columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from pyro_personax.data.datasets import DATE_FEATURES
from pyro_personax.data.schema import (
    BIO_FIELDS,
    FACE_ATTRIBUTES,
    FACE_PREFIX,
    OPTIONAL_FACE_ATTRIBUTES,
    TEXT_PREFIX,
    TRAITS,
    final_column,
)
from pyro_personax.names import SAFE_NAME

__all__ = ["FeatureSelection", "default_features", "SCHEMA_FEATURES", "EXCLUSION_REASONS"]

#: Feature columns of the known schema (both kinds), never read as identifier-like.
SCHEMA_FEATURES = tuple(dict.fromkeys(
    [f for kind in BIO_FIELDS for f in BIO_FIELDS[kind] if f != "ID"]
    + [*FACE_ATTRIBUTES, *OPTIONAL_FACE_ATTRIBUTES, *DATE_FEATURES]
))

#: Why :func:`default_features` leaves a column out, by rule.
EXCLUSION_REASONS = {
    "identifier": "identifier",
    "trait": "another trait column",
    "llm_score": "per-LLM trait score (final_<trait> is their median)",
    "embedding": "embedding (a Level II modality)",
    "non_scalar": "non-scalar cells (lists or arrays)",
    "constant": "constant (at most one distinct value)",
    "identifier_like": "one distinct value per row (identifier-like)",
}

_LLM_SCORE = re.compile(rf"(?:{SAFE_NAME.pattern})_(?:{'|'.join(TRAITS)})")
_FINAL = {final_column(t) for t in TRAITS}


@dataclass(frozen=True)
class FeatureSelection:
    """The features a battery tests and the columns it left out.

    Parameters
    ----------
    features
        Feature columns, in the table's order.
    excluded
        ``{column: reason}`` for every other column that is not a trait (reasons from
        :data:`EXCLUSION_REASONS`).

    Examples
    --------
    >>> sel = FeatureSelection(("Height",), {"ID": "identifier"})
    >>> sel.describe()
    'testing 1 feature column; left out as identifier: ID'
    """

    features: tuple[str, ...]
    excluded: Mapping[str, str] = field(default_factory=dict)

    def by_reason(self) -> dict[str, list[str]]:
        """``{reason: [columns]}`` of the excluded columns, reasons in order of first use."""
        groups: dict[str, list[str]] = {}
        for column, reason in self.excluded.items():
            groups.setdefault(reason, []).append(column)
        return groups

    def describe(self, max_names: int = 6) -> str:
        """One line: how many features are tested and which columns were left out, and why."""
        k = len(self.features)
        text = f"testing {k} feature column{'s' if k != 1 else ''}"
        if not self.excluded:
            return text
        parts = []
        for reason, columns in self.by_reason().items():
            names = ", ".join(columns[:max_names])
            if len(columns) > max_names:
                names += f" and {len(columns) - max_names} more"
            parts.append(f"as {reason}: {names}")
        return f"{text}; left out " + "; ".join(parts)

    def to_dict(self) -> dict:
        """JSON-ready form, as stored in the battery table's ``attrs["features"]``."""
        return {"tested": list(self.features), "excluded": dict(self.excluded)}


def _is_identifier_like(series: pd.Series, num_distinct: int) -> bool:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_float_dtype(series):
        return False
    n = int(series.notna().sum())
    return n > 1 and num_distinct == n


def _reason(column: str, series: pd.Series, id_columns: set[str]) -> str | None:
    """Rule key of :data:`EXCLUSION_REASONS` that leaves ``column`` out, or ``None``."""
    if column in id_columns:
        return "identifier"
    if column in _FINAL:
        return "trait"
    if _LLM_SCORE.fullmatch(column):
        return "llm_score"
    if column.startswith((FACE_PREFIX, TEXT_PREFIX)):
        return "embedding"
    try:
        num_distinct = int(series.nunique(dropna=True))
    except TypeError:
        return "non_scalar"
    if num_distinct <= 1:
        return "constant"
    if column not in SCHEMA_FEATURES and _is_identifier_like(series, num_distinct):
        return "identifier_like"
    return None


def default_features(
    df: pd.DataFrame, traits: Sequence[str], id_columns: Iterable[str] = ("ID",)
) -> FeatureSelection:
    """The feature columns a battery tests when none are named (rules in the module docstring).

    Parameters
    ----------
    df
        ``(N, P)`` table.
    traits
        Trait columns (neither tested as features nor listed as excluded).
    id_columns
        Identifier columns to leave out by name.

    Returns
    -------
    FeatureSelection
        The features in the table's order and ``{column: reason}`` of the others.

    Examples
    --------
    >>> df = pd.DataFrame({"ID": ["a", "b", "c"], "final_o": [1.0, 2.0, 3.0], "final_c": [2.0, 2.0, 1.0],
    ...                    "gpt4o_o": [1, 2, 3], "Height": [170.0, 180.0, 165.0], "team": ["x", "x", "x"]})
    >>> sel = default_features(df, ["final_o"])
    >>> sel.features
    ('Height',)
    >>> sel.excluded["gpt4o_o"], sel.excluded["team"]
    ('per-LLM trait score (final_<trait> is their median)', 'constant (at most one distinct value)')
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df: expected a pandas DataFrame, found {type(df).__name__}")
    traits = set(traits)
    id_columns = {str(c) for c in id_columns if c is not None}
    features, excluded = [], {}
    for column in df.columns:
        if column in traits:
            continue
        key = _reason(str(column), df[column], id_columns)
        if key is None:
            features.append(column)
        else:
            excluded[column] = EXCLUSION_REASONS[key]
    return FeatureSelection(tuple(features), excluded)
