"""Likelihoods of the measurements: a masked set of measurements and a tabular row.

:class:`MeasurementSet` holds the ``K`` measurements of one modality of one entity:
its ``log_prob`` is the sum over the *observed* measurements of their (conditionally
independent) log densities, so a missing measurement contributes exactly 0 and its
filled-in value is never scored. The measurement index ``k`` is an event dimension
(shape ``(K, d)``), which keeps the entity plate the only plate (``dim=-1``) and the
sites' shapes ``(B, K, d)``.

:class:`TabularLikelihood` scores one row of mixed columns (Normal, Bernoulli,
Categorical) with a cell mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pyro.distributions import Bernoulli, Categorical, Normal, TorchDistribution, constraints

from pyro_personax.data.multimodal import TabularColumn

__all__ = ["MeasurementSet", "TabularLikelihood", "tabular_param_dim"]


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
