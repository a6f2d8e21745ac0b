"""Figures of the Level I battery: p-value heat maps and a significance summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["plot_pvalue_heatmap", "plot_significance_summary", "plot_conditional_graph", "trait_groups_from_prefix"]


def trait_groups_from_prefix(traits: Sequence[str], sep: str = "_") -> dict[str, list[str]]:
    """Group per-LLM trait columns by the prefix before the last ``sep``.

    Parameters
    ----------
    traits
        Trait column names, e.g. ``["gpt_o", "gpt_c", "gemini_o", "gemini_c"]``.
    sep
        Separator between the LLM name and the trait.

    Returns
    -------
    dict
        ``{prefix: [trait, ...]}`` in first-seen order; names without ``sep`` form the
        group ``""``.

    Examples
    --------
    >>> trait_groups_from_prefix(["gpt_o", "gpt_c", "llama_o"])
    {'gpt': ['gpt_o', 'gpt_c'], 'llama': ['llama_o']}
    """
    groups: dict[str, list[str]] = {}
    for t in traits:
        prefix = t.rsplit(sep, 1)[0] if sep in t else ""
        groups.setdefault(prefix, []).append(t)
    return groups


def _check_table(table: pd.DataFrame, needed: Sequence[str]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table: expected the DataFrame of test_battery, found {type(table).__name__}")
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"table: expected columns {list(needed)}, missing {missing}")


def _trait_order(table: pd.DataFrame, trait_groups: Mapping[str, Sequence[str]] | None):
    traits = list(dict.fromkeys(table["trait"]))
    if trait_groups is None:
        return traits, []
    order = [t for group in trait_groups.values() for t in group]
    unknown = sorted(set(order) - set(traits))
    if unknown:
        raise ValueError(f"trait_groups: traits {unknown} are not in the table")
    order += [t for t in traits if t not in order]
    spans, pos = [], 0
    for name, group in trait_groups.items():
        spans.append((name, pos, pos + len(group)))
        pos += len(group)
    return order, spans


def _draw_panel(ax, sub: pd.DataFrame, traits, features, spans, alpha, value):
    grid = sub.pivot_table(index="feature", columns="trait", values=value, aggfunc="first", dropna=False)
    grid = grid.reindex(index=features, columns=traits)
    flags = sub.pivot_table(index="feature", columns="trait", values="flag", aggfunc="first")
    flags = flags.reindex(index=features, columns=traits)
    masked = np.ma.masked_invalid(grid.to_numpy(dtype=float))
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis_r"].with_extremes(bad="lightgrey")
    image = ax.imshow(masked, vmin=0.0, vmax=1.0, cmap=cmap, aspect="auto")
    for i in range(len(features)):
        for j in range(len(traits)):
            v = masked[i, j]
            text = "n/a" if np.ma.is_masked(v) else ("*" if flags.iat[i, j] else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black")
    ax.set_xticks(range(len(traits)), traits, rotation=90, fontsize=7)
    ax.set_yticks(range(len(features)), features, fontsize=7)
    for name, lo, hi in spans:
        if lo > 0:
            ax.axvline(lo - 0.5, color="white", linewidth=2)
        ax.text((lo + hi - 1) / 2, -0.55, name, ha="center", va="bottom", fontsize=7, style="italic")
    return image


def plot_pvalue_heatmap(
    table: pd.DataFrame,
    tests: Sequence[str] | None = None,
    value: str = "p_value",
    alpha: float | None = None,
    trait_groups: Mapping[str, Sequence[str]] | None = None,
    figsize: tuple[float, float] | None = None,
):
    """The paper's p-value heat map, one panel per test.

    Rows are features, columns traits (ordered and labelled by ``trait_groups``, e.g.
    one group per LLM). Cells are coloured by ``value``; ``*`` marks ``q_value < alpha``
    (the table's ``dependent`` column when ``alpha`` is ``None``); grey ``n/a`` cells
    are tests that did not apply or failed.

    Parameters
    ----------
    table
        Output of :func:`~pyro_personax.independence.test_battery`.
    tests
        Tests to draw (default: all in the table, in order).
    value
        ``"p_value"`` or ``"q_value"``.
    alpha
        Level of the ``*`` marks on q-values; ``None`` uses ``dependent``.
    trait_groups
        ``{group: [trait, ...]}``, see :func:`trait_groups_from_prefix`.
    figsize
        Figure size in inches (default from the table's shape).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    _check_table(table, ("test", "trait", "feature", "p_value", "q_value", "dependent"))
    if value not in ("p_value", "q_value"):
        raise ValueError(f"value: expected 'p_value' or 'q_value', found {value!r}")
    tests = list(dict.fromkeys(table["test"])) if tests is None else list(tests)
    unknown = sorted(set(tests) - set(table["test"]))
    if unknown:
        raise ValueError(f"tests: {unknown} are not in the table")
    traits, spans = _trait_order(table, trait_groups)
    features = list(dict.fromkeys(table["feature"]))
    data = table.assign(flag=(table["q_value"] < alpha) if alpha is not None
                        else table["dependent"].fillna(False).astype(bool))
    if figsize is None:
        figsize = (1.2 + 0.35 * len(traits) * len(tests) + 1.5, 1.5 + 0.28 * len(features))
    fig, axes = plt.subplots(1, len(tests), figsize=figsize, squeeze=False, constrained_layout=True)
    image = None
    for ax, test in zip(axes[0], tests):
        image = _draw_panel(ax, data[data["test"] == test], traits, features, spans, alpha, value)
        ax.set_title(test, pad=20 if spans else 6)
    for ax in axes[0][1:]:
        ax.set_yticklabels([])
    fig.colorbar(image, ax=axes[0].tolist(), label=value.replace("_", "-"), shrink=0.8)
    return fig


def plot_significance_summary(table: pd.DataFrame, alpha: float = 0.05, figsize=(6.0, 3.5)):
    """Number of significant pairs per test, raw p-values against BH q-values.

    Parameters
    ----------
    table
        Output of :func:`~pyro_personax.independence.test_battery`.
    alpha
        Significance level for both bars.
    figsize
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Grouped bars per test: pairs with ``p < alpha``, pairs with ``q < alpha``; the
        label above each test gives the number of pairs that were tested.
    """
    import matplotlib.pyplot as plt

    _check_table(table, ("test", "p_value", "q_value", "status"))
    tests = list(dict.fromkeys(table["test"]))
    grouped = table.groupby("test", sort=False)
    raw = grouped["p_value"].apply(lambda p: int((p < alpha).sum())).reindex(tests)
    bh = grouped["q_value"].apply(lambda q: int((q < alpha).sum())).reindex(tests)
    tested = grouped["status"].apply(lambda s: int((s == "ok").sum())).reindex(tests)
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    pos = np.arange(len(tests))
    ax.bar(pos - 0.2, raw.to_numpy(), width=0.4, label=f"p < {alpha}")
    ax.bar(pos + 0.2, bh.to_numpy(), width=0.4, label=f"BH q < {alpha}")
    top = max(int(raw.max()), 1)
    for i in range(len(tests)):
        ax.text(i, raw.iloc[i] + 0.02 * top, f"of {tested.iloc[i]}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(pos, tests)
    ax.set_ylabel("significant pairs")
    ax.set_ylim(0, top * 1.15 + 1)
    ax.legend(frameon=False)
    return fig


def plot_conditional_graph(result, traits: Sequence[str] = (), figsize=(6.5, 5.0)):
    """The graph of :func:`~pyro_personax.independence.conditional_graph`: traits on the
    right, features on the left, arcs as found and undirected (or partially directed) edges
    as plain lines labelled with causal-learn's mark.

    Parameters
    ----------
    result
        A :class:`~pyro_personax.independence.ConditionalResult`.
    traits
        Columns drawn as traits (the others are features).
    figsize
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    import networkx as nx

    graph = result.graph
    traits = [t for t in traits if t in graph]
    features = [n for n in graph if n not in traits]
    pos = {}
    for x, column in ((0.0, features), (1.0, traits)):
        for i, name in enumerate(column):
            pos[name] = (x, -i + (len(column) - 1) / 2)
    arcs = [(a, b) for a, b in graph.edges if not graph.has_edge(b, a)]
    lines = [(a, b) for a, b in graph.edges if graph.has_edge(b, a) and a < b]
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    nx.draw_networkx_nodes(graph, pos, nodelist=features, node_color="#dddddd", node_size=1600, ax=ax)
    nx.draw_networkx_nodes(graph, pos, nodelist=traits, node_color="#9ecae1", node_size=1600, ax=ax)
    nx.draw_networkx_labels(graph, pos, font_size=7, ax=ax)
    nx.draw_networkx_edges(graph, pos, edgelist=arcs, arrows=True, arrowsize=14, node_size=1600,
                           connectionstyle="arc3,rad=0.1", ax=ax)
    nx.draw_networkx_edges(graph, pos, edgelist=lines, arrows=False, style="dashed", ax=ax)
    nx.draw_networkx_edge_labels(graph, pos, edge_labels={(a, b): graph.edges[a, b]["mark"] for a, b in lines},
                                 font_size=9, ax=ax)
    ax.set_title(f"{result.method.upper()} ({result.test}, alpha {result.alpha:g}, n = {result.n}): "
                 "arcs solid, other marks dashed", fontsize=9)
    ax.axis("off")
    return fig

