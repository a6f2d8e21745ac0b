"""The exact graph posterior given a fit's learned variant-MNIST latents, and what mixes them.

Reads the files that ``recovery_variant_mnist.py --save-latents DIR`` writes
(``DIR/seed<S>.npz``: the posterior means of chain 0 for every row, the true latents,
the split) and works on the training rows (``--all-rows``: on every row). The learned
latents are matched to the true ones inside their blocks
(:func:`~pyro_personax.metrics.evaluate_recovery`). It prints two things per seed:

- **What the learned colour block carries** (regressions with cubic features, R^2 on
  the training rows): true ``Z11`` read from its match alone and from both colour
  latents (a gain means ``Z11`` is spread over the block); the match's Spearman
  correlation with ``e2``, the exogenous term of ``Z12``; and how much the learned
  ``Z12``'s match adds, beyond the learned ``Z11``'s, to reading the fashion latent
  matched to ``Z21`` (``gain F``) next to the same quantity for the true latents
  (``Z21`` from ``Z11``, ``Z12``: zero up to the regression's error, since ``Z12`` is no
  parent of ``Z21``). A positive ``gain F`` on the learned latents is what makes a
  ``Z12``-fashion edge pay.
- **The exact posterior over every DAG of the learned layout** (2 colour + 4 fashion
  latents, 3,781,503 DAGs; :func:`equivalent_representations.exact_posterior`) for five
  versions of the latents: ``learned`` (as fitted); ``colour LS`` (the colour block
  replaced by its least-squares linear map onto the true ``Z11, Z12``: the same latents
  unmixed inside the block by an oracle, fashion as learned); ``colour truth`` (the true
  ``Z11, Z12``, fashion as learned); ``reading`` (in each block the latent nearest the
  block's cross-modal reading replaced by it, :func:`with_reading`: no truth used; the
  matching is redone on these latents); ``reading basis`` (each block re-expressed by its
  reading and the rest of the block given it, :func:`in_reading_basis`: what
  :meth:`~pyro_personax.PersonaX.reading_graph` fits its graph to; matched likewise).
  Columns as in ``recovery_variant_mnist.py``: ``P(Z11->Z21)`` and ``P_LINK`` on the
  matches, ``P Z11-F`` and ``P Z12-F`` (an edge with any fashion latent, either
  direction), ``P spur x`` (mean over the other 15 cross-modal cells), and the fit's own
  ``q(G)`` on the first line for comparison.
  ``log ev - first``: the model's log evidence of the learned latents under each
  version (for ``colour LS`` its map's log Jacobian added back, so that the two are
  the same data in two bases, which the images' likelihood cannot tell apart); for
  ``colour truth`` and ``reading`` it is the evidence of other data and is printed only
  for the record.

With ``--charges`` the exact posterior of each version is also printed under other
edge charges (multiples of the model's BIC charge, ``k / 2 log N`` with ``k`` the
effective parameters of an MLP edge): the same enumeration, each graph's log weight moved
by the change of charge times its free edges. With ``--null-charge`` the charge is also
calibrated on the same latents: each column permuted on its own (no dependence left),
the mechanisms fitted the same way, and ``k`` set to twice the mean in-sample gain of one
edge over the empty parent set (Wilks).

If the exact posterior on ``learned`` already links ``Z12`` with the fashion block, the
latents carry the spurious link and no graph posterior fixes it; if ``colour LS``
removes it, a map inside the colour block (which the likelihood cannot see) is what
would.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/recovery_variant_mnist.py --num-entities 10000 --seeds 0 \\
        --epochs 60 --save-latents /tmp/vm
    OMP_NUM_THREADS=1 python benchmarks/learned_latents_exact.py --latents /tmp/vm --seeds 0
    OMP_NUM_THREADS=1 python benchmarks/learned_latents_exact.py --latents /tmp/vm --seeds 0 --mechanism mlp_additive

``--mechanism`` sets the mechanisms fitted to the latents (default: the library's ``"mlp"``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts
from equivalent_representations import exact_posterior, fitted_model  # noqa: E402
from recovery_variant_mnist import cross_modal_scores, link_layout  # noqa: E402

VERSIONS = ("learned", "colour LS", "colour truth", "reading", "reading basis")


def poly_r2(x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of ``y`` ``(n,)`` on ``x`` ``(n, k)`` by a cubic polynomial regression (in-sample)."""
    reg = make_pipeline(StandardScaler(), PolynomialFeatures(3), LinearRegression())
    return float(reg.fit(x, y).score(x, y))


