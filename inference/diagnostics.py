"""Posterior diagnostics with ArviZ: InferenceData, Pareto-k and the edge summary table.

This is the only module of the package that imports :mod:`arviz` (and :mod:`xarray`);
every other module works on the numpy arrays and pandas tables returned here, so a
port to ArviZ 1.x touches this file only.

Chains are **independent restarts** of the variational fit, not MCMC chains. Draws
within a chain are i.i.d. draws of one variational posterior, so R-hat and ESS
computed over chains measure *run-to-run agreement*: R-hat near 1 means the restarts
found the same posterior; R-hat clearly above 1 means they disagree (for instance,
they found different graphs), whatever the within-chain mixing.

Layout of the :class:`arviz.InferenceData` built by :func:`build_inference_data`
(adjacencies follow :mod:`pyro_personax.graph`: ``[parent, child]``)::

    posterior            edges          (chain, draw, parent, child)   0/1 edge draws
                         edge_strength  (chain, draw, parent, child)   optional
                         <noise param>  (chain, draw, latent)          optional
    sample_stats         elbo           (chain, step)                  NaN-padded
                         log_weight     (chain, draw[, entity])        optional
                         pareto_k       (chain[, entity])              optional
    latent_means         z_mean         (chain, entity, latent)        optional
    edge_probabilities   p_edge         (chain, parent, child)         optional: exact
                                                                       marginals of q(G)
    posterior_predictive x_<modality>   (chain, draw, entity, <modality>_measurement,
                                          <modality>_feature)
    observed_data        x_<modality>   (entity, <modality>_measurement, <modality>_feature)

Coordinates ``parent``, ``child`` and ``latent`` are the latent names of the layout;
the blocks of the layout are the non-dimension coordinates ``parent_block``,
``child_block`` and ``latent_block``. The layout and the configuration are stored as
JSON strings in the attributes, with the library versions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from pyro_personax.layout import LatentLayout

__all__ = [
    "build_inference_data",
    "pareto_k",
    "edge_summary",
    "posterior_summary",
    "save_inference_data",
    "load_inference_data",
    "is_inference_data",
    "layout_of",
    "edge_draws",
    "edge_probability_array",
    "elbo_traces",
    "predictive_pairs",
    "pareto_k_of",
    "config_of",
]

logger = logging.getLogger(__name__)

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
    out = {}
    for dist in _VERSIONED:
        try:
            out[f"version_{dist.replace('-', '_')}"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[f"version_{dist.replace('-', '_')}"] = "not installed"
    return out


# --------------------------------------------------------------------------- groups
def _posterior(layout, E, edge_strengths, noise_params) -> xr.Dataset:
    C, S, D, _ = E.shape
    names = list(layout.names)
    blocks = list(layout.block_of)
    pc = ("chain", "draw", "parent", "child")
    data = {"edges": (pc, E)}
    if edge_strengths is not None:
        W = _array(edge_strengths, "edge_strengths", 4).astype(float)
        if W.shape not in ((C, S, D, D), (C, 1, D, D)):
            raise ValueError(
                f"edge_strengths: expected shape ({C}, {S}, {D}, {D}) or ({C}, 1, {D}, {D}); found {W.shape}"
            )
        data["edge_strength"] = (pc, np.broadcast_to(W, (C, S, D, D)).copy())
    for key, value in (noise_params or {}).items():
        if key in _RESERVED:
            raise ValueError(f"noise_params: name {key!r} is reserved; choose another name")
        arr = _array(value, f"noise_params[{key!r}]", 3)
        if arr.shape != (C, S, D):
            raise ValueError(f"noise_params[{key!r}]: expected shape ({C}, {S}, {D}); found {arr.shape}")
        data[key] = (("chain", "draw", "latent"), arr)
    coords = {
        "chain": np.arange(C),
        "draw": np.arange(S),
        "parent": names,
        "child": names,
        "parent_block": ("parent", blocks),
        "child_block": ("child", blocks),
    }
    if noise_params:
        coords.update(latent=names, latent_block=("latent", blocks))
    return xr.Dataset(data, coords=coords)


def _entity_coords(entity_ids, N: int) -> np.ndarray:
    """The ``entity`` coordinate: ``entity_ids`` checked to have ``N`` entries, or ``0..N-1``."""
    ids = np.arange(N) if entity_ids is None else np.asarray(entity_ids)
    if ids.shape != (N,):
        raise ValueError(f"entity_ids: expected {N} ids; found shape {ids.shape}")
    return ids


def _sample_stats(C: int, S: int, elbo, log_weights, entity_ids) -> xr.Dataset | None:
    data, coords = {}, {"chain": np.arange(C)}
    if elbo is not None:
        if len(elbo) != C:
            raise ValueError(f"elbo: expected one trace per chain ({C}); found {len(elbo)}")
        traces = [_array(t, f"elbo[{c}]", 1).astype(float) for c, t in enumerate(elbo)]
        T = max(len(t) for t in traces)
        padded = np.full((C, T), np.nan)
        for c, t in enumerate(traces):
            padded[c, : len(t)] = t
        data["elbo"] = (("chain", "step"), padded)
        coords["step"] = np.arange(T)
    if log_weights is not None:
        lw = np.asarray(log_weights, dtype=float)
        if lw.ndim not in (2, 3) or lw.shape[:2] != (C, S):
            raise ValueError(f"log_weights: expected shape ({C}, {S}) or ({C}, {S}, N); found {lw.shape}")
        coords["draw"] = np.arange(S)
        if lw.ndim == 2:
            data["log_weight"] = (("chain", "draw"), lw)
            data["pareto_k"] = (("chain",), pareto_k(lw))
        else:
            N = lw.shape[2]
            ids = _entity_coords(entity_ids, N)
            k = pareto_k(lw.transpose(0, 2, 1).reshape(C * N, S)).reshape(C, N)
            data["log_weight"] = (("chain", "draw", "entity"), lw)
            data["pareto_k"] = (("chain", "entity"), k)
            coords["entity"] = ids
    return xr.Dataset(data, coords=coords) if data else None


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
        ``[..., i, j]`` = edge i -> j.
    edge_probabilities
        Exact edge marginals of each chain's ``q(G)``, shape ``(C, D, D)``, stored in
        the group ``edge_probabilities`` as ``p_edge``; every edge probability read
        from the InferenceData (:func:`edge_probability_array`, :func:`edge_summary`)
        is then these, and the draws' frequencies only estimate them.
    edge_strengths
        Edge strengths (for example the mean absolute partial derivative of ``f_j``
        with respect to ``z_i`` over the data), shape ``(C, S, D, D)``, or
        ``(C, 1, D, D)`` for one value per chain, which is repeated over the draws.
    noise_params
        Per-latent noise-flow parameters of interest, name -> ``(C, S, D)``.
    elbo
        ``C`` one-dimensional ELBO traces (lengths may differ); padded with NaN into
        ``sample_stats.elbo`` with dims ``(chain, step)``.
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
        draw: Pareto-k per chain and entity, dims ``(chain, entity)``); see
        :func:`pareto_k`.
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
    >>> idata = build_inference_data(layout, edges, elbo=[np.arange(5.0), np.arange(3.0)])
    >>> idata.posterior["edges"].dims
    ('chain', 'draw', 'parent', 'child')
    """
    E = _check_edges(layout, edges)
    C, S = E.shape[:2]
    groups = {"posterior": _posterior(layout, E, edge_strengths, noise_params)}
    stats = _sample_stats(C, S, elbo, log_weights, entity_ids)
    if stats is not None:
        groups["sample_stats"] = stats
    pp, obs = _predictive(C, posterior_predictive, observed, entity_ids)
    if pp is not None:
        groups["posterior_predictive"] = pp
    if obs is not None:
        groups["observed_data"] = obs
    lm = _latent_means(layout, C, latent_means, entity_ids)
    if lm is not None:
        groups["latent_means"] = lm
    ep = _edge_probabilities(layout, C, edge_probabilities)
    if ep is not None:
        groups["edge_probabilities"] = ep
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
def is_inference_data(obj) -> bool:
    """Whether ``obj`` is an :class:`arviz.InferenceData`."""
    return isinstance(obj, az.InferenceData)


