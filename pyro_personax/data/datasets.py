"""The typed PersonaX dataset object and the typing of its biographical table.

:class:`PersonaDataset` holds one CelebPersona / AthlePersona data set in the schema of
:mod:`pyro_personax.data.schema`: the typed biographical table, the per-LLM trait
scores, the aggregated traits and the face / text embedding measurements with their
masks. It is built by the loaders of :mod:`pyro_personax.data.persona_io` and by the
synthetic generator, both through :meth:`PersonaDataset.from_frame`, which validates
everything and never changes a value (no filling, no clipping).

Missing measurements
    A face measurement is missing where its embedding row is missing (all ``NaN``). The
    text measurement of an LLM is missing where its embedding row is missing **or**
    where that LLM scored ``0`` ("insufficient information") on all five traits: its
    description then carries no trait information.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pyro_personax.data.checks import constant_features, constant_warnings_off, warn_constant
from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.data.schema import (
    BIO_FIELDS,
    CATEGORICAL_FIELDS,
    DEFAULT_LLMS,
    FACE_ATTRIBUTES,
    FINAL_RANGE,
    INSUFFICIENT,
    OPTIONAL_FACE_ATTRIBUTES,
    TRAIT_SCALE,
    TRAITS,
    check_kind,
    final_column,
    missing_fields_message,
    required_fields,
    trait_column,
)
from pyro_personax.data.traits import aggregate_traits, trait_agreement
from pyro_personax.names import check_name

__all__ = ["PersonaDataset", "DATE_FEATURES"]

DATE_FEATURES = ("birth_doy_sin", "birth_doy_cos")
_LEAP_YEAR = 2000  # day-of-year is counted in a leap year, so 29 February is valid


def _bad_examples(values: pd.Series, n: int = 3) -> list:
    return [str(v) for v in values.unique()[:n]]


def _numeric_field(s: pd.Series, name: str, source: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        bad = s[pd.to_numeric(s, errors="coerce").isna() & s.notna()]
        raise ValueError(
            f"{source}: field {name!r} must be numeric; found dtype {s.dtype} with values such as "
            f"{_bad_examples(bad if len(bad) else s)}"
        )
    v = s.astype("float64")
    if np.isinf(v.to_numpy()).any():
        raise ValueError(f"{source}: field {name!r} contains inf")
    return v


def _face_attribute(s: pd.Series, name: str, source: str) -> pd.Series:
    """CelebA ``+1/-1`` (or ``1/0``, or bool) -> nullable boolean; anything else raises."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("boolean")
    if not pd.api.types.is_numeric_dtype(s.dtype):
        raise ValueError(f"{source}: face attribute {name!r} must be +1/-1; found dtype {s.dtype}")
    values = set(s.dropna().unique().tolist())
    if not (values <= {-1, 1} or values <= {0, 1}):
        raise ValueError(
            f"{source}: face attribute {name!r} must hold +1/-1 (or 1/0); found values {sorted(values)}"
        )
    out = pd.Series(pd.array([pd.NA] * len(s), dtype="boolean"), index=s.index, name=s.name)
    present = s.notna()
    out[present] = s[present] == 1
    return out


def _date_features(table: pd.DataFrame, ids: np.ndarray, source: str) -> pd.DataFrame:
    """``birth_doy_sin/cos`` from ``Birthmonth`` / ``Birthday`` (NaN where either is missing)."""
    month, day = table["Birthmonth"].to_numpy(), table["Birthday"].to_numpy()
    known = ~np.isnan(month) & ~np.isnan(day)
    stamp = pd.to_datetime(
        pd.DataFrame({"year": _LEAP_YEAR, "month": np.where(known, month, 1),
                      "day": np.where(known, day, 1)}), errors="coerce")
    bad = known & stamp.isna().to_numpy()
    if bad.any():
        raise ValueError(
            f"{source}: fields 'Birthmonth'/'Birthday' hold {int(bad.sum())} invalid dates, e.g. "
            f"ID {ids[bad][:3].tolist()} with month {month[bad][:3].tolist()} and day {day[bad][:3].tolist()}"
        )
    angle = 2 * np.pi * (stamp.dt.day_of_year.to_numpy(dtype=float) - 1) / 366.0
    return pd.DataFrame({"birth_doy_sin": np.where(known, np.sin(angle), np.nan),
                         "birth_doy_cos": np.where(known, np.cos(angle), np.nan)}, index=table.index)


