"""The Markdown and HTML pages of the edge report (:func:`pyro_personax.inference.report.edge_report`).

Both pages hold the same parts in the same order: the verdict, the summary lines, the
block-level graph, the latent-to-block links, the edges with ``P(edge) >= 0.05`` and the
figures (linked from the Markdown page, embedded in the HTML page).
"""

from __future__ import annotations

import base64
import html

import pandas as pd

__all__ = ["BLOCK_NOTE", "LINK_NOTE", "write_markdown", "write_html"]


def _markdown_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "_No edge with P(edge) >= 0.05._"
    head = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


BLOCK_NOTE = (
    "P(at least one edge from the row block to the column block), over every draw of every chain. "
    "Whether two modality blocks are linked is decided by the data even where single latents are not "
    "pinned (a map inside a block does not change whether one block depends on another); the direction "
    "rests on how the linking edges are oriented, which for a lone cause-effect pair is weak evidence. "
    "On the diagonal and out of the shared block nothing here is decided by the data."
)


LINK_NOTE = (
    "P(the row latent has at least one edge, in either direction, with a latent of the column block), over "
    "every draw of every chain. For a modality latent with a cross-modal neighbour and another modality block "
    "this is decided by the data even where the single edges are not (the partner latent not pinned inside its "
    "block, or the direction of a lone cross-modal pair undecided), and pooling chains needs only the row latent "
    "matched. The evidence is one-sided: a low value says the latent has no link with the block, but spurious "
    "cross-modal edges (any of the block's latents, either direction) push every row towards 1, so a high value "
    "counts only where it stands above the rows of the latent's block partners. The latent's own block, the shared "
    "block and the rows of shared latents are not decided by the data."
)


def _markdown_frame(df: pd.DataFrame) -> str:
    """A small labelled matrix as a Markdown table (values to 2 decimals)."""
    head = f"| {df.index.name} \\ {df.columns.name} | " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * (len(df.columns) + 1)
    rows = [f"| {i} | " + " | ".join(f"{v:.2f}" for v in row) + " |" for i, row in zip(df.index, df.to_numpy())]
    return "\n".join([head, rule, *rows])


def write_markdown(out, title, verdict, lines, top, figs, blocks, links) -> None:
    """Write ``out/report.md``.

    Parameters
    ----------
    out
        The report folder (:class:`pathlib.Path`).
    title
        Page title (a level-1 heading).
    verdict
        The :class:`~pyro_personax.inference.verdict.Verdict` (``to_markdown``, ``to_html``).
    lines
        Summary lines, each starting with ``"- "``.
    top
        The edge table's rows with ``P(edge) >= 0.05``.
    figs
        Caption -> path of a PNG in ``out``.
    blocks, links
        The block-level graph (blocks x blocks) and the latent-to-block links
        (latents x blocks), DataFrames.
    """
    parts = [
        f"# {title}",
        "",
        "## Verdict",
        "",
        verdict.to_markdown(),
        "## Summary",
        "",
        *lines,
        "",
        "R-hat and ESS are computed over chains that are independent restarts: they measure "
        "run-to-run agreement (R-hat > 1.05: the restarts disagree). Cells that never vary have none.",
        "",
        "## Block-level graph",
        "",
        BLOCK_NOTE,
        "",
        _markdown_frame(blocks),
        "",
        "## Latent-to-block links",
        "",
        LINK_NOTE,
        "",
        _markdown_frame(links),
        "",
        "## Edges with P(edge) >= 0.05",
        "",
        _markdown_table(top),
        "",
        "Full table: [edges.csv](edges.csv); adjacency: [adjacency.csv](adjacency.csv); "
        "graph: [graph.graphml](graph.graphml), [graph_dowhy.gml](graph_dowhy.gml).",
        "",
        "## Figures",
        "",
    ]
    for caption, path in figs.items():
        parts += [f"### {caption}", "", f"![{caption}]({path.name})", ""]
    (out / "report.md").write_text("\n".join(parts), encoding="utf-8")


def write_html(out, title, verdict, lines, top, figs, blocks, links) -> None:
    """Write ``out/report.html``: the parts of :func:`write_markdown`, the figures embedded.

    Parameters
    ----------
    out, title, verdict, lines, top, figs, blocks, links
        As in :func:`write_markdown`.
    """
    items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in lines)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Verdict</h2>",
        verdict.to_html(),
        "<h2>Summary</h2>",
        f"<ul>{items}</ul>",
        "<p>R-hat and ESS are computed over chains that are independent restarts: they measure "
        "run-to-run agreement (R-hat &gt; 1.05: the restarts disagree).</p>",
        "<h2>Block-level graph</h2>",
        f"<p>{html.escape(BLOCK_NOTE)}</p>",
        blocks.round(2).to_html(border=0, classes="edges"),
        "<h2>Latent-to-block links</h2>",
        f"<p>{html.escape(LINK_NOTE)}</p>",
        links.round(2).to_html(border=0, classes="edges"),
        "<h2>Edges with P(edge) &ge; 0.05</h2>",
        top.to_html(index=False, border=0, classes="edges", na_rep="") if not top.empty else "<p>None.</p>",
        '<p>Full table: <a href="edges.csv">edges.csv</a>; adjacency: <a href="adjacency.csv">adjacency.csv</a>; '
        'graph: <a href="graph.graphml">graph.graphml</a>, <a href="graph_dowhy.gml">graph_dowhy.gml</a>.</p>',
        "<h2>Figures</h2>",
    ]
    for caption, path in figs.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        body.append(
            f"<h3>{html.escape(caption)}</h3>"
            f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}" style="max-width:100%">'
        )
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;} table.edges{border-collapse:collapse;"
        "font-size:0.85em} table.edges td,table.edges th{padding:2px 8px;border-bottom:1px solid #ddd}"
    )
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    (out / "report.html").write_text(doc, encoding="utf-8")
