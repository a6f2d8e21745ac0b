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
- ``elbo``: the per-epoch training ELBO trace of each chain.
- ``latent_means`` ``(C, N, D)``, posterior predictive ``x_<m>`` ``(C, P, N, K, d)`` and
  observed values ``(N, K, d)`` (``NaN`` where a measurement is missing), on an entity
  subsample.
- ``log_weights`` ``(C, S, N)``: per-entity importance log-weights
  ``log p(x_n, z_n, eta_n | G) - log q(z_n, eta_n | x_n)`` with ``G ~ q(G)``, for PSIS.
  They diagnose the amortized latent posterior given the graph, entity by entity.
- ``log_likelihood`` ``{m: (C, S, N)}``: pointwise ``log p(x_nm | z_n, eta_nm)`` of each
  modality under the same draws (for ``az.loo`` / ``az.compare``; see
  :mod:`pyro_personax.inference.diagnostics.build` for what they estimate).

Draw ``s`` of a chain is one joint draw ``(G_s, z_s, eta_s)``: ``G_s`` from ``q(G)``, then
``(z_s, eta_s)`` from the amortized ``q(z, eta | x)`` (which does not depend on ``G``),
scored under ``G_s``. :func:`entity_draws` takes all ``S`` draws of a chain in one
vectorised pass (a ``"samples"`` plate outside the model's plates, as
``pyro.infer.Predictive(parallel=True)`` does), in chunks when ``S x N`` is large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro import poutine

from pyro_personax.inference.chains import FittedChains, subsample_rows
from pyro_personax.inference.devices import local_params

__all__ = ["collect_posterior", "noise_summary", "entity_draws", "EntityDraws", "SAMPLES_DIM"]

_NOISE_DRAWS = 4096
#: Dimension of the plate of posterior draws: outside the model's ``"entity"`` (-1) and ``"graphs"`` (-2) plates.
SAMPLES_DIM = -3
#: Bound on ``draws x entities x sum_m K_m (d_m + _HIDDEN_WIDTH)`` in one vectorised pass.
_CHUNK_VALUES = 2**24
#: Rough width of a measurement's hidden activations in that bound.
_HIDDEN_WIDTH = 64


@torch.no_grad()
def noise_summary(model, generator: torch.Generator) -> dict[str, np.ndarray]:
    """Standard deviation and excess kurtosis of every noise flow ``tau_j(eps)``; each ``(D,)`` (a
    ``"parent_spline"`` flow: the shape of the empty parent set)."""
    flow = model.noise_flow
    param = next(model.parameters())
    eps = torch.randn(_NOISE_DRAWS, flow.latent_dim, generator=generator).to(param)
    u = flow(eps)
    centred = u - u.mean(0)
    var = centred.pow(2).mean(0)
    kurt = centred.pow(4).mean(0) / var.pow(2) - 3.0
    return {"noise_scale": var.sqrt().cpu().numpy(), "noise_excess_kurtosis": kurt.cpu().numpy()}


@dataclass(frozen=True)
class EntityDraws:
    """Per-entity quantities of ``S`` joint posterior draws ``(G_s, z_s, eta_s)`` of one chain.

    ``G_s`` comes from ``q(G)`` (``guide.sample_graphs``), ``(z_s, eta_s)`` from the
    amortized ``q(z, eta | x)``, which does not depend on the graph.

    Attributes
    ----------
    log_weight
        ``(S, N)``: ``log p(x_n, z_n, eta_n | G_s) - log q(z_n, eta_n | x_n)``, the
        importance log-weight of entity ``n`` under draw ``s``.
    log_likelihood
        Modality ``m`` -> ``(S, N)``: ``log p(x_nm | z_n, eta_nm)`` summed over the
        observed measurements of ``m`` (a missing measurement contributes 0).
    predictive
        Modality -> ``(P, N, K, d)``: data replicated from the first ``P`` draws (empty
        when ``P = 0``).
    latents
        Site -> values of the draws: ``"z"`` ``(S, N, D)`` and ``"eta_<m>"``
        ``(S, N, K, e)`` (modalities with a nuisance only), in the chain's own labels.
    """

    log_weight: torch.Tensor
    log_likelihood: dict[str, torch.Tensor]
    predictive: dict[str, torch.Tensor]
    latents: dict[str, torch.Tensor]


