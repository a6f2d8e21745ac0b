"""Fit time against the torch thread count, on an idle machine and beside a busy process.

Each run is a fresh Python process with ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` unset
(as in a user's shell or notebook), fitting :class:`pyro_personax.PersonaX` to synthetic
persona data (``--num-entities`` people, ``--epochs`` epochs, one chain, the library's
defaults otherwise, graph stage included unless ``--no-graph-stage``) with ``fit(num_threads=...)`` set to each value
of ``--threads`` (``default`` = not given: the library's
:data:`~pyro_personax.inference.DEFAULT_NUM_THREADS`). The busy condition starts one
competing process (a pure-Python loop) for the run's duration. Printed: seconds per fit
(the median over ``--repeats``) and each setting's ratio to the best in its condition.

Usage::

    python benchmarks/threads.py --threads default 1 2 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

import pandas as pd

_FIT = """
import sys, time, logging
logging.disable(logging.WARNING)
import torch
from pyro_personax import PersonaX
from pyro_personax.synthetic import persona
n, epochs, threads, stage = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
dataset, truth = persona(n, seed=0)
data = dataset.to_multimodal()
layout = truth.layout
px = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim)
kw = {} if threads == "default" else {"num_threads": int(threads)}
start = time.perf_counter()
px.fit(data, num_chains=1, num_epochs=epochs, seed=0, progress=False, device="cpu", refine_graph=stage, **kw)
print(time.perf_counter() - start, torch.get_num_threads())
"""

_BUSY = "while True: pass"


def _environment() -> dict:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(name, None)
    return env


def one_fit(threads: str, num_entities: int, epochs: int, busy: bool, stage: bool = True) -> tuple[float, int]:
    """Seconds of one fit in a fresh process (with a competing busy process when ``busy``), and
    the process's torch thread count after the fit (``fit`` restores it)."""
    competitor = subprocess.Popen([sys.executable, "-c", _BUSY]) if busy else None
    try:
        out = subprocess.run(
            [sys.executable, "-c", _FIT, str(num_entities), str(epochs), threads, str(int(stage))],
            env=_environment(), capture_output=True, text=True, check=True,
        )
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    seconds, after = out.stdout.split()
    return float(seconds), int(after)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", nargs="+", default=["default", "1", "2"])
    p.add_argument("--num-entities", type=int, default=800)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--no-graph-stage", action="store_true", help="fit(refine_graph=False): SVI only")
    args = p.parse_args(argv)
    stage = "without" if args.no_graph_stage else "with"
    print(f"cores: {os.cpu_count()}; fit of {args.num_entities} entities, {args.epochs} epochs, 1 chain, {stage} the "
          f"graph stage; median of {args.repeats}", flush=True)
    rows = []
    for busy in (False, True):
        for threads in args.threads:
            runs = [one_fit(threads, args.num_entities, args.epochs, busy, not args.no_graph_stage)
                    for _ in range(args.repeats)]
            rows.append({"condition": "busy (1 competing process)" if busy else "idle", "num_threads": threads,
                         "seconds": statistics.median(t for t, _ in runs), "threads after fit": runs[0][1]})
            print(rows[-1], flush=True)

    table = pd.DataFrame(rows)
    table["vs best"] = table["seconds"] / table.groupby("condition")["seconds"].transform("min")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
