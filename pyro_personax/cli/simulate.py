"""``personax simulate``: write a synthetic data set with its ground truth and a run configuration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KINDS = ("celeb", "athle", "variant-mnist")


def register(subparsers) -> None:
    """Add the ``simulate`` subcommand."""
    p = subparsers.add_parser(
        "simulate",
        help="write a synthetic data set with known latent DAG",
        description=(
            "Generate a synthetic data set with a known latent causal graph and write it to OUT: "
            "OUT/data (the released PersonaX layout for celeb/athle, .npy arrays for variant-mnist), "
            "OUT/truth (latents.npy, adjacency.csv, layout.json) and OUT/run.toml, a run "
            "configuration for `personax fit`."
        ),
    )
    p.add_argument("--kind", choices=KINDS, default="celeb", help="which generator (default: celeb)")
    p.add_argument("-n", "--num-entities", type=int, default=2000, help="number of entities (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", type=Path, default=Path("personax-simulated"), help="output folder")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="table format for celeb/athle")
    p.add_argument("--full-dims", action="store_true", help="celeb/athle: released embedding sizes (1024 / 3584)")
    p.add_argument("--overwrite", action="store_true", help="replace files that already exist in OUT")
    p.set_defaults(func=run)


def write_truth(truth, folder: Path, entity_ids=None) -> None:
    """Write a :class:`~pyro_personax.synthetic.truth.GroundTruth` as ``.npy``, CSV and JSON.

    ``entity_ids`` (one per row of the latents), when the data name their entities, go to
    ``entity_ids.csv`` so that ``personax report --truth`` can find each entity's latents.
    """
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    if entity_ids is not None:
        pd.DataFrame({"entity_id": [str(e) for e in entity_ids]}).to_csv(folder / "entity_ids.csv", index=False)
    np.save(folder / "latents.npy", truth.latents)
    names = list(truth.names)
    pd.DataFrame(truth.adjacency.astype(int), index=names, columns=names).to_csv(folder / "adjacency.csv")
    (folder / "layout.json").write_text(json.dumps(truth.layout.to_dict(), indent=2))


def _run_toml(data_table: str, layout, fit_epochs: int) -> str:
    dims = ", ".join(f"{m} = {d}" for m, d in layout.modality_dims.items())
    return (
        "# Run configuration for `personax fit` (written by `personax simulate`).\n"
        f"[data]\n{data_table}\n"
        f"[model]\nshared_dim = {layout.shared_dim}\nlatent_dims = {{ {dims} }}\n\n"
        f"[fit]\nnum_epochs = {fit_epochs}\nseed = 0\n"
    )


def run(args: argparse.Namespace) -> int:
    """Generate and write; returns the exit status."""
    if args.num_entities < 10:
        raise ValueError(f"--num-entities: expected at least 10; found {args.num_entities}")
    out: Path = args.out
    targets = [out / "data", out / "truth", out / "run.toml"]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not args.overwrite:
        raise FileExistsError(f"{existing} already exist; pass --overwrite to replace them")
    if args.kind == "variant-mnist":
        import numpy as np

        from pyro_personax.synthetic.variant_mnist import variant_mnist

        data, truth = variant_mnist(args.num_entities, seed=args.seed)
        (out / "data").mkdir(parents=True, exist_ok=True)
        for m in data.modalities:
            np.save(out / "data" / f"{m}.npy", data.values[m])
        table = "[data.measurements]\n" + "\n".join(f'{m} = "data/{m}.npy"' for m in data.modalities) + "\n"
        table += "[data.likelihoods]\n" + "\n".join(f'{m} = "{data.likelihood[m]}"' for m in data.modalities) + "\n"
    else:
        from pyro_personax.data import write_persona
        from pyro_personax.synthetic.persona import persona

        dataset, truth = persona(args.num_entities, seed=args.seed, kind=args.kind, full_dims=args.full_dims)
        write_persona(dataset, out / "data", format=args.format, overwrite=args.overwrite)
        table = f'dataset = "{args.kind}"\npath = "data"\n'
    write_truth(truth, out / "truth")
    (out / "run.toml").write_text(_run_toml(table, truth.layout, fit_epochs=50))
    print(f"wrote {args.kind} data ({args.num_entities} entities, seed {args.seed}) to {out}")
    print(f"fit it with: personax fit {out / 'run.toml'} --out {out / 'run'}")
    return 0
