"""Leave-one-measurement-out: refit without each measurement of a modality, and with each alone."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.inference.options import FitOptions
from pyro_personax.sensitivity._common import (
    _check_modality,
    _check_px,
    _check_threshold,
    _clone,
    _edge_frame,
    _edge_heatmaps,
    _fit,
    _fit_options,
    _progress,
    _Reference,
    adjacency_frame,
    mask_measurements,
)

logger = logging.getLogger(__name__)


#: The verdicts of :attr:`MeasurementSensitivity.stability` (``"rests on <measurement>"`` names it).
STABILITY_VERDICTS = ("stable", "rests on <measurement>", "unstable", "absent")


@dataclass(frozen=True, eq=False)
class MeasurementSensitivity:
    """What :func:`leave_one_measurement_out` found.

    Attributes
    ----------
    modality
        The modality whose measurements were left out.
    measurement_names
        Its ``K`` measurement names.
    variants
        ``DataFrame`` indexed by variant name (``"all"`` first, then ``"without <m>"``
        and ``"only <m>"``): ``kept`` (the measurement names fitted), ``seconds``,
        ``train_elbo`` and ``validation_elbo`` (per entity, at each chain's kept epoch,
        mean over chains). ELBOs of variants are not comparable with each other: each
        scores different observed measurements.
    edges
        ``DataFrame`` of the identified (cross-modal) edges: index ``(parent, child)``,
        ``edge_class``, then ``P(edge)`` under every variant (columns = variant names),
        in the reference fit's latent labels.
    undecided
        The same for the undecided edges (within a block, from the shared block), which
        follow the prior more than the data.
    latent_agreement
        ``DataFrame`` variants x blocks: mean matched absolute Spearman correlation of the
        variant's posterior means with the reference fit's (1 = the same latents).
    latent_correlations
        ``DataFrame`` variants x latents: the matched absolute Spearman correlation of
        every latent.
    stability
        ``DataFrame``, one row per identified edge (index ``(parent, child)``):
        ``p_all``, ``p_min``, ``p_max``, ``holds_in`` (variants with ``P >= threshold``
        out of all), ``verdict`` (:data:`STABILITY_VERDICTS`) and ``rests_on`` (the
        measurement name, or ``""``).
    undecided_stability
        The same for the undecided edges.
    threshold
        The ``P(edge)`` at or above which an edge holds.
    adjacencies
        ``edges`` collapsed to pairs of latents (:func:`adjacency_frame`): ``P`` that the
        two are adjacent, whichever the direction, per variant.
    adjacency_stability
        ``stability`` of ``adjacencies``, one row per pair ``(latent_a, latent_b)``. A pair
        that is ``"stable"`` here while its directed edges are not has a link the
        measurements agree on and a direction they do not.
    """

    modality: str
    measurement_names: tuple[str, ...]
    variants: pd.DataFrame
    edges: pd.DataFrame
    undecided: pd.DataFrame
    latent_agreement: pd.DataFrame
    latent_correlations: pd.DataFrame
    stability: pd.DataFrame
    undecided_stability: pd.DataFrame
    threshold: float
    adjacencies: pd.DataFrame
    adjacency_stability: pd.DataFrame

    def stability_table(self, directed: bool = True) -> pd.DataFrame:
        """:attr:`stability` (``directed=True``) or :attr:`adjacency_stability` (``False``)."""
        if not isinstance(directed, bool):
            raise ValueError(f"directed: expected True or False; found {directed!r}")
        return self.stability if directed else self.adjacency_stability

    def stable_edges(self, directed: bool = True) -> list[tuple[str, str]]:
        """Identified edges that hold in every variant.

        Parameters
        ----------
        directed
            ``True``: edges ``(parent, child)``; ``False``: pairs of latents linked in
            every variant in either direction (:attr:`adjacency_stability`).
        """
        table = self.stability_table(directed)
        return [tuple(i) for i in table.index[table["verdict"] == "stable"]]

    def dependent_edges(self, directed: bool = True) -> dict[tuple[str, str], str]:
        """Identified edges that rest on one measurement -> the measurement's name.

        Parameters
        ----------
        directed
            ``True``: edges ``(parent, child)``; ``False``: pairs of latents, whichever
            the direction (:attr:`adjacency_stability`).
        """
        table = self.stability_table(directed)
        rows = table[table["rests_on"] != ""]
        return {tuple(i): r for i, r in zip(rows.index, rows["rests_on"])}

    def plot(self) -> Figure:
        """Heat maps of ``P`` x variant (identified edges, as links, undecided edges), and the latents' agreement.

        Returns
        -------
        matplotlib.figure.Figure
            Four panels (not shown; save it with ``fig.savefig``).
        """
        variants = list(self.variants.index)
        fig, ax = _edge_heatmaps(self.edges, self.undecided, variants, "variant",
                                 (self.stability_frame(0), self.adjacency_stability["verdict"],
                                  self.stability_frame(1)))
        agreement = self.latent_agreement.loc[variants]
        xs = np.arange(len(variants))
        width = 0.8 / max(agreement.shape[1], 1)
        for b, block in enumerate(agreement.columns):
            ax.bar(xs + (b - (agreement.shape[1] - 1) / 2) * width, agreement[block], width, label=block)
        ax.set_xticks(xs, variants, rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("matched |Spearman|")
        ax.set_title("latents' agreement with the reference fit, per block")
        ax.legend(fontsize=8, ncols=min(agreement.shape[1], 4), loc="lower left")
        fig.suptitle(f"Leave one measurement of {self.modality!r} out (edge holds at P >= {self.threshold:g})")
        return fig

    def stability_frame(self, which: int) -> pd.Series:
        """Verdict per edge as row labels of :meth:`plot`: identified (``0``) or undecided (``1``)."""
        return (self.stability if which == 0 else self.undecided_stability)["verdict"]

def _verdicts(frame: pd.DataFrame, kept: dict[str, set], names, threshold: float) -> pd.DataFrame:
    """The stability table of one edge class (see :attr:`MeasurementSensitivity.stability`)."""
    variants = list(kept)
    P = frame[variants].to_numpy()
    holds = P >= threshold
    rows = []
    for e, h in enumerate(holds):
        resting = [
            m for m in names
            if not any(h[v] for v, name in enumerate(variants) if m not in kept[name])
            and any(h[v] for v, name in enumerate(variants) if m in kept[name])
        ]
        if h.all():
            verdict, rests = "stable", ""
        elif not h.any():
            verdict, rests = "absent", ""
        elif len(resting) == 1:
            verdict, rests = f"rests on {resting[0]}", resting[0]
        else:
            verdict, rests = "unstable", ""
        rows.append({"p_all": P[e, 0], "p_min": P[e].min(), "p_max": P[e].max(),
                     "holds_in": f"{int(h.sum())}/{len(h)}", "verdict": verdict, "rests_on": rests})
    columns = ["p_all", "p_min", "p_max", "holds_in", "verdict", "rests_on"]
    return pd.DataFrame(rows, index=frame.index, columns=columns)


def leave_one_measurement_out(
    px,
    data: MultiModalData,
    modality: str,
    *,
    single: bool = True,
    fit_options: FitOptions | Mapping | None = None,
    threshold: float = 0.5,
    seed: int | None = None,
    progress: bool | None = None,
) -> MeasurementSensitivity:
    """Refit with each measurement of ``modality`` left out in turn, and with each alone.

    Parameters
    ----------
    px
        A :class:`~pyro_personax.PersonaX`: its layout, model options and classes are
        used for every refit. When it is fitted, it is the reference fit every variant
        is compared with (and ``"all"`` reports its edge probabilities); otherwise the
        reference is fitted here first, on ``data``, with ``fit_options``.
    data
        The data (``N`` entities); ``modality`` must have ``K >= 2`` measurements.
    modality
        The modality whose measurements are left out (e.g. ``"text"``: one per LLM).
    single
        Also fit each measurement alone (``"only <m>"``), when ``K >= 3`` (with
        ``K = 2`` "only one" is "without the other").
    fit_options
        :class:`~pyro_personax.inference.FitOptions` (or a mapping of its fields) of
        every refit; ``None``: the defaults.
    threshold
        An edge holds in a variant when its ``P(edge) >= threshold``.
    seed
        Seed of every refit (overrides ``fit_options.seed``); each variant uses the same.
    progress
        Show progress (a bar over the refits and the fits' own bars); ``None``:
        ``fit_options.progress``.

    Returns
    -------
    MeasurementSensitivity
        ``P(edge)`` per variant (``edges``: identified, ``undecided`` apart), the
        latents' agreement with the reference (``latent_agreement``: variants x
        blocks), the fits (``variants``) and the verdicts (``stability``).

    Raises
    ------
    ValueError
        ``modality`` is not a modality of ``data``, has fewer than 2 measurements, or
        ``threshold`` is not in ``(0, 1)``.

    Examples
    --------
    >>> from pyro_personax import PersonaX
    >>> rng = np.random.default_rng(0)
    >>> data = MultiModalData({"face": rng.normal(size=(40, 1, 3)), "text": rng.normal(size=(40, 2, 3))})
    >>> px = PersonaX(data, latent_dims={"face": 1, "text": 1}, mechanism="linear")
    >>> fit = {"num_epochs": 1, "num_chains": 1, "device": "cpu", "refine_graph": False}
    >>> result = leave_one_measurement_out(px, data, "text", fit_options=fit, progress=False)
    >>> list(result.variants.index)
    ['all', 'without text_0', 'without text_1']
    >>> result.edges.shape  # 2 cross-modal edges; edge_class and one column per variant
    (2, 4)
    """
    px = _check_px(px)
    _check_modality(data, modality)
    threshold = _check_threshold(threshold)
    K = data.num_measurements[modality]
    if K < 2:
        raise ValueError(
            f"modality: leave-one-measurement-out needs a modality with at least 2 measurements; "
            f"{modality!r} has {K}"
        )
    if not isinstance(single, bool):
        raise ValueError(f"single: expected True or False; found {single!r}")
    options = _fit_options(fit_options, seed, progress)
    names = data.measurement_names[modality]
    plan = [(f"without {names[k]}", [j for j in range(K) if j != k]) for k in range(K)]
    if single and K >= 3:
        plan += [(f"only {names[k]}", [k]) for k in range(K)]
    total = len(plan) + (px.chains is None)
    bar = _progress(total, options.progress, f"leave one {modality} out")
    rows, probs, corr = {}, {}, {}
    try:
        if px.chains is None:
            seconds, train, valid = _fit(px, data, options)
            if bar is not None:
                bar.update()
        else:
            seconds, train, valid = float("nan"), float("nan"), float("nan")
            logger.info("leave_one_measurement_out: the fitted model is the reference")
        reference = _Reference(px, data)
        rows["all"] = {"kept": ", ".join(names), "seconds": seconds, "train_elbo": train, "validation_elbo": valid}
        probs["all"], corr["all"] = px.edge_probabilities().to_numpy(), np.ones(px.layout.latent_dim)
        for name, keep in plan:
            variant = mask_measurements(data, modality, [k for k in range(K) if k not in keep])
            other = _clone(px)
            seconds, train, valid = _fit(other, variant, options)
            probs[name], corr[name] = reference.compare(other, variant)
            rows[name] = {"kept": ", ".join(names[k] for k in keep), "seconds": seconds, "train_elbo": train,
                          "validation_elbo": valid}
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    layout = px.layout
    kept = {name: set(row["kept"].split(", ")) for name, row in rows.items()}
    edges, undecided = (_edge_frame(layout, probs, which) for which in ("identified", "undecided"))
    adjacencies = adjacency_frame(edges)
    agreement = pd.DataFrame({v: reference.block_agreement(c) for v, c in corr.items()}).T
    return MeasurementSensitivity(
        modality=modality,
        measurement_names=tuple(names),
        variants=pd.DataFrame(rows).T.rename_axis("variant"),
        edges=edges,
        undecided=undecided,
        latent_agreement=agreement.rename_axis("variant"),
        latent_correlations=pd.DataFrame(corr, index=list(layout.names)).T.rename_axis("variant"),
        stability=_verdicts(edges, kept, names, threshold),
        undecided_stability=_verdicts(undecided, kept, names, threshold),
        threshold=threshold,
        adjacencies=adjacencies,
        adjacency_stability=_verdicts(adjacencies, kept, names, threshold),
    )
