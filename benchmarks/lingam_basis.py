"""Can a linear non-Gaussian score with the best DAG find the basis inside each block?

A third oracle test of candidate estimators of the basis inside modality blocks (issue
25; the first two are in ``basis_search.py``). The demo's exogenous noises are Laplace and
uniform and its mechanisms are close to linear, so the linear non-Gaussian (LiNGAM)
likelihood of ``z = B z + e`` should tell bases apart. For a block-linear map ``U``
(the shared block untouched) the score of ``U z`` is

    max over DAGs G the layout allows of  sum_j N (-H(e_j / s_j) - log s_j) - pen |G|  +  N log |det U|

with ``e_j`` the least-squares residual of latent ``j`` on its parents in ``G``, ``s_j``
its standard deviation, ``H`` Hyvarinen's maximum-entropy approximation of the
differential entropy of a unit-variance variable (the one DirectLiNGAM uses), and
``pen = log(N) / 2`` per edge. The best DAG is found exactly (dynamic programming over
subsets, :func:`rotation_cost.best_dag`). The search alternates that exact DAG with
Adam steps on ``U`` under the DAG found, until the score stops rising.

Latents searched (``--latents``):

- ``mixed``: the demo's true latents, plus Gaussian noise that leaves a fraction
  ``--r2`` of each latent's variance, mixed inside the face and the text block by a
  random linear map ``I + c W`` (``c = --mixing``);
- ``learned``: the posterior means of a ``PersonaX`` fit with the library's defaults (one
  chain, ``--epochs``), as they come.

Printed per seed: MCC (latents matched within blocks) and score per entity of the
latents as searched, of the best linear map to the truth (the exact unmixing for
``mixed``; for ``learned``, the least-squares map of each modality block onto its true
latents), of the search started there, and of the search started at the latents as they are.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/lingam_basis.py --seeds 0 1 --latents mixed --r2 1.0 0.9
    OMP_NUM_THREADS=1 python benchmarks/lingam_basis.py --seeds 0 1 --latents learned
    OMP_NUM_THREADS=1 python benchmarks/lingam_basis.py --seeds 0 1 --latents learned --draws \
        --restarts 12 --penalty 27.7 --bootstrap 20

``--restarts K`` also prints, under each row, the optimum reached from the best map and
from each of ``K`` starts drawn as the graph stage draws them (score, MCC, edges,
cross-modal and within-block edges of the best DAG): whether the score ranks the truth's basin first;
``--bootstrap B`` adds each restart's score minus that of the truth's basin, with its
standard deviation over ``B`` resamples of the entities.
"""

from __future__ import annotations

import argparse

import numpy as np


def score(z: np.ndarray, allowed: np.ndarray) -> tuple[float, np.ndarray]:
    """The best DAG's LiNGAM score of ``z`` ``(N, D)`` in its own coordinates, and that DAG."""
    from pyro_personax.inference.basis import lingam_score

    return lingam_score(z - z.mean(0), np.eye(z.shape[1]), allowed)


def search(z: np.ndarray, blocks: list[slice], allowed: np.ndarray, U: np.ndarray,
           rounds: int = 8) -> tuple[float, np.ndarray]:
    """Alternate the exact best DAG and Adam steps on the block maps from ``U`` until the score stops rising."""
    from pyro_personax.inference.basis import local_search

    return local_search(z - z.mean(0), blocks, allowed, U, steps=300, max_rounds=rounds)


def summary(z: np.ndarray, U: np.ndarray, value: float, truth: np.ndarray, blocks: np.ndarray) -> str:
    """``"MCC score"`` of ``z U^T`` against ``truth`` (matched within ``blocks``), the score per entity."""
    from pyro_personax.metrics import mcc

    m = mcc(z @ U.T, truth, learned_blocks=blocks, true_blocks=blocks).value
    return f"{m:.3f} {value / len(z):>8.4f}"


def learned_latents(dataset, truth, epochs: int, seed: int, draws: bool = False) -> np.ndarray:
    """Posterior means (or, with ``draws``, one draw of ``q(z | x)`` per entity, as the graph
    stage's search scores) of a one-chain ``PersonaX`` fit with the library's defaults
    except the basis search (``basis_restarts=0``), so that the basis is the one SVI left."""
    import torch

    from pyro_personax import PersonaX
    from pyro_personax.inference import GraphRefinement
    from pyro_personax.inference.devices import local_params
    from pyro_personax.inference.refine import posterior_summaries

    data, layout = dataset.to_multimodal(), truth.layout
    px = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim)
    px.fit(data, num_epochs=epochs, num_chains=1, seed=seed, device="cpu", progress=False,
           refine_graph=GraphRefinement(basis_restarts=0))
    if not draws:
        return px.get_latent_representation(data)
    with local_params():
        return posterior_summaries(px.chains.guides[0], data.to_tensors(fill=False), 1024, torch.device("cpu"),
                                   seed)[1].double().numpy()


