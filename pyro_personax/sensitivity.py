"""Sensitivity of the fitted graph to the measurements and to the prior.

Two refit analyses answer what a reader of an edge report asks next:

- :func:`leave_one_measurement_out`: refit with each measurement of one modality
  removed in turn (each LLM's text, each face image) and, optionally, with each
  measurement alone. A removed measurement is a masked one
  (:func:`mask_measurements`): no new data set is made, and the guide's product of
  experts drops it. For every edge the result gives ``P(edge)`` under every variant,
  the agreement of each variant's latents with the reference fit (matched absolute
  Spearman correlation per block), and a stability verdict
  (:data:`STABILITY_VERDICTS`): an edge that holds in every variant is ``"stable"``;
  one that holds in no variant without measurement ``k`` and in some variant with it
  ``"rests on k"``. The same verdicts are given for each pair of latents, whichever the
  direction (:attr:`MeasurementSensitivity.adjacency_stability`): a link that holds in
  every variant while its direction flips between them is stable as a link, and its
  direction is not decided (a lone cross-modal cause -> effect pair is oriented by the
  additive-noise asymmetry only).
- :func:`prior_sweep`: refit over a grid of edge-prior probabilities
  (:class:`~pyro_personax.models.ModelOptions` ``edge_prior``) and sparsity weights
  (:class:`~pyro_personax.inference.FitOptions` ``sparsity``) spanning orders of
  magnitude, and report ``P(edge)`` per setting with the training and held-out
  (validation) ELBO of each. The identified (cross-modal) edges should not move with the
  prior; the undecided ones are expected to follow it, and are shown apart.

Every variant and setting is fitted with the same fit options and seed (chain ``c`` of
every fit uses ``seed + c``, as :meth:`pyro_personax.PersonaX.fit`), so the fits differ
only in what is varied. Each fit's latent labels are matched to the reference fit's
(:func:`~pyro_personax.inference.alignment.align_chains`, within exchangeable groups)
before its edge probabilities are compared. Adjacencies follow
:mod:`pyro_personax.graph` (``[i, j]`` = parent i -> child j).

:func:`write_sensitivity_page` writes the tables, figures and an HTML page of either
result or both; ``personax sensitivity RUN_DIR`` runs both on a run folder.
"""

from __future__ import annotations

import copy
import html
import logging
import math
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.facade import PersonaX
from pyro_personax.inference.alignment import align_chains
from pyro_personax.inference.options import FitOptions

__all__ = [
    "MeasurementSensitivity",
    "PriorSensitivity",
    "STABILITY_VERDICTS",
    "SENSITIVITY_FILES",
    "adjacency_frame",
    "leave_one_measurement_out",
    "mask_measurements",
    "prior_sweep",
    "write_sensitivity_page",
]

logger = logging.getLogger(__name__)

#: The verdicts of :attr:`MeasurementSensitivity.stability` (``"rests on <measurement>"`` names it).
STABILITY_VERDICTS = ("stable", "rests on <measurement>", "unstable", "absent")

#: Files :func:`write_sensitivity_page` may write (nothing else in its folder is touched).
SENSITIVITY_FILES = (
    "sensitivity.html", "measurements_edges.csv", "measurements_stability.csv", "measurements_latents.csv",
    "measurements_adjacency.csv", "measurements_fits.csv", "measurements.png", "prior_identified.csv",
    "prior_undecided.csv", "prior_settings.csv", "prior_adjacency.csv", "prior.png",
)

_REFERENCE = "reference"
_DPI = 110


# ---------------------------------------------------------------------------- helpers
def mask_measurements(data: MultiModalData, modality: str, drop: Sequence[int]) -> MultiModalData:
    """``data`` with measurements ``drop`` of ``modality`` missing for everyone (``data`` itself unchanged).

    Parameters
    ----------
    data
        ``N`` entities; ``modality`` has ``K`` measurements.
    modality
        The modality whose measurements are dropped.
    drop
        Measurement indices in ``[0, K)``.

    Returns
    -------
    MultiModalData
        The same values (shared with ``data``, not copied); a new ``masks[modality]``
        whose columns ``drop`` are ``False`` (the model and the guide
        ignore a masked measurement; nothing is imputed).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = MultiModalData({"text": rng.normal(size=(5, 3, 2))})
    >>> mask_measurements(data, "text", [1]).masks["text"].all(axis=0).tolist()
    [True, False, True]
    """
    _check_modality(data, modality)
    K = data.num_measurements[modality]
    drop = [int(k) for k in drop]
    bad = [k for k in drop if not 0 <= k < K]
    if bad:
        raise ValueError(f"drop: modality {modality!r} has measurements 0..{K - 1}; found {bad}")
    new = copy.copy(data)  # the values are shared, not copied: a fit only reads them
    new.masks = {**data.masks, modality: data.masks[modality].copy()}
    new.masks[modality][:, drop] = False
    return new


