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


def learned_latents(dataset, truth, epochs: int, seed: int) -> np.ndarray:
    """Posterior means of a one-chain ``PersonaX`` fit with the library's defaults."""
    from pyro_personax import PersonaX

    data, layout = dataset.to_multimodal(), truth.layout
    px = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim)
    px.fit(data, num_epochs=epochs, num_chains=1, seed=seed, device="cpu", progress=False)
    return px.get_latent_representation(data)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--latents", choices=("mixed", "learned"), default="mixed")
    parser.add_argument("--r2", type=float, nargs="+", default=[1.0], help="'mixed': variance kept of each latent")
    parser.add_argument("--mixing", type=float, default=0.8, help="'mixed': scale of the random part of the map")
    parser.add_argument("--epochs", type=int, default=60, help="'learned': epochs of the fit")
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
            learned = learned_latents(dataset, truth, args.epochs, seed)
            cases.append(("learned", (learned - learned.mean(0)) / learned.std(0), None))
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


if __name__ == "__main__":
    main()
