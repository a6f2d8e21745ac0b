"""Figures of the edge report (matplotlib only; inputs are numpy arrays and DataFrames).

Every function draws one figure, saves it as PNG at ``path``, closes it and returns
the path. Adjacencies follow :mod:`pyro_personax.graph` (``[i, j]`` = i -> j). Nothing
here imports ArviZ: the arrays come from :mod:`pyro_personax.inference.diagnostics`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pyro_personax.metrics import edge_calibration

__all__ = [
    "plot_edge_heatmap",
    "plot_graph",
    "plot_forest",
    "plot_elbo",
    "plot_ppc",
    "plot_calibration",
]

logger = logging.getLogger(__name__)

_DPI = 110


def _subplots(figsize, rows: int = 1, cols: int = 1, squeeze: bool = True):
    """A figure outside pyplot (no global state, no GUI backend, nothing to close)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def _save(fig, path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    logger.debug("wrote %s", path)
    return path


def _block_colours(blocks: Sequence[str]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10"]
    unique = list(dict.fromkeys(blocks))
    return {b: cmap(i % 10) for i, b in enumerate(unique)}


def _check_square(P, names: Sequence[str], what: str) -> np.ndarray:
    P = np.asarray(P, dtype=float)
    if P.shape != (len(names), len(names)):
        raise ValueError(f"{what}: expected shape ({len(names)}, {len(names)}); found {P.shape}")
    return P


def plot_edge_heatmap(probs, names: Sequence[str], blocks: Sequence[str], path, *, title: str = "") -> Path:
    """Heat map of posterior edge probabilities, rows = parents, columns = children.

    Parameters
    ----------
    probs
        ``(D, D)`` edge probabilities, ``[i, j]`` = P(i -> j).
    names, blocks
        ``D`` latent names and their block names (block borders are drawn).
    path
        PNG file to write.
    title
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    P = _check_square(probs, names, "probs")
    D = len(names)
    size = max(4.0, 0.45 * D + 2.0)
    fig, ax = _subplots((size + 1.0, size))
    im = ax.imshow(P, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(D), list(names), rotation=90)
    ax.set_yticks(range(D), list(names))
    ax.set_xlabel("child")
    ax.set_ylabel("parent")
    bounds = [i + 0.5 for i in range(D - 1) if blocks[i] != blocks[i + 1]]
    for b in bounds:
        ax.axhline(b, color="white", lw=1.5)
        ax.axvline(b, color="white", lw=1.5)
    if D <= 16:
        for i, j in zip(*np.nonzero(P >= 0.005)):
            ax.text(j, i, f"{P[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if P[i, j] > 0.6 else "white")
    fig.colorbar(im, ax=ax, label="P(edge parent -> child)")
    ax.set_title(title or "Posterior edge probabilities")
    return _save(fig, path)


def _circle_positions(names: Sequence[str]) -> dict[str, np.ndarray]:
    """Nodes on a circle in layout order, so blocks stay together (deterministic)."""
    D = len(names)
    angles = np.pi / 2 - 2 * np.pi * np.arange(D) / D
    return {n: np.array([np.cos(a), np.sin(a)]) for n, a in zip(names, angles)}


# Where an edge's probability may sit along its arc (fractions from parent to child), in order of preference,
# and the half-extents (data units, nodes on the unit circle of a 7-inch figure) of a label and of a node.
_LABEL_SPOTS = (0.5, 0.38, 0.62, 0.28, 0.72)
_LABEL_HALF = np.array([0.07, 0.035])
_NODE_RADIUS = 0.13


def _arc_point(start: np.ndarray, end: np.ndarray, rad: float, t: float) -> np.ndarray:
    """The point at ``t`` in ``[0, 1]`` of matplotlib's ``arc3`` curve from ``start`` to ``end`` ``(2,)``: a
    quadratic Bezier curve whose control point is the chord's midpoint moved by ``rad`` times ``(dy, -dx)``."""
    d = end - start
    control = 0.5 * (start + end) + rad * np.array([d[1], -d[0]])
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


def _label_spot(start, end, rad: float, placed: list, nodes: list) -> np.ndarray:
    """Where to write an edge's label ``(2,)``: the first of :data:`_LABEL_SPOTS` along its arc whose box
    overlaps no label ``placed`` before and no node, else the one farthest from them (labels of crossing edges
    would otherwise sit on one another where the arcs cross near the circle's centre)."""
    spots = [_arc_point(start, end, rad, t) for t in _LABEL_SPOTS]

    def clearance(x: np.ndarray) -> float:
        # data units, > 0 where the label's box misses every placed box and every node's disc
        gaps = [float(np.max(np.abs(x - y) - 2 * _LABEL_HALF)) for y in placed]
        gaps += [float(np.linalg.norm(x - n) - _NODE_RADIUS - _LABEL_HALF[0]) for n in nodes]
        return min(gaps, default=np.inf)

    scores = [clearance(x) for x in spots]
    free = [x for x, c in zip(spots, scores) if c > 0]
    return free[0] if free else spots[int(np.argmax(scores))]


def plot_graph(
    probs, names: Sequence[str], blocks: Sequence[str], path, *, threshold: float = 0.5,
    min_prob: float = 0.05, title: str = "",
) -> Path:
    """The latent graph with edge width and opacity by posterior probability.

    Edges with ``P > threshold`` are drawn solid and labelled; edges with
    ``min_prob <= P <= threshold`` dashed and thin. Nodes are coloured by block.

    Parameters
    ----------
    probs
        ``(D, D)`` edge probabilities.
    names, blocks
        ``D`` latent names and block names.
    path
        PNG file to write.
    threshold, min_prob
        Probability above which an edge is solid, and below which it is not drawn.
    title
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    P = _check_square(probs, names, "probs")
    names = [str(n) for n in names]
    colours = _block_colours(blocks)
    G = nx.DiGraph()
    G.add_nodes_from(names)
    pos = _circle_positions(names)
    fig, ax = _subplots((7, 7))
    nx.draw_networkx_nodes(G, pos, ax=ax, node_color=[colours[b] for b in blocks], node_size=900)
    nx.draw_networkx_labels(G, pos, ax=ax, font_size=8)
    ax.set_aspect("equal")  # the arcs below are drawn in display space: keep it proportional to data space
    rad, placed, nodes = 0.1, [], list(pos.values())
    for i, j in zip(*np.nonzero(P >= min_prob)):
        p = float(P[i, j])
        strong = p > threshold
        nx.draw_networkx_edges(
            G, pos, edgelist=[(names[i], names[j])], ax=ax, width=0.5 + 4.5 * p,
            alpha=0.35 + 0.65 * p, style="solid" if strong else "dashed", arrowsize=15,
            node_size=900, connectionstyle=f"arc3,rad={rad}",
        )
        if strong:
            spot = _label_spot(pos[names[i]], pos[names[j]], rad, placed, nodes)
            placed.append(spot)
            ax.text(spot[0], spot[1], f"{p:.2f}", fontsize=7, ha="center", va="center",
                    bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.5})
    handles = [Line2D([], [], marker="o", ls="", color=c, markersize=10, label=b) for b, c in colours.items()]
    handles.append(Line2D([], [], color="k", lw=3, label=f"P > {threshold:g} (width = P)"))
    if min_prob < threshold:
        handles.append(Line2D([], [], color="k", lw=1, ls="--", label=f"{min_prob:g} <= P <= {threshold:g}"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_axis_off()
    ax.set_title(title or "Latent causal graph (width = posterior edge probability)")
    return _save(fig, path)


def plot_forest(table: pd.DataFrame, path, *, max_edges: int = 30, title: str = "") -> Path:
    """Forest plot of edge probabilities: one row per edge, one marker per chain.

    Parameters
    ----------
    table
        Edge table with ``parent``, ``child``, ``p_edge`` and ``p_edge_chain_<c>``.
    path
        PNG file to write.
    max_edges
        Show the ``max_edges`` most probable edges.
    title
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    chain_cols = [c for c in table.columns if str(c).startswith("p_edge_chain_")]
    if "p_edge" not in table.columns or not chain_cols:
        raise ValueError("table: expected columns p_edge and p_edge_chain_<c>")
    top = table.sort_values("p_edge", ascending=False, kind="stable").head(max_edges).iloc[::-1]
    labels = [f"{p} -> {c}" for p, c in zip(top["parent"], top["child"])]
    y = np.arange(len(top))
    fig, ax = _subplots((7, max(2.5, 0.3 * len(top) + 1.2)))
    chains = top[chain_cols].to_numpy(dtype=float)
    ax.hlines(y, chains.min(axis=1), chains.max(axis=1), color="grey", lw=1)
    cmap = matplotlib.colormaps["tab10"]
    offsets = np.linspace(-0.2, 0.2, len(chain_cols)) if len(chain_cols) > 1 else [0.0]
    for k, col in enumerate(chain_cols):
        ax.plot(top[col], y + offsets[k], "o", ms=4, color=cmap(k % 10), label=col.replace("p_edge_", ""))
    ax.plot(top["p_edge"], y, "D", ms=6, color="black", label="pooled")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("P(edge)")
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title(title or "Edge probabilities across chains (independent restarts)")
    return _save(fig, path)


def plot_elbo(elbo, path, *, title: str = "") -> Path:
    """Training ELBO traces against the epoch, one line per chain (NaN padding is not drawn).

    Parameters
    ----------
    elbo
        ``(C, T)`` ELBO values, one per epoch (column 0 = the first epoch), NaN after
        the end of shorter traces.
    path
        PNG file to write.
    title
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    E = np.asarray(elbo, dtype=float)
    if E.ndim != 2:
        raise ValueError(f"elbo: expected shape (C, T); found {E.shape}")
    fig, ax = _subplots((7, 4))
    for c in range(E.shape[0]):
        ok = np.isfinite(E[c])
        ax.plot(np.nonzero(ok)[0], E[c, ok], lw=1, label=f"chain {c}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("ELBO")
    ax.legend(fontsize=8)
    ax.set_title(title or "ELBO per chain (independent restarts)")
    return _save(fig, path)


def plot_dependence_ppc(results, path) -> Path:
    """Posterior predictive check of the dependence between modalities, one panel per pair.

    Parameters
    ----------
    results
        ``(a, b) -> {"observed", "replicated", "p"}`` as returned by
        :func:`pyro_personax.inference.verdict.cross_modal_ppc`.
    path
        PNG file to write.

    Returns
    -------
    pathlib.Path
    """
    pairs = list(results)
    if not pairs:
        raise ValueError("results: expected at least one pair of modalities")
    cols = min(3, len(pairs))
    rows = int(np.ceil(len(pairs) / cols))
    fig, axes = _subplots((4.2 * cols, 3.1 * rows), rows, cols, squeeze=False)
    fig.subplots_adjust(wspace=0.35, hspace=0.5)
    for k in range(rows * cols):
        ax = axes.flat[k]
        if k >= len(pairs):
            ax.set_axis_off()
            continue
        (a, b), res = pairs[k], results[pairs[k]]
        ax.hist(np.asarray(res["replicated"], dtype=float), bins=20, color="tab:blue", alpha=0.6, label="replicated")
        ax.axvline(res["observed"], color="black", lw=2, label="observed")
        p = float(res["p"])
        ax.set_title(f"{a} vs {b}: two-sided p {2 * min(p, 1 - p):.2f}", fontsize=9)
        ax.set_xlabel("RMS cross-correlation of features")
        ax.set_ylabel("predictive draws")
        ax.legend(fontsize=7)
    fig.suptitle("Does the fitted model reproduce the dependence between modalities?", fontsize=10, y=1.03)
    return _save(fig, path)


def plot_ppc(observed, predictive, path, *, modality: str = "", max_features: int = 6,
             num_draws: int = 30, seed: int = 0) -> Path:
    """Posterior predictive check: observed vs replicated distribution per feature.

    For each of the first ``max_features`` features, the histogram of the observed
    values (all measurements and entities, missing = NaN dropped) is drawn over the
    densities of ``num_draws`` replicated data sets.

    Parameters
    ----------
    observed
        ``(N, K, d)`` observed values, NaN where missing.
    predictive
        ``(C, S, N, K, d)`` replicated values.
    path
        PNG file to write.
    modality
        Name for the title.
    max_features, num_draws
        How many features to show and how many replicated sets to overlay.
    seed
        Seed of the choice of replicated sets.

    Returns
    -------
    pathlib.Path
    """
    y = np.asarray(observed, dtype=float)
    x = np.asarray(predictive, dtype=float)
    if y.ndim != 3 or x.ndim != 5 or x.shape[2:] != y.shape:
        raise ValueError(f"observed/predictive: expected (N, K, d) and (C, S, N, K, d); found {y.shape}, {x.shape}")
    reps = x.reshape(-1, *y.shape)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(reps), size=min(num_draws, len(reps)), replace=False)
    F = min(max_features, y.shape[2])
    cols = min(3, F)
    rows = int(np.ceil(F / cols))
    fig, axes = _subplots((3.6 * cols, 2.8 * rows), rows, cols, squeeze=False)
    for f in range(rows * cols):
        ax = axes.flat[f]
        if f >= F:
            ax.set_axis_off()
            continue
        obs = y[:, :, f][np.isfinite(y[:, :, f])]
        rep_f = reps[pick][..., f][:, np.isfinite(y[:, :, f])]
        both = np.concatenate([obs, rep_f.ravel()])
        bins = _bins(both)
        for r in rep_f:
            ax.hist(r, bins=bins, density=True, histtype="step", color="tab:blue", alpha=0.15, lw=1)
        ax.hist(obs, bins=bins, density=True, histtype="step", color="black", lw=2)
        ax.set_title(f"feature {f}", fontsize=9)
    handles = [Line2D([], [], color="black", lw=2, label="observed"),
               Line2D([], [], color="tab:blue", alpha=0.5, label="replicated")]
    fig.legend(handles=handles, loc="upper right", fontsize=8)
    fig.suptitle(f"Posterior predictive check: {modality}" if modality else "Posterior predictive check")
    fig.tight_layout()
    return _save(fig, path)


def _bins(values: np.ndarray):
    """Bins centred on the values of discrete data (<= 10 levels), else 20 equal bins."""
    levels = np.unique(values)
    if len(levels) <= 10:
        step = np.min(np.diff(levels)) if len(levels) > 1 else 1.0
        return np.concatenate([levels - step / 2, [levels[-1] + step / 2]])
    return np.histogram_bin_edges(values, bins=20)


def plot_calibration(probs, truth, path, *, mask=None, n_bins: int = 10, title: str = "") -> Path:
    """Reliability curve of edge probabilities against the true graph (with ECE).

    Parameters
    ----------
    probs, truth
        Edge probabilities and 0/1 true adjacency, both ``(D, D)``.
    mask
        Boolean ``(D, D)`` of the candidate edges scored (e.g. the layout's allowed
        edges); the diagonal is never scored (see
        :func:`pyro_personax.metrics.edge_calibration`).
    path
        PNG file to write.
    n_bins
        Number of probability bins.
    title
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    table, ece = edge_calibration(probs, truth, n_bins, mask=mask)
    table = table.dropna(subset=["mean_prob"])
    fig, ax = _subplots((5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.plot(table["mean_prob"], table["frac_true"], "o-", color="tab:red", label=f"ECE = {ece:.3f}")
    for _, row in table.iterrows():
        ax.annotate(str(int(row["count"])), (row["mean_prob"], row["frac_true"]), fontsize=7,
                    xytext=(4, -10), textcoords="offset points")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("posterior P(edge) (bin mean)")
    ax.set_ylabel("fraction of true edges")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or "Edge-probability calibration")
    return _save(fig, path)
