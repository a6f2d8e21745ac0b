"""``personax sensitivity RUN_DIR``: leave-one-measurement-out and prior sweep of a fitted run.

The run folder must hold ``model/`` (written by ``personax fit``) and the run
configuration, ``run_config.json`` (written by ``personax fit``) unless ``--config``
names it: the data are loaded from it and every refit uses its ``[fit]`` options. With
no fit option overridden, the run's model is the reference fit; otherwise the reference
is refitted with the overridden options, so that every fit compared is alike. The page,
tables and figures go to ``RUN_DIR/sensitivity`` (see
:func:`pyro_personax.sensitivity.write_sensitivity_page`); an existing
non-empty folder is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)

_FIT_OVERRIDES = ("num_epochs", "num_chains", "seed", "device", "num_threads")


def _number_or_bic(text: str):
    return "bic" if text == "bic" else float(text)


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``sensitivity`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "sensitivity",
        help="refit a run without each measurement and over prior settings; write an HTML page",
        description="Sensitivity analyses of a run folder written by `personax fit`: refit with each measurement "
        "of a modality left out (and each alone), and over a grid of edge-prior and sparsity settings; write "
        "sensitivity.html with tables and figures to RUN_DIR/sensitivity (or --out).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run folder written by `personax fit`")
    p.add_argument("--config", type=Path, default=None,
                   help="run configuration (default RUN_DIR/run_config.json, which `personax fit` writes)")
    p.add_argument("--analysis", choices=("both", "measurements", "prior"), default="both",
                   help="which analysis to run (default both)")
    p.add_argument("--modality", default=None,
                   help="modality whose measurements are left out (default: the one with the most measurements)")
    p.add_argument("--no-single", action="store_true", help="do not fit each measurement alone")
    p.add_argument("--edge-prior", type=float, nargs="+", default=[0.01, 0.1, 0.5], metavar="P0",
                   help="edge-prior probabilities of the sweep (default 0.01 0.1 0.5)")
    p.add_argument("--sparsity", type=_number_or_bic, nargs="+", default=[0.1, 1.0, 10.0, 100.0], metavar="LAMBDA",
                   help="sparsity weights of the sweep, numbers >= 0 or 'bic' (default 0.1 1 10 100)")
    p.add_argument("--grid", choices=("separate", "product"), default="separate",
                   help="sweep each axis on its own (default) or every pair")
    p.add_argument("--threshold", type=float, default=0.5, help="P(edge) at which an edge holds (default 0.5)")
    p.add_argument("--num-epochs", type=int, help="override [fit] num_epochs of every refit")
    p.add_argument("--num-chains", type=int, help="override [fit] num_chains of every refit")
    p.add_argument("--seed", type=int, help="override [fit] seed of every refit")
    p.add_argument("--device", help="override [fit] device: auto, cpu or cuda")
    p.add_argument("--num-threads", type=int, help="override [fit] num_threads")
    p.add_argument("--out", type=Path, default=None, help="output folder (default RUN_DIR/sensitivity)")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an existing output folder")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``personax sensitivity``; returns the exit status."""
    from dataclasses import replace

    from pyro_personax import PersonaX
    from pyro_personax.cli.config import load_data, read_run_config
    from pyro_personax.inference import torch_threads
    from pyro_personax.sensitivity import leave_one_measurement_out, prior_sweep, write_sensitivity_page
    from pyro_personax.sensitivity._common import _clone

    run_dir = Path(args.run_dir)
    if not (run_dir / "model").is_dir():
        raise FileNotFoundError(f"RUN_DIR: expected {run_dir / 'model'} (written by personax fit); not found")
    config_path = args.config if args.config is not None else run_dir / "run_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"--config: expected the run configuration at {config_path} (personax fit writes run_config.json); "
            "not found: pass --config with the file the run was fitted from"
        )
    out = args.out if args.out is not None else run_dir / "sensitivity"
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
    config = read_run_config(config_path)
    overrides = {k: getattr(args, k) for k in _FIT_OVERRIDES if getattr(args, k) is not None}
    options = replace(config.fit, **overrides)
    if args.no_progress:
        options = replace(options, progress=False)
    data = load_data(config.data)
    px = PersonaX.load(run_dir / "model")
    px._spec_of(data, "the run configuration's data")  # the data the run was fitted on, by shape
    reference = _clone(px) if overrides else px  # refit the reference when the fit differs from the run's
    notes = [f"run folder: {run_dir}; {data.num_entities} entities; reference: "
             + ("refitted with the overridden fit options" if overrides else "the run's fitted model"),
             f"fit options of every refit: num_epochs={options.num_epochs or 'default'}, "
             f"num_chains={options.num_chains}, seed={options.seed}"]
    measurements = prior = None
    with torch_threads(options.num_threads):
        if args.analysis in ("both", "measurements"):
            modality = args.modality
            if modality is None:
                counts = data.num_measurements
                modality = max(counts, key=lambda m: counts[m])
            measurements = leave_one_measurement_out(
                reference, data, modality, single=not args.no_single, fit_options=options, threshold=args.threshold
            )
        if args.analysis in ("both", "prior"):
            prior = prior_sweep(reference, data, edge_prior=args.edge_prior, sparsity=args.sparsity,
                                grid=args.grid, fit_options=options)
    page = write_sensitivity_page(out, measurements, prior, notes=notes, overwrite=args.overwrite)
    if measurements is not None:
        links = measurements.stable_edges(directed=False)
        print(f"leave one {measurements.modality!r} measurement out: {len(measurements.stable_edges())} of "
              f"{len(measurements.stability)} identified edges stable; {len(links)} of "
              f"{len(measurements.adjacency_stability)} links stable in either direction")
        for (parent, child), name in measurements.dependent_edges().items():
            print(f"  {parent} -> {child} rests on {name}")
        for (a, b), name in measurements.dependent_edges(directed=False).items():
            print(f"  link {a} - {b} rests on {name}")
    if prior is not None:
        print(f"prior sweep: {len(prior.settings)} settings")
    print(page)
    return 0
