"""Invertible nonlinear maps inside the blocks of a fit's learned variant-MNIST latents.

The images' likelihood does not see an invertible map inside a modality block, so a
fit's latents are its blocks up to such maps. The graph stage searches linear ones
(:mod:`pyro_personax.inference.basis`, :func:`~pyro_personax.inference.refine.polish_block_basis`).
This script asks two questions of the files that ``recovery_variant_mnist.py
--save-latents DIR`` writes, on their training rows:

1. **Is there a nonlinear invertible map inside the blocks of the learned latents that
   gives the truth's graph?** Each block gets a normalizing flow (alternating spline
   couplings, :func:`pyro.distributions.transforms.spline_coupling`), fitted by least
   squares to map the block's learned latents onto its true latents, standardised (a block
   with more learned than true latents maps its extra latents onto themselves). The
   flow is invertible by construction, so its output is the same data in another basis.
   Version ``flow to truth``.
2. **Does the model's own density keep that basis?** From ``flow to truth``, the flows and
   the model's mechanisms are fitted further to raise
   ``mean_n [log p(u_n | G) + log |det J(x_n)|] - sum_j log sd_j``, the criterion of the
   linear polish with the flows in place of the block-linear map: each of ``--rounds``
   rounds refits the mechanisms on random parent sets, fixes ``G``, the most probable DAG
   given ``u`` (BIC charge), and takes ``--steps`` Adam steps. Version ``polished``; with
   ``--start learned`` (or ``both``) the same from the learned basis (flows at the
   identity), version ``polished from learned``: what a polish without the truth reaches.

For each version the script prints the exact graph posterior over every DAG of the
learned layout (:func:`equivalent_representations.exact_posterior`) with the columns of
``learned_latents_exact.py``, the matched latents' absolute Spearman correlations with
the truth, and ``score``: the model's penalised log density of the learned latents read
in that basis, per entity (mechanisms fitted afresh on random parent sets, the most
probable DAG's ``log p(u | G) + log p(G)`` over ``N``, plus the map's mean log Jacobian,
less the log standard deviations). Versions of the same seed are the same data in other
bases, so a higher ``score`` is the basis the model prefers.

``--truth-mixed DEG`` replaces the saved latents by the true latents mixed inside each
block by a known invertible map (:func:`mixed_truth`): the criterion on exact latents,
where ``flow to truth`` undoes the mixing (without ``--latents``: the generator's true latents,
first 9,000 rows). ``--noise-flow`` sets the model's noise flow. ``--criterion local`` takes
each round's DAG from a node table fitted one parent set at a time and refits the mechanisms
on that DAG alone (``local_scores.py``). ``--save-bases DIR`` writes each version's latents.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/recovery_variant_mnist.py --num-entities 10000 --seeds 0 \\
        --save-latents /tmp/vm
    OMP_NUM_THREADS=1 python benchmarks/block_flow.py --latents /tmp/vm --seeds 0
    OMP_NUM_THREADS=1 python benchmarks/block_flow.py --latents /tmp/vm --seeds 0 --truth-mixed 30 --start both
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from equivalent_representations import exact_posterior, fitted_model  # noqa: E402
from learned_latents_exact import load, matching, posterior_scores, training_rows  # noqa: E402
from recovery_variant_mnist import link_layout  # noqa: E402

#: Bins of each spline; the raw derivative at which a spline's knot has slope 1 (softplus of it is ``1 - 1e-3``).
BINS, UNIT_SLOPE = 8, math.log(math.expm1(1 - 1e-3))


def identity_start(coupling):
    """Set a spline coupling to the identity map (zero last layer, uniform bins, unit slopes); return it."""
    with torch.no_grad():
        lower = coupling.lower_spline
        for name, param in lower.named_parameters():
            param.fill_(UNIT_SLOPE if name == "unnormalized_derivatives" else 0.0)
        last = coupling.upper_spline.nn.layers[-1]
        last.weight.zero_()
        last.bias.zero_()
        m = coupling.upper_spline.input_dim  # the outputs: widths, heights, derivatives, lambdas
        last.bias[2 * m * BINS: 2 * m * BINS + m * (BINS - 1)] = UNIT_SLOPE
    return coupling


def block_flows(sizes, *, layers: int = 4, hidden: int = 32, seed: int = 0):
    """One flow per block of ``sizes`` (``None`` for a block of one latent): ``layers`` spline couplings, starting
    at the identity."""
    import pyro.distributions.transforms as T

    torch.manual_seed(seed)
    flows = []
    for d in sizes:
        if d < 2:
            flows.append(None)
            continue
        parts = []
        for _ in range(layers):  # a reversal after each coupling, an even number of them: the order is kept
            parts.append(identity_start(T.spline_coupling(d, split_dim=d // 2, hidden_dims=[hidden, hidden],
                                                          count_bins=BINS, bound=5.0)))
            parts.append(T.Permute(torch.arange(d - 1, -1, -1)))
        if layers % 2:
            parts.append(T.Permute(torch.arange(d - 1, -1, -1)))
        flows.append(T.ComposeTransformModule(parts))
    return flows


def mixed_truth(truth: np.ndarray, degrees: float) -> np.ndarray:
    """The true latents ``(N, 4)`` standardised, each block of two turned by ``degrees`` and then passed through the
    monotone map ``v + 0.5 tanh(2 v)`` per coordinate: an invertible nonlinear map inside each block, ``(N, 4)``."""
    t = (truth - truth.mean(0)) / truth.std(0)
    a = math.radians(degrees)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    w = np.concatenate([t[:, :2] @ turn.T, t[:, 2:] @ turn.T], axis=1)
    return w + 0.5 * np.tanh(2 * w)


def flow_parameters(flows) -> list[torch.nn.Parameter]:
    """The trainable parameters of every flow of ``flows`` (blocks of one latent have none)."""
    return [p for flow in flows if flow is not None for p in flow.parameters()]


def mapped(x: torch.Tensor, slices, flows, stats=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x`` ``(N, D)`` through the block flows: ``(u standardised (N, D), log |det J| (N,), spread (D,))``,
    standardised by ``stats`` ``(mean (D,), spread (D,))`` where given (default: its own)."""
    w, logdet = x.clone(), x.new_zeros(len(x))
    for idx, flow in zip(slices, flows):
        if flow is not None:
            y = flow(x[:, idx])
            logdet = logdet + flow.log_abs_det_jacobian(x[:, idx], y)
            w[:, idx] = y
    if stats is not None:
        return (w - stats[0]) / stats[1], logdet, stats[1]
    spread = w.std(0)
    return (w - w.mean(0)) / spread, logdet, spread


