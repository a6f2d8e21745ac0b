"""The basis inside modality blocks: a search for the block-linear map under which the latents are an LiNGAM.

The likelihood reads each modality block through decoders that undo any invertible map
of the block, so SVI leaves every block in an arbitrary basis (a rotation or shear of
its true latents), and the graph fitted in that basis has false cross-modal edges. What
separates the bases is the latent prior: in the true basis the latents follow sparse
structural equations with independent, non-Gaussian noises. :func:`search_block_basis`
scores a block-linear map ``U`` (identity on the shared block and on blocks under a
measurement map, :func:`searched_blocks`) of standardised latents
``z`` by the linear non-Gaussian (LiNGAM) likelihood of ``U z`` under the best DAG the
layout allows::

    max_G  sum_j N (-H(e_j / s_j) - log s_j) - pen |G|  +  N log |det U|,

``e_j`` the least-squares residual of latent ``j`` on its parents in ``G``, ``s_j`` its
standard deviation, ``H`` Hyvarinen's maximum-entropy approximation of a unit-variance
variable's differential entropy, ``pen`` the charge per edge (``log(N) / 2`` unless
given; the graph stage charges what the model's prior charges). The best DAG is found exactly by dynamic programming
over subsets of latents (:func:`best_dag`); the map is improved by Adam under the DAG
found, alternating until the score stops rising, from the identity and from random
rotations of each block; the best-scoring map is kept.

The score only moves the basis inside blocks, where the likelihood cannot; it assumes
near-linear mechanisms and non-Gaussian noises, and with Gaussian noises every rotation
scores alike (the identity is then kept unless another map scores higher).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from pyro_personax.checks import check_int
from pyro_personax.graph import best_dag as graph_best_dag

__all__ = ["BlockBasis", "best_dag", "linear_node_table", "lingam_score", "local_search", "neg_entropy",
           "search_block_basis", "search_gain", "searched_blocks"]

logger = logging.getLogger(__name__)

_K1, _K2, _GAMMA = 79.047, 7.4129, 0.37457
_LOG_2PI_E = 0.5 * (1 + np.log(2 * np.pi))


def neg_entropy(u):
    """Hyvarinen's approximation of ``-H`` per column of a unit-variance ``u`` ``(N, k)`` (numpy or torch).

    Returns ``(k,)``; ``-0.5 (1 + log 2 pi)`` for a Gaussian, larger for non-Gaussian columns.
    """
    lib = torch if isinstance(u, torch.Tensor) else np
    return -(_LOG_2PI_E - _K1 * (lib.log(lib.cosh(u)).mean(0) - _GAMMA) ** 2
             - _K2 * (u * lib.exp(-u ** 2 / 2)).mean(0) ** 2)


def linear_node_table(z: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """LiNGAM log-likelihoods of every latent given every parent set.

    Parameters
    ----------
    z
        ``(N, D)`` latents, each centred.
    allowed
        ``(D, D)`` bool, ``[i, j]``: the edge ``i -> j`` is allowed.

    Returns
    -------
    numpy.ndarray
        ``(2^D, D)``: ``[b, j]`` is ``N (-H(e / s) - log s)`` for the residual ``e`` of
        latent ``j`` on the parents in bitmask ``b`` (``-inf`` where ``b`` holds ``j`` or a
        disallowed parent).
    """
    N, D = z.shape
    cov = z.T @ z / N
    table = np.full((2**D, D), -np.inf)
    for bits in range(2**D):
        parents = [i for i in range(D) if bits >> i & 1]
        children = [j for j in range(D) if j not in parents and all(allowed[i, j] for i in parents)]
        if not children:
            continue
        resid = z[:, children]
        if parents:
            coef = np.linalg.solve(cov[np.ix_(parents, parents)], cov[np.ix_(parents, children)])
            resid = resid - z[:, parents] @ coef
        s = resid.std(0)
        table[bits, children] = N * (neg_entropy(resid / s) - np.log(s))
    return table


def best_dag(table: np.ndarray, penalty: float, allowed: np.ndarray) -> tuple[float, np.ndarray]:
    """The highest-scoring DAG for node terms ``table`` ``(2^D, D)`` and a charge ``penalty`` per edge.

    ``table[b, j]`` is the log-likelihood of latent ``j`` with parent bitmask ``b``;
    ``allowed`` ``(D, D)`` marks the pairs the layout allows. Found exactly by
    :func:`pyro_personax.graph.best_dag`. Returns the score and the ``(D, D)`` 0/1
    adjacency (``[i, j]`` = i -> j).
    """
    D = table.shape[1]
    codes = np.arange(2**D)
    sizes = np.array([bin(b).count("1") for b in codes])
    scores = np.empty((2**D, D))
    for j in range(D):
        ok_bits = sum(1 << i for i in range(D) if allowed[i, j] and i != j)
        scores[:, j] = np.where((codes & ~ok_bits) == 0, table[:, j] - penalty * sizes, -np.inf)
    graph, _, score = graph_best_dag(scores)
    return score, graph.astype(int)


def lingam_score(z: np.ndarray, U: np.ndarray, allowed: np.ndarray,
                 penalty: float | None = None) -> tuple[float, np.ndarray]:
    """The best DAG's LiNGAM score of ``z U^T`` in ``z``'s coordinates (with ``N log |det U|``), and that DAG.

    ``z`` ``(N, D)`` centred, ``U`` ``(D, D)``, ``allowed`` ``(D, D)`` bool; ``penalty``
    per edge (``None``: ``log(N) / 2``, BIC for one coefficient).
    """
    x = z @ U.T
    std = x.std(0)
    penalty = 0.5 * np.log(len(z)) if penalty is None else penalty
    value, graph = best_dag(linear_node_table(x / std, allowed), penalty, allowed)
    return value - len(z) * float(np.log(std).sum()) + len(z) * float(np.linalg.slogdet(U)[1]), graph


def _improve(z: np.ndarray, blocks: list[slice], graph: np.ndarray, U: np.ndarray, steps: int) -> np.ndarray:
    """Adam steps on the block parts of ``U`` raising the LiNGAM score of ``z U^T`` under ``graph``."""
    D = z.shape[1]
    zt = torch.as_tensor(z, dtype=torch.float64)
    parts = [torch.tensor(U[b, b], dtype=torch.float64, requires_grad=True) for b in blocks]
    optimiser = torch.optim.Adam(parts, lr=0.02)
    mask = torch.as_tensor(graph, dtype=torch.float64).T  # mask[j, i]: i is a parent of j
    eye = torch.eye(D, dtype=torch.float64)
    for _ in range(steps):
        full = eye.clone()
        for b, part in zip(blocks, parts):
            full[b, b] = part
        x = zt @ full.T
        cov = x.T @ x / len(x)
        # every node's regression on its parents at once: rows j of (D, D) systems restricted to the parents
        systems = mask[:, :, None] * cov[None] * mask[:, None, :] + torch.diag_embed(1 - mask)
        coef = torch.linalg.solve(systems, (mask * cov).unsqueeze(-1)).squeeze(-1)  # coef[j, i]
        resid = x - x @ coef.T
        s = resid.std(0)
        total = sum(torch.linalg.slogdet(part)[1] for part in parts) + (neg_entropy(resid / s) - torch.log(s)).sum()
        optimiser.zero_grad()
        (-total).backward()
        optimiser.step()
    U = U.copy()
    for b, part in zip(blocks, parts):
        U[b, b] = part.detach().numpy()
    return U


def local_search(z: np.ndarray, blocks: list[slice], allowed: np.ndarray, U: np.ndarray, *, steps: int = 300,
                 max_rounds: int = 8, penalty: float | None = None) -> tuple[float, np.ndarray]:
    """From ``U``, alternate the exact best DAG and ``steps`` Adam steps on the block maps while the score rises.

    ``z`` ``(N, D)`` centred, ``blocks`` the slices whose maps move, ``U`` ``(D, D)``.
    Returns the best score (:func:`lingam_score`) and its map.
    """
    found = None
    for _ in range(max_rounds):
        value, graph = lingam_score(z, U, allowed, penalty)
        if found is not None and value <= found[0]:
            break
        found = (value, U)
        U = _improve(z, blocks, graph, U, steps)
    return found


@dataclass(frozen=True)
class BlockBasis:
    """Result of :func:`search_block_basis`.

    Attributes
    ----------
    map
        ``(D, D)`` block-diagonal map ``T`` on the latents as given (not standardised):
        the new latents are ``z T^T``, each with the standard deviation of the latent it
        replaces; identity outside :func:`searched_blocks`.
    score, identity_score
        LiNGAM score per entity of the map kept and of the identity (standardised latents).
    restart_scores
        Score per entity of every restart (the first from the identity).
    """

    map: np.ndarray
    score: float
    identity_score: float
    restart_scores: tuple[float, ...]


def search_gain(restart_scores, identity_score: float) -> float:
    """Gain of a basis search over the basis it started from.

    Parameters
    ----------
    restart_scores
        Sequence of LiNGAM scores per entity, one per start (as in ``BlockBasis.restart_scores``).
    identity_score
        The score per entity of the basis the search started from.

    Returns
    -------
    float
        ``max(restart_scores) - identity_score``, in nats per entity.
    """
    return max(restart_scores) - identity_score


def searched_blocks(layout) -> list[slice]:
    """The blocks whose basis :func:`search_block_basis` moves: modality blocks of two or more latents
    without a measurement map (a map pins which latent each group of features reads)."""
    return [layout.block_slice(b) for b in layout.modalities
            if layout.modality_dims[b] > 1 and b not in layout.measurement_map]


def search_block_basis(z, layout, *, num_restarts: int = 8, steps: int = 300, max_rounds: int = 8,
                       penalty: float | None = None, seed: int = 0) -> BlockBasis:
    """Search the block-linear map of ``z`` with the best LiNGAM score (see the module docstring).

    Parameters
    ----------
    z
        ``(N, D)`` latents (numpy or torch; for example the posterior means of the
        training rows), ``D <= 16``.
    layout
        The :class:`~pyro_personax.layout.LatentLayout` (its blocks and allowed edges).
    num_restarts
        Starts of the search: the identity and ``num_restarts - 1`` random rotations of
        every modality block (``>= 1``).
    steps
        Adam steps on the map under each DAG found.
    max_rounds
        Most alternations of the exact DAG and the Adam steps per start.
    penalty
        Charge per edge in nats (``None``: ``log(N) / 2``).
    seed
        Seed of the random rotations.

    Returns
    -------
    BlockBasis
    """
    z = z.detach().cpu().double().numpy() if isinstance(z, torch.Tensor) else np.asarray(z, dtype=np.float64)
    N, D = z.shape
    if D != layout.latent_dim or D > 16 or N < 2 * D:
        raise ValueError(f"z: expected shape (N >= {2 * D}, {layout.latent_dim}) with at most 16 latents; "
                         f"found {z.shape}")
    check_int("num_restarts", num_restarts)
    scale = z.std(0)
    x = (z - z.mean(0)) / scale
    allowed = np.asarray(layout.allowed_mask(), dtype=bool)
    blocks = searched_blocks(layout)
    identity = np.eye(D)
    identity_score = lingam_score(x, identity, allowed, penalty)[0]
    if not blocks:
        return BlockBasis(identity, identity_score / N, identity_score / N, (identity_score / N,))
    rng = np.random.default_rng(seed)
    best, scores = None, []
    for restart in range(num_restarts):
        U = np.eye(D)
        if restart:
            for b in blocks:
                U[b, b] = np.linalg.qr(rng.normal(size=(b.stop - b.start,) * 2))[0]
        found = local_search(x, blocks, allowed, U, steps=steps, max_rounds=max_rounds, penalty=penalty)
        scores.append(found[0] / N)
        logger.debug("basis search: restart %d score %.4f per entity", restart, scores[-1])
        if best is None or found[0] > best[0]:
            best = found
    # back to z's units: in each block searched, new latent j = (U x)_j rescaled to the spread of latent j
    T = np.eye(D)
    for b in blocks:
        part = best[1][b, b] / scale[None, b]
        T[b, b] = part * (scale[b] / (z[:, b] @ part.T).std(0))[:, None]
    return BlockBasis(T, best[0] / N, identity_score / N, tuple(scores))
