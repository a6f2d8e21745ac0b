"""Per-chain training checkpoints: module and optimizer state, schedules, RNG, traces.

A checkpoint is one file ``<checkpoint_dir>/chain_<c>.pt`` written atomically (to a
temporary file, then renamed), loadable with ``torch.load(..., weights_only=True)``:
it holds only tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["checkpoint_path", "save_checkpoint", "load_checkpoint", "get_rng_state", "set_rng_state"]


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
