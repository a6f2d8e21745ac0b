"""``personax independence``: the Level I test battery on a table.

Importing this module and building its parser pulls no pandas, scipy or torch: the test
names come from :mod:`pyro_personax.independence.catalog`, the rest is imported in
:func:`run`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

__all__ = ["register", "run", "OUTPUT_FILES"]

logger = logging.getLogger(__name__)

OUTPUT_FILES = {
    "table": "independence.csv",
    "settings": "independence_settings.json",
    "heatmap": "pvalue_heatmap.png",
    "summary": "significance_summary.png",
}

#: What ``--conditional`` adds to the outputs.
CONDITIONAL_FILES = {
    "graphml": "conditional_graph.graphml",
    "edges": "conditional_edges.csv",
    "sepsets": "conditional_sepsets.json",
    "figure": "conditional_graph.png",
}

DESCRIPTION = """\
Run pairwise unconditional independence tests between every trait column and
every feature column of a CSV or parquet table (the PersonaX "Level I" analysis).

Features: --features, or by default the table's structured features: the schema's
biographical fields and face attributes, and any other column except identifiers (ID,
--id), other trait columns (final_<trait>), per-LLM scores (<llm>_<trait>, whose median
final_<trait> is), embeddings, constant columns and identifier-like columns (one
distinct string or integer per row). The columns left out, and why, are printed and
recorded in independence_settings.json.

Tests: kci (causal-learn KCI on a random subsample of --kci-max-n rows, the large-n
strategy), rcit (random Fourier features, all rows), hsic (gamma-approximation HSIC,
all rows), chisq and gsq (discrete pairs only: numeric columns with at most
--max-levels distinct values, or categorical/string columns; continuous columns are
binned only with --bins), fisherz (numeric or binary pairs).

Rows missing either column of a pair are dropped for that pair only. A test that fails
or does not apply gets an empty p-value and a reason in the 'error' column, never p = 0.
q-values are Benjamini-Hochberg within each test (or over all rows: --fdr-scope all).

Outputs in --out: independence.csv (one row per test x trait x feature),
independence_settings.json (settings, KCI strategy, how each column was read, the
features tested and the columns left out),
pvalue_heatmap.png and significance_summary.png. Existing outputs are not replaced
unless --overwrite is given.

