"""Device resolution for training: ``"auto"`` picks CUDA when present, else CPU."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


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
