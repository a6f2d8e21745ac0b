"""Rows of the training tensors: the minibatch indexing shared by training and the graph stage."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from pyro_personax.data.multimodal import ModalityTensors

__all__ = ["Batch", "index_batch"]

#: Modality name -> :class:`~pyro_personax.data.multimodal.ModalityTensors` with ``N`` rows.
Batch = Mapping[str, ModalityTensors]


def index_batch(tensors: Batch, idx: torch.Tensor, device: torch.device | None = None) -> dict[str, ModalityTensors]:
    """Rows ``idx`` of every modality, moved to ``device``.

    Parameters
    ----------
    tensors
        Modality -> :class:`ModalityTensors` with ``N`` rows.
    idx
        LongTensor ``(B,)`` of row indices (on the tensors' device).
    device
        Target device (default: unchanged).

    Returns
    -------
    dict
        Modality -> :class:`ModalityTensors` with ``B`` rows.
    """
    out = {}
    for m, t in tensors.items():
        cell = None if t.cell_mask is None else t.cell_mask[idx].to(device)
        out[m] = ModalityTensors(t.values[idx].to(device), t.mask[idx].to(device), cell)
    return out
