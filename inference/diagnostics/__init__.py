"""Posterior diagnostics with ArviZ: InferenceData, Pareto-k and the edge summary table.

This is the only part of the package that imports :mod:`arviz` (and :mod:`xarray`):
:mod:`.build` builds the InferenceData, :mod:`.read` reads, summarises, saves and loads
it. Every other module works on the numpy arrays and pandas tables returned here, so a
port to ArviZ 1.x touches this package only.

Chains are **independent restarts** of the variational fit, not MCMC chains. Draws
within a chain are i.i.d. draws of one variational posterior, so R-hat and ESS
computed over chains measure *run-to-run agreement*: R-hat near 1 means the restarts
found the same posterior; R-hat clearly above 1 means they disagree (for instance,
they found different graphs), whatever the within-chain mixing.

Layout of the :class:`arviz.InferenceData` built by :func:`build_inference_data`
(adjacencies follow :mod:`pyro_personax.graph`: ``[parent, child]``)::

    posterior            edges          (chain, draw, edge)            0/1 draws of the varying free edges
                         edge_strength  (chain, draw, edge)            optional, the same edges
                         <noise param>  (chain, draw, latent)          optional
    adjacency            edges          (chain, draw, parent, child)   every 0/1 edge draw
                         edge_strength  (chain, draw, parent, child)   optional
    edge_probabilities   p_edge         (chain, parent, child)         optional: exact marginals of q(G)
    fit_trace            elbo           (chain, epoch)                 training ELBO, NaN-padded
    sample_stats         log_weight     (chain, draw[, entity])        optional
    psis                 pareto_k       (chain[, entity])              with log_weight
    log_likelihood       x_<modality>   (chain, draw, entity)          optional
    latent_means         z_mean         (chain, entity, latent)        optional
    posterior_predictive x_<modality>   (chain, draw, entity, <modality>_measurement,
                                          <modality>_feature)
    observed_data        x_<modality>   (entity, <modality>_measurement, <modality>_feature)

Coordinates ``parent``, ``child`` and ``latent`` are the latent names of the layout;
the blocks of the layout are the non-dimension coordinates ``parent_block``,
``child_block`` and ``latent_block``. The layout and the configuration are stored as
JSON strings in the attributes, with the library versions.

**Edges: ``posterior`` and ``adjacency``.** ``adjacency.edges`` holds every cell of every
draw. ``posterior.edges`` holds the cells on which ArviZ's diagnostics are defined
(:func:`varying_edges`): the *free* edges (allowed by the layout, not required) whose
draws vary within a chain, along a dimension ``edge`` labelled ``"parent->child"``
(non-dimension coordinates ``edge_parent``, ``edge_child``, ``edge_class``). ArviZ's
R-hat divides by the variance within (half-)chains, so a cell without it gives NaN or
``inf`` and a RuntimeWarning per statistic: the diagonal, forbidden edges (always 0),
required edges (always 1), free edges that no draw changed, and free edges that each
restart holds fixed but the restarts disagree on (R-hat ``inf``: :func:`edge_summary`
reports it, with the classic split R-hat over every pair). So
``az.summary(idata, var_names=["edges"])`` runs without those warnings. One case is left
to ArviZ: when exactly half of a cell's (split) draws are 1, its folded rank R-hat is
0/0 and ArviZ warns, though the R-hat it reports is defined.

**Groups outside ArviZ's schema.** ``sample_stats`` holds ``(chain, draw)`` statistics
only, as ArviZ expects (``az.summary(idata, group="sample_stats")`` and ``az.extract``
stack ``chain`` and ``draw``): the ELBO, one value per training epoch (``epoch`` 0 is the
first, as :attr:`~pyro_personax.inference.ChainResult.best_epoch`), is in ``fit_trace``,
and the Pareto ``k`` per chain (and entity) of the log-weights is in ``psis``.
:func:`elbo_traces`, :func:`pareto_k_of` and :func:`edge_draws` also read files written
before this layout (``sample_stats.elbo`` over ``step``, ``posterior.edges`` over
``(parent, child)``).

**Pointwise log-likelihood** (``log_likelihood.x_<m>``): ``log p(x_nm | z_n, eta_nm)``
of entity ``n``'s measurements of modality ``m`` (observed ones only), with
``(z_n, eta_n)`` drawn from the amortized ``q(z, eta | x)`` under the draw's graph. It is
the likelihood *conditional on the latent posterior* of the entity, so
``az.loo(idata, var_name="x_face")`` and
``az.compare({"a": idata_a, "b": idata_b}, var_name="x_face")`` run on it, as an
approximation for comparing models fitted to the same entities (same ``max_entities``
and ``seed``), not an exact leave-one-out: ``q`` was fitted with ``x_n`` itself, and
``z_n`` and ``eta_n`` are informed by ``x_n`` alone, so leaving ``x_n`` out moves their
posterior far. Expect large Pareto ``k`` (ArviZ warns above ``min(1 - 1/log10(S), 0.7)``);
where ``k`` is large the estimate of that entity's term is unreliable. ArviZ takes the
relative efficiency ``reff`` from the ESS of the ``posterior`` group; draws within a
chain are independent, so ``az.loo(..., reff=1.0)`` is the sound choice.
"""

from .build import build_inference_data, pareto_k, varying_edges
from .read import (
    config_of,
    edge_draws,
    edge_probability_array,
    edge_summary,
    elbo_traces,
    is_inference_data,
    layout_of,
    load_inference_data,
    pareto_k_of,
    posterior_summary,
    predictive_pairs,
    save_inference_data,
)

__all__ = [
    "build_inference_data",
    "pareto_k",
    "edge_summary",
    "posterior_summary",
    "save_inference_data",
    "load_inference_data",
    "is_inference_data",
    "layout_of",
    "edge_draws",
    "edge_probability_array",
    "elbo_traces",
    "predictive_pairs",
    "pareto_k_of",
    "config_of",
    "varying_edges",
]
