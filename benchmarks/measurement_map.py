"""Within-block edges under a declared measurement map: recovered with it, undecided without.

Data: :func:`pyro_personax.synthetic.measurement_map_example` (``a_1 -> a_2 <- b_1``,
N entities, a true map for block ``a``). For every seed, three fits with the library
defaults otherwise: ``map`` (the true map declared), ``map + spline`` (the map and the
post-nonlinear latent transform, ``latent_transform="spline"``) and ``no map``. Printed
per fit: P(a_1 -> a_2) (within-block), P(b_1 -> a_2) (cross-modal), the largest P of a
non-edge, the class of ``a_1 -> a_2``, the MCC (latents matched within blocks) and
the seconds. Learned latents are matched to the true ones within blocks (Hungarian
matching on |Spearman|) before the edges are read.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/measurement_map.py --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from pyro_personax import PersonaX
from pyro_personax.metrics import mcc, permute_adjacency
from pyro_personax.synthetic import EXAMPLE_MEASUREMENT_MAP, measurement_map_example

CONFIGS = {
    "map": {"measurement_map": EXAMPLE_MEASUREMENT_MAP},
    "map + spline": {"measurement_map": EXAMPLE_MEASUREMENT_MAP, "latent_transform": "spline"},
    "no map": {},
}


def run(seed: int, config: str, num_entities: int, epochs: int) -> dict:
    """One fit; the row of the table."""
    data, truth = measurement_map_example(num_entities, seed=seed)
    start = time.perf_counter()
    px = PersonaX(data, latent_dims={"a": 2, "b": 1}, **CONFIGS[config])
    px.fit(data, num_chains=1, seed=seed, num_epochs=epochs, progress=False)
    seconds = time.perf_counter() - start
    learned = px.get_latent_representation(data)
    blocks = np.array(px.layout.block_of)
    match = mcc(learned, truth.latents, learned_blocks=blocks, true_blocks=blocks)
    P = permute_adjacency(px.edge_probabilities().to_numpy(), match.permutation)
    non_edges = ~truth.adjacency.astype(bool) & ~np.eye(3, dtype=bool)
    return {
        "seed": seed,
        "config": config,
        "P(a1->a2)": P[0, 1],
        "P(b1->a2)": P[2, 1],
        "max P non-edge": P[non_edges].max(),
        "class a1->a2": px.layout.edge_classes()[0, 1],
        "MCC": match.value,
        "s": seconds,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--num-entities", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=100, help="(the library default is 100)")
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    rows = []
    for seed in args.seeds:
        for config in args.configs:
            rows.append(run(seed, config, args.num_entities, args.epochs))
            print(" ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()),
                  flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    summary = table.groupby("config", sort=False)[["P(a1->a2)", "P(b1->a2)", "max P non-edge", "MCC", "s"]].mean()
    print("\nmean over seeds")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
