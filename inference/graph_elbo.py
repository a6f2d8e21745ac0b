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
  ``1/K sum_k (f_k - mean_{j != k} f_j) grad log q(pi_k, G_k)`` (Kool et al., 2019),
  unbiased for ``K >= 2`` because the baseline of particle ``k`` does not depend on it.

With ``mechanism_fit_weight > 0`` (the default) the mechanisms and noise flows are point
estimates fitted on random parent sets instead (ENCO's distribution fitting, Lippe et
al., 2022): the ELBO passes them no gradient, and the term ``w * E_M[log p(z | M)]``,
``M`` a random mask (each free pair present with probability 1/2, required pairs
present) and ``z`` held fixed, is added to the loss. Each ``f_j`` and ``tau_j`` then
describe ``z_j`` given every candidate parent set, not only the sampled ones, so ``q(G)``
compares graphs under conditionals that no graph was favoured in fitting: no
rich-get-richer lock-in of the first orientation or of an edge switched off early. The
term is not part of the ELBO: the reported loss excludes it. With weight 0 the ELBO
trains them (the model's own point estimates).
"""

from __future__ import annotations

import contextlib

import torch
from pyro import poutine
from torch import nn

__all__ = ["GraphParticleELBO", "GRAPH_PLATE", "loo_score_surrogate"]

GRAPH_PLATE = "graphs"


def _in_graph_plate(site) -> bool:
    return any(f.name == GRAPH_PLATE for f in site["cond_indep_stack"])


def _per_particle(log_prob: torch.Tensor, num_particles: int) -> torch.Tensor:
    """Sum a site's log-probability ``(K, ...)`` (``(K, 1)`` or ``(K, B)``) to ``(K,)``."""
    lp = log_prob
    if lp.dim() == 0:
        return lp.expand(num_particles) / num_particles
    return lp.reshape(lp.shape[0], -1).sum(-1).expand(num_particles)


def loo_score_surrogate(cost: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Zero-valued surrogate whose gradient is the leave-one-out score-function estimator.

    Parameters
    ----------
    cost
        ``(K,)`` per-particle terms ``f_k`` (detached inside).
    log_q
        ``(K,)`` ``log q`` of each particle's discrete draws, with gradient.

    Returns
    -------
    torch.Tensor
        Scalar ``1/K sum_k (f_k - mean_{j != k} f_j) (log q_k - stop_grad(log q_k))``:
        value 0, gradient the estimator of ``grad E_q[f]`` through the sampling
        distribution.
    """
    K = cost.shape[0]
    cost = cost.detach()
    baseline = (cost.sum() - cost) / (K - 1)
    return ((cost - baseline) * (log_q - log_q.detach())).mean()


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

    Calling it with the model's arguments returns a scalar tensor whose value is the
    negative ELBO estimate and whose gradient is the estimator in the module docstring.
    """

    def __init__(self, model: nn.Module, guide: nn.Module, num_particles: int = 8, mechanism_fit_weight: float = 1.0):
        super().__init__()
        if not isinstance(num_particles, int) or num_particles < 2:
            raise ValueError(f"num_particles: expected an int >= 2 (the leave-one-out baseline); found {num_particles!r}")
        if not mechanism_fit_weight >= 0:
            raise ValueError(f"mechanism_fit_weight: expected a value >= 0; found {mechanism_fit_weight!r}")
        self.model, self.guide = model, guide
        self.num_particles, self.mechanism_fit_weight = num_particles, float(mechanism_fit_weight)

    def traces(self, *args, **kwargs):
        """Guide and model traces with ``graph_particles = K`` (log-probabilities computed)."""
        kwargs = {**kwargs, "graph_particles": self.num_particles}
        guide_tr = poutine.trace(self.guide).get_trace(*args, **kwargs)
        fixed = self.mechanism_fit_weight > 0 and hasattr(self.model, "mechanisms_held_fixed")
        with self.model.mechanisms_held_fixed() if fixed else contextlib.nullcontext():
            model_tr = poutine.trace(poutine.replay(self.model, trace=guide_tr)).get_trace(*args, **kwargs)
        model_tr.compute_log_prob()
        guide_tr.compute_log_prob()
        return model_tr, guide_tr

    def forward(self, *args, **kwargs) -> torch.Tensor:
        K = self.num_particles
        model_tr, guide_tr = self.traces(*args, **kwargs)
        shared = 0.0
        particle = None
        log_q_graph = None
        for tr, sign in ((model_tr, 1.0), (guide_tr, -1.0)):
            for site in tr.nodes.values():
                if site["type"] != "sample" or "log_prob" not in site:
                    continue
                lp = site["log_prob"]
                discrete = sign < 0 and not getattr(site["fn"], "has_rsample", False) and _in_graph_plate(site)
                if discrete:
                    term = _per_particle(lp, K)
                    log_q_graph = term if log_q_graph is None else log_q_graph + term
                    lp = lp.detach()
                if _in_graph_plate(site):
                    term = sign * _per_particle(lp, K)
                    particle = term if particle is None else particle + term
                else:
                    shared = shared + sign * lp.sum()
        elbo = shared + particle.mean()
        if log_q_graph is not None:
            elbo = elbo + loo_score_surrogate(particle, log_q_graph)
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
        scale = model_tr.nodes["z"]["scale"]
        model = self.model
        free = model.free_mask
        u = torch.rand((self.num_particles,) + tuple(free.shape), device=z.device)
        masks = ((u < 0.5) & free) | model.required_mask
        masks = masks.to(z.dtype).unsqueeze(-3)  # (K, 1, D, D)
        residual = z - model.mechanisms(z, masks)  # (K, B, D)
        node_lp = model.noise_flow.log_prob(residual)
        fit = node_lp.sum(-1).sum(-1).mean() * scale
        return fit - fit.detach()