def layout_of(idata: az.InferenceData) -> LatentLayout:
    """The latent layout stored in the attributes of ``idata.posterior``."""
    try:
        return LatentLayout.from_dict(json.loads(idata.posterior.attrs["layout"]))
    except (AttributeError, KeyError):
        raise ValueError("idata: expected a posterior group with a 'layout' attribute") from None


def config_of(idata: az.InferenceData) -> dict:
    """Configuration and library versions stored in ``idata.posterior.attrs``."""
    attrs = dict(idata.posterior.attrs)
    config = json.loads(attrs.pop("config", "{}"))
    attrs.pop("layout", None)
    attrs.pop("edge_classes", None)
    return {"config": config, **{k: (v.item() if hasattr(v, "item") else v) for k, v in attrs.items()}}


def edge_draws(idata: az.InferenceData) -> np.ndarray:
    """Edge draws ``(C, S, D, D)`` of ``idata.posterior.edges``."""
    if "posterior" not in idata.groups() or "edges" not in idata.posterior:
        raise ValueError("idata: expected a posterior group with a variable 'edges'")
    return idata.posterior["edges"].transpose("chain", "draw", "parent", "child").values


def edge_probability_array(idata: az.InferenceData) -> np.ndarray:
    """Per-chain edge probabilities ``(C, D, D)``: the stored exact marginals, else draw frequencies."""
    if "edge_probabilities" in idata.groups():
        return idata.edge_probabilities["p_edge"].transpose("chain", "parent", "child").values
    return edge_draws(idata).astype(float).mean(axis=1)


