"""The latent layout: names and blocks of the latent causal variables, and prior knowledge.

The latent vector ``z`` of length ``D`` is laid out as the shared block first, then one
block per modality, in the order given::

    z = [ s_1 .. s_S | <mod1>_1 .. <mod1>_{D1} | <mod2>_1 .. | ... ]

Every matrix, plot and ArviZ coordinate of the package uses :attr:`LatentLayout.names`.
Adjacencies follow the convention of :mod:`pyro_personax.graph` (``[i, j]`` = i -> j).

Prior knowledge is a set of hard masks over edges:

- *forbidden* edges (never in the graph): by default every edge from a modality block
  into the shared block (``shared_is_root=True``), whole block pairs
  (``forbidden_blocks``), edges against an order of tiers (``tiers``), single edges
  (``forbidden``), and an explicit user ``mask`` (``True`` = edge allowed);
- *required* edges (always in the graph).

An optional *measurement map* (off by default) declares, for a modality, which of its
measurement features read which latents of its block: each group of features is then
decoded from the shared block and its declared latents only (the partial-observability
assumption of Yao et al., ICLR 2024). It changes which edges a decoder can absorb
(:meth:`LatentLayout.absorbable_mask`), and every edge it makes decidable is classed
``"within-block (measurement map)"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pyro_personax.graph import is_dag

__all__ = ["LatentLayout", "SHARED", "MAPPED_CLASS"]

SHARED = "shared"

#: Edge class of a within-block edge that a declared measurement map makes decidable.
MAPPED_CLASS = "within-block (measurement map)"


def _check_measurement_map(spec, modality_dims: Mapping[str, int], names: Sequence[str], block_of) -> dict:
    """Normalise a measurement map to ``{modality: ((features, latent_names), ...)}``."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"measurement_map: expected a mapping modality -> [(features, latents), ...]; found {type(spec).__name__}"
        )
    out = {}
    for mod, groups in spec.items():
        if mod not in modality_dims:
            raise ValueError(f"measurement_map: unknown modality {mod!r}; modalities are {list(modality_dims)}")
        block = [n for n, b in zip(names, block_of) if b == mod]
        if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
            raise TypeError(f"measurement_map[{mod!r}]: expected a list of (features, latents) pairs; found {groups!r}")
        groups = list(groups)
        if len(groups) == 0:
            raise ValueError(f"measurement_map[{mod!r}]: expected at least one (features, latents) group; found none")
        seen_features: set[int] = set()
        read: set[str] = set()
        norm = []
        for g, group in enumerate(groups):
            if len(group) != 2:
                raise ValueError(f"measurement_map[{mod!r}][{g}]: expected a (features, latents) pair; found {group!r}")
            features, latents = group
            feats = []
            for f in features:
                if not isinstance(f, (int, np.integer)) or isinstance(f, bool) or f < 0:
                    raise ValueError(
                        f"measurement_map[{mod!r}][{g}]: features must be non-negative int column indices; found {f!r}"
                    )
                if int(f) in seen_features:
                    raise ValueError(f"measurement_map[{mod!r}]: feature {int(f)} is in more than one group")
                seen_features.add(int(f))
                feats.append(int(f))
            lats = [str(n) for n in latents] if not isinstance(latents, str) else [latents]
            unknown = [n for n in lats if n not in block]
            if unknown:
                raise ValueError(
                    f"measurement_map[{mod!r}][{g}]: latents {unknown} are not in block {mod!r}; its latents"
                    f" are {block}"
                )
            if not feats or not lats:
                raise ValueError(f"measurement_map[{mod!r}][{g}]: a group needs at least one feature and one latent")
            read.update(lats)
            norm.append((tuple(feats), tuple(lats)))
        unread = [n for n in block if n not in read]
        if unread:
            raise ValueError(f"measurement_map[{mod!r}]: latents {unread} are read by no group of features")
        out[mod] = tuple(norm)
    return out