def restart_table(z: np.ndarray, exact: np.ndarray, truth: np.ndarray, layout, restarts: int, penalty: float,
                  seed: int, bootstrap: int = 0, truth_adjacency: np.ndarray | None = None) -> None:
    """Print the optimum of the search from ``exact`` and from each of ``restarts`` starts
    (the identity, then random rotations of each block, as the graph stage draws them):
    score per entity, MCC, edges, cross-modal and within-block edges of the best DAG, with the
    LiNGAM charge ``penalty`` per edge. With ``bootstrap`` resamples of the entities, also
    the difference of each restart's score from the score of the optimum found from
    ``exact`` and its bootstrap standard deviation. ``truth_adjacency`` ``(D, D)``: the true
    DAG, whose edge counts head the table."""
    from pyro_personax.inference.basis import lingam_score, local_search, searched_blocks

    allowed = np.asarray(layout.allowed_mask(), dtype=bool)
    blocks, labels = searched_blocks(layout), np.array(layout.block_of)
    classes = layout.edge_classes()
    cross, within = classes == "cross-modal", classes == "within-block"
    z = z - z.mean(0)

    resampler = np.random.default_rng(seed + 1)
    resamples = [resampler.integers(0, len(z), len(z)) for _ in range(bootstrap)]

    def line(name: str, U: np.ndarray, reference: np.ndarray | None = None) -> None:
        value, graph = lingam_score(z, U, allowed, penalty)
        text = (f"    {name:>22} {summary(z, U, value, truth, labels)} edges {int(graph.sum()):>2} "
                f"cross-modal {int(graph[cross].sum())} within-block {int(graph[within].sum())}")
        if resamples and reference is not None:
            diffs = []
            for rows in resamples:
                x = z[rows] - z[rows].mean(0)
                diffs.append(lingam_score(x, U, allowed, penalty)[0] - lingam_score(x, reference, allowed, penalty)[0])
            gap = value - lingam_score(z, reference, allowed, penalty)[0]
            text += f" | minus best map's: {gap / len(z):+.4f} (bootstrap sd {np.std(diffs) / len(z):.4f})"
        print(text, flush=True)

    if truth_adjacency is not None:
        true_graph = np.asarray(truth_adjacency) != 0
        print(f"    {'true graph':>22} edges {int(true_graph.sum()):>2} cross-modal {int(true_graph[cross].sum())} "
              f"within-block {int(true_graph[within].sum())}", flush=True)
    at_best = local_search(z, blocks, allowed, exact, penalty=penalty)[1]
    line("search from best map", at_best)
    rng = np.random.default_rng(seed)
    for restart in range(restarts):
        U = np.eye(z.shape[1])
        if restart:
            for b in blocks:
                U[b, b] = np.linalg.qr(rng.normal(size=(b.stop - b.start,) * 2))[0]
        line(f"restart {restart}", local_search(z, blocks, allowed, U, penalty=penalty)[1], at_best)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--latents", choices=("mixed", "learned"), default="mixed")
    parser.add_argument("--r2", type=float, nargs="+", default=[1.0], help="'mixed': variance kept of each latent")
    parser.add_argument("--mixing", type=float, default=0.8, help="'mixed': scale of the random part of the map")
    parser.add_argument("--epochs", type=int, default=60, help="'learned': epochs of the fit")
    parser.add_argument("--draws", action="store_true",
                        help="'learned': one draw of q(z | x) per entity instead of the posterior means")
    parser.add_argument("--restarts", type=int, default=0,
                        help="also print the optimum of this many starts of the search (MCC, score, edges)")
    parser.add_argument("--penalty", type=float, default=None,
                        help="charge per edge of --restarts' table (default log(N)/2)")
    parser.add_argument("--bootstrap", type=int, default=0,
                        help="--restarts: resamples for the standard deviation of each score's gap to the best map's")
    args = parser.parse_args(argv)

    from pyro_personax.synthetic import persona

    print(f"{'seed':>4} {'latents':>12} {'MCC':>6} {'score':>8} | {'best map':>8} {'score':>8} | "
          f"{'search from best map':>20} | {'search from as is':>17}")
    for seed in args.seeds:
        dataset, truth = persona(args.entities, seed=seed)
        layout, Z = truth.layout, truth.latents
        allowed, D = layout.allowed_mask(), layout.latent_dim
        blocks = [layout.block_slice(b) for b in layout.modalities]
        labels = np.array(layout.block_of)
        cases = []
        if args.latents == "learned":
            learned = learned_latents(dataset, truth, args.epochs, seed, args.draws)
            name = "learned draw" if args.draws else "learned"
            cases.append((name, (learned - learned.mean(0)) / learned.std(0), None))
        else:
            rng = np.random.default_rng(seed + 9)
            W = np.eye(D)
            for b in blocks:
                W[b, b] += args.mixing * rng.normal(size=(b.stop - b.start,) * 2)
            for r2 in args.r2:
                noisy = Z + np.sqrt((1 - r2) / r2) * rng.normal(size=Z.shape)
                cases.append((f"mixed r2={r2:g}", noisy @ W.T, np.linalg.inv(W)))
        for name, z, exact in cases:
            if exact is None:  # least-squares map of each modality block onto its true latents
                exact = np.eye(D)
                for b in blocks:
                    exact[b, b] = np.linalg.lstsq(z[:, b], Z[:, b], rcond=None)[0].T
            as_is = summary(z, np.eye(D), score(z, allowed)[0], Z, labels)
            at_exact = score(z @ exact.T, allowed)[0] + len(z) * np.linalg.slogdet(exact)[1]
            at_best = summary(z, exact, at_exact, Z, labels)
            from_best = summary(z, *reversed(search(z, blocks, allowed, exact)), Z, labels)
            from_as_is = summary(z, *reversed(search(z, blocks, allowed, np.eye(D))), Z, labels)
            print(f"{seed:>4} {name:>12} {as_is:>15} | {at_best:>17} | {from_best:>20} | {from_as_is:>17}",
                  flush=True)
            if args.restarts:
                penalty = 0.5 * np.log(len(z)) if args.penalty is None else args.penalty
                restart_table(z, exact, Z, layout, args.restarts, penalty, seed, args.bootstrap, truth.adjacency)


if __name__ == "__main__":
    main()
