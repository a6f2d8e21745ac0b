"""Random DAGs, structural equation models and measurement maps for calibration studies.

Graphs are 0/1 integer ``(D, D)`` matrices with ``A[i, j]`` = parent i -> child j
(the convention of :mod:`pyro_personax.graph`). Given a
:class:`~pyro_personax.layout.LatentLayout`, generators draw only allowed edges and
always include the required ones.

A typical calibration data set::

    layout = LatentLayout(1, {"face": 2, "text": 2})
    A = erdos_renyi_dag(layout, expected_degree=1.5, seed=0)
    z = simulate_sem(A, 2000, mechanism="mlp", noise="laplace", seed=0)
    data, truth = observe_latents(z, A, layout, seed=0)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from pyro_personax.checks import check_int
from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.graph import topological_order
from pyro_personax.layout import SHARED, LatentLayout
from pyro_personax.synthetic.truth import GroundTruth, check_measurement_edges, measurement_latents

logger = logging.getLogger(__name__)

__all__ = ["erdos_renyi_dag", "scale_free_dag", "simulate_sem", "observe_latents", "measurement_map_example"]

#: The measurement map of :func:`measurement_map_example`: features 0-3 of modality ``a`` read
#: ``a_1`` only, features 4-7 read ``a_2`` only.
EXAMPLE_MEASUREMENT_MAP = {"a": [(tuple(range(0, 4)), ("a_1",)), (tuple(range(4, 8)), ("a_2",))]}

MECHANISMS = ("linear", "mlp")
NOISES = ("gaussian", "laplace", "uniform")


def _masks(layout_or_dim) -> tuple[np.ndarray, np.ndarray]:
    """``(allowed, required)`` boolean ``(D, D)`` masks from a layout or a size."""
    if isinstance(layout_or_dim, LatentLayout):
        return layout_or_dim.allowed_mask(), layout_or_dim.required_mask()
    if isinstance(layout_or_dim, (int, np.integer)) and not isinstance(layout_or_dim, bool) and layout_or_dim >= 1:
        D = int(layout_or_dim)
        return ~np.eye(D, dtype=bool), np.zeros((D, D), dtype=bool)
    raise TypeError(f"layout: expected a LatentLayout or a positive int D; found {layout_or_dim!r}")


def _random_topological_order(graph: np.ndarray, rng) -> list[int]:
    """A uniformly tie-broken topological order of the DAG ``graph`` (Kahn's algorithm)."""
    indeg = graph.sum(0).astype(int)
    ready = [i for i in range(len(graph)) if indeg[i] == 0]
    order = []
    while ready:
        node = ready.pop(int(rng.integers(len(ready))))
        order.append(node)
        for child in np.flatnonzero(graph[node]):
            indeg[child] -= 1
            if indeg[child] == 0:
                ready.append(int(child))
    return order


def _causal_order(allowed: np.ndarray, required: np.ndarray, rng) -> np.ndarray:
    """Random order compatible with the required edges and, when possible, with one-way allowed pairs."""
    one_way = allowed & ~allowed.T
    preferred = one_way | required
    if topological_order(preferred.astype(int)) is None:
        preferred = required
    order = _random_topological_order(preferred.astype(int), rng)
    assert len(order) == len(allowed), "required edges must form a DAG (checked by LatentLayout)"
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    return rank


def _check_degree(expected_degree: float) -> None:
    if not np.isfinite(expected_degree) or expected_degree < 0:
        raise ValueError(f"expected_degree: expected a finite number >= 0; found {expected_degree}")


def erdos_renyi_dag(layout_or_dim, expected_degree: float = 1.0, *, seed: int = 0) -> np.ndarray:
    """A random Erdos-Renyi DAG over the latents.

    A random causal order is drawn (compatible with the required edges, and with
    one-way permissions such as ``shared_is_root`` when they are consistent); every
    allowed edge from an earlier to a later latent is kept independently with
    probability ``p = expected_degree * D / (2 * num_candidates)`` (capped at 1), so the
    mean number of edges is ``expected_degree * D / 2`` when enough candidates exist.
    Required edges are always added.

    Parameters
    ----------
    layout_or_dim
        A :class:`LatentLayout` (its ``allowed_mask`` and ``required_mask`` are obeyed)
        or the number of latents ``D``.
    expected_degree
        Mean number of edges per node (parents plus children).
    seed
        Seed of the order and the edges.

    Returns
    -------
    numpy.ndarray
        0/1 int ``(D, D)``, acyclic.
    """
    _check_degree(expected_degree)
    allowed, required = _masks(layout_or_dim)
    rng = np.random.default_rng(seed)
    rank = _causal_order(allowed, required, rng)
    candidates = allowed & (rank[:, None] < rank[None, :])
    n_cand = int(candidates.sum())
    D = len(allowed)
    p = min(1.0, expected_degree * D / (2.0 * n_cand)) if n_cand else 0.0
    A = (candidates & (rng.uniform(size=(D, D)) < p)) | required
    return A.astype(int)


def scale_free_dag(layout_or_dim, edges_per_node: int = 1, *, seed: int = 0) -> np.ndarray:
    """A random scale-free DAG by preferential attachment (Barabasi-Albert style).

    Latents join in a random causal order (as in :func:`erdos_renyi_dag`); each new
    latent receives ``edges_per_node`` parents among the earlier latents that may be its
    parent, chosen with probability proportional to ``1 + degree``, so early latents
    become hubs with many children. Required edges are always added.

    Parameters
    ----------
    layout_or_dim
        A :class:`LatentLayout` or the number of latents ``D``.
    edges_per_node
        Parents drawn per latent (fewer when fewer are allowed).
    seed
        Seed of the order and the attachment.

    Returns
    -------
    numpy.ndarray
        0/1 int ``(D, D)``, acyclic.
    """
    check_int("edges_per_node", edges_per_node, low=0)
    allowed, required = _masks(layout_or_dim)
    rng = np.random.default_rng(seed)
    rank = _causal_order(allowed, required, rng)
    order = np.argsort(rank)
    D = len(allowed)
    A = required.copy()
    for pos, child in enumerate(order):
        earlier = np.array([p for p in order[:pos] if allowed[p, child] and not A[p, child]], dtype=int)
        k = min(int(edges_per_node) - int(A[:, child].sum()), len(earlier))
        if k <= 0:
            continue
        degree = A.sum(0) + A.sum(1)
        weights = 1.0 + degree[earlier]
        chosen = rng.choice(earlier, size=k, replace=False, p=weights / weights.sum())
        A[chosen, child] = True
    assert topological_order(A.astype(int)) is not None and A.shape == (D, D)
    return A.astype(int)


def _noise(kind: str, rng, shape) -> np.ndarray:
    """Unit-variance noise of the given kind."""
    if kind == "gaussian":
        return rng.standard_normal(shape)
    if kind == "laplace":
        return rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=shape)
    return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=shape)


