"""Device and thread settings for training: ``"auto"`` picks CUDA when present, else CPU.

Training runs with :data:`DEFAULT_NUM_THREADS` torch threads unless told otherwise
(:func:`torch_threads`). The model's operations are small (per-entity networks a few
dozen units wide, minibatches of a few hundred rows), so intra-op threads gain little,
and on a machine whose cores are busy their spin-waiting slows a fit down many times
(``benchmarks/threads.py`` measures both).
"""

from __future__ import annotations

import contextlib

import pyro
import torch

from pyro_personax.checks import check_int

__all__ = ["local_params", "resolve_device", "resolve_num_threads", "torch_threads", "DEFAULT_NUM_THREADS"]

#: Torch intra-op threads used by ``fit`` when ``num_threads`` is not given.
DEFAULT_NUM_THREADS = 1


def resolve_num_threads(num_threads: int | None) -> int:
    """``num_threads``, checked, or :data:`DEFAULT_NUM_THREADS` for ``None``."""
    num_threads = check_int("num_threads", num_threads, optional=True)
    return DEFAULT_NUM_THREADS if num_threads is None else num_threads


@contextlib.contextmanager
def torch_threads(num_threads: int | None):
    """Run a block with ``num_threads`` torch intra-op threads, then restore the previous count.

    Parameters
    ----------
    num_threads
        Threads (``>= 1``), or ``None`` for :data:`DEFAULT_NUM_THREADS`.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    wanted = resolve_num_threads(num_threads)
    before = torch.get_num_threads()
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device request into a :class:`torch.device`.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA if :func:`torch.cuda.is_available`, else CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:<index>"`` or a :class:`torch.device`.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown string, or a CUDA device when CUDA is not available.
    TypeError
        For anything that is neither a string nor a ``torch.device``.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if device != "cpu" and device != "cuda" and not device.startswith("cuda:"):
            raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'; found {device!r}")
        try:
            resolved = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"device: {device!r} is not a valid torch device ({err})") from err
    else:
        raise TypeError(f"device: expected a string or torch.device; found {type(device).__name__}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected a CPU or CUDA device; found {resolved.type!r}")
    return resolved


def local_params():
    """Context in which :class:`~pyro.nn.PyroModule` parameters stay local to their module.

    Build, train and call the modules of a chain inside it so that chains never share
    Pyro's global parameter store.
    """
    return pyro.settings.context(module_local_params=True)
