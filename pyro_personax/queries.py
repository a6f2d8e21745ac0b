"""Posterior queries of a fitted :class:`~pyro_personax.PersonaX`: edges, graphs, draws, effects, InferenceData.

:class:`PosteriorQueries` is a mixin of :class:`~pyro_personax.PersonaX`. It reads the
fitted chains through ``self._fitted(name)`` (a :class:`~pyro_personax.inference.FittedChains`,
or a ``RuntimeError`` naming the query before ``fit``), the latent names through
``self.layout``, the model options through ``self.options`` and ``self.mechanism``, the
data of the last fit through ``self._fit_data``, and checks data with
``self._spec_of(data)``. Adjacencies follow :mod:`pyro_personax.graph` (``[i, j]`` =
parent i -> child j); every per-chain and pooled output is in chain 0's latent labels.
"""

from __future__ import annotations

import logging

import networkx as nx
import numpy as np
import pandas as pd
import torch

from pyro_personax.checks import check_int
from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.graph import to_dag, to_networkx
from pyro_personax.identifiability import (
    block_probabilities,
    check_link_direction,
    latent_block_probabilities,
    select_edges,
    unpinned_latents,
)
from pyro_personax.inference import GraphRefinement, fit_graph_given_latents, fit_mechanisms_given_latents
from pyro_personax.models.common import DEFAULT_SPARSITY
from pyro_personax.reading import ReadingGraph, cross_modal_reading, reading_basis, spread_readings, spread_warning

__all__ = ["PosteriorQueries"]

logger = logging.getLogger(__name__)


