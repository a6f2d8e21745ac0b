"""The cross-modal reading: the coordinates of each modality block that the other blocks depend on.

Sun et al. (ICLR 2025, arXiv 2411.06518) identify a modality latent singly only where it
is tied to other modalities (their Condition 4.3): mixing it with a block partner would
add cross-modal edges. What the data fix is therefore the part of each block through
which the other modality blocks depend on it: a statistic ``T_b`` of the block's latents
``z_b`` with ``z_other`` independent of ``z_b`` given ``T_b``, fixed up to an invertible
map of its ``k_b`` coordinates (for ``k_b = 1``, a monotone map: score it by rank
correlation). Generically each latent of the block with a cross-modal parent adds one
dimension (its own noise), and the block's cross-modal parents add one per mechanism of
another block they feed, so ``k_b`` can be smaller than the number of the block's
latents with cross-modal edges (five traits feeding three face latents: ``k = 3``).
A fit's latents can hold a block's identified latent spread over several coordinates
(the model's likelihood cannot tell invertible maps inside a block apart); the reading
finds it from the latents alone, whatever their basis. :func:`reading_basis` re-expresses
each block by its reading and the rest of the block given it, a basis in which the
dependence between blocks runs through the readings alone
(:meth:`~pyro_personax.PersonaX.reading_graph` fits the graph posterior there).

:func:`cross_modal_reading` estimates ``T_b`` by a bottleneck regression: a network
``h: z_b -> R^k`` followed by ``g: R^k -> z_other`` (both with two hidden layers),
fitted by least squares on standardised latents and kept at its best loss on
validation rows (stopped after 300 steps without a better one); ``k = 0`` predicts
the mean. ``k_b`` is the smallest ``k`` that no larger ``k <= d_b`` beats on the
validation rows by more than ``threshold`` standard errors of the paired per-row
difference of losses (a one-sided test); ``k_b = 0`` says that no cross-modal
dependence is detected. The regression reads the dependence that moves
the other blocks' conditional mean, not a dependence in their spread alone. Only
modality blocks are read: the shared block is read by every decoder, so none of its
latents is identified by this route.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from pyro_personax.identifiability import thresholded_graph
from pyro_personax.layout import LatentLayout

__all__ = ["CrossModalReading", "ReadingBasis", "ReadingGraph", "cross_modal_reading", "reading_basis",
           "spread_readings", "spread_warning"]

logger = logging.getLogger(__name__)

#: Steps between validation checks, and checks without improvement before a regression stops.
_CHECK_EVERY, _PATIENCE = 25, 12


@dataclass
class CrossModalReading:
    """What :func:`cross_modal_reading` returns.

    Attributes
    ----------
    readings
        ``(N, K)`` float array, ``K = sum(dims.values())``: the reading of each block in
        the layout's block order, each column standardised.
    names
        ``K`` column names, ``"<block>_reading_<i>"``.
    dims
        Block name -> ``k_b``, the dimension of its cross-modal reading.
    validation_loss
        Block name -> ``(d_b + 1,)`` array: the bottleneck regression's validation loss
        (mean squared error of the standardised other latents) for ``k = 0 .. d_b``.
    nearest
        Reading name -> the block latent with the largest ``|Spearman|`` with it, and
        that correlation.
    spread
        Filled by :meth:`~pyro_personax.PersonaX.cross_modal_reading`: the blocks of
        :func:`spread_readings` given the fit's graph (empty otherwise).
    """

    readings: np.ndarray
    names: list[str]
    dims: dict[str, int]
    validation_loss: dict[str, np.ndarray]
    nearest: dict[str, tuple[str, float]] = field(default_factory=dict)
    spread: dict[str, list[str]] = field(default_factory=dict)

    def block_columns(self, block: str) -> list[int]:
        """Indices of ``block``'s columns in :attr:`readings` (empty for a block with ``k_b = 0``)."""
        if block not in self.dims:
            raise KeyError(f"block: expected one of {sorted(self.dims)}; found {block!r}")
        return [i for i, n in enumerate(self.names) if n.startswith(f"{block}_reading_")]


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def _split(n: int, validation_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation and training row indices of ``n`` rows: a random share ``validation_fraction`` (at least one)."""
    order = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, int(round(validation_fraction * n)))
    return torch.as_tensor(order[:n_valid]), torch.as_tensor(order[n_valid:])


def _mlp(d_in: int, d_out: int, width: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(d_in, width), torch.nn.SiLU(), torch.nn.Linear(width, width),
                               torch.nn.SiLU(), torch.nn.Linear(width, d_out))


def _bottleneck(x: torch.Tensor, y: torch.Tensor, train: torch.Tensor, valid: torch.Tensor, k: int, *, steps: int,
                width: int, lr: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``y ~ g(h(x))`` with ``h`` into ``R^k``; at the best validation loss, return ``h(x)`` ``(N, k)``, the
    loss of every validation row and the prediction ``g(h(x))`` ``(N, y_dim)``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        h, g = _mlp(x.shape[1], k, width), _mlp(k, y.shape[1], width)
    opt = torch.optim.Adam([*h.parameters(), *g.parameters()], lr=lr)
    best, reading, since = np.inf, None, 0
    for step in range(steps):
        opt.zero_grad()
        loss = (g(h(x[train])) - y[train]).pow(2).mean()
        loss.backward()
        opt.step()
        if step % _CHECK_EVERY == 0 or step == steps - 1:
            with torch.no_grad():
                error = (g(h(x[valid])) - y[valid]).pow(2)
                value = float(error.mean())
            if value < best:
                best, since = value, 0
                with torch.no_grad():
                    reading = h(x)
                    fitted = g(reading).numpy().copy()
                    reading = reading.numpy().copy()
                rows = error.mean(1).numpy().copy()
            else:
                since += 1
                if since >= _PATIENCE:
                    break
    return reading, rows, fitted


def _better(loss: np.ndarray, other: np.ndarray, threshold: float) -> bool:
    """Whether ``other`` lowers the per-row losses ``loss`` ``(n,)`` by more than ``threshold`` standard errors."""
    diff = loss - other
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return bool(diff.mean() > threshold * se) if se > 0 else bool(diff.mean() > 0)


def cross_modal_reading(latents, layout: LatentLayout, *, threshold: float = 3.0, validation_fraction: float = 0.2,
                        steps: int = 2000, width: int = 64, lr: float = 3e-3,
                        seed: int = 0) -> CrossModalReading:
    """Read each modality block's identified part: the statistic the other modality blocks depend on.

    Parameters
    ----------
    latents
        ``(N, D)`` latents in the layout's order (posterior means, for example
        :meth:`~pyro_personax.PersonaX.get_latent_representation`).
    layout
        The :class:`~pyro_personax.layout.LatentLayout` of ``latents``; it needs two or
        more modality blocks.
    threshold
        A larger reading is taken where it lowers the validation loss by more than this
        many standard errors of the paired per-row difference (``> 0``).
    validation_fraction
        Share of rows the regressions are stopped on (``0 < fraction < 1``).
    steps, width, lr
        Full-batch Adam steps, hidden width and learning rate of each bottleneck regression.
    seed
        Seed of the split and of the networks' start; the same seed gives the same reading.

    Returns
    -------
    CrossModalReading
        The readings ``(N, K)`` and their dimensions per block (see the class).

    Raises
    ------
    ValueError
        ``latents`` is not a finite ``(N, layout.latent_dim)`` array with at least 20
        rows, the layout has fewer than two modality blocks, or an option is out of range.
    """
    z = np.asarray(latents, dtype=float)
    D = layout.latent_dim
    if z.ndim != 2 or z.shape[1] != D or len(z) < 20:
        raise ValueError(f"latents: expected a (N, {D}) array with N >= 20; found shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("latents: expected finite values; found NaN or infinite entries")
    blocks = [b for b in layout.modalities if layout.modality_dims[b] > 0]
    if len(blocks) < 2:
        raise ValueError(f"layout: the cross-modal reading needs two or more modality blocks; found {blocks}")
    if not threshold > 0:
        raise ValueError(f"threshold: expected > 0; found {threshold}")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction: expected a value in (0, 1); found {validation_fraction}")
    if steps < 1 or width < 1:
        raise ValueError(f"steps and width: expected >= 1; found steps={steps}, width={width}")
    zs = torch.as_tensor(_standardise(z), dtype=torch.float32)
    valid, train = _split(len(z), validation_fraction, seed)
    block_of = np.asarray(layout.block_of)
    columns, names, dims, losses, nearest = [], [], {}, {}, {}
    for b_index, block in enumerate(blocks):
        own = np.flatnonzero(block_of == block)
        other = np.flatnonzero(np.isin(block_of, [o for o in blocks if o != block]))
        x, y = zs[:, own], zs[:, other]
        base = (y[valid] - y[train].mean(0)).pow(2).mean(1).numpy()
        fits = [_bottleneck(x, y, train, valid, k, steps=steps, width=width, lr=lr, seed=seed + 101 * b_index + k)
                for k in range(1, len(own) + 1)]
        rows = [base] + [f[1] for f in fits]
        loss = np.array([r.mean() for r in rows])
        losses[block] = loss.astype(float)
        k_b = next(k for k in range(len(rows)) if not any(_better(rows[k], rows[m], threshold)
                                                          for m in range(k + 1, len(rows))))
        dims[block] = k_b
        logger.info("cross-modal reading of %s: k = %d (validation loss by k: %s)", block, k_b,
                    ", ".join(f"{v:.4f}" for v in loss))
        if k_b == 0:
            continue
        reading = _standardise(fits[k_b - 1][0])
        for i in range(k_b):
            rho = np.nan_to_num([spearmanr(reading[:, i], z[:, j]).statistic for j in own])  # 0 if constant
            j = int(np.argmax(np.abs(rho)))
            reading[:, i] *= np.sign(rho[j]) or 1.0  # oriented along its nearest block latent
            name = f"{block}_reading_{i}"
            names.append(name)
            nearest[name] = (layout.names[own[j]], float(abs(rho[j])))
            columns.append(reading[:, i])
    readings = np.column_stack(columns) if columns else np.zeros((len(z), 0))
    return CrossModalReading(readings=readings, names=names, dims=dims, validation_loss=losses, nearest=nearest)


@dataclass
class ReadingBasis:
    """What :func:`reading_basis` returns.

    Attributes
    ----------
    latents
        ``(N, D)`` float array in the layout's latent order, each column standardised: in
        each modality block with a reading, the reading's columns and the block's other
        latents made mean-independent of them; every other latent unchanged up to standardisation.
    names
        ``D`` column names: ``"<block>_reading_<i>"``, ``"<latent>_rest"`` for a latent
        replaced by its residual, the layout's name for a latent kept.
    replaced
        Reading name -> the layout latent whose place it takes.
    """

    latents: np.ndarray
    names: list[str]
    replaced: dict[str, str]


@dataclass
class ReadingGraph:
    """What :meth:`~pyro_personax.PersonaX.reading_graph` returns: a graph posterior on the reading basis.

    Attributes
    ----------
    edge_probabilities
        ``(D, D)`` DataFrame of ``P(i -> j)`` given the latents in the reading basis; index
        = parent names, columns = child names (:attr:`ReadingBasis.names`).
    edge_classes
        ``(D, D)`` DataFrame of the cells' edge classes, as the layout's
        (``"cross-modal"`` and so on; the basis keeps every latent in its block).
    basis
        The :class:`ReadingBasis` the graph was fitted to.
    reading
        The :class:`CrossModalReading` the basis was built from.
    fit_probabilities
        ``(F, D, D)`` array of each fit's ``P(i -> j)`` (``F`` fits of the mechanisms from
        different starts); ``edge_probabilities`` is their mean.
    """

    edge_probabilities: pd.DataFrame
    edge_classes: pd.DataFrame
    basis: ReadingBasis
    reading: CrossModalReading
    fit_probabilities: np.ndarray

    def cross_modal(self) -> pd.DataFrame:
        """The cross-modal cells, most probable first: columns ``parent``, ``child``, ``probability``."""
        cells = self.edge_probabilities.stack()
        cells = cells[(self.edge_classes.stack() == "cross-modal").to_numpy()]
        out = cells.rename("probability").rename_axis(["parent", "child"]).reset_index()
        return out.sort_values("probability", ascending=False, kind="stable").reset_index(drop=True)


def reading_basis(latents, layout: LatentLayout, reading: CrossModalReading, *, validation_fraction: float = 0.2,
                  steps: int = 2000, width: int = 64, lr: float = 3e-3, seed: int = 0) -> ReadingBasis:
    """Re-express each modality block by its cross-modal reading and the rest of the block given it.

    In a block with a reading of ``k_b >= 1`` columns, the reading takes the places of
    the ``k_b`` block latents it is nearest to (largest ``|Spearman|``, assigned
    greedily, one latent per column), and each other latent ``z_j`` of the block is
    replaced by ``z_j - E[z_j | T_b]``, the regression of ``z_j`` on the reading ``T_b``
    (a network with two hidden layers, stopped at its best loss on validation rows).
    Where the other blocks are independent of the block given ``T_b`` (what the reading
    estimates), so is any function of the block: in this basis the dependence between
    modality blocks runs through the reading's columns alone, and a graph fitted to it is
    the sparsest across modalities (Sun et al.'s Theorem 4.4) up to the reading's error.
    The regression removes from the rest what is a function of ``T_b``, which a graph
    would otherwise have to fit as an edge between them inside the block.

    Parameters
    ----------
    latents
        ``(N, D)`` latents in the layout's order, those ``reading`` was read from.
    layout
        Their :class:`~pyro_personax.layout.LatentLayout`.
    reading
        :func:`cross_modal_reading` of ``latents`` (``N`` rows).
    validation_fraction, steps, width, lr, seed
        The residual regressions' settings, as in :func:`cross_modal_reading`.

    Returns
    -------
    ReadingBasis
        The latents ``(N, D)`` in the new basis, their names, and which latents the
        readings replaced.

    Raises
    ------
    ValueError
        ``latents`` is not a finite ``(N, layout.latent_dim)`` array, or ``reading`` has
        another number of rows or a block the layout lacks.
    """
    z = np.asarray(latents, dtype=float)
    D = layout.latent_dim
    if z.ndim != 2 or z.shape[1] != D or not np.isfinite(z).all():
        raise ValueError(f"latents: expected a finite (N, {D}) array; found shape {z.shape}")
    if reading.readings.shape[0] != len(z):
        raise ValueError(f"reading: expected readings of the {len(z)} rows of latents; "
                         f"found {reading.readings.shape[0]}")
    unknown = sorted(set(reading.dims) - set(layout.modalities))
    if unknown:
        raise ValueError(f"reading: blocks {unknown} are not modality blocks of the layout ({layout.modalities})")
    v, names, replaced = _standardise(z), list(layout.names), {}
    valid, train = _split(len(z), validation_fraction, seed)
    block_of = np.asarray(layout.block_of)
    for b_index, (block, k) in enumerate(reading.dims.items()):
        if k == 0:
            continue
        own = list(np.flatnonzero(block_of == block))
        columns = reading.block_columns(block)
        t = _standardise(reading.readings[:, columns])
        rho = np.abs(np.nan_to_num([[spearmanr(t[:, i], z[:, j]).statistic for j in own] for i in range(k)]))
        taken = []
        for _ in range(k):  # the strongest pair of a free reading column and a free latent first
            i, j = np.unravel_index(int(np.argmax(rho)), rho.shape)
            rho[i, :], rho[:, j] = -1.0, -1.0
            replaced[reading.names[columns[i]]] = layout.names[own[j]]
            taken.append(own[j])
            v[:, own[j]], names[own[j]] = t[:, i], reading.names[columns[i]]
        rest = [j for j in own if j not in taken]
        if rest:
            x, y = torch.as_tensor(t, dtype=torch.float32), torch.as_tensor(v[:, rest], dtype=torch.float32)
            _, _, fitted = _bottleneck(x, y, train, valid, k, steps=steps, width=width, lr=lr,
                                       seed=seed + 101 * b_index)
            v[:, rest] = _standardise(v[:, rest] - fitted)
            for j in rest:
                names[j] = f"{layout.names[j]}_rest"
    return ReadingBasis(latents=v, names=names, replaced=replaced)


def spread_readings(reading: CrossModalReading, layout: LatentLayout, probs, threshold: float = 0.5
                    ) -> dict[str, list[str]]:
    """Blocks whose latents with a cross-modal parent outnumber the dimension of the block's reading.

    Each latent with a parent in another modality block brings its own noise into the
    dependence between the blocks, so a graph in which ``c`` latents of a block have such
    parents needs a reading of at least ``min(c, D_other)`` dimensions (``D_other``: the
    latents of the other modality blocks, which the regression predicts). Where the
    reading has fewer, the block's identified part is spread over those latents and
    their cross-modal edges count the same dependence more than once. A latent counts
    when it has a cross-modal parent with ``P > threshold`` after the graph is made
    acyclic (:func:`~pyro_personax.graph.to_dag`, cross-modal cells only).

    Parameters
    ----------
    reading
        The :class:`CrossModalReading` (its ``dims``).
    layout, probs, threshold
        The graph's layout, its ``(D, D)`` edge probabilities and the probability above
        which an edge counts (as :func:`~pyro_personax.identifiability.thresholded_graph`).

    Returns
    -------
    dict
        Block name -> the names of its latents with a cross-modal parent, for the blocks
        where ``min(c, D_other)`` exceeds ``reading.dims[block]``.
    """
    children = thresholded_graph(layout, probs, layout.edge_classes() == "cross-modal", threshold).any(axis=0)
    blocks = np.asarray(layout.block_of)
    out = {}
    for block, k in reading.dims.items():
        names = [n for n, b, ok in zip(layout.names, blocks, children) if b == block and ok]
        others = sum(layout.modality_dims[m] for m in reading.dims if m != block)
        if min(len(names), others) > k:
            out[block] = names
    return out


def spread_warning(block: str, names, k: int) -> str:
    """The sentence that warns about one block of :func:`spread_readings`."""
    return (f"block {block}: latents {', '.join(names)} have cross-modal parents with P > 0.5, but the other blocks "
            f"depend on the block through {k} coordinate(s) (its cross-modal reading): the identified part is "
            "spread over these latents, and their cross-modal edges count it more than once")
