"""The ground-truth record returned by every synthetic generator."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyro_personax.checks import check_int
from pyro_personax.layout import LatentLayout

__all__ = ["GroundTruth", "MeasurementEdge", "check_measurement_edges", "measurement_latents"]


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


@dataclass(frozen=True)
class MeasurementEdge:
    """An edge ``parent -> child`` that one measurement of one modality sees, and no other.

    A synthetic generator given such an edge generates measurement ``measurement`` of
    ``modality`` from a version of the latents in which ``child`` has ``parent`` as an
    extra parent (:func:`measurement_latents`); every other measurement sees the
    latents of the true DAG. It models, for example, one LLM whose reading of a trait
    leans on the face of the person: the edge is in that LLM's text and nowhere else.
    The true adjacency of the :class:`GroundTruth` stays the DAG of the shared
    latents; the planted edge is recorded in its ``info["measurement_edges"]``.

    Parameters
    ----------
    parent, child
        Latent names; ``child`` must be read by ``modality`` (its block or the shared
        block), ``parent`` must not be (so that the edge is cross-modal).
    modality
        The modality whose measurement sees the edge.
    measurement
        Index ``k`` of that measurement (``0 <= k < K``).
    weight
        Weight of the standardised parent in the child's version (``> 0``).
    """

    parent: str
    child: str
    modality: str
    measurement: int
    weight: float = 1.0

    def __post_init__(self):
        k = self.measurement
        check_int("MeasurementEdge measurement", k, low=0)
        if not (isinstance(self.weight, (int, float)) and np.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"MeasurementEdge weight: expected a finite number > 0; found {self.weight!r}")


def check_measurement_edges(edges, layout: LatentLayout, num_measurements) -> tuple[MeasurementEdge, ...]:
    """Validate ``edges`` against ``layout`` and ``num_measurements`` (modality -> ``K``); return them as a tuple.

    Errors name the argument ``measurement_edges``, what was expected and what was found.
    """
    if edges is None:
        return ()
    edges = tuple(edges)
    names = list(layout.names)
    for e in edges:
        if not isinstance(e, MeasurementEdge):
            raise TypeError(f"measurement_edges: expected MeasurementEdge items; found {type(e).__name__}")
        if e.modality not in num_measurements:
            raise ValueError(
                f"measurement_edges: unknown modality {e.modality!r}; modalities are {list(num_measurements)}"
            )
        K = int(num_measurements[e.modality])
        if e.measurement >= K:
            raise ValueError(
                f"measurement_edges: modality {e.modality!r} has measurements 0..{K - 1}; found {e.measurement}"
            )
        for role, name in (("parent", e.parent), ("child", e.child)):
            if name not in names:
                raise ValueError(f"measurement_edges: unknown {role} latent {name!r}; latents are {names}")
        read = np.zeros(len(names), dtype=bool)  # the latents the modality's decoders read
        read[layout.decoder_inputs(e.modality)] = True
        if not read[names.index(e.child)]:
            raise ValueError(
                f"measurement_edges: child {e.child!r} is not read by modality {e.modality!r}; expected one of "
                f"{[n for n, r in zip(names, read) if r]}"
            )
        if read[names.index(e.parent)]:
            raise ValueError(
                f"measurement_edges: parent {e.parent!r} is read by modality {e.modality!r} itself; expected a "
                f"latent of another block (a cross-modal edge), one of {[n for n, r in zip(names, read) if not r]}"
            )
    return edges


def measurement_latents(latents: np.ndarray, names, edges, modality: str, measurement: int) -> np.ndarray:
    """The latents measurement ``measurement`` of ``modality`` is generated from.

    A copy of ``latents (N, D)`` in which, for every :class:`MeasurementEdge` of that
    measurement, the child column becomes ``standardise(child + weight * standardise(parent))``
    (mean 0, standard deviation 1, as the generators' latents). Without such an edge it
    returns ``latents`` itself.
    """
    mine = [e for e in edges if e.modality == modality and e.measurement == measurement]
    if not mine:
        return latents
    names = list(names)
    z = np.array(latents, dtype=float, copy=True)

    def standardise(v):
        return (v - v.mean()) / v.std()

    for e in mine:
        j = names.index(e.child)
        z[:, j] = standardise(z[:, j] + e.weight * standardise(latents[:, names.index(e.parent)]))
    return z
