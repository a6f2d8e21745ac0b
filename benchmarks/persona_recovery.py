"""Recovery on the demo's synthetic persona data, for chosen model options.

For each seed and each ``--latent-transform``, fits ``PersonaX`` as ``personax demo``
does (the truth's layout, 2,000 people, 60 epochs, the library's defaults otherwise;
``--chains`` restarts) and prints the demo's scores: MCC over latents matched within
blocks, and, on the identified (cross-modal) edges, the number recovered at P > 0.5 of
the thresholded acyclic graph, its SHD, and AUROC and ECE of the edge probabilities.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/persona_recovery.py --seeds 0 1 --chains 1 \\
        --latent-transforms identity spline
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def demo_scores(px, data, truth) -> tuple[dict, dict]:
    """The demo's scores of a fitted ``px``: :func:`~pyro_personax.metrics.evaluate_recovery` of the edge
    probabilities (``soft``) and of the acyclic graph thresholded at 0.5 (``hard``), latents matched
    within blocks, identified edges apart."""
    from pyro_personax.graph import to_dag
    from pyro_personax.metrics import evaluate_recovery

    layout = truth.layout
    P, learned = px.edge_probabilities().to_numpy(), px.get_latent_representation(data)
    blocks = np.array(layout.block_of)
    kw = {"identified": layout.identified_mask(), "learned_blocks": blocks, "true_blocks": blocks, "with_r2": False}
    soft = evaluate_recovery(learned, truth.latents, P, truth.adjacency, **kw)
    hard = evaluate_recovery(learned, truth.latents, to_dag(P, 0.5), truth.adjacency, **kw)
    return soft, hard


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--latent-transforms", nargs="+", default=["identity", "spline"],
                        choices=("identity", "spline"))
    args = parser.parse_args(argv)

    from pyro_personax import PersonaX
    from pyro_personax.synthetic import persona

    print(f"{'seed':>4} {'transform':>9} {'s':>5} {'MCC':>6} {'recovered':>9} {'SHD_id':>6} {'AUROC_id':>8} "
          f"{'ECE_id':>6}")
    for seed in args.seeds:
        dataset, truth = persona(args.entities, seed=seed)
        data, layout = dataset.to_multimodal(), truth.layout
        for transform in args.latent_transforms:
            px = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim,
                          latent_transform=transform)
            start = time.perf_counter()
            px.fit(data, num_epochs=args.epochs, num_chains=args.chains, seed=seed, device="cpu", progress=False)
            seconds = time.perf_counter() - start
            soft, hard = demo_scores(px, data, truth)
            print(f"{seed:>4} {transform:>9} {seconds:>5.0f} {soft['mcc']:>6.3f} "
                  f"{hard['recovered_identified']:>4}/{hard['num_true_identified']:<4} {hard['shd_identified']:>6} "
                  f"{soft['edge_auroc_identified']:>8.3f} {soft['ece_identified']:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
