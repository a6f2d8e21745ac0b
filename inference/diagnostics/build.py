"""Building the :class:`arviz.InferenceData` of a fit, and the Pareto ``k`` of importance log-weights.

Layout built by :func:`build_inference_data` (adjacencies ``[parent, child]``, as in :mod:`pyro_personax.graph`)::

    posterior            edges          (chain, draw, edge)            0/1 draws of the varying free edges
                         edge_strength  (chain, draw, edge)            optional, the same edges
                         <noise param>  (chain, draw, latent)          optional
    adjacency            edges          (chain, draw, parent, child)   every 0/1 edge draw
                         edge_strength  (chain, draw, parent, child)   optional
    edge_probabilities   p_edge         (chain, parent, child)         optional: exact marginals of q(G)
    fit_trace            elbo           (chain, epoch)                 training ELBO, NaN-padded
    sample_stats         log_weight     (chain, draw[, entity])        optional
    psis                 pareto_k       (chain[, entity])              with log_weight
    log_likelihood       x_<modality>   (chain, draw, entity)          optional
    latent_means         z_mean         (chain, entity, latent)        optional
    posterior_predictive x_<modality>   (chain, draw, entity, <modality>_measurement,
                                          <modality>_feature)
    observed_data        x_<modality>   (entity, <modality>_measurement, <modality>_feature)

Coordinates ``parent``, ``child`` and ``latent`` are the latent names of the layout; the
layout's blocks are the non-dimension coordinates ``parent_block``, ``child_block`` and
``latent_block``. The attributes hold the layout and configuration (JSON strings), the
library versions and torch's CPU capability (``torch_cpu_capability``) of the process.

**Edges: ``posterior`` and ``adjacency``.** ``adjacency.edges`` holds every cell of every
draw. ``posterior.edges`` holds the cells on which ArviZ's diagnostics are defined
(:func:`varying_edges`): the *free* edges (allowed by the layout, not required) whose
draws vary within a chain, along a dimension ``edge`` labelled ``"parent->child"``
(non-dimension coordinates ``edge_parent``, ``edge_child``, ``edge_class``). ArviZ's
R-hat divides by the variance within (half-)chains, so a cell without it gives NaN or
``inf`` and a RuntimeWarning per statistic: the diagonal, forbidden edges (always 0),
required edges (always 1), free edges that no draw changed, and free edges that each
restart holds fixed but the restarts disagree on (R-hat ``inf``: :func:`~.edge_summary`
reports it, with the classic split R-hat over every pair). So
``az.summary(idata, var_names=["edges"])`` runs without those warnings. One case is left
to ArviZ: when exactly half of a cell's (split) draws are 1, its folded rank R-hat is
0/0 and ArviZ warns, though the R-hat it reports is defined.

**Groups outside ArviZ's schema.** ``sample_stats`` holds ``(chain, draw)`` statistics
only, as ArviZ expects (``az.summary(idata, group="sample_stats")`` and ``az.extract``
stack ``chain`` and ``draw``): the ELBO, one value per training epoch (``epoch`` 0 is the
first, as :attr:`~pyro_personax.inference.ChainResult.best_epoch`), is in ``fit_trace``,
and the Pareto ``k`` per chain (and entity) of the log-weights is in ``psis``.
:func:`~.elbo_traces`, :func:`~.pareto_k_of` and :func:`~.edge_draws` also read files written
before this layout (``sample_stats.elbo`` over ``step``, ``posterior.edges`` over
``(parent, child)``).

**Pointwise log-likelihood** (``log_likelihood.x_<m>``): ``log p(x_nm | z_n, eta_nm)``
of entity ``n``'s measurements of modality ``m`` (observed ones only), with
``(z_n, eta_n)`` drawn from the amortized ``q(z, eta | x)`` under the draw's graph. It is
the likelihood *conditional on the latent posterior* of the entity, so
``az.loo(idata, var_name="x_face")`` and
``az.compare({"a": idata_a, "b": idata_b}, var_name="x_face")`` run on it, as an
approximation for comparing models fitted to the same entities (same ``max_entities``
and ``seed``), not an exact leave-one-out: ``q`` was fitted with ``x_n`` itself, and
``z_n`` and ``eta_n`` are informed by ``x_n`` alone, so leaving ``x_n`` out moves their
posterior far. Expect large Pareto ``k`` (ArviZ warns above ``min(1 - 1/log10(S), 0.7)``);
where ``k`` is large the estimate of that entity's term is unreliable. ArviZ takes the
relative efficiency ``reff`` from the ESS of the ``posterior`` group; draws within a
chain are independent, so ``az.loo(..., reff=1.0)`` is the sound choice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import metadata

import arviz as az
import numpy as np
import xarray as xr

from pyro_personax.layout import LatentLayout

_VERSIONED = ("pyro-personax", "pyro-ppl", "torch", "numpy", "arviz", "xarray")
_RESERVED = ("edges", "edge_strength")


# --------------------------------------------------------------------------- validation
def _array(x, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array; found shape {arr.shape}")
    return arr


def _check_edges(layout: LatentLayout, edges) -> np.ndarray:
    if not isinstance(layout, LatentLayout):
        raise TypeError(f"layout: expected a LatentLayout; found {type(layout).__name__}")
    E = _array(edges, "edges", 4)
    D = layout.latent_dim
    if E.shape[2:] != (D, D):
        raise ValueError(f"edges: expected shape (C, S, {D}, {D}); found {E.shape}")
    if not np.all(np.isin(E, (0, 1))):
        raise ValueError("edges: expected 0/1 edge indicators; found other values")
    return E.astype(np.int8)


def _versions() -> dict[str, str]:
    """The library versions, and the vector instructions torch's CPU kernels use here (``AVX2``,
    ``AVX512``, ...): fits with the same seed and versions can differ where these differ."""
    import torch

    out = {}
    for dist in _VERSIONED:
        try:
            out[f"version_{dist.replace('-', '_')}"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[f"version_{dist.replace('-', '_')}"] = "not installed"
    out["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return out


# --------------------------------------------------------------------------- groups
def _strengths(W, C: int, S: int, D: int) -> np.ndarray | None:
    if W is None:
        return None
    W = _array(W, "edge_strengths", 4).astype(float)
    if W.shape not in ((C, S, D, D), (C, 1, D, D)):
        raise ValueError(f"edge_strengths: expected shape ({C}, {S}, {D}, {D}) or ({C}, 1, {D}, {D}); found {W.shape}")
    return np.broadcast_to(W, (C, S, D, D)).copy()


def varying_edges(layout: LatentLayout, edges) -> np.ndarray:
    """Boolean ``(D, D)``: the cells of ``posterior.edges`` for edge draws ``(C, S, D, D)``.

    A free edge (allowed by the layout, not required, off the diagonal) whose draws
    vary within at least one half of one chain: the halves of ArviZ's split R-hat,
    ``[:S // 2]`` and ``[-(S // 2):]``, whose pooled within-half variance is its
    denominator (see the module docstring).

    Examples
    --------
    >>> layout = LatentLayout(0, {"a": 2})
    >>> E = np.zeros((2, 4, 2, 2), dtype=int)
    >>> E[:, 0, 0, 1] = 1  # a_1 -> a_2 varies in both chains
    >>> E[0, :, 1, 0] = 1  # a_2 -> a_1: all 1 in chain 0, all 0 in chain 1
    >>> varying_edges(layout, E).astype(int).tolist()
    [[0, 1], [0, 0]]
    """
    E = np.asarray(edges)
    free = layout.allowed_mask() & ~layout.required_mask() & ~np.eye(layout.latent_dim, dtype=bool)
    half = E.shape[1] // 2
    varies = np.zeros(free.shape, dtype=bool)
    for part in (E[:, :half], E[:, E.shape[1] - half :]):
        varies |= np.any(part != part[:, :1], axis=1).any(axis=0)
    return free & varies


def _edge_coords(layout: LatentLayout, mask: np.ndarray) -> dict:
    names = np.array(layout.names, dtype=object)
    parents, children = np.nonzero(mask)
    return {
        "edge": [f"{names[i]}->{names[j]}" for i, j in zip(parents, children)],
        "edge_parent": ("edge", list(names[parents])),
        "edge_child": ("edge", list(names[children])),
        "edge_class": ("edge", [str(c) for c in layout.edge_classes()[mask]]),
    }


def _posterior(layout, E, W, noise_params) -> tuple[xr.Dataset, xr.Dataset]:
    """The ``posterior`` (varying free edges, noise parameters) and ``adjacency`` (every cell) groups."""
    C, S, D, _ = E.shape
    names, blocks = list(layout.names), list(layout.block_of)
    mask = varying_edges(layout, E)
    cd = ("chain", "draw")
    data = {"edges": (cd + ("edge",), E[:, :, mask])}
    full = {"edges": (cd + ("parent", "child"), E)}
    if W is not None:
        data["edge_strength"] = (cd + ("edge",), W[:, :, mask])
        full["edge_strength"] = (cd + ("parent", "child"), W)
    for key, value in (noise_params or {}).items():
        if key in _RESERVED:
            raise ValueError(f"noise_params: name {key!r} is reserved; choose another name")
        arr = _array(value, f"noise_params[{key!r}]", 3)
        if arr.shape != (C, S, D):
            raise ValueError(f"noise_params[{key!r}]: expected shape ({C}, {S}, {D}); found {arr.shape}")
        data[key] = (cd + ("latent",), arr)
    coords = {"chain": np.arange(C), "draw": np.arange(S), **_edge_coords(layout, mask)}
    if noise_params:
        coords.update(latent=names, latent_block=("latent", blocks))
    pc = {"parent": names, "child": names, "parent_block": ("parent", blocks), "child_block": ("child", blocks)}
    adjacency = xr.Dataset(full, coords={"chain": np.arange(C), "draw": np.arange(S), **pc})
    return xr.Dataset(data, coords=coords), adjacency


def _entity_coords(entity_ids, N: int) -> np.ndarray:
    """The ``entity`` coordinate: ``entity_ids`` checked to have ``N`` entries, or ``0..N-1``."""
    ids = np.arange(N) if entity_ids is None else np.asarray(entity_ids)
    if ids.shape != (N,):
        raise ValueError(f"entity_ids: expected {N} ids; found shape {ids.shape}")
    return ids


def _fit_trace(C: int, elbo) -> xr.Dataset | None:
    """The ``fit_trace`` group: ELBO traces ``(chain, epoch)``, NaN-padded."""
    if elbo is None:
        return None
    if len(elbo) != C:
        raise ValueError(f"elbo: expected one trace per chain ({C}); found {len(elbo)}")
    traces = [_array(t, f"elbo[{c}]", 1).astype(float) for c, t in enumerate(elbo)]
    T = max(len(t) for t in traces)
    padded = np.full((C, T), np.nan)
    for c, t in enumerate(traces):
        padded[c, : len(t)] = t
    return xr.Dataset({"elbo": (("chain", "epoch"), padded)}, coords={"chain": np.arange(C), "epoch": np.arange(T)})


def _importance(C: int, S: int, log_weights, entity_ids) -> tuple[xr.Dataset | None, xr.Dataset | None]:
    """The ``sample_stats`` (``log_weight``) and ``psis`` (``pareto_k``) groups."""
    if log_weights is None:
        return None, None
    lw = np.asarray(log_weights, dtype=float)
    if lw.ndim not in (2, 3) or lw.shape[:2] != (C, S):
        raise ValueError(f"log_weights: expected shape ({C}, {S}) or ({C}, {S}, N); found {lw.shape}")
    coords = {"chain": np.arange(C)}
    if lw.ndim == 2:
        k, dims = pareto_k(lw), ("chain",)
    else:
        N = lw.shape[2]
        coords["entity"] = _entity_coords(entity_ids, N)
        k, dims = pareto_k(lw.transpose(0, 2, 1).reshape(C * N, S)).reshape(C, N), ("chain", "entity")
    stats = xr.Dataset({"log_weight": (("chain", "draw") + dims[1:], lw)}, coords={**coords, "draw": np.arange(S)})
    return stats, xr.Dataset({"pareto_k": (dims, k)}, coords=coords)


def _log_likelihood(C: int, S: int, log_likelihood, entity_ids) -> xr.Dataset | None:
    """The ``log_likelihood`` group: ``x_<modality>`` ``(chain, draw, entity)``."""
    if not log_likelihood:
        return None
    data, N = {}, None
    for mod, arr in log_likelihood.items():
        ll = _array(arr, f"log_likelihood[{mod!r}]", 3).astype(float)
        N = ll.shape[2] if N is None else N
        if ll.shape != (C, S, N):
            raise ValueError(f"log_likelihood[{mod!r}]: expected shape ({C}, {S}, {N}); found {ll.shape}")
        if not np.all(np.isfinite(ll)):
            raise ValueError(f"log_likelihood[{mod!r}]: expected finite values; found NaN or inf")
        data[f"x_{mod}"] = (("chain", "draw", "entity"), ll)
    coords = {"chain": np.arange(C), "draw": np.arange(S), "entity": _entity_coords(entity_ids, N)}
    return xr.Dataset(data, coords=coords)


def _modality_dims(mod: str) -> tuple[str, str]:
    return f"{mod}_measurement", f"{mod}_feature"


def _predictive(C, posterior_predictive, observed, entity_ids):
    pp_data, obs_data, coords = {}, {}, {}
    N = S = None
    for mod, arr in (posterior_predictive or {}).items():
        x = _array(arr, f"posterior_predictive[{mod!r}]", 5)
        S = x.shape[1] if S is None else S
        if x.shape[:2] != (C, S):
            raise ValueError(
                f"posterior_predictive[{mod!r}]: expected shape ({C}, {S}, N, K, d); found {x.shape}"
            )
        N = x.shape[2] if N is None else N
        if x.shape[2] != N:
            raise ValueError(f"posterior_predictive[{mod!r}]: expected {N} entities; found {x.shape[2]}")
        meas, feat = _modality_dims(mod)
        pp_data[f"x_{mod}"] = (("chain", "draw", "entity", meas, feat), x)
        coords[meas], coords[feat] = np.arange(x.shape[3]), np.arange(x.shape[4])
    for mod, arr in (observed or {}).items():
        y = _array(arr, f"observed[{mod!r}]", 3).astype(float)
        N = y.shape[0] if N is None else N
        meas, feat = _modality_dims(mod)
        if y.shape[0] != N or (meas in coords and y.shape[1:] != (len(coords[meas]), len(coords[feat]))):
            expected = (N, len(coords.get(meas, [])) or "K", len(coords.get(feat, [])) or "d")
            raise ValueError(f"observed[{mod!r}]: expected shape {expected}; found {y.shape}")
        obs_data[f"x_{mod}"] = (("entity", meas, feat), y)
        coords[meas], coords[feat] = np.arange(y.shape[1]), np.arange(y.shape[2])
    if N is None:
        return None, None
    ids = _entity_coords(entity_ids, N)
    pp = obs = None
    if pp_data:
        pc = {k: v for k, v in coords.items() if any(k in d[0] for d in pp_data.values())}
        pp = xr.Dataset(pp_data, coords={"chain": np.arange(C), "draw": np.arange(S), "entity": ids, **pc})
    if obs_data:
        oc = {k: v for k, v in coords.items() if any(k in d[0] for d in obs_data.values())}
        obs = xr.Dataset(obs_data, coords={"entity": ids, **oc})
    return pp, obs


def _latent_means(layout, C, latent_means, entity_ids) -> xr.Dataset | None:
    if latent_means is None:
        return None
    Z = _array(latent_means, "latent_means", 3)
    D = layout.latent_dim
    if Z.shape[0] != C or Z.shape[2] != D:
        raise ValueError(f"latent_means: expected shape ({C}, N, {D}); found {Z.shape}")
    ids = _entity_coords(entity_ids, Z.shape[1])
    coords = {
        "chain": np.arange(C),
        "entity": ids,
        "latent": list(layout.names),
        "latent_block": ("latent", list(layout.block_of)),
    }
    return xr.Dataset({"z_mean": (("chain", "entity", "latent"), Z)}, coords=coords)


def _edge_probabilities(layout, C, edge_probabilities) -> xr.Dataset | None:
    if edge_probabilities is None:
        return None
    P = _array(edge_probabilities, "edge_probabilities", 3).astype(float)
    D = layout.latent_dim
    if P.shape != (C, D, D):
        raise ValueError(f"edge_probabilities: expected shape ({C}, {D}, {D}); found {P.shape}")
    if not np.all((P >= 0) & (P <= 1)):
        raise ValueError("edge_probabilities: expected probabilities in [0, 1]")
    names, blocks = list(layout.names), list(layout.block_of)
    coords = {"chain": np.arange(C), "parent": names, "child": names,
              "parent_block": ("parent", blocks), "child_block": ("child", blocks)}
    return xr.Dataset({"p_edge": (("chain", "parent", "child"), P)}, coords=coords)


def build_inference_data(
    layout: LatentLayout,
    edges,
    *,
    edge_probabilities=None,
    edge_strengths=None,
    noise_params: Mapping[str, np.ndarray] | None = None,
    elbo: Sequence[np.ndarray] | None = None,
    latent_means=None,
    posterior_predictive: Mapping[str, np.ndarray] | None = None,
    observed: Mapping[str, np.ndarray] | None = None,
    log_weights=None,
    log_likelihood: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping | None = None,
    entity_ids=None,
) -> az.InferenceData:
    """Collect posterior draws of a fitted PersonaX model into an InferenceData.

    Chains are independent restarts of the fit: R-hat and ESS computed on this object
    measure run-to-run agreement, not MCMC mixing (see the module docstring).

    Parameters
    ----------
    layout
        Latent layout; its names become the coordinates ``parent``, ``child`` and
        ``latent`` and its blocks the coordinates ``parent_block`` etc.
    edges
        0/1 edge draws, shape ``(C, S, D, D)``: ``C`` chains, ``S`` draws per chain,
        ``[..., i, j]`` = edge i -> j; stored whole in ``adjacency.edges`` and, for the
        free edges whose draws vary (:func:`varying_edges`), in ``posterior.edges``.
    edge_probabilities
        Exact edge marginals of each chain's ``q(G)``, shape ``(C, D, D)``, stored in
        the group ``edge_probabilities`` as ``p_edge``; every edge probability read
        from the InferenceData (:func:`edge_probability_array`, :func:`edge_summary`)
        is then these, and the draws' frequencies only estimate them.
    edge_strengths
        Edge strengths (for example the mean absolute partial derivative of ``f_j``
        with respect to ``z_i`` over the data), shape ``(C, S, D, D)``, or
        ``(C, 1, D, D)`` for one value per chain, which is repeated over the draws;
        stored like ``edges``.
    noise_params
        Per-latent noise-flow parameters of interest, name -> ``(C, S, D)``.
    elbo
        ``C`` one-dimensional ELBO traces, one value per epoch (lengths may differ);
        padded with NaN into ``fit_trace.elbo`` with dims ``(chain, epoch)``.
    latent_means
        Posterior means of the latents, shape ``(C, N, D)``, stored in the group
        ``latent_means`` as ``z_mean`` with dims ``(chain, entity, latent)``.
    posterior_predictive
        Modality -> replicated data, shape ``(C, P, N, K, d)`` (an entity subsample;
        ``P`` predictive draws per chain, which may differ from ``S``).
    observed
        Modality -> observed data of the same entities, shape ``(N, K, d)``; missing
        measurements must be NaN (they are stored as given).
    log_weights
        ``log p(x, latents) - log q(latents)`` per draw, shape ``(C, S)`` (one joint
        weight per draw: Pareto-k per chain) or ``(C, S, N)`` (one weight per entity and
        draw: Pareto-k per chain and entity, dims ``(chain, entity)``), stored in
        ``sample_stats.log_weight``, with ``psis.pareto_k`` (:func:`pareto_k`).
    log_likelihood
        Modality -> pointwise log-likelihood ``log p(x_nm | latents)``, shape
        ``(C, S, N)``, stored as ``log_likelihood.x_<modality>`` with dims
        ``(chain, draw, entity)`` for ``az.loo`` and ``az.compare`` (see the module
        docstring for what it estimates).
    attrs
        JSON-serialisable configuration, stored as the attribute ``config``.
    entity_ids
        Optional ids of the ``N`` entities (default ``0..N-1``).

    Returns
    -------
    arviz.InferenceData
        Groups and dims as in the module docstring.

    Examples
    --------
    >>> layout = LatentLayout(0, {"a": 2})
    >>> edges = np.zeros((2, 10, 2, 2), dtype=int)
    >>> edges[:, ::3, 0, 1] = 1  # a_1 -> a_2 in every third draw; a_2 -> a_1 never
    >>> idata = build_inference_data(layout, edges, elbo=[np.arange(5.0), np.arange(3.0)])
    >>> idata.posterior["edges"].dims, idata.posterior["edge"].values.tolist()
    (('chain', 'draw', 'edge'), ['a_1->a_2'])
    >>> idata.adjacency["edges"].dims, idata.fit_trace["elbo"].dims
    (('chain', 'draw', 'parent', 'child'), ('chain', 'epoch'))
    """
    E = _check_edges(layout, edges)
    C, S, D, _ = E.shape
    posterior, adjacency = _posterior(layout, E, _strengths(edge_strengths, C, S, D), noise_params)
    stats, psis = _importance(C, S, log_weights, entity_ids)
    pp, obs = _predictive(C, posterior_predictive, observed, entity_ids)
    candidates = {
        "posterior": posterior,
        "adjacency": adjacency,
        "edge_probabilities": _edge_probabilities(layout, C, edge_probabilities),
        "fit_trace": _fit_trace(C, elbo),
        "sample_stats": stats,
        "psis": psis,
        "log_likelihood": _log_likelihood(C, S, log_likelihood, entity_ids),
        "latent_means": _latent_means(layout, C, latent_means, entity_ids),
        "posterior_predictive": pp,
        "observed_data": obs,
    }
    groups = {k: v for k, v in candidates.items() if v is not None}
    try:
        config = json.dumps(dict(attrs or {}), sort_keys=True)
    except TypeError as err:
        raise TypeError(f"attrs: expected a JSON-serialisable mapping; {err}") from None
    meta = {"layout": json.dumps(layout.to_dict()), "config": config, "num_chains": C,
            "edge_classes": json.dumps(layout.edge_classes().tolist()), **_versions()}
    for ds in groups.values():
        ds.attrs.update(meta)
    return az.InferenceData(**groups)


# --------------------------------------------------------------------------- Pareto k
def pareto_k(log_weights) -> np.ndarray:
    """Pareto-smoothed importance sampling shape ``k`` per chain.

    ``k < 0.5``: the variational approximation is good enough for importance
    sampling; ``0.5 <= k < 0.7``: usable with care; ``k >= 0.7``: the guide is not to
    be trusted (its tails are too light compared to the posterior). With few draws
    the estimate is ``inf``.

    Parameters
    ----------
    log_weights
        ``log p(x, latents) - log q(latents)``, shape ``(C, S)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(C,)``.
    """
    lw = _array(log_weights, "log_weights", 2).astype(float)
    if not np.all(np.isfinite(lw)):
        raise ValueError("log_weights: expected finite values; found NaN or inf")
    _, k = az.psislw(lw, reff=1.0)
    return np.asarray(k, dtype=float).reshape(lw.shape[0])


# --------------------------------------------------------------------------- accessors
