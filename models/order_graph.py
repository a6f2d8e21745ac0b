"""A distribution over DAGs: a causal order, then edges that respect it.

A graph is drawn in two steps, each a Pyro site:

1. ``order``: a permutation of the ``D`` latents from a Plackett-Luce distribution
   with scores ``theta`` (:class:`CausalOrder`), restricted by precedence constraints:
   every node of a lower *tier* comes before every node of a higher tier, and the
   parent of a required edge before its child. Sampling is sequential: at each position
   the next node is drawn among the nodes whose predecessors are all placed, with
   probability proportional to ``exp(theta)`` (the Gumbel-max trick, one Gumbel per
   node and position).
2. ``edges``: given the order, every *free* pair ``i -> j`` with ``i`` before ``j`` is an
   independent ``Bernoulli(sigmoid(phi_ij))`` edge (:class:`EdgesGivenOrder`); required
   edges are always present and forbidden ones never.

Every draw is a DAG (the order is a topological order of it). The edge marginals are
closed-form when no required edge constrains the order inside a tier: the
Plackett-Luce probability that ``i`` precedes ``j`` is ``sigmoid(theta_i - theta_j)``
(Luce's choice axiom), so ``P(i -> j) = sigmoid(theta_i - theta_j) * sigmoid(phi_ij)``
for a free pair in one tier, ``sigmoid(phi_ij)`` across tiers (lower to higher), and
exactly 0 / 1 for forbidden / required edges (:func:`order_graph_edge_probs`).

Values: ``order`` is a LongTensor ``(..., D)`` listing the nodes from first to last;
``edges`` a 0/1 adjacency ``(..., D, D)`` (``[i, j]`` = i -> j, see
:mod:`pyro_personax.graph`).
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution, Unit, constraints

from .edges import gumbel_noise, uniform_noise

__all__ = [
    "CausalOrder",
    "ColumnFactor",
    "EdgesGivenOrder",
    "order_ranks",
    "order_graph_edge_probs",
    "sample_order_graph",
]

#: Monte Carlo draws used for the order marginals of a tier that a required edge constrains.
_MC_ORDER_DRAWS = 20000


def order_ranks(order: torch.Tensor) -> torch.Tensor:
    """Position of every node in ``order (..., D)``: ``rank[..., order[..., k]] = k``; ``(..., D)``."""
    positions = torch.arange(order.shape[-1], device=order.device).expand(order.shape)
    return torch.empty_like(order).scatter_(-1, order, positions)


def _precedence(tiers: torch.Tensor, required: torch.Tensor) -> torch.Tensor:
    """``(D, D)`` bool: ``[u, v]`` = ``u`` must come before ``v`` (lower tier, or a required edge)."""
    return (tiers[:, None] < tiers[None, :]) | required.bool()


class CausalOrder(TorchDistribution):
    """Plackett-Luce distribution over causal orders with precedence constraints.

    Parameters
    ----------
    logits
        Scores ``theta`` ``(*batch, D)``; a higher score tends to come earlier.
    tiers
        LongTensor ``(D,)``: every node of a lower tier precedes every node of a higher
        tier.
    required
        Bool ``(D, D)``: required edges ``i -> j`` (``i`` precedes ``j``), or ``None``.

    Examples
    --------
    >>> d = CausalOrder(torch.zeros(3), tiers=torch.tensor([0, 1, 1]))
    >>> order = d.sample()
    >>> int(order[0])  # the tier-0 node comes first
    0
    >>> round(float(d.log_prob(order).exp()), 3)  # two orders of the last tier
    0.5
    """

    arg_constraints = {}
    support = constraints.independent(constraints.nonnegative_integer, 1)
    has_rsample = False

    def __init__(
        self, logits: torch.Tensor, tiers: torch.Tensor, required: torch.Tensor | None = None, validate_args=None
    ):
        if logits.dim() < 1:
            raise ValueError(f"logits: expected shape (..., D); found {tuple(logits.shape)}")
        D = logits.shape[-1]
        tiers = torch.as_tensor(tiers, device=logits.device).long()
        if tiers.shape != (D,):
            raise ValueError(f"tiers: expected shape ({D},); found {tuple(tiers.shape)}")
        if required is None:
            required = torch.zeros(D, D, dtype=torch.bool, device=logits.device)
        required = torch.as_tensor(required, device=logits.device).bool()
        if required.shape != (D, D):
            raise ValueError(f"required: expected shape ({D}, {D}); found {tuple(required.shape)}")
        self.logits, self.tiers, self.required = logits, tiers, required
        self.precedence = _precedence(tiers, required)
        super().__init__(logits.shape[:-1], torch.Size([D]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        logits = self.logits.expand(batch_shape + self.logits.shape[-1:])
        return CausalOrder(logits, self.tiers, self.required, validate_args=False)

    def _available(self, placed: torch.Tensor) -> torch.Tensor:
        """Nodes not yet placed whose predecessors are all placed; bool ``(..., D)``."""
        unmet = ((~placed).to(self.logits.dtype).unsqueeze(-2) @ self.precedence.to(self.logits.dtype)).squeeze(-2)
        return ~placed & (unmet == 0)

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """Orders ``(*sample_shape, *batch, D)`` (LongTensor, first node first).

        ``generator``: a CPU :class:`torch.Generator` for the Gumbel noise (default: the
        global random state).
        """
        shape = torch.Size(sample_shape) + self.logits.shape
        D = shape[-1]
        with torch.no_grad():
            logits = self.logits.detach().expand(shape)
            gumbel = gumbel_noise((D,) + shape, logits, generator)
            placed = torch.zeros(shape, dtype=torch.bool, device=logits.device)
            order = torch.empty(shape, dtype=torch.long, device=logits.device)
            for k in range(D):
                score = torch.where(self._available(placed), logits + gumbel[k], torch.full_like(logits, -math.inf))
                pick = score.argmax(-1)
                order[..., k] = pick
                placed = placed | torch.nn.functional.one_hot(pick, D).bool()
        return order

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Exact log-probability of orders ``(..., D)``; ``-inf`` for an order that breaks a constraint."""
        value = value.long()
        shape = torch.broadcast_shapes(value.shape, self.logits.shape)
        value, logits = value.expand(shape), self.logits.expand(shape)
        D = shape[-1]
        placed = torch.zeros(shape, dtype=torch.bool, device=logits.device)
        lp = logits.new_zeros(shape[:-1])
        valid = torch.ones(shape[:-1], dtype=torch.bool, device=logits.device)
        for k in range(D):
            avail = self._available(placed)
            pick = value[..., k : k + 1]
            valid = valid & avail.gather(-1, pick).squeeze(-1)
            masked = torch.where(avail, logits, torch.full_like(logits, -math.inf))
            lp = lp + logits.gather(-1, pick).squeeze(-1) - torch.logsumexp(masked, -1)
            placed = placed | torch.nn.functional.one_hot(pick.squeeze(-1), D).bool()
        valid = valid & placed.all(-1)
        return torch.where(valid, lp, torch.full_like(lp, -math.inf))

    @torch.no_grad()
    def precedes_probs(self) -> torch.Tensor:
        """``(*batch, D, D)``: ``[i, j]`` = P(``i`` comes before ``j``) (0 on the diagonal).

        Exact and closed-form (``sigmoid(theta_i - theta_j)`` within a tier, 0 / 1 across
        tiers) when no required edge joins two nodes of one tier; a tier with such an
        edge is estimated from 20,000 seeded draws.
        """
        t = self.tiers
        logits = self.logits.detach()
        probs = torch.sigmoid(logits.unsqueeze(-1) - logits.unsqueeze(-2))
        same = t[:, None] == t[None, :]
        out = torch.where(same, probs, (t[:, None] < t[None, :]).to(probs.dtype).expand_as(probs))
        constrained = self.required & same
        if bool(constrained.any()):
            gen = torch.Generator().manual_seed(0)
            ranks = order_ranks(self.sample((_MC_ORDER_DRAWS,), generator=gen))
            mc = (ranks.unsqueeze(-1) < ranks.unsqueeze(-2)).to(probs.dtype).mean(0)
            tiers_hit = torch.unique(t[constrained.any(-1)])
            in_hit = torch.isin(t, tiers_hit)
            mask = same & in_hit[:, None] & in_hit[None, :]
            out = torch.where(mask, mc, out)
        eye = torch.eye(out.shape[-1], dtype=torch.bool, device=out.device)
        return out.masked_fill(eye, 0.0)


