"""The edge-probability report: a folder with tables, figures, Markdown and HTML.

:func:`edge_report` reads the edge posterior from an InferenceData (built by
:func:`pyro_personax.inference.diagnostics.build_inference_data`) or from any fitted
object with ``to_inference_data()``, and writes::

    out_dir/
        report.md, report.html     verdict (inference.verdict), summary, top edges, figures
                                   (inference.report_pages)
        edges.csv                  tidy edge table (diagnostics.edge_summary), with the
                                   orientation of each thresholded edge (metrics.orientations)
        adjacency.csv              pooled P(edge), rows = parents, columns = children
        dag_adjacency.csv          thresholded graph, acyclic by construction
        block_graph.csv            P(at least one edge from block A to block B), blocks x blocks
        latent_block_graph.csv     P(latent i has an edge with a latent of block B), latents x blocks
        graph.graphml              networkx graph of that DAG, probabilities as attributes
        graph_dowhy.gml            the same DAG as a GML string for DoWhy
        heatmap.png, graph.png, forest.png
        elbo.png                   when ELBO traces are stored
        ppc_dependence.png         replicated against observed dependence between modalities
        ppc_<modality>.png         per modality with posterior predictive draws
        calibration.png            when a true adjacency is given

Chains are independent restarts; R-hat above about 1.05 flags restarts that disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from pyro_personax.graph import to_dag
from pyro_personax.identifiability import (
    UNDECIDED_REASON,
    block_probabilities,
    latent_block_probabilities,
    measurement_map_note,
    select_edges,
    unpinned_latents,
    unpinned_warning,
)
from pyro_personax.inference import diagnostics, exports, plots, verdict
from pyro_personax.inference.basis import search_gain
from pyro_personax.inference.report_pages import write_html, write_markdown
from pyro_personax.metrics import COMPELLED, REVERSIBLE, edge_calibration, mcc, orientations

__all__ = ["edge_report", "cyclic_fraction", "match_truth", "TruthMatch", "REPORT_FILES"]

logger = logging.getLogger(__name__)

REPORT_FILES = (
    "report.md", "report.html", "edges.csv", "adjacency.csv", "dag_adjacency.csv", "block_graph.csv",
    "latent_block_graph.csv", "graph.graphml", "graph_dowhy.gml", "heatmap.png", "graph.png", "graph_undecided.png",
    "forest.png",
)
_TABLE_COLUMNS = ("parent", "child", "edge_class", "p_edge", "orientation", "strength_mean", "strength_hdi_low",
                  "strength_hdi_high", "r_hat", "ess_bulk")


def _as_idata(model_or_idata):
    if diagnostics.is_inference_data(model_or_idata):
        return model_or_idata
    if hasattr(model_or_idata, "to_inference_data"):
        idata = model_or_idata.to_inference_data()
        if not diagnostics.is_inference_data(idata):
            raise TypeError(
                f"model_or_idata.to_inference_data(): expected an InferenceData; found {type(idata).__name__}"
            )
        return idata
    raise TypeError(
        "model_or_idata: expected an arviz.InferenceData or an object with .to_inference_data(); "
        f"found {type(model_or_idata).__name__}"
    )


def _truth_matrix(truth, names: list[str]) -> np.ndarray:
    if isinstance(truth, pd.DataFrame):
        missing = [n for n in names if n not in truth.index or n not in truth.columns]
        if missing:
            raise ValueError(f"truth_adjacency: expected rows and columns named {names}; missing {missing}")
        truth = truth.loc[names, names].to_numpy()
    T = np.asarray(truth, dtype=float)
    if T.shape != (len(names), len(names)):
        raise ValueError(f"truth_adjacency: expected shape ({len(names)}, {len(names)}); found {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError("truth_adjacency: expected finite entries (non-zero = edge); found NaN or inf")
    return (T != 0).astype(int)


def cyclic_fraction(edges: np.ndarray) -> np.ndarray:
    """Fraction of edge draws with a directed cycle, per chain.

    Parameters
    ----------
    edges
        0/1 draws ``(C, S, D, D)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(C,)``.
    """
    A = np.asarray(edges).astype(bool)
    D = A.shape[-1]
    reach = A.copy()
    for _ in range(int(np.ceil(np.log2(max(D, 2)))) + 1):  # transitive closure by squaring
        reach = reach | (np.matmul(reach.astype(np.int32), reach.astype(np.int32)) > 0)
    cyclic = reach.diagonal(axis1=-2, axis2=-1).any(-1)
    return cyclic.mean(axis=1)


def _prepare_dir(out_dir, overwrite: bool) -> Path:
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"out_dir: {out} exists; pass overwrite=True to replace the report files in it")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out_dir: {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _figures(idata, table, P, layout, out: Path, threshold: float, truth, dependence) -> dict:
    names, blocks = list(layout.names), list(layout.block_of)
    figs = {
        "Edge probabilities": plots.plot_edge_heatmap(P, names, blocks, out / "heatmap.png"),
        "Graph of the identified (cross-modal) edges": plots.plot_graph(
            _kept(select_edges(layout, P, "identified"), threshold),
            names,
            blocks,
            out / "graph.png",
            threshold=threshold,
            min_prob=threshold,
            title=f"identified (cross-modal) edges with P > {threshold:g}, made acyclic",
        ),
        "Undecided edges (inside a block or from the shared block)": plots.plot_graph(
            _kept(select_edges(layout, P, "undecided"), threshold),
            names,
            blocks,
            out / "graph_undecided.png",
            threshold=threshold,
            min_prob=threshold,
            title=f"undecided edges with P > {threshold:g}: not decided by the data",
        ),
        "Edges across chains": plots.plot_forest(_candidate_rows(table), out / "forest.png"),
    }
    elbo = diagnostics.elbo_traces(idata)
    if elbo is not None:
        figs["ELBO traces"] = plots.plot_elbo(elbo, out / "elbo.png")
    if dependence:
        figs["Posterior predictive check: dependence between modalities"] = plots.plot_dependence_ppc(
            dependence, out / "ppc_dependence.png"
        )
    for mod, (obs, rep) in diagnostics.predictive_pairs(idata).items():
        figs[f"Posterior predictive check: {mod}"] = plots.plot_ppc(obs, rep, out / f"ppc_{mod}.png", modality=mod)
    if truth is not None:
        identified = layout.allowed_mask() & layout.identified_mask()
        if identified.any():
            figs["Calibration of the identified edges against the true graph"] = plots.plot_calibration(
                P, truth, out / "calibration.png", mask=identified, title="identified (cross-modal) edges"
            )
    return figs


def _with_orientation(table: pd.DataFrame, kinds: np.ndarray, layout) -> pd.DataFrame:
    """``table`` with an ``orientation`` column: ``kinds`` (:func:`~pyro_personax.metrics.orientations`
    of the thresholded graph, ``""`` off it) per row."""
    idx = {name: i for i, name in enumerate(layout.names)}
    col = [kinds[idx[p], idx[c]] for p, c in zip(table["parent"], table["child"])]
    return table.assign(orientation=col)


def _kept(P: np.ndarray, threshold: float) -> np.ndarray:
    """``P`` on the edges of the thresholded acyclic graph (:func:`~pyro_personax.graph.to_dag`), 0 elsewhere."""
    return np.where(to_dag(P, threshold) == 1, P, 0.0)


def _candidate_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of allowed edges that some chain ever drew (all rows if none was drawn)."""
    chains = [c for c in table.columns if str(c).startswith("p_edge_chain_")]
    keep = table["allowed"].to_numpy(bool) & (table[chains].to_numpy(float).max(axis=1) > 0)
    return table[keep] if keep.any() else table


