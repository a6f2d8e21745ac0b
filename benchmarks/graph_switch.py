"""A basis of the exact variant-MNIST latents polished under each of several fixed DAGs, scored on held-out rows.

``block_flow.py`` polishes invertible maps inside the blocks under the DAG that the
current basis makes most probable, and ``local_scores.py`` found that no such polish
leaves its start's DAG: the edge charge is discrete, so a gradient in the basis is never
rewarded for dropping an edge. This script fixes the DAG instead. The rows are the
standardised true latents of seed ``S`` mixed inside each block by
:func:`block_flow.mixed_truth` (``--degrees``; the generator's first 9,000 rows); the first
``--train`` rows fit, the rest score. For each DAG ``G`` of ``--graphs`` (edges ``ij`` =
latent ``i`` -> latent ``j``, latents 0, 1 colour and 2, 3 fashion, so ``01 02 23`` is the
truth's graph), fresh block flows (:func:`block_flow.block_flows`, at the identity) and a
fresh model (:func:`noise_shape.new_model`) are fitted together on the training rows under
``G`` alone (:func:`block_flow.polish` with ``graph=G``): the mechanisms of ``G``'s
families, each fitted on its own, and the flows that make ``G`` fit best.

Printed per DAG, on the held-out rows, the flows and mechanisms fixed: ``held-out``, the
mean log density ``log p(u | G) + log |det J|`` in the standardised truth's coordinates
(every version is the same data, so under an exact density every basis and every DAG
that holds the truth's independences scores the same); ``penalised``, that less the BIC
charge of ``G``'s edges per training entity; the matched latents' absolute Spearman
correlations with the truth and ``MCC_PINNED`` (``Z11``, ``Z21``). ``true density``: the
closed-form density of the held-out rows (no charge).

``--latents DIR`` runs the library's search between graphs with linear maps inside the
blocks (:func:`~pyro_personax.inference.graph_moves.switch_graph`, ``--moves`` moves of
``--steps`` steps per candidate) on the training rows of the posterior means that
``recovery_variant_mnist.py --save-latents DIR`` wrote, from the most probable DAG (the
model's mechanisms fitted on random parent sets) and, for comparison, from the truth's
graph on the matched latents (the other latents without edges); printed: each start's
final DAG, its score and the matched latents' absolute Spearman correlations. ``--turned
DEG`` does the same on the true latents turned by ``DEG`` degrees inside each block (a
basis that a linear map takes back to the truth's). ``--fixed-on DIR`` fits and scores each
DAG of ``--graphs`` (indices of the fit's latents) as above on the training rows of a saved
fit instead (the first ``--train`` fit, the rest score, in the fit's standardised
coordinates), the flows starting at the identity or, ``--start truth``, fitted by least
squares to map each matched latent onto its true latent (the construction of
``block_flow.py``): whether the per-graph held-out score ranks the truth's basis first.
``--homoscedastic`` fits the library's ``"mlp_additive"`` mechanisms, whose log noise scale
is 0 (the truth's noise is additive; exact latents or ``--fixed-on``). ``--rounds 0`` scores a
start basis with only the mechanisms fitted; ``--rows-to ROWS`` saves each DAG's held-out log
densities, for paired differences between DAGs or starts, and its fitted basis of all rows (``residual_independence.py``
scores those).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/graph_switch.py --seeds 0 --graphs "10 12 13 20 23 30" "01 02 23"
    OMP_NUM_THREADS=1 python benchmarks/graph_switch.py --seeds 0 --latents /tmp/vm --steps 600
    OMP_NUM_THREADS=1 python benchmarks/graph_switch.py --seeds 0 --turned 30 --steps 300 --moves 5
    OMP_NUM_THREADS=1 python benchmarks/graph_switch.py --seeds 0 --fixed-on /tmp/vm --start truth --graphs "10 13 32"
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from block_flow import (  # noqa: E402
    block_flows,
    blocks_of,
    fit_to_targets,
    mapped,
    mixed_truth,
    polish,
    spearman_of_matches,
)
from learned_latents_exact import matching, training_rows  # noqa: E402
from local_scores import turned  # noqa: E402
from noise_shape import fit_on_graph, new_model, true_node_log_density  # noqa: E402
from recovery_variant_mnist import link_layout  # noqa: E402

TRUE_BLOCKS = ["colour", "colour", "fashion", "fashion"]


def parse_graph(edges: str, D: int = 4) -> torch.Tensor:
    """The adjacency ``(D, D)`` of ``"ij ij ..."`` (``i`` -> ``j``); an error if it is not a DAG of ``D`` latents."""
    A = torch.zeros(D, D)
    for e in edges.split():
        if len(e) != 2 or not e.isdigit() or int(e[0]) >= D or int(e[1]) >= D or e[0] == e[1]:
            raise ValueError(f"--graphs {edges!r}: edge {e!r} is not two different latent indices below {D}")
        A[int(e[0]), int(e[1])] = 1.0
    if not bool((torch.linalg.matrix_power(A + torch.eye(D), D) * A.T).sum() == 0):
        raise ValueError(f"--graphs {edges!r}: not acyclic")
    return A


def edges_of(A: torch.Tensor) -> str:
    """``"ij ..."`` of adjacency ``A`` ``(D, D)``."""
    return " ".join(f"{i}{j}" for i, j in np.argwhere(A.numpy() > 0))


def rows(seed: int, degrees: float, n_train: int):
    """``(x (9000, 4) float32, truth (9000, 4), per-row log |dx/dt| (9000,))``: the generator's first 9,000 true
    latents of ``seed``, mixed (:func:`block_flow.mixed_truth`) and standardised; ``t`` is the standardised truth."""
    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    truth = sample_variant_mnist_latents(10_000, seed=seed)[:9000].astype(float)
    if not 0 < n_train < len(truth):
        raise ValueError(f"--train {n_train}: expected between 1 and {len(truth) - 1}")
    w = mixed_truth(truth, degrees)
    t = (truth - truth.mean(0)) / truth.std(0)
    log_jac = np.log1p(1 / np.cosh(2 * turned(t, degrees)) ** 2).sum(1) - np.log(w.std(0)).sum()
    return torch.as_tensor((w - w.mean(0)) / w.std(0), dtype=torch.float32), truth, log_jac


def fit_and_score(x, truth, log_jac, n_train, A, *, rounds, steps, seed, blocks=TRUE_BLOCKS, targets=None,
                  rows_to=None, homoscedastic=False):
    """Polish fresh flows and mechanisms under DAG ``A`` on the training rows; score the held-out rows (module
    docstring). ``blocks``: the block of each column of ``x``; ``targets`` ``(N, D)``: start the flows fitted by
    least squares to map the training rows onto these (else at the identity); ``rows_to``: a path to save the
    held-out rows' log densities ``(N - n_train,)`` (``.npy``), and at :func:`basis_path` (``.npz``) the fitted
    ``basis`` of every row ``(N, D)`` (the flows' output standardised by the training rows' mean and spread) and
    ``logdet`` ``(N - n_train,)``, the held-out rows' log |det| of the map from the scored coordinates to it.
    ``homoscedastic``: the library's ``"mlp_additive"`` mechanisms, whose log noise scale is 0 (additive noise;
    the ``"mlp"`` mechanisms' scale given the parents is otherwise learned).
    Returns ``(held-out per entity, penalised per entity, |spearman| (4,))``."""

    train, test = x[:n_train], x[n_train:]
    slices = blocks_of(blocks)
    flows = block_flows([len(idx) for idx in slices], seed=seed)
    model = new_model("spline", seed, link_layout(blocks), mechanism="mlp_additive" if homoscedastic else "mlp")
    if targets is not None:
        mse = fit_to_targets(train, slices, flows, targets[:n_train])
        print(f"  flows fitted to the truth: mean squared error {mse:.4f} (blocks summed)", flush=True)
        with torch.no_grad():
            start = mapped(train, slices, flows)[0]
    fit_on_graph(model, train if targets is None else start, A, steps=300)
    with torch.enable_grad():
        polish(model, train, slices, flows, rounds=rounds, steps=steps, seed=seed, graph=A)
    with torch.no_grad():
        w = mapped(train, slices, flows, stats=(0.0, 1.0))[0]
        u, logdet, spread = mapped(test, slices, flows, stats=(w.mean(0), w.std(0)))
        logdet = logdet - torch.log(spread).sum()
        node = model.latent_distribution(A).node_log_prob(u).sum(-1)
    held = float((node + logdet).mean()) + float(log_jac[n_train:].mean())
    if rows_to is not None:
        np.save(rows_to, (node + logdet).numpy() + log_jac[n_train:])
        np.savez(basis_path(rows_to), basis=torch.cat([(w - w.mean(0)) / w.std(0), u]).numpy(),
                 logdet=logdet.numpy() + log_jac[n_train:])
    charge = -float(model.edge_log_weight("bic", n_train)) / n_train
    perm = matching(u.numpy(), truth[n_train:], blocks)
    return held, held - charge * float(A.sum()), spearman_of_matches(u.numpy(), truth[n_train:], perm)


def basis_path(rows_to: Path) -> Path:
    """Where :func:`fit_and_score` saves the fitted basis beside the held-out log densities ``rows_to``."""
    return rows_to.with_name(rows_to.stem + "_basis.npz")


def rows_path(rows_dir, seed: int, start: str, edges: str) -> Path | None:
    """``rows_dir/seed{seed}_{start}_{edges}.npy`` (edges joined by ``-``; ``start`` is ``fit``, ``truth`` or, for the
    exact latents, ``mixed``), or ``None`` without ``rows_dir``."""
    return None if rows_dir is None else Path(rows_dir) / f"seed{seed}_{start}_{edges.replace(' ', '-')}.npy"


def fixed_on_fit(f: dict, seed: int, graphs, *, n_train: int, start: str, rounds: int, steps: int,
                 rows_dir=None, homoscedastic: bool = False) -> None:
    """Print :func:`fit_and_score` of each DAG of ``graphs`` (latent indices of the fit) on the training latents
    of one saved fit's arrays ``f``, from the fit's basis or, ``start="truth"``, from flows fitted to the truth;
    with ``rows_dir``, each DAG's held-out log densities are saved there (:func:`rows_path`); ``homoscedastic``: as
    :func:`fit_and_score`'s."""
    z, truth, blocks = training_rows(f)
    if not 0 < n_train < len(z):
        raise ValueError(f"--train {n_train}: expected between 1 and {len(z) - 1} (the fit's training rows)")
    x = torch.as_tensor((z - z[:n_train].mean(0)) / z[:n_train].std(0), dtype=torch.float32)
    perm = matching(z, truth, blocks)
    corr = spearman_of_matches(x.numpy()[n_train:], truth[n_train:], perm)
    print(f"seed {seed}: the fit's blocks {blocks}, matched {[int(p) for p in perm]}, held-out |spearman| "
          f"Z11 Z12 Z21 Z22 " + " ".join(f"{c:.3f}" for c in corr)
          + f", MCC_PINNED {(corr[0] + corr[2]) / 2:.3f}; flows start at {start}", flush=True)
    targets = None
    if start == "truth":
        t = (truth - truth[:n_train].mean(0)) / truth[:n_train].std(0)
        targets = x.clone()
        for k, p in enumerate(perm):  # each matched latent onto its true latent
            targets[:, p] = torch.as_tensor(t[:, k], dtype=torch.float32)
    for g in graphs:
        A = parse_graph(g, len(blocks))
        began = time.perf_counter()
        rows_to = rows_path(rows_dir, seed, start, g)
        held, pen, corr = fit_and_score(x, truth, np.zeros(len(x)), n_train, A, rounds=rounds, steps=steps,
                                        seed=seed, blocks=blocks, targets=targets, rows_to=rows_to,
                                        homoscedastic=homoscedastic)
        print(line(seed, A, held, pen, corr, time.perf_counter() - began), flush=True)


