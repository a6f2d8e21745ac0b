"""``personax demo``: the whole analysis on the embedded synthetic persona data.

1. Generate synthetic CelebPersona-like data with a known latent DAG (no download).
2. Level I: the independence battery between aggregated traits and structured features.
3. Level II: fit PersonaX with several independent restarts (chains), trained side by
   side in worker processes on CPU; the graph stage after SVI moves between graphs on
   the identified edges (``--graph-moves``, :data:`DEMO_GRAPH_MOVES`).
4. Write the run folder (model, posterior.nc, edge report with the true graph for
   calibration) and print a short summary: top edges and recovery against the truth,
   overall and on the cross-modal (identified) edges, the ones the data decide.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

from pyro_personax.checks import check_int
from pyro_personax.layout import SHARED

#: Moves between graphs in the demo's graph stage (``GraphRefinement.graph_moves``). The
#: library's default is 0; the README advises moves on data whose blocks share several
#: identified edges, as the persona data's face and text blocks do.
DEMO_GRAPH_MOVES = 3


def register(subparsers) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="end-to-end analysis on embedded synthetic persona data",
        description=(
            "Run both levels of the PersonaX analysis on synthetic persona data with a known latent "
            "causal graph: the Level I independence battery, then the Level II model with several "
            "chains, writing OUT/level1 (table + heat maps), OUT/data (the data, released layout), "
            "OUT/truth, and the run folder OUT/run (model, posterior.nc, report/)."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("personax-demo"), help="output folder (default personax-demo)")
    p.add_argument("--kind", choices=("celeb", "athle"), default="celeb", help="dataset schema (default celeb)")
    p.add_argument("-n", "--num-entities", type=int, default=2000, help="synthetic people (default 2000)")
    p.add_argument("--num-epochs", type=int, default=None,
                   help="training epochs per chain (default: PersonaX.fit's, 400 on the default 2000 people)")
    p.add_argument("--num-chains", type=int, default=None,
                   help="independent restarts (default: PersonaX.fit's, FitOptions.num_chains)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, tests and training (default 0)")
    p.add_argument("--level1-tests", nargs="+", default=["kci", "rcit", "hsic", "chisq", "gsq"],
                   help="Level I tests (default: kci rcit hsic chisq gsq)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--num-threads", type=int, default=None, help="torch threads of the fit (default 1)")
    p.add_argument("--num-workers", type=int, default=None,
                   help="processes that train the chains side by side, the same numbers as one after another "
                        "(default on CPU: one per usable core, at most one per chain; on CUDA: 1)")
    p.add_argument("--graph-moves", type=int, default=DEMO_GRAPH_MOVES,
                   help="most moves between graphs in the graph stage after SVI (GraphRefinement.graph_moves; "
                        f"default {DEMO_GRAPH_MOVES} here, as the persona data's blocks share several identified "
                        "edges; 0 is the library's default)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--overwrite", action="store_true",
                   help="replace data/, truth/, level1/ and run/ in an OUT the demo did not write "
                        "(a folder of an earlier demo is reused without it)")
    p.set_defaults(func=run)


def _level1(dataset, out: Path, args) -> str:
    from pyro_personax.cli.independence import OUTPUT_FILES, write_battery_outputs
    from pyro_personax.independence import battery_summary, test_battery

    paths = {k: out / v for k, v in OUTPUT_FILES.items()}
    out.mkdir(parents=True, exist_ok=True)
    table = test_battery(
        dataset.structured_frame(), dataset.trait_columns, dataset.feature_columns,
        tests=args.level1_tests, progress=not args.no_progress, seed=args.seed,
    )
    write_battery_outputs(table, paths, alpha=0.05)
    return battery_summary(table, alpha=0.05)


#: Marks a folder as written by ``personax demo``: a rerun replaces the demo's own outputs in it.
DEMO_MARKER = ".personax-demo"
DEMO_PARTS = ("data", "truth", "level1", "run")
#: Graphs drawn from each chain's q(G) for the posterior expected SHD of the summary.
GRAPH_DRAWS = 500


def _prepare_out(out: Path, overwrite: bool) -> bool:
    """Check ``out`` and mark it as the demo's; return whether the demo's outputs may be replaced.

    A folder an earlier demo wrote (it holds :data:`DEMO_MARKER`) is reused: the demo
    replaces its own ``data/``, ``truth/``, ``level1/`` and ``run/`` and touches nothing
    else. Any of those in a folder the demo did not write is an error unless
    ``overwrite``.
    """
    marker = out / DEMO_MARKER
    if marker.is_file():
        return True
    existing = [out / part for part in DEMO_PARTS if (out / part).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{existing[0]} already exists and was not written by personax demo; choose another --out "
            "or pass --overwrite to replace it"
        )
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by personax demo; a rerun replaces data/, truth/, level1/ and run/ here\n")
    return overwrite


def default_num_workers(num_chains: int, device: str) -> int:
    """Worker processes for the demo's chains: one per usable CPU core, at most one per chain; 1 on CUDA.

    The chains' numbers do not depend on it (workers are seeded as the chains one after
    another are), only the wall time does.

    Parameters
    ----------
    num_chains
        Chains to train.
    device
        The fit's device request (``"auto"``, ``"cpu"``, ``"cuda"``, ...).
    """
    from pyro_personax.inference.devices import resolve_device

    if resolve_device(device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(num_chains, cores))


def block_lines(blocks, truth) -> list[str]:
    """``P(A -> B) = p (truth: 0/1)`` for every ordered pair of distinct modality blocks.

    Parameters
    ----------
    blocks, truth
        Blocks x blocks tables (:func:`~pyro_personax.identifiability.block_probabilities`)
        of the posterior and of the true graph.
    """
    names = [b for b in blocks.index if b != SHARED]
    return [f"P({a} -> {b}) = {blocks.loc[a, b]:.2f} (truth: {int(truth.loc[a, b])})"
            for a in names for b in names if a != b]


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status."""
    import numpy as np
    import pandas as pd

    from pyro_personax import PersonaX
    from pyro_personax.cli.run_outputs import check_run_dir, top_edges, write_fit_outputs
    from pyro_personax.cli.simulate import write_truth
    from pyro_personax.data import write_persona
    from pyro_personax.graph import to_dag
    from pyro_personax.identifiability import block_probabilities
    from pyro_personax.inference import FitOptions, options, torch_threads
    from pyro_personax.inference.basis import search_gain
    from pyro_personax.metrics import COMPELLED, REVERSIBLE, evaluate_recovery, orientations
    from pyro_personax.synthetic import persona

    check_int("--graph-moves", args.graph_moves, low=0)
    out: Path = args.out
    overwrite = _prepare_out(out, args.overwrite)
    check_run_dir(out / "run", overwrite)
    start = time.perf_counter()
    dataset, truth = persona(args.num_entities, seed=args.seed, kind=args.kind)
    write_persona(dataset, out / "data", overwrite=overwrite)
    data = dataset.to_multimodal()
    write_truth(truth, out / "truth", entity_ids=data.entity_ids)
    print(f"[1/3] synthetic {args.kind} data: {dataset.num_entities} people, true latent DAG with "
          f"{int(truth.adjacency.sum())} edges over {truth.layout.latent_dim} latents -> {out / 'data'}")

    print(f"[2/3] Level I: {_level1(dataset, out / 'level1', args)} -> {out / 'level1'}")

    layout = truth.layout
    px = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim)
    num_chains = FitOptions().num_chains if args.num_chains is None else args.num_chains
    num_workers = default_num_workers(num_chains, args.device) if args.num_workers is None else args.num_workers
    stage = dataclasses.replace(options.DEFAULT_GRAPH_REFINEMENT, graph_moves=args.graph_moves)
    px.fit(data, num_epochs=args.num_epochs, num_chains=num_chains, seed=args.seed,
           device=args.device, num_threads=args.num_threads, progress=not args.no_progress,
           num_workers=num_workers, refine_graph=stage)
    learned = px.get_latent_representation(data)
    blocks = np.array(layout.block_of)  # the model's layout is the truth's: match latents within blocks
    identified = layout.identified_mask()
    probs = px.edge_probabilities().to_numpy()
    dag = to_dag(probs, 0.5)
    score = evaluate_recovery(learned, truth.latents, dag, truth.adjacency, identified=identified,
                              learned_blocks=blocks, true_blocks=blocks, with_r2=False)
    draws = px.sample_posterior(GRAPH_DRAWS, seed=args.seed)["edges"]  # (C, S, D, D), chain 0's labels
    soft = evaluate_recovery(learned, truth.latents, probs, truth.adjacency, identified=identified,
                             learned_blocks=blocks, true_blocks=blocks, with_r2=False,
                             graph_samples=draws.reshape(-1, *draws.shape[-2:]))
    truth_args = {"truth_adjacency": truth.adjacency, "truth_latents": truth.latents,
                  "truth_blocks": list(layout.block_of), "truth_entity_ids": data.entity_ids}
    with torch_threads(args.num_threads):  # the posterior draws of the outputs, as the fit
        paths = write_fit_outputs(px, data, out / "run", seed=args.seed, truth=truth_args, overwrite=overwrite)
    epochs = max(chain.num_epochs for chain in px.fit_result.chains)
    side_by_side = f", {num_workers} at a time in worker processes" if num_workers > 1 else ""
    print(f"[3/3] Level II: {px.num_chains} chains x {epochs} epochs{side_by_side} -> {out / 'run'}")
    print("      most probable edges (pooled over chains; * = absorbable, not fixed by the likelihood):")
    absorbable = px.layout.absorbable_mask()
    for parent, child, p in top_edges(px):
        mark = " *" if absorbable[px.layout.index(parent), px.layout.index(child)] else ""
        print(f"        P({parent} -> {child}) = {p:.2f}{mark}")
    agree = px.chain_alignment.correlations[1:]
    if agree.size:
        print(f"      restarts against chain 0 after matching their latent labels: mean |Spearman| "
              f"{agree.mean():.2f} (lowest {agree.min():.2f})")
    searched = [c for c in px.fit_result.chains if c.basis_scores]
    if searched:
        gains = ", ".join(f"{search_gain(c.basis_scores, c.basis_identity_score):+.3f}" for c in searched)
        print(f"      basis inside the modality blocks chosen after SVI by the LiNGAM score (gain per chain: "
              f"{gains} nats per entity); the score separates bases weakly, so chains can keep different ones")
    taken = [c.graph_moves_taken for c in px.fit_result.chains if c.graph_moves_taken is not None]
    if args.graph_moves and taken:
        print(f"      then moves between graphs on the identified edges (at most {args.graph_moves} per chain, "
              f"--graph-moves; the library's default is {options.GraphRefinement.graph_moves}): "
              f"taken per chain {', '.join(map(str, taken))}")
    n_true = int(truth.adjacency.sum())
    n_identified = int(score["num_true_identified"])
    print(f"      against the truth (latents matched within blocks by |Spearman|): MCC {score['mcc']:.2f} "
          f"(over the latents with an identified true edge: {score['mcc_pinned']:.2f}), "
          f"SHD {score['shd']} (true graph: {n_true} edges, {n_identified} of them cross-modal: "
          f"the ones the data decide)")
    print(f"      identified (cross-modal) edges: {int(score['recovered_identified'])} of {n_identified} recovered "
          f"at P > 0.5, SHD {score['shd_identified']} (posterior expected SHD {soft['expected_shd_identified']:.1f}), "
          f"AUROC {soft['edge_auroc_identified']:.2f}, ECE {soft['ece_identified']:.2f} over the "
          f"{int(identified.sum())} ordered cross-modal pairs")
    kinds = orientations(dag)[dag.astype(bool) & identified]
    print(f"      directions of the {kinds.size} identified edges at P > 0.5: {int((kinds == COMPELLED).sum())} "
          f"compelled by v-structures, {int((kinds == REVERSIBLE).sum())} reversible (only the additive-noise "
          "form orients those: weak evidence)")
    print(f"      undecided edges: {int(score['recovered_undecided'])} of {int(score['num_true_undecided'])} "
          f"at P > 0.5 (AUROC {soft['edge_auroc_undecided']:.2f}; not decided by the data)")
    print("      block-level graph (P of at least one edge from one modality block to another; whether the "
          "blocks are linked is decided even where single latents are not pinned, the direction rests on "
          "orientation):")
    reported = pd.read_csv(paths["report"] / "block_graph.csv", index_col=0)  # the report's, from the same draws
    for line in block_lines(reported, block_probabilities(layout, truth.adjacency[None])):
        print(f"        {line}")
    print(f"done in {time.perf_counter() - start:.0f} s; report: {paths['report'] / 'report.html'}")
    return 0