def load(path: Path) -> dict:
    """The arrays of one ``--save-latents`` file, with a readable error for a wrong file."""
    if not path.exists():
        raise SystemExit(f"--latents: {path} not found (write it with recovery_variant_mnist.py --save-latents)")
    with np.load(path) as f:
        missing = {"latents", "true_latents", "train", "blocks", "edge_probs"} - set(f.files)
        if missing:
            raise SystemExit(f"{path}: expected the arrays of --save-latents; missing {sorted(missing)}")
        return {k: f[k] for k in f.files}


def training_rows(f: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The training rows of one :func:`load` result: learned latents ``(n, D)``, true latents ``(n, 4)`` (float),
    and the block of every learned latent."""
    train = f["train"]
    return f["latents"][train].astype(float), f["true_latents"][train].astype(float), [str(b) for b in f["blocks"]]


def carried(z: np.ndarray, truth: np.ndarray, perm) -> dict:
    """The colour block's content (see the module docstring); ``z`` ``(n, D)``, ``truth`` ``(n, 4)``."""
    from pyro_personax.synthetic.variant_mnist import structural_noise

    e = structural_noise(truth)
    c11, c12, f21 = z[:, perm[0]], z[:, perm[1]], z[:, perm[2]]
    both = np.column_stack([c11, c12])
    return {
        "R2 Z11|match": poly_r2(c11[:, None], truth[:, 0]),
        "R2 Z11|colour": poly_r2(both, truth[:, 0]),
        "corr(match, e2)": abs(spearmanr(c11, e[:, 1]).statistic),
        "gain F": poly_r2(both, f21) - poly_r2(c11[:, None], f21),
        "gain truth": poly_r2(truth[:, :2], truth[:, 2]) - poly_r2(truth[:, :1], truth[:, 2]),
    }


def posterior_scores(P: np.ndarray, links, perm, blocks) -> dict:
    """The printed graph scores of ``(D, D)`` edge probabilities ``P`` on the matched latents."""
    s = cross_modal_scores(P, blocks, perm)
    out = {"P(Z11->Z21)": s["P_Z11_Z21"], "P_LINK": s["P_LINK"], "P spur x": s["P_SPURIOUS_X"]}
    if links is not None:
        out.update({"P Z11-F": float(links["fashion"].iloc[perm[0]]), "P Z12-F": float(links["fashion"].iloc[perm[1]])})
    return out


def fitted_qg_scores(model, spec, v: np.ndarray, perm, blocks, seed: int, num_graphs: int = 4000) -> dict:
    """Scores of ``q(G)`` fitted as the graph stage fits it, to the model and latents of the exact posterior.

    A fresh guide's ``q(G)`` is fitted with the graph stage's settings
    (:class:`~pyro_personax.inference.refine.GraphRefinement`) to ``v`` standardised, with
    the mechanisms of ``model`` fixed; ``num_graphs`` graphs drawn from it give the links.
    """
    import torch

    from pyro_personax.identifiability import latent_block_probabilities
    from pyro_personax.inference.oracle import fit_graph_given_latents
    from pyro_personax.inference.refine import GraphRefinement
    from pyro_personax.models.guide import PersonaXGuide

    settings = GraphRefinement()
    guide = PersonaXGuide(model.layout, spec)
    latents = (v - v.mean(0)) / v.std(0)
    P = fit_graph_given_latents(model, guide, latents, num_steps=settings.graph_steps,
                                num_particles=settings.num_particles, num_restarts=settings.num_restarts, seed=seed)
    with torch.no_grad():
        graphs = guide.sample_graphs(num_graphs, torch.Generator().manual_seed(seed))["edges"].numpy()
    return posterior_scores(P, latent_block_probabilities(model.layout, graphs), perm, blocks)


def recharged(post, extra_charge: float) -> np.ndarray:
    """Posterior weights ``(G,)`` of ``post``'s graphs with ``extra_charge`` nats more per edge (renormalised).

    Every edge of the variant-MNIST layout is free (none required), so each pays the charge.
    """
    log_w = post.log_prob - extra_charge * post.graphs.reshape(len(post.graphs), -1).sum(1)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def null_edge_gains(layout, spec, v: np.ndarray, *, seed: int, steps: int) -> np.ndarray:
    """In-sample gains of every single edge over the empty parent set, on ``v`` with each column permuted."""
    from pyro_personax.inference.oracle import node_table

    rng = np.random.default_rng(seed + 1000)
    null = np.column_stack([rng.permutation(col) for col in v.T])
    table = node_table(*fitted_model(layout, spec, null, seed=seed, steps=steps))  # as exact_posterior fits
    D = v.shape[1]
    return np.array([table[1 << i, j] - table[0, j] for i in range(D) for j in range(D) if i != j])


def matching(u: np.ndarray, truth: np.ndarray, blocks) -> list[int]:
    """:func:`~pyro_personax.metrics.evaluate_recovery`'s matching within blocks: ``perm[k]`` is the latent of ``u``
    ``(N, D)`` (block of each in ``blocks``) matched to true latent ``k`` of ``truth`` ``(N, 4)``."""
    from pyro_personax.metrics import evaluate_recovery
    from pyro_personax.synthetic.variant_mnist import variant_mnist_adjacency, variant_mnist_layout

    layout = variant_mnist_layout()
    return evaluate_recovery(u, truth, None, variant_mnist_adjacency(), identified=layout.identified_mask(),
                             learned_blocks=list(blocks), true_blocks=[str(b) for b in layout.block_of],
                             with_r2=False)["permutation"]


def with_reading(z: np.ndarray, layout, seed: int) -> np.ndarray:
    """``z`` ``(n, D)`` with, in each block, the latent nearest its cross-modal reading replaced by the reading.

    :func:`~pyro_personax.reading.cross_modal_reading` on ``z`` alone (no truth); a block
    whose reading has several columns has each replace its own nearest latent.
    """
    from pyro_personax.reading import cross_modal_reading

    r = cross_modal_reading(z, layout, seed=seed)
    v = z.copy()
    for i, name in enumerate(r.names):
        v[:, layout.index(r.nearest[name][0])] = r.readings[:, i]
    print(f"seed {seed} reading: dims {r.dims}, nearest "
          + ", ".join(f"{k} {n} ({c:.3f})" for k, (n, c) in r.nearest.items()), flush=True)
    return v


def in_reading_basis(z: np.ndarray, layout, seed: int) -> np.ndarray:
    """``z`` ``(n, D)`` in the reading basis (:func:`~pyro_personax.reading.reading_basis`; no truth used)."""
    from pyro_personax.reading import cross_modal_reading, reading_basis

    basis = reading_basis(z, layout, cross_modal_reading(z, layout, seed=seed), seed=seed)
    print(f"seed {seed} reading basis: {basis.names}", flush=True)
    return basis.latents


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", required=True, metavar="DIR", help="the folder given to --save-latents")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=300, help="steps of the mechanisms' fit")
    parser.add_argument("--mechanism", default="mlp", help="the model's mechanism (PersonaXModel's mechanism=)")
    parser.add_argument("--fit-qg", action="store_true",
                        help="also fit q(G) by the graph stage's estimator to the same mechanisms and latents")
    parser.add_argument("--only", nargs="+", default=list(VERSIONS), choices=VERSIONS, help="versions to score")
    parser.add_argument("--all-rows", action="store_true",
                        help="use every row of the file (training and held-out), as PersonaX.reading_graph(data) "
                             "does in recovery_variant_mnist.py, instead of the training rows")
    parser.add_argument("--charges", type=float, nargs="+", default=[],
                        help="also score each version under these multiples of the model's BIC edge charge")
    parser.add_argument("--null-charge", action="store_true",
                        help="also score under the charge calibrated on the latents with each column permuted")
    args = parser.parse_args(argv)

    from pyro_personax.identifiability import latent_block_probabilities
    from pyro_personax.models import ModelSpec
    from pyro_personax.synthetic.variant_mnist import variant_mnist

    spec = ModelSpec.from_data(variant_mnist(50, seed=0)[0])
    for seed in args.seeds:
        f = load(Path(args.latents) / f"seed{seed}.npz")
        z, truth, blocks = training_rows(f)
        if args.all_rows:
            z, truth = f["latents"].astype(float), f["true_latents"].astype(float)
        if sorted(set(blocks)) != ["colour", "fashion"]:
            raise SystemExit(f"seed {seed}: expected the blocks colour and fashion; found {sorted(set(blocks))}")
        layout = link_layout(blocks)
        perm = matching(z, truth, blocks)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in carried(z, truth, perm).items()), flush=True)
        print(f"seed {seed} fit q(G): "
              + ", ".join(f"{k} {v:.3f}" for k, v in posterior_scores(f["edge_probs"], None, perm, blocks).items()))
        colour = [int(perm[0]), int(perm[1])]  # the matches of Z11, Z12, in that order
        reference = None
        for name in args.only:
            v, jacobian = z.copy(), 0.0
            if name == "colour LS":
                ls = LinearRegression().fit(z[:, colour], truth[:, :2])
                v[:, colour] = ls.predict(z[:, colour])
                jacobian = len(v) * float(np.log(abs(np.linalg.det(ls.coef_))))
            elif name == "colour truth":
                v[:, colour] = truth[:, :2]
            elif name == "reading":
                v = with_reading(z, layout, seed)
            elif name == "reading basis":
                v = in_reading_basis(z, layout, seed)
            match = matching(v, truth, blocks) if name.startswith("reading") else perm
            post, evidence, model = exact_posterior(layout, spec, v, seed=seed, steps=args.steps,
                                                    mechanism=args.mechanism)
            evidence += jacobian  # the density of the learned latents, so that versions compare
            reference = evidence if reference is None else reference
            links = latent_block_probabilities(layout, post.graphs, weights=np.exp(post.log_prob))
            graph, p = post.top(1)[0]
            edges = " ".join(f"{i}{j}" for i, j in zip(*np.nonzero(graph)))
            scores = posterior_scores(post.edge_probabilities(), links, match, blocks)
            print(f"seed {seed} exact, {name}: log ev - first {evidence - reference:.1f}, MAP {edges} ({p:.2f}), "
                  + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)
            charge = model.edge_penalty("bic", len(v))
            multiples = list(args.charges)
            if args.null_charge:
                gains = null_edge_gains(layout, spec, v, seed=seed, steps=args.steps)
                k_null = 2 * gains.mean()
                print(f"seed {seed} {name}, permuted columns: gain of one edge mean {gains.mean():.2f}, sd "
                      f"{gains.std():.2f}, max {gains.max():.2f} nats, so k {k_null:.2f} (the model's "
                      f"{model.mechanisms.effective_params_per_edge})", flush=True)
                multiples.append(0.5 * k_null * np.log(len(v)) / charge)
            for m in multiples:
                w = recharged(post, (m - 1) * charge)
                P = np.einsum("g,gij->ij", w, post.graphs.astype(float))
                scores = posterior_scores(P, latent_block_probabilities(layout, post.graphs, weights=w), match, blocks)
                print(f"seed {seed} exact, {name}, charge {m * charge:.1f} nats ({m:.2f} x BIC): "
                      f"E[edges] {P.sum():.1f}, " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)
            if args.fit_qg:
                scores = fitted_qg_scores(model, spec, v, match, blocks, seed)
                print(f"seed {seed} q(G) fitted, {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()),
                      flush=True)


if __name__ == "__main__":
    main()
