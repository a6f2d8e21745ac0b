"""Independent restarts ("chains") trained side by side in worker processes.

:func:`train_chains_in_workers` hands chain ``c`` to a pool of ``num_workers`` processes
(:mod:`torch.multiprocessing`, started with ``spawn``, which CUDA needs and which starts
every worker from a clean interpreter). A worker sets the caller's torch thread count
(:func:`~pyro_personax.inference.devices.torch_threads`), Pyro's validation flag and the
default dtype, runs :func:`~pyro_personax.inference.trainer.train_chain` exactly as the
sequential loop does, and sends back the modules' state and the chain's traces; the
caller loads them into modules it builds. A chain's computation depends only on its
seed ``seed + c``, the data, the settings and the thread count, so on the same device
the result is bitwise the one of the sequential loop. The warnings a worker logs are
logged again in the caller.

The training tensors reach the workers through shared memory (torch's reductions for
:mod:`multiprocessing`), not as copies. ``build`` is pickled: it must be importable in a
fresh interpreter (a function or class of a module, not of a notebook's ``__main__``).
With ``device="cuda"`` and several GPUs, chain ``c`` trains on ``cuda:(c % count)``.
Threads add up: ``num_workers`` processes with ``num_threads`` each.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Mapping

import pyro
import torch
from pyro.infer.util import is_validation_enabled

from pyro_personax.checks import check_int
from pyro_personax.inference.batches import Batch
from pyro_personax.inference.devices import local_params, torch_threads
from pyro_personax.inference.result import ChainResult
from pyro_personax.inference.trainer import _ChainTrainer, train_chain
from pyro_personax.inference.trainer_config import TrainerConfig

__all__ = ["train_chains_in_workers", "check_num_workers"]

logger = logging.getLogger(__name__)


def check_num_workers(num_workers) -> int:
    """``num_workers`` as an int ``>= 1``, or a ``ValueError`` naming it.

    Examples
    --------
    >>> check_num_workers(2)
    2
    >>> check_num_workers(0)
    Traceback (most recent call last):
    ...
    ValueError: num_workers: expected an int >= 1; found 0
    """
    return check_int("num_workers", num_workers)


class _WorkerTrainer(_ChainTrainer):
    """The one-process trainer whose progress bar keeps the line of its chain."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.progress_position = self.chain


class _Warnings(logging.Handler):
    """Collects the package's warnings in a worker."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _chain_device(device: torch.device, chain: int) -> torch.device:
    if device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        return torch.device("cuda", chain % torch.cuda.device_count())
    return device


def _train_in_worker(task: dict) -> dict:
    """Train one chain in a worker; return CPU states, traces and the warnings it logged."""
    pyro.enable_validation(task["validation_enabled"])
    torch.set_default_dtype(task["default_dtype"])
    handler = _Warnings()
    package = logging.getLogger("pyro_personax")
    package.addHandler(handler)
    try:
        with torch_threads(task["num_threads"]):
            device = _chain_device(task["device"], task["chain"])
            model, guide, result = train_chain(
                task["build"],
                task["train"],
                task["validation"],
                config=task["config"],
                seed=task["seed"],
                chain=task["chain"],
                device=device,
                checkpoint_dir=task["checkpoint_dir"],
                resume=task["resume"],
                settings=task["settings"],
                trainer_class=_WorkerTrainer,
            )
    finally:
        package.removeHandler(handler)
    cpu = torch.device("cpu")
    return {
        "model": {k: v.to(cpu) for k, v in model.state_dict().items()},
        "guide": {k: v.to(cpu) for k, v in guide.state_dict().items()},
        "result": result.to_dict(),
        "warnings": handler.records,
    }


def train_chains_in_workers(
    build: Callable[[], tuple[torch.nn.Module, torch.nn.Module]],
    train: Batch,
    validation: Batch | None = None,
    *,
    config: TrainerConfig,
    num_chains: int,
    num_workers: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    checkpoint_dir=None,
    resume: bool = False,
    settings: Mapping | None = None,
) -> list[tuple[torch.nn.Module, torch.nn.Module, ChainResult]]:
    """Train chains ``0, ..., num_chains - 1`` in ``min(num_workers, num_chains)`` processes.

    Parameters
    ----------
    build, train, validation, config, seed, checkpoint_dir, resume, settings
        As for :func:`~pyro_personax.inference.trainer.train_chain`; ``build`` must be
        picklable.
    num_chains
        ``C`` chains; chain ``c`` uses seed ``seed + c``.
    num_workers
        Worker processes (``>= 1``); each runs with the caller's torch thread count.
    device
        Device of the returned modules (and of training; ``cuda`` without an index
        spreads the chains over the GPUs).

    Returns
    -------
    list
        ``(model, guide, ChainResult)`` of every chain, in chain order, on ``device``.

    Raises
    ------
    ValueError
        When ``num_workers`` is not an int ``>= 1`` or ``build`` cannot be pickled.
    """
    check_num_workers(num_workers)
    try:
        pickle.dumps(build)
    except Exception as err:  # noqa: BLE001 (any pickling failure means the same thing here)
        raise ValueError(
            f"num_workers: chains in worker processes need a picklable build (a module-level function or "
            f"class, importable in a fresh interpreter); found {build!r}, which cannot be pickled ({err}). "
            "Use num_workers=1"
        ) from None
    device = torch.device(device)
    tasks = [
        {
            "build": build,
            "train": train,
            "validation": validation,
            "config": config,
            "seed": seed,
            "chain": c,
            "device": device,
            "checkpoint_dir": checkpoint_dir,
            "resume": resume,
            "settings": settings,
            "num_threads": torch.get_num_threads(),
            "validation_enabled": is_validation_enabled(),
            "default_dtype": torch.get_default_dtype(),
        }
        for c in range(num_chains)
    ]
    context = torch.multiprocessing.get_context("spawn")
    with context.Pool(min(num_workers, num_chains)) as pool:
        outputs = pool.map(_train_in_worker, tasks, chunksize=1)
    fitted = []
    with local_params():
        for c, out in enumerate(outputs):
            for name, level, message in out["warnings"]:
                logging.getLogger(name).log(level, "chain %d (worker): %s", c, message)
            model, guide = build()
            model.load_state_dict(out["model"])
            guide.load_state_dict(out["guide"])
            fitted.append((model.to(device), guide.to(device), ChainResult.from_dict(out["result"])))
    return fitted