@dataclass(frozen=True)
class TruthMatch:
    """A true graph put in the learned latents' order by matching the latents.

    Attributes
    ----------
    adjacency
        ``(D, D)`` 0/1 true graph in the learned labels (``[i, j]`` = learned i -> learned j).
    mcc
        Mean absolute Spearman correlation of the matched pairs.
    permutation
        Learned latent ``permutation[j]`` plays true latent ``j``.
    num_entities
        Entities the matching used.
    """

    adjacency: np.ndarray
    mcc: float
    permutation: np.ndarray
    num_entities: int


def match_truth(idata, true_latents, true_adjacency, *, true_blocks=None, true_entity_ids=None) -> TruthMatch:
    """Match the learned latents to the true ones and put the true graph in the learned order.

    The learned latents are chain 0's posterior means stored in ``idata.latent_means``
    (an entity subsample); the true latents are indexed by those entities' rows. The
    matching is the one of :func:`pyro_personax.metrics.mcc` (Hungarian matching of
    absolute Spearman correlations), within blocks when ``true_blocks`` is given (the
    learned blocks come from the layout).

    Parameters
    ----------
    idata
        InferenceData with a ``latent_means`` group whose ``entity`` coordinate holds row
        indices into ``true_latents``.
    true_latents
        ``(N, D)`` true latents of every row of the data.
    true_adjacency
        ``(D, D)`` 0/1 true graph in the true latents' order.
    true_blocks
        Optional block name of every true latent.
    true_entity_ids
        Optional ids of the rows of ``true_latents`` (``N``), when the InferenceData's
        entities are named by ids (data with ``entity_ids``) rather than row indices.

    Returns
    -------
    TruthMatch
    """
    if "latent_means" not in idata.groups():
        raise ValueError(
            "idata: matching latents to the truth needs the latent_means group (build the InferenceData with data)"
        )
    layout = diagnostics.layout_of(idata)
    z = idata.latent_means["z_mean"]
    learned = z.isel(chain=0).transpose("entity", "latent").values
    true_latents = np.asarray(true_latents, dtype=float)
    D = layout.latent_dim
    if true_latents.ndim != 2 or true_latents.shape[1] != D:
        raise ValueError(f"true_latents: expected shape (N, {D}); found {true_latents.shape}")
    rows = np.asarray(z["entity"].values)
    if true_entity_ids is not None:
        ids = [str(i) for i in true_entity_ids]
        if len(ids) != len(true_latents):
            raise ValueError(f"true_entity_ids: expected {len(true_latents)} ids; found {len(ids)}")
        position = {entity: k for k, entity in enumerate(ids)}
        unknown = [str(e) for e in rows if str(e) not in position]
        if unknown:
            raise ValueError(f"true_entity_ids: the InferenceData's entities {unknown[:5]} are not among them")
        rows = np.array([position[str(e)] for e in rows])
    elif not np.issubdtype(rows.dtype, np.integer) or rows.min() < 0 or rows.max() >= len(true_latents):
        raise ValueError(
            f"idata: its entity coordinate must hold row indices into true_latents (0..{len(true_latents) - 1}), "
            f"or pass true_entity_ids; found {rows[:5].tolist()}"
        )
    A = np.asarray(true_adjacency, dtype=float)
    if A.shape != (D, D):
        raise ValueError(f"true_adjacency: expected shape ({D}, {D}); found {A.shape}")
    blocks = {} if true_blocks is None else {"learned_blocks": list(layout.block_of), "true_blocks": list(true_blocks)}
    m = mcc(learned, true_latents[rows], "spearman", **blocks)
    perm = np.asarray(m.permutation)
    out = np.zeros((D, D), dtype=int)
    out[np.ix_(perm, perm)] = (A != 0).astype(int)
    return TruthMatch(out, float(m.value), perm, len(rows))


