"""Rows of the training tensors: the minibatch indexing shared by training and the graph stage."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch

from pyro_personax.data.multimodal import ModalityTensors

__all__ = ["Batch", "RowSubset", "index_batch", "num_rows"]


class RowSubset(Mapping):
    """The rows ``rows`` of a batch, without a copy: :func:`index_batch` gathers them per minibatch.

    A train / validation split of the data is two of these over the same tensors, so a
    fit holds the data once.

    Parameters
    ----------
    tensors
        Modality -> :class:`ModalityTensors` with ``N`` rows (the whole data).
    rows
        ``(n,)`` integer row indices into ``tensors``.

    Notes
    -----
    As a mapping it gives the whole data's tensors; read its rows through
    :func:`index_batch` and :func:`num_rows`.
    """

    def __init__(self, tensors: Mapping[str, ModalityTensors], rows):
        self.tensors = tensors
        self.rows = torch.as_tensor(rows, dtype=torch.long)
        if self.rows.ndim != 1:
            raise ValueError(f"rows: expected a 1-d array of row indices; found shape {tuple(self.rows.shape)}")

    def __getitem__(self, modality: str) -> ModalityTensors:
        return self.tensors[modality]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __repr__(self) -> str:
        return f"RowSubset({len(self.rows)} rows of {list(self.tensors)})"


#: Modality name -> :class:`~pyro_personax.data.multimodal.ModalityTensors` with ``N`` rows,
#: or a :class:`RowSubset` of such a mapping.
Batch = Mapping[str, ModalityTensors]


def num_rows(tensors: Batch) -> int:
    """Number of rows (entities) of ``tensors``; a ``ValueError`` if its modalities disagree."""
    if isinstance(tensors, RowSubset):
        num_rows(tensors.tensors)
        return len(tensors.rows)
    rows = {int(t.values.shape[0]) for t in tensors.values()}
    if len(rows) != 1:
        raise ValueError(f"tensors: every modality must have the same number of rows; found {sorted(rows)}")
    return rows.pop()


def index_batch(tensors: Batch, idx: torch.Tensor, device: torch.device | None = None) -> dict[str, ModalityTensors]:
    """Rows ``idx`` of every modality, moved to ``device``, with masked entries set to 0.

    Parameters
    ----------
    tensors
        Modality -> :class:`ModalityTensors` with ``N`` rows, or a :class:`RowSubset`
        (``idx`` then indexes its rows).
    idx
        LongTensor ``(B,)`` of row indices.
    device
        Target device (default: unchanged).

    Returns
    -------
    dict
        Modality -> :class:`ModalityTensors` with ``B`` rows; values never observed
        (masked measurement or cell) are 0, whatever the source holds there.
    """
    if isinstance(tensors, RowSubset):
        idx = tensors.rows[idx.cpu()].to(idx.device)
        tensors = tensors.tensors
    out = {}
    for m, t in tensors.items():
        rows = idx.to(t.values.device)
        values, mask = t.values[rows].to(device), t.mask[rows].to(device)
        cell = None if t.cell_mask is None else t.cell_mask[rows].to(device)
        observed = mask.unsqueeze(-1) if cell is None else mask.unsqueeze(-1) & cell.unsqueeze(-2)
        if not bool(observed.all()):
            values = torch.where(observed, values, torch.zeros((), dtype=values.dtype, device=values.device))
        out[m] = ModalityTensors(values, mask, cell)
    return out