def _check_modality(data, modality) -> None:
    if not isinstance(data, MultiModalData):
        raise TypeError(f"data: expected a MultiModalData; found {type(data).__name__}")
    if modality not in data.modalities:
        raise ValueError(f"modality: expected one of the data's modalities {list(data.modalities)}; found {modality!r}")


def _fit_options(fit_options, seed, progress) -> FitOptions:
    if fit_options is None:
        options = FitOptions()
    elif isinstance(fit_options, FitOptions):
        options = fit_options
    elif isinstance(fit_options, Mapping):
        options = FitOptions.from_mapping(fit_options, "fit_options")
    else:
        raise TypeError(f"fit_options: expected None, a FitOptions or a mapping of its fields; found "
                        f"{type(fit_options).__name__}")
    changes = {key: value for key, value in (("seed", seed), ("progress", progress)) if value is not None}
    return replace(options, **changes)  # FitOptions checks them


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold < 1:
        raise ValueError(f"threshold: expected a number in (0, 1); found {threshold!r}")
    return float(threshold)


def _check_px(px):
    if not isinstance(px, PersonaX):
        raise TypeError(f"px: expected a PersonaX (fitted or not); found {type(px).__name__}")
    return px


def _clone(px, **model_changes):
    """An unfitted PersonaX with ``px``'s layout, classes and options (``model_changes`` applied)."""
    options = replace(px.options, **model_changes)
    return PersonaX(px.layout, model_cls=px.model_cls, guide_cls=px.guide_cls, **asdict(options))


def _fit(px, data, options: FitOptions):
    """Fit ``px`` on ``data`` with ``options``; return (seconds, train ELBO, validation ELBO)."""
    start = time.perf_counter()
    result = px.fit(data, **{f.name: getattr(options, f.name) for f in fields(options)})
    seconds = time.perf_counter() - start
    train, valid = [], []
    for chain in result.chains:
        best = chain.best_epoch if 0 <= chain.best_epoch < chain.num_epochs else chain.num_epochs - 1
        train.append(chain.train_elbo[best] if chain.train_elbo else np.nan)
        valid.append(chain.validation_elbo[best] if chain.validation_elbo else np.nan)
    mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")  # noqa: E731
    return seconds, mean(np.asarray(train, float)), mean(np.asarray(valid, float))


class _Reference:
    """The reference fit: its latents on the full data, to which every other fit is matched."""

    def __init__(self, px, data: MultiModalData):
        self.px, self.layout = px, px.layout
        self.latents = px.get_latent_representation(data)

    def compare(self, other, data: MultiModalData) -> tuple[np.ndarray, np.ndarray]:
        """``other``'s pooled ``P (D, D)`` in the reference's labels and the ``(D,)`` matched ``|Spearman|``."""
        alignment = align_chains([self.latents, other.get_latent_representation(data)], self.layout)
        probs = alignment.relabel_edges(1, other.edge_probabilities().to_numpy())
        return probs, alignment.correlations[1]

    def block_agreement(self, correlations: np.ndarray) -> dict[str, float]:
        blocks = np.asarray(self.layout.block_of)
        return {b: float(correlations[blocks == b].mean()) for b in self.layout.block_names if (blocks == b).any()}


def _edge_frame(layout, columns: dict[str, np.ndarray], which: str) -> pd.DataFrame:
    """Rows = the allowed edges of one class (``"identified"`` / ``"undecided"``), columns = fits."""
    names = list(layout.names)
    identified = layout.identified_mask()
    classes = layout.edge_classes()
    keep = layout.allowed_mask() & (identified if which == "identified" else ~identified)
    np.fill_diagonal(keep, False)
    pairs = np.argwhere(keep)
    index = pd.MultiIndex.from_tuples([(names[i], names[j]) for i, j in pairs], names=["parent", "child"])
    frame = pd.DataFrame({name: P[pairs[:, 0], pairs[:, 1]] for name, P in columns.items()}, index=index)
    frame.insert(0, "edge_class", [classes[i, j] for i, j in pairs])
    return frame


