"""Post-fit phase against training time: what ``personax fit`` does after the progress bars.

Fits :class:`pyro_personax.PersonaX` with the library defaults (sizes from the truth's
layout) on ``--num-entities`` synthetic persona entities, then times the run folder's
writing (:func:`pyro_personax.cli.run_outputs.write_fit_outputs`: save, the posterior
draws of ``to_inference_data``, netCDF, tables and the edge report) and each of its
parts. Prints seconds and the post-fit share of the training time.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/post_fit.py --num-entities 800 --epochs 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pyro_personax import PersonaX
from pyro_personax.cli.run_outputs import write_fit_outputs
from pyro_personax.inference.diagnostics import save_inference_data
from pyro_personax.inference.report import edge_report
from pyro_personax.synthetic import persona


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-entities", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--num-chains", type=int, default=None, help="default: the library's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset, truth = persona(args.num_entities, seed=args.seed)
    data = dataset.to_multimodal()
    px = PersonaX(data, latent_dims=dict(truth.layout.modality_dims), shared_dim=truth.layout.shared_dim)
    chains = {} if args.num_chains is None else {"num_chains": args.num_chains}
    start = time.perf_counter()
    px.fit(data, num_epochs=args.epochs, seed=args.seed, progress=False, device="cpu", **chains)
    train = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_fit_outputs(px, data, Path(tmp) / "run", seed=args.seed)
        post = time.perf_counter() - start
        parts = {}
        start = time.perf_counter()
        px.save(Path(tmp) / "model", overwrite=True)
        parts["save"] = time.perf_counter() - start
        start = time.perf_counter()
        idata = px.to_inference_data(data, num_samples=200, seed=args.seed)
        parts["to_inference_data (200 draws per chain)"] = time.perf_counter() - start
        start = time.perf_counter()
        save_inference_data(idata, Path(tmp) / "posterior.nc", overwrite=True)
        parts["posterior.nc"] = time.perf_counter() - start
        start = time.perf_counter()
        edge_report(idata, Path(tmp) / "report", overwrite=True)
        parts["edge report"] = time.perf_counter() - start
    print(f"{args.num_entities} entities, {px.num_chains} chains x {args.epochs} epochs")
    print(f"training (fit, incl. graph stage and alignment): {train:8.1f} s")
    print(f"post-fit (write_fit_outputs):                    {post:8.1f} s  = {post / train:.1%} of training")
    for name, seconds in parts.items():
        print(f"  {name:<40} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