def _mechanism(kind: str, parents: np.ndarray, rng, weight_range, hidden_dim: int) -> np.ndarray:
    """``f_j(parents)`` for ``parents`` of shape ``(N, P)``; returns ``(N,)``."""
    P = parents.shape[1]
    lo, hi = weight_range
    if kind == "linear":
        w = rng.uniform(lo, hi, size=P) * rng.choice([-1.0, 1.0], size=P)
        return parents @ w
    W1 = rng.normal(size=(P, hidden_dim)) * (1.5 / np.sqrt(P))
    b1 = rng.normal(size=hidden_dim) * 0.5
    w2 = rng.uniform(lo, hi, size=hidden_dim) * rng.choice([-1.0, 1.0], size=hidden_dim) / np.sqrt(hidden_dim)
    return np.tanh(parents @ W1 + b1) @ w2


def simulate_sem(
    adjacency,
    num_entities: int,
    *,
    mechanism: str = "linear",
    noise: str = "gaussian",
    noise_scale: float = 1.0,
    weight_range: tuple[float, float] = (0.5, 2.0),
    hidden_dim: int = 16,
    standardize: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Sample latents from a random additive-noise structural equation model on a DAG.

    In a topological order, ``z_j = f_j(z_pa(j)) + noise_scale * e_j`` with unit-variance
    noise ``e_j``. ``f_j`` is linear with weights ``+-U(weight_range)``, or a random
    one-hidden-layer tanh MLP (``hidden_dim`` units). With ``standardize`` every latent
    is scaled to mean 0, standard deviation 1 right after it is generated (before its
    children use it), which removes the variance growth along the order that makes
    sorting by variance a shortcut.

    Parameters
    ----------
    adjacency
        0/1 DAG ``(D, D)``, ``[i, j]`` = i -> j.
    num_entities
        Rows ``N``.
    mechanism
        ``"linear"`` or ``"mlp"``.
    noise
        ``"gaussian"``, ``"laplace"`` or ``"uniform"``.
    noise_scale
        Scale of the additive noise (> 0).
    weight_range
        ``(low, high)`` magnitudes of the random weights, ``0 <= low <= high``.
    hidden_dim
        Hidden units of the MLP mechanism.
    standardize
        Standardise each latent as it is generated.
    seed
        Seed of the mechanisms and the noise.

    Returns
    -------
    numpy.ndarray
        ``(N, D)`` float64 latents.
    """
    A = np.asarray(adjacency)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.isin(A, (0, 1)).all():
        raise ValueError(f"adjacency: expected a 0/1 (D, D) matrix; found shape {A.shape}")
    order = topological_order(A.astype(int))
    if order is None:
        raise ValueError("adjacency: the graph has a directed cycle; expected a DAG")
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism: expected one of {MECHANISMS}; found {mechanism!r}")
    if noise not in NOISES:
        raise ValueError(f"noise: expected one of {NOISES}; found {noise!r}")
    if not noise_scale > 0:
        raise ValueError(f"noise_scale: expected > 0; found {noise_scale}")
    if not 0 <= weight_range[0] <= weight_range[1]:
        raise ValueError(f"weight_range: expected 0 <= low <= high; found {weight_range}")
    check_int("num_entities", num_entities, low=2)
    rng = np.random.default_rng(seed)
    z = np.zeros((int(num_entities), A.shape[0]))
    for j in order:
        parents = np.flatnonzero(A[:, j])
        signal = _mechanism(mechanism, z[:, parents], rng, weight_range, hidden_dim) if len(parents) else 0.0
        z[:, j] = signal + noise_scale * _noise(noise, rng, num_entities)
        if standardize:
            z[:, j] = (z[:, j] - z[:, j].mean()) / z[:, j].std()
    return z


def _per_modality(value, modalities, what: str) -> dict[str, int]:
    if isinstance(value, Mapping):
        missing = set(modalities) - set(value)
        if missing:
            raise ValueError(f"{what}: missing modalities {sorted(missing)}")
        out = {m: value[m] for m in modalities}
    else:
        out = {m: value for m in modalities}
    return {m: check_int(f"{what}[{m!r}]", v) for m, v in out.items()}


def _random_mlp_map(inputs: np.ndarray, out_dim: int, hidden_dim: int, rng) -> np.ndarray:
    """A random two-layer leaky-tanh MLP ``(N, d_in) -> (N, out_dim)`` with a linear skip."""
    d_in = inputs.shape[1]
    W1 = rng.normal(size=(d_in, hidden_dim)) / np.sqrt(d_in)
    b1 = rng.normal(size=hidden_dim) * 0.3
    h = np.tanh(inputs @ W1 + b1) + 0.2 * (inputs @ W1)
    W2 = rng.normal(size=(hidden_dim, out_dim)) / np.sqrt(hidden_dim)
    skip = rng.normal(size=(d_in, out_dim)) / np.sqrt(d_in)
    return h @ W2 + 0.5 * inputs @ skip


def observe_latents(
    latents,
    adjacency,
    layout: LatentLayout,
    *,
    num_measurements: int | Mapping[str, int] = 3,
    measurement_dim: int | Mapping[str, int] = 8,
    hidden_dim: int = 16,
    noise_scale: float = 0.1,
    measurement_edges=None,
    seed: int = 0,
) -> tuple[MultiModalData, GroundTruth]:
    """Observe latents through random per-measurement MLP maps plus Gaussian noise.

    Modality ``m`` sees the shared block and its own block, ``(s, z_m)``; each of its
    ``K_m`` measurements has its own random map
    ``x_mk = g_mk(s, z_m) + noise_scale * eps`` (a two-layer tanh MLP with a linear
    skip, so the map is generically injective when ``measurement_dim`` is at least the
    block size). Where the layout declares a measurement map for ``m``, each group of
    features gets its own random map of the latents that group reads
    (:meth:`~pyro_personax.layout.LatentLayout.decoder_groups`), so the map is true.

    Parameters
    ----------
    latents
        ``(N, D)`` latents, columns in ``layout.names`` order.
    adjacency
        True DAG ``(D, D)`` stored in the ground truth.
    layout
        The latent layout; every modality must see at least one latent.
    num_measurements
        ``K_m``, one int for all modalities or a mapping per modality.
    measurement_dim
        ``d_m``, one int or a mapping per modality.
    hidden_dim
        Hidden units of the random maps.
    noise_scale
        Standard deviation of the measurement noise (>= 0).
    measurement_edges
        Optional :class:`~pyro_personax.synthetic.truth.MeasurementEdge` items: edges
        that one measurement sees and no other (that measurement is generated from
        :func:`~pyro_personax.synthetic.truth.measurement_latents`). The ground truth's
        adjacency stays ``adjacency``; the edges are listed in its
        ``info["measurement_edges"]``.
    seed
        Seed of the maps and the noise.

    Returns
    -------
    (data, truth)
        :class:`MultiModalData` with ``(N, K_m, d_m)`` float64 normal measurements, and
        the :class:`GroundTruth`.

    Examples
    --------
    >>> layout = LatentLayout(0, {"a": 2, "b": 1})
    >>> A = erdos_renyi_dag(layout, 1.0, seed=0)
    >>> z = simulate_sem(A, 100, seed=0)
    >>> data, truth = observe_latents(z, A, layout, num_measurements={"a": 2, "b": 1})
    >>> data.values["a"].shape
    (100, 2, 8)
    """
    if not isinstance(layout, LatentLayout):
        raise TypeError(f"layout: expected a LatentLayout; found {type(layout).__name__}")
    z = np.asarray(latents, dtype=float)
    if z.ndim != 2 or z.shape[1] != layout.latent_dim:
        raise ValueError(f"latents: expected shape (N, {layout.latent_dim}); found {z.shape}")
    if noise_scale < 0:
        raise ValueError(f"noise_scale: expected >= 0; found {noise_scale}")
    K = _per_modality(num_measurements, layout.modalities, "num_measurements")
    d = _per_modality(measurement_dim, layout.modalities, "measurement_dim")
    planted = check_measurement_edges(measurement_edges, layout, K)
    rng = np.random.default_rng(seed)
    shared = z[:, layout.block_slice(SHARED)]  # every reader of m reads the shared block and its latents
    measurements = {}
    for m in layout.modalities:
        if shared.shape[1] + layout.modality_dims[m] == 0:
            raise ValueError(f"layout: modality {m!r} sees no latent (shared_dim 0 and block size 0)")
        groups = layout.decoder_groups(m)
        covered = sorted(f for features, _ in groups if features is not None for f in features)
        if groups[0][0] is not None and covered != list(range(d[m])):
            raise ValueError(
                f"measurement_dim[{m!r}]: the layout's measurement map covers features {covered}; found d = {d[m]}"
            )
        measurements[m] = []
        for k in range(K[m]):
            z_k = measurement_latents(z, layout.names, planted, m, k)
            x = np.empty((len(z), d[m]))
            for features, idx in groups:
                cols = slice(None) if features is None else list(features)
                width = d[m] if features is None else len(features)
                x[:, cols] = _random_mlp_map(z_k[:, idx], width, hidden_dim, rng)
            measurements[m].append(x + noise_scale * rng.standard_normal((len(z), d[m])))
    data = MultiModalData(measurements)
    info = {"generator": "observe_latents", "seed": seed, "noise_scale": noise_scale, "hidden_dim": hidden_dim,
            "measurement_edges": planted}
    return data, GroundTruth(z, np.asarray(adjacency).astype(int), layout, info)


def measurement_map_example(num_entities: int = 2000, *, seed: int = 0) -> tuple[MultiModalData, GroundTruth]:
    """A v-structure ``a_1 -> a_2 <- b_1`` observed through a true measurement map.

    Blocks ``a`` (2 latents) and ``b`` (1 latent); MLP mechanisms with Laplace noise
    (:func:`simulate_sem`); each modality has 2 measurements of 8 features
    (:func:`observe_latents`), and the features of ``a`` follow
    :data:`EXAMPLE_MEASUREMENT_MAP`. Without the map ``a_1 -> a_2`` is a within-block edge
    the data do not decide; with it, it is decided (``b_1 -> a_2`` is cross-modal).

    Returns
    -------
    (data, truth)
        As :func:`observe_latents`; ``truth.layout`` holds the map.

    Examples
    --------
    >>> data, truth = measurement_map_example(100)
    >>> truth.layout.edge_classes()[0, 1]
    'within-block (measurement map)'
    """
    layout = LatentLayout(0, {"a": 2, "b": 1}, measurement_map=EXAMPLE_MEASUREMENT_MAP)
    A = np.zeros((3, 3), dtype=int)
    A[0, 1] = A[2, 1] = 1
    z = simulate_sem(A, num_entities, mechanism="mlp", noise="laplace", seed=seed)
    return observe_latents(z, A, layout, num_measurements=2, measurement_dim=8, seed=seed)