def adjacency_frame(edges: pd.DataFrame) -> pd.DataFrame:
    """Collapse directed edges into pairs of latents: ``P(adjacent) = P(a -> b) + P(b -> a)``.

    Parameters
    ----------
    edges
        ``DataFrame`` indexed by ``(parent, child)`` with an ``edge_class`` column and one
        column of ``P(edge)`` per fit (as :attr:`MeasurementSensitivity.edges` or
        :attr:`PriorSensitivity.identified`).

    Returns
    -------
    pandas.DataFrame
        One row per unordered pair, indexed by ``(latent_a, latent_b)`` in the order the
        pair first appears in ``edges``: ``edge_class``, then per fit the sum of the two
        directions' ``P(edge)``. Each posterior draw is a DAG, so the two directions are
        exclusive and the sum is the probability that the two latents are adjacent.
    """
    if "edge_class" not in edges.columns or edges.index.nlevels != 2:
        raise ValueError("edges: expected a DataFrame indexed by (parent, child) with an 'edge_class' column; "
                         f"found columns {list(edges.columns)} and {edges.index.nlevels} index level(s)")
    pairs: dict[frozenset, int] = {}
    first = []
    group = np.empty(len(edges), dtype=int)
    for row, (parent, child) in enumerate(edges.index):
        key = frozenset((parent, child))
        if key not in pairs:
            pairs[key] = len(first)
            first.append((parent, child))
        group[row] = pairs[key]
    summed = edges.drop(columns="edge_class").groupby(group, sort=True).sum()
    summed.index = pd.MultiIndex.from_tuples(first, names=["latent_a", "latent_b"])
    summed.insert(0, "edge_class", edges["edge_class"].groupby(group, sort=True).first().to_numpy())
    return summed


def _progress(total: int, show: bool, desc: str):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="fit")


# ---------------------------------------------------------------------------- leave one out
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

    def _table(self, directed: bool) -> pd.DataFrame:
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
        table = self._table(directed)
        return [tuple(i) for i in table.index[table["verdict"] == "stable"]]

    def dependent_edges(self, directed: bool = True) -> dict[tuple[str, str], str]:
        """Identified edges that rest on one measurement -> the measurement's name.

        Parameters
        ----------
        directed
            ``True``: edges ``(parent, child)``; ``False``: pairs of latents, whichever
            the direction (:attr:`adjacency_stability`).
        """
        table = self._table(directed)
        rows = table[table["rests_on"] != ""]
        return {tuple(i): r for i, r in zip(rows.index, rows["rests_on"])}

    def plot(self) -> Figure:
        """Heat maps of ``P(edge)`` (identified edges, then undecided) x variant, and the latents' agreement.

        Returns
        -------
        matplotlib.figure.Figure
            Three panels (not shown; save it with ``fig.savefig``).
        """
        variants = list(self.variants.index)
        fig, ax = _edge_heatmaps(self.edges, self.undecided, variants, "variant",
                                 (self.stability_frame(0), self.stability_frame(1)))
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


def _edge_heatmaps(identified, undecided, columns: list, what: str, row_notes=(None, None)):
    """A figure with heat maps of ``P(edge)`` x ``columns`` (identified edges, then undecided) and
    an empty third panel below them; returns ``(figure, third axes)``."""
    n_id, n_un = len(identified), len(undecided)
    fig = Figure(figsize=(3.0 + 0.8 * len(columns), 4.0 + 0.28 * (n_id + n_un)), layout="constrained")
    grid = fig.add_gridspec(3, 1, height_ratios=[max(n_id, 1), max(n_un, 1), 6])
    panels = ((identified, "identified (cross-modal) edges"), (undecided, "undecided edges (follow the prior)"))
    for row, (frame, title) in enumerate(panels):
        _heatmap(fig.add_subplot(grid[row]), frame[columns], f"P(edge) per {what}, {title}", row_notes[row])
    return fig, fig.add_subplot(grid[2])


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


