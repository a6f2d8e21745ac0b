"""The ELBO of the order-based graph posterior, with a stated gradient estimator.

The guide draws ``K`` graphs ``(pi_k, G_k)`` from ``q(pi) q(G | pi)`` (the ``"graphs"``
plate) and one ``z, eta ~ q(z, eta | x)``, which does not depend on the graph. Every
model and guide site in the ``"graphs"`` plate gives a per-particle term, so

    ELBO = E_q[ log p(x, eta | z) - log q(z, eta | x) ]            # shared by all particles
         + 1/K sum_k f_k,  f_k = log p(z | G_k) + log p(pi_k, G_k) + factors(G_k)
                                 - log q(pi_k, G_k)

is estimated without bias. Its gradient:

- continuous parameters (encoders, decoders, mechanisms, noise flows): the
  reparameterised gradient of the estimate above (``z`` and ``eta`` are reparameterised;
  ``log q(pi_k, G_k)`` enters with its value only);
- the graph parameters ``theta, phi`` (the sites ``order`` and ``edges`` are discrete):
  the score-function estimator with the leave-one-out baseline
  ``1/K sum_k (f_k - mean_{j != k} f_j) grad log q(pi_k)`` (Kool et al., 2019) for the
  order, unbiased for ``K >= 2`` because the baseline of particle ``k`` does not depend
  on it; and, Rao-Blackwellised, for the edges into each child ``j`` the same estimator
  with ``f_k`` replaced by the terms that depend on those edges: child ``j``'s part of
  ``log p(z | G_k)``, of ``log p(G_k | pi_k) - log q(G_k | pi_k)`` and of the sparsity
  factor (sites with a ``column_log_prob``), plus the graph-wide factors. Terms of other
  children and of the order alone do not depend on them, so leaving them out removes
  variance and no bias.

With ``mechanism_fit_weight > 0`` (the default) the mechanisms and noise flows are point
estimates fitted on random parent sets instead (ENCO's distribution fitting, Lippe et
al., 2022): the ELBO passes them no gradient, and the term ``w * E_M[log p(z | M)]``,
``M`` a random mask (each free pair present with probability 1/2, required pairs
present) and ``z`` held fixed, is added to the loss. Each ``f_j`` and ``tau_j`` then
describe ``z_j`` given every candidate parent set, not only the sampled ones, so ``q(G)``
compares graphs under conditionals that no graph was favoured in fitting: no
rich-get-richer lock-in of the first orientation or of an edge switched off early. The
term is not part of the ELBO: the reported loss excludes it. With weight 0, or with
``mechanisms_in_elbo=True``, the ELBO trains them too.
"""

from __future__ import annotations

import contextlib

import torch
from pyro import poutine
from torch import nn

from pyro_personax.models.edges import uniform_noise
from pyro_personax.models.order_graph import CausalOrder

__all__ = ["GraphParticleELBO", "GRAPH_PLATE", "loo_score_surrogate", "random_parent_set_log_prob"]

GRAPH_PLATE = "graphs"


def _in_graph_plate(site) -> bool:
    return any(f.name == GRAPH_PLATE for f in site["cond_indep_stack"])


def _per_particle(log_prob: torch.Tensor, num_particles: int) -> torch.Tensor:
    """Sum a site's log-probability ``(K, ...)`` (``(K, 1)`` or ``(K, B)``) to ``(K,)``."""
    lp = log_prob
    if lp.dim() == 0:
        return lp.expand(num_particles) / num_particles
    return lp.reshape(lp.shape[0], -1).sum(-1).expand(num_particles)


def _site_columns(site, num_particles: int) -> torch.Tensor | None:
    """Per-child terms ``(K, D)`` of a site whose distribution splits over children, else ``None``."""
    fn = site["fn"]
    if not hasattr(fn, "column_log_prob"):
        return None
    cols = fn.column_log_prob(site["value"])
    if site.get("mask") is not None and site["mask"] is not True:
        cols = cols * torch.as_tensor(site["mask"], device=cols.device).unsqueeze(-1)
    cols = cols * site["scale"]
    return cols.reshape(cols.shape[0], -1, cols.shape[-1]).sum(1).expand(num_particles, -1)


