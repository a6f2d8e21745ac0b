"""The exact posterior over graphs for given latents, and q(G) fitted to the same target.

For a fitted :class:`~pyro_personax.models.PersonaXModel` and latents ``z`` (observed,
or posterior means), the posterior over the DAGs the layout allows is

    p(G | z) ∝ exp(graph_log_prior(G)) * prod_n p(z_n | G)

with the model's mechanisms and noise flows held fixed, ``graph_log_prior`` the prior
the order posterior targets times the sparsity factor
(:meth:`~pyro_personax.models.PersonaXModel.graph_log_prior`). For up to 6 latents
every such DAG is enumerated (:func:`pyro_personax.graph.enumerate_dags`; 29,281 at 5
latents). ``log p(z | G) = sum_j L_j(parents of j)`` decomposes over nodes, so the
``D 2^D`` node terms are computed once and every graph is scored by a table lookup.

:func:`fit_graph_given_latents` fits the guide's ``q(G)`` to the same target by the
training estimator (:class:`~pyro_personax.inference.graph_elbo.GraphParticleELBO`),
with the latents observed and the mechanisms fixed, scoring its graphs by the same node
table (up to ``MAX_TABLE_LATENTS = 12`` latents): comparing its marginals with
:func:`exact_graph_posterior`'s isolates what the variational family and the gradient
estimator lose. :func:`fit_mechanisms_given_latents` fits the mechanisms and noise
flows to given latents by the criterion training uses.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro.distributions import TorchDistribution, constraints

from pyro_personax.checks import check_int
from pyro_personax.graph import best_dag, enumerate_dags
from pyro_personax.inference.graph_elbo import GraphParticleELBO, random_parent_set_log_prob
from pyro_personax.inference.nonfinite import NonFiniteLossError, gradients_finite, restore

__all__ = [
    "ExactGraphPosterior", "exact_graph_posterior", "exact_graph_posterior_from_table", "fit_graph_given_latents",
    "fit_mechanisms_given_latents", "node_scores", "node_table",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExactGraphPosterior:
    """The exact posterior over every allowed DAG.

    Attributes
    ----------
    graphs
        ``(G, D, D)`` int8 adjacencies (``[i, j]`` = i -> j).
    log_prob
        ``(G,)`` normalised log posterior probabilities.
    log_evidence
        ``log sum_G p(z | G) p(G)``: the log density of the latents given to
        :func:`exact_graph_posterior` under the model, summed over the graphs (the
        graph prior includes the edge penalty). Comparable between two sets of latents
        only in the same coordinates (a change of scale adds its log Jacobian).
    node_table
        ``(2^D, D)``: ``node_table[b, j] = sum_n log p(z_nj | parents b)``, ``b`` the
        bitmask of the parents (bit ``i`` for latent ``i``); ``log p(z | G)`` is the sum of
        one cell per latent.
    """

    graphs: np.ndarray
    log_prob: np.ndarray
    log_evidence: float = float("nan")
    node_table: np.ndarray | None = None

    @property
    def probs(self) -> np.ndarray:
        """``(G,)`` posterior probabilities."""
        return np.exp(self.log_prob)

    def edge_probabilities(self) -> np.ndarray:
        """``(D, D)`` posterior edge marginals ``P(i -> j | z)``."""
        return np.einsum("g,gij->ij", self.probs, self.graphs.astype(float))

    def top(self, k: int = 5) -> list[tuple[np.ndarray, float]]:
        """The ``k`` most probable graphs with their probabilities."""
        idx = np.argsort(-self.log_prob)[:k]
        return [(self.graphs[i], float(self.probs[i])) for i in idx]


def _latents(model, z) -> torch.Tensor:
    """``z`` (numpy or torch) as ``(N, D)`` in the model's dtype and device; an error names a wrong shape."""
    z = torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z).to(next(model.parameters()))
    D = model.layout.latent_dim
    if z.dim() != 2 or z.shape[-1] != D:
        raise ValueError(f"z: expected shape (N, {D}); found {tuple(z.shape)}")
    return z


MAX_TABLE_LATENTS = 12
#: Largest share of a mechanism fit's steps that may be skipped for a non-finite gradient.
MAX_SKIPPED_STEPS = 0.1