def _check_ids(ids: pd.Series, source: str) -> np.ndarray:
    if ids.isna().any():
        raise ValueError(f"{source}: field 'ID' has {int(ids.isna().sum())} missing values")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise ValueError(
            f"{source}: field 'ID' must be unique; found {dup.nunique()} duplicated IDs, e.g. "
            f"{_bad_examples(dup, 5)}"
        )
    return ids.to_numpy()


def type_bio_table(raw: pd.DataFrame, kind: str, source: str = "table") -> pd.DataFrame:
    """Typed biographical table of ``kind`` from a table in the released layout.

    Numeric fields -> float64, ``Occupation`` / ``Gender`` / ``League`` -> ``category``
    (names kept), face attributes -> nullable boolean, plus ``birth_doy_sin/cos``.

    Parameters
    ----------
    raw
        ``(N, ...)`` table with the fields of :func:`~pyro_personax.data.schema.required_fields`.
    kind
        ``"celeb"`` or ``"athle"``.
    source
        Name of the file, used in error messages.

    Returns
    -------
    pandas.DataFrame
        ``(N, F)`` typed table, ``RangeIndex``.
    """
    fields = list(BIO_FIELDS[check_kind(kind)])
    attrs = list(FACE_ATTRIBUTES) + [a for a in OPTIONAL_FACE_ATTRIBUTES if a in raw.columns] \
        if kind == "celeb" else []
    missing = [f for f in fields + attrs if f not in raw.columns]
    if missing:
        raise ValueError(missing_fields_message(missing, list(raw.columns), source))
    raw = raw.reset_index(drop=True)
    ids = _check_ids(raw["ID"], source)
    out = {"ID": raw["ID"]}
    for f in fields[1:]:
        if f in CATEGORICAL_FIELDS[kind]:
            out[f] = raw[f].astype("category")
        else:
            out[f] = _numeric_field(raw[f], f, source)
    for a in attrs:
        out[a] = _face_attribute(raw[a], a, source)
    table = pd.DataFrame(out)
    return pd.concat([table, _date_features(table, ids, source)], axis=1)


def _where(bad: np.ndarray, values: np.ndarray, ids: np.ndarray, n: int = 5) -> str:
    """``"3 rows, e.g. row 0 (ID 101): 9.0; ..."`` for the ``True`` rows of ``bad``."""
    rows = np.flatnonzero(bad)
    shown = "; ".join(f"row {r} (ID {ids[r]}): {values[r]:g}" for r in rows[:n])
    return f"{len(rows)} row(s), e.g. {shown}"


def _check_scores(raw: pd.DataFrame, llms, traits, source: str) -> pd.DataFrame:
    cols = [trait_column(m, t) for m in llms for t in traits]
    missing = [c for c in cols if c not in raw.columns]
    if missing:
        raise ValueError(missing_fields_message(missing, list(raw.columns), source))
    allowed = {INSUFFICIENT, *TRAIT_SCALE}
    ids = raw["ID"].to_numpy()
    for c in cols:
        s = raw[c]
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            raise ValueError(f"{source}: trait score {c!r} must be numeric; found dtype {s.dtype}")
        bad = sorted(set(s.dropna().unique().tolist()) - allowed)
        if bad:
            v = s.to_numpy(dtype=float, na_value=np.nan)
            raise ValueError(
                f"{source}: trait score {c!r} must be on the scale {sorted(allowed)} "
                f"(0 = insufficient information; an empty cell is missing); found {bad[:5]} in "
                + _where(np.isin(v, bad), v, ids)
            )
    return raw[cols].astype("float64").reset_index(drop=True)


def _check_final(s: pd.Series, name: str, ids: np.ndarray, source: str) -> pd.Series:
    """A released aggregated trait: numeric, in ``FINAL_RANGE`` or missing; kept as given."""
    v = _numeric_field(s.reset_index(drop=True), name, source)
    lo, hi = FINAL_RANGE
    values = v.to_numpy()
    bad = (values < lo) | (values > hi)
    if bad.any():
        raise ValueError(
            f"{source}: aggregated trait {name!r} must lie in [{lo:g}, {hi:g}] (the median of the scores "
            f"{list(TRAIT_SCALE)}; an empty cell is missing); found " + _where(bad, values, ids)
            + f". Rename it away (columns={{{name!r}: 'released_{name}'}}) to recompute it from the "
            "per-LLM scores"
        )
    return v


