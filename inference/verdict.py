"""A verdict on a fit: can its graph be trusted, and if not, why and what to try.

:func:`assess` runs one check per diagnostic the library computes, on an InferenceData
built by :func:`~pyro_personax.inference.diagnostics.build_inference_data`:

=====================  ==========================================================
check                  fails when
=====================  ==========================================================
restart agreement      the restarts (chains) disagree on a probable edge: R-hat of
                       its indicator above ``RHAT_FAIL``, or chain probabilities
                       ``EDGE_SPREAD_FAIL`` apart; or their latents do not match
                       (matched ``|Spearman|`` below ``ALIGNMENT_FAIL``)
guide (Pareto k)       the amortized posterior is unreliable for many entities:
                       more than ``PARETO_SHARE_FAIL`` of them at ``k >= 0.7``
ELBO convergence       the ELBO still rises over the last tenth of the epochs by
                       more than ``ELBO_RISE_FAIL`` of its total rise
identified edges       no edge of the thresholded graph is decided by the data
                       (warns on latents the data do not pin)
predictive check       the replicated data miss the dependence between two
                       modalities (two-sided posterior predictive p below
                       ``PPC_P_FAIL``; :func:`cross_modal_ppc`)
=====================  ==========================================================

A check that cannot run (one chain, no data-dependent draws) says so and what would let
it run. The verdict is "trust" only when no check fails.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import numpy as np

from pyro_personax.graph import to_dag
from pyro_personax.identifiability import unpinned_latents
from pyro_personax.inference import diagnostics

__all__ = ["Check", "Verdict", "assess", "cross_modal_ppc", "STATUSES"]

STATUSES = ("pass", "warn", "fail", "not run")
RHAT_FAIL, RHAT_WARN = 1.1, 1.05
EDGE_SPREAD_FAIL = 0.5
ALIGNMENT_FAIL, ALIGNMENT_WARN = 0.5, 0.8
PARETO_SHARE_FAIL, PARETO_SHARE_WARN = 0.5, 0.1
ELBO_RISE_FAIL, ELBO_RISE_WARN = 0.05, 0.01
PPC_P_FAIL, PPC_P_WARN = 0.01, 0.05


@dataclass(frozen=True)
class Check:
    """One diagnostic's outcome.

    Attributes
    ----------
    name
        What was checked.
    status
        ``"pass"``, ``"warn"``, ``"fail"`` or ``"not run"``.
    finding
        What was measured, in numbers.
    advice
        What to try when it did not pass (empty otherwise).
    """

    name: str
    status: str
    finding: str
    advice: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}; found {self.status!r}")


@dataclass(frozen=True)
class Verdict:
    """The checks of :func:`assess` and the warnings the fit emitted.

    Attributes
    ----------
    checks
        One :class:`Check` per diagnostic.
    warnings
        Every warning logged during the fit, in order.
    """

    checks: tuple[Check, ...]
    warnings: tuple[str, ...] = ()

    @property
    def trustworthy(self) -> bool:
        """No check failed."""
        return not any(c.status == "fail" for c in self.checks)

    @property
    def headline(self) -> str:
        """One plain sentence: trust or not, and why."""
        failed = [c.name for c in self.checks if c.status == "fail"]
        warned = [c.name for c in self.checks if c.status == "warn"]
        if failed:
            return (
                f"Do not trust this graph yet: {len(failed)} check{'s' if len(failed) > 1 else ''} failed "
                f"({', '.join(failed)}). Each failed check below says what to try."
            )
        if warned:
            return f"The graph passed every check that ran, with warnings ({', '.join(warned)}); read them below."
        return "The graph passed every check that ran: the restarts agree, the guide and the fit are sound."

    def to_markdown(self) -> str:
        """The verdict as Markdown: headline, a table of checks, the fit's warnings."""
        rows = ["| check | status | finding | what to try |", "|---|---|---|---|"]
        for c in self.checks:
            rows.append(f"| {c.name} | **{c.status}** | {_md(c.finding)} | {_md(c.advice)} |")
        parts = [f"**{self.headline}**", "", *rows, ""]
        if self.warnings:
            parts += ["Warnings the fit emitted:", "", *[f"- {w}" for w in self.warnings], ""]
        return "\n".join(parts)

    def to_html(self) -> str:
        """The verdict as an HTML fragment (same content as :meth:`to_markdown`)."""
        colour = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "not run": "#57606a"}
        rows = "".join(
            f"<tr><td>{html.escape(c.name)}</td><td style='color:{colour[c.status]};font-weight:bold'>"
            f"{c.status}</td><td>{html.escape(c.finding)}</td><td>{html.escape(c.advice)}</td></tr>"
            for c in self.checks
        )
        box = "#cf222e" if not self.trustworthy else "#1a7f37"
        parts = [
            f"<div class='verdict' style='border-left:6px solid {box};padding:0.5em 1em;background:#f6f8fa'>"
            f"<p><strong>{html.escape(self.headline)}</strong></p>",
            "<table class='edges'><tr><th>check</th><th>status</th><th>finding</th><th>what to try</th></tr>"
            f"{rows}</table>",
        ]
        if self.warnings:
            items = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
            parts.append(f"<p>Warnings the fit emitted:</p><ul>{items}</ul>")
        parts.append("</div>")
        return "".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------- checks
