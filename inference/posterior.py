"""Posterior draws of fitted chains (:class:`~pyro_personax.inference.FittedChains`), as numpy arrays.

:func:`collect_posterior` gathers, chain by chain (a chain is one independent restart),
what :func:`pyro_personax.inference.diagnostics.build_inference_data` turns into an
``arviz.InferenceData``:

- ``edges`` ``(C, S, D, D)``: whole graphs drawn from ``q(G)`` (``guide.sample_graphs``).
- ``edge_probabilities`` ``(C, D, D)``: the exact marginals of each chain's ``q(G)``.
- ``edge_strengths`` ``(C, S, D, D)``: mean ``|d f_j / d z_i|`` over the entities'
  posterior means, under each edge draw.
- ``noise_params`` ``{"noise_scale", "noise_excess_kurtosis"}`` ``(C, S, D)``: standard
  deviation and excess kurtosis of each learned noise flow ``tau_j(eps)`` (0 kurtosis =
  Gaussian noise); point estimates, repeated over draws.
- ``latent_means`` ``(C, N, D)``, posterior predictive ``x_<m>`` ``(C, P, N, K, d)`` and
  observed values ``(N, K, d)`` (``NaN`` where a measurement is missing), on an entity
  subsample.
- ``log_weights`` ``(C, S, N)``: per-entity importance log-weights
  ``log p(x_n, z_n, eta_n | G) - log q(z_n, eta_n | x_n)`` with ``G ~ q(G)``, for PSIS.
  They diagnose the amortized latent posterior given the graph, entity by entity.
"""

from __future__ import annotations

import numpy as np
import torch
from pyro import poutine

from pyro_personax.inference.chains import FittedChains, subsample_rows
from pyro_personax.inference.devices import local_params

__all__ = ["collect_posterior", "noise_summary"]

_NOISE_DRAWS = 4096


@torch.no_grad()
def noise_summary(model, generator: torch.Generator) -> dict[str, np.ndarray]:
    """Standard deviation and excess kurtosis of every noise flow ``tau_j(eps)``; each ``(D,)``."""
    flow = model.noise_flow
    param = next(model.parameters())
    eps = torch.randn(_NOISE_DRAWS, flow.latent_dim, generator=generator).to(param)
    u = flow(eps)
    centred = u - u.mean(0)
    var = centred.pow(2).mean(0)
    kurt = centred.pow(4).mean(0) / var.pow(2) - 3.0
    return {"noise_scale": var.sqrt().cpu().numpy(), "noise_excess_kurtosis": kurt.cpu().numpy()}


def _site_log_prob(trace, names) -> torch.Tensor:
    """Per-entity ``(B,)`` sum of the sites' log-probabilities (a one-graph plate is summed out)."""
    total = 0.0
    for name in names:
        if name in trace.nodes:
            lp = trace.nodes[name]["fn"].log_prob(trace.nodes[name]["value"])
            total = total + lp.reshape(-1, lp.shape[-1]).sum(0)
    return total


@torch.no_grad()
def _chain_draws(model, guide, batch, n: int, graphs: dict, num_predictive: int):
    """Log-weights and predictive draws of one chain under its graph draws (``guide.sample_graphs``)."""
    num_samples = graphs["edges"].shape[0]
    modalities = [m.name for m in model.spec.modalities]
    latent_sites = ["z"] + [f"eta_{m}" for m in modalities]
    obs_sites = [f"x_{m}" for m in modalities]
    log_w, predictive = [], {m: [] for m in modalities}
    for s in range(num_samples):
        # q(z, eta | x) does not depend on G: trace the guide, then score the model
        # under the edge draw G_s (conditioning wins over replay for that site).
        g_tr = poutine.trace(guide).get_trace(batch, num_entities=n)
        model_s = poutine.replay(poutine.condition(model, data={k: v[s] for k, v in graphs.items()}), trace=g_tr)
        m_tr = poutine.trace(model_s).get_trace(batch, num_entities=n)
        log_w.append(_site_log_prob(m_tr, latent_sites + obs_sites) - _site_log_prob(g_tr, latent_sites))
        if s < num_predictive:
            p_tr = poutine.trace(model_s).get_trace(batch, num_entities=n, observe=False)
            for m in modalities:
                predictive[m].append(p_tr.nodes[f"x_{m}"]["value"])
    return torch.stack(log_w), {m: torch.stack(v) for m, v in predictive.items() if v}


