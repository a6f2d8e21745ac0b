"""Checks, helpers and option constants shared by the Level II model, its guide and their options.

:class:`~pyro_personax.models.PersonaXModel` (:mod:`pyro_personax.models.personax`) and
:class:`~pyro_personax.models.PersonaXGuide` (:mod:`pyro_personax.models.guide`) both
check their layout and call arguments, register the graph masks, read a modality's
latents the same way and carry the same map of the basis inside blocks
(:class:`LatentBasis`); the code that does it lives here, with the choices and defaults
of the options that :class:`~pyro_personax.models.ModelOptions` and the trainer check.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Mapping

import pyro
import torch
from pyro import poutine

from pyro_personax.checks import check_int
from pyro_personax.graph import order_tiers
from pyro_personax.layout import LatentLayout

from .edges import pair_state_logits
from .spec import ModelSpec

__all__ = [
    "DEFAULT_SPARSITY",
    "DEFAULT_NUISANCE_DIM",
    "LATENT_TRANSFORMS",
    "POSTERIOR_COVARIANCES",
    "DEFAULT_POSTERIOR_COVARIANCE",
    "GRAPH_POSTERIORS",
    "DEFAULT_GRAPH_POSTERIOR",
    "check_sparsity",
]

DEFAULT_SPARSITY = "bic"
DEFAULT_NUISANCE_DIM = 2
#: Choices of ``latent_transform``: a per-latent monotone spline after the structural equations, or none.
LATENT_TRANSFORMS = ("spline", "identity")
POSTERIOR_COVARIANCES = ("diagonal", "full")
DEFAULT_POSTERIOR_COVARIANCE = "full"
GRAPH_POSTERIORS = ("order", "pairwise")
DEFAULT_GRAPH_POSTERIOR = "order"


def _check_layout_spec(layout, spec) -> None:
    if not isinstance(layout, LatentLayout):
        raise TypeError(f"layout: expected a LatentLayout; found {type(layout).__name__}")
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec: expected a ModelSpec (ModelSpec.from_data(data)); found {type(spec).__name__}")
    no_data = [m for m in layout.modalities if m not in spec.names]
    if no_data:
        raise ValueError(f"layout modalities {no_data} are not in the data; data modalities are {list(spec.names)}")
    no_block = [m for m in spec.names if m not in layout.modalities]
    if no_block:
        raise ValueError(
            f"data modalities {no_block} have no block in the layout (layout modalities are "
            f"{list(layout.modalities)}); add them to modality_dims (0 = decoded from the shared block only)"
        )
    for m in spec.modalities:
        size = layout.modality_dims[m.name]
        observed = m.num_measurements * m.measurement_dim
        if size > observed:
            raise ValueError(
                f"layout block {m.name!r} has {size} latents but modality {m.name!r} has only "
                f"{m.num_measurements} x {m.measurement_dim} = {observed} observed dimensions"
            )
    _check_map_coverage(layout, spec)


def _check_map_coverage(layout: LatentLayout, spec: ModelSpec) -> None:
    """Every mapped modality is not tabular and its groups cover its features exactly once."""
    for mod in layout.measurement_map:
        m = spec[mod]
        if m.likelihood_object.param_dim(m) != m.measurement_dim:
            raise ValueError(
                f"measurement_map[{mod!r}]: needs a likelihood with one decoder output per feature; "
                f"{m.likelihood!r} has {m.likelihood_object.param_dim(m)} for {m.measurement_dim} features"
            )
        features = sorted(f for group, _ in layout.decoder_groups(mod) for f in group)
        if features != list(range(m.measurement_dim)):
            missing = sorted(set(range(m.measurement_dim)) - set(features))
            extra = sorted(set(features) - set(range(m.measurement_dim)))
            raise ValueError(
                f"measurement_map[{mod!r}]: the groups must cover the {m.measurement_dim} features of {mod!r} once; "
                f"features in no group: {missing}, out of range: {extra}"
            )


def _resolve_nuisance(spec: ModelSpec, nuisance_dim) -> dict[str, int]:
    """Modality -> nuisance size; an int applies to measurement modalities (tabular: 0)."""
    if isinstance(nuisance_dim, Mapping):
        unknown = set(nuisance_dim) - set(spec.names)
        if unknown:
            raise ValueError(f"nuisance_dim: unknown modalities {sorted(unknown)}; modalities are {list(spec.names)}")
        out = {
            m.name: int(nuisance_dim.get(m.name, DEFAULT_NUISANCE_DIM if m.likelihood_object.uses_nuisance else 0))
            for m in spec.modalities
        }
    else:
        out = {m.name: int(nuisance_dim) if m.likelihood_object.uses_nuisance else 0 for m in spec.modalities}
    bad = {k: v for k, v in out.items() if v < 0}
    if bad:
        raise ValueError(f"nuisance_dim must be >= 0; found {bad}")
    return out


def check_sparsity(sparsity: float | str) -> float | str:
    """Validate an edge-penalty setting: a finite number >= 0, or ``"bic"``; return it.

    Raises
    ------
    ValueError
        Naming the value found.
    """
    if sparsity == "bic":
        return sparsity
    number = isinstance(sparsity, numbers.Real) and not isinstance(sparsity, bool)
    if not (number and math.isfinite(sparsity) and sparsity >= 0):
        raise ValueError(f"sparsity: expected a finite number >= 0 or 'bic'; found {sparsity!r}")
    return sparsity


def _prior_logits(free: torch.Tensor, required: torch.Tensor, p0: float) -> torch.Tensor:
    """Pair-state prior logits ``(P, 3)``: free edges ``p0``, required 1, forbidden 0."""
    probs = torch.where(free, torch.full(free.shape, p0), required.to(torch.get_default_dtype()))
    return pair_state_logits(probs)


def _check_graph_posterior(graph_posterior: str) -> str:
    if graph_posterior not in GRAPH_POSTERIORS:
        raise ValueError(f"graph_posterior: expected one of {GRAPH_POSTERIORS}; found {graph_posterior!r}")
    return graph_posterior


def _graph_masks(module, layout: LatentLayout) -> None:
    """Register the ``free_mask``, ``required_mask`` and order ``tiers`` buffers."""
    required = torch.as_tensor(layout.required_mask())
    allowed = layout.allowed_mask()
    module.register_buffer("free_mask", torch.as_tensor(allowed) & ~required)
    module.register_buffer("required_mask", required)
    module.register_buffer("tiers", torch.as_tensor(order_tiers(allowed), dtype=torch.long))


def _graph_plate(graph_posterior: str, graph_particles: int):
    """The ``"graphs"`` plate of the order posterior (``dim=-2``); nothing for the pairwise one."""
    if graph_posterior != "order":
        return contextlib.nullcontext()
    check_int("graph_particles", graph_particles)
    return pyro.plate("graphs", graph_particles, dim=-2)


def _block_dim(layout: LatentLayout, mod: str) -> int:
    return layout.shared_dim + layout.modality_dims[mod]


def _check_call(module, batch, num_entities, subsample, temperature, kl_weight) -> int:
    """Validate the common call arguments; return the number of rows ``B``."""
    B = module.spec.check_batch(batch)
    check_int("num_entities", num_entities)
    if subsample is None:
        if B != num_entities:
            raise ValueError(f"batch has {B} rows but num_entities={num_entities} and subsample is None")
    else:
        if not isinstance(subsample, torch.Tensor) or subsample.dim() != 1 or subsample.dtype != torch.long:
            raise ValueError(f"subsample: expected a 1-D LongTensor of entity indices; found {subsample!r:.80}")
        if subsample.numel() != B:
            raise ValueError(f"subsample has {subsample.numel()} indices but the batch has {B} rows")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; found {temperature}")
    if not kl_weight >= 0:
        raise ValueError(f"kl_weight must be >= 0; found {kl_weight}")
    values = next(iter(batch.values()))[0]
    param = next(module.parameters())
    if values.dtype != param.dtype or values.device != param.device:
        raise TypeError(
            f"batch tensors are {values.dtype} on {values.device} but the module's parameters are "
            f"{param.dtype} on {param.device}; move one of them (module.to(...) or data.to_tensors(device, dtype))"
        )
    return B


def _kl_scale(kl_weight: float):
    """``poutine.scale`` by ``kl_weight`` (a weight of 0 masks the sites instead)."""
    return poutine.mask(mask=False) if kl_weight == 0 else poutine.scale(scale=kl_weight)


def _cat(tensors, dim=-1):
    """Concatenate along the last dim after broadcasting the leading dims."""
    tensors = [t for t in tensors if t is not None and t.shape[-1] > 0]
    lead = torch.broadcast_shapes(*[t.shape[:-1] for t in tensors])
    return torch.cat([t.expand(lead + t.shape[-1:]) for t in tensors], dim=dim)


def _block_latents(layout: LatentLayout, z: torch.Tensor, mod: str, num_measurements: int) -> torch.Tensor:
    """The latents modality ``mod``'s decoders read (:meth:`LatentLayout.decoder_inputs`), for each of
    ``K`` measurements: shape ``(..., K, S + D_m)``."""
    idx = torch.as_tensor(layout.decoder_inputs(mod), device=z.device)
    lat = z.index_select(-1, idx).unsqueeze(-2)
    return lat.expand(lat.shape[:-2] + (num_measurements, lat.shape[-1]))


class LatentBasis:
    """The map ``T`` from the basis the encoders and decoders were trained in to the latents' basis.

    A mixin of :class:`~pyro_personax.models.PersonaXModel` and
    :class:`~pyro_personax.models.PersonaXGuide`: the latents ``z`` are ``T z_0``, with ``z_0``
    what the decoders read and the encoders' experts describe. The likelihood is the same
    in every basis (the decoders read ``T^-1 z``, the guide's ``q(z | x)`` is the experts'
    posterior mapped by ``T``); the latent prior and the graph hold for ``z``. ``T`` is
    the identity (and costs nothing) until :meth:`set_latent_basis`; the graph stage sets
    it (:mod:`pyro_personax.inference.basis`).
    """

    def _init_latent_basis(self, dim: int) -> None:
        self.register_buffer("latent_basis", torch.eye(dim))
        self.register_buffer("latent_basis_inverse", torch.eye(dim))
        self._has_basis = False

    @torch.no_grad()
    def set_latent_basis(self, T) -> None:
        """Set ``T`` ``(D, D)``, invertible (it replaces the current map; compose with :attr:`latent_basis`).

        Raises
        ------
        ValueError
            ``T`` is not a finite, invertible ``(D, D)`` matrix.
        """
        D = self.latent_basis.shape[0]
        T = torch.as_tensor(T, dtype=torch.float64)
        if T.shape != (D, D) or not bool(torch.isfinite(T).all()):
            raise ValueError(f"T: expected a finite ({D}, {D}) matrix; found shape {tuple(T.shape)}")
        if torch.linalg.matrix_rank(T) < D:
            raise ValueError("T: the map is not invertible")
        self.latent_basis.copy_(T.to(self.latent_basis))
        self.latent_basis_inverse.copy_(torch.linalg.inv(T).to(self.latent_basis))
        self._note_basis()

    def _note_basis(self) -> None:
        """Whether :attr:`latent_basis` differs from the identity (reading ``z`` then costs a product)."""
        eye = torch.eye(self.latent_basis.shape[0]).to(self.latent_basis)
        self._has_basis = not bool(torch.equal(self.latent_basis, eye))

    def _to_trained_basis(self, z: torch.Tensor) -> torch.Tensor:
        """``T^-1 z`` for ``z`` ``(..., D)``: the coordinates the decoders and the experts use."""
        return z @ self.latent_basis_inverse.mT if self._has_basis else z

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # a state saved before the latent basis existed reads as the identity
        D = self.latent_basis.shape[0]
        for name in ("latent_basis", "latent_basis_inverse"):
            state_dict.setdefault(prefix + name, torch.eye(D))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._note_basis()
