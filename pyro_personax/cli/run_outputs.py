"""What a Level II run writes: the model, the posterior (netCDF), edge tables and the report.

A run folder ``RUN_DIR`` holds::

    RUN_DIR/model/                 PersonaX.save (config.json, chains.pt)
    RUN_DIR/posterior.nc           arviz.InferenceData (chains = independent restarts)
    RUN_DIR/edge_probabilities.csv pooled P(parent -> child), latent names
    RUN_DIR/fit_summary.csv        per-chain, per-epoch training traces
    RUN_DIR/chain_alignment.csv    which latent of every chain matches each latent of chain 0
    RUN_DIR/report/                the edge report (Markdown, HTML, PNGs)
    RUN_DIR/run_config.json        the run configuration as fitted (``personax fit``; data paths absolute)

``personax report RUN_DIR`` re-renders the report from ``posterior.nc``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["RUN_FILES", "check_run_dir", "write_fit_outputs", "top_edges"]

RUN_FILES = ("model", "posterior.nc", "edge_probabilities.csv", "fit_summary.csv", "chain_alignment.csv", "report",
             "run_config.json")


def check_run_dir(out: Path, overwrite: bool) -> None:
    """Raise ``FileExistsError`` when ``out`` already holds run files and ``overwrite`` is off."""
    existing = [str(out / f) for f in RUN_FILES if (out / f).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; pass --overwrite to replace the run in {out}")


def write_fit_outputs(
    px,
    data,
    out: Path,
    *,
    num_samples: int = 200,
    seed: int = 0,
    truth: dict | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the run folder of a fitted :class:`~pyro_personax.PersonaX` (see the module docstring).

    Parameters
    ----------
    px
        The fitted model.
    data
        The data it was fitted on (for strengths, predictive checks and PSIS).
    out
        The run folder.
    num_samples
        Posterior draws per chain in ``posterior.nc``.
    seed
        Seed of the posterior draws.
    truth
        Optional keyword arguments of :func:`~pyro_personax.inference.report.edge_report`
        about the truth (``truth_adjacency``, ``truth_latents``, ``truth_blocks``,
        ``truth_entity_ids``).
    overwrite
        Replace an existing run in ``out``.

    Returns
    -------
    dict
        Name -> path of everything written.
    """
    from pyro_personax import edge_report
    from pyro_personax.inference.diagnostics import save_inference_data

    check_run_dir(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in RUN_FILES}
    px.save(paths["model"], overwrite=overwrite)
    idata = px.to_inference_data(data, num_samples=num_samples, seed=seed)
    save_inference_data(idata, paths["posterior.nc"], overwrite=overwrite)
    px.edge_probabilities().to_csv(paths["edge_probabilities.csv"])
    px.fit_result.to_dataframe().to_csv(paths["fit_summary.csv"], index=False)
    px.chain_alignment.to_frame(px.layout.names).to_csv(paths["chain_alignment.csv"], index=False)
    edge_report(idata, paths["report"], overwrite=overwrite, **(truth or {}))
    return paths


def top_edges(px, k: int = 8, min_prob: float = 0.05, edges: str = "all") -> list[tuple[str, str, float]]:
    """The ``k`` most probable edges ``(parent, child, P)`` with ``P >= min_prob`` (pooled).

    ``edges``: ``"identified"``, ``"undecided"`` or ``"all"`` (see
    :func:`pyro_personax.identifiability.select_edges`).
    """
    from pyro_personax.identifiability import select_edges

    probs = px.edge_probabilities()
    P = select_edges(px.layout, probs.to_numpy(), edges)
    order = np.argsort(-P, axis=None)
    out = []
    for flat in order[:k]:
        i, j = np.unravel_index(flat, P.shape)
        if P[i, j] < min_prob:
            break
        out.append((probs.index[i], probs.columns[j], float(P[i, j])))
    return out
