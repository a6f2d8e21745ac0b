"""Recovery on the demo's synthetic persona data, for chosen model options.

For each seed and each ``--latent-transform``, fits ``PersonaX`` as ``personax demo``
does (the truth's layout, 2,000 people, the demo's moves between graphs in the graph
stage, the library's defaults otherwise, its number of epochs included unless
``--epochs`` is given: 400 at 2,000 people; ``--chains`` restarts) and prints the
demo's scores: MCC over latents matched within blocks, and, on the identified
(cross-modal) edges, the number recovered at P > 0.5 of the thresholded acyclic graph,
its SHD, and AUROC and ECE of the edge probabilities.
``R2_shared`` is the mean over the learned shared latents of the R^2 of a linear fit of
each on the true shared latents: below 1 when the learned shared block holds modality
information (the modality decoders read the shared block too, so the likelihood allows it).
``R2_block`` is the mean over the true latents of the R^2 of a linear fit of each on the learned
latents of its own block and the shared block: the precision of the latents whatever their basis
inside a block.

Ablations of the representation (each applies to every run of the command):

- ``--known-graph``: the true graph is given as prior knowledge (its edges required,
  every other pair forbidden), so ``q(G)`` has nothing to learn and ``p(z | G)`` is the
  true graph's from the first step: what the representation reaches when the graph
  side is exact;
- ``--posterior-covariance``, ``--mechanism``: ``PersonaX``'s ``posterior_covariance`` and
  ``mechanism``;
- ``--sparsity``: ``fit``'s edge charge (a number, in nats per edge, or ``bic``);
- ``--anneal-epochs``, ``--graph-warmup-epochs``: ``fit``'s schedule, which otherwise
  stretches with the fit's length;
- ``--no-graph-stage``: no graph stage after SVI, so the scores are those of SVI's own
  basis and ``q(G)``;
- ``--basis-polish R [R ...]``: the graph stage's ``basis_polish`` rounds (default: the
  library's); with several values, each fit is trained once (checkpointed to a temporary
  folder) and its graph stage run once per value from the same trained state, so the rows
  differ by the stage alone;
- ``--graph-moves M [M ...]``: the graph stage's ``graph_moves`` (default: the demo's,
  ``DEMO_GRAPH_MOVES``; ``0`` is the library's),
  paired with the ``--basis-polish`` values in the same way (one training, one graph stage
  per pair of values).

With ``--per-chain`` each restart is also scored on its own (its own latents and
``q(G)``), with its final training ELBO and best validation ELBO per entity, its
expected number of cross-modal edges under its ``q(G)`` (``E_x``) and the best score of
its basis search: do the restarts with the higher ELBO, or the sparser cross-modal
graph, recover more? ``--save-chains DIR`` writes, per seed and stage, an ``.npz`` with
every restart's edge probabilities (own labels and chain 0's), latents, ELBOs, basis
scores and per-entity log densities (with the fit's validation rows), and the truth, for
scoring other ways of pooling the restarts afterwards (``chain_selection.py``).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/persona_recovery.py --seeds 0 1 --chains 1 \\
        --latent-transforms identity spline
    OMP_NUM_THREADS=1 python benchmarks/persona_recovery.py --seeds 0 1 --latent-transforms identity \\
        --known-graph --epochs 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

LOG_DENSITY_DRAWS = 100  # joint posterior draws per entity and restart for --save-chains' log densities


def recovery_scores(learned: np.ndarray, true: np.ndarray, P: np.ndarray, adjacency: np.ndarray,
                    identified: np.ndarray, blocks: np.ndarray) -> tuple[dict, dict]:
    """The demo's scores: :func:`~pyro_personax.metrics.evaluate_recovery` of the edge probabilities ``P``
    ``(D, D)`` (``soft``) and of the acyclic graph thresholded at 0.5 (``hard``) against the true
    ``adjacency`` ``(D, D)``, latents ``learned`` and ``true`` ``(N, D)`` matched within ``blocks`` ``(D,)``,
    the ``identified`` ``(D, D)`` edges apart."""
    from pyro_personax.graph import to_dag
    from pyro_personax.metrics import evaluate_recovery

    kw = {"identified": identified, "learned_blocks": blocks, "true_blocks": blocks, "with_r2": False}
    soft = evaluate_recovery(learned, true, P, adjacency, **kw)
    hard = evaluate_recovery(learned, true, to_dag(P, 0.5), adjacency, **kw)
    return soft, hard


def demo_scores(px, data, truth) -> tuple[dict, dict]:
    """:func:`recovery_scores` of a fitted ``px``'s pooled edge probabilities and latents."""
    layout = truth.layout
    return recovery_scores(px.get_latent_representation(data), truth.latents, px.edge_probabilities().to_numpy(),
                           truth.adjacency, layout.identified_mask(), np.array(layout.block_of))


