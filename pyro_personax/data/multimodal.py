"""A validated container for multimodal, multi-measurement data.

Each modality ``m`` is observed through ``K_m`` measurements of the same dimension
``d_m``, stored as one array of shape ``(N, K_m, d_m)`` (``N`` entities). A measurement
may be missing for some entities: ``masks[m]`` of shape ``(N, K_m)`` is ``True`` where
measurement ``k`` of entity ``n`` was observed. Missing values are never imputed: the
arrays keep what the user gave, and the model ignores masked entries.

A *tabular* modality (biographical features) holds ``P`` columns, each with its own
likelihood (``normal``, ``bernoulli`` or ``categorical``), as an array ``(N, 1, P)``
plus a cell mask ``(N, P)`` (``NaN`` in the DataFrame = missing cell).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from pyro_personax.checks import check_int
from pyro_personax.data.checks import constant_features, warn_constant
from pyro_personax.names import check_name

__all__ = ["MultiModalData", "TabularColumn", "ModalityTensors", "MEASUREMENT_LIKELIHOODS"]

MEASUREMENT_LIKELIHOODS = ("normal", "bernoulli")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_CHECK_ROWS = 65536  # rows per chunk of the value checks
TABULAR = "tabular"


@dataclass(frozen=True)
class TabularColumn:
    """One column of a tabular modality.

    Parameters
    ----------
    name
        Column name.
    likelihood
        ``"normal"``, ``"bernoulli"`` or ``"categorical"``.
    categories
        Category names for a categorical column (codes ``0..C-1`` index them).
    """

    name: str
    likelihood: str
    categories: tuple[str, ...] | None = None

    @property
    def num_categories(self) -> int:
        """Number of categories (0 for non-categorical columns)."""
        return 0 if self.categories is None else len(self.categories)


class ModalityTensors(NamedTuple):
    """Tensors of one modality for the model (masks say what is real).

    Attributes
    ----------
    values
        ``(N, K, d)`` float; masked entries are 0 in what the model reads (see
        :meth:`MultiModalData.to_tensors`).
    mask
        ``(N, K)`` bool, ``True`` = measurement observed.
    cell_mask
        ``(N, d)`` bool for a tabular modality (``True`` = cell observed), else ``None``.
    """

    values: object
    mask: object
    cell_mask: object


def _tabular_from_frame(df: pd.DataFrame, name: str):
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"tabular: expected a pandas DataFrame; found {type(df).__name__}")
    if df.shape[1] == 0:
        raise ValueError(f"tabular modality {name!r}: the DataFrame has no columns")
    cols, arrays = [], []
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = tuple(str(x) for x in s.cat.categories)
            codes = s.cat.codes.to_numpy().astype(float)
            codes[codes < 0] = np.nan
            cols.append(TabularColumn(str(c), "categorical", cats))
            arrays.append(codes)
        elif pd.api.types.is_bool_dtype(s.dtype):
            cols.append(TabularColumn(str(c), "bernoulli"))
            arrays.append(s.astype("float64").to_numpy())
        elif pd.api.types.is_numeric_dtype(s.dtype):
            v = s.to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(v).any():
                raise ValueError(f"tabular modality {name!r}, column {c!r}: contains inf")
            cols.append(TabularColumn(str(c), "normal"))
            arrays.append(v)
        else:
            raise TypeError(
                f"tabular modality {name!r}, column {c!r}: dtype {s.dtype} is not numeric, bool or "
                "category; convert strings with df[col].astype('category')"
            )
    values = np.stack(arrays, axis=1)
    return tuple(cols), values[:, None, :], ~np.isnan(values)


class MultiModalData:
    """Validated multimodal, multi-measurement data for :class:`pyro_personax.PersonaX`.

    Parameters
    ----------
    measurements
        Mapping modality name -> either a list of ``K`` arrays of shape ``(N, d)`` (one
        per measurement) or one array ``(N, K, d)``.
    masks
        Optional mapping modality -> boolean ``(N, K)``; ``True`` where observed. A
        modality without a mask must be finite everywhere.
    likelihoods
        Optional mapping modality -> likelihood name: ``"normal"`` (default),
        ``"bernoulli"`` (0/1 values), or the name of a likelihood added with
        :func:`pyro_personax.models.register_likelihood` (checked when a model is built).
        Boolean arrays are read as 0/1 under any likelihood but ``"normal"``, which
        refuses them.
    measurement_names
        Optional mapping modality -> ``K`` names (e.g. the LLM of each text).
    tabular
        Optional DataFrame for one tabular modality: numeric columns get a Normal
        likelihood, bool columns Bernoulli, ``category`` columns Categorical (names
        kept); ``NaN`` marks a missing cell.
    tabular_name
        Name of the tabular modality.
    entity_ids
        Optional ``(N,)`` identifiers.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> data = MultiModalData({"face": [rng.normal(size=(100, 8)) for _ in range(2)]})
    >>> data.num_entities, data.num_measurements["face"], data.measurement_dim["face"]
    (100, 2, 8)
    """

    def __init__(
        self,
        measurements: Mapping[str, Sequence[np.ndarray] | np.ndarray],
        *,
        masks: Mapping[str, np.ndarray] | None = None,
        likelihoods: Mapping[str, str] | None = None,
        measurement_names: Mapping[str, Sequence[str]] | None = None,
        tabular: pd.DataFrame | None = None,
        tabular_name: str = "bio",
        entity_ids=None,
    ):
        if not isinstance(measurements, Mapping):
            raise TypeError(f"measurements: expected a mapping modality -> arrays; found {type(measurements).__name__}")
        masks = dict(masks or {})
        likelihoods = dict(likelihoods or {})
        measurement_names = dict(measurement_names or {})
        for what, d in (("masks", masks), ("likelihoods", likelihoods), ("measurement_names", measurement_names)):
            unknown = set(d) - set(measurements)
            if unknown:
                raise ValueError(f"{what}: unknown modalities {sorted(unknown)}; modalities are {list(measurements)}")
        self.values: dict[str, np.ndarray] = {}
        self.masks: dict[str, np.ndarray] = {}
        self.likelihood: dict[str, str] = {}
        self.measurement_names: dict[str, tuple[str, ...]] = {}
        self.cell_masks: dict[str, np.ndarray] = {}
        self.tabular_columns: dict[str, tuple[TabularColumn, ...]] = {}
        n_ref = None
        for mod in [*measurements, *([tabular_name] if tabular is not None else [])]:
            check_name("modality name", mod)
        for mod, arrays in measurements.items():
            lik = likelihoods.get(mod, "normal")
            if not isinstance(lik, str) or not lik or lik == TABULAR:
                raise ValueError(
                    f"likelihoods[{mod!r}]: expected a likelihood name such as {MEASUREMENT_LIKELIHOODS} "
                    f"({TABULAR!r} is set by tabular=); found {lik!r}"
                )
            values = self._stack(mod, arrays, lik)
            n_ref = self._check_rows(mod, values.shape[0], n_ref)
            mask = self._mask(mod, masks.get(mod), values.shape[:2])
            self._check_values(mod, values, mask, lik)
            self.values[mod], self.masks[mod], self.likelihood[mod] = values, mask, lik
            self.measurement_names[mod] = self._names(mod, measurement_names.get(mod), values.shape[1])
            for k, name in enumerate(self.measurement_names[mod]):
                warn_constant(f"modality {mod!r}, measurement {name!r}",
                              [f"feature {j}" for j in constant_features(values[:, k], mask[:, k])])
        if tabular is not None:
            if tabular_name in self.values:
                raise ValueError(f"tabular_name {tabular_name!r} is already a measurement modality")
            cols, values, cell = _tabular_from_frame(tabular, tabular_name)
            n_ref = self._check_rows(tabular_name, values.shape[0], n_ref)
            warn_constant(f"tabular modality {tabular_name!r}",
                          [repr(cols[j].name) for j in constant_features(values[:, 0], cell)])
            self.values[tabular_name] = values
            self.masks[tabular_name] = cell.any(axis=1, keepdims=True)
            self.cell_masks[tabular_name] = cell
            self.likelihood[tabular_name] = TABULAR
            self.tabular_columns[tabular_name] = cols
            self.measurement_names[tabular_name] = (tabular_name,)
        if not self.values:
            raise ValueError("MultiModalData: no modality given (measurements is empty and tabular is None)")
        if n_ref == 0:
            raise ValueError("MultiModalData: the data has 0 entities (rows)")
        self.num_entities = int(n_ref)
        if entity_ids is not None:
            entity_ids = np.asarray(entity_ids)
            if entity_ids.shape != (self.num_entities,):
                raise ValueError(f"entity_ids: expected shape ({self.num_entities},); found {entity_ids.shape}")
            ids, counts = np.unique(entity_ids, return_counts=True)
            if (counts > 1).any():
                raise ValueError(f"entity_ids: must be unique; found duplicates {ids[counts > 1][:5].tolist()}")
        self.entity_ids = entity_ids

    # ------------------------------------------------------------------ validation helpers
    @staticmethod
    def _stack(mod: str, arrays, lik: str = "normal") -> np.ndarray:
        if isinstance(arrays, np.ndarray) and arrays.ndim == 3:
            parts = [arrays[:, k, :] for k in range(arrays.shape[1])]
        elif isinstance(arrays, (list, tuple)):
            parts = list(arrays)
        else:
            shape = getattr(arrays, "shape", None)
            raise ValueError(
                f"modality {mod!r}: expected a list of (N, d) arrays or one (N, K, d) array; "
                f"found {type(arrays).__name__} with shape {shape}"
            )
        if not parts:
            raise ValueError(f"modality {mod!r}: no measurements")
        out = []
        for k, a in enumerate(parts):
            a = np.asarray(a)
            if a.dtype.kind not in "fiub":
                raise TypeError(f"modality {mod!r}, measurement {k}: expected a numeric array; found dtype {a.dtype}")
            if a.dtype.kind == "b" and lik == "normal":
                raise TypeError(
                    f"modality {mod!r}, measurement {k}: boolean values with a normal likelihood; pass "
                    f"likelihoods={{{mod!r}: 'bernoulli'}} to model them as 0/1, or convert them with "
                    ".astype(float) to model them as Normal data"
                )
            if a.ndim != 2:
                raise ValueError(f"modality {mod!r}, measurement {k}: expected shape (N, d); found {a.shape}")
            if a.shape[1] == 0:
                raise ValueError(f"modality {mod!r}, measurement {k}: has 0 features")
            out.append(a)
        rows = {a.shape[0] for a in out}
        if len(rows) > 1:
            found = [a.shape[0] for a in out]
            raise ValueError(f"modality {mod!r}: measurements have different row counts {found}")
        dims = {a.shape[1] for a in out}
        if len(dims) > 1:
            found = [a.shape[1] for a in out]
            raise ValueError(f"modality {mod!r}: measurements must share one dimension; found {found}")
        dtype = np.float64 if out[0].dtype == np.float64 else np.float32
        return np.stack(out, axis=1).astype(dtype, copy=False)  # np.stack already copied

    @staticmethod
    def _check_rows(mod: str, n: int, n_ref: int | None) -> int:
        if n_ref is not None and n != n_ref:
            raise ValueError(f"modality {mod!r}: has {n} rows but earlier modalities have {n_ref}")
        return n

    @staticmethod
    def _mask(mod: str, mask, shape) -> np.ndarray:
        if mask is None:
            return np.ones(shape, dtype=bool)
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise TypeError(f"masks[{mod!r}]: expected a boolean array; found dtype {mask.dtype}")
        if mask.shape != tuple(shape):
            raise ValueError(f"masks[{mod!r}]: expected shape {tuple(shape)} (N, K); found {mask.shape}")
        return mask.copy()

    @staticmethod
    def _check_values(mod: str, values: np.ndarray, mask: np.ndarray, lik: str) -> None:
        # in row chunks: a check must not hold a second copy of the data
        n_bad, ks, largest, binary = 0, set(), 0.0, True
        for start in range(0, len(values), _CHECK_ROWS):
            chunk, chunk_mask = values[start : start + _CHECK_ROWS], mask[start : start + _CHECK_ROWS]
            observed = chunk[chunk_mask]
            bad = ~np.isfinite(observed).all(axis=-1)
            if bad.any():
                n_bad += int(bad.sum())
                ks.update(int(k) for k in np.nonzero(chunk_mask)[1][bad])
                continue
            if observed.size:
                largest = max(largest, float(np.abs(observed).max()))
                binary = binary and bool(np.isin(observed, (0.0, 1.0)).all())
        if n_bad:
            raise ValueError(
                f"modality {mod!r}, measurements {sorted(ks)}: {n_bad} observed rows contain NaN or inf; "
                f"mark missing measurements with masks[{mod!r}] (False = missing) instead"
            )
        if lik == "bernoulli" and not binary:
            raise ValueError(f"modality {mod!r}: a bernoulli likelihood needs 0/1 values")
        if largest > _FLOAT32_MAX:
            raise ValueError(
                f"modality {mod!r}: values up to {largest:.3g} in magnitude exceed float32 (the model's dtype, "
                f"largest {_FLOAT32_MAX:.3g}); rescale them"
            )

    @staticmethod
    def _names(mod: str, names, K: int) -> tuple[str, ...]:
        if names is None:
            return tuple(f"{mod}_{k}" for k in range(K))
        names = tuple(str(n) for n in names)
        if len(names) != K:
            raise ValueError(f"measurement_names[{mod!r}]: expected {K} names; found {len(names)}")
        return names

    # ------------------------------------------------------------------ properties
    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names, in insertion order (tabular last)."""
        return tuple(self.values)

    @property
    def num_measurements(self) -> dict[str, int]:
        """Modality -> ``K_m``."""
        return {m: v.shape[1] for m, v in self.values.items()}

    @property
    def measurement_dim(self) -> dict[str, int]:
        """Modality -> ``d_m`` (number of columns for a tabular modality)."""
        return {m: v.shape[2] for m, v in self.values.items()}

    def __len__(self) -> int:
        return self.num_entities

    def __repr__(self) -> str:
        parts = [f"{m}: K={v.shape[1]}, d={v.shape[2]}, {self.likelihood[m]}" for m, v in self.values.items()]
        return f"MultiModalData(N={self.num_entities}; " + "; ".join(parts) + ")"

    # ------------------------------------------------------------------ subsetting
    def subset(self, index) -> MultiModalData:
        """A new container with the rows ``index`` (integer array or boolean mask)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        new = object.__new__(MultiModalData)
        new.values = {m: v[index] for m, v in self.values.items()}
        new.masks = {m: v[index] for m, v in self.masks.items()}
        new.cell_masks = {m: v[index] for m, v in self.cell_masks.items()}
        new.likelihood = dict(self.likelihood)
        new.measurement_names = dict(self.measurement_names)
        new.tabular_columns = dict(self.tabular_columns)
        new.num_entities = len(index)
        new.entity_ids = None if self.entity_ids is None else self.entity_ids[index]
        if new.num_entities == 0:
            raise ValueError("subset: the index selects 0 entities")
        return new

    def split(self, validation_fraction: float = 0.1, *, seed: int = 0) -> tuple[MultiModalData, MultiModalData]:
        """Random train / validation split of the entities.

        Parameters
        ----------
        validation_fraction
            Fraction of entities in the validation part, in ``(0, 1)``.
        seed
            Seed of the permutation.

        Returns
        -------
        (train, validation)
        """
        train, validation = self.split_rows(validation_fraction, seed=seed)
        return self.subset(train), self.subset(validation)

    def split_rows(self, validation_fraction: float = 0.1, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The rows of :meth:`split`'s two parts, without copying any data.

        Returns
        -------
        (train, validation)
            Sorted integer arrays of row indices, ``(N - n_val,)`` and ``(n_val,)`` with
            ``n_val = max(1, round(validation_fraction * N))``.
        """
        if (isinstance(validation_fraction, bool) or not isinstance(validation_fraction, numbers.Real)
                or not 0.0 < validation_fraction < 1.0):
            raise ValueError(f"validation_fraction must be a number in (0, 1); found {validation_fraction!r}")
        check_seed(seed)
        n_val = max(1, int(round(validation_fraction * self.num_entities)))
        if n_val >= self.num_entities:
            raise ValueError(f"split: {self.num_entities} entities are too few for a validation part")
        perm = np.random.default_rng(seed).permutation(self.num_entities)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    # ------------------------------------------------------------------ to the model
    def observed_mask(self, modality: str) -> np.ndarray:
        """Boolean ``(N, K, d)``: ``True`` where a value of ``modality`` was observed.

        A value is observed when its measurement is (``masks``) and, for a tabular
        modality, its cell is (``cell_masks``).
        """
        if modality not in self.values:
            raise ValueError(f"unknown modality {modality!r}; modalities are {list(self.values)}")
        full = np.broadcast_to(self.masks[modality][:, :, None], self.values[modality].shape)
        cell = self.cell_masks.get(modality)
        return full if cell is None else full & cell[:, None, :]

    def to_tensors(self, device=None, dtype=None, *, fill: bool = True) -> dict[str, ModalityTensors]:
        """Torch tensors for the model.

        Values are not copied on the CPU when they already have ``dtype`` and need no
        filling: the tensor then shares memory with the container (the model only reads
        it; write to it and the container's data change too).

        Parameters
        ----------
        device, dtype
            Target device and floating dtype (default ``torch.get_default_dtype()``).
        fill
            Replace masked entries by 0, in a copy of a modality that has any (the model
            must never read a masked value). ``False`` leaves them as they are, without a
            copy: for tensors read only through
            :func:`~pyro_personax.inference.index_batch`, which fills each minibatch.

        Returns
        -------
        dict
            Modality -> :class:`ModalityTensors` (``values (N, K, d)``, ``mask (N, K)``,
            ``cell_mask (N, d)`` or ``None``).
        """
        import torch

        dtype = dtype or torch.get_default_dtype()
        out = {}
        for m, v in self.values.items():
            mask = self.masks[m]
            cell = self.cell_masks.get(m)
            fully_observed = bool(mask.all()) and (cell is None or bool(cell.all()))
            filled = v if fully_observed or not fill else np.where(self.observed_mask(m), v, 0.0)
            out[m] = ModalityTensors(
                torch.as_tensor(filled, dtype=dtype, device=device),
                torch.as_tensor(mask, device=device),
                None if cell is None else torch.as_tensor(cell, device=device),
            )
        return out


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int, or a ``ValueError`` naming ``name`` unless it is a non-negative integer."""
    return check_int(name, seed, low=0)