# ---------------------------------------------------------------------------- prior sweep
@dataclass(frozen=True, eq=False)
class PriorSensitivity:
    """What :func:`prior_sweep` found.

    Attributes
    ----------
    settings
        ``DataFrame`` indexed by setting label: ``edge_prior``, ``sparsity`` (as given;
        ``"bic"`` is the model's default), ``penalty`` (the L1 weight it gives,
        ``lambda``), ``seconds``, ``train_elbo``, ``validation_elbo`` (per entity, at each
        chain's kept epoch, mean over chains), ``expected_identified`` and
        ``expected_undecided`` (sums of ``P(edge)`` over each class), and
        ``latent_agreement`` (mean matched ``|Spearman|`` with the reference fit). The ELBO
        contains the prior's own terms, so a setting's ELBO moves with the prior as
        well as with the fit; the held-out ELBO is the one to compare.
    identified
        ``DataFrame``: index ``(parent, child)`` of the identified edges, ``edge_class``,
        then ``P(edge)`` per setting (columns = setting labels), in the reference fit's
        latent labels.
    undecided
        The same for the undecided edges, which are expected to follow the prior.
    reference
        Label of the setting every fit's latents were matched to.
    """

    settings: pd.DataFrame
    identified: pd.DataFrame
    undecided: pd.DataFrame
    reference: str

    def adjacencies(self, which: str = "identified") -> pd.DataFrame:
        """``P`` that two latents are adjacent, either direction, per setting (:func:`adjacency_frame`).

        Parameters
        ----------
        which
            ``"identified"`` or ``"undecided"``: which edges to collapse.

        Returns
        -------
        pandas.DataFrame
            One row per pair ``(latent_a, latent_b)``: ``edge_class``, then one column per
            setting.
        """
        if which not in ("identified", "undecided"):
            raise ValueError(f"which: expected 'identified' or 'undecided'; found {which!r}")
        return adjacency_frame(self.identified if which == "identified" else self.undecided)

    def plot(self) -> Figure:
        """Heat maps of ``P(edge)`` x setting (identified, then undecided) and the ELBOs per setting.

        Returns
        -------
        matplotlib.figure.Figure
            Three panels (not shown; save it with ``fig.savefig``).
        """
        labels = list(self.settings.index)
        fig, ax = _edge_heatmaps(self.identified, self.undecided, labels, "setting")
        xs = np.arange(len(labels))
        for column, marker in (("train_elbo", "o"), ("validation_elbo", "s")):
            ax.plot(xs, self.settings[column].astype(float), marker=marker, label=column.replace("_", " "))
        ax.set_xticks(xs, labels, rotation=30, ha="right")
        ax.set_ylabel("ELBO per entity")
        ax.set_title("ELBO per setting (held-out: the validation split)")
        ax.legend(fontsize=8)
        fig.suptitle("Prior sensitivity: edge prior and sparsity weight")
        return fig


def _setting_label(edge_prior, sparsity) -> str:
    return f"p0={edge_prior:g}, lambda={sparsity if isinstance(sparsity, str) else format(sparsity, 'g')}"


def _check_grid(values, name: str, check) -> tuple:
    if isinstance(values, (str, numbers.Real)):
        values = (values,)
    values = tuple(values)
    if not values:
        raise ValueError(f"{name}: expected at least one value; found none")
    for v in values:
        check(v)
    return values


def _check_edge_prior(v) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v < 1:
        raise ValueError(f"edge_prior: expected numbers in (0, 1); found {v!r}")


def _check_sparsity(v) -> None:
    if v == "bic":
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
        raise ValueError(f"sparsity: expected finite numbers >= 0 or 'bic'; found {v!r}")