def collect_posterior(
    chains: FittedChains,
    data=None,
    *,
    num_samples: int = 200,
    num_predictive: int | None = None,
    max_entities: int | None = 100,
    seed: int = 0,
) -> dict:
    """Arrays of a fitted model's posterior, ready for ``build_inference_data``.

    Parameters
    ----------
    chains
        The :class:`~pyro_personax.inference.FittedChains` (``PersonaX.chains``).
    data
        The :class:`~pyro_personax.data.MultiModalData` to evaluate on (usually the
        training data). ``None``: only the graph posterior (edges, noise flows, ELBO);
        no strengths, latent means, predictive checks or log-weights.
    num_samples
        Posterior draws ``S`` per chain (edges, strengths, log-weights).
    num_predictive
        Posterior predictive draws ``P`` per chain (``P <= S``; default
        ``min(20, S)``).
    max_entities
        Size of the entity subsample for strengths, latent means, predictive checks
        and log-weights (``None`` = all entities).
    seed
        Seed of the draws and of the entity subsample; the global random state is left
        as it was.

    Returns
    -------
    dict
        Keyword arguments of ``build_inference_data`` (without ``layout`` and
        ``attrs``), including ``entity_ids`` (the subsample's rows, or the data's ids).
        Every per-latent array of every chain is in chain 0's latent labels
        (``chains.alignment``, see :meth:`~pyro_personax.inference.FittedChains.align`).
    """
    if num_predictive is None:
        num_predictive = min(20, num_samples)
    if num_samples < 1 or not 0 <= num_predictive <= num_samples:
        raise ValueError(
            f"num_samples must be >= 1 and 0 <= num_predictive <= num_samples; found {num_samples}, {num_predictive}"
        )
    sub, rows = None, None
    if data is not None:
        rows = subsample_rows(data.num_entities, max_entities, seed)
        sub = data.subset(rows)
    keys = ("edges", "edge_probabilities", "edge_strengths", "latent_means", "log_weights")
    out = {k: [] for k in keys}
    noise = {"noise_scale": [], "noise_excess_kurtosis": []}
    predictive = {m: [] for m in (sub.modalities if sub is not None else ())}
    align = chains.alignment
    with torch.random.fork_rng(devices=[]), local_params():
        for c in range(chains.num_chains):
            torch.manual_seed(seed + c)
            generator = torch.Generator().manual_seed(seed + c)
            model, guide = chains.model(c), chains.guide(c)
            for k, v in noise_summary(model, generator).items():
                noise[k].append(np.broadcast_to(align.relabel_latents(c, v), (num_samples, v.shape[0])))
            graphs = guide.sample_graphs(num_samples, generator)
            edges = graphs["edges"]
            out["edges"].append(align.relabel_edges(c, edges.cpu().numpy().astype(np.int8)))
            probs = guide.edge_probabilities().cpu().numpy().astype(np.float64)
            out["edge_probabilities"].append(align.relabel_edges(c, probs))
            if sub is None:
                continue
            param = next(guide.parameters())
            batch = sub.to_tensors(device=param.device, dtype=param.dtype)
            loc, _ = guide.latent_posterior(batch)
            log_w, pred = _chain_draws(model, guide, batch, sub.num_entities, graphs, num_predictive)
            strengths = torch.stack([model.mechanism_strength(loc, e) for e in edges])
            out["edge_strengths"].append(align.relabel_edges(c, strengths.cpu().numpy()))
            out["latent_means"].append(align.relabel_latents(c, loc.cpu().numpy()))
            out["log_weights"].append(log_w.cpu().numpy())
            for m, v in pred.items():
                predictive[m].append(v.cpu().numpy())
    result = {k: (np.stack(v) if v else None) for k, v in out.items()}
    result["noise_params"] = {k: np.stack(v) for k, v in noise.items()}
    if chains.result is not None:
        result["elbo"] = [np.asarray(c.train_elbo, dtype=float) for c in chains.result.chains]
    else:
        result["elbo"] = None
    result["posterior_predictive"] = {m: np.stack(v) for m, v in predictive.items() if v} or None
    result["observed"] = _observed(sub) if sub is not None and num_predictive else None
    if sub is not None:
        result["entity_ids"] = rows if data.entity_ids is None else data.entity_ids[rows]
    return result


def _observed(sub) -> dict[str, np.ndarray]:
    """Observed values ``(N, K, d)`` per modality, ``NaN`` where missing (a copy)."""
    observed = {}
    for m in sub.modalities:
        # np.where makes a new array: the user's arrays are untouched
        observed[m] = np.where(sub.observed_mask(m), sub.values[m].astype(float), np.nan)
    return observed