def _truth_lines(P, dag, truth, layout, match: TruthMatch | None) -> list[str]:
    allowed = layout.allowed_mask()
    identified = allowed & layout.identified_mask()
    how = (
        f"latents matched to the truth by |Spearman| on {match.num_entities} entities, MCC {match.mcc:.2f}"
        if match is not None
        else "latents assumed matched"
    )
    lines = [f"- Against the true graph ({int(truth.sum())} edges; {how}):"]
    for part, mask in (("identified (cross-modal)", identified), ("undecided", allowed & ~identified)):
        if not mask.any():
            continue
        table, ece = edge_calibration(P, truth, mask=mask)
        t, g = truth.astype(bool) & mask, dag.astype(bool) & mask
        bins = ", ".join(
            f"[{r.bin_lower:.1f}, {r.bin_upper:.1f}]: {int(r.count)}" for r in table.itertuples() if r.count > 0
        )
        lines.append(
            f"- {part} edges: {int((g & t).sum())} of {int(t.sum())} true edges recovered, {int((g & ~t).sum())} "
            f"false; ECE {ece:.3f} over {int(mask.sum())} candidate edges (cells per bin: {bins})."
        )
    return lines


def _summary_lines(idata, E, dag, kinds, threshold, truth, layout, match=None) -> list[str]:
    C, S, D, _ = E.shape
    lines = [
        f"- Latents: {D} ({', '.join(f'{b}: {n}' for b, n in _block_sizes(layout))}); "
        f"chains (independent restarts): {C}; draws per chain: {S}.",
        f"- Thresholded graph (P(edge) > {threshold:g}, made acyclic): {int(dag.sum())} edges.",
        _identified_line(dag, layout),
        _orientation_line(dag, kinds, layout),
        _absorbable_line(dag, layout),
        *_basis_lines(diagnostics.config_of(idata)["config"]),
        "- Cyclic edge draws per chain: " + ", ".join(f"{f:.1%}" for f in cyclic_fraction(E)) + ".",
    ]
    k = diagnostics.pareto_k_of(idata)
    if k is not None:
        lines.append(_pareto_line(k))
    if truth is not None:
        P = diagnostics.edge_probability_array(idata).mean(axis=0)
        lines += _truth_lines(P, dag, truth, layout, match)
    return lines