class _Terms:
    """Accumulates the ELBO's terms: shared, per particle, per particle and child, and log q of the draws."""

    def __init__(self, num_particles: int):
        self.K = num_particles
        self.shared = 0.0
        self.particle = 0.0  # (K,): every term in the graphs plate
        self.edges_global = 0.0  # (K,): terms of the edges not split by child (graph factors)
        self.columns = 0.0  # (K, D): terms split by child
        self.log_q_order = None  # (K,)
        self.log_q_columns = None  # (K, D)

    def add(self, site, sign: float) -> None:
        lp = site["log_prob"]
        if not _in_graph_plate(site):
            self.shared = self.shared + sign * lp.sum()
            return
        discrete = sign < 0 and not getattr(site["fn"], "has_rsample", False)
        columns = _site_columns(site, self.K)
        if discrete:
            if columns is not None:
                self.log_q_columns = columns
            else:
                self.log_q_order = _per_particle(lp, self.K)
            lp, columns = lp.detach(), None if columns is None else columns.detach()
        self.particle = self.particle + sign * _per_particle(lp, self.K)
        if columns is not None:
            self.columns = self.columns + sign * columns
        elif not _is_order_site(site):
            self.edges_global = self.edges_global + sign * _per_particle(lp, self.K)

    def score_surrogate(self) -> torch.Tensor:
        """The order's gradient charged with every per-particle term; each child's edges with their own."""
        out = 0.0
        if self.log_q_order is not None:
            out = out + loo_score_surrogate(self.particle, self.log_q_order)
        if self.log_q_columns is not None:
            cost = self.columns + torch.as_tensor(self.edges_global).reshape(-1, 1)
            out = out + loo_score_surrogate(cost.expand_as(self.log_q_columns), self.log_q_columns)
        return out


def _is_order_site(site) -> bool:
    return isinstance(site["fn"], CausalOrder)