def elbo_traces(idata: az.InferenceData) -> np.ndarray | None:
    """NaN-padded ELBO traces ``(C, T)``, or None when absent."""
    if "sample_stats" in idata.groups() and "elbo" in idata.sample_stats:
        return idata.sample_stats["elbo"].transpose("chain", "step").values
    return None


def pareto_k_of(idata: az.InferenceData) -> np.ndarray | None:
    """Stored Pareto-k, ``(C,)`` or ``(C, N)`` (per entity), or None when absent."""
    if "sample_stats" in idata.groups() and "pareto_k" in idata.sample_stats:
        return idata.sample_stats["pareto_k"].values
    return None


def predictive_pairs(idata: az.InferenceData) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Modality -> (observed ``(N, K, d)``, replicated ``(C, S, N, K, d)``)."""
    out = {}
    groups = idata.groups()
    if "posterior_predictive" not in groups or "observed_data" not in groups:
        return out
    for var in idata.posterior_predictive.data_vars:
        if var in idata.observed_data:
            mod = str(var)[2:] if str(var).startswith("x_") else str(var)
            out[mod] = (idata.observed_data[var].values, idata.posterior_predictive[var].values)
    return out


# --------------------------------------------------------------------------- summary
def _chain_diagnostics(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R-hat and bulk ESS of cells ``(C, S, M)``; constant cells give NaN.

    A cell that is constant within every chain but differs across chains (restarts
    that found different graphs) has infinite R-hat and ESS equal to ``C``.

    R-hat is the classic split R-hat: ArviZ's default rank version takes the maximum
    with a *folded* R-hat (on ``|x - median|``), which is 0/0 for 0/1 edge draws whose
    pooled median is exactly 0.5.
    """
    C, S, M = draws.shape
    r_hat, ess = np.full(M, np.nan), np.full(M, np.nan)
    flat = draws.reshape(C * S, M)
    constant = np.all(flat == flat[:1], axis=0)
    within_const = np.all(draws == draws[:, :1], axis=1).all(axis=0) & ~constant
    r_hat[within_const], ess[within_const] = np.inf, float(C)
    live = ~constant & ~within_const
    if C > 1 and S > 3 and live.any():
        ds = xr.Dataset({"x": (("chain", "draw", "cell"), draws[:, :, live].astype(float))})
        r_hat[live] = az.rhat(ds, method="split")["x"].values
        ess[live] = az.ess(ds, method="bulk")["x"].values
    return r_hat, ess


def _strength_columns(post, hdi_prob: float, mask: np.ndarray) -> dict[str, np.ndarray]:
    if "edge_strength" not in post:
        nan = np.full(int(mask.sum()), np.nan)
        return {"strength_mean": nan, "strength_hdi_low": nan, "strength_hdi_high": nan}
    W = post["edge_strength"].transpose("chain", "draw", "parent", "child").values
    cells = W[:, :, mask]
    hdi = az.hdi(cells, hdi_prob=hdi_prob)
    return {
        "strength_mean": cells.mean(axis=(0, 1)),
        "strength_hdi_low": hdi[:, 0] + 0.0,
        "strength_hdi_high": hdi[:, 1] + 0.0,
    }


