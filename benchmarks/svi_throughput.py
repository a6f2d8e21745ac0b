"""SVI training throughput and peak memory of PersonaX for growing numbers of entities.

Setting (as in the design targets): 2 modalities x 3 measurements of 64 dimensions
(6 measurements; ``--shapes full``: one 1024-d face and three 3584-d texts, the released
embeddings' sizes; ``--missing`` of them masked at random), 12 latents (2 shared + 5 + 5),
batch size 256, one epoch, a validation split of ``--validation-fraction``, no graph
stage, default model options otherwise, CPU with the thread count given by
``--threads`` (default 1), for each graph posterior of ``--graph-posteriors`` (the
order posterior draws 8 graph particles per step and fits the mechanisms on random
parent sets; the pairwise one draws one graph). Each size runs in a fresh subprocess so that its peak
resident memory (``ru_maxrss``) is its own.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/svi_throughput.py            # N = 1e4, 1e5, 1e6
    OMP_NUM_THREADS=1 python benchmarks/svi_throughput.py --shapes full --sizes 9444 100000
    python benchmarks/svi_throughput.py --sizes 10000 --threads 2 --graph-posteriors order pairwise

Prints one line per size and graph posterior: entities per second, epoch time, time
per optimisation step, data size, peak memory,
peak memory above the pre-data baseline (it includes the moment the container copies
the user's arrays, so at least twice the data), and "fit extra": the peak during
``fit`` above the resident memory just before it (Linux ``VmHWM`` after a reset), i.e.
what training needs on top of the data, and "fit peak/data": the peak during ``fit``
above the resident memory before the data existed, divided by the data's size (values
and masks).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

BATCH = 256
#: Measurements x dimension per modality: the design-target setting, and the released
#: embeddings' sizes (one 1024-d face embedding; three LLMs' 3584-d text embeddings).
SHAPES = {"small": {"face": (3, 64), "text": (3, 64)}, "full": {"face": (1, 1024), "text": (3, 3584)}}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_mib(key: str) -> float:
    """A memory figure of ``/proc/self/status`` (``VmHWM``: peak since the last reset,
    ``VmRSS``: now), in MiB; NaN off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def run_one(
    n: int, threads: int, epochs: int, graph_posterior: str, missing: float, validation: float, shapes: str
) -> dict:
    """Train ``epochs`` epochs on ``n`` synthetic entities in this process; return the figures."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from pyro_personax.data import MultiModalData
    from pyro_personax.facade import PersonaX

    baseline = _peak_mib()
    before_data = _status_mib("VmRSS")  # everything imported, no data yet
    rng = np.random.default_rng(0)
    arrays = {m: rng.standard_normal((n, k, d), dtype=np.float32) for m, (k, d) in SHAPES[shapes].items()}
    masks = {m: rng.random(arrays[m].shape[:2]) >= missing for m in arrays}
    for m in masks:  # every entity keeps at least one measurement of each modality
        masks[m][:, 0] |= ~masks[m].any(axis=1)
    data = MultiModalData(arrays, masks=masks)
    del arrays, masks  # the container holds its own copy; the user's arrays are not counted twice
    data_mib = sum(v.nbytes + data.masks[m].nbytes for m, v in data.values.items()) / 2**20
    px = PersonaX(data, latent_dims={"face": 5, "text": 5}, shared_dim=2, graph_posterior=graph_posterior)
    before_fit = _status_mib("VmRSS")  # the data is held once here
    fit_peak_ok = _reset_peak()
    start = time.perf_counter()
    px.fit(
        data, num_chains=1, num_epochs=epochs, batch_size=BATCH, validation_fraction=validation or None,
        progress=False, device="cpu", seed=0, refine_graph=False,
    )
    seconds = (time.perf_counter() - start) / epochs
    fit_peak = _status_mib("VmHWM") if fit_peak_ok else float("nan")
    return {
        "n": n,
        "threads": threads,
        "graph_posterior": graph_posterior,
        "epoch_s": seconds,
        "step_ms": 1000 * seconds / -(-n // BATCH),
        "entities_per_s": n / seconds,
        "data_mib": data_mib,
        "baseline_mib": baseline,
        "peak_mib": _peak_mib(),
        "fit_extra_mib": fit_peak - before_fit,
        "fit_peak_over_data": (fit_peak - before_data) / data_mib,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--graph-posteriors", nargs="+", default=["order"], choices=["order", "pairwise"])
    described = "; ".join(f"{k}: " + ", ".join(f"{m} {a}x{b}" for m, (a, b) in v.items()) for k, v in SHAPES.items())
    parser.add_argument("--shapes", choices=sorted(SHAPES), default="small",
                        help=f"measurements x dimension per modality ({described})")
    parser.add_argument("--missing", type=float, default=0.1, help="fraction of measurements masked")
    parser.add_argument("--validation-fraction", type=float, default=0.1, help="held-out fraction (0: none)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--one-posterior", default="order", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        sys.stdout.write(json.dumps(run_one(args.one, args.threads, args.epochs, args.one_posterior, args.missing,
                                            args.validation_fraction, args.shapes)) + "\n")
        return 0
    shapes = ", ".join(f"{m} {k} x {d}-d" for m, (k, d) in SHAPES[args.shapes].items())
    sys.stdout.write(f"PersonaX SVI throughput: {shapes} measurements ({args.missing:.0%} masked), 12 latents, "
                     f"batch {BATCH}, validation fraction {args.validation_fraction}, no graph stage, "
                     f"{args.threads} torch thread(s), CPU\n")
    header = (f"{'N':>9} {'posterior':>9} {'epoch s':>9} {'step ms':>8} {'entities/s':>11} {'data MiB':>9} "
              f"{'peak MiB':>9} {'peak-base MiB':>14} {'fit extra MiB':>14} {'fit peak/data':>14}")
    sys.stdout.write(header + "\n")
    for n in args.sizes:
        for posterior in args.graph_posteriors:
            cmd = [sys.executable, __file__, "--one", str(n), "--threads", str(args.threads), "--epochs",
                   str(args.epochs), "--one-posterior", posterior, "--missing", str(args.missing),
                   "--validation-fraction", str(args.validation_fraction), "--shapes", args.shapes]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            sys.stdout.write(
                f"{r['n']:>9} {posterior:>9} {r['epoch_s']:>9.1f} {r['step_ms']:>8.1f} {r['entities_per_s']:>11.0f} "
                f"{r['data_mib']:>9.0f} {r['peak_mib']:>9.0f} {r['peak_mib'] - r['baseline_mib']:>14.0f} "
                f"{r['fit_extra_mib']:>14.0f} {r['fit_peak_over_data']:>14.2f}\n"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
