"""Exact construction: which within-block maps of the variant-MNIST latents the model can tell apart.

Every map below acts inside one block (colour ``Z11, Z12``; fashion ``Z21, Z22``) and
is invertible with Jacobian determinant 1, so a model whose decoders read one block
each gives the images the same likelihood under every version. What can still differ
is the prior ``p(z) = sum_G p(z | G) p(G)`` (additive-noise mechanisms, the BIC edge
charge). For each version the script fits the library model's mechanisms to the
latents (:func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`, on random
parent sets) and computes the exact posterior over all DAGs
(:func:`~pyro_personax.inference.oracle.exact_graph_posterior`). It prints the log
evidence (in the latents' own coordinates, relative to the first version printed: the
truth unless ``--only`` leaves it out), the most probable graph, the probabilities of
``Z11 -> F1`` and ``F1 -> Z11`` (``F1`` the first fashion latent), the mean probability
of the seven cross-modal edges other than ``Z11 -> F1`` (``P spur x``, as
``P_SPURIOUS_X`` of ``recovery_variant_mnist.py``), the probabilities that ``Z11`` and
``Z12`` have an edge with either fashion latent (``P Z11-F``, ``P Z12-F``, as ``P_Z11_F``,
``P_Z12_F`` there; :func:`~pyro_personax.identifiability.latent_block_probabilities`), the pair's two factorisations
compared (``fwd-bwd``: ``log p(Z11) + log p(F1 | Z11)`` minus
``log p(F1) + log p(Z11 | F1)``, in nats), the model's log density of ``Z11`` as a root
per entity (the truth is Uniform with log density -1.242 per entity in the standardised
``Z11``), and ``F1``'s correlation with ``Z21``:

- ``truth``: ``[Z11, Z12, Z21, Z22]``;
- ``sparsest``: ``[Z11, e2, Z21, e4]`` (:func:`~pyro_personax.synthetic.variant_mnist.sparsest_equivalent`);
- ``Z21 + c e4``: ``[Z11, e2, Z21 + c e4, e4]``, ``Z21`` mixed with the exogenous term
  of ``Z22``. The first fashion latent keeps ``Z11`` as its only cross-modal parent;
  the mixing costs one within-block edge ``e4 -> Z21 + c e4``;
- ``Z21 + c Z22``: ``[Z11, Z12, Z21 + c Z22, Z22]``, ``Z21`` mixed with ``Z22`` itself:
  ``Z22`` then needs a cross-modal edge of its own;
- ``truth R2 r`` (``--noise-r2``): the truth plus independent Gaussian error that leaves a
  fraction ``r`` of each latent's variance, as a learned representation of that
  precision would be without a mixing: what measurement error alone does to the graph;
- ``images`` (``--supervised``): the latents as the images hold them. The data set is
  drawn with twice the rows (:func:`~pyro_personax.synthetic.variant_mnist.variant_mnist`,
  same seed); a regression trained with the truth on the second half
  (``recovery_variant_mnist.supervised_latents``, the benchmark's supervised bound) reads
  the first half's latents from their images. These are the most precise point estimates
  that a method reading the latents from the images can give, so their posterior is what
  a graph fitted to such estimates can reach. ``images truth`` is the true latents of
  the same rows (another sample than ``truth``, so ``log ev - first`` compares other
  data for both), and the ``images`` line is followed by each column's R^2 against them;
- ``images Zk R2 r`` (``--images-r2 r``): the ``images`` latents with independent Gaussian
  error added to the one column ``Zk``, so that its R^2 against the truth falls to ``r``
  (one version per latent that the images read above ``r``): which latent's precision
  the graph needs.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/equivalent_representations.py --seeds 0 1
    OMP_NUM_THREADS=1 python benchmarks/equivalent_representations.py --seeds 0 1 --only truth --noise-r2 0.97 0.95 0.9
    OMP_NUM_THREADS=1 python benchmarks/equivalent_representations.py --seeds 0 --only truth images --supervised
    OMP_NUM_THREADS=1 python benchmarks/equivalent_representations.py --only images --supervised --images-r2 0.95
    OMP_NUM_THREADS=1 python benchmarks/equivalent_representations.py --only truth --mechanism mlp_additive

``--mechanism`` and ``--noise-flow`` set the model's mechanisms and noise flow (default: the library's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts


def versions(z: np.ndarray, noise: np.ndarray, scales, noise_r2=(), seed: int = 0) -> dict[str, np.ndarray]:
    """The named ``(N, 4)`` versions of the latents ``z`` (columns ``Z11, Z12, Z21, Z22``)."""
    z11, z12, z21, z22 = z.T
    e2, e4 = noise[:, 1], noise[:, 3]
    out = {"truth": z, "sparsest": np.column_stack([z11, e2, z21, e4])}
    rng = np.random.default_rng(seed + 100)
    for r2 in noise_r2:  # independent Gaussian error leaving a fraction r2 of each latent's variance
        out[f"truth R2 {r2:g}"] = z + np.sqrt((1 - r2) / r2) * z.std(0) * rng.normal(size=z.shape)
    for c in scales:
        out[f"Z21 + {c:g} e4"] = np.column_stack([z11, e2, z21 + c * e4, e4])
    for c in scales:
        out[f"Z21 + {c:g} Z22"] = np.column_stack([z11, z12, z21 + c * z22, z22])
    return out


def read_from_images(num_entities: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Variant-MNIST latents read from their images by a regression trained on other rows.

    ``variant_mnist(2 num_entities, seed)``; ``recovery_variant_mnist.supervised_latents``
    is trained on the second half and predicts the first.

    Returns
    -------
    tuple
        ``(predicted, truth)``, each ``(num_entities, 4)``: the predictions (in the units of the
        standardised latents) and the true latents of the first half.
    """
    from recovery_variant_mnist import supervised_latents

    from pyro_personax.synthetic.variant_mnist import variant_mnist

    data, truth = variant_mnist(2 * num_entities, seed=seed)
    predicted = supervised_latents(data, truth.latents, np.arange(num_entities, 2 * num_entities), seed)
    return predicted[:num_entities], truth.latents[:num_entities]


