"""The amortized guide of the Level II model: ``q(G)`` and ``q(z, eta | x)``.

Its sites and plates mirror :class:`~pyro_personax.models.PersonaXModel`'s (see
:mod:`pyro_personax.models.personax`): ``"order"`` / ``"edges"`` (or the pairwise
``"edges"``), and in the ``"entity"`` plate ``"z"`` and ``"eta_<m>"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyro
import torch
import torch.nn.functional as F
from pyro.distributions import MultivariateNormal, Normal
from pyro.nn import PyroModule
from torch import nn

from pyro_personax.layout import LatentLayout

from .common import (
    DEFAULT_GRAPH_POSTERIOR,
    DEFAULT_NUISANCE_DIM,
    DEFAULT_POSTERIOR_COVARIANCE,
    DEFAULT_SPARSITY,
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
)
from .edges import IMPOSSIBLE, PairwiseEdges
from .experts import product_of_experts, product_of_experts_full
from .likelihoods import MeasurementSet
from .networks import GroupedMLP
from .order_graph import CausalOrder, EdgesGivenOrder, order_graph_edge_probs, sample_order_graph
from .spec import ModalitySpec, ModelSpec

__all__ = ["PersonaXGuide", "draw_latents"]


def draw_latents(q, eps: torch.Tensor) -> torch.Tensor:
    """Reparameterised draws of ``q(z | x)`` from standard normal noise.

    Parameters
    ----------
    q
        A :meth:`PersonaXGuide.latent_posterior_distribution`: batch shape ``(N,)``, event
        shape ``(D,)``, a ``MultivariateNormal`` or a diagonal ``Normal(...).to_event(1)``.
    eps
        ``(..., N, D)`` standard normal noise on ``q``'s device.

    Returns
    -------
    torch.Tensor
        ``(..., N, D)``: ``loc + L eps`` with ``L`` the Cholesky factor of the covariance
        (the scales, for a diagonal ``q``).
    """
    if isinstance(q, MultivariateNormal):
        return q.loc + (q.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
    return q.mean + q.stddev * eps


class PersonaXGuide(LatentBasis, PyroModule):
    """Amortized variational posterior for :class:`PersonaXModel`.

    ::

        q(pi)           = CausalOrder(theta; tiers, required)   # "order": Plackett-Luce
        q(G | pi)       = EdgesGivenOrder(phi; pi)     # "edges": Bernoulli(sigmoid(phi_ij)) if pi allows;
                                                       # phi symmetric: pi orients each adjacency
        q(z_n | x_n)    = N(PoE loc, PoE covariance)   # product of per-measurement experts
        q(eta_nmk | x_nmk, s_n, z_nm) = N(enc_mk(...))  # per measurement

    The graph posterior draws ``graph_particles`` graphs at a time (the ``"graphs"``
    plate); its edge marginals are exact, ``P(i -> j) = sigmoid(theta_i - theta_j)
    sigmoid(phi_ij)`` inside a tier (:meth:`edge_probabilities`). With
    ``graph_posterior="pairwise"``, ``q(G) = PairwiseEdges(logits; temperature)`` (per
    pair ``i -> j``, ``j -> i`` or none; one graph per call).

    Each measurement encoder (one MLP per measurement) outputs a Gaussian expert for
    the shared block and for its modality's block. The experts of one modality's
    measurements, with a standard-normal prior expert, are combined by the
    precision-weighted product of experts; the shared block pools the experts of all
    measurements of all modalities. A missing measurement has precision 0.

    With ``posterior_covariance="diagonal"`` every expert, and so ``q(z | x)``, has a
    diagonal covariance. With ``"full"`` (the default) each expert has a full
    precision matrix over its ``(s, z_m)`` coordinates (``Lambda_k = L_k L_k^T``, ``L_k``
    lower triangular from the encoder), and ``q(z | x)`` is a multivariate normal whose
    precision is the sum of the experts' (:func:`product_of_experts_full`): latents of
    one block, and of the shared and a modality block, may be correlated a posteriori.
    A mean-field posterior favours latent coordinates whose decoder Jacobian columns
    are orthogonal and independent a posteriori; the full form removes that pull, at
    the cost of ``c (c - 1) / 2`` more encoder outputs per measurement
    (``c = S + D_m``) and a ``D x D`` Cholesky factorisation per entity.

    Parameters
    ----------
    layout, spec
        As for :class:`PersonaXModel`.
    encoder_hidden_dim, encoder_layers
        Width and depth of the per-measurement encoders.
    nuisance_dim
        As for :class:`PersonaXModel` (must be equal).
    init_edge_logit
        Order posterior: initial ``phi`` of every free edge (0: an edge the order allows
        starts at probability 1/2). Pairwise: initial logit of the two edge states of
        every free pair, against 0 for "no edge" (0: the three states start equally
        likely).
    graph_posterior
        ``"order"`` or ``"pairwise"`` (as for :class:`PersonaXModel`; must be equal).
    posterior_covariance
        ``"full"`` (default: correlated latents a posteriori, see above) or
        ``"diagonal"`` (mean-field ``q(z | x)``).
    name
        Prefix of the parameter names.

    Examples
    --------
    >>> import numpy as np
    >>> from pyro_personax.data import MultiModalData
    >>> from pyro_personax.layout import LatentLayout
    >>> data = MultiModalData({"face": np.random.default_rng(0).normal(size=(20, 2, 3))})
    >>> guide = PersonaXGuide(LatentLayout(0, {"face": 2}), ModelSpec.from_data(data))
    >>> loc, scale = guide.latent_posterior(data.to_tensors())
    >>> tuple(loc.shape), tuple(guide.edge_probabilities().shape)
    ((20, 2), (2, 2))
    """

    def __init__(
        self,
        layout: LatentLayout,
        spec: ModelSpec,
        *,
        encoder_hidden_dim: int = 64,
        encoder_layers: int = 2,
        nuisance_dim: int | Mapping[str, int] = DEFAULT_NUISANCE_DIM,
        init_edge_logit: float = 0.0,
        posterior_covariance: str = DEFAULT_POSTERIOR_COVARIANCE,
        graph_posterior: str = DEFAULT_GRAPH_POSTERIOR,
        name: str = "personax_guide",
    ):
        super().__init__(name=name)
        _check_layout_spec(layout, spec)
        if posterior_covariance not in POSTERIOR_COVARIANCES:
            raise ValueError(
                f"posterior_covariance: expected one of {POSTERIOR_COVARIANCES}; found {posterior_covariance!r}"
            )
        self.layout, self.spec = layout, spec
        self.posterior_covariance = posterior_covariance
        self.encoder_hidden_dim, self.encoder_layers = int(encoder_hidden_dim), int(encoder_layers)
        self.nuisance_dims = _resolve_nuisance(spec, nuisance_dim)
        self.graph_posterior = _check_graph_posterior(graph_posterior)
        _graph_masks(self, layout)
        D = layout.latent_dim
        self._init_latent_basis(D)  # q(z | x) is the experts' posterior mapped by T (identity until set)
        if self.graph_posterior == "order":
            self.order_logits = nn.Parameter(torch.zeros(D))  # theta: Plackett-Luce scores
            self.edge_logits = nn.Parameter(torch.full((D, D), float(init_edge_logit)))  # phi[i, j]
        else:
            allowed = _prior_logits(self.free_mask, self.required_mask, 0.5) > IMPOSSIBLE / 2  # (P, 3)
            self.register_buffer("pair_allowed", allowed)
            init = torch.zeros(allowed.shape)
            init[:, :2] = float(init_edge_logit)
            self.pair_logits = nn.Parameter(init)  # [pair, state]: i -> j, j -> i, none
        self.encoders = nn.ModuleDict()
        self.nuisance_encoders = nn.ModuleDict()
        for m in spec.modalities:
            f, b, e = m.likelihood_object.encoder_dim(m), _block_dim(layout, m.name), self.nuisance_dims[m.name]
            if b > 0:
                out = 2 * b + (b * (b - 1) // 2 if posterior_covariance == "full" else 0)
                self.encoders[m.name] = self.make_encoder(m, f, out)
            if e > 0:
                self.nuisance_encoders[m.name] = self.make_encoder(m, f + b, 2 * e)

    def make_encoder(self, modality: ModalitySpec, in_dim: int, out_dim: int) -> nn.Module:
        """An encoder of ``modality``: ``(..., K, in_dim) -> (..., K, out_dim)``; a subclass may override it.

        Called twice per modality: for the latent experts (input: the likelihood's
        :meth:`~pyro_personax.models.likelihoods.Likelihood.encoder_features`; output:
        locations, precisions and, with ``posterior_covariance="full"``, the lower
        Cholesky entries) and, with a nuisance, for ``q(eta)`` (input: the features and
        the block's latents; output: location and raw scale). Default: a
        :class:`GroupedMLP`, one set of weights per measurement.
        """
        return GroupedMLP(
            modality.num_measurements, in_dim, self.encoder_hidden_dim, out_dim, num_layers=self.encoder_layers
        )

    def edge_distribution(self, temperature: float = 1.0) -> PairwiseEdges:
        """Pairwise posterior only: ``q(G)`` as a :class:`PairwiseEdges` (relaxation ``temperature``).

        Forbidden states have probability exactly 0 and required edges exactly 1.
        """
        if self.graph_posterior != "pairwise":
            raise ValueError(
                "edge_distribution: only for graph_posterior='pairwise'; use order_distribution / sample_graphs"
            )
        logits = torch.where(self.pair_allowed, self.pair_logits, torch.full_like(self.pair_logits, IMPOSSIBLE))
        return PairwiseEdges(logits, temperature)

    def order_distribution(self) -> CausalOrder:
        """Order posterior only: ``q(pi)``, a :class:`CausalOrder` with scores ``theta``."""
        return CausalOrder(self.order_logits, self.tiers, self.required_mask)

    def adjacency_logits(self) -> torch.Tensor:
        """Order posterior only: ``phi`` ``(D, D)``, symmetric: one logit per pair of latents.

        Whether ``i`` and ``j`` are adjacent has one probability, ``sigmoid(phi_ij)``, and
        the order orients the edge. When the order of a pair turns, the edge keeps what
        was learned about it, so the order compares orientations of the same skeleton
        instead of locking in the orientation whose edge was trained first.
        """
        return 0.5 * (self.edge_logits + self.edge_logits.transpose(-1, -2))

    def edges_given_order(self, order: torch.Tensor) -> EdgesGivenOrder:
        """Order posterior only: ``q(G | pi)`` for orders ``(..., D)``."""
        return EdgesGivenOrder(self.adjacency_logits(), order, self.free_mask, self.required_mask)

    def graph_parameters(self) -> list[nn.Parameter]:
        """The parameters of ``q(G)`` (held fixed during a trainer's graph warm-up)."""
        if self.graph_posterior == "order":
            return [self.order_logits, self.edge_logits]
        return [self.pair_logits]

    @torch.no_grad()
    def edge_probabilities(self) -> torch.Tensor:
        """Exact posterior edge marginals ``(D, D)`` (``[i, j]`` = q(i -> j)); forbidden 0, required 1.

        This is the one source of edge probabilities: every report of the package uses it.
        """
        if self.graph_posterior == "order":
            return order_graph_edge_probs(
                self.order_distribution(), self.adjacency_logits(), self.free_mask, self.required_mask
            )
        return self.edge_distribution().edge_probs().detach()

    @torch.no_grad()
    def sample_graphs(self, num_samples: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Whole graphs drawn from ``q(G)``: the one graph sampler of the package.

        Parameters
        ----------
        num_samples
            Number of graphs ``S``.
        generator
            A CPU :class:`torch.Generator` (default: the global random state).

        Returns
        -------
        dict
            ``"edges"``: 0/1 adjacencies ``(S, D, D)`` (required edges 1, forbidden 0);
            order posterior also ``"order"`` ``(S, D)``. Condition the model's sites on
            these values to score a draw.
        """
        if self.graph_posterior == "order":
            order, edges = sample_order_graph(
                self.order_distribution(),
                self.adjacency_logits(),
                self.free_mask,
                self.required_mask,
                num_samples,
                generator,
            )
            return {"order": order, "edges": edges}
        return {"edges": self.edge_distribution().sample((num_samples,), generator=generator)}

    def graph_sites(self, temperature: float = 1.0) -> None:
        """The graph sites of ``q(G)`` (call inside the guide, in the ``"graphs"`` plate for the order posterior).

        ``temperature``: the pairwise posterior's relaxation temperature (unused by the
        order posterior).
        """
        if self.graph_posterior == "pairwise":
            pyro.sample("edges", self.edge_distribution(temperature))
            return
        order = pyro.sample("order", self.order_distribution())
        pyro.sample("edges", self.edges_given_order(order))

    def _experts(self, batch):
        """Per-modality encoder features and experts ``(loc, precision, mask)``.

        ``precision`` is ``(B, K, c)`` (diagonal) or ``(B, K, c, c)`` (full), ``c = S + D_m``.
        """
        feats, experts = {}, {}
        for m in self.spec.modalities:
            t = batch[m.name]
            feats[m.name] = m.likelihood_object.encoder_features(m, t)
            if m.name in self.encoders:
                out = self.encoders[m.name](feats[m.name])
                c = _block_dim(self.layout, m.name)
                loc, precision = out[..., :c], F.softplus(out[..., c : 2 * c]) + 1e-4
                if self.posterior_covariance == "full":
                    # L = diag(sqrt(precision)) + strictly lower part: with a zero lower part
                    # the expert equals the diagonal one.
                    rows, cols = torch.tril_indices(c, c, -1, device=out.device)
                    tril = torch.diag_embed(precision.sqrt())
                    lower = out.new_zeros(out.shape[:-1] + (c, c))
                    lower[..., rows, cols] = out[..., 2 * c :]
                    tril = tril + lower
                    precision = tril @ tril.mT
                experts[m.name] = (loc, precision, t[1])
        return feats, experts

    def _posterior_full(self, experts):
        """Full-covariance PoE posterior: ``loc (B, D)`` and precision ``(B, D, D)``.

        Each measurement's expert over ``(s, z_m)`` is embedded in ``D`` coordinates
        (zero precision elsewhere) and all experts are multiplied at once.
        """
        D = self.layout.latent_dim
        locs, precs, masks = [], [], []
        for mod, (loc, prec, mask) in experts.items():
            # the (s, z_m) coordinates, picked the way the decoders pick them from z
            idx = _block_latents(self.layout, torch.arange(D, device=loc.device), mod, 1)[0]
            full_loc = loc.new_zeros(loc.shape[:-1] + (D,))
            full_loc[..., idx] = loc
            full_prec = prec.new_zeros(prec.shape[:-2] + (D, D))
            full_prec[..., idx[:, None], idx] = prec
            locs.append(full_loc), precs.append(full_prec), masks.append(mask)
        return product_of_experts_full(torch.cat(locs, -2), torch.cat(precs, -3), torch.cat(masks, -1))

    def _posterior(self, experts):
        """PoE posterior ``(loc, scale)``, each ``(B, D)``, in layout order (marginal scales)."""
        if self.posterior_covariance == "full" or self._has_basis:
            q = self._distribution(experts)
            return q.mean, q.stddev
        return self._diagonal_posterior(experts)

    def _diagonal_posterior(self, experts):
        """The experts' mean-field PoE posterior ``(loc, scale)``, each ``(B, D)`` (before the latent basis)."""
        S, locs, scales = self.layout.shared_dim, [], []
        if S > 0:
            parts = [(e[0][..., :S], e[1][..., :S], e[2]) for e in experts.values()]
            loc, scale = product_of_experts(*(torch.cat(p, dim=-2 if i < 2 else -1) for i, p in enumerate(zip(*parts))))
            locs.append(loc), scales.append(scale)
        for mod in self.layout.modalities:
            if self.layout.modality_dims[mod] > 0:
                e = experts[mod]
                loc, scale = product_of_experts(e[0][..., S:], e[1][..., S:], e[2])
                locs.append(loc), scales.append(scale)
        return torch.cat(locs, dim=-1), torch.cat(scales, dim=-1)

    def _distribution(self, experts):
        """``q(z | x)`` as a distribution with batch shape ``(B,)`` and event shape ``(D,)``."""
        if self.posterior_covariance == "full":
            loc, precision = self._posterior_full(experts)
            if not self._has_basis:
                return MultivariateNormal(loc, precision_matrix=precision)
            cov = torch.cholesky_inverse(torch.linalg.cholesky(precision.double()))
        else:
            loc, scale = self._diagonal_posterior(experts)
            if not self._has_basis:
                return Normal(loc, scale).to_event(1)
            cov = torch.diag_embed(scale.double().pow(2))
        T = self.latent_basis.double()
        # T cov T^T in double precision: a map with large entries leaves it ill-conditioned in single
        tril = torch.linalg.cholesky(T @ cov @ T.mT).to(loc.dtype)
        return MultivariateNormal(loc @ self.latent_basis.mT, scale_tril=tril)

    @torch.no_grad()
    def latent_posterior(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale)`` of ``q(z | x)``, each ``(N, D)``, for all rows of ``batch`` (no sampling).

        ``scale`` holds the marginal standard deviations; with
        ``posterior_covariance="full"`` use :meth:`latent_posterior_distribution` for the
        correlations.
        """
        self.spec.check_batch(batch)
        return self._posterior(self._experts(batch)[1])

    @torch.no_grad()
    def latent_posterior_distribution(self, batch):
        """``q(z | x)`` for all rows of ``batch``: batch shape ``(N,)``, event shape ``(D,)``.

        A diagonal ``Normal(...).to_event(1)`` or a ``MultivariateNormal``, by
        ``posterior_covariance`` (a ``MultivariateNormal`` in either case once a latent
        basis is set, :meth:`set_latent_basis`); its ``rsample`` / ``log_prob`` are those
        of the guide.
        """
        self.spec.check_batch(batch)
        return self._distribution(self._experts(batch)[1])

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
        """Sample the graph sites, ``z`` and ``eta_*`` (same signature as :meth:`PersonaXModel.forward`)."""
        _check_call(self, batch, num_entities, subsample, temperature, kl_weight)
        with _graph_plate(self.graph_posterior, graph_particles):
            self.graph_sites(temperature)
        feats, experts = self._experts(batch)
        q_z = self._distribution(experts)
        with pyro.plate("entity", num_entities, subsample=subsample, dim=-1):
            with _kl_scale(kl_weight):
                z = pyro.sample("z", q_z)
            for m in self.spec.modalities:
                if m.name not in self.nuisance_encoders:
                    continue
                lat = _block_latents(self.layout, self._to_trained_basis(z), m.name, m.num_measurements)
                eta_loc, raw = self.nuisance_encoders[m.name](_cat([feats[m.name], lat])).chunk(2, dim=-1)
                q = Normal(eta_loc, F.softplus(raw) + 1e-4).to_event(1)
                with _kl_scale(kl_weight):
                    pyro.sample(f"eta_{m.name}", MeasurementSet(q, batch[m.name][1]))
        return z
