"""The Level II PersonaX model (its amortized guide: :mod:`pyro_personax.models.guide`).

Sites and plates (public API)
-----------------------------
- ``"edges"``: ``(D, D)`` global graph sample (``[i, j]`` = i -> j, see
  :mod:`pyro_personax.graph`); forbidden entries are 0 and required ones 1, and only
  the free entries are scored.
- ``"sparsity"``, ``"acyclicity"``: global factors.
- plate ``"entity"`` (``dim=-1``, subsampled for minibatches: the likelihood is scaled
  by ``N / B`` by the plate itself).
- ``"z"``: ``(B, D)`` causal latents, in the entity plate.
- ``"eta_<m>"``: ``(B, K_m, e_m)`` per-measurement nuisance of modality ``m`` (absent
  when ``e_m = 0``).
- ``"x_<m>"``: ``(B, K_m, d_m)`` observations of modality ``m``.

The ``K_m`` measurements of a modality are conditionally independent given the
latents: the measurement index is the event dimension of
:class:`~pyro_personax.models.likelihoods.MeasurementSet`, whose log density is the sum
over the *observed* measurements only (missing ones contribute exactly 0). Folding
``k`` into the event keeps ``"entity"`` the only plate, so ``"z"`` is ``(B, D)`` and the
measurement sites are ``(B, K_m, ...)`` with no singleton dimensions.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import numpy as np
import pyro
import torch
from pyro.distributions import Normal
from pyro.nn import PyroModule
from torch import nn

from pyro_personax.graph import acyclicity as _acyclicity
from pyro_personax.graph import count_linear_extensions
from pyro_personax.layout import LatentLayout

from .common import (
    DEFAULT_GRAPH_POSTERIOR,
    DEFAULT_NUISANCE_DIM,
    DEFAULT_SPARSITY,
    GRAPH_POSTERIORS,
    LATENT_TRANSFORMS,
    POSTERIOR_COVARIANCES,
    LatentBasis,
    _block_dim,
    _block_latents,
    _cat,
    _check_call,
    _check_graph_posterior,
    _check_layout_spec,
    _graph_masks,
    _graph_plate,
    _kl_scale,
    _prior_logits,
    _resolve_nuisance,
    check_sparsity,
)
from .edges import PairwiseEdges
from .latent_flow import DAGFlowLatent, Mechanisms, MonotoneNoiseFlow, frozen
from .likelihoods import MeasurementSet
from .networks import GroupedMLP, MaskedDecoder
from .order_graph import (
    CausalOrder,
    ColumnFactor,
    EdgesGivenOrder,
)
from .spec import ModalitySpec, ModelSpec

__all__ = [
    "PersonaXModel",
    "DEFAULT_SPARSITY",
    "DEFAULT_NUISANCE_DIM",
    "POSTERIOR_COVARIANCES",
    "GRAPH_POSTERIORS",
    "DEFAULT_GRAPH_POSTERIOR",
    "check_sparsity",
]

#: Largest tier for which the prior carries the exact linear-extension correction.
MAX_LINEAR_EXTENSION_TIER = 20


def _decoder(layout: LatentLayout, m: ModalitySpec, in_dim: int, out_dim: int, hidden_dim: int, layers: int):
    """The decoder of modality ``m``: a :class:`GroupedMLP`, or a :class:`MaskedDecoder` under a measurement map.

    Outputs the likelihood declares latent-only (``latent_only_outputs``) get their own
    group, which reads the latents and not the nuisance. A masked group reads the columns
    of its latents among :meth:`LatentLayout.decoder_inputs` and every nuisance column.
    """
    inputs = layout.decoder_inputs(m.name)
    lat_dim = len(inputs)
    latent_only = [int(o) for o in m.likelihood_object.latent_only_outputs(m)]
    if latent_only and in_dim > lat_dim:
        rest = [o for o in range(out_dim) if o not in set(latent_only)]
        groups = [(list(range(lat_dim)), latent_only), (list(range(in_dim)), rest)]
        return MaskedDecoder(m.num_measurements, groups, hidden_dim, num_layers=layers)
    if m.name not in layout.measurement_map:
        return GroupedMLP(m.num_measurements, in_dim, hidden_dim, out_dim, num_layers=layers)
    position = {int(j): c for c, j in enumerate(inputs)}
    groups = [
        ([position[int(j)] for j in group_inputs] + list(range(lat_dim, in_dim)), list(features))
        for features, group_inputs in layout.decoder_groups(m.name)
    ]
    return MaskedDecoder(m.num_measurements, groups, hidden_dim, num_layers=layers)


# ---------------------------------------------------------------------- model
class PersonaXModel(LatentBasis, PyroModule):
    """Generative model of PersonaX Level II (multimodal, multi-measurement CRL).

    ::

        pi ~ CausalOrder(0; tiers, required)      # "order": uniform within the tiers
        G | pi ~ EdgesGivenOrder(logit p0; pi)    # "edges": Bernoulli(p0) per free pair pi allows
        factor -log #linear_extensions(G)         # "linear_extensions": p(G) ∝ p0^|E| (1-p0)^(P-|E|)
        factor -lambda * |G|_1                    # "sparsity"; default lambda = k/2 log N (BIC)
        factor -(alpha h(G) + rho/2 h(G)^2)       # "acyclicity", h = tr exp(G o G) - D (0 on a DAG)
        for n in entity plate:
            z_n ~ p(z | G)                         # DAGFlowLatent: z_j = f_j(G[:, j] * z) + e^(s_j) tau_j(eps_j)
            for each modality m, measurement k:
                eta_nmk ~ N(0, I_e)                # "eta_<m>", per-measurement nuisance
                x_nmk ~ p(x | dec_mk(s_n, z_nm, eta_nmk))   # "x_<m>", learned scales; missing masked

    ``s_n`` is the shared block of ``z_n``, ``z_nm`` the block of modality ``m``. The structural equations hold
    for ``(z - latent_loc) / latent_scale`` (0 and 1 in training, then the moments of the latents the graph stage
    fits, :meth:`standardise_latents`): the likelihood leaves each latent's scale free and the mechanisms assume
    unit scale. ``s_j = s_j(G[:, j] * z)``, a log noise scale per parent set, is learned with ``mechanism="mlp"``
    and is 0 otherwise (additive noise). The mechanisms are point estimates (an edge that fits noise loses
    nothing in the likelihood); ``lambda = k/2 log N`` (``k`` parameters per edge) is BIC's Occam factor.
    **What the data can and cannot decide.** The decoders read ``(s_n, z_nm)`` only, so an
    edge whose parent every decoder of its child reads (one block, or a shared parent;
    :meth:`~pyro_personax.layout.LatentLayout.absorbable_mask`) is not fixed by the
    likelihood: ``z_j -> z_j - g(z_i)`` with the decoders composed with the inverse changes
    only its mechanism. Only cross-modal edges
    (:meth:`~pyro_personax.layout.LatentLayout.identified_mask`) are identified, under Sun
    et al.'s (ICLR 2025) Condition 4.3: a single latent only when every mixing inside its
    block would add cross-modal edges, so a modality latent with no cross-modal neighbour is
    not pinned. The other edges, and orientations that neither conditional independences nor
    the noise model fix, follow the prior and the fit's start. Under a layout's optional
    measurement map each feature group has its own decoder of its latents, which decides the
    within-block edges the groups separate. The basis inside a block is decided only through
    ``p(z | G)``; the graph stage searches it (:mod:`pyro_personax.inference.basis`) and
    sets the map ``T`` (:attr:`latent_basis`; the decoders read ``T^-1 z``, the likelihood
    is unchanged).

    **Graph prior** (``graph_posterior="order"``, the default): a causal order ``pi``,
    uniform among the orders that put lower tiers first
    (:func:`~pyro_personax.graph.order_tiers`: the strongly connected components of
    the allowed edges, e.g. the shared block first when ``shared_is_root``) and every
    required edge's parent before its child, then independent ``Bernoulli(p0)`` edges on
    the free pairs the order allows (:mod:`~pyro_personax.models.order_graph`): every
    graph is a DAG. A graph with ``L(G)`` topological orders is reached through ``L(G)``
    orders; the factor ``-log L(G)`` (``L`` counted within tiers, none for a tier over
    ``MAX_LINEAR_EXTENSION_TIER`` = 20 latents) removes that bias, so the implied prior is
    ``p(G) ∝ p0^|E| (1 - p0)^(P - |E|)`` over the allowed DAGs (``P`` free pairs) when
    every pair inside a tier is free both ways and none is required (otherwise a small
    order-dependent weight remains). ``graph_posterior="pairwise"``: independent
    ``Bernoulli(edge_prior)`` free edges with no two-cycle
    (:class:`~pyro_personax.models.edges.PairwiseEdges`); only the trainer's acyclicity
    factor rules out longer cycles. Likelihoods: any registered one; Normal (learned scale per
    measurement and feature), Bernoulli, a tabular row and a tinted image (:mod:`~pyro_personax.models.tinted`).

    Parameters
    ----------
    layout
        :class:`~pyro_personax.layout.LatentLayout`; its modalities must equal the data's.
    spec
        :class:`~pyro_personax.models.spec.ModelSpec` of the data.
    mechanism
        ``"mlp"``, ``"mlp_additive"`` (``s_j = 0``) or ``"linear"``
        (:class:`~pyro_personax.models.latent_flow.Mechanisms`).
    mechanism_hidden_dim
        Hidden width of each node's network.
    noise_flow
        ``"spline"``, ``"parent_spline"``, ``"affine"`` or ``"identity"`` (:class:`MonotoneNoiseFlow`).
    latent_transform
        ``"identity"`` (default, additive noise) or ``"spline"``: ``z_j = h_j(y_j)``, a learned
        monotone map after the structural equations (:class:`DAGFlowLatent` ``output_flow``),
        so the graph score ignores the monotone freedom the measurements leave in each latent.
    spline_bins, spline_bound
        Spline settings of the noise flow and of the latent transform.
    nuisance_dim
        Size ``e`` of every measurement's nuisance (an int applies to measurement
        modalities, tabular ones get 0), or a mapping modality -> size; as the guide's.
    decoder_hidden_dim, decoder_layers
        Width and depth of the per-measurement decoders.
    edge_prior
        Prior inclusion probability ``p0`` of every free edge (before excluding two-cycles).
    cyclic_logdet
        Score a cyclic edge sample with the change of variables ``log |det(I - J)|`` (0 under a DAG), so that
        cycles do not score higher than acyclic graphs (pairwise posterior only; order-based graphs are DAGs).
    graph_posterior
        ``"order"`` (causal order then edges; every graph a DAG) or ``"pairwise"`` (per-pair states, acyclicity
        by the augmented Lagrangian). Must equal the guide's.
    name
        Prefix of the parameter names (keep model and guide names distinct).

    Examples
    --------
    >>> import numpy as np
    >>> from pyro_personax.data import MultiModalData
    >>> from pyro_personax.layout import LatentLayout
    >>> data = MultiModalData({"face": np.random.default_rng(0).normal(size=(20, 2, 3))})
    >>> layout = LatentLayout(0, {"face": 2})
    >>> model = PersonaXModel(layout, ModelSpec.from_data(data), mechanism="linear")
    >>> model.layout.names
    ('face_1', 'face_2')
    """

    def __init__(
        self,
        layout: LatentLayout,
        spec: ModelSpec,
        *,
        mechanism: str = "mlp",
        mechanism_hidden_dim: int = 16,
        noise_flow: str = "spline",
        latent_transform: str = "identity",
        spline_bins: int = 8,
        spline_bound: float = 3.0,
        nuisance_dim: int | Mapping[str, int] = DEFAULT_NUISANCE_DIM,
        decoder_hidden_dim: int = 64,
        decoder_layers: int = 2,
        edge_prior: float = 0.2,
        cyclic_logdet: bool = True,
        graph_posterior: str = DEFAULT_GRAPH_POSTERIOR,
        name: str = "personax_model",
    ):
        super().__init__(name=name)
        _check_layout_spec(layout, spec)
        if not 0.0 < edge_prior < 1.0:
            raise ValueError(f"edge_prior must be in (0, 1); found {edge_prior}")
        self.layout, self.spec, self.edge_prior = layout, spec, float(edge_prior)
        self.graph_posterior = _check_graph_posterior(graph_posterior)
        self.cyclic_logdet = bool(cyclic_logdet) and self.graph_posterior == "pairwise"
        self.nuisance_dims = _resolve_nuisance(spec, nuisance_dim)
        D = layout.latent_dim
        self.mechanisms = Mechanisms(D, mechanism, hidden_dim=mechanism_hidden_dim)
        self.noise_flow = MonotoneNoiseFlow(D, noise_flow, count_bins=spline_bins, bound=spline_bound)
        if latent_transform not in LATENT_TRANSFORMS:
            raise ValueError(f"latent_transform: expected one of {LATENT_TRANSFORMS}; found {latent_transform!r}")
        self.latent_transform = latent_transform
        self.output_flow = (
            MonotoneNoiseFlow(D, "spline", count_bins=spline_bins, bound=spline_bound, affine=False)
            if latent_transform == "spline" else None
        )
        _graph_masks(self, layout)
        self.register_buffer("prior_logits", _prior_logits(self.free_mask, self.required_mask, self.edge_prior))
        # p(z | G) holds for (z - latent_loc) / latent_scale (0 and 1 until standardise_latents)
        self.register_buffer("latent_loc", torch.zeros(D))
        self.register_buffer("latent_scale", torch.ones(D))
        self._init_latent_basis(D)  # decoders read T^-1 z (identity until the graph stage sets T)
        self._edge_prior_logit = math.log(self.edge_prior) - math.log1p(-self.edge_prior)
        tiers = self.tiers.numpy()
        # the tiers of the linear-extension count, or None where a tier is too large for it
        self._linext_tiers = tiers if np.bincount(tiers).max() <= MAX_LINEAR_EXTENSION_TIER else None
        self._linext_cache: dict[bytes, float] = {}
        self._mechanisms_fixed = False
        self.decoder_hidden_dim, self.decoder_layers = int(decoder_hidden_dim), int(decoder_layers)
        self.decoders = nn.ModuleDict()
        self.raw_scales = nn.ParameterDict()  # the likelihoods' extra parameters (scales)
        for m in spec.modalities:
            in_dim = _block_dim(layout, m.name) + self.nuisance_dims[m.name]
            if in_dim == 0:
                raise ValueError(
                    f"modality {m.name!r} has no latent input: shared_dim, its block size and nuisance_dim are all 0"
                )
            lik = m.likelihood_object
            self.decoders[m.name] = self.make_decoder(m, in_dim, lik.param_dim(m))
            parameter = lik.make_parameter(m)
            if parameter is not None:
                self.raw_scales[m.name] = parameter

    # ------------------------------------------------------------------ factory hooks
    def make_decoder(self, modality: ModalitySpec, in_dim: int, out_dim: int) -> nn.Module:
        """The decoder of ``modality``: ``(..., K, in_dim) -> (..., K, out_dim)``; a subclass may override it.

        Its input is the latents the modality reads (shared block first, then its own
        block, :meth:`~pyro_personax.layout.LatentLayout.decoder_inputs`) concatenated
        with the measurement's nuisance ``eta``; its output is what the modality's
        likelihood takes (:meth:`~pyro_personax.models.likelihoods.Likelihood.param_dim`).
        ``K`` is ``modality.num_measurements``. Default: a :class:`GroupedMLP` with one
        set of weights per measurement (a :class:`MaskedDecoder` under a measurement map).
        """
        return _decoder(self.layout, modality, in_dim, out_dim, self.decoder_hidden_dim, self.decoder_layers)

    # ------------------------------------------------------------------ graph pieces
    def edge_weights(self, edges: torch.Tensor) -> torch.Tensor:
        """Effective adjacency ``(..., D, D)``: free entries of ``edges``, required 1, forbidden 0.

        This is the graph the mechanisms see and the one scored by the sparsity and
        acyclicity factors.
        """
        free = self.free_mask.to(device=edges.device)
        required = self.required_mask.to(device=edges.device, dtype=edges.dtype)
        return torch.where(free, edges, required)

    def acyclicity(self, edges: torch.Tensor) -> torch.Tensor:
        """``h(edge_weights(edges))``, shape ``(...)`` (0 exactly on DAGs)."""
        return _acyclicity(self.edge_weights(edges))

    def latent_distribution(self, edges: torch.Tensor) -> DAGFlowLatent:
        """``p(z | G)`` for edges ``(..., D, D)``: a :class:`DAGFlowLatent` of batch shape ``(...)``.

        Inside :meth:`mechanisms_held_fixed` its mechanisms and noise flows pass no
        gradient to their parameters (only to ``z``).
        """
        mech, flow, out = self.mechanisms, self.noise_flow, self.output_flow
        if self._mechanisms_fixed:
            mech, flow = frozen(mech), frozen(flow)
            out = None if out is None else frozen(out)
        return DAGFlowLatent(self.edge_weights(edges), mech, flow, self.cyclic_logdet, out,
                             (self.latent_loc, self.latent_scale))

    @torch.no_grad()
    def standardise_latents(self, z: torch.Tensor) -> None:
        """Make ``p(z | G)`` read the latents standardised by their mean and standard deviation in ``z``.

        The likelihood and the guide do not change with the scale of a latent (a decoder
        can undo any scale), so training can leave latents of very different scales; the
        mechanisms' networks and step sizes assume unit scale. After this call the
        structural equations hold for ``(z - mean) / sd`` (:class:`DAGFlowLatent`
        ``standardise``); the graph is unchanged by such a map, but the mechanisms and
        noise flows fitted before it no longer fit and must be fitted again (as the
        graph stage does, :func:`~pyro_personax.inference.refine.refine_graph`).

        Parameters
        ----------
        z
            Latents ``(N, D)`` (for example the posterior means of the training rows),
            ``N >= 2``.

        Raises
        ------
        ValueError
            ``z`` is not ``(N, D)`` with ``N >= 2``, or a latent has no spread or a
            non-finite value.
        """
        D = self.layout.latent_dim
        if z.dim() != 2 or z.shape[1] != D or z.shape[0] < 2:
            raise ValueError(f"z: expected shape (N >= 2, {D}); found {tuple(z.shape)}")
        loc, scale = z.mean(0), z.std(0)
        bad = ~(torch.isfinite(loc) & torch.isfinite(scale) & (scale > 0))
        if bad.any():
            names = [self.layout.names[j] for j in torch.nonzero(bad).flatten().tolist()]
            raise ValueError(f"z: latents {names} have no spread or a non-finite value; cannot standardise them")
        self.latent_loc.copy_(loc.to(self.latent_loc))
        self.latent_scale.copy_(scale.to(self.latent_scale))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # states saved before the latent standardisation existed read as loc 0, scale 1
        for name, fill in (("latent_loc", self.latent_loc.new_zeros), ("latent_scale", self.latent_scale.new_ones)):
            state_dict.setdefault(prefix + name, fill(self.latent_loc.shape))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def mechanism_parameters(self) -> list[nn.Parameter]:
        """The parameters of ``p(z | G)`` other than the graph: mechanisms, noise flows, output map."""
        modules = [self.mechanisms, self.noise_flow] + ([self.output_flow] if self.output_flow is not None else [])
        return [p for module in modules for p in module.parameters()]

    @contextlib.contextmanager
    def mechanisms_held_fixed(self):
        """Context in which ``p(z | G)`` gives no gradient to the mechanisms and noise flows.

        Used when they are fitted by another criterion (random parent sets, see
        :class:`~pyro_personax.inference.graph_elbo.GraphParticleELBO`).
        """
        before, self._mechanisms_fixed = self._mechanisms_fixed, True
        try:
            yield self
        finally:
            self._mechanisms_fixed = before

    @torch.no_grad()
    def mechanism_strength(self, z: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """Mean ``|d f_j / d y_i|`` over rows of ``z (N, D)`` (``y = h^{-1}(z)``) under ``edges (D, D)``; ``(D, D)``."""
        y = self.latent_distribution(edges).structural(z)[0]
        return self.mechanisms.strength(y, self.edge_weights(edges))

    def edge_penalty(self, sparsity: float | str, num_entities: int) -> float:
        """Weight ``lambda`` of the L1 edge factor: ``sparsity`` itself, or ``"bic"``.

        ``"bic"``: ``k / 2 * log(num_entities)`` with ``k`` =
        :attr:`Mechanisms.effective_params_per_edge` (1 linear; for a network the effective
        number of parameters, measured by simulation under the null).
        """
        if check_sparsity(sparsity) == "bic":
            return 0.5 * self.mechanisms.effective_params_per_edge * math.log(max(num_entities, 1))
        return float(sparsity)

    def edge_log_weight(self, sparsity: float | str, num_entities: int) -> float:
        """Log weight of one free edge in :meth:`graph_log_prior`: ``log(p0 / (1 - p0)) - lambda``."""
        return self._edge_prior_logit - self.edge_penalty(sparsity, num_entities)

    def edge_prior_distribution(self) -> PairwiseEdges:
        """The pairwise graph prior (a :class:`PairwiseEdges` over ``(D, D)`` graphs)."""
        return PairwiseEdges(self.prior_logits)

    def order_prior_distribution(self) -> CausalOrder:
        """``p(pi)``: uniform choice among the available latents at every position."""
        return CausalOrder(
            self.free_mask.new_zeros(self.free_mask.shape[-1], dtype=torch.get_default_dtype()),
            self.tiers,
            self.required_mask,
        )

    def edges_given_order(self, order: torch.Tensor) -> EdgesGivenOrder:
        """``p(G | pi)``: ``Bernoulli(edge_prior)`` on the free pairs that ``order`` allows."""
        logits = torch.full(self.free_mask.shape, self._edge_prior_logit, device=self.free_mask.device)
        return EdgesGivenOrder(logits, order, self.free_mask, self.required_mask)

    def linear_extension_correction(self, edges: torch.Tensor) -> torch.Tensor:
        """``-log L(G)`` per graph, ``L`` = topological orders of ``G`` within the tiers; ``(...)``.

        0 when a tier has more than ``MAX_LINEAR_EXTENSION_TIER`` latents (no correction).
        """
        tiers = self._linext_tiers
        if tiers is None:
            return edges.new_zeros(edges.shape[:-2])
        flat = edges.detach().reshape(-1, *edges.shape[-2:]).cpu().numpy() != 0
        out = []
        for g in flat:
            key = g.tobytes()
            if key not in self._linext_cache:
                if len(self._linext_cache) > 100_000:
                    self._linext_cache.clear()
                self._linext_cache[key] = -math.log(count_linear_extensions(g, tiers))
            out.append(self._linext_cache[key])
        return torch.tensor(out, dtype=edges.dtype, device=edges.device).reshape(edges.shape[:-2])

    def sample_graph(self) -> torch.Tensor:
        """The graph sites of the generative story (call inside the model); returns ``edges``.

        Order posterior: ``"order"`` and ``"edges"`` in the ``"graphs"`` plate, and the
        ``"linear_extensions"`` factor; pairwise: the ``"edges"`` site.
        """
        if self.graph_posterior == "pairwise":
            return pyro.sample("edges", self.edge_prior_distribution())
        order = pyro.sample("order", self.order_prior_distribution())
        edges = pyro.sample("edges", self.edges_given_order(order))
        pyro.factor("linear_extensions", self.linear_extension_correction(edges))
        return edges

    def graph_sites(
        self, num_entities: int, *, sparsity: float | str = DEFAULT_SPARSITY, alpha: float = 0.0, rho: float = 1.0
    ) -> torch.Tensor:
        """The graph part of the generative story: graph sites and the graph factors.

        Samples the graph (:meth:`sample_graph`) and adds the ``"sparsity"`` and
        ``"acyclicity"`` factors; returns the effective adjacency
        (:meth:`edge_weights`). Call it inside the model (and inside the ``"graphs"``
        plate for the order posterior).
        """
        G = self.edge_weights(self.sample_graph())
        weight = self.edge_penalty(sparsity, num_entities)
        per_child = -weight * (G * self.free_mask.to(G.dtype)).abs().sum(-2)  # (..., D)
        unit = ColumnFactor(per_child)
        pyro.sample("sparsity", unit, obs=unit.sample(), infer={"is_auxiliary": True})
        h = _acyclicity(G)
        pyro.factor("acyclicity", -(alpha * h + 0.5 * rho * h * h))
        return G

    def graph_log_prior(
        self, edges: torch.Tensor, sparsity: float | str = DEFAULT_SPARSITY, num_entities: int = 1
    ) -> torch.Tensor:
        """Log prior weight of 0/1 DAGs ``(..., D, D)`` up to a constant, with the sparsity factor.

        ``|E| log(p0 / (1 - p0)) - lambda |E|`` over the free edges (``-inf`` for a graph
        that breaks a mask): the prior the order posterior targets (see the class
        docstring) times the L1 factor. Used by the exact graph posterior.
        """
        G = edges.to(torch.get_default_dtype())
        free = self.free_mask.to(G)
        count = (G * free).sum((-2, -1))
        lp = count * self.edge_log_weight(sparsity, num_entities)
        breaks = ((G != 0) & ~self.free_mask & ~self.required_mask).flatten(-2).any(-1)
        breaks = breaks | ((G == 0) & self.required_mask).flatten(-2).any(-1)
        return torch.where(breaks, torch.full_like(lp, -math.inf), lp)

    # ------------------------------------------------------------------ likelihood
    def _decode(self, mod: str, z: torch.Tensor, eta: torch.Tensor | None) -> torch.Tensor:
        """Decoder output ``(..., B, K, param_dim)`` of modality ``mod``."""
        lat = _block_latents(self.layout, self._to_trained_basis(z), mod, self.spec[mod].num_measurements)
        return self.decoders[mod](_cat([lat, eta]))

    def decoded_mean(self, mod: str, z: torch.Tensor, eta: torch.Tensor | None = None) -> torch.Tensor:
        """Mean measurement ``(..., B, K, d)`` of modality ``mod`` given ``z (..., B, D)`` and ``eta (..., B, K, e)``.

        ``eta`` ``None`` with a nuisance: its prior mean, 0. See
        :meth:`~pyro_personax.models.likelihoods.Likelihood.mean` (a tabular row is its
        expected encoding, ``Q`` wide).
        """
        m = self.spec[mod]
        e = self.nuisance_dims[mod]
        if eta is None and e > 0:
            eta = z.new_zeros(z.shape[:-1] + (m.num_measurements, e))
        return m.likelihood_object.mean(self._decode(mod, z, eta), self.raw_scales.get(mod), m)

    def likelihood(self, mod: str, z: torch.Tensor, eta: torch.Tensor | None, t) -> MeasurementSet:
        """``p(x_m | s, z_m, eta_m)`` of modality ``mod`` as a :class:`MeasurementSet`.

        ``z (..., B, D)``, ``eta (..., B, K, e)`` or ``None``; ``t`` the modality's
        :class:`~pyro_personax.data.multimodal.ModalityTensors`. Event shape ``(K, d)``.
        """
        m = self.spec[mod]
        base = m.likelihood_object.distribution(self._decode(mod, z, eta), self.raw_scales.get(mod), m, t)
        return MeasurementSet(base, t[1])

    # ------------------------------------------------------------------ the model
    def forward(
        self,
        batch,
        *,
        num_entities: int,
        subsample: torch.Tensor | None = None,
        alpha: float = 0.0,
        rho: float = 1.0,
        sparsity: float | str = DEFAULT_SPARSITY,
        temperature: float = 0.5,
        kl_weight: float = 1.0,
        observe: bool = True,
        graph_particles: int = 1,
    ):
        """Run the generative story (see the class docstring); returns ``z``.

        Parameters
        ----------
        batch
            Modality -> ``ModalityTensors`` with ``B`` rows (the ``subsample`` rows, or
            all ``num_entities`` rows when ``subsample`` is ``None``).
        num_entities
            ``N``, the size of the entity plate.
        subsample
            LongTensor ``(B,)`` of entity indices, or ``None``.
        alpha, rho
            Augmented-Lagrangian weights of the acyclicity factor.
        sparsity
            Weight of the L1 factor on the free edges, or ``"bic"`` (see :meth:`edge_penalty`).
        temperature
            Edge relaxation temperature (used by the guide; accepted here for a shared signature).
        kl_weight
            Scale of the ``z`` and ``eta_*`` sites (0 masks them).
        observe
            ``False``: the ``x_<m>`` sites are sampled, not observed.
        graph_particles
            Order posterior: size ``K`` of the ``"graphs"`` plate (``dim=-2``) that holds
            ``order``, ``edges``, the graph factors and ``z``'s density, one graph per
            particle (the guide draws ``K`` graphs; ``z`` itself does not depend on them).
        """
        B = _check_call(self, batch, num_entities, subsample, temperature, kl_weight)
        like = next(iter(batch.values()))[0]
        entities = pyro.plate("entity", num_entities, subsample=subsample, dim=-1)
        with _graph_plate(self.graph_posterior, graph_particles):
            G = self.graph_sites(num_entities, sparsity=sparsity, alpha=alpha, rho=rho)
            with entities:
                p_z = self.latent_distribution(G)
                with _kl_scale(kl_weight):
                    z = pyro.sample("z", p_z.expand(torch.broadcast_shapes(p_z.batch_shape, (B,))))
        with entities:
            for m in self.spec.modalities:
                t, e = batch[m.name], self.nuisance_dims[m.name]
                eta = None
                if e > 0:
                    prior = Normal(like.new_zeros(B, m.num_measurements, e), 1.0).to_event(1)
                    with _kl_scale(kl_weight):
                        eta = pyro.sample(f"eta_{m.name}", MeasurementSet(prior, t[1]))
                pyro.sample(f"x_{m.name}", self.likelihood(m.name, z, eta, t), obs=t[0] if observe else None)
        return z