def loo_score_surrogate(cost: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Zero-valued surrogate whose gradient is the leave-one-out score-function estimator.

    Parameters
    ----------
    cost
        ``(K, ...)`` per-particle terms ``f_k`` (detached inside); trailing dimensions
        are independent estimators (one per child, say), summed in the result.
    log_q
        ``(K, ...)`` ``log q`` of each particle's discrete draws, with gradient.

    Returns
    -------
    torch.Tensor
        Scalar ``sum over trailing cells of 1/K sum_k (f_k - mean_{j != k} f_j)
        (log q_k - stop_grad(log q_k))``: value 0, gradient the estimator of
        ``grad E_q[f]`` through the sampling distribution.
    """
    K = cost.shape[0]
    cost = cost.detach()
    baseline = (cost.sum(0) - cost) / (K - 1)
    return ((cost - baseline) * (log_q - log_q.detach())).mean(0).sum()


class GraphParticleELBO(nn.Module):
    """Negative ELBO of a model / guide pair with an order-based graph posterior.

    Parameters
    ----------
    model, guide
        :class:`~pyro_personax.models.PersonaXModel` / ``PersonaXGuide`` (or modules with
        the same sites) with ``graph_posterior="order"``.
    num_particles
        Graphs ``K >= 2`` drawn per step.
    mechanism_fit_weight
        Weight ``w >= 0`` of the random-parent-set fit of the mechanisms (0: off).
    mechanisms_in_elbo
        With ``w > 0``: also train the mechanisms and noise flows by the ELBO (the prior
        ``p(z | G)`` then fits the drawn graphs, which pulls the latents more sharply and
        lets the first graphs drawn shape the mechanisms). ``False`` (default): only
        the random-parent-set fit trains them.

    Calling it with the model's arguments returns a scalar tensor whose value is the
    negative ELBO estimate and whose gradient is the estimator in the module docstring.
    """

    def __init__(self, model: nn.Module, guide: nn.Module, num_particles: int = 8, mechanism_fit_weight: float = 1.0,
                 mechanisms_in_elbo: bool = False):
        super().__init__()
        if not isinstance(num_particles, int) or num_particles < 2:
            raise ValueError(
                f"num_particles: expected an int >= 2 (the leave-one-out baseline); found {num_particles!r}"
            )
        if not mechanism_fit_weight >= 0:
            raise ValueError(f"mechanism_fit_weight: expected a value >= 0; found {mechanism_fit_weight!r}")
        self.model, self.guide = model, guide
        self.num_particles, self.mechanism_fit_weight = num_particles, float(mechanism_fit_weight)
        self.mechanisms_in_elbo = bool(mechanisms_in_elbo)

    def traces(self, *args, **kwargs):
        """Guide and model traces with ``graph_particles = K`` (log-probabilities computed)."""
        kwargs = {**kwargs, "graph_particles": self.num_particles}
        guide_tr = poutine.trace(self.guide).get_trace(*args, **kwargs)
        fixed = (
            self.mechanism_fit_weight > 0
            and not self.mechanisms_in_elbo
            and hasattr(self.model, "mechanisms_held_fixed")
        )
        with self.model.mechanisms_held_fixed() if fixed else contextlib.nullcontext():
            model_tr = poutine.trace(poutine.replay(self.model, trace=guide_tr)).get_trace(*args, **kwargs)
        model_tr.compute_log_prob()
        guide_tr.compute_log_prob()
        return model_tr, guide_tr

    def forward(self, *args, **kwargs) -> torch.Tensor:
        model_tr, guide_tr = self.traces(*args, **kwargs)
        terms = _Terms(self.num_particles)
        for tr, sign in ((model_tr, 1.0), (guide_tr, -1.0)):
            for site in tr.nodes.values():
                if site["type"] == "sample" and "log_prob" in site:
                    terms.add(site, sign)
        elbo = terms.shared + terms.particle.mean() + terms.score_surrogate()
        loss = -elbo
        if self.mechanism_fit_weight > 0:
            loss = loss - self.mechanism_fit_weight * self._mechanism_fit(model_tr, guide_tr)
        return loss

    def _mechanism_fit(self, model_tr, guide_tr) -> torch.Tensor:
        """``E_M[log p(z | M)]`` over ``K`` random parent masks, scaled like the ``z`` site, with a zero value.

        Only the gradient reaches the mechanisms; the value is subtracted so that the
        returned loss stays the negative ELBO.
        """
        z = guide_tr.nodes["z"]["value"].detach()
        node_lp = random_parent_set_log_prob(self.model, z, self.num_particles)  # (K, B, D)
        fit = node_lp.sum(-1).sum(-1).mean() * model_tr.nodes["z"]["scale"]
        return fit - fit.detach()


def random_parent_set_log_prob(
    model, z: torch.Tensor, num_masks: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Node terms ``log p(z_j | M_k[:, j])`` under ``num_masks`` random parent masks.

    Each free pair of ``model`` is a parent with probability 1/2 (independently; the
    masks need not be acyclic, since each node term is a conditional of its own),
    required pairs always. The mechanisms' location, log-scale and noise flow all enter
    (:meth:`~pyro_personax.models.latent_flow.DAGFlowLatent.node_log_prob`).

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` (``free_mask``, ``required_mask``,
        ``latent_distribution``).
    z
        Latents ``(..., B, D)``; a leading dimension of size ``num_masks`` pairs one
        latent draw with each mask.
    num_masks
        ``K`` masks.
    generator
        CPU generator of the masks (default: the random state of ``z``'s device).

    Returns
    -------
    torch.Tensor
        ``(K, B, D)`` (or ``z``'s broadcast shape with ``K`` in front).
    """
    free = model.free_mask.to(z.device)
    u = uniform_noise((num_masks,) + tuple(free.shape), z, generator)
    masks = ((u < 0.5) & free) | model.required_mask.to(z.device)
    masks = masks.to(z.dtype).unsqueeze(-3)  # (K, 1, D, D)
    return model.latent_distribution(masks).node_log_prob(z)