def degraded(predicted: np.ndarray, truth: np.ndarray, r2: float, seed: int = 0) -> dict[str, np.ndarray]:
    """``predicted`` ``(N, 4)`` with one column at a time made to hold ``r2`` of the truth.

    For each column whose squared correlation ``r0`` with ``truth``'s exceeds ``r2``,
    independent Gaussian error of variance ``var (r0 / r2 - 1)`` is added to that column
    alone (version ``"images Zk R2 r2"``).
    """
    from supervised_reading import squared_correlations, with_error

    rng = np.random.default_rng(seed + 300)
    kept = squared_correlations(predicted, truth)
    return {f"images {name} R2 {r2:g}": with_error(predicted, truth, r2, [j], rng)
            for j, name in enumerate(("Z11", "Z12", "Z21", "Z22")) if kept[j] > r2}


def fitted_model(layout, spec, v: np.ndarray, *, seed: int, steps: int, **options):
    """The library model with its mechanisms fitted to ``v`` ``(N, D)`` standardised, and those latents.

    Seeded by ``seed`` (the model's initial values and the fit's masks); ``steps`` of
    :func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`; ``options``: the
    model's options (its defaults where not given).
    """
    from pyro_personax.inference.oracle import fit_mechanisms_given_latents
    from pyro_personax.models import PersonaXModel

    torch.manual_seed(seed)
    model = PersonaXModel(layout, spec, **options)
    latents = (v - v.mean(0)) / v.std(0)
    fit_mechanisms_given_latents(model, latents, num_steps=steps, seed=seed)
    return model, latents