class EdgesGivenOrder(TorchDistribution):
    """Independent Bernoulli edges that respect a causal order.

    Parameters
    ----------
    logits
        Edge logits ``phi`` ``(*batch, D, D)`` (``[i, j]`` = i -> j).
    order
        Orders ``(*batch, D)`` (a :class:`CausalOrder` value).
    free
        Bool ``(D, D)``: edges that may be present or absent.
    required
        Bool ``(D, D)``: edges that are always present (the order respects them).

    A free pair ``i -> j`` is ``Bernoulli(sigmoid(phi_ij))`` when ``i`` comes before
    ``j`` in the order and absent otherwise; required edges are 1, all others 0.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.boolean, 2)
    has_rsample = False

    def __init__(
        self, logits: torch.Tensor, order: torch.Tensor, free: torch.Tensor, required: torch.Tensor, validate_args=None
    ):
        D = logits.shape[-1]
        if logits.dim() < 2 or logits.shape[-2] != D:
            raise ValueError(f"logits: expected shape (..., D, D); found {tuple(logits.shape)}")
        if order.shape[-1] != D:
            raise ValueError(f"order: expected shape (..., {D}); found {tuple(order.shape)}")
        rank = order_ranks(order.long())
        forward = rank.unsqueeze(-1) < rank.unsqueeze(-2)  # [i, j]: i before j
        self.open = forward & free.bool()  # pairs that are Bernoulli edges in this order
        self.fixed = required.to(logits.dtype)
        batch = torch.broadcast_shapes(logits.shape[:-2], self.open.shape[:-2])
        self.logits = logits.expand(batch + (D, D))
        self.open = self.open.expand(batch + (D, D))
        self.order = order
        super().__init__(batch, torch.Size([D, D]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        D = self.event_shape[-1]
        new = self.__new__(EdgesGivenOrder)
        new.logits = self.logits.expand(batch_shape + (D, D))
        new.open = self.open.expand(batch_shape + (D, D))
        new.fixed, new.order = self.fixed, self.order
        TorchDistribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        return new

    @property
    def probs(self) -> torch.Tensor:
        """``(*batch, D, D)`` probability of every edge in its order (fixed edges 0 / 1)."""
        return torch.where(self.open, torch.sigmoid(self.logits), self.fixed.expand_as(self.logits))

    @property
    def mean(self) -> torch.Tensor:
        return self.probs

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """0/1 adjacencies ``(*sample_shape, *batch, D, D)``."""
        shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
        with torch.no_grad():
            p = self.probs.detach().expand(shape)
            return (uniform_noise(shape, p, generator) < p).to(p.dtype)

    def column_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-probability of each child's parent set ``(..., D)`` (column ``j`` = edges into ``j``).

        Given the order the columns are independent; their sum is :meth:`log_prob`.
        ``-inf`` in a column whose fixed entries differ.
        """
        logits = self.logits
        value = value.to(logits.dtype)
        lp = torch.where(self.open, value * logits - torch.nn.functional.softplus(logits), torch.zeros_like(logits))
        lp = lp.sum(-2)
        wrong = (~self.open & (value != self.fixed)).any(-2)
        return torch.where(wrong, torch.full_like(lp, -math.inf), lp)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Sum of the open pairs' Bernoulli log-probabilities; ``-inf`` if a fixed entry differs."""
        return self.column_log_prob(value).sum(-1)