def prior_sweep(
    px,
    data: MultiModalData,
    *,
    edge_prior: Sequence[float] | float | None = (0.01, 0.1, 0.5),
    sparsity: Sequence[float | str] | float | str | None = (0.1, 1.0, 10.0, 100.0),
    grid: str = "separate",
    fit_options: FitOptions | Mapping | None = None,
    seed: int | None = None,
    progress: bool | None = None,
) -> PriorSensitivity:
    """Refit over a grid of edge-prior and sparsity settings.

    Parameters
    ----------
    px
        A :class:`~pyro_personax.PersonaX` whose layout, classes and options every refit
        uses (``edge_prior`` replaced per setting). When it is fitted, its latents are
        the reference every setting's latents are matched to; otherwise the first
        setting's fit is.
    data
        The data (``N`` entities).
    edge_prior
        Prior probability of a free edge (``ModelOptions.edge_prior``) per setting;
        ``None``: ``px``'s only.
    sparsity
        Weight of the L1 edge factor (``FitOptions.sparsity``: numbers ``>= 0`` or
        ``"bic"``) per setting; ``None``: ``fit_options``' only.
    grid
        ``"separate"``: each edge prior at the fit options' sparsity, then each sparsity
        at ``px``'s edge prior (``len(edge_prior) + len(sparsity)`` fits, each axis
        swept on its own); ``"product"``: every pair.
    fit_options
        :class:`~pyro_personax.inference.FitOptions` (or a mapping) of every refit.
    seed
        Seed of every refit (overrides ``fit_options.seed``).
    progress
        Show progress; ``None``: ``fit_options.progress``.

    Returns
    -------
    PriorSensitivity
        ``P(edge)`` per setting for identified and undecided edges, and the ELBOs.

    Examples
    --------
    >>> from pyro_personax import PersonaX
    >>> rng = np.random.default_rng(0)
    >>> data = MultiModalData({"face": rng.normal(size=(40, 1, 3)), "text": rng.normal(size=(40, 2, 3))})
    >>> px = PersonaX(data, latent_dims={"face": 1, "text": 1}, mechanism="linear")
    >>> fit = {"num_epochs": 1, "num_chains": 1, "device": "cpu", "refine_graph": False}
    >>> sweep = prior_sweep(px, data, edge_prior=[0.1], sparsity=[0.0, 10.0], fit_options=fit, progress=False)
    >>> list(sweep.settings.index)
    ['p0=0.1, lambda=bic', 'p0=0.2, lambda=0', 'p0=0.2, lambda=10']
    """
    px = _check_px(px)
    if not isinstance(data, MultiModalData):
        raise TypeError(f"data: expected a MultiModalData; found {type(data).__name__}")
    options = _fit_options(fit_options, seed, progress)
    base_sparsity = "bic" if options.sparsity is None else options.sparsity
    priors = (px.options.edge_prior,)
    if edge_prior is not None:
        priors = _check_grid(edge_prior, "edge_prior", _check_edge_prior)
    sparsities = (base_sparsity,) if sparsity is None else _check_grid(sparsity, "sparsity", _check_sparsity)
    if grid == "product":
        pairs = [(p, s) for p in priors for s in sparsities]
    elif grid == "separate":
        pairs = [(p, base_sparsity) for p in priors] + [(px.options.edge_prior, s) for s in sparsities]
    else:
        raise ValueError(f"grid: expected 'separate' or 'product'; found {grid!r}")
    pairs = list(dict.fromkeys(pairs))  # a setting on both axes is fitted once
    bar = _progress(len(pairs), options.progress, "prior sweep")
    reference = _Reference(px, data) if px.chains is not None else None
    reference_label = _REFERENCE if reference is not None else _setting_label(*pairs[0])
    rows, probs = {}, {}
    try:
        for p0, lam in pairs:
            label = _setting_label(p0, lam)
            fitted = _clone(px, edge_prior=float(p0))
            seconds, train, valid = _fit(fitted, data, replace(options, sparsity=lam))
            if reference is None:
                reference = _Reference(fitted, data)
            P, corr = reference.compare(fitted, data)
            probs[label] = P
            penalty = fitted.model(0).edge_penalty(lam, data.num_entities)
            rows[label] = {"edge_prior": float(p0), "sparsity": lam, "penalty": penalty, "seconds": seconds,
                           "train_elbo": train, "validation_elbo": valid,
                           "expected_identified": float(P[px.layout.identified_mask()].sum()),
                           "expected_undecided": float(P[~px.layout.identified_mask()].sum()),
                           "latent_agreement": float(corr.mean())}
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return PriorSensitivity(
        settings=pd.DataFrame(rows).T.rename_axis("setting"),
        identified=_edge_frame(px.layout, probs, "identified"),
        undecided=_edge_frame(px.layout, probs, "undecided"),
        reference=reference_label,
    )


# ---------------------------------------------------------------------------- figures and page
def _heatmap(ax, frame: pd.DataFrame, title: str, verdicts: pd.Series | None = None) -> None:
    """``P(edge)`` heat map: rows = edges ``parent -> child``, columns = fits."""
    values = frame.to_numpy(dtype=float)
    rows = [f"{p} -> {c}" for p, c in frame.index]
    if verdicts is not None:
        rows = [f"{r}  [{v}]" for r, v in zip(rows, verdicts.reindex(frame.index))]
    if values.size == 0:
        ax.text(0.5, 0.5, "no edges of this class", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
        return
    image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xticks(range(values.shape[1]), list(frame.columns), rotation=30, ha="right", fontsize=7)
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="P(edge)")


def _stability_summary(m: MeasurementSensitivity, directed: bool) -> str:
    """One sentence on the stable and the measurement-dependent identified edges (or links)."""
    what, arrow = ("identified edges", " -> ") if directed else ("identified links (either direction)", " - ")
    table = m.stability if directed else m.adjacency_stability
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
