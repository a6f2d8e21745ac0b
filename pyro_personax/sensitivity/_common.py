"""Helpers of the sensitivity analyses: masking measurements, refits matched to a reference, edge frames, heat maps."""

from __future__ import annotations

import copy
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields, replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.facade import PersonaX
from pyro_personax.inference.alignment import align_chains
from pyro_personax.inference.options import FitOptions


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



def _edge_heatmaps(identified, undecided, columns: list, what: str, row_notes=(None, None, None)):
    """A figure with heat maps of ``P`` x ``columns`` (identified edges, the same as links in
    either direction, undecided edges) and an empty fourth panel below them; ``row_notes``
    are the rows' verdicts of each heat map (or ``None``). Returns ``(figure, fourth axes)``."""
    links = adjacency_frame(identified)
    frames = (identified, links, undecided)
    fig = Figure(figsize=(3.0 + 0.8 * len(columns), 4.5 + 0.28 * sum(map(len, frames))), layout="constrained")
    grid = fig.add_gridspec(4, 1, height_ratios=[max(len(f), 1) for f in frames] + [6])
    titles = (f"P(edge) per {what}, identified (cross-modal) edges",
              f"P(link) per {what}, the same pairs in either direction: P(a -> b) + P(b -> a)",
              f"P(edge) per {what}, undecided edges (follow the prior)")
    for row, (frame, title) in enumerate(zip(frames, titles)):
        _heatmap(fig.add_subplot(grid[row]), frame[columns], title, row_notes[row], links=row == 1)
    return fig, fig.add_subplot(grid[3])


def _heatmap(ax, frame: pd.DataFrame, title: str, verdicts: pd.Series | None = None, links: bool = False) -> None:
    """``P`` heat map: rows = edges ``parent -> child`` (``links``: pairs ``a - b``), columns = fits."""
    values = frame.to_numpy(dtype=float)
    arrow = " - " if links else " -> "
    rows = [f"{p}{arrow}{c}" for p, c in frame.index]
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
    ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="P(link)" if links else "P(edge)")
