"""Shapes, likelihoods and tabular columns of the data a model is built for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from pyro_personax.data.multimodal import ModalityTensors, TabularColumn
from pyro_personax.models.likelihoods import Likelihood, get_likelihood

__all__ = ["ModalitySpec", "ModelSpec"]


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: ``K`` measurements of dimension ``d`` and their likelihood.

    Parameters
    ----------
    name
        Modality name.
    num_measurements
        ``K >= 1``.
    measurement_dim
        ``d >= 1`` (number of columns for a tabular modality).
    likelihood
        Name of a registered :class:`~pyro_personax.models.likelihoods.Likelihood`:
        ``"normal"``, ``"bernoulli"``, ``"tabular"`` or one added with
        :func:`~pyro_personax.models.likelihoods.register_likelihood`.
    columns
        For a tabular modality, its ``d`` columns.
    """

    name: str
    num_measurements: int
    measurement_dim: int
    likelihood: str
    columns: tuple[TabularColumn, ...] = ()

    def __post_init__(self):
        if self.num_measurements < 1 or self.measurement_dim < 1:
            raise ValueError(
                f"modality {self.name!r}: num_measurements and measurement_dim must be >= 1; "
                f"found {self.num_measurements} and {self.measurement_dim}"
            )
        try:
            lik = get_likelihood(self.likelihood)
        except ValueError as err:
            raise ValueError(f"modality {self.name!r}: {err}") from None
        lik.check_spec(self)

    @property
    def likelihood_object(self) -> Likelihood:
        """The registered :class:`~pyro_personax.models.likelihoods.Likelihood` named by :attr:`likelihood`."""
        return get_likelihood(self.likelihood)


@dataclass(frozen=True)
class ModelSpec:
    """What the model needs to know about the data: one :class:`ModalitySpec` per modality.

    Parameters
    ----------
    modalities
        The modalities, in data order.

    Examples
    --------
    >>> import numpy as np
    >>> from pyro_personax.data import MultiModalData
    >>> data = MultiModalData({"face": np.zeros((10, 3, 4))})
    >>> spec = ModelSpec.from_data(data)
    >>> spec["face"].num_measurements, spec["face"].measurement_dim
    (3, 4)
    >>> ModelSpec.from_dict(spec.to_dict()) == spec
    True
    """

    modalities: tuple[ModalitySpec, ...]

    def __post_init__(self):
        object.__setattr__(self, "modalities", tuple(self.modalities))
        names = [m.name for m in self.modalities]
        if not names:
            raise ValueError("ModelSpec: no modality")
        if len(set(names)) != len(names):
            raise ValueError(f"ModelSpec: modality names must be unique; found {names}")

    @property
    def names(self) -> tuple[str, ...]:
        """Modality names."""
        return tuple(m.name for m in self.modalities)

    def __getitem__(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise ValueError(f"unknown modality {name!r}; modalities are {list(self.names)}")

    @classmethod
    def from_data(cls, data) -> ModelSpec:
        """The spec of a :class:`~pyro_personax.data.MultiModalData`."""
        mods = []
        for m in data.modalities:
            lik = data.likelihood[m]
            cols = tuple(data.tabular_columns.get(m, ()))
            mods.append(ModalitySpec(m, data.num_measurements[m], data.measurement_dim[m], lik, cols))
        return cls(tuple(mods))

    def to_dict(self) -> dict:
        """JSON-serialisable description; :meth:`from_dict` inverts it."""
        out = []
        for m in self.modalities:
            cols = [
                {
                    "name": c.name,
                    "likelihood": c.likelihood,
                    "categories": None if c.categories is None else list(c.categories),
                }
                for c in m.columns
            ]
            out.append(
                {
                    "name": m.name,
                    "num_measurements": m.num_measurements,
                    "measurement_dim": m.measurement_dim,
                    "likelihood": m.likelihood,
                    "columns": cols,
                }
            )
        return {"modalities": out}

    @classmethod
    def from_dict(cls, d: Mapping) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        mods = []
        for m in d["modalities"]:
            cols = tuple(
                TabularColumn(c["name"], c["likelihood"], None if c["categories"] is None else tuple(c["categories"]))
                for c in m.get("columns", ())
            )
            mods.append(
                ModalitySpec(m["name"], int(m["num_measurements"]), int(m["measurement_dim"]), m["likelihood"], cols)
            )
        return cls(tuple(mods))

    def check_batch(self, batch: Mapping[str, ModalityTensors]) -> int:
        """Validate a batch against the spec and return its number of rows ``B``.

        Parameters
        ----------
        batch
            Modality -> :class:`~pyro_personax.data.multimodal.ModalityTensors` with
            ``values (B, K, d)``, ``mask (B, K)`` and, for a tabular modality,
            ``cell_mask (B, d)``.

        Returns
        -------
        int
            ``B``.
        """
        if not isinstance(batch, Mapping):
            raise TypeError(f"batch: expected a mapping modality -> ModalityTensors; found {type(batch).__name__}")
        missing, unknown = set(self.names) - set(batch), set(batch) - set(self.names)
        if missing or unknown:
            raise ValueError(
                f"batch: modalities {sorted(batch)} do not match the model's {list(self.names)} "
                f"(missing {sorted(missing)}, unknown {sorted(unknown)})"
            )
        rows = None
        for m in self.modalities:
            rows = _check_modality(m, batch[m.name], rows)
        return rows


def _check_modality(m: ModalitySpec, t, rows):
    values, mask = t[0], t[1]
    if not isinstance(values, torch.Tensor) or not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"batch[{m.name!r}]: values and mask must be torch tensors; "
            f"found {type(values).__name__}, {type(mask).__name__}"
        )
    K, d = m.num_measurements, m.measurement_dim
    if values.dim() != 3 or tuple(values.shape[1:]) != (K, d):
        raise ValueError(f"batch[{m.name!r}].values: expected shape (B, {K}, {d}); found {tuple(values.shape)}")
    if not values.is_floating_point():
        raise TypeError(f"batch[{m.name!r}].values: expected a floating tensor; found {values.dtype}")
    B = values.shape[0]
    if rows is not None and B != rows:
        raise ValueError(f"batch[{m.name!r}]: has {B} rows but other modalities have {rows}")
    if mask.dtype != torch.bool or tuple(mask.shape) != (B, K):
        raise ValueError(
            f"batch[{m.name!r}].mask: expected a bool tensor of shape ({B}, {K}); "
            f"found {mask.dtype} {tuple(mask.shape)}"
        )
    cell = t[2] if len(t) > 2 else None
    if m.likelihood_object.needs_cell_mask:
        if cell is None or cell.dtype != torch.bool or tuple(cell.shape) != (B, d):
            found = None if cell is None else f"{cell.dtype} {tuple(cell.shape)}"
            raise ValueError(f"batch[{m.name!r}].cell_mask: expected a bool tensor of shape ({B}, {d}); found {found}")
    return B