def _per_entity(trace, name: str, num_samples: int) -> torch.Tensor:
    """``(S, N)`` log-density of site ``name`` (unscaled, unmasked), the one-graph plate summed out."""
    site = trace.nodes[name]
    lp = site["fn"].log_prob(site["value"])
    lp = lp.expand(torch.broadcast_shapes(lp.shape, (num_samples, 1, 1)))
    return lp.reshape(num_samples, -1, lp.shape[-1]).sum(1)


def _chunk_size(spec, num_entities: int, num_samples: int) -> int:
    """Draws per vectorised pass: at most ``_CHUNK_VALUES`` (draw, entity, measurement, width) values."""
    width = sum(m.num_measurements * (m.measurement_dim + _HIDDEN_WIDTH) for m in spec.modalities)
    return int(min(num_samples, max(1, _CHUNK_VALUES // max(1, num_entities * width))))


def _draw_chunk(model, guide, batch, num_entities: int, graphs: dict, num_predictive: int) -> EntityDraws:
    """One vectorised pass over the ``S`` graph draws ``graphs`` (see :func:`entity_draws`)."""
    S, n = graphs["edges"].shape[0], num_entities
    modalities = [m.name for m in model.spec.modalities]
    # draw s sits at index s of the "samples" plate, inside a one-graph "graphs" plate
    data = {k: v.reshape((S, 1, 1) + v.shape[1:]) for k, v in graphs.items()}
    with pyro.plate("samples", S, dim=SAMPLES_DIM):
        g_tr = poutine.trace(poutine.condition(guide, data=data)).get_trace(batch, num_entities=n)
        # conditioning wins over replay for the graph sites; z and eta come from the guide
        model_s = poutine.replay(poutine.condition(model, data=data), trace=g_tr)
        m_tr = poutine.trace(model_s).get_trace(batch, num_entities=n)
    latent_sites = [site for site in ["z"] + [f"eta_{m}" for m in modalities] if site in g_tr.nodes]
    log_lik = {m: _per_entity(m_tr, f"x_{m}", S) for m in modalities}
    log_q = sum(_per_entity(g_tr, site, S) for site in latent_sites)
    log_w = sum(_per_entity(m_tr, site, S) for site in latent_sites) + sum(log_lik.values()) - log_q
    predictive = {}
    if num_predictive > 0:
        for m in modalities:
            fn = m_tr.nodes[f"x_{m}"]["fn"]  # p(x_m | z_s, eta_s), batch (S, 1, N)
            predictive[m] = fn.sample().reshape((S, n) + tuple(fn.event_shape))[:num_predictive]
    latents = {}
    for site in latent_sites:
        value, fn = g_tr.nodes[site]["value"], g_tr.nodes[site]["fn"]
        latents[site] = value.reshape((S, n) + tuple(fn.event_shape))
    return EntityDraws(log_w, log_lik, predictive, latents)


@torch.no_grad()
def entity_draws(model, guide, batch, num_entities: int, graphs: dict, *, num_predictive: int = 0) -> EntityDraws:
    """Draw ``(z, eta)`` from the guide once per graph draw and score every entity, vectorised.

    All ``S`` draws run at once in a ``"samples"`` plate at ``dim=SAMPLES_DIM`` (``-3``),
    outside the model's ``"entity"`` (``-1``) and ``"graphs"`` (``-2``) plates: the guide
    is traced once with the graph sites conditioned on ``graphs``, and the model is
    replayed on that trace, so draw ``s`` scores ``z_s``'s density under ``G_s``. When
    ``S x N`` is large the draws are taken in chunks (bounded memory). Randomness comes
    from the global torch generator.

    Parameters
    ----------
    model, guide
        One chain's :class:`~pyro_personax.models.PersonaXModel` and
        :class:`~pyro_personax.models.PersonaXGuide`.
    batch
        Modality -> ``ModalityTensors`` of ``num_entities`` rows, on the modules' device.
    num_entities
        ``N``, the rows of ``batch``.
    graphs
        Graph draws of ``guide.sample_graphs(S)``: ``"edges"`` ``(S, D, D)`` and, for the
        order posterior, ``"order"`` ``(S, D)``.
    num_predictive
        ``P <= S``: replicate the data from the first ``P`` draws.

    Returns
    -------
    EntityDraws
        Per-entity log-weights and log-likelihoods ``(S, N)``, replicated data
        ``(P, N, K, d)`` and the latent draws.
    """
    num_samples = graphs["edges"].shape[0]
    if not 0 <= num_predictive <= num_samples:
        raise ValueError(f"num_predictive: expected 0 <= num_predictive <= {num_samples}; found {num_predictive}")
    size = _chunk_size(model.spec, num_entities, num_samples)
    parts = []
    for start in range(0, num_samples, size):
        chunk = {k: v[start : start + size] for k, v in graphs.items()}
        parts.append(_draw_chunk(model, guide, batch, num_entities, chunk, min(size, max(0, num_predictive - start))))
    if len(parts) == 1:
        return parts[0]
    return EntityDraws(
        torch.cat([p.log_weight for p in parts]),
        {m: torch.cat([p.log_likelihood[m] for p in parts]) for m in parts[0].log_likelihood},
        {m: torch.cat([p.predictive[m] for p in parts if m in p.predictive]) for m in parts[0].predictive},
        {s: torch.cat([p.latents[s] for p in parts]) for s in parts[0].latents},
    )


@torch.no_grad()
def _edge_strengths(model, loc: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``model.mechanism_strength`` under each edge draw ``(S, D, D)``, computed once per distinct graph."""
    unique, inverse = torch.unique(edges, dim=0, return_inverse=True)
    return torch.stack([model.mechanism_strength(loc, e) for e in unique])[inverse]


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
        no strengths, latent means, predictive checks, log-weights or log-likelihoods.
    num_samples
        Posterior draws ``S`` per chain (edges, strengths, log-weights, log-likelihoods).
    num_predictive
        Posterior predictive draws ``P`` per chain (``P <= S``; default
        ``min(20, S)``).
    max_entities
        Size of the entity subsample for strengths, latent means, predictive checks,
        log-weights and log-likelihoods (``None`` = all entities).
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
    modalities = sub.modalities if sub is not None else ()
    predictive = {m: [] for m in modalities}
    log_lik = {m: [] for m in modalities}
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
            draws = entity_draws(model, guide, batch, sub.num_entities, graphs, num_predictive=num_predictive)
            strengths = _edge_strengths(model, loc, edges)
            out["edge_strengths"].append(align.relabel_edges(c, strengths.cpu().numpy()))
            out["latent_means"].append(align.relabel_latents(c, loc.cpu().numpy()))
            out["log_weights"].append(draws.log_weight.cpu().numpy())
            for m in modalities:
                log_lik[m].append(draws.log_likelihood[m].cpu().numpy())
                if m in draws.predictive:
                    predictive[m].append(draws.predictive[m].cpu().numpy())
    result = {k: (np.stack(v) if v else None) for k, v in out.items()}
    result["noise_params"] = {k: np.stack(v) for k, v in noise.items()}
    if chains.result is not None:
        result["elbo"] = [np.asarray(c.train_elbo, dtype=float) for c in chains.result.chains]
    else:
        result["elbo"] = None
    result["posterior_predictive"] = {m: np.stack(v) for m, v in predictive.items() if v} or None
    result["log_likelihood"] = {m: np.stack(v) for m, v in log_lik.items() if v} or None
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
