"""What a rotation inside the blocks costs the model's prior, given the exact latents of the demo.

The decoders give every basis of a block the same likelihood, so what can tell the true
basis of the face and the text block from a rotated one is the prior ``p(z | G) p(G)``
(additive-noise mechanisms, the BIC edge charge). For each seed of the demo's synthetic
persona data (2,000 people), the true latents and the same latents turned inside the face
and the text block by a random rotation of largest angle 30 and 60 degrees
(:func:`truth_start.block_rotation`; the shared block untouched, Jacobian 1) are scored as
follows: the library model's mechanisms and noise flows are fitted to the standardised
latents (:func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`), the table
of node terms over every parent set is computed, and the best DAG the layout allows is
found exactly (dynamic programming over subsets of latents,
:func:`~pyro_personax.inference.basis.best_dag`). Printed: the best DAG's
score ``log p(z | G) + log p(G)`` relative to the truth's, in total and per entity, in
the latents' own coordinates, and its edges and cross-modal edges.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/rotation_cost.py --seeds 0 1
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--angles", type=float, nargs="+", default=[30.0, 60.0])
    parser.add_argument("--steps", type=int, default=300, help="steps of the mechanisms' fit")
    args = parser.parse_args(argv)

    from equivalent_representations import fitted_model
    from truth_start import block_rotation

    from pyro_personax.inference.basis import best_dag
    from pyro_personax.inference.oracle import node_table
    from pyro_personax.models import ModelSpec
    from pyro_personax.synthetic import persona

    print(f"{'seed':>4} {'angle':>5} {'score - truth':>13} {'per entity':>10} {'edges':>5} {'cross-modal':>11}")
    for seed in args.seeds:
        dataset, truth = persona(args.entities, seed=seed)
        layout, spec = truth.layout, ModelSpec.from_data(dataset.to_multimodal())
        cross = layout.edge_classes() == "cross-modal"
        reference = None
        for angle in [0.0, *args.angles]:
            z = truth.latents @ block_rotation(layout, angle, seed + 100).T
            std = z.std(0)
            model, latents = fitted_model(layout, spec, z, seed=seed, steps=args.steps)
            table = node_table(model, latents)
            penalty = -float(model.edge_log_weight("bic", len(z)))
            allowed = (model.free_mask | model.required_mask).cpu().numpy()
            score, graph = best_dag(table, penalty, allowed)
            score -= len(z) * float(np.log(std).sum())  # in z's own coordinates
            reference = score if reference is None else reference
            n_cross = int((graph.astype(bool) & cross).sum())
            print(f"{seed:>4} {angle:>5.0f} {score - reference:>13.1f} {(score - reference) / len(z):>10.3f} "
                  f"{graph.sum():>5} {n_cross:>11}", flush=True)


if __name__ == "__main__":
    main()