def _edge_matrix(spec, names: Sequence[str], what: str) -> np.ndarray:
    """Turn ``spec`` (None, (D, D) bool array, or iterable of (parent, child)) into a mask."""
    D = len(names)
    out = np.zeros((D, D), dtype=bool)
    if spec is None:
        return out
    if isinstance(spec, np.ndarray) or hasattr(spec, "shape"):
        arr = np.asarray(spec)
        if arr.shape != (D, D):
            raise ValueError(f"{what}: expected a ({D}, {D}) boolean matrix; found shape {arr.shape}")
        return arr.astype(bool)
    index = {n: i for i, n in enumerate(names)}
    for pair in spec:
        if len(pair) != 2:
            raise ValueError(f"{what}: expected (parent, child) pairs; found {pair!r}")
        parent, child = pair
        for node in (parent, child):
            if node not in index:
                raise ValueError(f"{what}: unknown latent {node!r}; known latents are {list(names)}")
        out[index[parent], index[child]] = True
    return out


@dataclass(frozen=True, eq=False)
class LatentLayout:
    """Names and blocks of the latent causal variables, with edge prior knowledge.

    Parameters
    ----------
    shared_dim
        Size ``S`` of the shared (cross-modal) block, may be 0.
    modality_dims
        Ordered mapping modality name -> size of its latent block (0 allowed: the
        modality is then decoded from the shared block only).
    names
        Optional names of all ``D = S + sum(modality_dims)`` components; default
        ``s1..sS`` then ``<modality>_1..``.
    shared_is_root
        Forbid every edge from a modality block into the shared block.
    forbidden_blocks
        Pairs ``(parent_block, child_block)`` whose edges are all forbidden; block
        names are ``"shared"`` and the modality names.
    tiers
        Optional sequence of groups of block names; an edge from a later tier to an
        earlier one is forbidden.
    forbidden, required
        Single edges, as ``(parent, child)`` name pairs or a ``(D, D)`` boolean matrix.
    mask
        Optional ``(D, D)`` boolean matrix, ``True`` where an edge is allowed.
    measurement_map
        Optional assumption, off by default: ``{modality: [(features, latents), ...]}``.
        Each group lists column indices of the modality's measurement vector and the
        names of the latents of its block they read; the groups must cover every
        feature once (checked against the data when the model is built) and read every
        latent of the block. The model then decodes each group from the shared block
        and its latents only, and within-block edges it makes decidable get the class
        :data:`MAPPED_CLASS`. Not available for tabular modalities.

    Examples
    --------
    >>> layout = LatentLayout(1, {"face": 2, "text": 2}, required=[("text_1", "face_1")])
    >>> layout.names
    ('s1', 'face_1', 'face_2', 'text_1', 'text_2')
    >>> bool(layout.allowed_mask()[1, 0])  # face_1 -> s1 is forbidden (shared_is_root)
    False
    """

    shared_dim: int
    modality_dims: Mapping[str, int]
    names: tuple[str, ...] | None = None
    shared_is_root: bool = True
    forbidden_blocks: tuple[tuple[str, str], ...] = ()
    tiers: tuple[tuple[str, ...], ...] | None = None
    forbidden: object = None
    required: object = None
    mask: object = None
    measurement_map: object = None
    _forbidden: np.ndarray = field(init=False, repr=False)
    _required: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.shared_dim, (int, np.integer)) or self.shared_dim < 0:
            raise ValueError(f"shared_dim must be a non-negative int; found {self.shared_dim!r}")
        if not isinstance(self.modality_dims, Mapping) or len(self.modality_dims) == 0:
            raise ValueError(
                f"modality_dims must be a non-empty mapping modality -> block size; found {self.modality_dims!r}"
            )
        dims = {}
        for mod, d in self.modality_dims.items():
            if not isinstance(mod, str) or not mod or mod == SHARED:
                raise ValueError(f"modality names must be non-empty strings other than 'shared'; found {mod!r}")
            if not isinstance(d, (int, np.integer)) or d < 0:
                raise ValueError(f"modality_dims[{mod!r}] must be a non-negative int; found {d!r}")
            dims[mod] = int(d)
        object.__setattr__(self, "modality_dims", dims)
        object.__setattr__(self, "shared_dim", int(self.shared_dim))
        if self.latent_dim == 0:
            raise ValueError("the layout has no latent components (shared_dim and all modality_dims are 0)")
        default = [f"s{i + 1}" for i in range(self.shared_dim)]
        for mod, d in dims.items():
            default += [f"{mod}_{i + 1}" for i in range(d)]
        names = tuple(default) if self.names is None else tuple(self.names)
        if len(names) != self.latent_dim:
            raise ValueError(f"names: expected {self.latent_dim} latent names; found {len(names)}")
        if len(set(names)) != len(names):
            raise ValueError(f"names must be unique; found duplicates in {names}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "forbidden_blocks", tuple(tuple(p) for p in self.forbidden_blocks))
        if self.tiers is not None:
            object.__setattr__(self, "tiers", tuple(tuple(t) for t in self.tiers))
        object.__setattr__(self, "_forbidden", self._build_forbidden())
        object.__setattr__(self, "_required", _edge_matrix(self.required, names, "required"))
        self._check_required()
        object.__setattr__(
            self, "measurement_map", _check_measurement_map(self.measurement_map, dims, names, self.block_of)
        )

    # ------------------------------------------------------------------ structure
    @property
    def latent_dim(self) -> int:
        """Total number ``D`` of latent components."""
        return self.shared_dim + sum(self.modality_dims.values())

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names in block order."""
        return tuple(self.modality_dims)

    @property
    def block_names(self) -> tuple[str, ...]:
        """``("shared", *modalities)``."""
        return (SHARED, *self.modalities)

    def block_slice(self, block: str) -> slice:
        """Slice of ``z`` holding ``block`` (``"shared"`` or a modality name)."""
        start = 0
        for name in self.block_names:
            size = self.shared_dim if name == SHARED else self.modality_dims[name]
            if name == block:
                return slice(start, start + size)
            start += size
        raise ValueError(f"unknown block {block!r}; blocks are {list(self.block_names)}")

    @property
    def block_of(self) -> tuple[str, ...]:
        """Block name of every component, length ``D``."""
        out = []
        for block in self.block_names:
            sl = self.block_slice(block)
            out += [block] * (sl.stop - sl.start)
        return tuple(out)

    def index(self, name: str) -> int:
        """Position of the latent called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"unknown latent {name!r}; known latents are {list(self.names)}") from None

    # ------------------------------------------------------------------ prior knowledge
    def _check_block(self, block: str, what: str) -> None:
        if block not in self.block_names:
            raise ValueError(f"{what}: unknown block {block!r}; blocks are {list(self.block_names)}")

    def _build_forbidden(self) -> np.ndarray:
        names = self.names
        D = len(names)
        blocks = np.array(self.block_of)
        F = np.eye(D, dtype=bool)
        if self.shared_is_root:
            F |= (blocks[:, None] != SHARED) & (blocks[None, :] == SHARED)
        for pair in self.forbidden_blocks:
            if len(pair) != 2:
                raise ValueError(f"forbidden_blocks: expected (parent_block, child_block); found {pair!r}")
            for b in pair:
                self._check_block(b, "forbidden_blocks")
            F |= (blocks[:, None] == pair[0]) & (blocks[None, :] == pair[1])
        if self.tiers is not None:
            rank = {}
            for t, group in enumerate(self.tiers):
                for b in group:
                    self._check_block(b, "tiers")
                    if b in rank:
                        raise ValueError(f"tiers: block {b!r} appears in more than one tier")
                    rank[b] = t
            r = np.array([rank.get(b, -1) for b in blocks])
            tiered = r >= 0
            F |= tiered[:, None] & tiered[None, :] & (r[:, None] > r[None, :])
        F |= _edge_matrix(self.forbidden, names, "forbidden")
        if self.mask is not None:
            F |= ~_edge_matrix(self.mask, names, "mask")
        return F

    def _check_required(self) -> None:
        R, F = self._required, self._forbidden
        clash = np.argwhere(R & F)
        if len(clash):
            pairs = [f"{self.names[i]} -> {self.names[j]}" for i, j in clash]
            raise ValueError(
                "required edges conflict with forbidden edges (self-loops, shared_is_root, "
                f"forbidden_blocks, tiers, forbidden or mask): {pairs}"
            )
        if not is_dag(R):
            import networkx as nx

            cycle = nx.find_cycle(nx.DiGraph([(self.names[i], self.names[j]) for i, j in np.argwhere(R)]))
            edges = ", ".join(f"{a} -> {b}" for a, b in cycle)
            raise ValueError(f"required edges contain a directed cycle ({edges}); a causal graph must be acyclic")

    def allowed_mask(self) -> np.ndarray:
        """Boolean ``(D, D)``: ``True`` where an edge may exist (diagonal always ``False``)."""
        return ~self._forbidden

    def required_mask(self) -> np.ndarray:
        """Boolean ``(D, D)``: ``True`` where an edge must exist."""
        return self._required.copy()

    def decoder_inputs(self, modality: str) -> np.ndarray:
        """Indices of the latents the decoders of ``modality`` read: the shared block, then its own.

        This is the one rule of the package for "which latents a decoder reads": the
        model's decoders and encoders, the edge classes (:meth:`edge_classes`,
        :meth:`absorbable_mask`) and the chain alignment follow it, together with the
        :meth:`decoder_groups` of a modality that has a measurement map.
        """
        if modality not in self.modality_dims:
            raise ValueError(f"unknown modality {modality!r}; modalities are {list(self.modalities)}")
        idx = np.arange(self.latent_dim)
        return np.concatenate([idx[self.block_slice(SHARED)], idx[self.block_slice(modality)]])

    def decoder_groups(self, modality: str) -> list[tuple[tuple[int, ...] | None, np.ndarray]]:
        """The readers of ``modality``: ``(features, latent indices)`` per group of features.

        Without a measurement map there is one group, ``(None, decoder_inputs(modality))``
        (every feature reads the whole block). With one, each declared group reads the
        shared block and its declared latents, in layout order.
        """
        inputs = self.decoder_inputs(modality)
        if modality not in self.measurement_map:
            return [(None, inputs)]
        shared = np.arange(self.latent_dim)[self.block_slice(SHARED)]
        return [
            (features, np.concatenate([shared, np.sort([self.index(n) for n in latents])]))
            for features, latents in self.measurement_map[modality]
        ]

    def reader_mask(self) -> np.ndarray:
        """Boolean ``(R, D)``: ``[r, j]`` = reader ``r`` reads latent ``j``.

        The readers are the modalities' :meth:`decoder_groups`, in modality order: one per
        modality, or one per group of features where a measurement map is declared.
        """
        rows = [inputs for mod in self.modalities for _, inputs in self.decoder_groups(mod)]
        out = np.zeros((len(rows), self.latent_dim), dtype=bool)
        for r, inputs in enumerate(rows):
            out[r, inputs] = True
        return out

    def edge_classes(self) -> np.ndarray:
        """``(D, D)`` string array: the class of every edge ``i -> j`` (``""`` on the diagonal).

        - ``"cross-modal"``: parent and child in two different modality blocks. No
          decoder that reads the child reads the parent, so a decoder cannot absorb it:
          the class Sun et al. (ICLR 2025) identify under their Condition 4.3.
        - ``"within-block"``: both in one modality block; ``"shared->modality"``: a
          shared parent; ``"within-shared"``: both shared; ``"modality->shared"``: into
          the shared block. Every decoder that reads the child of the first three also
          reads the parent (:meth:`absorbable_mask`): the likelihood does not decide them.
        - :data:`MAPPED_CLASS`: a within-block edge that a declared measurement map makes
          decidable (a group of features reads the child but not the parent): identified
          only under that assumption (Yao et al., ICLR 2024).
        """
        blocks = np.array(self.block_of)
        shared = blocks == SHARED
        out = np.full((self.latent_dim, self.latent_dim), "cross-modal", dtype=object)
        same = blocks[:, None] == blocks[None, :]
        out[same & ~shared[:, None]] = "within-block"
        out[same & ~shared[:, None] & ~self.absorbable_mask()] = MAPPED_CLASS
        out[shared[:, None] & ~shared[None, :]] = "shared->modality"
        out[shared[:, None] & shared[None, :]] = "within-shared"
        out[~shared[:, None] & shared[None, :]] = "modality->shared"
        np.fill_diagonal(out, "")
        return out

    def identified_mask(self) -> np.ndarray:
        """Boolean ``(D, D)``: ``True`` for the edges the data can decide.

        These are the cross-modal edges, and the within-block edges a measurement map
        makes decidable (:data:`MAPPED_CLASS`). Every other edge can be absorbed by a
        decoder, or points into the shared block, which sparsity does not make
        informative (Sun et al., App. C.4).
        """
        return np.isin(self.edge_classes(), ["cross-modal", MAPPED_CLASS])

    def absorbable_mask(self) -> np.ndarray:
        """Boolean ``(D, D)``: ``True`` where a decoder can absorb the edge ``i -> j``.

        The decoder of a modality reads the shared block and that modality's block
        (:meth:`decoder_inputs`), so every decoder that reads ``z_j`` also reads ``z_i``
        exactly when both lie in one block or ``i`` lies in the shared block (with a
        measurement map, when every group of features that reads ``z_j`` also reads
        ``z_i``: :meth:`reader_mask`). Then replacing ``z_j`` by
        ``z_j - g(z_i)`` (any function ``g``; unit Jacobian) and composing those decoders
        with the inverse leaves the likelihood and the prior density unchanged, and the
        edge's mechanism becomes ``f_j - g``: the data do not fix it, and an edge whose
        mechanism is additive in ``z_i`` can be removed this way (moving the dependence
        onto ``j``'s children in other blocks, if it has any). Edges between two
        modality blocks, or from a modality block into the shared block, cannot be
        absorbed. The diagonal is ``False``.
        """
        readers = self.reader_mask()  # (R, D)
        # i -> j is absorbable when every reader of j also reads i
        # (a latent no decoder reads is not absorbable: nothing could take up its edges)
        reads_j = readers[:, None, :]  # (R, 1, j)
        reads_i = readers[:, :, None]  # (R, i, 1)
        covered = np.all(~reads_j | reads_i, axis=0) & readers.any(axis=0)[None, :]
        return covered & ~np.eye(self.latent_dim, dtype=bool)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        """A JSON-serialisable description; :meth:`from_dict` rebuilds the layout."""
        return {
            "shared_dim": self.shared_dim,
            "modality_dims": dict(self.modality_dims),
            "names": list(self.names),
            "shared_is_root": self.shared_is_root,
            "forbidden_blocks": [list(p) for p in self.forbidden_blocks],
            "tiers": None if self.tiers is None else [list(t) for t in self.tiers],
            "forbidden": self._forbidden.astype(int).tolist(),
            "required": self._required.astype(int).tolist(),
            "measurement_map": {
                mod: [[list(f), list(n)] for f, n in groups] for mod, groups in self.measurement_map.items()
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> LatentLayout:
        """Inverse of :meth:`to_dict`."""
        return cls(
            shared_dim=d["shared_dim"],
            modality_dims=d["modality_dims"],
            names=d["names"],
            shared_is_root=d["shared_is_root"],
            forbidden_blocks=tuple(tuple(p) for p in d["forbidden_blocks"]),
            tiers=None if d["tiers"] is None else tuple(tuple(t) for t in d["tiers"]),
            forbidden=np.asarray(d["forbidden"], dtype=bool),
            required=np.asarray(d["required"], dtype=bool),
            measurement_map=d.get("measurement_map") or None,
        )

    def edge_names(self, pairs: Iterable[tuple[int, int]]) -> list[tuple[str, str]]:
        """Map index pairs ``(i, j)`` to name pairs."""
        return [(self.names[i], self.names[j]) for i, j in pairs]