class PosteriorQueries:
    """Edge probabilities, graphs, posterior draws, interventions and the InferenceData of the fitted chains."""

    def edge_probabilities(self, chain: int | None = None) -> pd.DataFrame:
        """Posterior edge probabilities ``P(i -> j)``.

        Parameters
        ----------
        chain
            One chain, or ``None`` for the mean over chains (pooled). Every chain is
            reported in chain 0's latent labels (:meth:`align_chains`).

        Returns
        -------
        pandas.DataFrame
            ``(D, D)``, index = parent names, columns = child names.
        """
        return self._parent_child_frame(self._fitted("edge_probabilities").edge_probabilities(chain))

    def _parent_child_frame(self, matrix: np.ndarray) -> pd.DataFrame:
        """A ``(D, D)`` matrix as a DataFrame: index ``parent``, columns ``child`` (latent names)."""
        names = list(self.layout.names)
        frame = pd.DataFrame(matrix, index=names, columns=names)
        frame.index.name, frame.columns.name = "parent", "child"
        return frame

    def edge_classes(self) -> pd.DataFrame:
        """The class of every edge (:meth:`~pyro_personax.layout.LatentLayout.edge_classes`).

        Returns
        -------
        pandas.DataFrame
            ``(D, D)`` strings, index = parents, columns = children: ``"cross-modal"``
            (decided by the data) or ``"within-block"``, ``"shared->modality"``,
            ``"within-shared"``, ``"modality->shared"`` (not decided; see
            :mod:`pyro_personax.identifiability`), ``""`` on the diagonal.
        """
        return self._parent_child_frame(self.layout.edge_classes())

    def graph(self, threshold: float = 0.5, chain: int | None = None, edges: str = "identified") -> nx.DiGraph:
        """Thresholded posterior graph, acyclic by construction.

        Edges with ``P > threshold`` are kept and, while a cycle remains, the least
        probable edge on it is dropped (:func:`pyro_personax.graph.to_dag`).

        Parameters
        ----------
        threshold
            Inclusion threshold in ``[0, 1)``.
        chain
            One chain or ``None`` (pooled).
        edges
            ``"identified"`` (default: the cross-modal edges, which the data decide),
            ``"undecided"`` (the others) or ``"all"``
            (:func:`pyro_personax.identifiability.select_edges`).

        Returns
        -------
        networkx.DiGraph
            Nodes = latent names; edge attributes ``"p_edge"`` and ``"edge_class"``.
        """
        probs = select_edges(self.layout, self._fitted("graph").edge_probabilities(chain), edges)
        attrs = {"p_edge": probs, "edge_class": self.layout.edge_classes()}
        return to_networkx(to_dag(probs, threshold), self.layout.names, edge_attrs=attrs)

    def block_graph(self, num_samples: int = 4000, seed: int = 0) -> pd.DataFrame:
        """``P(at least one edge from block A to block B)``, from whole graphs drawn from q(G).

        Pooled over chains (``num_samples`` draws each). Off the diagonal it is decided
        by the data between two modality blocks; see
        :func:`pyro_personax.identifiability.block_probabilities`.

        Returns
        -------
        pandas.DataFrame
            Blocks x blocks, index = parent block, columns = child block.
        """
        return block_probabilities(self.layout, self._pooled_graphs(num_samples, seed))

    def latent_block_graph(self, num_samples: int = 4000, seed: int = 0, direction: str = "either") -> pd.DataFrame:
        """``P(latent i has at least one edge with a latent of block B)``, from whole graphs drawn from q(G).

        Pooled over chains (``num_samples`` draws each), in chain 0's labels; only the
        row latent needs matching across chains. For a pinned modality latent
        (:meth:`unpinned_latents`) and another modality block it is decided by the data
        even where the single edges are not (the partner unpinned, or the direction of
        a lone pair left undecided by the fit), but spurious cross-modal edges raise it for every latent;
        see :func:`pyro_personax.identifiability.latent_block_probabilities`.

        Parameters
        ----------
        num_samples
            Graphs drawn from each chain's ``q(G)``.
        seed
            Seed of the draws.
        direction
            ``"either"``, ``"out"`` (the latent has a child in the block) or ``"in"``.

        Returns
        -------
        pandas.DataFrame
            ``(D, blocks)``, index = latent names, columns = blocks.
        """
        check_link_direction(direction)
        return latent_block_probabilities(self.layout, self._pooled_graphs(num_samples, seed), direction)

    def _pooled_graphs(self, num_samples: int, seed: int) -> np.ndarray:
        """``(C * S, D, D)`` whole graphs drawn from every chain's ``q(G)`` (:meth:`sample_posterior`), stacked."""
        draws = self.sample_posterior(num_samples, seed=seed)["edges"]
        return draws.reshape(-1, *draws.shape[-2:])

    def unpinned_latents(self, threshold: float = 0.5) -> list[str]:
        """Modality latents with no cross-modal neighbour in the thresholded graph.

        The necessary part of Sun et al.'s Condition 4.3: the data do not pin which
        latent of its block such a latent is (:func:`pyro_personax.identifiability.unpinned_latents`).
        """
        return unpinned_latents(self.layout, self._fitted("unpinned_latents").edge_probabilities(), threshold)

    def cross_modal_reading(self, data: MultiModalData, chain: int = 0, seed: int = 0, **options):
        """The identified part of each modality block, read from the posterior means of ``data``.

        :func:`pyro_personax.reading.cross_modal_reading` on
        :meth:`get_latent_representation` ``(N, D)`` of ``chain``: per modality block the
        statistic its latents hand to the other modality blocks, whatever the basis the fit
        left inside the block. ``options`` go to that function (``threshold``, ``steps``,
        ...). Blocks whose latents with a cross-modal parent (pooled posterior,
        ``P > 0.5``) outnumber their reading's dimension are logged as a warning and listed
        in the result's ``spread`` (:func:`pyro_personax.reading.spread_readings`).

        Parameters
        ----------
        data
            Data with the fitted modalities (``N`` rows).
        chain
            Whose encoder gives the posterior means.
        seed
            Seed of the reading's regressions.

        Returns
        -------
        pyro_personax.reading.CrossModalReading
            ``readings`` ``(N, K)`` with ``K`` the summed dimensions ``dims`` of the blocks.
        """
        self._fitted("cross_modal_reading")
        return self._reading_of(np.asarray(self.get_latent_representation(data, chain=chain), dtype=float), seed,
                                **options)

    def _reading_of(self, z: np.ndarray, seed: int, **options):
        """:func:`~pyro_personax.reading.cross_modal_reading` of latents ``z`` ``(N, D)``, its blocks spread over
        several latents of the pooled graph listed and logged (see :meth:`cross_modal_reading`)."""
        reading = cross_modal_reading(z, self.layout, seed=seed, **options)
        reading.spread = spread_readings(reading, self.layout, self.edge_probabilities().to_numpy(dtype=float))
        for block, names in reading.spread.items():
            logger.warning("%s", spread_warning(block, names, reading.dims[block]))
        return reading

    def reading_graph(self, data: MultiModalData, chain: int = 0, seed: int = 0, *, reading=None,
                      settings=None, sparsity: float | str = DEFAULT_SPARSITY, num_fits: int = 1,
                      progress: bool = True):
        """The graph posterior given the latents in the reading basis, where each block's identified part is explicit.

        The posterior means of ``chain`` are re-expressed block by block
        (:func:`pyro_personax.reading.reading_basis`): the block's cross-modal reading and the
        rest of the block made mean-independent of it. A fresh model of the same
        options then has its mechanisms fitted to these latents (standardised) and its
        ``q(G)`` fitted to ``p(G | latents)``, as the graph stage does after SVI
        (:func:`~pyro_personax.inference.fit_mechanisms_given_latents`,
        :func:`~pyro_personax.inference.fit_graph_given_latents`). The model's own graph
        counts the dependence between blocks once per latent it is spread over (see
        :meth:`cross_modal_reading`'s warning); in this basis it runs through the readings,
        so the cross-modal cells other than the readings' are the fit's spurious links.
        The readings are read from the fit's latents: the basis, and so this graph, is a
        two-stage estimate (latents first, graph after) with no uncertainty of the latents.
        The mechanisms are point estimates, and a link whose gain is near the edge charge
        can be kept by one fit of them and dropped by a fit from another start; with
        ``num_fits > 1`` the mechanisms and ``q(G)`` are fitted that many times from
        different starts and the returned posterior is the equal mixture of the fits'
        ``q(G)`` (its edge probabilities the mean of theirs).

        Parameters
        ----------
        data
            Data with the fitted modalities (``N`` rows).
        chain
            Whose posterior means are read.
        seed
            Seed of the reading and the residual regressions; fit ``f`` (from 0) starts its
            model and fits with seed ``seed + f``.
        reading
            A :class:`~pyro_personax.reading.CrossModalReading` of the same latents to use
            (default: :meth:`cross_modal_reading` with ``seed``).
        settings
            :class:`~pyro_personax.inference.GraphRefinement` whose ``mechanism_steps``,
            ``graph_steps``, ``num_restarts``, ``best_dag_start``, ``num_particles`` and
            ``batch_size`` are used (default: its defaults).
        sparsity
            The graph prior's sparsity, as in :meth:`fit`.
        num_fits
            Fits of the mechanisms and ``q(G)`` from different starts, pooled (``>= 1``).
        progress
            Show a progress bar over each ``q(G)`` fit.

        Returns
        -------
        pyro_personax.reading.ReadingGraph
            ``(D, D)`` edge probabilities and edge classes on the basis's names, the basis
            ``(N, D)``, the reading, and every fit's edge probabilities ``(num_fits, D, D)``.
        """
        self._fitted("reading_graph")
        num_fits = check_int("num_fits", num_fits)
        settings = GraphRefinement() if settings is None else settings
        if not isinstance(settings, GraphRefinement):
            raise TypeError(f"settings: expected a GraphRefinement; found {type(settings).__name__}")
        z = np.asarray(self.get_latent_representation(data, chain=chain), dtype=float)
        if reading is None:
            reading = self._reading_of(z, seed)  # the latents just read, not a second pass of the encoder
        basis = reading_basis(z, self.layout, reading, seed=seed)
        latents = torch.as_tensor(basis.latents, dtype=torch.float32, device=self.device)
        fits = []
        for f in range(num_fits):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + f)
                model, guide = self._build()
            model, guide = model.to(self.device), guide.to(self.device)
            fit_mechanisms_given_latents(model, latents, num_steps=settings.mechanism_steps, seed=seed + f)
            fits.append(fit_graph_given_latents(
                model, guide, latents, num_steps=settings.graph_steps, num_particles=settings.num_particles,
                sparsity=sparsity, num_restarts=settings.num_restarts, best_dag_start=settings.best_dag_start,
                batch_size=settings.batch_size, seed=seed + f, progress=progress,
                progress_desc="reading graph" if num_fits == 1 else f"reading graph, fit {f + 1}/{num_fits}"))
        fits = np.stack(fits)
        frame = pd.DataFrame(fits.mean(0), index=basis.names, columns=basis.names)
        frame.index.name, frame.columns.name = "parent", "child"
        classes = pd.DataFrame(self.layout.edge_classes(), index=basis.names, columns=basis.names)
        return ReadingGraph(edge_probabilities=frame, edge_classes=classes, basis=basis, reading=reading,
                            fit_probabilities=fits)

    @torch.no_grad()
    def sample_posterior(self, num_samples: int, data: MultiModalData | None = None, seed: int = 0) -> dict:
        """Draws from the variational posterior of every chain.

        Parameters
        ----------
        num_samples
            Draws ``S`` per chain.
        data
            Optional data: adds latent draws ``z ~ q(z | x)``.
        seed
            Seed of the draws.

        Returns
        -------
        dict
            ``"edges"``: ``(C, S, D, D)`` 0/1 whole graphs drawn from each chain's
            ``q(G)`` (order posterior: every draw a DAG); ``"edge_probabilities"``:
            ``(C, D, D)``, the exact marginals (the mean of many draws); with data,
            ``"z"``: ``(C, S, N, D)``. Every chain is in chain 0's labels
            (:meth:`align_chains`).
        """
        chains = self._fitted("sample_posterior")
        check_int("num_samples", num_samples)
        gen = torch.Generator().manual_seed(seed)
        out = {"edges": chains.sample_graphs(num_samples, gen), "edge_probabilities": chains.chain_edge_probabilities()}
        if data is not None:
            self._spec_of(data)
            out["z"] = chains.sample_latents(data, num_samples, gen)
        return out

    def do(self, do, *, num_graphs: int = 100, num_samples: int = 1000, seed: int = 0):
        """Effects of an intervention ``do(z_a = v, ...)`` on every latent and every modality.

        Built on :func:`pyro.poutine.do` over the fitted structural equations, averaged
        over graphs drawn from each chain's ``q(G)`` and pooled over chains in chain 0's
        labels (:meth:`~pyro_personax.inference.FittedChains.intervene`,
        :func:`~pyro_personax.inference.interventions.intervene`). The mechanisms are point
        estimates; the spread comes from ``q(G)`` and the noise. Effects through undecided
        edges (:meth:`edge_classes`) inherit their undecidedness.

        Parameters
        ----------
        do
            Latent name -> value (a number, or an array broadcastable to
            ``(num_graphs, num_samples)``).
        num_graphs
            Graphs drawn from each chain's ``q(G)``.
        num_samples
            Noise draws per graph.
        seed
            Seed of the draws (chain ``c`` uses ``seed + c``).

        Returns
        -------
        Interventional
            ``.effect()``: mean change of every latent (a Series by name);
            ``.measurement_effect()``: modality -> ``(d,)`` mean change of the decoded
            measurement; ``.effect_by_graph()``: the spread over ``q(G)``.

        Examples
        --------
        >>> import numpy as np
        >>> from pyro_personax import PersonaX
        >>> from pyro_personax.data import MultiModalData
        >>> rng = np.random.default_rng(0)
        >>> data = MultiModalData({"face": rng.normal(size=(40, 2, 3)), "text": rng.normal(size=(40, 1, 3))})
        >>> px = PersonaX(data, latent_dims={"face": 1, "text": 1}, mechanism="linear")
        >>> _ = px.fit(data, num_epochs=1, batch_size=40, progress=False, device="cpu", refine_graph=False)
        >>> effect = px.do({"face_1": 1.0}, num_graphs=5, num_samples=20).effect()
        >>> list(effect.index), float(effect["face_1"]) != 0.0
        (['face_1', 'text_1'], True)
        """
        return self._fitted("do").intervene(do, num_graphs=num_graphs, num_samples=num_samples, seed=seed)

    def to_inference_data(
        self,
        data: MultiModalData | None = None,
        *,
        num_samples: int = 200,
        num_predictive: int | None = None,
        max_entities: int | None = 100,
        seed: int = 0,
    ):
        """The posterior as an :class:`arviz.InferenceData`.

        Chains are the independent restarts of :meth:`fit`, so R-hat and ESS computed
        on the result measure **run-to-run agreement** of the restarts (R-hat near 1:
        they found the same posterior), not MCMC mixing. Layout of the groups: see
        :mod:`pyro_personax.inference.diagnostics.build`; how the arrays are drawn:
        :mod:`pyro_personax.inference.posterior`.

        Parameters
        ----------
        data
            Data to evaluate strengths, latent means, predictive checks and PSIS
            log-weights on (usually the training data); ``None``: the data given to
            :meth:`fit` in this session, or, for a loaded model, the graph posterior
            only.
        num_samples
            Posterior draws per chain.
        num_predictive
            Posterior predictive draws per chain (default ``min(20, num_samples)``).
        max_entities
            Entity subsample for the data-dependent parts (``None`` = all), so that
            files stay small.
        seed
            Seed of the draws.

        Returns
        -------
        arviz.InferenceData
            ``posterior`` (``edges`` and ``edge_strength`` over the free edges whose draws
            vary, noise-flow summaries), ``adjacency`` (every edge draw, ``(chain, draw,
            parent, child)``), ``edge_probabilities``, ``fit_trace`` (``elbo`` per epoch),
            ``sample_stats`` (per-entity ``log_weight``), ``psis`` (``pareto_k``),
            ``log_likelihood`` (``x_<modality>`` per entity: ``az.loo`` / ``az.compare``),
            ``latent_means``, ``posterior_predictive`` and ``observed_data``; see
            :mod:`pyro_personax.inference.diagnostics.build`.
        """
        from pyro_personax.inference.diagnostics import build_inference_data
        from pyro_personax.inference.posterior import collect_posterior

        chains = self._fitted("to_inference_data")
        data = self._fit_data if data is None else data
        if data is not None:
            self._spec_of(data)
        arrays = collect_posterior(
            chains,
            data,
            num_samples=num_samples,
            num_predictive=num_predictive,
            max_entities=max_entities,
            seed=seed,
        )
        attrs = {
            "mechanism": self.mechanism,
            "model_options": self.options.as_dict(),
            "num_samples": num_samples,
            "seed": seed,
            "fit_warnings": list(chains.warnings),
        }
        if chains.is_aligned and chains.num_chains > 1:
            attrs["chain_alignment_abs_spearman"] = chains.alignment.correlations[1:].tolist()
        if chains.result is not None and any(c.basis_scores for c in chains.result.chains):
            attrs["basis_search"] = [{"scores": c.basis_scores, "identity_score": c.basis_identity_score,
                                      "polish_rounds": c.basis_polish_rounds,
                                      "graph_moves_taken": c.graph_moves_taken} for c in chains.result.chains]
        return build_inference_data(self.layout, attrs=attrs, **arrays)
