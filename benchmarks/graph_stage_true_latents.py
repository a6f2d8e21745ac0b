"""The graph stage's basis search on the demo's true latents: what the search costs when the latents are exact.

The graph stage of ``fit`` searches the basis inside each modality block by a linear
non-Gaussian (LiNGAM) score (:func:`pyro_personax.inference.basis.search_block_basis`, with
the model's charge per edge), then fits the model's mechanisms and graph to the latents in
the basis found. This script gives that stage the demo's **true** latents (standardised),
so that every error it makes is its own:

- ``truth, no search``: the true basis kept; the MAP DAG under the model's mechanisms
  fitted to it (the bound of the demo's target);
- ``truth, searched``: the search started at the true basis (the identity and
  ``--restarts - 1`` random rotations, as the graph stage draws them);
- ``truth mixed, searched``: the true latents mixed inside the face and the text block by
  ``I + c W`` (``c = --mixing``, ``W`` standard normal) first, as a fit may leave them.

With ``--polish R``, each searched row is followed by the same latents polished under the
model's own criterion (:func:`pyro_personax.inference.refine.polish_block_basis`, the graph
stage's ``basis_polish``): Adam on the block maps and the model's mechanisms together, ``R``
rounds of 150 steps under the MAP DAG of the round's start, then the MAP DAG read under
mechanisms fitted afresh.

Each row prints MCC (latents matched within blocks) and, for the most probable DAG given
the latents in the basis found (the model's mechanisms fitted for 300 steps, the prior's
BIC edge charge, exact dynamic programming), SHD on the identified (cross-modal) edges and
the number of edges (the truth has 12). ``gain`` is the search's LiNGAM score per entity
over its starting basis.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/graph_stage_true_latents.py --seeds 0 1 [--restarts 8] [--mixing 0.8] \
        [--polish 5]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np


def run_seed(seed: int, args) -> None:
    """Print the rows of one data seed (see the module docstring)."""
    import torch

    from pyro_personax.inference.basis import search_block_basis, searched_blocks
    from pyro_personax.inference.oracle import fit_mechanisms_given_latents
    from pyro_personax.inference.refine import map_dag, polish_block_basis
    from pyro_personax.metrics import evaluate_recovery
    from pyro_personax.models import PersonaXModel
    from pyro_personax.models.spec import ModelSpec
    from pyro_personax.synthetic import persona

    start = time.time()
    dataset, truth = persona(args.entities, seed=seed)
    data, layout = dataset.to_multimodal(), truth.layout
    blocks, identified = np.array(layout.block_of), layout.identified_mask()
    n = data.num_entities
    torch.manual_seed(seed)
    base = PersonaXModel(layout, ModelSpec.from_data(data))
    charge = -float(base.edge_log_weight("bic", n))  # as the graph stage charges
    z = (truth.latents - truth.latents.mean(0)) / truth.latents.std(0)
    rng = np.random.default_rng(100 + seed)
    mix = np.eye(z.shape[1])
    for b in searched_blocks(layout):
        mix[b, b] += args.mixing * rng.normal(size=(b.stop - b.start,) * 2)

    def row(name, latents, gain=None, rounds=0):
        x = (latents - latents.mean(0)) / latents.std(0)
        model = copy.deepcopy(base)
        fit_mechanisms_given_latents(model, x, seed=seed)
        G = map_dag(model, torch.as_tensor(x, dtype=torch.float32), "bic", n).numpy()
        rec = evaluate_recovery(x, truth.latents, G.astype(float), truth.adjacency, identified=identified,
                                learned_blocks=blocks, true_blocks=blocks, with_r2=False)
        gained = "" if gain is None else f"gain {gain:+.4f}"
        print(f"seed {seed} {name:30s} {gained:13s} MCC {rec['mcc']:.3f} SHD_id {rec['shd_identified']} "
              f"edges {int(G.sum())} ({time.time() - start:.0f} s)", flush=True)
        if rounds:
            T = polish_block_basis(model, torch.as_tensor(x, dtype=torch.float32), rounds=rounds).numpy()
            row(name + ", polished", x @ T.T.astype(np.float64))

    row("truth, no search", z)
    for name, latents in (("truth, searched", z), ("truth mixed, searched", z @ mix.T)):
        found = search_block_basis(latents, layout, num_restarts=args.restarts, penalty=charge, seed=seed)
        row(name, latents @ found.map.T, found.score - found.identity_score, args.polish)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--restarts", type=int, default=8, help="starts of the search (the graph stage's default)")
    parser.add_argument("--mixing", type=float, default=0.8, help="scale of the random part of the mixing map")
    parser.add_argument("--polish", type=int, default=0,
                        help="rounds of the polish under the model's criterion after each search (0: none)")
    args = parser.parse_args(argv)
    if args.restarts < 1:
        raise SystemExit(f"--restarts: expected an int >= 1; found {args.restarts}")
    if args.polish < 0:
        raise SystemExit(f"--polish: expected an int >= 0; found {args.polish}")

    for seed in args.seeds:
        run_seed(seed, args)


if __name__ == "__main__":
    main()