def exact_posterior(layout, spec, v: np.ndarray, *, seed: int, steps: int, **options):
    """The exact graph posterior of the library model given the latents ``v`` ``(N, D)``.

    The columns are standardised, the model's mechanisms fitted to them
    (:func:`fitted_model`) and every DAG of ``layout`` scored
    (:func:`~pyro_personax.inference.oracle.exact_graph_posterior`).

    Returns
    -------
    tuple
        ``(posterior, log evidence, model)``: the evidence in ``v``'s own coordinates
        (the standardisation's Jacobian added back), the model with the fitted mechanisms.
    """
    from pyro_personax.inference.oracle import exact_graph_posterior

    model, latents = fitted_model(layout, spec, v, seed=seed, steps=steps, **options)
    post = exact_graph_posterior(model, latents)
    return post, post.log_evidence - len(v) * float(np.log(v.std(0)).sum()), model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=9000, help="rows (the benchmark's training split)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--only", nargs="+", default=None,
                        help="score only the versions whose names start with these (e.g. truth sparsest)")
    parser.add_argument("--steps", type=int, default=300, help="steps of the mechanisms' fit")
    parser.add_argument("--mechanism", default="mlp", help="the model's mechanism (PersonaXModel's mechanism=)")
    parser.add_argument("--noise-flow", default="spline", help="the model's noise flow (PersonaXModel's noise_flow=)")
    parser.add_argument("--noise-r2", type=float, nargs="*", default=[],
                        help="also the truth plus independent Gaussian error that leaves this fraction of each "
                             "latent's variance (version 'truth R2 r')")
    parser.add_argument("--supervised", action="store_true",
                        help="also the latents read from the images by a regression trained with the truth on "
                             "as many other rows (versions 'images truth' and 'images')")
    parser.add_argument("--images-r2", type=float, nargs="*", default=[],
                        help="with --supervised: also the 'images' latents with one column at a time read with "
                             "error down to this R^2 (versions 'images Zk R2 r')")
    args = parser.parse_args(argv)
    if args.images_r2 and not args.supervised:
        parser.error("--images-r2: needs --supervised")

    from supervised_reading import squared_correlations

    from pyro_personax.identifiability import latent_block_probabilities
    from pyro_personax.models import ModelSpec
    from pyro_personax.synthetic.variant_mnist import (
        sample_variant_mnist_latents,
        structural_noise,
        variant_mnist,
        variant_mnist_layout,
    )

    spec = ModelSpec.from_data(variant_mnist(50, seed=0)[0])
    layout = variant_mnist_layout()
    print(f"{'seed':>4} {'version':>18} {'log ev - first':>14} {'MAP graph (P)':>40} {'P(Z11->F1)':>10} "
          f"{'P(F1->Z11)':>10} {'P spur x':>8} {'P Z11-F':>7} {'P Z12-F':>7} {'fwd-bwd':>8} {'root Z11':>8} "
          f"{'corr(F1,Z21)':>12}")
    for seed in args.seeds:
        z = sample_variant_mnist_latents(args.entities, seed=seed)
        reference = None
        named = versions(z, structural_noise(z), args.scales, args.noise_r2, seed)
        if args.supervised and (not args.only or any("images".startswith(o) or o.startswith("images")
                                                     for o in args.only)):
            predicted, named["images truth"] = read_from_images(args.entities, seed)
            named["images"] = predicted
            for r2 in args.images_r2:
                named.update(degraded(predicted, named["images truth"], r2, seed))
        for name, v in named.items():
            if args.only and not name.startswith(tuple(args.only)):
                continue
            std = v.std(0)
            post, evidence, _ = exact_posterior(layout, spec, v, seed=seed, steps=args.steps,
                                                mechanism=args.mechanism, noise_flow=args.noise_flow)
            reference = evidence if reference is None else reference
            graph, p = post.top(1)[0]
            edges = " ".join(f"{i}{j}" for i, j in zip(*np.nonzero(graph)))
            P = post.edge_probabilities()
            own = named["images truth"] if name.startswith("images") else z  # the true latents of these rows
            corr = abs(np.corrcoef(v[:, 2], own[:, 2])[0, 1])
            cross = np.zeros((4, 4), dtype=bool)
            cross[:2, 2:] = cross[2:, :2] = True
            cross[0, 2] = False  # the true cross-modal edge Z11 -> Z21
            spurious = float(P[cross].mean())
            links = latent_block_probabilities(layout, post.graphs, weights=np.exp(post.log_prob))["fashion"]
            T = post.node_table  # parent bitmasks: 0 none, 1 = {Z11}, 4 = {F1}
            forward_minus_backward = T[0, 0] + T[1, 2] - T[4, 0] - T[0, 2]
            root = T[0, 0] / len(v) - np.log(std[0])  # per entity, in the first latent's own units
            print(f"{seed:>4} {name:>18} {evidence - reference:>14.1f} {edges + f' ({p:.2f})':>40} "
                  f"{P[0, 2]:>10.3f} {P[2, 0]:>10.3f} {spurious:>8.3f} {links.iloc[0]:>7.3f} {links.iloc[1]:>7.3f} "
                  f"{forward_minus_backward:>8.1f} {root:>8.3f} "
                  f"{corr:>12.3f}",
                  flush=True)
            if name.startswith("images") and name != "images truth":
                r2 = squared_correlations(v, own)
                print(f"{'':>23} R^2 against the truth (squared correlation): "
                      + " ".join(f"{n} {r:.3f}" for n, r in zip(("Z11", "Z12", "Z21", "Z22"), r2)), flush=True)


if __name__ == "__main__":
    main()
