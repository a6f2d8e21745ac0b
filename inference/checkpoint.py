"""Per-chain training checkpoints: module and optimizer state, schedules, RNG, traces.

A checkpoint is one file ``<checkpoint_dir>/chain_<c>.pt`` written atomically (to a
temporary file, then renamed), loadable with ``torch.load(..., weights_only=True)``:
it holds only tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from pyro_personax.inference.batches import RowSubset, index_batch, num_rows

__all__ = [
    "checkpoint_path",
    "save_checkpoint",
    "load_checkpoint",
    "get_rng_state",
    "set_rng_state",
    "fingerprint",
    "check_fingerprint",
]


def checkpoint_path(checkpoint_dir: str | os.PathLike, chain: int) -> Path:
    """Path of the checkpoint file of ``chain`` inside ``checkpoint_dir``."""
    return Path(checkpoint_dir) / f"chain_{int(chain)}.pt"


def get_rng_state() -> dict:
    """The state of the torch (CPU and CUDA), numpy and Python global generators."""
    np_state = np.random.get_state()  # noqa: NPY002 (the global legacy state is what we save)
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [
            np_state[0],
            torch.as_tensor(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore generator states written by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    path
        Target file; its directory is created if needed.
    state
        Dict of tensors, numbers, strings, lists and dicts.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location=None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path
        Checkpoint file.
    map_location
        Passed to :func:`torch.load` (e.g. the training device).

    Raises
    ------
    ValueError
        When the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: expected a file at {str(path)!r}; found none")
    return torch.load(path, map_location=map_location, weights_only=True)


_DIGEST_ROWS = 65536  # rows per chunk of the data digest


def _digest_tensors(tensors) -> str:
    """SHA-256 of the shapes, dtypes and bytes of a sequence of tensors (``None`` entries kept apart)."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none;")
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _batch_digest(batch) -> str:
    """SHA-256 of what the model reads of ``batch`` (masked entries as 0), hashed in row chunks.

    The same bytes in the same order as :func:`_digest_tensors` over every modality's
    filled ``(values, mask, cell_mask)``, without a whole copy of the data at any time.
    """
    if batch is None:
        return "none"
    n, h = num_rows(batch), hashlib.sha256()
    rows = batch.rows if isinstance(batch, RowSubset) else None
    for name in sorted(batch):
        one = {name: batch[name]} if rows is None else RowSubset({name: batch[name]}, rows)
        for field, whole in enumerate(batch[name]):
            if whole is None:
                h.update(b"none;")
                continue
            h.update(f"{(n, *whole.shape[1:])}:{whole.dtype};".encode())
            for idx in torch.arange(n).split(_DIGEST_ROWS):
                # values through index_batch (masked entries as 0); masks are read as they are
                if field == 0:
                    part = index_batch(one, idx)[name].values
                else:
                    part = whole[(idx if rows is None else rows[idx]).to(whole.device)]
                part = part.detach().cpu().contiguous()
                h.update(part.view(torch.uint8).numpy().tobytes() if part.numel() else b"")
    h.update(b"none;")
    return h.hexdigest()


def _rows(batch) -> int:
    return 0 if batch is None else num_rows(batch)


def _module_digest(module: torch.nn.Module) -> str:
    """Class, parameter names / shapes / dtypes and buffer values: what shapes the module, not its training."""
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__};".encode())
    for name, p in module.named_parameters():
        h.update(f"{name}:{tuple(p.shape)}:{p.dtype};".encode())
    for name, b in module.named_buffers():
        h.update(f"{name};".encode())
        h.update(_digest_tensors([b]).encode())
    return h.hexdigest()


def fingerprint(train, validation, model, guide, settings: Mapping | None = None) -> dict[str, str]:
    """What a checkpoint must match to be resumed: the data, the modules' structure and the settings.

    Parameters
    ----------
    train, validation
        The training and validation tensors (modality -> ``ModalityTensors``; ``None``).
    model, guide
        The freshly built modules: their classes, parameter shapes and buffers (prior
        knowledge, masks) enter the fingerprint.
    settings
        Further JSON-serialisable settings that shape the model (its options, the
        layout), compared value by value.

    Returns
    -------
    dict
        Part name -> digest or JSON value.
    """
    out = {
        "training entities": str(_rows(train)),
        "validation entities": str(_rows(validation)),
        "training data": _batch_digest(train),
        "validation data": _batch_digest(validation),
        "model structure and prior knowledge": _module_digest(model),
        "guide structure": _module_digest(guide),
    }
    for key, value in (settings or {}).items():
        out[str(key)] = json.dumps(value, sort_keys=True, default=str)
    return out


def _is_digest(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def check_fingerprint(saved: Mapping | None, current: Mapping, where: str) -> None:
    """Raise ``ValueError`` naming every part of ``current`` that differs from ``saved``.

    A checkpoint without a fingerprint (written before fingerprints existed) is refused too.
    """
    if saved is None:
        raise ValueError(f"resume: {where} has no fingerprint of its data and settings; start a new fit")
    differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differ:
        details = []
        for k in differ:
            old, new = saved.get(k), current.get(k)
            shown = all(len(str(v)) < 200 and not _is_digest(v) for v in (old, new))
            details.append(f"{k} (checkpoint: {old}, now: {new})" if shown else k)
        raise ValueError(
            f"resume: {where} was written for another fit; what differs: {'; '.join(details)}. "
            "Resume only the same fit, or start a new one in an empty checkpoint_dir"
        )
