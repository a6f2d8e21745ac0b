"""Label alignment of independent restarts ("chains").

The latents of one block are exchangeable in the model: the prior, the decoders and the
encoders treat them alike, so every restart may put a given factor under a different
name. Before the restarts' edge probabilities are pooled (or compared by R-hat), each
chain's latents are matched to those of a reference chain, within each group of
exchangeable latents, by Hungarian matching on the absolute Spearman correlation of the
posterior means on the same rows. This is the relabelling step familiar from mixture
models, applied to latent labels; the sign or any monotone re-scaling of a latent does
not change the graph, so the absolute correlation is the right criterion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyro_personax.layout import LatentLayout
from pyro_personax.metrics import mcc

__all__ = ["ChainAlignment", "exchangeable_groups", "align_chains", "identity_alignment"]


def exchangeable_groups(layout: LatentLayout) -> list[np.ndarray]:
    """Groups of latent indices whose labels the model cannot tell apart.

    Two latents are exchangeable when they belong to the same block, the same decoders
    read them (:meth:`~pyro_personax.layout.LatentLayout.reader_mask`) and the edge
    knowledge of the layout (allowed and required edges to and from every latent
    outside the block) is the same for both. Within a block whose internal edge
    knowledge is not uniform (some pair forbidden or required but not all), every latent
    is its own group, so a permutation never breaks the knowledge.

    Parameters
    ----------
    layout
        The :class:`~pyro_personax.layout.LatentLayout`.

    Returns
    -------
    list of numpy.ndarray
        Index arrays that partition ``range(D)``, in index order.

    Examples
    --------
    >>> layout = LatentLayout(1, {"face": 2}, forbidden=[("face_2", "s1")], shared_is_root=False)
    >>> [g.tolist() for g in exchangeable_groups(layout)]
    [[0], [1], [2]]
    >>> [g.tolist() for g in exchangeable_groups(LatentLayout(1, {"face": 2}))]
    [[0], [1, 2]]
    """
    allowed, required, readers = layout.allowed_mask(), layout.required_mask(), layout.reader_mask()
    groups = []
    for block in layout.block_names:
        idx = np.arange(layout.latent_dim)[layout.block_slice(block)]
        if len(idx) == 0:
            continue
        inside = np.ix_(idx, idx)
        off = ~np.eye(len(idx), dtype=bool)
        uniform = len(np.unique(allowed[inside][off])) <= 1 and not required[inside].any()
        if not uniform:
            groups += [np.array([i]) for i in idx]
            continue
        outside = np.setdiff1d(np.arange(layout.latent_dim), idx)
        signatures: dict[bytes, list[int]] = {}
        for i in idx:
            sig = np.concatenate([allowed[i, outside], allowed[outside, i], required[i, outside], required[outside, i],
                                  readers[:, i]])
            signatures.setdefault(sig.tobytes(), []).append(int(i))
        groups += [np.array(g) for g in signatures.values()]
    return sorted(groups, key=lambda g: int(g[0]))


@dataclass(frozen=True, eq=False)
class ChainAlignment:
    """How each chain's latents map onto the reference chain's.

    Attributes
    ----------
    permutations
        ``(C, D)`` integers: latent ``permutations[c, j]`` of chain ``c`` plays the role
        of latent ``j`` of the reference chain (so ``z_c[:, permutations[c]]`` is in the
        reference's labels). The reference row is the identity.
    correlations
        ``(C, D)`` absolute Spearman correlation of each matched pair (1 on the
        reference row); low values mean the restarts found different representations,
        and pooling their graphs mixes different variables.
    reference
        Index of the reference chain.
    """

    permutations: np.ndarray
    correlations: np.ndarray
    reference: int = 0

    def __post_init__(self):
        perms = np.asarray(self.permutations)
        if perms.ndim != 2 or any(sorted(row) != list(range(perms.shape[1])) for row in perms.tolist()):
            raise ValueError(
                f"permutations: expected (C, D) rows that are permutations of range(D); found {perms.tolist()}"
            )
        corr = np.asarray(self.correlations, dtype=float)
        if corr.shape != perms.shape:
            raise ValueError(f"correlations: expected shape {perms.shape}; found {corr.shape}")
        object.__setattr__(self, "permutations", perms.astype(int))
        object.__setattr__(self, "correlations", corr)

    @property
    def num_chains(self) -> int:
        """``C``."""
        return self.permutations.shape[0]

    def to_dict(self) -> dict:
        """JSON-ready form (see :meth:`from_dict`)."""
        return {
            "permutations": self.permutations.tolist(),
            "correlations": self.correlations.tolist(),
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, d) -> ChainAlignment:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(d["permutations"], dtype=int), np.asarray(d["correlations"], dtype=float), int(d["reference"])
        )

    def to_frame(self, names: Sequence[str]):
        """Long table: one row per (chain, reference latent).

        Parameters
        ----------
        names
            The ``D`` latent names (``layout.names``).

        Returns
        -------
        pandas.DataFrame
            Columns ``chain``, ``latent`` (reference name), ``matched`` (the name the
            chain gave it) and ``abs_spearman``.
        """
        names = list(names)
        if len(names) != self.permutations.shape[1]:
            raise ValueError(f"names: expected {self.permutations.shape[1]} latent names; found {len(names)}")
        rows = [
            {
                "chain": c,
                "latent": names[j],
                "matched": names[self.permutations[c, j]],
                "abs_spearman": self.correlations[c, j],
            }
            for c in range(self.num_chains)
            for j in range(len(names))
        ]
        return pd.DataFrame(rows)

    def relabel_edges(self, chain: int, matrix: np.ndarray) -> np.ndarray:
        """``matrix (..., D, D)`` of ``chain`` (parent, child) in the reference's labels."""
        p = self.permutations[chain]
        return np.asarray(matrix)[..., p, :][..., :, p]

    def relabel_latents(self, chain: int, values: np.ndarray) -> np.ndarray:
        """``values (..., D)`` of ``chain`` (last axis = latent) in the reference's labels."""
        return np.asarray(values)[..., self.permutations[chain]]


def identity_alignment(num_chains: int, latent_dim: int) -> ChainAlignment:
    """The alignment that keeps every chain's labels (``(C, D)`` identities)."""
    return ChainAlignment(np.tile(np.arange(latent_dim), (num_chains, 1)), np.ones((num_chains, latent_dim)), 0)


def align_chains(latents: Sequence[np.ndarray], layout: LatentLayout, reference: int = 0) -> ChainAlignment:
    """Match every chain's latents to the reference chain's within exchangeable groups.

    Parameters
    ----------
    latents
        One ``(N, D)`` array per chain: posterior means of the same ``N`` rows.
    layout
        The layout, which fixes the exchangeable groups (:func:`exchangeable_groups`).
    reference
        The chain whose labels the others adopt.

    Returns
    -------
    ChainAlignment

    Examples
    --------
    >>> z = np.random.default_rng(0).normal(size=(300, 3))
    >>> layout = LatentLayout(1, {"face": 2})
    >>> al = align_chains([z, np.column_stack([z[:, 0], -z[:, 2], np.exp(z[:, 1])])], layout)
    >>> al.permutations.tolist()
    [[0, 1, 2], [0, 2, 1]]
    """
    D = layout.latent_dim
    arrays = [np.asarray(z, dtype=float) for z in latents]
    if not arrays:
        raise ValueError("latents: expected one (N, D) array per chain; found none")
    shape = arrays[0].shape
    for c, z in enumerate(arrays):
        if z.ndim != 2 or z.shape[1] != D or z.shape != shape:
            raise ValueError(f"latents[{c}]: expected shape (N, {D}) like latents[0] {shape}; found {z.shape}")
    if not 0 <= reference < len(arrays):
        raise ValueError(f"reference: expected a chain index in [0, {len(arrays)}); found {reference}")
    groups = exchangeable_groups(layout)
    perms = np.tile(np.arange(D), (len(arrays), 1))
    corr = np.ones((len(arrays), D))
    for c, z in enumerate(arrays):
        if c == reference:
            continue
        for g in groups:
            res = mcc(z[:, g], arrays[reference][:, g], "spearman")
            perms[c, g] = g[res.permutation]
            corr[c, g] = np.abs(res.correlations)
    return ChainAlignment(perms, corr, reference)