def print_chains(px, data, truth) -> None:
    """Print every restart's ELBOs and its own scores (its latents and ``q(G)``, in its own labels)."""
    layout, chains = truth.layout, px.chains
    for c in range(chains.num_chains):
        learned = chains.own_latent_means(data, c)
        P = chains.guide(c).edge_probabilities().detach().cpu().numpy().astype(np.float64)
        soft, hard = recovery_scores(learned, truth.latents, P, truth.adjacency, layout.identified_mask(),
                                     np.array(layout.block_of))
        trace = px.fit_result.chains[c]
        elbo = f"ELBO train {trace.train_elbo[-1]:.2f}, validation {np.nanmax(trace.validation_elbo):.2f}"
        basis = f"{max(trace.basis_scores):.3f}" if trace.basis_scores else "-"
        print(f"     chain {c}: {elbo}; E_x {float(P[layout.identified_mask()].sum()):.2f}, basis score {basis}; "
              f"MCC {soft['mcc']:.3f}, {hard['recovered_identified']}/{hard['num_true_identified']} identified, "
              f"AUROC_id {soft['edge_auroc_identified']:.3f}, "
              f"R2_shared {shared_r2(learned, truth.latents, layout.shared_dim):.3f}, "
              f"R2_block {block_r2(learned, truth.latents, layout):.3f}", flush=True)


def entity_log_density(px, data, num_samples: int = LOG_DENSITY_DRAWS, seed: int = 0) -> np.ndarray:
    """Every restart's importance estimate of ``log p(x_n)`` ``(C, N)``: the log-mean-exp over ``num_samples``
    joint draws ``(G, z_n, eta_n)`` of the per-entity log-weights of
    :func:`~pyro_personax.inference.posterior.collect_posterior` (``G ~ q(G)``, ``z, eta`` from the amortized
    posterior). It reads no latent labels, so restarts with different bases are compared on the same scale."""
    import torch

    from pyro_personax.inference.posterior import collect_posterior

    arrays = collect_posterior(px.chains, data, num_samples=num_samples, num_predictive=0, max_entities=None,
                               seed=seed)
    log_w = torch.as_tensor(arrays["log_weights"], dtype=torch.float64)  # (C, S, N)
    return (torch.logsumexp(log_w, dim=1) - np.log(log_w.shape[1])).numpy()


def save_chains(px, data, truth, folder: str, name: str, seed: int) -> None:
    """Write ``folder/name.npz``: the restarts' edge probabilities ``P_own`` and ``P_aligned`` ``(C, D, D)`` (own
    labels, chain 0's), latents ``own_latents`` ``(C, N, D)`` and ``latents`` ``(N, D)`` (pooled, chain 0's labels),
    ``train_elbo``, ``validation_elbo``, ``basis_score`` ``(C,)``, every entity's ``log_density`` ``(C, N)``
    (:func:`entity_log_density`), the fit's ``validation_rows`` (the split of ``fit(seed=seed)``), and the truth
    (``true_latents``, ``adjacency``, ``identified``, ``blocks``)."""
    from pyro_personax.inference.options import FitOptions

    chains, traces = px.chains, px.fit_result.chains
    _, validation = data.split_rows(FitOptions().validation_fraction, seed=seed)
    Path(folder).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        Path(folder) / f"{name}.npz",
        log_density=entity_log_density(px, data, seed=seed), validation_rows=validation,
        P_own=np.stack([chains.guide(c).edge_probabilities().detach().cpu().numpy().astype(np.float64)
                        for c in range(chains.num_chains)]),
        P_aligned=chains.chain_edge_probabilities(),
        own_latents=np.stack([chains.own_latent_means(data, c) for c in range(chains.num_chains)]),
        latents=px.get_latent_representation(data),
        train_elbo=np.array([t.train_elbo[-1] for t in traces]),
        validation_elbo=np.array([np.nanmax(t.validation_elbo) for t in traces]),
        basis_score=np.array([max(t.basis_scores) if t.basis_scores else np.nan for t in traces]),
        true_latents=truth.latents, adjacency=truth.adjacency, identified=truth.layout.identified_mask(),
        blocks=np.array(truth.layout.block_of))


