"""How close the model's density of the true variant-MNIST latents comes to their true density, node by node.

The variant-MNIST latents have uniform noise in ``Z11`` (a root) and ``Z21``, Laplace noise
in ``Z12`` and ``Z22`` (:mod:`pyro_personax.synthetic.variant_mnist`), so their true log
density is known in closed form. The script fits the library model's mechanisms and
noise flows to 9,000 rows of the standardised true latents of seed ``S``
(:func:`~pyro_personax.synthetic.variant_mnist.sample_variant_mnist_latents`) and prints,
for every latent ``j``, the true mean log density of ``z_j`` given its true parents less
the model's under the truth's graph (the gap, in nats per entity; 0 is a model that holds
the truth). Fits:

- ``masks``: :func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`, the
  criterion training and the graph stage use (random parent sets, one set of mechanisms
  for all of them);
- ``truth's graph``: Adam on the truth's graph alone (the parent sets the truth has).

The difference between the two is what fitting every parent set with one set of noise
shapes costs the truth's graph. Options: ``--noise-flows`` (the model's ``noise_flow``),
``--steps`` and ``--learning-rate`` (Adam's, for the fit on the truth's graph).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/noise_shape.py --seeds 0 --noise-flows spline parent_spline
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch


def true_node_log_density(z: np.ndarray) -> np.ndarray:
    """Mean true log density per latent ``(4,)`` of the latents ``z`` ``(N, 4)`` standardised, given true parents."""
    from pyro_personax.synthetic.variant_mnist import structural_noise

    e = structural_noise(z)
    b = 1 / math.sqrt(2)  # Laplace of unit variance
    uniform = -math.log(2 * math.sqrt(3))  # Uniform of unit variance, inside its support
    laplace = -math.log(2 * b) - np.abs(e) / b
    node = np.stack([np.full(len(z), uniform), laplace[:, 1], np.full(len(z), uniform), laplace[:, 3]], 1)
    return node.mean(0) + np.log(z.std(0))


def new_model(noise_flow: str, seed: int, layout=None, mechanism: str = "mlp"):
    """A fresh library model of ``layout`` (default: the variant-MNIST layout, 4 latents) on the variant-MNIST
    measurements, seeded, with ``mechanism`` (the library's ``PersonaXModel`` option)."""
    from pyro_personax.models import ModelSpec, PersonaXModel
    from pyro_personax.synthetic.variant_mnist import variant_mnist, variant_mnist_layout

    torch.manual_seed(seed)
    return PersonaXModel(layout or variant_mnist_layout(), ModelSpec.from_data(variant_mnist(50, seed=0)[0]),
                         noise_flow=noise_flow, mechanism=mechanism)


def fit_on_graph(model, u: torch.Tensor, graph: torch.Tensor, *, steps: int, learning_rate: float = 0.02) -> int:
    """Fit ``model``'s mechanisms and noise flows to latents ``u`` ``(N, D)`` under one parent matrix ``graph``
    ``(D, D)`` by full-batch Adam (steps with a non-finite loss or gradient skipped); return the skipped steps."""
    from pyro_personax.inference.nonfinite import gradients_finite

    params = model.mechanism_parameters()
    optimiser = torch.optim.Adam(params, lr=learning_rate)
    skipped = 0
    for _ in range(steps):
        loss = -model.latent_distribution(graph).node_log_prob(u).mean(0).sum()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if not (torch.isfinite(loss) and gradients_finite(params)):
            skipped += 1
            continue
        optimiser.step()
    return skipped


def fitted_gap(z: np.ndarray, noise_flow: str, fit: str, *, steps: int, seed: int,
               learning_rate: float = 0.02) -> tuple[np.ndarray, float]:
    """The gap per latent ``(4,)`` (true less the model's, nats per entity) and the fit's seconds; ``learning_rate``
    is Adam's on the truth's graph (the ``masks`` fit keeps its own)."""
    from pyro_personax.inference.oracle import fit_mechanisms_given_latents
    from pyro_personax.synthetic.variant_mnist import variant_mnist_adjacency

    model = new_model(noise_flow, seed)
    u = torch.as_tensor((z - z.mean(0)) / z.std(0), dtype=torch.float32)
    graph = torch.as_tensor(variant_mnist_adjacency(), dtype=torch.float32)
    start = time.perf_counter()
    if fit == "masks":
        fit_mechanisms_given_latents(model, u.numpy(), num_steps=steps, seed=seed)
    else:
        fit_on_graph(model, u, graph, steps=steps, learning_rate=learning_rate)
    with torch.no_grad():
        node = model.latent_distribution(graph).node_log_prob(u).mean(0).numpy()
    return true_node_log_density(z) - node, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--noise-flows", nargs="+", default=["spline", "parent_spline"],
                        choices=("spline", "parent_spline", "affine"))
    parser.add_argument("--fits", nargs="+", default=["masks", "truth's graph"], choices=("masks", "truth's graph"))
    parser.add_argument("--steps", type=int, default=300, help="Adam steps of each fit")
    parser.add_argument("--learning-rate", type=float, default=0.02, help="Adam's on the truth's graph")
    args = parser.parse_args(argv)
    if args.learning_rate <= 0:
        parser.error(f"--learning-rate {args.learning_rate}: expected a positive number")

    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    print("gap = true mean log density less the model's, per latent given its true parents (nats per entity)")
    for seed in args.seeds:
        z = sample_variant_mnist_latents(10_000, seed=seed)[:9000]
        for flow in args.noise_flows:
            for fit in args.fits:
                gap, seconds = fitted_gap(z, flow, fit, steps=args.steps, seed=seed, learning_rate=args.learning_rate)
                print(f"seed {seed}, noise_flow {flow}, fit on {fit}: gap Z11 Z12 Z21 Z22 "
                      + " ".join(f"{g:.4f}" for g in gap) + f", total {gap.sum():.4f} ({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