def _identified_line(dag: np.ndarray, layout) -> str:
    """How many thresholded edges the data decide, and which latents they do not pin."""
    ident = dag.astype(bool) & layout.identified_mask()
    line = (
        f"- Identified edges in the thresholded graph: {int(ident.sum())} of {int(dag.sum())}; "
        f"the other {int(dag.sum() - ident.sum())} are undecided. {UNDECIDED_REASON}"
    )
    note = measurement_map_note(layout)
    if note:
        line += f" Note: {note}."
    unpinned = unpinned_latents(layout, dag.astype(float), 0.5)
    if unpinned:
        line += f" Warning: {unpinned_warning(unpinned)}."
    return line


def _orientation_line(dag: np.ndarray, kinds: np.ndarray, layout) -> str:
    """How many identified edges of the thresholded graph ``dag`` its equivalence class orients (``kinds``)."""
    ident = dag.astype(bool) & layout.identified_mask()
    names = list(layout.names)
    reversible = [f"{names[i]} -> {names[j]}" for i, j in zip(*np.nonzero(ident & (kinds == REVERSIBLE)))]
    line = (
        f"- Directions of the identified edges in the thresholded graph: {int((kinds[ident] == COMPELLED).sum())} "
        f"compelled by v-structures, {len(reversible)} reversible"
    )
    if not reversible:
        return line + "."
    shown = ", ".join(reversible[:6]) + (f" and {len(reversible) - 6} more" if len(reversible) > 6 else "")
    return (
        f"{line} ({shown}): only the additive-noise form of the structural equations orients a reversible "
        "edge, and for a lone cause-effect pair it does so by a small margin (README, 'What the data can "
        "decide'); read its direction as weak evidence."
    )


