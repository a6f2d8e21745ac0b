"""``personax fit CONFIG --out RUN_DIR``: fit the Level II model described by a run configuration.

Started by ``torchrun`` (``torchrun --nproc_per_node 2 -m pyro_personax fit ...``), every
process joins the process group (``gloo`` on CPU, ``nccl`` on CUDA) and trains its shards
of each minibatch (:mod:`pyro_personax.inference.distributed`); process 0 alone writes the
run folder and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import fields, replace
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    """Add the ``fit`` subcommand."""
    p = subparsers.add_parser(
        "fit",
        help="fit the Level II model from a TOML/JSON run configuration",
        description=(
            "Fit PersonaX (Level II) to the data named in CONFIG (a .toml or .json run configuration; "
            "see `personax simulate`, which writes one) and write the run folder OUT: model/, "
            "posterior.nc (ArviZ InferenceData), edge_probabilities.csv, fit_summary.csv, chain_alignment.csv, "
            "report/ and run_config.json (the configuration as fitted, read by `personax sensitivity`)."
        ),
    )
    p.add_argument("config", type=Path, help="run configuration (.toml or .json)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write")
    p.add_argument("--num-epochs", type=int, help="override [fit] num_epochs")
    p.add_argument("--num-chains", type=int, help="override [fit] num_chains (independent restarts)")
    p.add_argument("--seed", type=int, help="override [fit] seed")
    p.add_argument("--device", help="override [fit] device: auto, cpu or cuda")
    p.add_argument("--num-threads", type=int, help="override [fit] num_threads: torch threads (default 1)")
    p.add_argument(
        "--num-workers",
        type=int,
        help="override [fit] num_workers: processes that train the chains side by side (default 1: one after another)",
    )
    p.add_argument(
        "--data-shards",
        type=int,
        help="override [fit] data_shards: shards of each minibatch in data-parallel training under torchrun "
        "(default: one per process); the result depends on it, not on the number of processes",
    )
    p.add_argument(
        "--num-samples", type=int, default=200, help="posterior draws per chain in posterior.nc (default 200)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in OUT")
    p.set_defaults(func=run)


def _print_edges(px, edges: str, heading: str) -> None:
    """Print ``heading`` and the most probable edges of one class (``top_edges(px, edges=...)``)."""
    from pyro_personax.cli.run_outputs import top_edges

    print(heading)
    found = top_edges(px, edges=edges)
    for parent, child, p in found:
        print(f"  P({parent} -> {child}) = {p:.2f}")
    if not found:
        print("  none with P >= 0.05")


def run(args: argparse.Namespace) -> int:
    """Fit and write the run folder; returns the exit status."""
    from pyro_personax import PersonaX
    from pyro_personax.cli.config import load_data, read_run_config, run_config_dict
    from pyro_personax.cli.run_outputs import check_run_dir, write_fit_outputs
    from pyro_personax.identifiability import measurement_map_note, unpinned_warning
    from pyro_personax.inference import torch_threads
    from pyro_personax.inference.distributed import init_distributed, shutdown_distributed

    config = read_run_config(args.config)
    names = ("num_epochs", "num_chains", "seed", "device", "num_threads", "num_workers", "data_shards")
    overrides = {k: getattr(args, k) for k in names}
    fit_config = replace(config.fit, **{k: v for k, v in overrides.items() if v is not None})
    check_run_dir(args.out, args.overwrite)
    data = load_data(config.data)
    px = PersonaX(data, **config.model.persona_kwargs())
    if args.no_progress:
        fit_config = replace(fit_config, progress=False)
    group = init_distributed(fit_config.device)  # a process group when started by torchrun
    if not group.is_main:  # the other processes' warnings repeat process 0's
        logging.getLogger("pyro_personax").setLevel(logging.ERROR)
    try:
        px.fit(data, **{f.name: getattr(fit_config, f.name) for f in fields(fit_config)})
    finally:
        shutdown_distributed()
    if not group.is_main:
        return 0  # process 0 writes the run folder
    if group.world_size > 1:
        print(f"trained on {group.world_size} processes ({group.backend})")
    with torch_threads(fit_config.num_threads):  # the posterior draws of the outputs, as the fit
        paths = write_fit_outputs(
            px, data, args.out, num_samples=args.num_samples, seed=fit_config.seed, overwrite=args.overwrite
        )
    (args.out / "run_config.json").write_text(json.dumps(run_config_dict(replace(config, fit=fit_config)), indent=2))
    print(f"fitted {px.num_chains} chain(s) on {data.num_entities} entities; run folder: {args.out}")
    _print_edges(px, "identified", "identified (cross-modal) edges, decided by the data:")
    _print_edges(px, "undecided", "undecided edges (inside a block or from the shared block; they follow the prior):")
    note = measurement_map_note(px.layout)
    if note:
        print(f"note: {note}")
    unpinned = px.unpinned_latents()
    if unpinned:
        print(f"warning: {unpinned_warning(unpinned)}")
    print(f"report: {paths['report'] / 'report.html'}")
    return 0
