"""The direction of variant MNIST's one cross-modal edge, decided by an additive-noise test on the true latents.

The generator's only cross-modal edge is ``Z11 -> Z21`` (``Z21 = sin(1.3 Z11) + 0.3 Z11 +
e3``, uniform ``Z11`` and ``e3``): an additive noise model, whose direction the joint
distribution decides (Hoyer et al., NeurIPS 2008). This script asks it of the data with
causal-learn's ``ANM`` (a Gaussian-process regression each way and a kernel independence
test, KCI, of the residual and the input): on disjoint subsamples of ``--rows`` of 9,000
draws of the generator's true latents (the size of the benchmark's training split;
standardised), the p-value of
independence in the forward (``Z11 -> Z21``) and the backward direction; the direction
with the larger p-value is the one preferred. It is the bound of the method given the
true latents for the benchmark's ``P(Z11 -> Z21)``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/pair_direction.py --seeds 0 1 2 3 4 --rows 1500 --repeats 6
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def pair_p_values(z: np.ndarray, rows: int, repeats: int, seed: int) -> list[tuple[float, float]]:
    """``(p forward, p backward)`` of ANM on ``repeats`` disjoint subsamples of ``rows`` rows of ``(Z11, Z21)``.

    ``z``: true latents ``(N, 4)`` in the order ``Z11, Z12, Z21, Z22``; ``rows * repeats <= N``.
    """
    from causallearn.search.FCMBased.ANM.ANM import ANM

    if rows * repeats > len(z):
        raise ValueError(f"rows * repeats: expected <= {len(z)} (the rows given); found {rows * repeats}")
    order = np.random.default_rng(seed).permutation(len(z))
    out = []
    for r in range(repeats):
        sub = z[order[r * rows:(r + 1) * rows]][:, [0, 2]]
        sub = (sub - sub.mean(0)) / sub.std(0)
        p_forward, p_backward = ANM().cause_or_effect(sub[:, :1], sub[:, 1:])
        out.append((float(p_forward), float(p_backward)))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rows", type=int, default=1500, help="rows per subsample (the GP costs O(rows^3))")
    parser.add_argument("--repeats", type=int, default=6, help="disjoint subsamples per seed")
    parser.add_argument("--entities", type=int, default=9000, help="rows drawn (the benchmark's training split)")
    args = parser.parse_args(argv)

    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    print(f"{'seed':>4} {'subsample':>9} {'p forward':>10} {'p backward':>10} {'preferred':>9} {'s':>4}")
    for seed in args.seeds:
        z = sample_variant_mnist_latents(args.entities, seed=seed)
        start = time.perf_counter()
        pairs = pair_p_values(z, args.rows, args.repeats, seed)
        for r, (pf, pb) in enumerate(pairs):
            print(f"{seed:>4} {r:>9} {pf:>10.3g} {pb:>10.3g} {'forward' if pf > pb else 'backward':>9} "
                  f"{(time.perf_counter() - start) / len(pairs):>4.0f}", flush=True)
        print(f"seed {seed}: forward preferred on {sum(pf > pb for pf, pb in pairs)} of {len(pairs)} subsamples",
              flush=True)


if __name__ == "__main__":
    main()