def edge_summary(idata: az.InferenceData, *, hdi_prob: float = 0.9) -> pd.DataFrame:
    """Tidy table of the edge posterior: one row per ordered pair ``i != j``.

    Columns: ``parent``, ``child``, ``parent_block``, ``child_block``, ``allowed``
    (by the layout's prior knowledge), ``absorbable`` (a decoder can absorb the edge,
    so the likelihood does not fix it: :meth:`~pyro_personax.layout.LatentLayout.absorbable_mask`),
    ``edge_class`` and ``identified`` (:meth:`~pyro_personax.layout.LatentLayout.edge_classes`;
    cross-modal edges are the ones the data decide),
    ``p_edge`` (pooled over chains: the mean of the chains' exact marginals when the
    InferenceData holds them, else of the draws), ``p_edge_chain_<c>`` per chain, ``strength_mean``,
    ``strength_hdi_low`` and
    ``strength_hdi_high`` (NaN without edge strengths), ``r_hat`` and ``ess_bulk``
    of the edge indicator over chains (= restarts). Cells constant across all draws
    (forbidden edges, edges every restart agrees on) have NaN R-hat and ESS; cells
    constant within each chain but different across chains have R-hat ``inf``.

    Parameters
    ----------
    idata
        Output of :func:`build_inference_data`.
    hdi_prob
        Probability mass of the highest-density interval of the strengths.

    Returns
    -------
    pandas.DataFrame
        ``D * (D - 1)`` rows, sorted by ``p_edge`` descending then by name.
    """
    if not 0.0 < hdi_prob < 1.0:
        raise ValueError(f"hdi_prob: expected a value in (0, 1); found {hdi_prob}")
    E = edge_draws(idata).astype(float)
    C, S, D, _ = E.shape
    layout = layout_of(idata)
    mask = ~np.eye(D, dtype=bool)
    parents, children = np.nonzero(mask)
    cells = E[:, :, mask]
    r_hat, ess = _chain_diagnostics(cells)
    blocks, names = np.array(layout.block_of), np.array(layout.names)
    table = {
        "parent": names[parents],
        "child": names[children],
        "parent_block": blocks[parents],
        "child_block": blocks[children],
        "allowed": layout.allowed_mask()[mask],
        "absorbable": layout.absorbable_mask()[mask],
        "edge_class": layout.edge_classes()[mask].astype(str),
        "identified": layout.identified_mask()[mask],
    }
    per_chain = edge_probability_array(idata)[:, mask]
    table["p_edge"] = per_chain.mean(axis=0)
    for c in range(C):
        table[f"p_edge_chain_{c}"] = per_chain[c]
    table.update(_strength_columns(idata.posterior, hdi_prob, mask))
    table.update(r_hat=r_hat, ess_bulk=ess)
    df = pd.DataFrame(table)
    df = df.sort_values(["p_edge", "parent", "child"], ascending=[False, True, True], kind="stable")
    return df.reset_index(drop=True)


def posterior_summary(idata: az.InferenceData, var_names: Sequence[str] | None = None) -> pd.DataFrame:
    """``arviz.summary`` of the posterior with constant cells dropped.

    Cells that never vary (the masked diagonal, forbidden edges) have no defined
    R-hat; they are left out of the summary here and only here, never from the data.

    Parameters
    ----------
    idata
        Output of :func:`build_inference_data`.
    var_names
        Posterior variables to summarise; default all.

    Returns
    -------
    pandas.DataFrame
        One row per non-constant cell, as :func:`arviz.summary` returns it; rows of
        adjacency variables are labelled ``var[parent->child]``.
    """
    post = idata.posterior
    names = list(post.data_vars) if var_names is None else list(var_names)
    frames = []
    for var in names:
        if var not in post:
            raise ValueError(f"var_names: unknown posterior variable {var!r}; found {list(post.data_vars)}")
        da = post[var].transpose("chain", "draw", ...)
        values = da.values.reshape(da.shape[0], da.shape[1], -1).astype(float)
        coords = [da[d].values for d in da.dims[2:]]
        labels = [
            f"{var}[{'->'.join(str(c[i]) for c, i in zip(coords, idx))}]" if coords else var
            for idx in np.ndindex(*da.shape[2:])
        ]
        flat = values.reshape(-1, values.shape[-1])
        keep = ~np.all(flat == flat[:1], axis=0)
        if not keep.any():
            continue
        ds = xr.Dataset({"x": (("chain", "draw", "cell"), values[:, :, keep])})
        with np.errstate(divide="ignore", invalid="ignore"):  # chains constant but different
            df = az.summary(ds, var_names=["x"])
        df.index = [lab for lab, k in zip(labels, keep) if k]
        frames.append(df)
    if not frames:
        raise ValueError("idata: every posterior cell is constant; nothing to summarise")
    return pd.concat(frames)


# --------------------------------------------------------------------------- netCDF
def save_inference_data(idata: az.InferenceData, path, overwrite: bool = False) -> Path:
    """Write ``idata`` to a netCDF file (h5netcdf engine).

    Parameters
    ----------
    idata
        The InferenceData to write.
    path
        Target file, conventionally ``posterior.nc``.
    overwrite
        Replace an existing file; otherwise an existing file raises FileExistsError.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    if not is_inference_data(idata):
        raise TypeError(f"idata: expected an arviz.InferenceData; found {type(idata).__name__}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: {path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    idata.to_netcdf(str(path), engine="h5netcdf")
    logger.info("wrote InferenceData to %s", path)
    return path


def load_inference_data(path) -> az.InferenceData:
    """Read an InferenceData written by :func:`save_inference_data` (loaded into memory)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no InferenceData file at {path}")
    idata = az.from_netcdf(str(path), engine="h5netcdf")
    idata.load()
    return idata
