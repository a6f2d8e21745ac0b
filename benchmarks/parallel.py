"""Wall time of data-parallel training (torchrun, gloo) and of chains in worker processes.

Data: ``--num-entities`` entities with two modalities (``face``: 2 measurements x 16
dims, ``text``: 3 x 12), driven by 2 latents, generated here from a fixed seed. Model:
the library's defaults with 1 shared and 1 + 1 modality latents. Every process runs
with one torch thread (``OMP_NUM_THREADS=1``, ``num_threads=1``).

``ddp``: one fit of one chain (``--epochs``, batch 256, no graph stage) started by
``torchrun`` with each process count of ``--nproc``, all with ``data_shards`` = the
largest count (the same fit), plus the one-process trainer without shards. Printed: the
training time of ``fit`` (``FitResult.wall_time``, process start excluded), the
whole command's time, entities per second, and the largest difference of the edge
probabilities from the first sharded run.

``chains``: ``--num-chains`` chains fitted with ``num_workers`` = each of ``--workers``
(graph stage after SVI included with ``--graph-stage``). Printed: the fit's time and
whether the chains' edge probabilities equal those of the first setting bitwise.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/parallel.py ddp --num-entities 4000 --epochs 3 --nproc 1 2
    OMP_NUM_THREADS=1 python benchmarks/parallel.py chains --num-entities 1000 --epochs 3 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_data(n: int):
    """Two modalities driven by two latents (seed 0)."""
    from pyro_personax.data.multimodal import MultiModalData

    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 2))
    z[:, 1] += 0.8 * z[:, 0]
    face = np.stack([np.tanh(z @ rng.normal(size=(2, 16))) + 0.1 * rng.normal(size=(n, 16)) for _ in range(2)], 1)
    text = np.stack([z[:, 1:] @ rng.normal(size=(1, 12)) + 0.1 * rng.normal(size=(n, 12)) for _ in range(3)], 1)
    return MultiModalData({"face": face.astype(np.float32), "text": text.astype(np.float32)})


def _persona(data):
    from pyro_personax import PersonaX

    return PersonaX(data, latent_dims={"face": 1, "text": 1}, shared_dim=1)


def ddp_worker(n: int, epochs: int, shards: str, out: str) -> None:
    """One process of a ``torchrun`` fit; process 0 writes its times and edge probabilities to ``out``."""
    import logging

    logging.disable(logging.WARNING)
    from pyro_personax.inference.distributed import init_distributed, shutdown_distributed

    group = init_distributed("cpu")
    data = make_data(n)
    px = _persona(data)
    start = time.perf_counter()
    px.fit(data, num_chains=1, num_epochs=epochs, seed=0, progress=False, device="cpu", refine_graph=False,
           num_threads=1, data_shards=None if shards == "none" else int(shards))  # fmt: skip
    total = time.perf_counter() - start
    shutdown_distributed()
    if group.is_main:
        record = {"train_s": px.fit_result.chains[0].wall_time, "fit_s": total,
                  "probs": px.chains.edge_probabilities().tolist(), "world_size": group.world_size}  # fmt: skip
        Path(out).write_text(json.dumps(record))


def run_ddp(n: int, epochs: int, nprocs: list[int]) -> None:
    shards = max(nprocs)
    runs = [(1, "none")] + [(p, str(shards)) for p in nprocs]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for p, s in runs:
            out = os.path.join(tmp, f"{p}_{s}.json")
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(p),
                   __file__, "_ddp_worker", str(n), str(epochs), s, out]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            command_s = time.perf_counter() - start
            rec = json.loads(Path(out).read_text())
            probs = np.asarray(rec["probs"])
            if s != "none" and first is None:
                first = probs
            diff = "-" if s == "none" or first is None else f"{np.abs(probs - first).max():.1e}"
            rows.append((p, s, rec["train_s"], command_s, n * epochs / rec["train_s"], diff))
    print(f"N = {n}, {epochs} epochs, batch 256, 1 thread per process")
    print("| processes | data_shards | training (s) | whole command (s) | entities/s | max dP vs first sharded |")
    print("|---|---|---|---|---|---|")
    for p, s, train, command, rate, diff in rows:
        print(f"| {p} | {s} | {train:.1f} | {command:.1f} | {rate:,.0f} | {diff} |")


def run_chains(n: int, epochs: int, num_chains: int, workers: list[int], stage: bool) -> None:
    import logging

    import torch

    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    data = make_data(n)
    first = None
    on = "on" if stage else "off"
    print(f"N = {n}, {epochs} epochs, {num_chains} chains, graph stage {on}, 1 thread per process")
    print("| num_workers | fit (s) | chains' edge probabilities equal to the first setting's |")
    print("|---|---|---|")
    for w in workers:
        px = _persona(data)
        start = time.perf_counter()
        px.fit(data, num_chains=num_chains, num_epochs=epochs, seed=0, progress=False, device="cpu",
               refine_graph=stage, num_threads=1, num_workers=w)  # fmt: skip
        seconds = time.perf_counter() - start
        probs = px.chains.chain_edge_probabilities()
        same = "-" if first is None else str(bool(np.array_equal(probs, first)))
        first = probs if first is None else first
        print(f"| {w} | {seconds:.1f} | {same} |")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_ddp_worker":
        ddp_worker(int(argv[1]), int(argv[2]), argv[3], argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["ddp", "chains"])
    parser.add_argument("--num-entities", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--num-chains", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--graph-stage", action="store_true")
    args = parser.parse_args(argv)
    if args.mode == "ddp":
        run_ddp(args.num_entities, args.epochs, args.nproc)
    else:
        run_chains(args.num_entities, args.epochs, args.num_chains, args.workers, args.graph_stage)


if __name__ == "__main__":
    main()
