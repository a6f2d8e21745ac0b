"""Which basis of the exact variant-MNIST latents the model's density prefers, with each parent set fitted on its own.

The graph stage, the basis polish and the exact posterior score graphs by a node table:
the log-likelihood of every latent under every parent set, from one set of mechanisms and
noise flows fitted on random parent sets
(:func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`). ``noise_shape.py``
found that this shared fit misses the true density of the latents with uniform noise.
This script asks whether that compromise is what makes a basis mixed inside the blocks
score above the truth's, by scoring the same bases two ways:

- ``masks``: the library's node table (mechanisms fitted on random parent sets);
- ``local``: every cell fitted on its own: for each of the ``2^(D-1)`` parent sets, a
  fresh model is fitted by Adam with every latent given that parent set among the others
  (a parent matrix that need not be acyclic; each latent's term depends only on its own
  mechanism and noise flow), and its terms fill the table's cells. This is the
  decomposable score with a maximum-likelihood fit per family.

The bases are versions of the same rows, the standardised true latents ``t`` of seed
``S`` (:func:`~pyro_personax.synthetic.variant_mnist.sample_variant_mnist_latents`, the
first 9,000 rows): ``truth``; ``turn DEG``, each block of two turned by DEG degrees
(Jacobian 1); ``mixed DEG``, :func:`block_flow.mixed_truth` (the turn, then
``v + 0.5 tanh(2 v)`` per coordinate); and any bases ``block_flow.py --save-bases`` wrote
(``--bases FILE``, read as maps of ``mixed --saved-degrees``). ``score``: the most
probable DAG's ``[log p(u | G) + log p(G)] / N`` (BIC charge) in ``t``'s coordinates
(each map's mean log Jacobian added), so the higher score is the basis the model
prefers; ``true density``: the closed-form mean log density of ``t``, less the charge of
the truth's three edges. Also printed: the most probable DAG, the exact posterior's
spurious cross-modal P (``learned_latents_exact.posterior_scores``) and the matched
latents' absolute Spearman correlations with the truth.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/local_scores.py --seeds 0 1
    OMP_NUM_THREADS=1 python benchmarks/block_flow.py --seeds 0 --truth-mixed 30 --start learned --save-bases /tmp/b
    OMP_NUM_THREADS=1 python benchmarks/local_scores.py --seeds 0 --bases /tmp/b/seed0_polished_from_learned.npz
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from block_flow import mixed_truth, spearman_of_matches  # noqa: E402
from equivalent_representations import fitted_model  # noqa: E402
from learned_latents_exact import matching, posterior_scores  # noqa: E402
from noise_shape import fit_on_graph, new_model, true_node_log_density  # noqa: E402


def turned(t: np.ndarray, degrees: float) -> np.ndarray:
    """``t`` ``(N, 4)`` with each block of two turned by ``degrees``, ``(N, 4)`` (Jacobian 1)."""
    a = math.radians(degrees)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.concatenate([t[:, :2] @ turn.T, t[:, 2:] @ turn.T], axis=1)


def mixed_log_jacobian(truth: np.ndarray, degrees: float) -> float:
    """Mean log Jacobian of the map from the standardised ``truth`` ``(N, 4)`` to ``mixed_truth(truth, degrees)``."""
    t = (truth - truth.mean(0)) / truth.std(0)
    w = turned(t, degrees)
    return float(np.log1p(1 / np.cosh(2 * w) ** 2).sum(1).mean())


def local_table(u: np.ndarray, *, noise_flow: str, steps: int, seed: int) -> np.ndarray:
    """The node table ``(2^D, D)`` of ``u`` ``(N, D)`` standardised with every cell's family fitted on its own.

    Fit ``k`` gives latent ``j`` the ``k``-th subset of the other latents as parents
    (bit ``b`` of ``k`` for the ``b``-th other latent), for every ``j`` at once.
    """
    N, D = u.shape
    x = torch.as_tensor(u, dtype=torch.float32)
    table = np.full((2**D, D), np.nan)
    for k in range(2 ** (D - 1)):
        A = torch.zeros(D, D)
        codes = []
        for j in range(D):
            others = [i for i in range(D) if i != j]
            parents = [others[b] for b in range(D - 1) if k >> b & 1]
            A[parents, j] = 1.0
            codes.append(sum(1 << i for i in parents))
        model = new_model(noise_flow, seed + k)
        skipped = fit_on_graph(model, x, A, steps=steps)
        with torch.no_grad():
            node = model.latent_distribution(A).node_log_prob(x).double().sum(0).numpy()
        if skipped or not np.isfinite(node).all():
            print(f"  local fit {k}: {skipped} of {steps} steps skipped (non-finite), node terms "
                  + " ".join(f"{v:.1f}" for v in node), flush=True)
        for j in range(D):
            table[codes[j], j] = node[j]
    return table


def mask_table(u: np.ndarray, *, noise_flow: str, steps: int, seed: int) -> np.ndarray:
    """The library's node table ``(2^D, D)`` of ``u`` ``(N, D)`` standardised (mechanisms fitted on random masks)."""
    from pyro_personax.inference.oracle import node_table
    from pyro_personax.models import ModelSpec
    from pyro_personax.synthetic.variant_mnist import variant_mnist, variant_mnist_layout

    spec = ModelSpec.from_data(variant_mnist(50, seed=0)[0])
    model, latents = fitted_model(variant_mnist_layout(), spec, u, seed=seed, steps=steps, noise_flow=noise_flow)
    return node_table(model, latents)