def _embedding(arr, name: str, n: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate an ``(N, d)`` embedding; return it unchanged and its row mask."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "b":
        raise ValueError(f"{source}: embedding {name!r} is boolean; embeddings are modelled as Normal "
                         "data, so they must be float (convert 0/1 values with .astype(float))")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{source}: embedding {name!r} must be numeric; found dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"{source}: embedding {name!r} must have shape ({n}, d) (one row per table row); "
                         f"found {arr.shape}")
    nan = np.isnan(arr) if arr.dtype.kind == "f" else np.zeros(arr.shape, dtype=bool)
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    if partial.any():
        raise ValueError(f"{source}: embedding {name!r} has {int(partial.sum())} rows with some NaN "
                         f"(first row {int(np.flatnonzero(partial)[0])}); a missing row must be all NaN")
    if arr.dtype.kind == "f" and np.isinf(arr[~nan.all(axis=1)]).any():
        raise ValueError(f"{source}: embedding {name!r} contains inf")
    return arr, ~nan.all(axis=1)


def _warn_constant_fields(source, table, traits, face, face_masks, text, text_masks) -> None:
    """Log the fields and embedding dimensions that hold one value across all people."""
    frame = pd.concat([traits, table.drop(columns="ID")], axis=1)
    columns = []
    for c in frame.columns:
        s = frame[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            columns.append(np.where(s.cat.codes.to_numpy() < 0, np.nan, s.cat.codes.to_numpy()))
        else:
            columns.append(s.to_numpy(dtype=float, na_value=np.nan))
    if columns:
        const = constant_features(np.stack(columns, axis=1))
        warn_constant(f"{source}: fields", [repr(frame.columns[j]) for j in const])
    for k, (arr, mask) in enumerate(zip(face, face_masks)):
        warn_constant(f"{source}: embedding 'face_emb_{k}'",
                      [f"dimension {j}" for j in constant_features(arr, mask)])
    for m, arr in text.items():
        warn_constant(f"{source}: embedding 'text_emb_{m}'",
                      [f"dimension {j}" for j in constant_features(arr, text_masks[m])])


@dataclass(frozen=True, eq=False)
class PersonaDataset:
    """One PersonaX data set (CelebPersona or AthlePersona schema), typed and validated.

    Parameters
    ----------
    kind
        ``"celeb"`` or ``"athle"``.
    table
        ``(N, F)`` typed biographical table (``ID`` column, numeric float64 fields,
        categorical fields, nullable-boolean face attributes, ``birth_doy_sin/cos``).
    trait_scores
        ``(N, L*5)`` float per-LLM scores ``<llm>_<trait>`` (0 = insufficient
        information, ``NaN`` = missing cell).
    traits
        ``(N, 5)`` aggregated ``final_<trait>``.
    face
        Tuple of ``K`` face-embedding arrays ``(N, d_face)`` (``NaN`` rows = missing).
    face_mask
        ``(N, K)`` bool, ``True`` = face measurement observed.
    text
        Mapping LLM -> ``(N, d_text)`` text-embedding array.
    text_mask
        Mapping LLM -> ``(N,)`` bool, ``True`` = observed (see the module docstring).
    llms, trait_keys
        LLM keys and trait keys of the score columns.
    source
        Where the data came from (file path or ``"synthetic"``).

    Examples
    --------
    >>> from pyro_personax.synthetic.persona import persona
    >>> data, truth = persona(200, seed=0, kind="athle")
    >>> data.num_entities, data.traits.columns.tolist()[:2]
    (200, ['final_o', 'final_c'])
    >>> mm = data.to_multimodal(tabular=["League", "Height"])
    >>> mm.modalities
    ('face', 'text', 'bio')
    """

    kind: str
    table: pd.DataFrame
    trait_scores: pd.DataFrame
    traits: pd.DataFrame
    face: tuple[np.ndarray, ...] = ()
    face_mask: np.ndarray | None = None
    text: Mapping[str, np.ndarray] = field(default_factory=dict)
    text_mask: Mapping[str, np.ndarray] = field(default_factory=dict)
    llms: tuple[str, ...] = DEFAULT_LLMS
    trait_keys: tuple[str, ...] = TRAITS
    source: str = ""

    def __post_init__(self):
        n = len(self.table)
        for name, frame in (("trait_scores", self.trait_scores), ("traits", self.traits)):
            if len(frame) != n:
                raise ValueError(f"{name}: expected {n} rows (as table); found {len(frame)}")
        K = len(self.face)
        if self.face_mask is None or np.shape(self.face_mask) != (n, K):
            raise ValueError(f"face_mask: expected shape ({n}, {K}); found {np.shape(self.face_mask)}")
        if set(self.text) != set(self.text_mask):
            raise ValueError(f"text_mask: expected keys {sorted(self.text)}; found {sorted(self.text_mask)}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        raw: pd.DataFrame,
        kind: str,
        *,
        face: Sequence[np.ndarray] = (),
        text: Mapping[str, np.ndarray] | None = None,
        llms: Sequence[str] = DEFAULT_LLMS,
        traits: Sequence[str] = TRAITS,
        source: str = "table",
    ) -> PersonaDataset:
        """Validate a table in the released layout plus embeddings and build the data set.

        Parameters
        ----------
        raw
            ``(N, ...)`` table with our field names (after any ``columns=`` mapping).
        kind
            ``"celeb"`` or ``"athle"``.
        face
            ``K`` arrays ``(N, d_face)``; an all-``NaN`` row is a missing measurement.
        text
            LLM -> ``(N, d_text)`` array; an all-``NaN`` row is a missing measurement.
        llms, traits
            Keys of the per-LLM score columns.
        source
            File name for error messages.

        Returns
        -------
        PersonaDataset
        """
        llms, traits = tuple(llms), tuple(traits)
        for llm in llms:
            check_name("llms", llm)
        missing = [f for f in required_fields(kind, llms, traits) if f not in raw.columns]
        if missing:
            raise ValueError(missing_fields_message(missing, list(raw.columns), source))
        table = type_bio_table(raw, kind, source)
        scores = _check_scores(raw, llms, traits, source)
        agg = aggregate_traits(scores, llms, traits)
        for t in traits:
            col = final_column(t)
            if col in raw.columns:
                agg[col] = _check_final(raw[col], col, table["ID"].to_numpy(), source)
        n = len(table)
        face_arrays, face_masks = [], []
        for k, arr in enumerate(face):
            arr, mask = _embedding(arr, f"face_emb_{k}", n, source)
            face_arrays.append(arr)
            face_masks.append(mask)
        text_arrays, text_masks = {}, {}
        for m, arr in (text or {}).items():
            if m not in llms:
                raise ValueError(f"{source}: text embedding of unknown LLM {m!r}; llms are {list(llms)}")
            arr, mask = _embedding(arr, f"text_emb_{m}", n, source)
            said_nothing = (scores[[trait_column(m, t) for t in traits]] == INSUFFICIENT).all(axis=1)
            text_arrays[m], text_masks[m] = arr, mask & ~said_nothing.to_numpy()
        face_mask = np.stack(face_masks, axis=1) if face_masks else np.zeros((n, 0), dtype=bool)
        _warn_constant_fields(source, table, agg, face_arrays, face_masks, text_arrays, text_masks)
        return cls(kind, table, scores, agg, tuple(face_arrays), face_mask, text_arrays, text_masks,
                   llms, traits, source)

    # ------------------------------------------------------------------ properties
    @property
    def num_entities(self) -> int:
        """Number of people ``N``."""
        return len(self.table)

    @property
    def ids(self) -> np.ndarray:
        """``(N,)`` identifiers."""
        return self.table["ID"].to_numpy()

    @property
    def trait_columns(self) -> list[str]:
        """Aggregated trait columns ``final_<trait>`` of :meth:`structured_frame`."""
        return list(self.traits.columns)

    @property
    def feature_columns(self) -> list[str]:
        """Structured feature columns of :meth:`structured_frame` (everything but ID and traits)."""
        return [c for c in self.table.columns if c != "ID"]

    def __len__(self) -> int:
        return self.num_entities

    def __repr__(self) -> str:
        dims = [a.shape[1] for a in self.face]
        tdims = {m: a.shape[1] for m, a in self.text.items()}
        return (f"PersonaDataset(kind={self.kind!r}, N={self.num_entities}, llms={list(self.llms)}, "
                f"face dims={dims}, text dims={tdims})")

    # ------------------------------------------------------------------ views
    def scores(self, llm: str) -> pd.DataFrame:
        """``(N, 5)`` scores of one LLM, columns = trait keys."""
        if llm not in self.llms:
            raise ValueError(f"llm: expected one of {list(self.llms)}; found {llm!r}")
        cols = [trait_column(llm, t) for t in self.trait_keys]
        return self.trait_scores[cols].set_axis(list(self.trait_keys), axis=1)

    def agreement(self, metric: str = "ordinal") -> pd.DataFrame:
        """Per-trait agreement between the LLMs (see :func:`~pyro_personax.data.traits.trait_agreement`)."""
        return trait_agreement(self.trait_scores, self.llms, self.trait_keys, metric=metric)

    def structured_frame(self) -> pd.DataFrame:
        """One table for the Level I battery: aggregated traits then structured features.

        Returns
        -------
        pandas.DataFrame
            ``(N, 5 + F)`` with index ``ID``; columns :attr:`trait_columns` then
            :attr:`feature_columns`.
        """
        frame = pd.concat([self.traits, self.table.drop(columns="ID")], axis=1)
        frame.index = pd.Index(self.ids, name="ID")
        return frame

    def to_multimodal(
        self,
        face_measurements: Sequence[int] | None = None,
        text_llms: Sequence[str] | None = None,
        tabular: Sequence[str] | None = None,
    ) -> MultiModalData:
        """The model's container: face, text and (optionally) a tabular modality.

        Parameters
        ----------
        face_measurements
            Indices of the face measurements to use (``None`` = all; ``()`` = no face).
        text_llms
            LLMs whose text embeddings to use, one measurement each (``None`` = all with
            embeddings; ``()`` = no text).
        tabular
            Columns of :meth:`structured_frame` for the tabular modality ``"bio"``
            (category -> categorical, bool -> bernoulli, numeric -> normal likelihood);
            ``None`` = no tabular modality.

        Returns
        -------
        MultiModalData
            Modalities ``"face"`` (``K`` measurements), ``"text"`` (one per LLM,
            measurement names = LLM keys) and ``"bio"``; missing measurements masked.
        """
        ks = range(len(self.face)) if face_measurements is None else list(face_measurements)
        llms = [m for m in self.llms if m in self.text] if text_llms is None else list(text_llms)
        measurements, masks, names = {}, {}, {}
        for k in ks:
            if not isinstance(k, (int, np.integer)) or not 0 <= k < len(self.face):
                raise ValueError(f"face_measurements: expected indices in [0, {len(self.face)}); found {k!r}")
        if ks:
            measurements["face"] = [self.face[k] for k in ks]
            masks["face"] = self.face_mask[:, list(ks)]
            names["face"] = [f"face_{k}" for k in ks]
        unknown = [m for m in llms if m not in self.text]
        if unknown:
            raise ValueError(f"text_llms: no text embedding for {unknown}; available: {list(self.text)}")
        if llms:
            measurements["text"] = [self.text[m] for m in llms]
            masks["text"] = np.stack([self.text_mask[m] for m in llms], axis=1)
            names["text"] = llms
        frame = None
        if tabular is not None:
            structured = self.structured_frame().reset_index(drop=True)
            bad = [c for c in tabular if c not in structured.columns]
            if bad:
                raise ValueError(missing_fields_message(bad, list(structured.columns), "tabular"))
            frame = structured[list(tabular)]
        with constant_warnings_off():  # reported when the data set was built
            return MultiModalData(measurements, masks=masks, measurement_names=names, tabular=frame,
                                  entity_ids=self.ids)

    def released_frame(self) -> pd.DataFrame:
        """The table in the released layout (face attributes as ``+1/-1``, no derived features).

        Returns
        -------
        pandas.DataFrame
            ``(N, ...)``: biographical fields, face attributes, ``<llm>_<trait>``,
            ``final_<trait>``.
        """
        table = self.table.drop(columns=list(DATE_FEATURES))
        for a in (*FACE_ATTRIBUTES, *OPTIONAL_FACE_ATTRIBUTES):
            if a in table.columns:
                table[a] = table[a].map({True: 1, False: -1}).astype("Int64")
        return pd.concat([table, self.trait_scores, self.traits], axis=1)

