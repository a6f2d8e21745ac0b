"""Data-parallel training on :mod:`torch.distributed` with ``DistributedDataParallel``.

Start one process per device with ``torchrun``; each process runs the same program (the
``personax fit`` command, or a script that calls :func:`init_distributed` and then
``PersonaX.fit``)::

    torchrun --nproc_per_node 2 -m pyro_personax fit run.toml --out run/

The process group is described by the variables ``torchrun`` sets (``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). The backend follows the
device: ``nccl`` on CUDA (process ``r`` of a machine takes ``cuda:<LOCAL_RANK>``),
``gloo`` on CPU.

How a step is split
-------------------
Every process holds the training rows and draws the same minibatch schedule (the
permutation comes from the chain's seed). Each minibatch of ``B`` entities is cut into
``S`` contiguous shards (``data_shards``; default one per process) and process ``r`` of
``W`` computes the shards ``r S/W, ..., (r + 1) S/W - 1``. A shard's loss is the model's
negative ELBO of its rows, with the ``"entity"`` plate subsampled to them (Pyro scales
their likelihood by ``N / |shard|``), weighted by ``|shard| / B``. The weighted losses of
the shards sum to the minibatch's loss with its likelihood scaled by ``N / B``: the
graph, the factors and the other global terms once, every entity's term ``N / B``
times. ``DistributedDataParallel`` averages the gradients over processes; the weights
carry a factor ``W`` so that the average is that sum.

Before shard ``j`` of step ``t`` the torch random state is seeded from
``(seed + chain, t, j)``: each shard draws the same graphs and noise whichever process
computes it. The draws outside the shards (the augmented Lagrangian's ``E_q[h(G)]``, the
records at the end of an epoch) are seeded from the step and the epoch, and the
validation ELBO is split into shards in the same way and summed over processes, so every
process takes the same decisions (schedules, early stopping, the kept state). A fit's
result therefore depends on ``S`` and not on the number of processes ``W`` (any ``W``
that divides ``S``, one included: ``PersonaX.fit(..., data_shards=S)`` in one process
reproduces a run on ``S`` devices), up to the order of floating-point sums. It differs
from the one-process trainer's (``data_shards=None``), which draws from one random stream,
by Monte Carlo noise only.

Parameters stay identical on every process: they are created by a first trace before
``DistributedDataParallel`` wraps the loss (Pyro creates parameters lazily), its
constructor broadcasts process 0's values, and every process applies the same averaged
gradients with the same optimizer. Only process 0 writes checkpoints (``checkpoint_dir``
must be a folder every process sees, for a resume) and shows progress. The graph stage
after SVI runs on every process and process 0's result is broadcast. If a process fails,
``torchrun`` stops the others.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from pyro_personax.checks import check_int
from pyro_personax.inference.batches import index_batch
from pyro_personax.inference.devices import resolve_device
from pyro_personax.inference.trainer import _ChainTrainer
from pyro_personax.inference.trainer_config import TrainerConfig

__all__ = [
    "ProcessGroup",
    "ShardedChainTrainer",
    "init_distributed",
    "shutdown_distributed",
    "process_group",
    "is_main_process",
    "launched_by_torchrun",
    "process_device",
    "check_data_shards",
]

#: The variables ``torchrun`` sets for every process it starts.
TORCHRUN_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK")

# what a seed is derived for: a training shard, a validation shard, E_q[h(G)], the end of an epoch
_TRAIN, _VALIDATION, _ACYCLICITY, _EPOCH = range(4)


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands in data-parallel training.

    Attributes
    ----------
    rank
        This process's index in ``[0, world_size)``; process 0 writes the outputs.
    world_size
        Number of processes (1 without a process group).
    local_rank
        This process's index on its machine (its CUDA device).
    backend
        ``"gloo"``, ``"nccl"``, or ``None`` without a process group.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Whether this is process 0."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """Whether the variables of a ``torchrun`` process (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) are set."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}: expected an int (set by torchrun); found {value!r}") from None
    if number < 0:
        raise ValueError(f"{name}: expected an int >= 0 (set by torchrun); found {number}")
    return number


