"""The graph stage after SVI: q(G) fitted again, with restarts, to the learned latents.

Joint training moves the latents, the mechanisms and ``q(G)`` together, and the order
part of ``q(G)`` is fitted by a mode-seeking objective: an order (and with it the
orientation of its edges) chosen while the latents were still poor can persist, and a
v-structure needs an order and an edge to move together. With the encoders and
decoders trained, :func:`refine_graph` does one round of coordinate ascent on the parts
of the ELBO that depend on the graph:

1. ``z``: the posterior means of ``q(z | x)`` of the training entities, or one draw
   of ``q(z | x)`` per entity (:attr:`GraphRefinement.latents` says when each fits);
   then the basis inside each modality block, which the likelihood leaves to SVI's
   path, is searched by the LiNGAM score, with the best DAG, of one draw of
   ``q(z | x)`` per entity in either case (:mod:`pyro_personax.inference.basis`) and
   set on the model and the guide (``basis_restarts``; the likelihood is unchanged,
   the latents and the graph are those of the new basis); then the basis found is
   polished under the model's own density (``basis_polish``, :func:`polish_block_basis`),
   with the mechanisms fitted to the same draws first, and, with ``graph_moves``, moved
   between graphs (:mod:`pyro_personax.inference.graph_moves`);
2. the mechanisms and noise flows: ``p(z | G)`` is set to read ``z`` standardised
   (:meth:`~pyro_personax.models.PersonaXModel.standardise_latents`: the ELBO does not
   fix a latent's scale, and training can shrink one to a small fraction of the
   others', where the mechanisms' networks cannot follow it), then the mechanisms and
   noise flows are fitted further to ``z`` on random parent sets, the criterion
   training uses (:func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`;
   after the polish, a short fit from the fit it started from);
3. ``q(G)``: fitted to ``p(G | z)`` with the same prior, sparsity factor and gradient
   estimator as in training, from the trained ``q(G)``, from the most probable DAG
   given ``z`` (found exactly by dynamic programming over subsets: a gradient fit can
   end in a mode of lower mass, and the ELBO only compares the modes the restarts
   reach) and from random orders; the restart with the highest ELBO is kept
   (:func:`~pyro_personax.inference.oracle.fit_graph_given_latents`).

Graphs are scored through a table of node terms, so the stage applies to the order
posterior with at most ``MAX_TABLE_LATENTS`` latents; otherwise it is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from pyro_personax.checks import check_int
from pyro_personax.inference.basis import BlockBasis, search_block_basis, searched_blocks
from pyro_personax.inference.batches import index_batch, num_rows
from pyro_personax.inference.graph_moves import basis_density, block_mapped, switch_graph
from pyro_personax.inference.nonfinite import restore
from pyro_personax.inference.oracle import (
    MAX_TABLE_LATENTS,
    fit_graph_given_latents,
    fit_mechanisms_given_latents,
    most_probable_dag,
    node_table,
)
from pyro_personax.models.guide import draw_latents

__all__ = ["GraphRefinement", "POLISH_REFIT_STEPS", "REFINEMENT_LATENTS", "polish_block_basis", "refine_graph"]

#: What the graph stage fits the mechanisms and ``q(G)`` to (:attr:`GraphRefinement.latents`).
REFINEMENT_LATENTS = ("draws", "means")

#: Adam steps of the mechanisms' last fit after the basis polish: it starts from their fit to the
#: draws in the searched basis (:func:`polished`) and follows the latents into the polished basis.
POLISH_REFIT_STEPS = 50

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphRefinement:
    """Settings of the graph stage after SVI (see :func:`refine_graph`).

    Parameters
    ----------
    mechanism_steps
        Adam steps of the mechanisms' fit to the learned latents (``>= 0``).
    graph_steps
        Adam steps of each restart of the ``q(G)`` fit (``>= 1``).
    num_restarts
        Restarts of the ``q(G)`` fit (``>= 1``): the trained ``q(G)``, then the best
        DAG (``best_dag_start``), then random orders.
    best_dag_start
        Start the second restart of the ``q(G)`` fit at the most probable DAG given
        the latents, found exactly (:func:`~pyro_personax.graph.best_dag`), instead of a
        random order; the ELBO chooses among the restarts as before.
    num_particles
        Graphs per step of the ``q(G)`` fit (``>= 2``).
    batch_size
        Entities per encoder call and per node-table evaluation.
    basis_restarts
        Starts of the search for the basis inside modality blocks
        (:func:`~pyro_personax.inference.basis.search_block_basis`), run first; ``0``
        keeps the basis SVI left. It needs ``mechanism_steps >= 1`` (the mechanisms are
        fitted again in the new basis).
    latents
        What the mechanisms and ``q(G)`` are fitted to: ``"means"``, the posterior
        means, or ``"draws"``, one draw of ``q(z | x)`` per training entity (the draw
        the basis search scores). Across entities, draws of the posterior are
        distributed as the latents themselves; the means are not, and their errors act
        as measurement error (a mediator read with error leaves a direct edge around it).
        But where training has shrunk a latent's scale far below its posterior spread,
        one draw is mostly that spread, and the latent's edges are lost.
    basis_polish
        Rounds of :func:`polish_block_basis` after the basis search (``>= 0``; ``0`` keeps
        the search's basis). Each round fixes the most probable DAG given
        the latents and takes 150 Adam steps on the maps inside the blocks and the
        mechanisms, raising the model's density of the draws the search scored. The
        mechanisms are fitted to those draws first (``mechanism_steps``), and the fit
        after the polish starts from that fit and takes ``POLISH_REFIT_STEPS`` steps (at
        most ``mechanism_steps``). It runs where the search runs: with ``basis_restarts=0``
        the basis SVI left is kept, unpolished.
    graph_moves
        Most moves between graphs after the polish (``>= 0``; ``0``: none). From the most
        probable DAG in the polished basis, each move deletes or reverses one identified
        edge, scoring every candidate DAG with the maps inside the blocks and the
        mechanisms fitted under it alone, on held-out rows
        (:func:`~pyro_personax.inference.graph_moves.switch_graph`); the basis of the last
        DAG taken is kept. It runs where the polish runs.
    """

    mechanism_steps: int = 300
    graph_steps: int = 1000
    num_restarts: int = 3
    best_dag_start: bool = True
    num_particles: int = 16
    batch_size: int = 1024
    basis_restarts: int = 8
    latents: str = "means"
    basis_polish: int = 5
    graph_moves: int = 0

    def __post_init__(self):
        check_int_fields(self, {"mechanism_steps": 0, "graph_steps": 1, "num_restarts": 1, "num_particles": 2,
                                "batch_size": 1, "basis_restarts": 0, "basis_polish": 0, "graph_moves": 0})
        if not isinstance(self.best_dag_start, bool):
            raise ValueError(f"best_dag_start: expected True or False; found {self.best_dag_start!r}")
        if self.latents not in REFINEMENT_LATENTS:
            raise ValueError(f"latents: expected one of {REFINEMENT_LATENTS}; found {self.latents!r}")
        if self.basis_restarts and not self.mechanism_steps:
            raise ValueError("basis_restarts: the basis search needs mechanism_steps >= 1 (the mechanisms are "
                             f"fitted again in the new basis); found basis_restarts={self.basis_restarts}, "
                             "mechanism_steps=0")


def check_int_fields(config, lows: dict[str, int]) -> None:
    """Raise a ``ValueError`` naming the first field of ``config`` that is not an int ``>=`` its bound in ``lows``."""
    for name, low in lows.items():
        check_int(name, getattr(config, name), low=low)


def applies(model, guide) -> bool:
    """Whether :func:`refine_graph` runs for this pair (order posterior, at most ``MAX_TABLE_LATENTS`` latents)."""
    return (getattr(guide, "graph_posterior", None) == "order"
            and hasattr(guide, "latent_posterior")
            and model.layout.latent_dim <= MAX_TABLE_LATENTS)


@torch.no_grad()
def posterior_summaries(guide, train, batch_size: int, device: torch.device,
                        seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(N, D)`` means of ``q(z | x)`` for every row of ``train`` (a ``Batch``) and, with
    ``seed``, ``(N, D)``: one draw of ``q(z | x)`` per row, seeded by ``seed`` (else ``None``).

    The encoders run once per batch for both.
    """
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    means, draws = [], []
    for idx in torch.arange(num_rows(train)).split(batch_size):
        q = guide.latent_posterior_distribution(index_batch(train, idx, device))
        means.append(q.mean)
        if generator is not None:
            draws.append(draw_latents(q, torch.randn(q.batch_shape + q.event_shape, generator=generator).to(q.mean)))
    return torch.cat(means), (torch.cat(draws) if draws else None)


def set_block_basis(model, guide, z: torch.Tensor, draws: torch.Tensor, *, num_restarts: int, sparsity="bic",
                    seed: int = 0) -> tuple[torch.Tensor, BlockBasis]:
    """Search the basis inside modality blocks and set it on ``model`` and ``guide``; return ``z`` in it
    and the search's :class:`~pyro_personax.inference.basis.BlockBasis`.

    The search (:func:`~pyro_personax.inference.basis.search_block_basis`) scores one draw
    of ``q(z | x)`` per entity, ``draws`` ``(N, D)``, so that a map which amplifies the
    posterior's noise (a difference of two nearly collinear latents) scores as the
    Gaussian noise it mostly is; it charges each edge what the model's graph prior does
    (``sparsity``, as in training, net of the edge prior). The map found is composed
    with the modules' :attr:`latent_basis`; ``z`` ``(N, D)`` (the latents the stage
    fits: the draws or the posterior means) is returned in the new basis.
    """
    penalty = -float(model.edge_log_weight(sparsity, len(z)))
    found = search_block_basis(draws, model.layout, num_restarts=num_restarts, penalty=penalty, seed=seed)
    T = torch.as_tensor(found.map, dtype=z.dtype, device=z.device)
    composed = T @ model.latent_basis.to(z)
    model.set_latent_basis(composed)
    guide.set_latent_basis(composed)
    logger.info("basis inside blocks: LiNGAM score %.4f per entity (%.4f before)", found.score, found.identity_score)
    return z @ T.T, found


def map_dag(model, z: torch.Tensor, sparsity, num_entities: int) -> torch.Tensor:
    """The most probable DAG given latents ``z`` ``(N, D)`` under ``model``'s mechanisms, graph prior and
    tiers, found exactly (:func:`~pyro_personax.inference.oracle.most_probable_dag`); ``(D, D)`` 0/1 in
    ``z``'s dtype and device."""
    graph = most_probable_dag(model, node_table(model, z), sparsity=sparsity, num_entities=num_entities)[0]
    return torch.as_tensor(graph, dtype=z.dtype, device=z.device)


def polish_block_basis(model, z: torch.Tensor, *, rounds: int, sparsity="bic", steps: int = 150,
                       learning_rate: float = 0.005) -> torch.Tensor:
    """Polish the basis inside modality blocks under the model's own density; return the map ``(D, D)``.

    The LiNGAM score of the basis search is linear; where the mechanisms are not, its
    optimum lies near the latents' basis but not at it. This raises instead
    ``mean_n log p(u_n | G) + log |det A| - sum_j log sd_j``, where ``u`` is ``A x``
    standardised (``sd_j`` the spread of its latent ``j``), ``x`` is ``z`` standardised, ``A``
    is block diagonal over the searched blocks (identity elsewhere) and ``p(u | G)`` is the
    model's (:meth:`~pyro_personax.models.PersonaXModel.latent_distribution`). Each of
    ``rounds`` rounds fixes ``G``, the most probable DAG given ``u``, then takes ``steps``
    Adam steps on ``A`` and the mechanisms together, from ``A = I``. The mechanisms are left
    as trained here (fit them again before use elsewhere: they were fitted to one DAG).

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` whose mechanisms are fitted to ``z``,
        with :meth:`~pyro_personax.models.PersonaXModel.standardise_latents` of ``z``.
    z
        Latents ``(N, D)``, ``N >= 2``.
    rounds, steps, learning_rate
        Rounds (``>= 1``), Adam steps per round and step size.
    sparsity
        The graph prior's sparsity factor, as in training.

    Returns
    -------
    torch.Tensor
        ``T`` ``(D, D)``: block diagonal; ``z @ T.T`` is the polished basis up to each
        latent's location and scale.
    """
    check_int("rounds", rounds, low=1)
    n = z.shape[0]
    spread0 = z.std(0)
    x = ((z - z.mean(0)) / spread0).detach()
    blocks = searched_blocks(model.layout)
    parts = [torch.eye(b.stop - b.start, dtype=x.dtype, device=x.device, requires_grad=True) for b in blocks]
    optimiser = torch.optim.Adam([*parts, *model.mechanism_parameters()], lr=learning_rate)

    def mapped() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return block_mapped(model, x, parts, blocks)

    last = [part.detach().clone() for part in parts]
    for r in range(rounds):
        with torch.no_grad():
            graph = map_dag(model, mapped()[1], sparsity, n)
        for _ in range(steps):
            value = basis_density(model, x, parts, blocks, graph)[0]
            if not torch.isfinite(value):
                return _stopped(parts, last, mapped, spread0, r)
            last = [part.detach().clone() for part in parts]
            optimiser.zero_grad(set_to_none=True)
            (-value).backward()
            optimiser.step()
        logger.info("basis polish round %d: %.4f per entity, %d edges", r + 1, float(value.detach()), int(graph.sum()))
    with torch.no_grad():
        full, u, _ = mapped()
    if not torch.isfinite(u).all():
        return _stopped(parts, last, mapped, spread0, rounds - 1)
    return full / spread0


def _stopped(parts, last, mapped, spread0, r: int) -> torch.Tensor:
    """The polish's map with every block back at ``last``, the last blocks whose objective was finite."""
    logger.warning("basis polish: the objective became non-finite in round %d; the last finite basis is kept", r + 1)
    restore(parts, last)
    with torch.no_grad():
        return mapped()[0] / spread0


def polished(model, guide, z: torch.Tensor, draws: torch.Tensor, settings: GraphRefinement, sparsity,
             seed: int) -> tuple[torch.Tensor, int | None]:
    """Polish the basis (:func:`polish_block_basis` on ``draws`` ``(N, D)``) and, with ``graph_moves``, move
    between graphs (:func:`moved`); set the composed map on ``model`` and ``guide`` and return ``z`` ``(N, D)``
    in it, with the moves taken (``None`` without ``graph_moves``).

    The mechanisms are fitted to ``draws`` on random parent sets before the polish and are left
    as that fit made them (the polish's own steps, fitted to one DAG at a time, are undone), so
    that the stage's last fit starts from them (:data:`POLISH_REFIT_STEPS`).
    """
    model.standardise_latents(draws)
    with torch.enable_grad():
        fit_mechanisms_given_latents(model, draws, num_steps=settings.mechanism_steps, seed=seed)
        fitted = [p.detach().clone() for p in model.mechanism_parameters()]
        T = polish_block_basis(model, draws, rounds=settings.basis_polish, sparsity=sparsity)
        taken = None
        if settings.graph_moves:
            T_moves, taken = moved(model, draws @ T.T, fitted, settings.graph_moves, sparsity, seed)
            T = T_moves @ T
    restore(model.mechanism_parameters(), fitted)
    composed = T @ model.latent_basis.to(z)
    model.set_latent_basis(composed)
    guide.set_latent_basis(composed)
    return z @ T.T, taken


def moved(model, z: torch.Tensor, fitted: list[torch.Tensor], max_moves: int, sparsity,
          seed: int) -> tuple[torch.Tensor, int]:
    """The map ``(D, D)`` of :func:`~pyro_personax.inference.graph_moves.switch_graph` on latents ``z`` ``(N, D)``,
    started at the most probable DAG given ``z`` under the mechanisms ``fitted`` (restored first), and the
    moves it took."""
    restore(model.mechanism_parameters(), fitted)
    with torch.no_grad():
        u = (z - z.mean(0)) / z.std(0) * model.latent_scale + model.latent_loc
        start = map_dag(model, u, sparsity, len(z)).cpu().numpy()
    T, _, log = switch_graph(model, z, start, max_moves=max_moves, sparsity=sparsity, seed=seed)
    taken = sum(step["moved"] for step in log)
    logger.info("graph moves: %d taken, %d edges to %d", taken, int(start.sum()), len(log[-1]["graph"]))
    return T, taken


def refine_graph(model, guide, train, *, sparsity="bic", settings: GraphRefinement | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", progress: bool = False, progress_desc: str = "graph stage",
                 progress_position: int | None = None, result=None) -> bool:
    """Fit the mechanisms and ``q(G)`` again to the learned latents (in place).

    Parameters
    ----------
    model, guide
        A trained :class:`~pyro_personax.models.PersonaXModel` / ``PersonaXGuide``.
    train
        The training rows: modality -> ``ModalityTensors`` with ``N`` rows.
    sparsity
        The sparsity factor of training (a weight or ``"bic"``, with ``N`` the training rows).
    settings
        :class:`GraphRefinement` (default settings when ``None``).
    seed
        Seed of the mechanisms' masks and of the restarts.
    device
        Device of the modules.
    progress
        Show a progress bar over the ``q(G)`` steps.
    progress_desc, progress_position
        The bar's label and line (``None``: tqdm's choice).
    result
        Optional :class:`~pyro_personax.inference.result.ChainResult` that receives the
        basis search's scores (``basis_scores``, ``basis_identity_score``), the polish's
        rounds (``basis_polish_rounds``) and the moves between graphs taken (``graph_moves_taken``).

    Returns
    -------
    bool
        Whether the stage ran (it is skipped, with a log line, where :func:`applies` is false).
    """
    settings = GraphRefinement() if settings is None else settings
    if not applies(model, guide):
        logger.info("graph refinement skipped: it needs the order posterior and at most %d latents",
                    MAX_TABLE_LATENTS)
        return False
    device = torch.device(device)
    search = bool(settings.basis_restarts and searched_blocks(model.layout))
    polish = search and settings.basis_polish > 0
    with_draws = search or settings.latents == "draws"
    z, draws = posterior_summaries(guide, train, settings.batch_size, device, seed if with_draws else None)
    if settings.latents == "draws":
        z = draws
    if search:
        z, found = set_block_basis(model, guide, z, draws, num_restarts=settings.basis_restarts,
                                   sparsity=sparsity, seed=seed)
        if result is not None:
            result.basis_scores = [float(v) for v in found.restart_scores]
            result.basis_identity_score = float(found.identity_score)
        if polish:
            z, taken = polished(model, guide, z, draws @ torch.as_tensor(found.map).to(draws).T, settings,
                                sparsity, seed)
            if result is not None:
                result.basis_polish_rounds = settings.basis_polish
                result.graph_moves_taken = taken
    if settings.mechanism_steps:
        steps = min(POLISH_REFIT_STEPS, settings.mechanism_steps) if polish else settings.mechanism_steps
        model.standardise_latents(z)
        with torch.enable_grad():
            fit_mechanisms_given_latents(model, z, num_steps=steps, seed=seed)
    with torch.enable_grad():
        fit_graph_given_latents(model, guide, z, num_steps=settings.graph_steps, num_particles=settings.num_particles,
                                sparsity=sparsity, num_restarts=settings.num_restarts,
                                best_dag_start=settings.best_dag_start,
                                batch_size=min(settings.batch_size, 256), seed=seed, progress=progress,
                                progress_desc=progress_desc, progress_position=progress_position)
    return True