def fit_to_targets(x: torch.Tensor, slices, flows, targets: torch.Tensor, *, steps: int = 1500,
                   learning_rate: float = 0.003) -> float:
    """Fit the flows by least squares so that block ``idx`` of ``x`` maps onto ``targets[:, idx]``; the last MSE."""
    optimiser = torch.optim.Adam(flow_parameters(flows), lr=learning_rate)
    for _ in range(steps):
        loss = sum(((flow(x[:, idx]) - targets[:, idx]) ** 2).mean()
                   for idx, flow in zip(slices, flows) if flow is not None)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return float(loss.detach())


def polish(model, x: torch.Tensor, slices, flows, *, rounds: int, steps: int, refit_steps: int = 150,
           learning_rate: float = 0.003, seed: int = 0, criterion: str = "masks",
           noise_flow: str = "spline", graph: torch.Tensor | None = None) -> list[tuple[float, str]]:
    """Raise the polish criterion (module docstring) over the flows and mechanisms; per round ``(value, DAG)``.

    ``criterion="masks"``: each round refits the mechanisms on random parent sets and takes the most probable
    DAG of their node table; ``"local"``: the DAG of a node table whose cells are fitted one parent set at a
    time (:func:`local_scores.local_table`, model ``noise_flow``), and the mechanisms refitted on that DAG alone.
    ``graph`` ``(D, D)``: every round keeps this DAG instead (the mechanisms refitted on it alone).
    """
    from pyro_personax.inference.oracle import fit_mechanisms_given_latents, most_probable_dag
    from pyro_personax.inference.refine import map_dag

    optimiser = torch.optim.Adam([{"params": flow_parameters(flows), "lr": learning_rate},
                                  {"params": list(model.mechanism_parameters()), "lr": 0.005}])
    charge = float(model.edge_penalty("bic", len(x)))
    out = []
    for r in range(rounds):
        with torch.no_grad():
            u = mapped(x, slices, flows)[0]
        if graph is not None:
            from noise_shape import fit_on_graph

            dag = graph
            fit_on_graph(model, u, dag, steps=2 * refit_steps)
        elif criterion == "masks":
            fit_mechanisms_given_latents(model, u, num_steps=refit_steps, seed=seed + r)
            with torch.no_grad():
                dag = map_dag(model, u, charge, len(x))
        else:
            from local_scores import local_table
            from noise_shape import fit_on_graph

            table = local_table(u.numpy(), noise_flow=noise_flow, steps=4 * refit_steps, seed=seed + r)
            dag = torch.as_tensor(most_probable_dag(model, table, num_entities=len(x))[0], dtype=x.dtype)
            fit_on_graph(model, u, dag, steps=2 * refit_steps)
        for _ in range(steps):
            u, logdet, spread = mapped(x, slices, flows)
            value = (model.latent_distribution(dag).node_log_prob(u).sum(-1).mean() + logdet.mean()
                     - torch.log(spread).sum())
            optimiser.zero_grad(set_to_none=True)
            (-value).backward()
            optimiser.step()
        out.append((float(value.detach()), " ".join(f"{i}{j}" for i, j in np.argwhere(dag.numpy()))))
    return out


