"""Likelihoods of the measurements: a masked set of measurements and a tabular row.

:class:`MeasurementSet` holds the ``K`` measurements of one modality of one entity:
its ``log_prob`` is the sum over the *observed* measurements of their (conditionally
independent) log densities, so a missing measurement contributes exactly 0 and its
filled-in value is never scored. The measurement index ``k`` is an event dimension
(shape ``(K, d)``), which keeps the entity plate the only plate (``dim=-1``) and the
sites' shapes ``(B, K, d)``.

:class:`TabularLikelihood` scores one row of mixed columns (Normal, Bernoulli,
Categorical) with a cell mask.

:class:`Likelihood` objects say how a modality is decoded and scored; one is registered
per likelihood name (:func:`register_likelihood`, :func:`get_likelihood`): ``"normal"``,
``"bernoulli"`` and ``"tabular"`` here, ``"tinted_rgb"`` in :mod:`~pyro_personax.models.tinted`, and
any a researcher adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pyro.distributions import Bernoulli, Categorical, Normal, TorchDistribution, constraints
from torch import nn

from pyro_personax.data.multimodal import TabularColumn

__all__ = [
    "BernoulliLikelihood",
    "Likelihood",
    "MeasurementSet",
    "NormalLikelihood",
    "TabularLikelihood",
    "TabularRowLikelihood",
    "get_likelihood",
    "register_likelihood",
    "registered_likelihoods",
    "tabular_param_dim",
]


class MeasurementSet(TorchDistribution):
    """``K`` conditionally independent measurements, with missing ones masked.

    Parameters
    ----------
    base
        Distribution with batch shape ``(*batch, K)`` and event shape ``(d,)``.
    mask
        Boolean ``(*batch, K)``; ``False`` = missing (contributes 0 to ``log_prob``).

    Examples
    --------
    >>> base = Normal(torch.zeros(2, 3, 4), 1.0).to_event(1)
    >>> mask = torch.tensor([[True, False, True], [True, True, True]])
    >>> MeasurementSet(base, mask).log_prob(torch.zeros(2, 3, 4)).shape
    torch.Size([2])
    """

    arg_constraints = {}

    def __init__(self, base, mask: torch.Tensor, validate_args=None):
        if len(base.batch_shape) < 1:
            raise ValueError(
                f"base: needs a batch dimension of measurements; found batch shape {tuple(base.batch_shape)}"
            )
        if mask.dtype != torch.bool:
            raise TypeError(f"mask: expected a bool tensor; found {mask.dtype}")
        batch = torch.broadcast_shapes(base.batch_shape, mask.shape)
        self.base = base.expand(batch)
        self.mask = mask.expand(batch)
        super().__init__(batch[:-1], batch[-1:] + base.event_shape, validate_args=False)

    @constraints.dependent_property
    def support(self):
        return constraints.independent(self.base.support, 1)

    @property
    def has_rsample(self):
        return self.base.has_rsample

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        K = self.event_shape[:1]
        return MeasurementSet(self.base.expand(batch_shape + K), self.mask.expand(batch_shape + K))

    def sample(self, sample_shape=()):
        return self.base.sample(sample_shape)

    def rsample(self, sample_shape=()):
        return self.base.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Sum over observed measurements, shape ``(*sample, *batch)``."""
        event_dims = len(self.base.event_shape)
        full = self.mask.reshape(self.mask.shape + (1,) * event_dims)
        safe = torch.where(full, value, torch.zeros_like(value))
        lp = self.base.log_prob(safe)
        return torch.where(self.mask, lp, torch.zeros_like(lp)).sum(-1)


def tabular_param_dim(columns: Sequence[TabularColumn]) -> int:
    """Number of decoder outputs for ``columns``: 1 per Normal/Bernoulli, ``C`` per Categorical."""
    return sum(c.num_categories if c.likelihood == "categorical" else 1 for c in columns)


