"""The demo's identified graph as a method that reads the latents from the observations can reach it.

For each seed, the demo's data (``persona(N, seed)``, as ``personax demo``) and these
versions of its latents:

- ``truth``: the true latents;
- ``read``: the latents as the observations hold them. Every row is read by a
  regression trained with the truth on the other rows (``--folds`` parts,
  :func:`supervised_reading.out_of_fold`). Each modality's latents are read from that
  modality's measurements (:func:`observation_features`), the shared latents from all of
  them;
- ``read R2 r`` (``--read-r2 r``): the readings with independent error added to every
  latent read better than ``r``, down to ``r`` (:func:`supervised_reading.with_error`):
  readings as precise as a model's latents, in the truth's basis;
- ``read rot d`` (``--rotate d``): the readings turned by ``d`` degrees inside each
  modality block, in one random plane of the block (:func:`plane_rotation`): latents as
  precise as the observations allow, in another basis of their blocks.

For each version the library model's mechanisms (the demo's model options) are fitted to
the standardised latents (:func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`).
Then the script prints:

- ``R2``: each block's mean squared correlation of the readings with the truth, and
  ``R2_block`` as ``persona_recovery.py`` prints it for a model's latents (a linear fit of
  each true latent on its own block's and the shared block's readings);
- the most probable DAG given the latents (exact, the BIC edge charge:
  :func:`~pyro_personax.inference.oracle.most_probable_dag`): its SHD on the identified
  (cross-modal) cells and the identified cells it gets wrong;
- the guide's ``q(G)`` fitted to the exact graph posterior given the latents
  (:func:`~pyro_personax.inference.oracle.fit_graph_given_latents`): the identified
  edges' AUROC and ECE, and the SHD of its acyclic graph at P > 0.5.

These are the scores ``personax demo`` prints, on latents as precise as the observations
allow. ``read`` is the bound of a two-stage method (latents first, graph after); a
model's identified SHD above the ``read`` line is lost by the model, not by the data.

``--mechanism`` fits other mechanisms than the demo's (``PersonaX``'s ``mechanism=``).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/persona_bound.py --seeds 0 1 2 3
    OMP_NUM_THREADS=1 python benchmarks/persona_bound.py --seeds 0 1 2 3 --only truth --mechanism mlp_additive
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts


def observation_features(data, layout) -> dict[str, np.ndarray]:
    """Inputs of each block's regression: a modality's measurements, and all of them for the shared block.

    Parameters
    ----------
    data
        :class:`~pyro_personax.data.multimodal.MultiModalData` with ``(N, K_m, F_m)`` values per
        modality (NaN where a measurement is missing).
    layout
        The :class:`~pyro_personax.layout.LatentLayout` whose blocks are read.

    Returns
    -------
    dict
        Block name -> ``(N, F)``: the flattened measurements, with one 0/1 column per
        measurement that is missing somewhere (1 where it is missing).
    """
    from pyro_personax.layout import SHARED

    per_modality = {}
    for m in data.modalities:
        values = np.asarray(data.values[m], dtype=float)
        values = values.reshape(data.num_entities, -1, values.shape[-1])
        absent = np.isnan(values).all(axis=2)
        per_modality[m] = np.column_stack([values.reshape(data.num_entities, -1),
                                           absent[:, absent.any(axis=0)].astype(float)])
    out = {}
    for block in dict.fromkeys(layout.block_of):
        if block == SHARED:
            out[block] = np.column_stack(list(per_modality.values()))
        elif block in per_modality:
            out[block] = per_modality[block]
        else:
            raise ValueError(f"layout: block {block!r} has no measurements in data; found {list(per_modality)}")
    return out


def plane_rotation(dim: int, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """``(dim, dim)`` rotation by ``degrees`` in the plane of two random orthonormal directions."""
    u, v = np.linalg.qr(rng.normal(size=(dim, 2)))[0].T
    t = np.deg2rad(degrees)
    return (np.eye(dim) + (np.cos(t) - 1) * (np.outer(u, u) + np.outer(v, v))
            + np.sin(t) * (np.outer(v, u) - np.outer(u, v)))


def graph_bound(layout, spec, options, z: np.ndarray, truth, *, steps: int, seed: int) -> dict:
    """The identified graph's scores of the best DAG and of ``q(G)`` given the latents ``z`` ``(N, D)``.

    ``options``: a ``PersonaX``'s options (the model's and guide's keyword arguments).
    Returns ``{"map_shd": int, "map_wrong": [str], "map_edges": int, "q_shd": int,
    "q_auroc": float, "q_ece": float}``, on latents matched within blocks.
    """
    import torch
    from demo_chains import differing_identified

    from pyro_personax.graph import to_dag
    from pyro_personax.inference.oracle import (
        fit_graph_given_latents,
        fit_mechanisms_given_latents,
        most_probable_dag,
        node_table,
    )
    from pyro_personax.metrics import evaluate_recovery
    from pyro_personax.models import PersonaXModel
    from pyro_personax.models.guide import PersonaXGuide

    torch.manual_seed(seed)
    model = PersonaXModel(layout, spec, **options.model_kwargs())
    guide = PersonaXGuide(layout, spec, **options.guide_kwargs())
    z = (z - z.mean(0)) / z.std(0)
    fit_mechanisms_given_latents(model, z, num_steps=steps, seed=seed)
    G, _, _ = most_probable_dag(model, node_table(model, z), sparsity="bic", num_entities=len(z))
    P = fit_graph_given_latents(model, guide, z, seed=seed)
    blocks, identified = np.array(layout.block_of), layout.identified_mask()
    kw = {"identified": identified, "learned_blocks": blocks, "true_blocks": blocks, "with_r2": False}
    best = evaluate_recovery(z, truth.latents, G.astype(float), truth.adjacency, **kw)
    soft = evaluate_recovery(z, truth.latents, P, truth.adjacency, **kw)
    hard = evaluate_recovery(z, truth.latents, to_dag(P, 0.5), truth.adjacency, **kw)
    return {"map_shd": int(best["shd_identified"]), "map_edges": int(G.sum()),
            "map_wrong": differing_identified(G, best["permutation"], truth.adjacency, identified, layout.names),
            "q_shd": int(hard["shd_identified"]), "q_auroc": float(soft["edge_auroc_identified"]),
            "q_ece": float(soft["ece_identified"])}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000, help="people (the demo's --num-entities)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--folds", type=int, default=5, help="parts of the out-of-fold reading")
    parser.add_argument("--steps", type=int, default=300, help="steps of the mechanisms' fit")
    parser.add_argument("--mechanism", default=None, help="the model's mechanism (default: the demo's)")
    parser.add_argument("--read-r2", type=float, nargs="*", default=[],
                        help="also the readings with every latent read with error down to this R^2 "
                             "(version 'read R2 r')")
    parser.add_argument("--rotate", type=float, nargs="*", default=[],
                        help="also the readings turned by this many degrees inside each modality block "
                             "(version 'read rot d')")
    parser.add_argument("--only", nargs="+", default=None,
                        help="score only the versions whose names start with these (e.g. 'read R2')")
    args = parser.parse_args(argv)

    from persona_recovery import block_r2
    from supervised_reading import out_of_fold, squared_correlations, with_error

    from pyro_personax import PersonaX
    from pyro_personax.models import ModelSpec
    from pyro_personax.synthetic import persona

    print(f"{'seed':>4} {'version':>11} {'R2 shared/face/text':>19} {'R2_block':>8} {'MAP SHD_id':>10} {'edges':>5} "
          f"{'q SHD_id':>8} {'AUROC_id':>8} {'ECE_id':>6}  identified cells the MAP gets wrong")
    for seed in args.seeds:
        dataset, truth = persona(args.entities, seed=seed)
        data, layout = dataset.to_multimodal(), truth.layout
        extra = {} if args.mechanism is None else {"mechanism": args.mechanism}
        options = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim, **extra).options
        spec = ModelSpec.from_data(data)
        read = out_of_fold(observation_features(data, layout), truth.latents, layout.block_of,
                           folds=args.folds, seed=seed)
        blocks = np.array(layout.block_of)
        rng = np.random.default_rng(seed + 300)
        named = {"truth": truth.latents, "read": read}
        for r in args.read_r2:
            named[f"read R2 {r:g}"] = with_error(read, truth.latents, r, range(len(blocks)), rng)
        for d in args.rotate:
            turned = (read - read.mean(0)) / read.std(0)
            for b in layout.modality_dims:
                cols = np.flatnonzero(blocks == b)
                turned[:, cols] = turned[:, cols] @ plane_rotation(len(cols), d, rng).T
            named[f"read rot {d:g}"] = turned
        for name, z in named.items():
            if args.only and not name.startswith(tuple(args.only)):
                continue
            s = graph_bound(layout, spec, options, z, truth, steps=args.steps, seed=seed)
            fit = ""
            if name != "truth":
                r2 = squared_correlations(z, truth.latents)
                fit = "/".join(f"{r2[blocks == b].mean():.3f}" for b in dict.fromkeys(blocks))
            rb = "" if name == "truth" else f"{block_r2(z, truth.latents, layout):.3f}"
            print(f"{seed:>4} {name:>11} {fit:>19} {rb:>8} {s['map_shd']:>10} {s['map_edges']:>5} {s['q_shd']:>8} "
                  f"{s['q_auroc']:>8.3f} {s['q_ece']:>6.3f}  {', '.join(s['map_wrong']) or '-'}", flush=True)


if __name__ == "__main__":
    main()
