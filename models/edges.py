"""A distribution over latent graphs with at most one edge per pair of nodes.

Every unordered pair ``{i, j}`` (``i < j``, in :func:`torch.triu_indices` order) is in
one of three states: ``i -> j``, ``j -> i`` or no edge, with a categorical distribution
per pair and pairs independent (the edge parameterisation of ENCO and DECI). Two-cycles
are impossible by construction, so the acyclicity constraint only has to rule out
longer cycles, and turning an edge around is one move of one pair's probabilities
rather than the joint move of two independent edges.

Values are ``(D, D)`` 0/1 adjacency matrices (``[i, j]`` = i -> j, see
:mod:`pyro_personax.graph`). :meth:`PairwiseEdges.rsample` is the straight-through
Gumbel-softmax estimator: hard one-hot states in the forward pass, the gradient of the
tempered softmax in the backward pass. The KL divergence between two
:class:`PairwiseEdges` is exact (registered with :func:`torch.distributions.kl_divergence`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution, constraints
from torch.distributions import register_kl

__all__ = ["PairwiseEdges", "pair_indices", "pair_state_logits", "IMPOSSIBLE"]

#: Logit of a state that is ruled out (forbidden or overridden by a required edge). It is
#: finite, so gradients stay finite, and its probability underflows to exactly 0.
IMPOSSIBLE = -1.0e4

_STATES = 3  # 0: i -> j, 1: j -> i, 2: no edge


def pair_indices(num_nodes: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``i`` and columns ``j`` (``i < j``) of the ``D (D - 1) / 2`` pairs, each ``(P,)``."""
    rows, cols = torch.triu_indices(num_nodes, num_nodes, 1, device=device)
    return rows, cols


