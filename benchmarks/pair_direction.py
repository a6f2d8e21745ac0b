"""The direction of variant MNIST's one cross-modal edge, decided by an additive-noise test on the true latents.

The generator's only cross-modal edge is ``Z11 -> Z21`` (``Z21 = sin(1.3 Z11) + 0.3 Z11 +
e3``, uniform ``Z11`` and ``e3``): an additive noise model, whose direction the joint
distribution decides (Hoyer et al., NeurIPS 2008). This script asks it of the data with
causal-learn's ``ANM`` (a Gaussian-process regression each way and a kernel independence
test, KCI, of the residual and the input): on disjoint subsamples of ``--rows`` of 9,000
draws of the generator's true latents (the size of the benchmark's training split;
standardised), the p-value of independence in the forward (``Z11 -> Z21``) and the
backward direction. The direction with the larger p-value is the one preferred, and
``neither`` where both are below ``--alpha`` (no additive noise model fits the pair either
way). It is the bound of the method given the true latents for the benchmark's
``P(Z11 -> Z21)``.

``--latents DIR`` asks the same of a fit's learned latents instead: the files that
``recovery_variant_mnist.py --save-latents DIR`` writes, their training rows, the learned
latents matched to ``Z11`` and ``Z21`` inside their blocks
(:func:`learned_latents_exact.matching`).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/pair_direction.py --seeds 0 1 2 3 4 --rows 1500 --repeats 6
    OMP_NUM_THREADS=1 python benchmarks/pair_direction.py --seeds 0 1 --repeats 3 --latents DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pair_p_values(z: np.ndarray, rows: int, repeats: int, seed: int,
                  pair: tuple[int, int] = (0, 2)) -> list[tuple[float, float]]:
    """``(p forward, p backward)`` of ANM on ``repeats`` disjoint subsamples of ``rows`` rows of a pair of columns.

    ``z``: latents ``(N, D)``; ``pair``: the columns of the cause and the effect (default ``Z11``, ``Z21`` of the
    true latents in the order ``Z11, Z12, Z21, Z22``); ``rows * repeats <= N``.
    """
    from causallearn.search.FCMBased.ANM.ANM import ANM

    if rows * repeats > len(z):
        raise ValueError(f"rows * repeats: expected <= {len(z)} (the rows given); found {rows * repeats}")
    order = np.random.default_rng(seed).permutation(len(z))
    out = []
    for r in range(repeats):
        sub = z[order[r * rows:(r + 1) * rows]][:, list(pair)]
        sub = (sub - sub.mean(0)) / sub.std(0)
        p_forward, p_backward = ANM().cause_or_effect(sub[:, :1], sub[:, 1:])
        out.append((float(p_forward), float(p_backward)))
    return out


def preferred(p_forward: float, p_backward: float, alpha: float) -> str:
    """``"forward"`` or ``"backward"``, the direction with the larger p-value; ``"neither"`` where both are below
    ``alpha``."""
    if max(p_forward, p_backward) < alpha:
        return "neither"
    return "forward" if p_forward > p_backward else "backward"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rows", type=int, default=1500, help="rows per subsample (the GP costs O(rows^3))")
    parser.add_argument("--repeats", type=int, default=6, help="disjoint subsamples per seed")
    parser.add_argument("--entities", type=int, default=9000, help="rows drawn (the benchmark's training split)")
    parser.add_argument("--alpha", type=float, default=0.01, help="level below which a direction is rejected")
    parser.add_argument("--latents", metavar="DIR", default=None,
                        help="a fit's latents (recovery_variant_mnist.py --save-latents DIR) instead of the truth")
    args = parser.parse_args(argv)

    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    print(f"{'seed':>4} {'subsample':>9} {'p forward':>10} {'p backward':>10} {'preferred':>9} {'s':>4}")
    for seed in args.seeds:
        pair = (0, 2)
        if args.latents is None:
            z = sample_variant_mnist_latents(args.entities, seed=seed)
        else:
            from learned_latents_exact import load, matching, training_rows

            z, truth, blocks = training_rows(load(Path(args.latents) / f"seed{seed}.npz"))
            perm = matching(z, truth, blocks)
            pair = (int(perm[0]), int(perm[2]))
            print(f"seed {seed}: the learned latents {pair[0]} and {pair[1]} matched to Z11 and Z21", flush=True)
        start = time.perf_counter()
        pairs = pair_p_values(z, args.rows, args.repeats, seed, pair)
        verdicts = [preferred(pf, pb, args.alpha) for pf, pb in pairs]
        for r, ((pf, pb), verdict) in enumerate(zip(pairs, verdicts)):
            print(f"{seed:>4} {r:>9} {pf:>10.3g} {pb:>10.3g} {verdict:>9} "
                  f"{(time.perf_counter() - start) / len(pairs):>4.0f}", flush=True)
        print(f"seed {seed}: forward preferred on {verdicts.count('forward')} of {len(pairs)} subsamples, "
              f"neither direction kept on {verdicts.count('neither')}", flush=True)


if __name__ == "__main__":
    main()
