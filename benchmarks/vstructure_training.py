"""How much training the v-structure recovery test needs: recovery per seed for one training length.

Runs ``tests/test_recovery_vstructure.py``'s simulation and matching for each seed with the
given number of entities, batch size and epochs (one chain, the tests' shortened graph
stage), and prints the matched |Spearman| of the three latents, P(a -> c), P(b -> c), the
largest other edge probability and the seconds the fit took.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/vstructure_training.py --entities 2000 --batch-size 512 \\
        --epochs 100 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_recovery_vstructure import NAMES, _matched_edges, _simulate

    import pyro_personax.inference.options as options
    from pyro_personax.facade import PersonaX

    options.DEFAULT_GRAPH_REFINEMENT = options.GraphRefinement(mechanism_steps=20, graph_steps=20, num_restarts=2)
    off = ~np.eye(3, dtype=bool)
    off[0, 2] = off[1, 2] = False
    print(f"{'seed':>4} {'min |rho|':>9} {'P(a->c)':>8} {'P(b->c)':>8} {'max other':>9} {'s':>6}")
    for seed in args.seeds:
        data, z = _simulate(args.entities, seed=seed)
        px = PersonaX(data, latent_dims={name: 1 for name in NAMES}, mechanism="mlp")
        start = time.perf_counter()
        px.fit(data, num_chains=1, num_epochs=args.epochs, batch_size=args.batch_size, progress=False,
               device="cpu", seed=seed)
        seconds = time.perf_counter() - start
        corr, P = _matched_edges(px, data, z)
        print(f"{seed:>4} {corr.min():>9.3f} {P[0, 2]:>8.3f} {P[1, 2]:>8.3f} {P[off].max():>9.3f} {seconds:>6.1f}")


if __name__ == "__main__":
    main()