class TabularLikelihood(TorchDistribution):
    """One row of mixed columns: Normal (loc, learned scale), Bernoulli (logit), Categorical (logits).

    Parameters
    ----------
    params
        Decoder outputs ``(*batch, Q)``, ``Q = tabular_param_dim(columns)``, in column order.
    columns
        The ``P`` columns.
    scale
        ``(P,)`` positive scales (used for Normal columns only).
    cell_mask
        Optional boolean ``(*batch, P)``; ``False`` = missing cell (contributes 0).

    Examples
    --------
    >>> cols = (TabularColumn("h", "normal"), TabularColumn("g", "categorical", ("a", "b", "c")))
    >>> d = TabularLikelihood(torch.zeros(5, 4), cols, torch.ones(2))
    >>> d.log_prob(torch.zeros(5, 2)).shape
    torch.Size([5])
    """

    arg_constraints = {}
    support = constraints.real_vector

    def __init__(self, params, columns, scale, cell_mask=None, validate_args=None):
        self.columns = tuple(columns)
        if params.shape[-1] != tabular_param_dim(self.columns):
            raise ValueError(f"params: expected {tabular_param_dim(self.columns)} outputs; found {params.shape[-1]}")
        P = len(self.columns)
        batch = params.shape[:-1]
        if cell_mask is not None:
            batch = torch.broadcast_shapes(batch, cell_mask.shape[:-1])
            cell_mask = cell_mask.expand(batch + (P,))
        self.params = params.expand(batch + params.shape[-1:])
        self.scale, self.cell_mask = scale, cell_mask
        super().__init__(batch, torch.Size([P]), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        mask = None if self.cell_mask is None else self.cell_mask.expand(batch_shape + self.event_shape)
        params = self.params.expand(batch_shape + self.params.shape[-1:])
        return TabularLikelihood(params, self.columns, self.scale, mask)

    def _components(self):
        start = 0
        for p, c in enumerate(self.columns):
            width = c.num_categories if c.likelihood == "categorical" else 1
            theta = self.params[..., start : start + width]
            start += width
            if c.likelihood == "normal":
                yield p, c, Normal(theta[..., 0], self.scale[p])
            elif c.likelihood == "bernoulli":
                yield p, c, Bernoulli(logits=theta[..., 0])
            else:
                yield p, c, Categorical(logits=theta)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Sum of observed cells' log probabilities, shape ``(*sample, *batch)``."""
        mask = self.cell_mask
        if mask is not None:
            value = torch.where(mask, value, torch.zeros_like(value))
        parts = []
        for p, c, d in self._components():
            v = value[..., p]
            parts.append(d.log_prob(v.long() if c.likelihood == "categorical" else v))
        lp = torch.stack(parts, dim=-1)
        if mask is not None:
            lp = torch.where(mask, lp, torch.zeros_like(lp))
        return lp.sum(-1)

    def sample(self, sample_shape=()):
        """Draw a row ``(*sample, *batch, P)``; categorical columns hold category codes."""
        with torch.no_grad():
            cols = [d.sample(sample_shape).to(self.params.dtype) for _, _, d in self._components()]
        return torch.stack(cols, dim=-1)

    @staticmethod
    def encode(values: torch.Tensor, columns, cell_mask: torch.Tensor) -> torch.Tensor:
        """Encoder features of a row: values (one-hot for categorical) then the cell mask.

        ``values (..., P)``, ``cell_mask (..., P)`` -> ``(..., Q + P)``; missing cells are 0.
        """
        values = torch.where(cell_mask, values, torch.zeros_like(values))
        feats = []
        for p, c in enumerate(columns):
            v = values[..., p]
            if c.likelihood == "categorical":
                feats.append(F.one_hot(v.long(), c.num_categories).to(values.dtype) * cell_mask[..., p, None])
            else:
                feats.append(v.unsqueeze(-1))
        feats.append(cell_mask.to(values.dtype))
        return torch.cat(feats, dim=-1)


# ---------------------------------------------------------------------- likelihood objects
class Likelihood:
    """How the ``K`` measurements of one modality are scored, given its decoder's output.

    A modality names its likelihood by a string (``MultiModalData(likelihoods=...)``);
    :func:`get_likelihood` finds the object registered under it. Subclass this and
    :func:`register_likelihood` an instance to add one. The model asks it for the
    decoder's output size (:meth:`param_dim`), which outputs must not read the nuisance
    (:meth:`latent_only_outputs`), any extra learned parameter
    (:meth:`make_parameter`), the distribution of the measurements
    (:meth:`distribution`) and their mean (:meth:`mean`); the guide asks for the
    encoder's input (:meth:`encoder_dim`, :meth:`encoder_features`).

    Shapes: ``params (..., B, K, param_dim)``; a distribution with batch shape
    ``(..., B, K)`` and event shape ``(d,)``; encoder features ``(B, K, encoder_dim)``.

    Attributes
    ----------
    name
        The string that selects it.
    uses_nuisance
        Whether the modality gets a per-measurement nuisance ``eta`` by default.
    needs_cell_mask
        Whether its tensors carry a per-feature cell mask (``ModalityTensors.cell_mask``).
    """

    name: str = ""
    uses_nuisance: bool = True
    needs_cell_mask: bool = False

    def check_spec(self, m) -> None:
        """Raise a ``ValueError`` naming the modality when ``m`` (a ``ModalitySpec``) does not suit it."""
        if m.columns:
            raise ValueError(f"modality {m.name!r}: columns are only for a tabular modality")

    def param_dim(self, m) -> int:
        """Decoder outputs per measurement (default: one per feature, ``d``)."""
        return m.measurement_dim

    def make_parameter(self, m) -> nn.Parameter | None:
        """An extra learned parameter of the modality (a scale, say), or ``None``."""
        return None

    def latent_only_outputs(self, m) -> tuple[int, ...]:
        """Decoder outputs that read the latents alone, never the nuisance ``eta`` (default: none)."""
        return ()

    def distribution(self, params: torch.Tensor, parameter, m, t) -> TorchDistribution:
        """The measurements' distribution: batch ``(..., B, K)``, event ``(d,)``.

        ``parameter`` is what :meth:`make_parameter` made (or ``None``); ``t`` the
        modality's :class:`~pyro_personax.data.multimodal.ModalityTensors`.
        """
        raise NotImplementedError(f"{type(self).__name__}.distribution")

    def mean(self, params: torch.Tensor, parameter, m) -> torch.Tensor:
        """Mean measurement ``(..., B, K, d)`` under decoder output ``params`` (a tabular row: ``Q`` wide)."""
        raise NotImplementedError(f"{type(self).__name__}.mean")

    def encoder_dim(self, m) -> int:
        """Encoder inputs per measurement (default ``d``)."""
        return m.measurement_dim

    def encoder_features(self, m, t) -> torch.Tensor:
        """Encoder input ``(B, K, encoder_dim)``: the values, 0 where a measurement is missing."""
        values, mask = t[0], t[1]
        return torch.where(mask.unsqueeze(-1), values, torch.zeros_like(values))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


_SOFTPLUS_ONE = 0.5413248546129181  # softplus^{-1}(1)


def positive_scale(raw: torch.Tensor) -> torch.Tensor:
    """``softplus(raw) + 1e-3``: a scale bounded away from 0."""
    return F.softplus(raw) + 1e-3


class NormalLikelihood(Likelihood):
    """``x ~ Normal(decoder output, sigma)``, one learned ``sigma`` per measurement and feature."""

    name = "normal"

    def make_parameter(self, m) -> nn.Parameter:
        return nn.Parameter(torch.full((m.num_measurements, m.measurement_dim), _SOFTPLUS_ONE))

    def distribution(self, params, parameter, m, t):
        return Normal(params, positive_scale(parameter)).to_event(1)

    def mean(self, params, parameter, m):
        return params


class BernoulliLikelihood(Likelihood):
    """``x ~ Bernoulli(logits = decoder output)``, per feature."""

    name = "bernoulli"

    def distribution(self, params, parameter, m, t):
        return Bernoulli(logits=params).to_event(1)

    def mean(self, params, parameter, m):
        return torch.sigmoid(params)


class TabularRowLikelihood(Likelihood):
    """One row of mixed columns (:class:`TabularLikelihood`): Normal, Bernoulli, Categorical cells."""

    name = "tabular"
    uses_nuisance = False
    needs_cell_mask = True

    def check_spec(self, m) -> None:
        if len(m.columns) != m.measurement_dim:
            raise ValueError(
                f"modality {m.name!r}: {m.measurement_dim} tabular columns expected; found {len(m.columns)}"
            )
        for c in m.columns:
            if c.likelihood not in COLUMN_LIKELIHOODS:
                raise ValueError(f"modality {m.name!r}, column {c.name!r}: unknown likelihood {c.likelihood!r}")
            if c.likelihood == "categorical" and c.num_categories < 2:
                raise ValueError(f"modality {m.name!r}, column {c.name!r}: a categorical column needs >= 2 categories")

    def param_dim(self, m) -> int:
        return tabular_param_dim(m.columns)

    def make_parameter(self, m) -> nn.Parameter:
        return nn.Parameter(torch.full((m.measurement_dim,), _SOFTPLUS_ONE))

    def distribution(self, params, parameter, m, t):
        return TabularLikelihood(params, m.columns, positive_scale(parameter), t[2].unsqueeze(-2))

    def mean(self, params, parameter, m):
        """The row's expected encoding ``(..., Q)``: per column the Normal mean, P(1), or the category probabilities."""
        out, start = [], 0
        for c in m.columns:
            width = c.num_categories if c.likelihood == "categorical" else 1
            theta = params[..., start : start + width]
            start += width
            if c.likelihood == "normal":
                out.append(theta)
            elif c.likelihood == "bernoulli":
                out.append(torch.sigmoid(theta))
            else:
                out.append(torch.softmax(theta, dim=-1))
        return torch.cat(out, dim=-1)

    def encoder_dim(self, m) -> int:
        return tabular_param_dim(m.columns) + m.measurement_dim

    def encoder_features(self, m, t):
        cell = t[2] & t[1]
        return TabularLikelihood.encode(t[0][:, 0, :], m.columns, cell).unsqueeze(-2)


COLUMN_LIKELIHOODS = ("normal", "bernoulli", "categorical")

_REGISTRY: dict[str, Likelihood] = {}


def register_likelihood(likelihood: Likelihood, *, overwrite: bool = False) -> Likelihood:
    """Make ``likelihood`` selectable by its ``name``; returns it.

    Parameters
    ----------
    likelihood
        An instance of a :class:`Likelihood` subclass with a non-empty ``name``.
    overwrite
        Replace a likelihood registered under the same name (otherwise an error).
    """
    if not isinstance(likelihood, Likelihood):
        raise TypeError(f"likelihood: expected a Likelihood instance; found {type(likelihood).__name__}")
    name = likelihood.name
    if not isinstance(name, str) or not name:
        raise ValueError(f"likelihood.name: expected a non-empty string; found {name!r}")
    if name in _REGISTRY and not overwrite and _REGISTRY[name] is not likelihood:
        raise ValueError(f"likelihood {name!r} is already registered ({_REGISTRY[name]!r}); pass overwrite=True")
    _REGISTRY[name] = likelihood
    return likelihood


def get_likelihood(name: str) -> Likelihood:
    """The likelihood registered under ``name``; a ``ValueError`` lists the registered ones otherwise.

    Examples
    --------
    >>> get_likelihood("bernoulli")
    BernoulliLikelihood(name='bernoulli')
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown likelihood {name!r}; registered are {registered_likelihoods()}") from None


def registered_likelihoods() -> tuple[str, ...]:
    """Names of the registered likelihoods."""
    return tuple(_REGISTRY)


for _lik in (NormalLikelihood(), BernoulliLikelihood(), TabularRowLikelihood()):
    register_likelihood(_lik)