def table_posterior(table: np.ndarray, N: int, *, noise_flow: str) -> tuple[float, np.ndarray, np.ndarray]:
    """``(best DAG's log p(u | G) + log p(G), that DAG (D, D), exact edge probabilities (D, D))`` of a node table."""
    from pyro_personax.inference.oracle import exact_graph_posterior_from_table, most_probable_dag

    model = new_model(noise_flow, 0)
    graph, _, best = most_probable_dag(model, table, num_entities=N)
    post = exact_graph_posterior_from_table(model, table, num_entities=N)
    return float(best), np.asarray(graph).astype(int), post.edge_probabilities()


def bases(truth: np.ndarray, turns, mixes, files, saved_degrees: float) -> dict[str, tuple[np.ndarray, float]]:
    """The versions ``{name: (u (N, 4), mean log Jacobian from the standardised truth)}`` (module docstring)."""
    t = (truth - truth.mean(0)) / truth.std(0)
    out = {"truth": (t, 0.0)}
    for deg in turns:
        out[f"turn {deg:g}"] = (turned(t, deg), 0.0)
    for deg in mixes:
        out[f"mixed {deg:g}"] = (mixed_truth(truth, deg), mixed_log_jacobian(truth, deg))
    w = mixed_truth(truth, saved_degrees)
    to_x = mixed_log_jacobian(truth, saved_degrees) - float(np.log(w.std(0)).sum())  # t -> w -> x standardised
    for path in files:
        f = np.load(path)
        if f["truth"].shape != truth.shape or not np.allclose(f["truth"], truth):
            raise ValueError(f"--bases {path}: its true latents are not this seed's rows (another seed or --latents?)")
        name = Path(path).stem if Path(path).stem not in out else f"{Path(path).parent.name}/{Path(path).stem}"
        out[name] = (f["u"], to_x + float(f["mean_logdet"]))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--turns", type=float, nargs="*", default=[10.0, 30.0], metavar="DEG")
    parser.add_argument("--mixes", type=float, nargs="*", default=[30.0], metavar="DEG")
    parser.add_argument("--bases", nargs="*", default=[], metavar="FILE",
                        help="bases written by block_flow.py --save-bases (of the same seed; with one seed only)")
    parser.add_argument("--saved-degrees", type=float, default=30.0, help="the --truth-mixed of the saved bases")
    parser.add_argument("--scorings", nargs="+", default=["masks", "local"], choices=("masks", "local"))
    parser.add_argument("--noise-flow", choices=("spline", "parent_spline"), default="spline")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps of the masks' fit")
    parser.add_argument("--local-steps", type=int, default=600, help="Adam steps of each local fit")
    args = parser.parse_args(argv)
    if args.bases and len(args.seeds) > 1:
        parser.error("--bases are of one seed: give one --seeds")

    from pyro_personax.synthetic.variant_mnist import (
        sample_variant_mnist_latents,
        variant_mnist_layout,
    )

    layout = variant_mnist_layout()
    blocks = [str(b) for b in layout.block_of]
    for seed in args.seeds:
        truth = sample_variant_mnist_latents(10_000, seed=seed)[:9000].astype(float)
        N = len(truth)
        charge = -float(new_model(args.noise_flow, 0).edge_log_weight("bic", N))
        true = float(true_node_log_density(truth).sum()) - 3 * charge / N
        print(f"seed {seed}: true density {true:.4f} per entity (the truth's 3 edges charged; {charge:.1f} nats "
              f"per edge, {charge / N:.4f} per entity)", flush=True)
        for name, (u, logdet) in bases(truth, args.turns, args.mixes, args.bases, args.saved_degrees).items():
            perm = matching(u, truth, blocks)
            corr = spearman_of_matches(u, truth, perm)
            v = (u - u.mean(0)) / u.std(0)
            offset = logdet - float(np.log(u.std(0)).sum())
            for scoring in args.scorings:
                start = time.perf_counter()
                make = local_table if scoring == "local" else mask_table
                table = make(v, noise_flow=args.noise_flow, seed=seed,
                             steps=args.local_steps if scoring == "local" else args.steps)
                best, graph, P = table_posterior(table, N, noise_flow=args.noise_flow)
                s = posterior_scores(P, None, perm, blocks)
                edges = " ".join(f"{i}{j}" for i, j in zip(*np.nonzero(graph)))
                print(f"seed {seed}, {name}, {scoring}: score {best / N + offset:.4f}, MAP {edges}, "
                      f"P spur x {s['P spur x']:.3f}, P(Z11->Z21) {s['P(Z11->Z21)']:.3f}, |spearman| Z11 Z12 Z21 Z22 "
                      + " ".join(f"{c:.3f}" for c in corr) + f" ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