def penalised_score(model, u: np.ndarray, mean_logdet: float) -> tuple[float, str]:
    """The penalised log density per entity under ``model`` (its mechanisms fitted to ``u`` standardised) of
    latents ``u`` ``(N, D)`` read through a map whose mean log Jacobian is ``mean_logdet`` (module docstring),
    and the most probable DAG."""
    from pyro_personax.inference.basis import best_dag
    from pyro_personax.inference.oracle import node_table

    latents = (u - u.mean(0)) / u.std(0)
    penalty = -float(model.edge_log_weight("bic", len(u)))
    allowed = (model.free_mask | model.required_mask).cpu().numpy()
    score, graph = best_dag(node_table(model, latents), penalty, allowed)
    score = score / len(u) + mean_logdet - float(np.log(u.std(0)).sum())
    return score, " ".join(f"{i}{j}" for i, j in zip(*np.nonzero(graph)))


def blocks_of(blocks) -> list[list[int]]:
    """The latent indices of each block, in the order the blocks first appear in ``blocks`` (one name per latent)."""
    return [[i for i, b in enumerate(blocks) if b == name] for name in dict.fromkeys(blocks)]


def spearman_of_matches(u: np.ndarray, truth: np.ndarray, perm) -> list[float]:
    """|Spearman| of learned latent ``perm[k]`` of ``u`` ``(N, D)`` with true latent ``k`` of ``truth`` ``(N, 4)``."""
    from pyro_personax.metrics.latent import correlation_matrix

    corr = correlation_matrix(u, truth, "spearman")
    return [abs(float(corr[k, p])) for k, p in enumerate(perm)]


def version_line(name: str, u: np.ndarray, mean_logdet: float, *, layout, spec, truth, perm, blocks, seed: int,
                 steps: int, options: dict, save: str | None = None) -> str:
    """The printed line of one version ``u`` ``(N, D)`` of a seed's latents (module docstring); ``options``: the
    model's options; ``save``: a folder to write ``u``, ``mean_logdet`` and ``truth`` to."""
    if save is not None:
        Path(save).mkdir(parents=True, exist_ok=True)
        np.savez(Path(save) / f"seed{seed}_{name.replace(' ', '_')}.npz", u=u, mean_logdet=mean_logdet, truth=truth)
    post, _, model = exact_posterior(layout, spec, u, seed=seed, steps=steps, **options)
    graph, p = post.top(1)[0]
    edges = " ".join(f"{i}{j}" for i, j in zip(*np.nonzero(graph)))
    s = posterior_scores(post.edge_probabilities(), None, perm, blocks)
    corr = spearman_of_matches(u, truth, perm)
    score, _ = penalised_score(model, u, mean_logdet)
    return (f"seed {seed}, {name}: score {score:.4f}, |spearman| Z11 Z12 Z21 Z22 " + " ".join(f"{c:.3f}" for c in corr)
            + f", MCC_PINNED {(corr[0] + corr[2]) / 2:.3f}, MAP {edges} ({p:.2f}), "
            + ", ".join(f"{k} {v:.3f}" for k, v in s.items()))