def _restart_agreement(idata, threshold: float, alignment, table) -> Check:
    P = diagnostics.edge_probability_array(idata)
    C = P.shape[0]
    name = "restart agreement"
    if C < 2:
        return Check(name, "not run", "one chain: nothing to compare", "fit with num_chains >= 2 (4 is a good default)")
    probable = table[table[[c for c in table.columns if c.startswith("p_edge_chain_")]].max(axis=1) > threshold]
    r_hat = probable["r_hat"].to_numpy(dtype=float)
    worst_r = float(np.nanmax(r_hat)) if np.isfinite(r_hat).any() or np.isinf(r_hat).any() else float("nan")
    spread = P.max(axis=0) - P.min(axis=0)
    np.fill_diagonal(spread, 0.0)
    worst_spread = float(spread.max())
    parts = [f"{_count(len(probable), 'edge')} above {threshold:g} in some chain"]
    if not np.isnan(worst_r):
        parts.append(f"largest R-hat {worst_r:.2f}")
    parts.append(f"largest spread of a chain's P(edge) {worst_spread:.2f}")
    status = "pass"
    if worst_r > RHAT_FAIL or worst_spread > EDGE_SPREAD_FAIL:
        status = "fail"
    elif worst_r > RHAT_WARN:
        status = "warn"
    if alignment is not None:
        low = float(np.min(alignment))
        parts.append(f"lowest matched |Spearman| of the chains' latents {low:.2f}")
        if low < ALIGNMENT_FAIL:
            status = "fail"
        elif low < ALIGNMENT_WARN and status == "pass":
            status = "warn"
    advice = ""
    if status != "pass":
        advice = (
            "the restarts found different graphs or latents: train longer (more epochs), fit more chains to see "
            "which answer recurs, or try other latent block sizes; pooled probabilities mix the restarts"
        )
    return Check(name, status, "; ".join(parts), advice)


def _pareto(idata) -> Check:
    name = "guide (Pareto k)"
    k = diagnostics.pareto_k_of(idata)
    if k is None:
        return Check(name, "not run", "no log-weights stored", "build the InferenceData with data")
    share = float(np.mean(np.asarray(k) >= 0.7))
    finding = f"{share:.0%} of {'entities' if np.ndim(k) == 2 else 'chains'} with k >= 0.7 (median {np.median(k):.2f})"
    status = "fail" if share > PARETO_SHARE_FAIL else "warn" if share > PARETO_SHARE_WARN else "pass"
    advice = ""
    if status != "pass":
        advice = "the amortized posterior q(z | x) misses the posterior's tails: train longer, widen the encoders "
        advice += "(encoder_hidden_dim)"
        if _model_option(idata, "posterior_covariance") == "diagonal":
            advice += ", or use posterior_covariance='full'"
    return Check(name, status, finding, advice)