@torch.no_grad()
def _node_table(model, z: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``T[b, j] = sum_n log p(z_nj | parents b)``, ``b`` a bitmask of parents; ``(2^D, D)``.

    ``z`` is evaluated under every parent mask, ``batch_size`` rows and as many masks at
    a time as keep one evaluation near ``2^22`` cells.
    """
    D = z.shape[-1]
    if D > MAX_TABLE_LATENTS:
        raise ValueError(f"z: the node table covers at most {MAX_TABLE_LATENTS} latents; found {D}")
    bits = torch.arange(2**D, device=z.device).unsqueeze(-1).bitwise_right_shift(torch.arange(D, device=z.device)) & 1
    masks = bits.to(z.dtype).unsqueeze(-1).expand(-1, D, D) * (1 - torch.eye(D, dtype=z.dtype, device=z.device))
    chunk = max(1, (1 << 22) // (batch_size * D * D))
    table = z.new_zeros(2**D, D)
    for start in range(0, 2**D, chunk):
        part = masks[start:start + chunk]
        for rows in z.split(batch_size):
            table[start:start + chunk] += model.latent_distribution(part).node_log_prob(rows.unsqueeze(-2)).sum(-3)
    return table


def node_table(model, z, *, batch_size: int = 256) -> np.ndarray:
    """Log-likelihood of every latent under every parent set: the table graphs are scored by.

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` (its mechanisms and noise flows
        are used as they are).
    z
        Latents ``(N, D)`` (numpy or torch), in the model's latent order, ``D`` at most
        ``MAX_TABLE_LATENTS``.
    batch_size
        Rows per evaluation.

    Returns
    -------
    numpy.ndarray
        ``(2^D, D)`` float64: ``[b, j] = sum_n log p(z_nj | parents b)``, ``b`` the bitmask
        of the parents (bit ``i`` for latent ``i``). ``log p(z | G)`` is the sum over ``j``
        of the cell of ``G``'s parents of ``j``, whatever the masks of the layout.
    """
    return _node_table(model, _latents(model, z), batch_size).cpu().numpy().astype(np.float64)


def _parent_codes(edges: torch.Tensor) -> torch.Tensor:
    """``(..., D)`` bitmask of the parents of each child of 0/1 ``edges`` ``(..., D, D)``."""
    D = edges.shape[-1]
    powers = 2 ** torch.arange(D, device=edges.device).view(D, 1)
    return (edges.round().long() * powers).sum(-2)


class _NodeTableLikelihood(TorchDistribution):
    """``log p(z | G) = sum_j T[parents_G(j), j]`` for graphs ``G`` ``(*batch, D, D)``, from a node table.

    The value is a placeholder (the latents are in the table); ``column_log_prob`` gives
    the per-child terms, so the training estimator charges each child's edges with its own.
    """

    arg_constraints: dict = {}
    support = constraints.real

    def __init__(self, table: torch.Tensor, edges: torch.Tensor):
        self.table, self.edges = table, edges
        super().__init__(edges.shape[:-2], validate_args=False)

    def column_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        D = self.table.shape[-1]
        return self.table[_parent_codes(self.edges), torch.arange(D, device=self.table.device)]

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self.column_log_prob(value).sum(-1)


@torch.no_grad()
def exact_graph_posterior(model, z, *, sparsity: float | str = "bic", num_entities: int | None = None,
                          batch_size: int = 256) -> ExactGraphPosterior:
    """Exact ``p(G | z)`` over every DAG a fitted model's layout allows (at most 6 latents).

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` (its mechanisms, noise flows,
        edge prior and masks are used as they are).
    z
        Latents ``(N, D)`` (numpy or torch), in the model's latent order.
    sparsity
        The L1 edge weight or ``"bic"`` (as in training).
    num_entities
        ``N`` of the ``"bic"`` weight (default: the rows of ``z``).
    batch_size
        Rows per evaluation.

    Returns
    -------
    ExactGraphPosterior
    """
    z = _latents(model, z)
    n = z.shape[0] if num_entities is None else num_entities
    return exact_graph_posterior_from_table(model, _node_table(model, z, batch_size), sparsity=sparsity,
                                            num_entities=n)


def exact_graph_posterior_from_table(model, table, *, sparsity: float | str = "bic",
                                     num_entities: int) -> ExactGraphPosterior:
    """Exact ``p(G | z)`` over every DAG a model's layout allows, from a node table of the latents.

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` (its masks and edge prior).
    table
        ``(2^D, D)`` node table (numpy or torch): :func:`node_table`, or cells fitted
        another way.
    sparsity, num_entities
        As in :func:`node_scores`.

    Returns
    -------
    ExactGraphPosterior
    """
    table = torch.as_tensor(table, device=model.free_mask.device)
    D = table.shape[-1]
    allowed = (model.free_mask | model.required_mask).cpu().numpy()
    graphs = enumerate_dags(allowed, required=model.required_mask.cpu().numpy())
    G = torch.as_tensor(graphs, device=table.device).long()
    log_lik = table[_parent_codes(G), torch.arange(D, device=table.device)].sum(-1)
    log_joint = (log_lik + model.graph_log_prior(G.to(table.dtype), sparsity, num_entities)).double()
    log_evidence = torch.logsumexp(log_joint, 0)
    log_post = log_joint - log_evidence
    return ExactGraphPosterior(graphs, log_post.cpu().numpy().astype(np.float64), float(log_evidence),
                               table.cpu().numpy().astype(np.float64))


def node_scores(model, table, *, sparsity: float | str = "bic", num_entities: int) -> np.ndarray:
    """Node terms of ``log p(z | G) + graph_log_prior(G)``: the decomposable score of a graph.

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` (its masks and edge prior).
    table
        ``(2^D, D)`` node table (:func:`node_table`).
    sparsity, num_entities
        The sparsity factor and the ``N`` of its ``"bic"`` weight.

    Returns
    -------
    numpy.ndarray
        ``(2^D, D)``: ``[b, j]`` = ``table[b, j]`` plus the prior's log weight of the free
        edges ``b -> j``; ``-inf`` where the parent set ``b`` takes a forbidden edge or
        leaves out a required one. ``sum_j [parents(j), j]`` equals the exact posterior's
        ``log p(z | G) + graph_log_prior(G)``.
    """
    T = np.asarray(table, dtype=float)
    D = T.shape[1]
    free, required = model.free_mask.cpu().numpy(), model.required_mask.cpu().numpy()
    member = ((np.arange(2**D)[:, None] >> np.arange(D)) & 1).astype(bool)  # [b, i]: i in the set b
    weight = model.edge_log_weight(sparsity, num_entities)
    out = T + weight * (member[:, :, None] & free[None]).sum(1)
    breaks = (member[:, :, None] & ~free[None] & ~required[None]).any(1) | (~member[:, :, None] & required[None]).any(1)
    out[breaks] = -np.inf
    return out


#: Logit scale of the restart of :func:`fit_graph_given_latents` started at the best DAG.
BEST_DAG_START_LOGIT = 4.0


def most_probable_dag(model, table, *, sparsity: float | str = "bic",
                      num_entities: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The DAG of highest ``log p(z | G) + graph_log_prior(G)``, found exactly, within the model's tiers.

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` (masks, edge prior, tiers).
    table
        ``(2^D, D)`` node table (:func:`node_table`).
    sparsity, num_entities
        As in :func:`node_scores`.

    Returns
    -------
    tuple
        ``(adjacency (D, D), order (D,), score)`` of :func:`~pyro_personax.graph.best_dag`.
    """
    scores = node_scores(model, table, sparsity=sparsity, num_entities=num_entities)
    return best_dag(scores, tiers=model.tiers.cpu().numpy())


def _start_at(guide, adjacency: np.ndarray, order: np.ndarray) -> None:
    """Set the order posterior's ``q(G)`` near one DAG: its order first, its skeleton on."""
    D = len(order)
    theta = torch.empty(D, dtype=guide.order_logits.dtype, device=guide.order_logits.device)
    theta[torch.as_tensor(order, device=theta.device)] = BEST_DAG_START_LOGIT * torch.arange(
        D - 1, -1, -1, dtype=theta.dtype, device=theta.device)
    skeleton = torch.as_tensor((adjacency + adjacency.T) > 0, device=theta.device)
    with torch.no_grad():
        guide.order_logits.copy_(theta)
        guide.edge_logits.copy_(torch.where(skeleton, BEST_DAG_START_LOGIT, -BEST_DAG_START_LOGIT))


def fit_graph_given_latents(model, guide, z, *, num_steps: int = 1000, num_particles: int = 16,
                            learning_rate: float = 0.05, sparsity: float | str = "bic", num_restarts: int = 3,
                            best_dag_start: bool = True, batch_size: int = 256, seed: int = 0,
                            progress: bool = False, progress_desc: str = "graph stage",
                            progress_position: int | None = None) -> np.ndarray:
    """Fit the guide's ``q(G)`` to ``p(G | z)`` with the latents observed and the mechanisms fixed.

    Only ``guide.graph_parameters()`` change (Adam, ``num_steps`` steps of the training
    estimator with ``num_particles`` graphs); the model is left untouched. The ELBO is
    mode-seeking and a v-structure needs an order and an edge to move together, so the
    fit is restarted ``num_restarts`` times: from the guide's values, then (with
    ``best_dag_start``) from the DAG of highest posterior density
    (:func:`~pyro_personax.graph.best_dag` on :func:`node_scores`, exact), then from
    random orders; the restart with the highest ELBO (estimated with 1,024 graphs) is
    kept.

    Parameters
    ----------
    model, guide
        :class:`~pyro_personax.models.PersonaXModel` / ``PersonaXGuide`` with
        ``graph_posterior="order"``.
    z
        Latents ``(N, D)``, ``D <= MAX_TABLE_LATENTS``.
    num_steps, num_particles, learning_rate
        Optimisation settings of each restart.
    sparsity
        As in training.
    num_restarts
        Restarts (``>= 1``).
    best_dag_start
        Start the second restart (``num_restarts >= 2``) at the most probable DAG (its
        order first by :data:`BEST_DAG_START_LOGIT` per place, its edges at that logit,
        the other pairs at minus it). A gradient fit from the guide's values or a random
        order can end in a mode of lower posterior mass; this restart puts the highest
        one among those the ELBO compares.
    batch_size
        Rows per evaluation of the node table.
    seed
        Seed of the graph draws and of the restarts' initial orders.
    progress
        Show a progress bar over the steps of all restarts.
    progress_desc, progress_position
        The bar's label and line (``None``: tqdm's choice; chains trained side by side
        keep one line each).

    Returns
    -------
    numpy.ndarray
        ``(D, D)`` fitted edge marginals (``guide.edge_probabilities()``); the guide
        keeps the best restart's graph parameters.

    Raises
    ------
    NonFiniteLossError
        When the node log-likelihoods or a restart's ELBO are not finite (diverged
        mechanisms), instead of keeping a graph posterior fitted to NaN.
    """
    check_int("num_restarts", num_restarts)
    z = _latents(model, z)
    n = z.shape[0]
    table = _node_table(model, z, batch_size)
    bad = (~torch.isfinite(table)).any(0)
    if bad.any():
        names = [model.layout.names[j] for j in torch.nonzero(bad).flatten().tolist()]
        raise NonFiniteLossError(
            f"graph stage: log p(z_j | parents) is not finite for latents {names} under some parent sets; "
            "the mechanisms or noise flows hold non-finite values"
        )

    def graph_model(graph_particles: int):
        with pyro.plate("graphs", graph_particles, dim=-2):
            G = model.graph_sites(n, sparsity=sparsity)
            pyro.sample("z", _NodeTableLikelihood(table, G), obs=table.new_zeros(G.shape[:-2]))

    def graph_guide(graph_particles: int):
        with pyro.plate("graphs", graph_particles, dim=-2):
            guide.graph_sites()

    loss_fn = GraphParticleELBO(graph_model, graph_guide, num_particles, mechanism_fit_weight=0.0)
    evaluate = GraphParticleELBO(graph_model, graph_guide, 1024, mechanism_fit_weight=0.0)
    params = guide.graph_parameters()
    best, best_elbo = None, -float("inf")
    bar_context = _steps_bar(progress, num_restarts * num_steps, progress_desc, progress_position)
    with torch.random.fork_rng(devices=[]), bar_context as bar:
        torch.manual_seed(seed)
        for restart in range(num_restarts):
            if restart == 1 and best_dag_start:
                adjacency, order, _ = most_probable_dag(model, table.double().cpu().numpy(), sparsity=sparsity,
                                                        num_entities=n)
                _start_at(guide, adjacency, order)
            elif restart > 0:
                with torch.no_grad():
                    for p in params:
                        p.copy_(torch.randn_like(p) if p.dim() == 1 else torch.zeros_like(p))
            optimizer = torch.optim.Adam(params, lr=learning_rate)
            for _ in range(num_steps):
                optimizer.zero_grad(set_to_none=True)
                (loss_fn() / n).backward()
                model.zero_grad(set_to_none=True)
                optimizer.step()
                if bar is not None:
                    bar.update(1)
            with torch.no_grad():
                elbo = -float(evaluate())
            if not math.isfinite(elbo):
                raise NonFiniteLossError(f"graph stage: the ELBO of q(G) is {elbo} after restart {restart}")
            if elbo > best_elbo:
                best, best_elbo = [p.detach().clone() for p in params], elbo
        restore(params, best)
    return guide.edge_probabilities().cpu().numpy()


def _steps_bar(enabled: bool, total: int, desc: str, position: int | None):
    """A tqdm bar over the q(G) steps (a do-nothing context when disabled)."""
    if not enabled:
        return contextlib.nullcontext()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, position=position)