def process_group() -> ProcessGroup:
    """The current process group (world size 1 when none is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return ProcessGroup()
    rank = dist.get_rank()
    local = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    return ProcessGroup(rank, dist.get_world_size(), local, str(dist.get_backend()))


def is_main_process() -> bool:
    """``True`` in process 0 of a process group, and without one."""
    return process_group().is_main


def init_distributed(device: str | torch.device = "auto") -> ProcessGroup:
    """Join the process group that ``torchrun`` describes; nothing to do in a single process.

    Call it once at the start of a program run by ``torchrun`` (``personax fit`` does),
    before ``PersonaX.fit``; every fit then trains on all processes
    (:class:`ShardedChainTrainer`). Calling it again returns the current group.

    Parameters
    ----------
    device
        The fit's device request (``"auto"``, ``"cpu"``, ``"cuda"``): CUDA gives the
        ``nccl`` backend and makes ``cuda:<LOCAL_RANK>`` this process's current device;
        CPU gives ``gloo``.

    Returns
    -------
    ProcessGroup
        World size 1 when the program was not started by ``torchrun`` or with one process.

    Raises
    ------
    RuntimeError
        When ``torch.distributed`` or the backend is not available in this torch build,
        or CUDA has fewer devices than ``LOCAL_RANK + 1``.
    """
    if dist.is_available() and dist.is_initialized():
        return process_group()
    if not launched_by_torchrun() or _env_int("WORLD_SIZE") <= 1:
        return ProcessGroup()
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build; run with one process")
    dev = resolve_device(device)
    local = _env_int("LOCAL_RANK")
    if dev.type == "cuda":
        if not dist.is_nccl_available():
            raise RuntimeError("device: CUDA data-parallel training needs the nccl backend, which this torch lacks")
        count = torch.cuda.device_count()
        if dev.index is None and local >= count:
            raise RuntimeError(
                f"LOCAL_RANK: process {local} of this machine needs CUDA device {local}; found {count} device(s). "
                "Start at most one process per GPU (torchrun --nproc_per_node)"
            )
        torch.cuda.set_device(dev if dev.index is not None else torch.device("cuda", local))
        backend = "nccl"
    else:
        if not dist.is_gloo_available():
            raise RuntimeError("device: CPU data-parallel training needs the gloo backend, which this torch lacks")
        backend = "gloo"
    dist.init_process_group(backend)
    return process_group()


def shutdown_distributed() -> None:
    """Leave the process group, if one is initialised (call it after the last collective, the fit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def process_device(device: str | torch.device, group: ProcessGroup) -> torch.device:
    """This process's training device: ``cuda`` without an index becomes ``cuda:<local_rank>`` in a group."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and group.world_size > 1:
        return torch.device("cuda", group.local_rank)
    return dev


def check_data_shards(data_shards, world_size: int) -> int:
    """``data_shards`` checked against the number of processes (``None``: one shard per process).

    Examples
    --------
    >>> check_data_shards(None, 2), check_data_shards(4, 2)
    (2, 4)
    >>> check_data_shards(3, 2)
    Traceback (most recent call last):
    ...
    ValueError: data_shards: expected a multiple of the number of processes (2); found 3
    """
    data_shards = check_int("data_shards", data_shards, optional=True)
    if data_shards is None:
        return world_size
    if data_shards % world_size:
        raise ValueError(
            f"data_shards: expected a multiple of the number of processes ({world_size}); found {data_shards}"
        )
    return data_shards


def _derived_seed(*key: int) -> int:
    """A 63-bit seed from a tuple of non-negative ints (the same on every process)."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _no_buffer_sync() -> dict:
    """DDP's keyword that turns off the buffers' broadcast before every forward (renamed in torch 2.13)."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    names = inspect.signature(DistributedDataParallel).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in names else {"broadcast_buffers": False}


class ShardedChainTrainer(_ChainTrainer):
    """One chain trained on the shards of every minibatch, over the processes of a group.

    See the module docstring for how a step is split and why the result does not depend
    on the number of processes. Without a process group (one process) it computes every
    shard itself.

    Parameters
    ----------
    build, train, validation, config, seed, chain, device, settings
        As for :class:`~pyro_personax.inference.trainer._ChainTrainer`.
    num_shards
        ``S``: shards per minibatch, a multiple of the group's size, at most
        ``config.batch_size`` and the number of training entities.
    group
        This process's :class:`ProcessGroup`.
    """

    def __init__(
        self,
        build,
        train,
        validation,
        config: TrainerConfig,
        seed: int,
        chain: int,
        device,
        settings=None,
        *,
        num_shards: int,
        group: ProcessGroup,
    ):
        self.group = group
        self.num_shards = check_data_shards(num_shards, group.world_size)
        if self.num_shards > config.batch_size:
            raise ValueError(
                f"data_shards: expected at most batch_size ({config.batch_size}) shards per minibatch; "
                f"found {self.num_shards}"
            )
        super().__init__(build, train, validation, config, seed, chain, device, settings=settings)
        if self.num_shards > self.num_train:
            raise ValueError(
                f"data_shards: expected at most the number of training entities ({self.num_train}); "
                f"found {self.num_shards}"
            )
        per = self.num_shards // group.world_size
        self.my_shards = range(group.rank * per, (group.rank + 1) * per)
        self.writes_checkpoints = self.shows_progress = group.is_main
        self.ddp = None
        if group.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # the modules' buffers are prior knowledge and masks, the same on every process: synced
            # once when DDP starts, not before every forward
            self.ddp = DistributedDataParallel(self.loss_fn, device_ids=ids, **_no_buffer_sync())

    # ------------------------------------------------------------------ helpers
    def _seed(self, *key: int) -> None:
        torch.manual_seed(_derived_seed(self.seed, *key))

    def _sum(self, value: float) -> float:
        """``value`` summed over the processes; process 0's sum on every process."""
        if self.group.world_size == 1:
            return value
        where = self.device if self.group.backend == "nccl" else torch.device("cpu")
        t = torch.tensor([value], dtype=torch.float64, device=where)
        dist.all_reduce(t)
        dist.broadcast(t, 0)
        return float(t.item())

    def _shard_batches(self, perm: torch.Tensor) -> list[torch.Tensor]:
        """``perm`` in ``batch_size`` pieces; a last piece with fewer than ``S`` rows joins the one before."""
        batches = list(perm.split(self.config.batch_size))
        if len(batches) > 1 and len(batches[-1]) < self.num_shards:
            batches[-2:] = [torch.cat(batches[-2:])]
        return batches

    # ------------------------------------------------------------------ training
    def _minibatches(self, perm: torch.Tensor) -> list[torch.Tensor]:
        return self._shard_batches(perm)

    def _gradient(self, idx: torch.Tensor, step: int) -> float:
        """This process's shards of minibatch ``idx``: their gradients (summed over processes) and weighted loss."""
        shards = idx.tensor_split(self.num_shards)
        total, last = 0.0, self.my_shards[-1]
        for j in self.my_shards:
            rows = shards[j]
            weight = len(rows) / len(idx)
            self._seed(_TRAIN, self.step, j)
            batch, kw = index_batch(self.train, rows, self.device), self._kwargs(self.epoch, rows)
            sync = self.ddp is None or j == last
            with contextlib.nullcontext() if sync else self.ddp.no_sync(), warnings.catch_warnings():
                # a parameter with a size-1 dimension of any stride: harmless, said once per process
                warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
                loss = self._loss(batch, kw, step, self.loss_fn if self.ddp is None else self.ddp)
                (loss * (weight * self.group.world_size / self.num_train)).backward()
            total += weight * float(loss.detach())
        return total

    @torch.no_grad()
    def _validate(self) -> float:
        if self.validation is None:
            return float("nan")
        total = 0.0
        for b, idx in enumerate(self._shard_batches(torch.arange(self.num_val))):
            shards = idx.tensor_split(self.num_shards)
            for j in self.my_shards:
                rows = shards[j]
                if len(rows) == 0:
                    continue
                self._seed(_VALIDATION, self.epoch, b, j)
                batch = index_batch(self.validation, rows, self.device)
                kw = self._kwargs(self.epoch, rows, num_entities=self.num_val)
                total += float(self.loss_fn(batch, **kw)) * len(rows) / self.num_val
        return -self._sum(total) / self.num_val

    @torch.no_grad()
    def expected_acyclicity(self) -> float:
        self._seed(_ACYCLICITY, self.step)
        return super().expected_acyclicity()

    @torch.no_grad()
    def _end_epoch(self, train_elbo: float) -> bool:
        train_elbo = self._sum(train_elbo)  # every process's share of the epoch's loss
        self._seed(_EPOCH, self.epoch)
        return super()._end_epoch(train_elbo)

    def finish(self) -> None:
        """Broadcast process 0's parameters (after the graph stage) so that every process returns the same modules."""
        if self.group.world_size == 1:
            return
        with torch.no_grad():
            for module in (self.model, self.guide):
                for t in (*module.parameters(), *module.buffers()):
                    if t.is_floating_point():
                        dist.broadcast(t.data, 0)