def shared_r2(learned: np.ndarray, true: np.ndarray, shared_dim: int) -> float:
    """Mean R^2 of a linear fit of each learned shared latent on the true shared latents.

    ``learned``, ``true``: ``(N, D)`` latents in the layout's order (shared block first).
    """
    return float(np.mean([linear_r2(true[:, :shared_dim], y) for y in learned[:, :shared_dim].T]))


def block_r2(learned: np.ndarray, true: np.ndarray, layout) -> float:
    """Mean over the true latents of the R^2 of a linear fit of each on the learned latents of its own
    block and the shared block (a shared latent: on the learned shared block alone).

    The precision of the representation whatever its basis inside a block: 1 when every block holds its
    true latents exactly up to an invertible linear map. In-sample least squares (at most a dozen
    regressors on thousands of rows). ``learned``, ``true``: ``(N, D)`` latents in ``layout``'s order.
    """
    from pyro_personax.layout import SHARED

    blocks = np.array(layout.block_of)
    shared = blocks == SHARED
    return float(np.mean([linear_r2(learned[:, shared | (blocks == blocks[j])], y) for j, y in enumerate(true.T)]))


def linear_r2(X: np.ndarray, y: np.ndarray) -> float:
    """In-sample R^2 of the least-squares fit of ``y`` ``(N,)`` on ``X`` ``(N, k)`` and an intercept."""
    X = np.column_stack([np.ones(len(y)), X])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return 1.0 - np.var(y - X @ coef) / np.var(y)


def known_graph(adjacency: np.ndarray, layout) -> dict:
    """``required`` / ``forbidden`` arguments of ``PersonaX`` that fix the graph to ``adjacency`` ``(D, D)``.

    Names are the ones ``PersonaX`` gives the latents of data (``s1``, ``face_1``, ...),
    in ``layout``'s order.
    """
    names = [f"s{k + 1}" for k in range(layout.shared_dim)]
    for block, size in layout.modality_dims.items():
        names += [f"{block}_{k + 1}" for k in range(size)]
    pairs = [(names[i], names[j]) for i in range(len(names)) for j in range(len(names)) if i != j]
    return {"required": [(a, b) for a, b in pairs if adjacency[names.index(a), names.index(b)]],
            "forbidden": [(a, b) for a, b in pairs if not adjacency[names.index(a), names.index(b)]]}


