"""Input checks shared by the latent and the graph metrics."""

from __future__ import annotations

import numpy as np


def _as_2d(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-d array (N, D); found shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf; drop or mask those rows first")
    return arr


def _check_pair(learned, true) -> tuple[np.ndarray, np.ndarray]:
    learned, true = _as_2d(learned, "learned"), _as_2d(true, "true")
    if learned.shape[0] != true.shape[0]:
        raise ValueError(
            f"learned and true must have the same rows; found {learned.shape[0]} and {true.shape[0]}"
        )
    if learned.shape[1] < true.shape[1]:
        raise ValueError(
            f"learned: expected at least as many columns as true ({true.shape[1]}); found {learned.shape[1]}"
        )
    return learned, true


def _as_square(A, name: str) -> np.ndarray:
    arr = np.asarray(A, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name}: expected a square (D, D) matrix; found shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def _as_binary(A, name: str) -> np.ndarray:
    arr = _as_square(A, name)
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{name}: expected a 0/1 adjacency; threshold probabilities first (graph.to_dag)")
    return arr.astype(bool)


def _edge_cells(D: int, mask) -> np.ndarray:
    """Boolean ``(D, D)`` selection of scored cells: off-diagonal and ``mask``."""
    cells = ~np.eye(D, dtype=bool)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (D, D) or mask.dtype != bool:
            raise ValueError(f"mask: expected a ({D}, {D}) boolean matrix; found {mask.dtype} {mask.shape}")
        cells &= mask
    return cells