def line(seed: int, A, held: float, pen: float, corr, seconds: float) -> str:
    """The printed line of one DAG's fit."""
    return (f"seed {seed}, DAG {edges_of(A)}: held-out {held:.4f}, penalised {pen:.4f}, |spearman| Z11 Z12 Z21 Z22 "
            + " ".join(f"{c:.3f}" for c in corr) + f", MCC_PINNED {(corr[0] + corr[2]) / 2:.3f} ({seconds:.0f} s)")


def turned_truth(seed: int, degrees: float) -> dict:
    """The arrays of a saved fit made of the generator's first 9,000 true latents of ``seed``, standardised and
    turned by ``degrees`` inside each block (:func:`local_scores.turned`), all rows training rows."""
    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    truth = sample_variant_mnist_latents(10_000, seed=seed)[:9000].astype(float)
    t = (truth - truth.mean(0)) / truth.std(0)
    return {"latents": turned(t, degrees), "true_latents": truth, "train": np.arange(len(t)),
            "blocks": np.array(["colour"] * 2 + ["fashion"] * 2)}


def learned_moves(f: dict, seed: int, *, moves: int, steps: int) -> None:
    """Print the library's moves between graphs on the training latents of one saved fit's arrays ``f``
    (module docstring)."""
    from equivalent_representations import fitted_model

    from pyro_personax.inference.graph_moves import switch_graph
    from pyro_personax.inference.nonfinite import restore
    from pyro_personax.inference.refine import map_dag
    from pyro_personax.models import ModelSpec
    from pyro_personax.synthetic.variant_mnist import variant_mnist

    z, truth, blocks = training_rows(f)
    layout = link_layout(blocks)

    def matched(u):
        perm = matching(u, truth, blocks)
        corr = spearman_of_matches(u, truth, perm)
        return perm, " ".join(f"{c:.3f}" for c in corr) + f", MCC_PINNED {(corr[0] + corr[2]) / 2:.3f}"

    perm, text = matched(z)
    print(f"seed {seed}: learned blocks {blocks}, matched {[int(p) for p in perm]}, |spearman| Z11 Z12 Z21 Z22 "
          + text, flush=True)
    model, latents = fitted_model(layout, ModelSpec.from_data(variant_mnist(50, seed=0)[0]), z, seed=seed, steps=300)
    x = torch.as_tensor(latents, dtype=torch.float32)
    model.standardise_latents(x)
    fitted = [p.detach().clone() for p in model.mechanism_parameters()]
    truths = np.zeros((len(blocks),) * 2, dtype=bool)
    truths[perm[0], perm[1]] = truths[perm[0], perm[2]] = truths[perm[2], perm[3]] = True
    starts = {"most probable DAG": map_dag(model, x, "bic", len(x)).numpy().astype(bool), "truth's graph": truths}
    for name, graph in starts.items():
        restore(model.mechanism_parameters(), fitted)
        start = time.perf_counter()
        T, end, log = switch_graph(model, x, graph, max_moves=moves, steps=steps, seed=seed)
        print(f"seed {seed}, from the {name} ({int(graph.sum())} edges): " + " / ".join(
            f"{len(step['graph'])} edges {step['score']:.4f}" for step in log)
            + f"; ends at {' '.join(f'{i}{j}' for i, j in np.argwhere(end))}, |spearman| Z11 Z12 Z21 Z22 "
            + matched((x @ T.T).numpy())[1] + f" ({time.perf_counter() - start:.0f} s)", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--graphs", nargs="+", default=["10 12 13 20 23 30", "01 02 23"],
                        help="DAGs as 'ij ij ...' (latent i -> latent j; 0, 1 colour, 2, 3 fashion)")
    parser.add_argument("--degrees", type=float, default=30.0, help="the mixing's turn (block_flow.mixed_truth)")
    parser.add_argument("--train", type=int, default=6000, help="rows that fit; the rest of the 9,000 score")
    parser.add_argument("--rounds", type=int, default=4,
                        help="rounds of the polish per DAG (0: the mechanisms fitted in the start basis only)")
    parser.add_argument("--steps", type=int, default=150, help="Adam steps per round (per candidate with --latents)")
    parser.add_argument("--latents", metavar="DIR", default=None,
                        help="run the library's moves on the fits recovery_variant_mnist.py --save-latents wrote")
    parser.add_argument("--turned", type=float, default=None, metavar="DEG",
                        help="as --latents, on the true latents turned by DEG degrees inside each block")
    parser.add_argument("--moves", type=int, default=4, help="most moves with --latents or --turned")
    parser.add_argument("--fixed-on", metavar="DIR", default=None,
                        help="fit and score --graphs (the fit's latent indices) on the fits --save-latents wrote")
    parser.add_argument("--start", choices=["fit", "truth"], default="fit",
                        help="with --fixed-on: flows start at the identity or fitted to the truth")
    parser.add_argument("--homoscedastic", action="store_true",
                        help="the library's mlp_additive mechanisms: log noise scale 0 (not with --latents, --turned)")
    parser.add_argument("--rows-to", metavar="DIR", default=None,
                        help="save each DAG's held-out log densities and fitted basis here "
                        "(not with --latents, --turned)")
    args = parser.parse_args(argv)
    if args.start != "fit" and args.fixed_on is None:
        parser.error(f"--start {args.start}: only with --fixed-on")
    if args.homoscedastic and (args.latents or args.turned) is not None:
        parser.error("--homoscedastic: not with --latents or --turned (the library's moves fit their own mechanisms)")
    if args.rows_to is not None and (args.latents is not None or args.turned is not None):
        parser.error("--rows-to: not with --latents or --turned (the moves keep no held-out rows)")
    if args.fixed_on is not None:
        from learned_latents_exact import load

        for seed in args.seeds:
            fixed_on_fit(load(Path(args.fixed_on) / f"seed{seed}.npz"), seed, args.graphs, n_train=args.train,
                         start=args.start, rounds=args.rounds, steps=args.steps, rows_dir=args.rows_to,
                         homoscedastic=args.homoscedastic)
        return
    if args.latents is not None or args.turned is not None:
        from learned_latents_exact import load

        for seed in args.seeds:
            f = (turned_truth(seed, args.turned) if args.latents is None
                 else load(Path(args.latents) / f"seed{seed}.npz"))
            learned_moves(f, seed, moves=args.moves, steps=args.steps)
        return
    graphs = [parse_graph(g) for g in args.graphs]

    for seed in args.seeds:
        x, truth, log_jac = rows(seed, args.degrees, args.train)
        test = truth[args.train:]
        true = float(true_node_log_density(test).sum() - np.log(test.std(0) / truth.std(0)).sum())
        print(f"seed {seed}: true density of the held-out rows {true:.4f} per entity", flush=True)
        for g, A in zip(args.graphs, graphs):
            start = time.perf_counter()
            rows_to = rows_path(args.rows_to, seed, "mixed", g)
            held, pen, corr = fit_and_score(x, truth, log_jac, args.train, A, rounds=args.rounds, steps=args.steps,
                                            seed=seed, rows_to=rows_to, homoscedastic=args.homoscedastic)
            print(line(seed, A, held, pen, corr, time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    main()
