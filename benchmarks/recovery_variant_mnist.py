"""Recovery benchmark on variant MNIST: PersonaX vs a PCA baseline vs the paper's numbers.

For every seed: generate ``--num-entities`` entities with
:func:`pyro_personax.synthetic.variant_mnist.variant_mnist`, split them 90/10 (train /
held-out), train the default :class:`pyro_personax.PersonaX` model on the training rows,
and score the latents of the held-out rows:

- R^2: kernel ridge from learned to true latents, fitted on the training rows and
  scored on the held-out rows (:func:`pyro_personax.metrics.r2`);
- MCC (Spearman) on the held-out rows, with its Hungarian matching;
- SHD (edge probability > 0.5, reversal = 1) and edge AUROC after matching.

The PCA baseline projects the concatenated flattened measurements on 4 principal
components fitted on the training rows and is scored the same way (it has no graph).

Usage (single thread, as the numbers below the table say)::

    OMP_NUM_THREADS=1 python benchmarks/recovery_variant_mnist.py \
        --num-entities 10000 --seeds 0 1 2 --epochs 200
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from pyro_personax.metrics import edge_auroc, mcc, permute_adjacency, r2, shd
from pyro_personax.synthetic.variant_mnist import variant_mnist

PAPER_ROWS = [
    {"method": "PersonaX (paper)", "R2": 0.96, "MCC": 0.92},
    {"method": "MMCRL (paper)", "R2": 0.90, "MCC": 0.85},
]
LATENT_DIMS = {"colour": 2, "fashion": 2}


def split_indices(num_entities: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out row indices, the same rule as ``MultiModalData.split``."""
    n_val = max(1, int(round(validation_fraction * num_entities)))
    perm = np.random.default_rng(seed).permutation(num_entities)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def flatten_measurements(data) -> np.ndarray:
    """``(N, sum_m K_m * d_m)``: every measurement of every modality side by side."""
    return np.concatenate([v.reshape(v.shape[0], -1) for v in data.values.values()], axis=1)


def score(latents, truth, train, test, edge_probs=None, seed: int = 0) -> dict:
    """Held-out R^2 and MCC, and SHD / edge AUROC after matching when a graph is given.

    Parameters
    ----------
    latents
        ``(N, D)`` learned latents of all rows.
    truth
        The :class:`~pyro_personax.synthetic.truth.GroundTruth`.
    train, test
        Row indices.
    edge_probs
        ``(D, D)`` learned edge probabilities, or ``None``.
    seed
        Seed of the R^2 cross-validation.
    """
    res = {
        "R2": r2(latents, truth.latents, train=train, test=test, seed=seed).value,
        "MCC": (m := mcc(latents[test], truth.latents[test], "spearman")).value,
        "SHD": np.nan,
        "AUROC": np.nan,
    }
    if edge_probs is not None:
        P = permute_adjacency(np.asarray(edge_probs, dtype=float), m.permutation)
        G = (P > 0.5) & ~np.eye(len(P), dtype=bool)
        res["SHD"] = shd(G.astype(float), truth.adjacency)
        res["AUROC"] = edge_auroc(P, truth.adjacency)
    return res


def run_pca(data, truth, train, test, seed: int) -> dict:
    """The PCA baseline on one data set."""
    start = time.perf_counter()
    X = flatten_measurements(data)
    latents = PCA(n_components=truth.latents.shape[1], random_state=seed).fit(X[train]).transform(X)
    out = score(latents, truth, train, test, seed=seed)
    return {"method": "PCA (ours)", "seed": seed, **out, "wall_s": time.perf_counter() - start}


def run_personax(data, truth, train, test, seed: int, args) -> dict:
    """Train the default PersonaX model on the training rows and score it."""
    from pyro_personax import PersonaX

    start = time.perf_counter()
    train_data = data.subset(train)
    model = PersonaX(train_data, latent_dims=LATENT_DIMS, shared_dim=0)
    model.fit(
        train_data,
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        num_chains=args.num_chains,
        seed=seed,
        progress=False,
        device=args.device,
    )
    latents = np.asarray(model.get_latent_representation(data), dtype=float)
    probs = model.edge_probabilities()
    probs = probs.to_numpy(dtype=float) if hasattr(probs, "to_numpy") else np.asarray(probs, dtype=float)
    out = score(latents, truth, train, test, edge_probs=probs, seed=seed)
    return {"method": "PersonaX (ours)", "seed": seed, **out, "wall_s": time.perf_counter() - start}


def run_seed(seed: int, args, with_model: bool = True) -> list[dict]:
    """All methods on the data set of one seed."""
    data, truth = variant_mnist(args.num_entities, seed=seed)
    train, test = split_indices(data.num_entities, args.validation_fraction, seed)
    rows = [run_pca(data, truth, train, test, seed)]
    if with_model:
        rows.append(run_personax(data, truth, train, test, seed, args))
    return rows


def summarise(rows: list[dict]) -> pd.DataFrame:
    """Mean and standard deviation over seeds per method, with the paper's rows."""
    df = pd.DataFrame(rows)
    metrics = ["R2", "MCC", "SHD", "AUROC", "wall_s"]
    agg = df.groupby("method", sort=False)[metrics].agg(["mean", "std"])
    table = pd.DataFrame(index=agg.index)
    for col in metrics:
        mean, sd = agg[(col, "mean")], agg[(col, "std")].fillna(0.0)
        fmt = "{:.1f} ± {:.1f}" if col in ("SHD", "wall_s") else "{:.3f} ± {:.3f}"
        table[col] = [("-" if np.isnan(a) else fmt.format(a, b)) for a, b in zip(mean, sd)]
    table["seeds"] = [str(n) for n in df.groupby("method", sort=False).size()]
    paper = pd.DataFrame(PAPER_ROWS).set_index("method").map(lambda v: f"{v:.2f}")
    return pd.concat([table.astype(object), paper.astype(object)]).astype(object).where(
        lambda t: t.notna(), "-"
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num-entities", type=int, default=10_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-chains", type=int, default=1)
    p.add_argument("--device", default="auto", help='"auto" (CUDA if present), "cpu" or "cuda"')
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--pca-only", action="store_true", help="skip the model (baseline only)")
    p.add_argument("--csv", default=None, help="also write the per-seed rows to this CSV (must not exist)")
    return p.parse_args(argv)


def main(argv=None) -> pd.DataFrame:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    rows = []
    for seed in args.seeds:
        rows += run_seed(seed, args, with_model=not args.pca_only)
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False, mode="x")
    table = summarise(rows)
    print(
        f"variant MNIST recovery: N={args.num_entities} (train/held-out "
        f"{1 - args.validation_fraction:.0%}/{args.validation_fraction:.0%}), seeds {args.seeds}, "
        f"epochs {args.epochs}, torch threads {torch.get_num_threads()}"
    )
    print(table.to_string())
    return table


if __name__ == "__main__":
    main()
