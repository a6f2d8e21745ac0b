"""The tables, figures and HTML page of the sensitivity analyses."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pyro_personax.sensitivity.measurements import MeasurementSensitivity
from pyro_personax.sensitivity.prior import PriorSensitivity

#: Files :func:`write_sensitivity_page` may write (nothing else in its folder is touched).
SENSITIVITY_FILES = (
    "sensitivity.html", "measurements_edges.csv", "measurements_stability.csv", "measurements_latents.csv",
    "measurements_adjacency.csv", "measurements_fits.csv", "measurements.png", "prior_identified.csv",
    "prior_undecided.csv", "prior_settings.csv", "prior_adjacency.csv", "prior.png",
)

_DPI = 110


def _stability_summary(m: MeasurementSensitivity, directed: bool) -> str:
    """One sentence on the stable and the measurement-dependent identified edges (or links)."""
    what, arrow = ("identified edges", " -> ") if directed else ("identified links (either direction)", " - ")
    table = m.stability_table(directed)
    stable, dependent = m.stable_edges(directed), m.dependent_edges(directed)
    return (
        f"{len(stable)} of {len(table)} {what} hold (P >= {m.threshold:g}) in every variant"
        + (": " + ", ".join(arrow.join(e) for e in stable) if stable else "")
        + ". "
        + ("Resting on one measurement: " + "; ".join(f"{arrow.join(e)} on {k}" for e, k in dependent.items()) + "."
           if dependent else f"No {what.split(' (')[0]} rests on one measurement.")
    )


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.3f}", border=0, classes="table")


def write_sensitivity_page(
    out_dir,
    measurements: MeasurementSensitivity | None = None,
    prior: PriorSensitivity | None = None,
    *,
    title: str = "Sensitivity of the latent causal graph",
    notes: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Write the tables (CSV), figures (PNG) and ``sensitivity.html`` of one or both analyses.

    Parameters
    ----------
    out_dir
        Folder to write (created). Only :data:`SENSITIVITY_FILES` are written in it.
    measurements, prior
        The results of :func:`leave_one_measurement_out` and :func:`prior_sweep` (at
        least one).
    title
        Heading of the page.
    notes
        Lines shown under the heading (what was fitted, with which options).
    overwrite
        Write into an existing folder that is not empty (replacing those files);
        otherwise such a folder is refused.

    Returns
    -------
    pathlib.Path
        The HTML page.
    """
    if measurements is None and prior is None:
        raise ValueError("measurements, prior: expected at least one result; found neither")
    for what, value, cls in (("measurements", measurements, MeasurementSensitivity),
                             ("prior", prior, PriorSensitivity)):
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{what}: expected a {cls.__name__} or None; found {type(value).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out_dir: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"out_dir: {out} exists and is not empty; pass overwrite=True to replace the "
                              f"sensitivity files in it")
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{html.escape(title)}</h1>"] + [f"<p>{html.escape(n)}</p>" for n in notes]
    if measurements is not None:
        m = measurements
        m.edges.to_csv(out / "measurements_edges.csv")
        pd.concat([m.stability.assign(group="identified"), m.undecided_stability.assign(group="undecided")]).to_csv(
            out / "measurements_stability.csv")
        pd.concat({"block": m.latent_agreement, "latent": m.latent_correlations}, axis=1).to_csv(
            out / "measurements_latents.csv")
        m.variants.to_csv(out / "measurements_fits.csv")
        links = m.adjacency_stability.join(m.adjacencies.drop(columns="edge_class"))
        links.to_csv(out / "measurements_adjacency.csv")
        m.plot().savefig(out / "measurements.png", dpi=_DPI, bbox_inches="tight")
        summary = " ".join(_stability_summary(m, directed) for directed in (True, False))
        parts += [
            f"<h2>Leave one measurement of {html.escape(m.modality)!s} out</h2>",
            f"<p>{html.escape(summary)}</p>",
            '<img src="measurements.png" alt="P(edge) per variant and agreement of the latents">',
            "<h3>Stability of the identified edges</h3>", _table(m.stability),
            "<h3>Stability of the identified links, either direction</h3>",
            "<p>P(adjacent) = P(a -> b) + P(b -> a). A link that is stable while its directed edges are not "
            "is one the measurements agree on, with a direction they do not decide.</p>",
            _table(links),
            "<h3>Agreement of the latents with the reference fit (matched |Spearman|, per block)</h3>",
            _table(m.latent_agreement),
            "<h3>Fits</h3>", _table(m.variants),
            "<h3>Undecided edges (not decided by the data; they follow the prior)</h3>",
            _table(m.undecided_stability),
        ]
    if prior is not None:
        p = prior
        p.identified.to_csv(out / "prior_identified.csv")
        p.undecided.to_csv(out / "prior_undecided.csv")
        p.settings.to_csv(out / "prior_settings.csv")
        p.adjacencies().to_csv(out / "prior_adjacency.csv")
        p.plot().savefig(out / "prior.png", dpi=_DPI, bbox_inches="tight")
        parts += [
            "<h2>Prior sensitivity</h2>",
            "<p>Each setting refits the model with the edge prior p0 and the sparsity weight lambda given. "
            "Identified (cross-modal) edges that move with the setting rest on the prior, not on the data; "
            "undecided edges are expected to follow it. The held-out ELBO says which settings the data "
            "support (each ELBO includes the prior's own terms).</p>",
            '<img src="prior.png" alt="P(edge) per prior setting and ELBOs">',
            "<h3>Settings</h3>", _table(p.settings),
            "<h3>Identified edges</h3>", _table(p.identified),
            "<h3>Identified links, either direction (P(a -> b) + P(b -> a))</h3>", _table(p.adjacencies()),
            "<h3>Undecided edges</h3>", _table(p.undecided),
        ]
    page = out / "sensitivity.html"
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
             ".table{border-collapse:collapse;font-size:12px}.table td,.table th{padding:2px 6px}")
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    return page