def uniform_noise(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``U(0, 1)`` draws of ``shape`` with ``like``'s dtype and device.

    ``generator``: a CPU :class:`torch.Generator` (the draws are then moved to the
    device); ``None``: the global random state of ``like``'s device.
    """
    if generator is None:
        return torch.rand(shape, dtype=like.dtype, device=like.device)
    return torch.rand(shape, dtype=like.dtype, generator=generator).to(like.device)


def gumbel_noise(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel draws of ``shape`` (see :func:`uniform_noise` for dtype, device, ``generator``)."""
    u = uniform_noise(shape, like, generator)
    return -torch.log(-torch.log(u.clamp(1e-12, 1 - 1e-7)))


def _num_nodes(num_pairs: int) -> int:
    D = int(round((1 + math.sqrt(1 + 8 * num_pairs)) / 2))
    if D * (D - 1) // 2 != num_pairs:
        raise ValueError(f"logits: {num_pairs} pairs is not D (D - 1) / 2 for any number of nodes D")
    return D


def pair_state_logits(edge_probs: torch.Tensor) -> torch.Tensor:
    """Pair-state logits ``(P, 3)`` of independent edges restricted to one edge per pair.

    Parameters
    ----------
    edge_probs
        ``(D, D)`` probability of each edge on its own (0 forbidden, 1 required).

    Returns
    -------
    torch.Tensor
        ``(P, 3)`` log-weights of ``i -> j``, ``j -> i`` and no edge: the independent
        Bernoulli(``edge_probs``) distribution conditioned on no two-cycle. States of
        probability 0 get :data:`IMPOSSIBLE`.
    """
    D = edge_probs.shape[-1]
    rows, cols = pair_indices(D, edge_probs.device)
    p_ij, p_ji = edge_probs[rows, cols], edge_probs[cols, rows]
    weights = torch.stack([p_ij * (1 - p_ji), (1 - p_ij) * p_ji, (1 - p_ij) * (1 - p_ji)], dim=-1)
    if bool((weights.sum(-1) <= 0).any()):
        raise ValueError("edge_probs: a pair has both directions required (a two-cycle)")
    return torch.where(weights > 0, weights.clamp_min(1e-30).log(), torch.full_like(weights, IMPOSSIBLE))


class PairwiseEdges(TorchDistribution):
    """Graphs with independent pairs, each ``i -> j``, ``j -> i`` or no edge.

    Parameters
    ----------
    logits
        ``(*batch, P, 3)`` unnormalised log-probabilities of the states of the
        ``P = D (D - 1) / 2`` pairs ``(i, j)``, ``i < j`` (row-major upper triangle);
        :data:`IMPOSSIBLE` rules a state out.
    temperature
        Temperature of the Gumbel-softmax relaxation used by :meth:`rsample` (``> 0``);
        it changes the gradient only, never the sampled graph's distribution.

    Examples
    --------
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 0.0, 5.0]])
    >>> d = PairwiseEdges(logits)
    >>> d.event_shape
    torch.Size([3, 3])
    >>> d.edge_probs().round(decimals=2)[0]
    tensor([0.0000, 0.7900, 0.0100])
    >>> bool((d.sample() * d.sample().T).sum() == 0)  # never both directions
    True
    """

    arg_constraints = {}
    support = constraints.independent(constraints.boolean, 2)
    has_rsample = True

    def __init__(self, logits: torch.Tensor, temperature: float | torch.Tensor = 1.0, validate_args=None):
        if logits.dim() < 2 or logits.shape[-1] != _STATES:
            raise ValueError(f"logits: expected shape (..., P, 3); found {tuple(logits.shape)}")
        D = _num_nodes(logits.shape[-2])
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0; found {float(temperature)}")
        self.logits, self.temperature, self.num_nodes = logits, temperature, D
        super().__init__(logits.shape[:-2], torch.Size([D, D]), validate_args=validate_args)

    @property
    def probs(self) -> torch.Tensor:
        """State probabilities ``(*batch, P, 3)``."""
        return torch.softmax(self.logits, dim=-1)

    def edge_probs(self) -> torch.Tensor:
        """Marginal edge probabilities ``(*batch, D, D)`` (``[i, j]`` = P(i -> j))."""
        return self.to_adjacency(self.probs)

    @property
    def mean(self) -> torch.Tensor:
        return self.edge_probs()

    def to_adjacency(self, states: torch.Tensor) -> torch.Tensor:
        """Adjacency ``(..., D, D)`` of (one-hot or soft) pair states ``(..., P, 3)``; differentiable."""
        D = self.num_nodes
        rows, cols = pair_indices(D, states.device)
        flat = states.new_zeros(states.shape[:-2] + (D * D,))
        flat = flat.index_add(-1, rows * D + cols, states[..., 0])
        flat = flat.index_add(-1, cols * D + rows, states[..., 1])
        return flat.reshape(states.shape[:-2] + (D, D))

    def states(self, value: torch.Tensor) -> torch.Tensor:
        """One-hot pair states ``(..., P, 3)`` of a 0/1 adjacency ``(..., D, D)``.

        A pair with both directions on has state vector ``(1, 1, -1)`` (probability 0).
        """
        rows, cols = pair_indices(self.num_nodes, value.device)
        forward, backward = value[..., rows, cols], value[..., cols, rows]
        return torch.stack([forward, backward, 1 - forward - backward], dim=-1)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        logits = self.logits.expand(batch_shape + self.logits.shape[-2:])
        return PairwiseEdges(logits, self.temperature, validate_args=False)

    def rsample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """Hard graphs ``(*sample_shape, *batch, D, D)`` with straight-through gradients.

        ``generator``: a CPU :class:`torch.Generator` for the Gumbel noise (default: the
        global random state).
        """
        gumbel = gumbel_noise(torch.Size(sample_shape) + self.logits.shape, self.logits, generator)
        soft = torch.softmax((self.logits + gumbel) / self.temperature, dim=-1)
        hard = F.one_hot(soft.argmax(-1), _STATES).to(soft.dtype)
        return self.to_adjacency(hard + (soft - soft.detach()))  # exactly 0/1 forward

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """Graphs ``(*sample_shape, *batch, D, D)`` without gradients (see :meth:`rsample`)."""
        with torch.no_grad():
            return self.rsample(sample_shape, generator=generator)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-probability of 0/1 adjacencies ``(..., D, D)``; ``-inf`` off the support."""
        s = self.states(value)
        logp = torch.log_softmax(self.logits, dim=-1)
        lp = torch.where(s != 0, s * logp, torch.zeros_like(logp)).sum((-2, -1))
        valid = (s >= 0).flatten(-2).all(-1) & value.diagonal(dim1=-2, dim2=-1).eq(0).all(-1)
        ruled_out = ((s > 0) & (logp <= IMPOSSIBLE / 2)).flatten(-2).any(-1)
        return torch.where(valid & ~ruled_out, lp, torch.full_like(lp, -math.inf))

    def entropy(self) -> torch.Tensor:
        p, logp = self.probs, torch.log_softmax(self.logits, dim=-1)
        return -(torch.where(p > 0, p * logp, torch.zeros_like(p))).sum((-2, -1))


@register_kl(PairwiseEdges, PairwiseEdges)
def _kl_pairwise_edges(q: PairwiseEdges, p: PairwiseEdges) -> torch.Tensor:
    """``sum over pairs and states q (log q - log p)``, exact; shape ``batch``."""
    if q.num_nodes != p.num_nodes:
        raise ValueError(f"KL: graphs over {q.num_nodes} and {p.num_nodes} nodes")
    q_probs = q.probs
    log_ratio = torch.log_softmax(q.logits, dim=-1) - torch.log_softmax(p.logits, dim=-1)
    return torch.where(q_probs > 0, q_probs * log_ratio, torch.zeros_like(q_probs)).sum((-2, -1))