def fit_mechanisms_given_latents(model, z, *, num_steps: int = 300, num_masks: int = 16, learning_rate: float = 0.02,
                                 batch_size: int | None = None, seed: int = 0) -> list[float]:
    """Fit a model's mechanisms and noise flows to observed latents on random parent sets.

    Maximises ``E_M[sum_n log p(z_n | M)]`` over random masks ``M`` (the criterion
    training uses, :func:`~pyro_personax.inference.graph_elbo.random_parent_set_log_prob`)
    with Adam; only :meth:`~pyro_personax.models.PersonaXModel.mechanism_parameters` change. Together with
    :func:`exact_graph_posterior` or :func:`fit_graph_given_latents` it gives the graph
    posterior the model reaches when its latents are exactly the given ones.

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel`.
    z
        Latents ``(N, D)`` (numpy or torch), in the model's latent order.
    num_steps, num_masks, learning_rate
        Adam steps, masks per step and step size.
    batch_size
        Rows per step (default: all).
    seed
        Seed of the masks and rows.

    Returns
    -------
    list of float
        The mean node log-likelihood per entity at each step.

    Raises
    ------
    NonFiniteLossError
        When the fit becomes non-finite, or when more than one step and more than
        :data:`MAX_SKIPPED_STEPS` of the steps have a non-finite gradient (a step whose
        gradient is not finite is skipped: see
        :func:`~pyro_personax.inference.nonfinite.gradients_finite`).
    """
    z = _latents(model, z)
    n = z.shape[0]
    params = model.mechanism_parameters()
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    trace, skipped = [], 0
    for _ in range(num_steps):
        rows = z if batch_size is None or batch_size >= n else z[torch.randperm(n, generator=generator)[:batch_size]]
        fit = random_parent_set_log_prob(model, rows, num_masks, generator).sum(-1).mean()
        if not torch.isfinite(fit):
            raise NonFiniteLossError(
                f"mechanism fit: the mean node log-likelihood is {float(fit.detach())} at step {len(trace)}; "
                "the mechanisms or noise flows diverged"
            )
        optimizer.zero_grad(set_to_none=True)
        (-fit).backward()
        trace.append(float(fit.detach()))
        if not gradients_finite(params):
            skipped += 1
            if skipped > max(1.0, MAX_SKIPPED_STEPS * num_steps):
                raise NonFiniteLossError(
                    f"mechanism fit: {skipped} of the first {len(trace)} steps had a non-finite gradient "
                    "(the loss was finite); the mechanisms or noise flows are degenerate on these latents"
                )
            continue
        optimizer.step()
    if skipped:
        logger.info("mechanism fit: skipped %d of %d steps with a non-finite gradient", skipped, num_steps)
    return trace