def order_graph_edge_probs(
    order_dist: CausalOrder, edge_logits: torch.Tensor, free: torch.Tensor, required: torch.Tensor
) -> torch.Tensor:
    """Exact edge marginals ``(*batch, D, D)`` of the order-then-edges distribution.

    ``P(i -> j) = P(i before j) * sigmoid(phi_ij)`` for a free pair, 1 for a required
    edge, 0 for a forbidden one (see :meth:`CausalOrder.precedes_probs`).
    """
    before = order_dist.precedes_probs()
    free_p = before * torch.sigmoid(edge_logits.detach())
    return torch.where(free.bool(), free_p, required.to(free_p.dtype).expand_as(free_p))


@torch.no_grad()
def sample_order_graph(
    order_dist: CausalOrder,
    edge_logits: torch.Tensor,
    free: torch.Tensor,
    required: torch.Tensor,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_samples`` whole graphs: orders ``(S, D)`` and adjacencies ``(S, D, D)``."""
    order = order_dist.sample((num_samples,), generator=generator)
    edges = EdgesGivenOrder(edge_logits.detach(), order, free, required).sample(generator=generator)
    return order, edges


class ColumnFactor(Unit):
    """A :func:`pyro.factor` term that is a sum over the children of a graph.

    Parameters
    ----------
    column_log_factor
        ``(*batch, D)``: the term of each child ``j`` (it depends on the edges into
        ``j`` only); the factor is their sum. :meth:`column_log_prob` returns the parts,
        so an estimator can charge each child's edges with their own part.
    """

    def __init__(self, column_log_factor: torch.Tensor, validate_args=None):
        self.column_log_factor = column_log_factor
        super().__init__(column_log_factor.sum(-1), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        D = self.column_log_factor.shape[-1]
        return ColumnFactor(self.column_log_factor.expand(batch_shape + (D,)), validate_args=False)

    def column_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``(*batch, D)``: each child's part of the factor."""
        return self.column_log_factor