With --conditional pc (or fci), the traits and the numeric features tested also go
through causal-learn's PC (or FCI) with --conditional-test and the background knowledge
of --tier and --forbid, on the rows complete in all of them: conditional_graph.graphml,
conditional_edges.csv (source, target, causal-learn's mark), conditional_sepsets.json
(the separating set of every pair PC removed) and conditional_graph.png.
"""

EPILOG = """\
example:
  personax independence celeb.csv --traits final_o final_c final_e final_a final_n \\
      --features Gender Occupation Height Pointy_Nose --tests kci rcit hsic chisq gsq \\
      --n-jobs 2 --cache-dir .personax_cache --out results/level1
"""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``independence`` subcommand to ``subparsers``."""
    from pyro_personax.independence.catalog import CONDITIONAL_TESTS, DEFAULT_TESTS, TEST_NAMES

    p = subparsers.add_parser(
        "independence", help="Level I: pairwise independence tests between traits and features",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", help="input table (.csv or .parquet)")
    p.add_argument("--traits", nargs="+", required=True, metavar="COL", help="numeric trait columns")
    p.add_argument("--features", nargs="+", metavar="COL",
                   help="feature columns (default: the structured features, see above)")
    p.add_argument("--id", dest="id_column", metavar="COL",
                   help="identifier column to leave out of the default features (ID always is)")
    p.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS), choices=sorted(TEST_NAMES),
                   help="tests to run (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=0.05, help="level for 'dependent' (q < alpha; default 0.05)")
    p.add_argument("--fdr-scope", choices=("test", "all"), default="test",
                   help="Benjamini-Hochberg within each test (default) or across all rows")
    p.add_argument("--discrete", nargs="+", default=(), metavar="COL", help="columns to treat as discrete")
    p.add_argument("--continuous", nargs="+", default=(), metavar="COL",
                   help="numeric columns to treat as continuous")
    p.add_argument("--max-levels", type=int, default=12,
                   help="numeric columns with at most this many values are discrete (default 12)")
    p.add_argument("--bins", type=int, help="quantile bins for continuous columns in chisq/gsq (default: none)")
    p.add_argument("--min-n", type=int, default=20, help="fewest complete rows per pair (default 20)")
    p.add_argument("--kci-max-n", type=int, default=2000, help="KCI subsample size (default 2000)")
    p.add_argument("--n-jobs", type=int, default=1, help="parallel workers (-1 = all cores; default 1)")
    p.add_argument("--cache-dir", help="folder of the result cache (default: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of all random choices (default 0)")
    p.add_argument("--group-traits", action="store_true",
                   help="group heat-map columns by the trait-name prefix before the last '_' (one group per LLM)")
    p.add_argument("--conditional", choices=("pc", "fci"),
                   help="also run PC or FCI (causal-learn) over the traits and the numeric features tested")
    p.add_argument("--conditional-test", choices=CONDITIONAL_TESTS, default="fisherz",
                   help="conditional-independence test of --conditional (default fisherz)")
    p.add_argument("--tier", nargs="+", action="append", default=[], metavar="COL", dest="tiers",
                   help="an ordered tier of columns for --conditional: no edge from a later tier into an "
                        "earlier one (repeat; e.g. --tier Birthyear Height --tier final_o final_c)")
    p.add_argument("--forbid", nargs=2, action="append", default=[], metavar=("FROM", "TO"),
                   help="forbid the edge FROM -> TO in --conditional (repeat)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)
    return p


def _read_table(path: Path):
    from pyro_personax.data.persona_io import read_table

    if not path.is_file():
        raise FileNotFoundError(f"data: no such file {path}")
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ValueError(f"data: expected a .csv or .parquet file, found {path.name!r}")
    return read_table(path, parquet_suffixes=(".parquet", ".pq"))


def _outputs(out: Path, overwrite: bool, conditional: bool = False) -> dict[str, Path]:
    paths = {k: out / v for k, v in {**OUTPUT_FILES, **(CONDITIONAL_FILES if conditional else {})}.items()}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"--out: {existing[0]} exists; pass --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    return paths


def write_battery_outputs(table, paths: dict[str, Path], *, alpha: float, trait_groups=None) -> None:
    """Write a battery table (CSV), its settings (JSON) and its two figures (PNG) to ``paths``."""
    import matplotlib.pyplot as plt

    from pyro_personax.independence import plot_pvalue_heatmap, plot_significance_summary

    table.to_csv(paths["table"], index=False)
    paths["settings"].write_text(json.dumps(table.attrs, indent=2, default=str))
    for key, fig in (("heatmap", plot_pvalue_heatmap(table, trait_groups=trait_groups)),
                     ("summary", plot_significance_summary(table, alpha=alpha))):
        fig.savefig(paths[key], dpi=150)
        plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Run the battery as asked by ``args``; returns the exit status (0)."""
    import matplotlib

    matplotlib.use("Agg")
    from pyro_personax.independence import battery_summary, default_features, test_battery
    from pyro_personax.independence.plots import trait_groups_from_prefix

    df = _read_table(Path(args.data))
    if (args.tiers or args.forbid) and not args.conditional:
        raise ValueError("--tier/--forbid: background knowledge of --conditional; pass --conditional pc or fci")
    paths = _outputs(Path(args.out), args.overwrite, conditional=bool(args.conditional))
    features = args.features
    if features is None:
        features = default_features(df, args.traits, id_columns=("ID", args.id_column))
        print(f"features: {features.describe()} (--features names them instead)")
    both = sorted(set(args.discrete) & set(args.continuous))
    if both:
        raise ValueError(f"--discrete/--continuous: columns {both} are given as both")
    discrete = {**{c: True for c in args.discrete}, **{c: False for c in args.continuous}}
    table = test_battery(
        df, args.traits, features, tests=args.tests, alpha=args.alpha, discrete=discrete or None,
        fdr_scope=args.fdr_scope, max_levels=args.max_levels, bins=args.bins, min_n=args.min_n,
        kci_max_n=args.kci_max_n, n_jobs=args.n_jobs, cache_dir=args.cache_dir,
        progress=not args.no_progress, seed=args.seed,
    )
    groups = trait_groups_from_prefix(args.traits) if args.group_traits else None
    write_battery_outputs(table, paths, alpha=args.alpha, trait_groups=groups)
    logger.info("%s; outputs in %s", battery_summary(table, alpha=args.alpha), args.out)
    if args.conditional:
        _conditional(df, args, list(getattr(features, "features", features)), paths)  # a FeatureSelection or names
    return 0


def _conditional(df, args: argparse.Namespace, features: list[str], paths: dict[str, Path]) -> None:
    """Run PC / FCI over the traits and the numeric features, and write its four outputs."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from pyro_personax.independence import conditional_graph, plot_conditional_graph

    numeric = [f for f in features if pd.api.types.is_numeric_dtype(df[f]) or pd.api.types.is_bool_dtype(df[f])]
    left_out = sorted(set(features) - set(numeric))
    if left_out:
        print(f"--conditional: non-numeric features left out: {left_out}")
    result = conditional_graph(
        df, args.traits, numeric, method=args.conditional, test=args.conditional_test, alpha=args.alpha,
        tiers=args.tiers or None, forbidden=[tuple(f) for f in args.forbid], kci_max_n=args.kci_max_n,
        seed=args.seed,
    )
    result.write_graphml(paths["graphml"])
    result.edges.to_csv(paths["edges"], index=False)
    sepsets = [{"a": a, "b": b, "given": list(s)} for (a, b), s in result.sepsets.items()]
    paths["sepsets"].write_text(json.dumps(sepsets, indent=2))
    fig = plot_conditional_graph(result, args.traits)
    fig.savefig(paths["figure"], dpi=150)
    plt.close(fig)
    print(f"--conditional: {args.conditional.upper()} on {result.n} complete rows, {len(result.edges)} edges, "
          f"{len(result.sepsets)} pairs separated -> {paths['graphml'].parent}")
