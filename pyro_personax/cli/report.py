"""``personax report RUN_DIR``: the edge-probability report of a fitted run.

``RUN_DIR`` holds ``posterior.nc``, an InferenceData written by
:func:`pyro_personax.inference.diagnostics.save_inference_data`; the report is
written to ``RUN_DIR/report`` unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "report",
        help="write the edge-probability report of a fitted run",
        description="Write the edge-probability report (tables, figures, Markdown and HTML) "
        "of a run folder that contains posterior.nc.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run folder containing posterior.nc")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default RUN_DIR/report)")
    parser.add_argument("--overwrite", action="store_true", help="replace the report files of an existing folder")
    parser.add_argument("--truth", type=Path, default=None, metavar="ADJ.csv",
                        help="true adjacency CSV (rows = parents, columns = children, latent names) "
                        "for the calibration curve")
    parser.add_argument("--threshold", type=float, default=0.5, help="P(edge) threshold of the graph (default 0.5)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``personax report``; returns the exit status."""
    from pyro_personax.inference.diagnostics import load_inference_data
    from pyro_personax.inference.exports import read_adjacency_csv
    from pyro_personax.inference.report import edge_report

    run_dir = Path(args.run_dir)
    posterior = run_dir / "posterior.nc"
    if not posterior.is_file():
        raise FileNotFoundError(f"RUN_DIR: expected {posterior} (written by save_inference_data); not found")
    idata = load_inference_data(posterior)
    truth = None
    if args.truth is not None:
        import pandas as pd

        A, names = read_adjacency_csv(args.truth)
        truth = pd.DataFrame(A, index=names, columns=names)
    out = args.out if args.out is not None else run_dir / "report"
    edge_report(idata, out, truth_adjacency=truth, threshold=args.threshold, overwrite=args.overwrite)
    logger.info("report written to %s", out)
    print(out / "report.html")
    return 0