def _model_option(idata, name: str):
    """A model option recorded in the InferenceData's ``config`` attribute (``None`` if absent)."""
    try:
        config = json.loads(idata.posterior.attrs["config"])
        return config["model_options"].get(name)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def elbo_rise(trace: np.ndarray) -> float:
    """Rise of an ELBO trace over its last tenth, as a share of its total rise (``nan`` if too short).

    Parameters
    ----------
    trace
        ``(T,)`` ELBO per epoch (``NaN`` padding at the end is dropped).

    Examples
    --------
    >>> round(elbo_rise(np.array([0.0, 5, 8, 9, 9.5, 9.7, 9.8, 9.9, 9.95, 10.0])), 3)
    0.005
    """
    t = np.asarray(trace, dtype=float)
    t = t[np.isfinite(t)]
    if len(t) < 10:
        return float("nan")
    tail = max(1, len(t) // 10)
    total = t[-tail:].mean() - t[0]
    if total <= 0:
        return float("nan")
    return float((t[-tail:].mean() - t[-2 * tail : -tail].mean()) / total)


def _elbo(idata) -> Check:
    name = "ELBO convergence"
    traces = diagnostics.elbo_traces(idata)
    if traces is None:
        return Check(name, "not run", "no ELBO traces stored", "")
    rises = np.array([elbo_rise(t) for t in traces])
    if np.isnan(rises).all():
        return Check(name, "not run", "fewer than 10 epochs, or no rise to compare with", "train for more epochs")
    worst = float(np.nanmax(rises))
    finding = f"the ELBO rose by {worst:.1%} of its total rise over the last tenth of the epochs (worst chain)"
    status = "fail" if worst > ELBO_RISE_FAIL else "warn" if worst > ELBO_RISE_WARN else "pass"
    advice = "" if status == "pass" else "the fit had not converged: train for more epochs"
    return Check(name, status, finding, advice)


def _identified(idata, threshold: float) -> Check:
    name = "identified edges"
    layout = diagnostics.layout_of(idata)
    P = diagnostics.edge_probability_array(idata).mean(axis=0)
    dag = to_dag(P, threshold).astype(bool)
    ident = dag & layout.identified_mask()
    finding = (
        f"{int(ident.sum())} of the {_count(int(dag.sum()), 'edge')} of the thresholded graph are decided by the data "
        f"(cross-modal or separated by a measurement map); the other {int(dag.sum() - ident.sum())} are undecided"
    )
    if not layout.identified_mask().any():
        return Check(name, "fail", finding + "; this layout has no edge the data decide",
                     "add a second modality, or declare a measurement map")
    unpinned = unpinned_latents(layout, dag.astype(float), 0.5)
    if not ident.any():
        return Check(name, "fail", finding, "no decided edge was found: read the undecided ones as prior-driven")
    if unpinned:
        return Check(
            name, "warn", finding + f"; latents not pinned by a cross-modal neighbour: {', '.join(unpinned)}",
            "edges at unpinned latents may name a mixture of the block's factors",
        )
    return Check(name, "pass", finding)


def cross_modal_ppc(idata) -> dict[tuple[str, str], dict[str, float]]:
    """Posterior predictive check of the dependence between every pair of modalities.

    The statistic of a pair ``(a, b)`` is the root mean square of the correlations between
    the features of ``a`` and of ``b`` (each averaged over its observed measurements),
    on the entities observed in both. A graph or latents that miss a dependence between
    modalities give replicates with less of it than the data.

    Returns
    -------
    dict
        ``(a, b)`` -> ``{"observed": T(x), "replicated_mean": mean T(x_rep),
        "p": P(T(x_rep) >= T(x)), "replicated": T(x_rep) per draw}`` over the stored
        predictive draws.
    """
    pairs = diagnostics.predictive_pairs(idata)
    mods = sorted(pairs)
    out = {}
    for i, a in enumerate(mods):
        for b in mods[i + 1 :]:
            obs_a, rep_a = pairs[a]
            obs_b, rep_b = pairs[b]
            xa, xb = _measurement_mean(obs_a), _measurement_mean(obs_b)
            rows = np.isfinite(xa).all(axis=1) & np.isfinite(xb).all(axis=1)
            if rows.sum() < 5:
                continue
            t_obs = _rms_cross_corr(xa[rows], xb[rows])
            ra = rep_a.reshape(-1, *rep_a.shape[-3:]).mean(axis=2)[:, rows]
            rb = rep_b.reshape(-1, *rep_b.shape[-3:]).mean(axis=2)[:, rows]
            t_rep = np.array([_rms_cross_corr(u, v) for u, v in zip(ra, rb)])
            out[(a, b)] = {
                "observed": float(t_obs),
                "replicated_mean": float(np.nanmean(t_rep)),
                "p": float(np.mean(t_rep >= t_obs)),
                "replicated": t_rep,
            }
    return out


def _measurement_mean(x: np.ndarray) -> np.ndarray:
    """``(N, K, d)`` with NaN where missing -> ``(N, d)`` mean over the observed measurements (NaN if none)."""
    ok = np.isfinite(x)
    count = ok.sum(axis=1)
    total = np.where(ok, x, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _rms_cross_corr(a: np.ndarray, b: np.ndarray) -> float:
    a = (a - a.mean(0)) / np.where(a.std(0) > 0, a.std(0), 1.0)
    b = (b - b.mean(0)) / np.where(b.std(0) > 0, b.std(0), 1.0)
    corr = a.T @ b / len(a)
    return float(np.sqrt(np.mean(corr**2)))


def _ppc(results) -> Check:
    name = "predictive check"
    if not results:
        return Check(
            name, "not run", "no posterior predictive draws of two modalities",
            "build the InferenceData with data and num_predictive > 0",
        )
    worst_pair, worst = min(results.items(), key=lambda kv: min(kv[1]["p"], 1 - kv[1]["p"]))
    two_sided = 2 * min(worst["p"], 1 - worst["p"])
    finding = (
        f"dependence between modalities {worst_pair[0]} and {worst_pair[1]}: observed {worst['observed']:.3f}, "
        f"replicated {worst['replicated_mean']:.3f} (two-sided p {two_sided:.2f}; {len(results)} pairs checked)"
    )
    status = "fail" if two_sided < PPC_P_FAIL else "warn" if two_sided < PPC_P_WARN else "pass"
    advice = (
        ""
        if status == "pass"
        else "the fitted graph and latents do not reproduce the dependence between these modalities: "
        "try other latent sizes (a larger shared block), more epochs, or check the cross-modal edges"
    )
    return Check(name, status, finding, advice)


def fit_warnings_of(idata) -> tuple[str, ...]:
    """The warnings the fit logged, as stored in the InferenceData's configuration."""
    raw = diagnostics.config_of(idata)["config"].get("fit_warnings", [])
    if isinstance(raw, str):
        raw = json.loads(raw)
    return tuple(str(w) for w in raw)


def assess(idata, *, threshold: float = 0.5, table=None, dependence=None) -> Verdict:
    """Run every check on a fitted model's InferenceData.

    Parameters
    ----------
    idata
        Output of :func:`~pyro_personax.inference.diagnostics.build_inference_data`
        (``PersonaX.to_inference_data``); the chain alignment's correlations and the
        fit's warnings are read from its configuration when stored there.
    threshold
        P(edge) above which an edge enters the thresholded graph.
    table, dependence
        Optional :func:`~pyro_personax.inference.diagnostics.edge_summary` and
        :func:`cross_modal_ppc` of ``idata`` when the caller has them already (the report);
        computed here otherwise.

    Returns
    -------
    Verdict
    """
    config = diagnostics.config_of(idata)["config"]
    alignment = config.get("chain_alignment_abs_spearman")
    checks = (
        _restart_agreement(
            idata,
            threshold,
            None if alignment is None else np.asarray(alignment, dtype=float),
            diagnostics.edge_summary(idata) if table is None else table,
        ),
        _pareto(idata),
        _elbo(idata),
        _identified(idata, threshold),
        _ppc(cross_modal_ppc(idata) if dependence is None else dependence),
    )
    return Verdict(checks, fit_warnings_of(idata))
