"""Does leave-one-measurement-out find an edge that one measurement alone carries?

Simulation (as in ``tests/test_recovery_vstructure.py``): latents ``a``, ``b`` and ``t``,
each its own modality with three noisy nonlinear measurements; ``a -> t`` holds in every
measurement of ``t``, while the first of them (``llm_a``) reads ``t + w * tanh(b)``: an
edge ``b -> t`` planted in that measurement only. For each seed the script runs
:func:`~pyro_personax.inference.leave_one_measurement_out` on ``t`` (the reference fit and
one refit without each measurement; one chain each, the tests' shortened graph stage)
and prints P(edge) per variant, the stability verdicts of the edges and of the links
(either direction) and the latent agreement. The expected verdicts are ``a_1 -> t_1``
stable and ``b_1 -> t_1`` resting on ``llm_a``. With ``--single`` each measurement of
``t`` is also fitted alone.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/sensitivity_recovery.py --entities 2000 --epochs 100 \\
        --batch-size 512 --seeds 0 1 [--single] [--latent-transform spline]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def simulate(n: int, seed: int, weight: float = 1.0):
    """``MultiModalData`` with modalities ``a``, ``b``, ``t`` (3 measurements each, 4-d)."""
    from pyro_personax.data import MultiModalData

    rng = np.random.default_rng(seed)
    a, b = rng.laplace(size=n), rng.laplace(size=n)
    t = np.tanh(a) + 0.5 * rng.laplace(size=n)

    def std(v):
        return (v - v.mean()) / v.std()

    read = {"a": [std(a)] * 3, "b": [std(b)] * 3, "t": [std(t + weight * np.tanh(b)), std(t), std(t)]}
    measurements = {}
    for name, latents in read.items():
        views = []
        for z in latents:
            w1, b1 = rng.normal(size=(1, 8)), 0.5 * rng.normal(size=8)
            w2 = rng.normal(size=(8, 4)) / np.sqrt(8)
            x = np.tanh(z[:, None] @ w1 + b1) @ w2 + 0.3 * z[:, None]
            views.append(x + 0.1 * rng.normal(size=x.shape))
        measurements[name] = views
    return MultiModalData(measurements, measurement_names={"t": ["llm_a", "llm_b", "llm_c"]})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--weight", type=float, default=1.0, help="weight of tanh(b) in llm_a's reading of t")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--single", action="store_true",
                        help="also fit each measurement of t alone (leave_one_measurement_out's single=True)")
    parser.add_argument("--latent-transform", default="identity", choices=("identity", "spline"),
                        help="PersonaX's latent_transform (default identity, the library's)")
    args = parser.parse_args(argv)

    import pyro_personax.inference.options as options
    from pyro_personax import PersonaX
    from pyro_personax.sensitivity import leave_one_measurement_out

    options.DEFAULT_GRAPH_REFINEMENT = options.GraphRefinement(mechanism_steps=20, graph_steps=20, num_restarts=2)
    for seed in args.seeds:
        data = simulate(args.entities, seed, args.weight)
        px = PersonaX(data, latent_dims={"a": 1, "b": 1, "t": 1}, latent_transform=args.latent_transform)
        start = time.perf_counter()
        result = leave_one_measurement_out(
            px, data, "t", single=args.single, seed=seed,
            fit_options={"num_epochs": args.epochs, "batch_size": args.batch_size, "num_chains": 1,
                         "device": "cpu", "progress": False},
        )
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s")
        print(result.edges.round(2).to_string())
        print(result.stability[["holds_in", "verdict"]].to_string())
        links = result.adjacency_stability[["holds_in", "verdict"]].join(result.adjacencies.drop(columns="edge_class"))
        print(links.round(2).to_string())
        print(result.latent_agreement.round(2).to_string(), flush=True)


if __name__ == "__main__":
    main()
