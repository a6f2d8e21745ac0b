"""Reading a fit's :class:`arviz.InferenceData`: its layout, arrays and summary tables, and
saving and loading it (NetCDF)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from pyro_personax.layout import LatentLayout

logger = logging.getLogger(__name__)


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


def _full_matrix(idata: az.InferenceData, var: str):
    """``var`` with dims ``(chain, draw, parent, child)``: from ``adjacency``, or an older file's ``posterior``."""
    pcd = ("chain", "draw", "parent", "child")
    for group in ("adjacency", "posterior"):
        if group in idata.groups() and var in idata[group] and set(idata[group][var].dims) == set(pcd):
            return idata[group][var].transpose(*pcd)
    return None


def edge_draws(idata: az.InferenceData) -> np.ndarray:
    """Edge draws ``(C, S, D, D)``, every cell (``idata.adjacency.edges``)."""
    draws = _full_matrix(idata, "edges")
    if draws is None:
        raise ValueError("idata: expected an adjacency group with a variable 'edges' (chain, draw, parent, child)")
    return draws.values


def edge_probability_array(idata: az.InferenceData) -> np.ndarray:
    """Per-chain edge probabilities ``(C, D, D)``: the stored exact marginals, else draw frequencies."""
    if "edge_probabilities" in idata.groups():
        return idata.edge_probabilities["p_edge"].transpose("chain", "parent", "child").values
    return edge_draws(idata).astype(float).mean(axis=1)


def elbo_traces(idata: az.InferenceData) -> np.ndarray | None:
    """NaN-padded ELBO traces ``(C, T)``, one value per epoch, or None when absent."""
    for group, dim in (("fit_trace", "epoch"), ("sample_stats", "step")):
        if group in idata.groups() and "elbo" in idata[group]:
            return idata[group]["elbo"].transpose("chain", dim).values
    return None


def pareto_k_of(idata: az.InferenceData) -> np.ndarray | None:
    """Stored Pareto-k, ``(C,)`` or ``(C, N)`` (per entity), or None when absent."""
    for group in ("psis", "sample_stats"):
        if group in idata.groups() and "pareto_k" in idata[group]:
            return idata[group]["pareto_k"].values
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


def _strength_columns(idata, hdi_prob: float, mask: np.ndarray, edges: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and HDI of each edge's strength over the draws whose graph holds the edge (NaN in none).

    A graph without the edge gives it strength 0 by construction; pooling those zeros
    would report the probability of the edge a second time, as an HDI from 0.
    """
    n = int(mask.sum())
    out = {key: np.full(n, np.nan) for key in ("strength_mean", "strength_hdi_low", "strength_hdi_high")}
    W = _full_matrix(idata, "edge_strength")
    if W is None:
        return out
    cells, present = W.values[:, :, mask].reshape(-1, n), edges[:, :, mask].reshape(-1, n) > 0.5
    for k in range(n):
        values = cells[present[:, k], k]
        if values.size:
            out["strength_mean"][k] = values.mean()
        if values.size > 1:
            out["strength_hdi_low"][k], out["strength_hdi_high"][k] = az.hdi(values, hdi_prob=hdi_prob) + 0.0
    return out


def edge_summary(idata: az.InferenceData, *, hdi_prob: float = 0.9) -> pd.DataFrame:
    """Tidy table of the edge posterior: one row per ordered pair ``i != j``.

    Columns: ``parent``, ``child``, ``parent_block``, ``child_block``, ``allowed``
    (by the layout's prior knowledge), ``absorbable`` (a decoder can absorb the edge,
    so the likelihood does not fix it: :meth:`~pyro_personax.layout.LatentLayout.absorbable_mask`),
    ``edge_class`` and ``identified`` (:meth:`~pyro_personax.layout.LatentLayout.edge_classes`;
    cross-modal edges are the ones the data decide),
    ``p_edge`` (pooled over chains: the mean of the chains' exact marginals when the
    InferenceData holds them, else of the draws), ``p_edge_chain_<c>`` per chain, ``strength_mean``,
    ``strength_hdi_low`` and ``strength_hdi_high`` (over the draws whose graph holds the
    edge: the strength given the edge; NaN without edge strengths or such draws; an HDI
    needs two), ``r_hat`` and ``ess_bulk``
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
    table.update(_strength_columns(idata, hdi_prob, mask, E))
    table.update(r_hat=r_hat, ess_bulk=ess)
    df = pd.DataFrame(table)
    df = df.sort_values(["p_edge", "parent", "child"], ascending=[False, True, True], kind="stable")
    return df.reset_index(drop=True)


def posterior_summary(idata: az.InferenceData, var_names: Sequence[str] | None = None) -> pd.DataFrame:
    """``arviz.summary`` of the posterior with constant cells dropped.

    Cells that never vary (a noise parameter fixed in every chain, a strength that no
    draw changes) have no defined R-hat; they are left out of the summary here and only
    here, never from the data (``posterior.edges`` holds varying cells only already).

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
        the edge variables are labelled ``var[parent->child]`` (their ``edge`` coordinate).
    """
    post = idata.posterior
    names = list(post.data_vars) if var_names is None else list(var_names)
    frames = []
    for var in names:
        if var not in post:
            raise ValueError(f"var_names: unknown posterior variable {var!r}; found {list(post.data_vars)}")
        da = post[var].transpose("chain", "draw", ...)
        values = da.values.reshape(da.shape[0], da.shape[1], -1).astype(float)
        if values.shape[-1] == 0:
            continue
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