def _basis_lines(config: dict) -> list[str]:
    """One line on the basis search inside blocks, where the fit ran it (``config["basis_search"]``)."""
    searches = [s for s in config.get("basis_search") or [] if s["scores"]]
    if not searches:
        return []
    gains = ", ".join(f"{search_gain(s['scores'], s['identity_score']):+.4f}" for s in searches)
    starts = sorted({len(s["scores"]) for s in searches})
    rounds = [s.get("polish_rounds", 0) for s in searches]
    polish = (f" Then polished under the model's own density and most probable DAG ({max(rounds)} "
              f"round{'s' if max(rounds) > 1 else ''}; "
              "GraphRefinement.basis_polish)." if any(rounds) else "")
    taken = [s.get("graph_moves_taken") for s in searches]
    if any(t is not None for t in taken):
        polish += (" Then moved between graphs on the identified edges, each graph scored with the basis polished "
                   "under it (GraphRefinement.graph_moves; moves taken per chain: "
                   + ", ".join("-" if t is None else str(t) for t in taken) + ").")
    return [
        f"- Basis inside the modality blocks: chosen after SVI by the LiNGAM score of the latents (one draw of "
        f"q(z | x) per entity, best DAG; {'/'.join(map(str, starts))} starts per chain; score gain over the basis "
        f"SVI left, per chain: {gains} nats per entity).{polish} The likelihood does not fix this basis, and on "
        "learned latents the score separates bases weakly: chains can keep different near-equal optima. The "
        "latent-level cross-modal edges depend on that choice; the block-level graph does not (README, 'What the "
        "data can decide')."
    ]


def _absorbable_line(dag: np.ndarray, layout) -> str:
    """How many thresholded edges a decoder could absorb (the likelihood does not fix them)."""
    n = int((dag.astype(bool) & layout.absorbable_mask()).sum())
    return (
        f"- Absorbable edges (parent and child read by the same decoders: one block, or a shared parent): "
        f"{n} of {int(dag.sum())} in the thresholded graph. The likelihood does not fix these edges (a decoder "
        "can take up their mechanism); their P(edge) reflects the edge prior, the penalty and the fit's start."
    )


def _pareto_line(k: np.ndarray) -> str:
    """One summary line of Pareto-k per chain (``(C,)``) or per chain and entity (``(C, N)``)."""
    if k.ndim == 1:
        verdict = ["good" if v < 0.5 else "ok" if v < 0.7 else "not trustworthy" for v in k]
        return (
            "- Pareto k of the guide per chain: "
            + ", ".join(f"{v:.2f} ({w})" for v, w in zip(k, verdict))
            + " (k >= 0.7: the guide is not to be trusted)."
        )
    parts = [
        f"median {np.median(row):.2f}, max {np.max(row):.2f}, {np.mean(row >= 0.7):.0%} of entities >= 0.7" for row in k
    ]
    return (
        f"- Pareto k of the amortized latent posterior per entity ({k.shape[1]} entities), per chain: "
        + "; ".join(parts)
        + " (k >= 0.7: the guide is not to be trusted for that entity)."
    )


def _block_sizes(layout):
    blocks = list(layout.block_of)
    return [(b, blocks.count(b)) for b in dict.fromkeys(blocks)]


def _top_edges(table: pd.DataFrame, min_prob: float = 0.05) -> pd.DataFrame:
    top = table.loc[table["p_edge"] >= min_prob, list(_TABLE_COLUMNS)]
    return top.round(3)