def main(argv=None) -> None:
    from pyro_personax.models.latent_flow import MECHANISMS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=None, help="(default: the library's)")
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--latent-transforms", nargs="+", default=["identity", "spline"],
                        choices=("identity", "spline"))
    parser.add_argument("--known-graph", action="store_true",
                        help="give the true graph as prior knowledge (true edges required, the rest forbidden)")
    parser.add_argument("--posterior-covariance", default=None, choices=("diagonal", "full"),
                        help="PersonaX's posterior_covariance (default: the library's)")
    parser.add_argument("--mechanism", default=None, choices=MECHANISMS,
                        help="PersonaX's mechanism (default: the library's)")
    parser.add_argument("--sparsity", default=None,
                        help="fit's edge charge: a number or 'bic' (default: the library's)")
    parser.add_argument("--anneal-epochs", type=int, default=None,
                        help="fit's anneal_epochs, the temperature schedule's length (default: the fit's length)")
    parser.add_argument("--graph-warmup-epochs", type=int, default=None,
                        help="fit's graph_warmup_epochs (default: a tenth of the fit's length)")
    parser.add_argument("--no-graph-stage", action="store_true",
                        help="skip the graph stage after SVI (refine_graph=False): SVI's own basis and q(G)")
    parser.add_argument("--basis-polish", type=int, nargs="+", default=None,
                        help="the graph stage's basis_polish rounds (default: the library's); several values "
                        "share one training")
    parser.add_argument("--graph-moves", type=int, nargs="+", default=None,
                        help="the graph stage's graph_moves (default: the demo's, 3; 0 is the library's); several "
                        "values share one training, as --basis-polish's do")
    parser.add_argument("--per-chain", action="store_true", help="also score every restart on its own")
    parser.add_argument("--save-chains", default=None, metavar="DIR",
                        help="write every restart's edge probabilities, latents and ELBOs to DIR (one .npz per fit)")
    args = parser.parse_args(argv)
    if args.no_graph_stage and (args.basis_polish or args.graph_moves) is not None:
        parser.error("--basis-polish, --graph-moves: not with --no-graph-stage (they set the graph stage)")
    fit_options = {"refine_graph": False} if args.no_graph_stage else {}
    if args.sparsity is not None:
        fit_options["sparsity"] = "bic" if args.sparsity == "bic" else float(args.sparsity)
    for name in ("anneal_epochs", "graph_warmup_epochs"):
        if getattr(args, name) is not None:
            fit_options[name] = getattr(args, name)

    from environment import describe

    from pyro_personax import PersonaX
    from pyro_personax.cli.demo import DEMO_GRAPH_MOVES
    from pyro_personax.inference.options import GraphRefinement
    from pyro_personax.synthetic import persona

    stages = [(rounds, moves) for rounds in args.basis_polish or [GraphRefinement.basis_polish]
              for moves in args.graph_moves or [DEMO_GRAPH_MOVES]]
    print(describe(), flush=True)
    print(f"{'seed':>4} {'transform':>9} {'polish':>6} {'moves':>5} {'s':>5} {'MCC':>6} {'recovered':>9} {'SHD_id':>6} "
          f"{'AUROC_id':>8} {'ECE_id':>6} {'R2_shared':>9} {'R2_block':>8}")
    for seed in args.seeds:
        dataset, truth = persona(args.entities, seed=seed)
        data, layout = dataset.to_multimodal(), truth.layout
        options = {name: getattr(args, name) for name in ("posterior_covariance", "mechanism")
                   if getattr(args, name) is not None}
        if args.known_graph:
            options.update(known_graph(truth.adjacency, layout))
        for transform in args.latent_transforms:
            with tempfile.TemporaryDirectory() as folder:
                for k, (rounds, moves) in enumerate(stages):
                    px = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim,
                                  latent_transform=transform, **options)
                    stage = {} if args.no_graph_stage else {
                        "refine_graph": GraphRefinement(basis_polish=rounds, graph_moves=moves)}
                    shared_training = {"checkpoint_dir": folder, "resume": k > 0} if len(stages) > 1 else {}
                    start = time.perf_counter()
                    px.fit(data, num_epochs=args.epochs, num_chains=args.chains, seed=seed, device="cpu",
                           progress=False, **{**fit_options, **stage, **shared_training})
                    seconds = time.perf_counter() - start
                    print_row(px, data, truth, f"{seed:>4} {transform:>9} {rounds:>6} {moves:>5} {seconds:>5.0f}")
                    if args.per_chain:
                        print_chains(px, data, truth)
                    if args.save_chains:
                        save_chains(px, data, truth, args.save_chains, f"seed{seed}_{transform}_p{rounds}_m{moves}",
                                    seed)


def print_row(px, data, truth, head: str) -> None:
    """Print ``head`` and the demo's scores of the fitted ``px``."""
    soft, hard = demo_scores(px, data, truth)
    learned = px.get_latent_representation(data)
    shared = shared_r2(learned, truth.latents, truth.layout.shared_dim)
    print(f"{head} {soft['mcc']:>6.3f} "
          f"{hard['recovered_identified']:>4}/{hard['num_true_identified']:<4} {hard['shd_identified']:>6} "
          f"{soft['edge_auroc_identified']:>8.3f} {soft['ece_identified']:>6.3f} {shared:>9.3f} "
          f"{block_r2(learned, truth.latents, truth.layout):>8.3f}", flush=True)

if __name__ == "__main__":
    main()
