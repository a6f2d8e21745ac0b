"""Moves between graphs on the identified edges, each graph scored with the basis polished under it.

The basis polish (:func:`~pyro_personax.inference.refine.polish_block_basis`) raises the
model's density of the latents under a DAG it fixes from the current basis. Under a
fixed DAG that allows a mixing inside a block, unmixing gains nothing, and the edge
charge that would reward it is discrete: no gradient step in the basis drops an edge.
:func:`switch_graph` moves between graphs instead. From a DAG ``G``, each candidate is
``G`` with one identified edge (cross-modal, or mapped within a block) deleted or
reversed, or ``G`` itself; for each, the maps inside the searched blocks and the
mechanisms are fitted together under that DAG alone (so every family of the candidate
is fitted for it, not shared with other parent sets) on part of the rows, and the
candidate is scored on the other rows::

    mean_held-out [log p(u | G) + log |det A|] - sum_j log sd_j - |G| c / N,

with ``c`` the graph prior's charge per edge (``sparsity``, with ``N`` the rows). The
best candidate is taken while it beats staying at ``G``. Every candidate starts from the
current maps and mechanisms, so staying is scored after as many steps as a move.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from pyro_personax.checks import check_int
from pyro_personax.graph import is_dag
from pyro_personax.inference.basis import searched_blocks
from pyro_personax.inference.nonfinite import restore

__all__ = ["basis_density", "block_mapped", "switch_graph"]

logger = logging.getLogger(__name__)


def block_mapped(model, x: torch.Tensor, parts, blocks, *, stats=None):
    """Latents ``x`` ``(N, D)`` read through a block-diagonal map: ``(full (D, D), u (N, D), spread (D,))``.

    ``full`` is the identity with ``parts[k]`` on ``blocks[k]``; ``w = x @ full.T`` is
    standardised by ``stats`` ``(mean (D,), spread (D,))`` (default: ``w``'s own) and put on
    the model's latent scale, ``u``.
    """
    full = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    for b, part in zip(blocks, parts):
        full[b, b] = part
    w = x @ full.T
    if stats is None:
        spread = w.std(0)  # before the mean: the order autograd sums their gradients in
        mean = w.mean(0)
    else:
        mean, spread = stats
    return full, (w - mean) / spread * model.latent_scale + model.latent_loc, spread


def basis_density(model, x: torch.Tensor, parts, blocks, graph: torch.Tensor, *, stats=None):
    """The polish criterion of :func:`block_mapped`'s ``u`` under DAG ``graph`` ``(D, D)``:
    ``mean_n log p(u_n | G) + sum_k log |det parts[k]| - sum_j log spread_j``, with ``(full, u, spread)``."""
    full, u, spread = block_mapped(model, x, parts, blocks, stats=stats)
    value = (model.latent_distribution(graph).node_log_prob(u).sum(-1).mean()
             + sum(torch.linalg.slogdet(part)[1] for part in parts) - torch.log(spread).sum())
    return value, full, u, spread


def _moves(graph: np.ndarray, movable: np.ndarray, allowed: np.ndarray) -> list[np.ndarray]:
    """``graph`` ``(D, D)`` itself, then every DAG one deletion or reversal of a ``movable`` edge away."""
    out = [graph]
    for i, j in np.argwhere(graph & movable):
        deleted = graph.copy()
        deleted[i, j] = False
        out.append(deleted)
        if allowed[j, i]:
            reversed_ = deleted.copy()
            reversed_[j, i] = True
            if is_dag(reversed_):
                out.append(reversed_)
    return out


def switch_graph(model, z: torch.Tensor, graph, *, max_moves: int, sparsity="bic", steps: int = 150,
                 learning_rate: float = 0.005, holdout: float = 1 / 3,
                 seed: int = 0) -> tuple[torch.Tensor, np.ndarray, list[dict]]:
    """Greedy moves on the identified edges of ``graph`` (module docstring); return the basis map and the DAG.

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` whose mechanisms are fitted to ``z``,
        with :meth:`~pyro_personax.models.PersonaXModel.standardise_latents` of ``z``. Its
        mechanisms are left as the last accepted candidate's fit (fit them again before use
        elsewhere).
    z
        Latents ``(N, D)``, ``N >= 6``.
    graph
        The starting DAG ``(D, D)``, 0/1 (``[i, j]`` = ``i -> j``), within the model's tiers.
    max_moves
        Most moves taken (``>= 1``).
    sparsity
        The graph prior's sparsity factor, as in training.
    steps, learning_rate
        Adam steps per candidate and step size.
    holdout
        Fraction of the rows (chosen at random by ``seed``) that score; the rest fit.
    seed
        Seed of the split.

    Returns
    -------
    tuple
        ``T`` ``(D, D)``, block diagonal, such that ``z @ T.T`` is the final basis up to
        each latent's location and scale; the final DAG ``(D, D)`` bool; and one dict per
        step: ``graph`` (the best candidate's edges as ``(i, j)`` pairs), ``score`` (per
        entity, as above), ``candidates`` (how many were scored), ``moved`` (whether the
        best candidate was a move rather than staying).
    """
    check_int("max_moves", max_moves, low=1)
    check_int("steps", steps, low=1)
    n, D = z.shape
    if n < 6:
        raise ValueError(f"z: expected at least 6 rows (fit and held-out parts); found {n}")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout: expected a fraction in (0, 1); found {holdout!r}")
    graph = np.asarray(graph).astype(bool)
    allowed = (model.free_mask | model.required_mask).cpu().numpy()
    if graph.shape != (D, D) or not is_dag(graph) or (graph & ~allowed).any():
        raise ValueError(f"graph: expected a DAG ({D}, {D}) within the model's tiers; found shape {graph.shape}")
    movable = model.layout.identified_mask() & model.free_mask.cpu().numpy()
    charge = -float(model.edge_log_weight(sparsity, n)) / n
    spread0 = z.std(0)
    x = ((z - z.mean(0)) / spread0).detach()
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(x.device)
    cut = max(1, min(n - 3, int(round(n * holdout))))
    held, fit = x[order[:cut]], x[order[cut:]]
    blocks = searched_blocks(model.layout)
    params = list(model.mechanism_parameters())

    def candidate(G: np.ndarray, start_parts, start_mech) -> tuple[float, list, list]:
        restore(params, start_mech)
        parts = [part.clone().requires_grad_(True) for part in start_parts]
        A = torch.as_tensor(G, dtype=x.dtype, device=x.device)
        optimiser = torch.optim.Adam([*parts, *params], lr=learning_rate)
        for _ in range(steps):
            value = basis_density(model, fit, parts, blocks, A)[0]
            if not torch.isfinite(value):
                return -float("inf"), start_parts, start_mech
            optimiser.zero_grad(set_to_none=True)
            (-value).backward()
            optimiser.step()
        with torch.no_grad():
            full, _, spread = block_mapped(model, fit, parts, blocks)
            score = basis_density(model, held, parts, blocks, A, stats=((fit @ full.T).mean(0), spread))[0]
        score = float(score) - charge * float(G.sum())
        return (score if np.isfinite(score) else -float("inf"),
                [part.detach() for part in parts], [p.detach().clone() for p in params])

    parts = [torch.eye(b.stop - b.start, dtype=x.dtype, device=x.device) for b in blocks]
    mech = [p.detach().clone() for p in params]
    log = []
    with torch.enable_grad():
        for _ in range(max_moves):
            options = _moves(graph, movable, allowed)
            scored = [(candidate(G, parts, mech), G) for G in options]
            best = max(range(len(scored)), key=lambda k: scored[k][0][0])
            (score, parts_b, mech_b), G = scored[best]
            stay = scored[0][0][0]
            log.append({"graph": [tuple(int(v) for v in e) for e in np.argwhere(G)], "score": score,
                        "candidates": len(options), "moved": best != 0})
            parts, mech = parts_b, mech_b
            logger.info("graph move: %d edges, %.4f per entity (staying: %.4f)", int(G.sum()), score, stay)
            if best == 0:
                break
            graph = G
    restore(params, mech)
    with torch.no_grad():
        full = block_mapped(model, x, parts, blocks)[0]
    return full / spread0, graph, log
