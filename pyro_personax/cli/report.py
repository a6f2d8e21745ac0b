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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the report files of an existing report folder (RUN_DIR/report is "
                        "re-rendered in place without it)")
    parser.add_argument("--truth", type=Path, default=None, metavar="TRUTH",
                        help="the truth folder `personax simulate` or `personax demo` writes (latents.npy, "
                        "adjacency.csv, layout.json, entity_ids.csv when the data have ids: the latents are "
                        "matched to the learned ones), or an "
                        "adjacency CSV of latents already matched (rows = parents, columns = children)")
    parser.add_argument("--threshold", type=float, default=0.5, help="P(edge) threshold of the graph (default 0.5)")
    parser.set_defaults(func=run)
    return parser


def _truth_folder(folder: Path) -> dict:
    """``edge_report`` truth arguments from a folder of ``latents.npy``, ``adjacency.csv``, ``layout.json``."""
    import json

    import numpy as np

    from pyro_personax.inference.exports import read_adjacency_csv
    from pyro_personax.layout import LatentLayout

    files = {name: folder / name for name in ("latents.npy", "adjacency.csv", "layout.json")}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"--truth {folder}: expected {sorted(files)} (as personax simulate writes); missing {missing}"
        )
    A, _ = read_adjacency_csv(files["adjacency.csv"])
    layout = LatentLayout.from_dict(json.loads(files["layout.json"].read_text()))
    out = {
        "truth_adjacency": A,
        "truth_latents": np.load(files["latents.npy"], allow_pickle=False),
        "truth_blocks": list(layout.block_of),
    }
    if (folder / "entity_ids.csv").is_file():  # written with data whose entities have ids (personax demo)
        import pandas as pd

        out["truth_entity_ids"] = pd.read_csv(folder / "entity_ids.csv")["entity_id"].astype(str).tolist()
    return out


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
    truth = {}
    if args.truth is not None and args.truth.is_dir():
        truth = _truth_folder(args.truth)
    elif args.truth is not None:
        import pandas as pd

        A, names = read_adjacency_csv(args.truth)
        truth = {"truth_adjacency": pd.DataFrame(A, index=names, columns=names)}
    out = args.out if args.out is not None else run_dir / "report"
    # the run's own report folder is re-rendered in place; another existing folder needs --overwrite
    overwrite = args.overwrite or (args.out is None and (out / "report.html").is_file())
    try:
        edge_report(idata, out, threshold=args.threshold, overwrite=overwrite, **truth)
    except FileExistsError:
        raise FileExistsError(
            f"{out} exists and holds no report of this run; choose another --out or pass --overwrite to write into it"
        ) from None
    logger.info("report written to %s", out)
    print(out / "report.html")
    return 0
