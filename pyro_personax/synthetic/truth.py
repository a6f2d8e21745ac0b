"""The ground-truth record returned by every synthetic generator."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyro_personax.layout import LatentLayout

__all__ = ["GroundTruth"]


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """What generated a synthetic data set.

    Parameters
    ----------
    latents
        True latent values, shape ``(N, D)``, columns in ``layout.names`` order.
    adjacency
        True DAG, 0/1 ``(D, D)``, ``[i, j]`` = parent i -> child j.
    layout
        The latent layout (names and blocks) of the truth.
    info
        Free-form details of the generator (mechanisms, noise, seeds).
    """

    latents: np.ndarray
    adjacency: np.ndarray
    layout: LatentLayout
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        D = self.layout.latent_dim
        if self.latents.ndim != 2 or self.latents.shape[1] != D:
            raise ValueError(f"latents: expected shape (N, {D}); found {self.latents.shape}")
        if self.adjacency.shape != (D, D):
            raise ValueError(f"adjacency: expected shape ({D}, {D}); found {self.adjacency.shape}")

    @property
    def names(self) -> tuple[str, ...]:
        """Latent names, length ``D``."""
        return self.layout.names