def _block_tables(E: np.ndarray, layout) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The block-level and the latent-to-block graphs from edge draws ``E (C, S, D, D)``, pooled over chains."""
    pooled = E.reshape(-1, *E.shape[-2:])
    return block_probabilities(layout, pooled), latent_block_probabilities(layout, pooled)


def _write_tables(out, table, P, dag, layout, threshold, blocks, links) -> None:
    names = list(layout.names)
    table.to_csv(out / "edges.csv", index=False)
    blocks.to_csv(out / "block_graph.csv")
    links.to_csv(out / "latent_block_graph.csv")
    exports.to_adjacency_csv(P, names, out / "adjacency.csv", overwrite=True)
    exports.to_adjacency_csv(dag, names, out / "dag_adjacency.csv", overwrite=True)
    G = exports.table_to_networkx(table, threshold, acyclic=True)
    nx.write_graphml(G, out / "graph.graphml")
    (out / "graph_dowhy.gml").write_text(exports.to_dowhy_gml(dag, names) + "\n", encoding="utf-8")


def edge_report(
    model_or_idata,
    out_dir,
    *,
    truth_adjacency=None,
    truth_latents=None,
    truth_blocks=None,
    truth_entity_ids=None,
    threshold: float = 0.5,
    overwrite: bool = False,
    title: str = "PersonaX edge report",
) -> Path:
    """Write the edge-probability report of a fitted model into a folder.

    Parameters
    ----------
    model_or_idata
        An :class:`arviz.InferenceData` from
        :func:`~pyro_personax.inference.diagnostics.build_inference_data`, or an
        object with ``to_inference_data()`` (the fitted PersonaX facade).
    out_dir
        Report folder; see the module docstring for its files.
    truth_adjacency
        Optional true graph ``(D, D)``: with ``truth_latents``, in the true latents' order
        (array or DataFrame), and the latents are matched (:func:`match_truth`); without,
        of latents already matched to the learned ones (array, or DataFrame indexed by
        the learned latent names). Adds the scores against the truth, identified and
        undecided edges apart, and the calibration curve of the identified edges.
    truth_latents, truth_blocks, truth_entity_ids
        Optional true latents ``(N, D)`` of every data row, the block of every true
        latent (matching within blocks), and the ids of the rows (see :func:`match_truth`).
    threshold
        P(edge) above which an edge enters the thresholded graph (made acyclic by
        dropping the least probable edge of each cycle).
    overwrite
        Write into an existing folder, replacing the report files; otherwise an
        existing ``out_dir`` raises FileExistsError. Other files there are kept.
    title
        Title of the Markdown and HTML reports.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold: expected a value in [0, 1); found {threshold}")
    idata = _as_idata(model_or_idata)
    layout = diagnostics.layout_of(idata)
    match = None
    if truth_latents is not None:
        if truth_adjacency is None:
            raise ValueError("truth_latents: needs truth_adjacency (the true graph in the true latents' order)")
        A = truth_adjacency.to_numpy() if isinstance(truth_adjacency, pd.DataFrame) else truth_adjacency
        match = match_truth(idata, truth_latents, A, true_blocks=truth_blocks, true_entity_ids=truth_entity_ids)
        truth = match.adjacency
    else:
        truth = None if truth_adjacency is None else _truth_matrix(truth_adjacency, list(layout.names))
    out = _prepare_dir(out_dir, overwrite)
    table = diagnostics.edge_summary(idata)
    E = diagnostics.edge_draws(idata)
    P = diagnostics.edge_probability_array(idata).mean(axis=0)
    dag = to_dag(P, threshold)
    kinds = orientations(dag)
    table = _with_orientation(table, kinds, layout)
    blocks, links = _block_tables(E, layout)
    _write_tables(out, table, P, dag, layout, threshold, blocks, links)
    dependence = verdict.cross_modal_ppc(idata)
    figs = _figures(idata, table, P, layout, out, threshold, truth, dependence)
    lines = _summary_lines(idata, E, dag, kinds, threshold, truth, layout, match)
    top = _top_edges(table)
    judged = verdict.assess(idata, threshold=threshold, table=table, dependence=dependence)
    write_markdown(out, title, judged, lines, top, figs, blocks, links)
    write_html(out, title, judged, lines, top, figs, blocks, links)
    logger.info("wrote edge report to %s", out)
    return out