def polish_and_print(name: str, model, x: torch.Tensor, slices, flows, *, rounds: int, steps: int, ctx: dict,
                     criterion: str = "masks") -> None:
    """Polish from ``flows`` (:func:`polish`, ``criterion``), print its rounds and the version line of the latents
    it gives."""
    seed = ctx["seed"]
    with torch.enable_grad():
        values = polish(model, x, slices, flows, rounds=rounds, steps=steps, seed=seed, criterion=criterion,
                        noise_flow=ctx["options"]["noise_flow"])
    for r, (value, edges) in enumerate(values):
        print(f"seed {seed}, {name}, round {r + 1}: criterion {value:.4f} per entity, DAG {edges}", flush=True)
    with torch.no_grad():
        u, logdet, spread = mapped(x, slices, flows)
    print(version_line(name, u.numpy(), float(logdet.mean() - torch.log(spread).sum()), **ctx), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", metavar="DIR", default=None,
                        help="the folder given to --save-latents (with --truth-mixed, default: the true latents of "
                             "the generator's first 9,000 rows, sample_variant_mnist_latents)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the polish")
    parser.add_argument("--steps", type=int, default=150, help="Adam steps per round of the polish")
    parser.add_argument("--fit-steps", type=int, default=1500, help="Adam steps of the least-squares fit to the truth")
    parser.add_argument("--start", choices=("truth", "learned", "both"), default="truth",
                        help="polish from the flows fitted to the truth, from the learned basis, or both")
    parser.add_argument("--truth-mixed", type=float, default=None, metavar="DEG",
                        help="replace the saved latents by the true latents mixed inside each block (mixed_truth): "
                             "the criterion on exact latents in a known basis")
    parser.add_argument("--noise-flow", choices=("spline", "parent_spline"), default="spline",
                        help="the model's noise flow (default: the library's)")
    parser.add_argument("--mechanism-steps", type=int, default=300, help="steps of the mechanisms' fit per version")
    parser.add_argument("--criterion", choices=("masks", "local"), default="masks",
                        help="the polish's DAG and mechanisms: from random parent sets (the library's), or fitted "
                             "one parent set at a time (local_scores.py)")
    parser.add_argument("--save-bases", metavar="DIR", default=None,
                        help="write each version's latents (u, mean log Jacobian, truth) to DIR/seed<S>_<version>.npz")
    args = parser.parse_args(argv)
    if args.latents is None and args.truth_mixed is None:
        parser.error("--latents DIR is required unless --truth-mixed is given")

    from pyro_personax.models import ModelSpec
    from pyro_personax.synthetic.variant_mnist import (
        sample_variant_mnist_latents,
        variant_mnist,
        variant_mnist_layout,
    )

    spec = ModelSpec.from_data(variant_mnist(50, seed=0)[0])
    truth_layout = variant_mnist_layout()
    true_blocks = truth_layout.block_of
    for seed in args.seeds:
        if args.latents is None:
            truth = sample_variant_mnist_latents(10_000, seed=seed)[:9000].astype(float)
            z, blocks = truth, [str(b) for b in true_blocks]
        else:
            f = load(Path(args.latents) / f"seed{seed}.npz")
            z, truth, blocks = training_rows(f)
        if args.truth_mixed is not None:
            z, blocks = mixed_truth(truth, args.truth_mixed), [str(b) for b in true_blocks]
            print(f"seed {seed}: the true latents mixed inside each block ({args.truth_mixed:g} degrees)", flush=True)
        layout = link_layout(blocks)
        slices = blocks_of(blocks)
        perm = matching(z, truth, blocks)
        x = torch.as_tensor((z - z.mean(0)) / z.std(0), dtype=torch.float32)
        ctx = {"layout": layout, "spec": spec, "truth": truth, "perm": perm, "blocks": blocks, "seed": seed,
               "steps": args.mechanism_steps, "save": args.save_bases,
               "options": {"noise_flow": args.noise_flow}}
        print(version_line("learned", x.numpy(), 0.0, **ctx), flush=True)
        if args.start != "learned":
            t = (truth - truth.mean(0)) / truth.std(0)
            targets = x.clone()
            for k, p in enumerate(perm):  # each matched learned latent onto its true latent
                targets[:, p] = torch.as_tensor(t[:, k], dtype=torch.float32)
            flows = block_flows([len(s) for s in slices], seed=seed)
            mse = fit_to_targets(x, slices, flows, targets, steps=args.fit_steps)
            print(f"seed {seed}: flows fitted to the truth, mean squared error {mse:.4f} (blocks summed)", flush=True)
            with torch.no_grad():
                u, logdet, spread = mapped(x, slices, flows)
            print(version_line("flow to truth", u.numpy(), float(logdet.mean() - torch.log(spread).sum()), **ctx),
                  flush=True)
            model = fitted_model(layout, spec, u.numpy(), seed=seed, steps=args.mechanism_steps, **ctx["options"])[0]
            polish_and_print("polished", model, x, slices, flows, rounds=args.rounds, steps=args.steps, ctx=ctx,
                             criterion=args.criterion)
        if args.start != "truth":
            flows = block_flows([len(s) for s in slices], seed=seed)
            model = fitted_model(layout, spec, x.numpy(), seed=seed, steps=args.mechanism_steps, **ctx["options"])[0]
            polish_and_print("polished from learned", model, x, slices, flows, rounds=args.rounds, steps=args.steps,
                             ctx=ctx, criterion=args.criterion)

if __name__ == "__main__":
    main()
