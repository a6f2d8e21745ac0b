"""Interventions on the causal latents: ``do(z_a = v)`` averaged over graphs drawn from ``q(G)``.

For every graph ``G`` (``G[i, j]`` = edge i -> j, see :mod:`pyro_personax.graph`), the
latents are sampled ancestrally from the model's structural equations under ``G``,
written as a Pyro program with one sample site ``"z_<name>"`` per latent, visited in a
topological order of ``G`` (:func:`structural_program`)::

    u = tau(eps),  eps ~ N(0, I)                           # the learned noise flow
    y_j = f_j(G[:, j] * y) + exp(s_j(G[:, j] * y)) u_j     # mechanism of latent j
    z_j = h_j(y_j)                                         # output flow (z = y without one)

The intervention is :func:`pyro.poutine.do` on that program: the site of an intervened
latent returns the given value, and its descendants are computed from it. The same
program is run without ``do`` on the same noise, so the difference of the two arms is
the effect with common random numbers (a non-descendant of the intervened latents has
exactly the same value in both). The measurements are decoded from both arms with the
same nuisance draws (:func:`intervene`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine

from pyro_personax.checks import check_int
from pyro_personax.graph import topological_order
from pyro_personax.inference.devices import local_params
from pyro_personax.models import PersonaXModel

__all__ = ["Interventional", "intervene", "structural_program"]

#: Upper bound on the elements of the largest intermediate tensor of one chunk of rows
#: (the masked parents ``(rows, D, D)`` or a modality's decoded means ``(rows, K, d)``).
_CHUNK_ELEMENTS = 2**22


@dataclass(frozen=True, repr=False)
class Interventional:
    """Latent and measurement samples with and without an intervention (same noise).

    Rows of the latent samples run over the graphs, then the samples of one graph: row
    ``g * num_samples + n`` is sample ``n`` under graph ``g``.

    Attributes
    ----------
    latent_names
        The ``D`` latent names (layout order), the columns of the latent samples.
    intervention
        Latent name -> the value it was set to (a float, or an array broadcast to
        ``(num_graphs, num_samples)``).
    interventional, observational
        Latent samples ``(num_graphs * num_samples, D)`` under ``do`` and without it.
    interventional_measurements, observational_measurements
        Modality -> ``(num_graphs, d)``: per graph, the decoded mean measurement averaged
        over the samples and the ``K`` measurements (see :func:`intervene` for ``d``).
    graphs
        The 0/1 graphs ``(num_graphs, D, D)`` the samples were drawn under.
    num_samples
        Samples per graph.
    seed
        The seed of the draws.

    Examples
    --------
    >>> import numpy as np
    >>> from pyro_personax.data import MultiModalData
    >>> from pyro_personax.layout import LatentLayout
    >>> from pyro_personax.models import ModelSpec, PersonaXModel
    >>> data = MultiModalData({"face": np.zeros((10, 2, 3))})
    >>> model = PersonaXModel(LatentLayout(0, {"face": 2}), ModelSpec.from_data(data), mechanism="linear")
    >>> out = intervene(model, None, {"face_1": 1.0}, graphs=np.array([[0, 1], [0, 0]]), num_samples=5)
    >>> out.interventional.shape, out.measurement_effect()["face"].shape
    ((5, 2), (3,))
    """

    latent_names: tuple[str, ...]
    intervention: Mapping[str, object]
    interventional: np.ndarray
    observational: np.ndarray
    interventional_measurements: Mapping[str, np.ndarray]
    observational_measurements: Mapping[str, np.ndarray]
    graphs: np.ndarray
    num_samples: int
    seed: int

    def __post_init__(self):
        D, rows = len(self.latent_names), self.graphs.shape[0] * self.num_samples
        assert self.interventional.shape == self.observational.shape == (rows, D)
        assert self.interventional_measurements.keys() == self.observational_measurements.keys()
        for array in (self.interventional, self.observational, self.graphs):
            array.setflags(write=False)
        for arrays in (self.interventional_measurements, self.observational_measurements):
            for array in arrays.values():
                array.setflags(write=False)

    def __repr__(self) -> str:
        return (
            f"Interventional(do={list(self.intervention)}, num_graphs={self.num_graphs}, "
            f"num_samples={self.num_samples}, latents={list(self.latent_names)}, "
            f"modalities={list(self.interventional_measurements)}, seed={self.seed})"
        )

    @property
    def num_graphs(self) -> int:
        """Number of graphs the samples were drawn under."""
        return self.graphs.shape[0]

    def effect_by_graph(self) -> pd.DataFrame:
        """Mean change of every latent under each graph: the spread of the effect over ``q(G)``.

        Returns
        -------
        pandas.DataFrame
            ``(num_graphs, D)``, index ``"graph"`` (the row of :attr:`graphs`), columns the latent
            names; its column means are :meth:`effect`.
        """
        diff = self.interventional.astype(np.float64) - self.observational.astype(np.float64)
        by_graph = diff.reshape(self.num_graphs, self.num_samples, -1).mean(1)
        return pd.DataFrame(
            by_graph,
            index=pd.RangeIndex(self.num_graphs, name="graph"),
            columns=pd.Index(self.latent_names, name="latent"),
        )

    def effect(self) -> pd.Series:
        """Mean change of every latent, ``E[z | do] - E[z]`` over all graphs and samples.

        Returns
        -------
        pandas.Series
            Indexed by the latent names (index name ``"latent"``); exactly 0 for a latent that
            is no descendant of an intervened latent in any of the graphs.
        """
        diff = self.interventional.astype(np.float64) - self.observational.astype(np.float64)
        return pd.Series(diff.mean(0), index=pd.Index(self.latent_names, name="latent"), name="effect")

    def measurement_effect(self) -> dict[str, np.ndarray]:
        """Mean change of each modality's decoded mean measurement, averaged over the graphs.

        Returns
        -------
        dict
            Modality -> ``(d,)`` array (``d`` as in :func:`intervene`).
        """
        return {
            m: (self.interventional_measurements[m].astype(np.float64) - self.observational_measurements[m]).mean(0)
            for m in self.interventional_measurements
        }


def structural_program(model: PersonaXModel, edges: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The structural equations of ``model`` under ``edges`` as a Pyro program.

    Parameters
    ----------
    model
        A :class:`~pyro_personax.models.PersonaXModel` (its mechanisms, noise flow and output flow).
    edges
        0/1 graphs ``(S, D, D)`` (``[i, j]`` = i -> j) with one topological order in common
        (their union is acyclic); :meth:`PersonaXModel.edge_weights` adds the required edges.

    Returns
    -------
    callable
        ``program(eps)``: standard-normal noise ``eps (S, N, D)`` -> latents ``z (S, N, D)``.
        Inside plates ``"graphs"`` (``dim=-2``) and ``"draws"`` (``dim=-1``) it visits the
        latents level by level (roots first, then by the length of the longest path from a
        root in the union of the graphs: a topological order of every graph) and samples one
        site ``"z_<name>"`` ``(S, N)`` each, a :class:`~pyro.distributions.Delta` at the value
        of its structural equation given its parents. Wrap it in :func:`pyro.poutine.do` to
        intervene: the site then returns the intervention's value and the children read it
        (a trace keeps the natural value at ``"z_<name>"``). The program itself draws no
        random numbers.

    Raises
    ------
    ValueError
        When ``edges`` is not ``(S, D, D)`` or the union of the graphs has a cycle.

    Examples
    --------
    >>> import numpy as np
    >>> from pyro import poutine
    >>> from pyro_personax.data import MultiModalData
    >>> from pyro_personax.layout import LatentLayout
    >>> from pyro_personax.models import ModelSpec, PersonaXModel
    >>> data = MultiModalData({"face": np.zeros((10, 2, 3))})
    >>> model = PersonaXModel(LatentLayout(0, {"face": 2}), ModelSpec.from_data(data), mechanism="linear")
    >>> program = structural_program(model, torch.tensor([[[0.0, 1.0], [0.0, 0.0]]]))
    >>> z = poutine.do(program, data={"z_face_1": torch.full((1, 4), 3.0)})(torch.randn(1, 4, 2))
    >>> z.shape, z[..., 0].unique().tolist()
    (torch.Size([1, 4, 2]), [3.0])
    """
    D = model.layout.latent_dim
    if edges.dim() != 3 or edges.shape[-2:] != (D, D):
        raise ValueError(f"edges: expected shape (S, {D}, {D}); found {tuple(edges.shape)}")
    latent = model.latent_distribution(edges.unsqueeze(-3))  # adjacency (S, 1, D, D)
    A = latent.adjacency
    levels = _levels((A != 0).flatten(0, -3).any(0).cpu().numpy())
    names = model.layout.names
    mechanism, noise_flow = latent.mechanism, latent.noise_flow

    def program(eps: torch.Tensor) -> torch.Tensor:
        if eps.dim() != 3 or eps.shape[0] != A.shape[0] or eps.shape[-1] != D:
            raise ValueError(f"eps: expected shape ({A.shape[0]}, N, {D}); found {tuple(eps.shape)}")
        u = noise_flow.forward(eps, A)
        y = z = torch.zeros_like(u)  # columns filled level by level (out of place: the program stays differentiable)
        column = torch.arange(D, device=u.device)
        with pyro.plate("graphs", eps.shape[0], dim=-2), pyro.plate("draws", eps.shape[1], dim=-1):
            for level in levels:  # one evaluation of the mechanisms serves every latent of a level
                loc, log_scale = mechanism.loc_and_log_scale(y, A)
                natural = latent.to_latent(torch.where(_in(column, level), loc + torch.exp(log_scale) * u, y))
                for j in level:
                    z_j = pyro.sample(f"z_{names[j]}", dist.Delta(natural[..., j]))  # under do: the intervention
                    z = torch.where(column == j, z_j.unsqueeze(-1), z)
                # the children read y = h^{-1}(z)
                y_level = latent.structural(z)[0]
                y = torch.where(_in(column, level), y_level, y)
        return z

    return program


def _levels(adjacency: np.ndarray) -> list[list[int]]:
    """Latents grouped by depth (longest path from a root) in the DAG ``adjacency (D, D)``, roots first.

    Every parent is in an earlier level, so the levels in turn form a topological order.
    """
    order = topological_order(adjacency)
    if order is None:
        raise ValueError("edges: the graphs have no topological order in common (their union has a cycle)")
    depth = np.zeros(adjacency.shape[0], dtype=int)
    for j in order:
        parents = np.flatnonzero(adjacency[:, j])
        depth[j] = 1 + depth[parents].max() if len(parents) else 0
    return [np.flatnonzero(depth == k).tolist() for k in range(depth.max() + 1)]


def _in(column: torch.Tensor, level: list[int]) -> torch.Tensor:
    """Boolean ``(D,)``: which columns belong to ``level``."""
    return torch.isin(column, torch.as_tensor(level, device=column.device))


# ---------------------------------------------------------------------- validation
def _check_do(model: PersonaXModel, do, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Latent name -> float64 array broadcastable to ``shape``, with the names and values checked."""
    names = model.layout.names
    if not isinstance(do, Mapping) or len(do) == 0:
        raise ValueError(f"do: expected a non-empty mapping latent name -> value; found {do!r:.80}")
    out = {}
    for name, value in do.items():
        if name not in names:
            raise ValueError(f"do: unknown latent {name!r}; known latents are {list(names)}")
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"do[{name!r}]: expected a number or an array of numbers; found {value!r:.80}") from None
        if not np.isfinite(array).all():
            raise ValueError(f"do[{name!r}]: expected finite values; found {value!r:.80}")
        try:
            np.broadcast_shapes(array.shape, shape)
            out[name] = array
        except ValueError:
            raise ValueError(
                f"do[{name!r}]: expected a number or an array broadcastable to (num_graphs, num_samples) = {shape}; "
                f"found shape {array.shape}"
            ) from None
    return out


def _check_graphs(model: PersonaXModel, graphs, origin: str) -> np.ndarray:
    """0/1 DAGs ``(S, D, D)`` that respect the layout's forbidden and required edges."""
    D, names = model.layout.latent_dim, model.layout.names
    array = np.asarray(graphs.cpu() if isinstance(graphs, torch.Tensor) else graphs, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (D, D) or array.shape[0] == 0:
        raise ValueError(
            f"{origin}: expected shape (S, {D}, {D}) with S >= 1 (or one ({D}, {D}) graph); found {array.shape}"
        )
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"{origin}: expected 0/1 adjacencies; found values {np.unique(array)[:5].tolist()}")
    allowed, required = model.layout.allowed_mask(), model.layout.required_mask()
    for s, g in enumerate(array != 0):
        if topological_order(g) is None:
            raise ValueError(
                f"{origin}[{s}] has a directed cycle; interventions need DAGs (parent i -> child j at [i, j])"
            )
        bad = np.argwhere((g & ~allowed) | (~g & required))
        if len(bad):
            i, j = bad[0]
            rule = "forbids" if g[i, j] else "requires"
            raise ValueError(f"{origin}[{s}]: the layout {rule} the edge {names[i]} -> {names[j]}")
    return array


# ---------------------------------------------------------------------- decoding
def _decoded(model: PersonaXModel, z: torch.Tensor, etas: Mapping[str, torch.Tensor | None]) -> dict:
    """Modality -> decoded mean measurement averaged over the ``K`` measurements, ``(S, N, d)``."""
    return {m.name: model.decoded_mean(m.name, z, etas[m.name]).mean(-2) for m in model.spec.modalities}


# ---------------------------------------------------------------------- the query
def _graph_draws(model, guide, graphs, num_graphs: int, generator: torch.Generator) -> np.ndarray:
    if graphs is not None:
        return _check_graphs(model, graphs, "graphs")
    if not callable(getattr(guide, "sample_graphs", None)):
        raise TypeError(
            f"guide: expected a guide with sample_graphs (a GraphPosterior) when graphs is None; "
            f"found {type(guide).__name__}"
        )
    edges = guide.sample_graphs(num_graphs, generator=generator)["edges"]
    return _check_graphs(model, edges, "graphs drawn from q(G)")


def _groups(graphs: np.ndarray, num_samples: int, width: int):
    """Chunks ``(graph indices, sample slice)``: graphs with one topological order together, rows bounded."""
    by_order: dict[tuple[int, ...], list[int]] = {}
    for s, g in enumerate(graphs):
        by_order.setdefault(tuple(topological_order(g)), []).append(s)
    rows = max(1, _CHUNK_ELEMENTS // width)
    per_graph = min(num_samples, rows)
    num_graph_chunk = max(1, rows // per_graph)
    for members in by_order.values():
        for start in range(0, len(members), num_graph_chunk):
            for n0 in range(0, num_samples, per_graph):
                yield members[start : start + num_graph_chunk], slice(n0, min(n0 + per_graph, num_samples))


@torch.no_grad()
def intervene(
    model: PersonaXModel,
    guide,
    do: Mapping[str, float | np.ndarray],
    *,
    num_graphs: int = 100,
    num_samples: int = 1000,
    seed: int = 0,
    graphs=None,
) -> Interventional:
    """Sample the latents and the decoded measurements under ``do(z_a = v, ...)`` and without it.

    For each of ``num_graphs`` graphs ``G`` drawn from the guide's ``q(G)``
    (:meth:`~pyro_personax.models.PersonaXGuide.sample_graphs`), ``num_samples`` noise
    draws run through :func:`structural_program` under ``G``, once wrapped in
    :func:`pyro.poutine.do` with ``{"z_<a>": v, ...}`` and once without it. Both arms use
    the same noise, so the effect is estimated with common random numbers: a latent that
    no intervened latent reaches in ``G`` has the same value in both arms. Averaging over
    the graphs carries the uncertainty about ``G`` into the effect. The mechanisms, noise
    flow and output flow are the model's point estimates.

    Each modality ``m`` is decoded from both arms with the same nuisance draws
    ``eta ~ N(0, I)`` (its prior), and the mean of each measurement's distribution is
    averaged over the ``K_m`` measurements: the location for a Normal modality
    (``d = d_m``), ``sigmoid(logits)`` for a Bernoulli one (``d = d_m``), and for a tabular
    modality the expected encoding of the row (``d = Q``, the decoder's output width): the
    location of a Normal column, ``P(1)`` of a Bernoulli column, and the probabilities of
    the ``C`` categories of a categorical column, in column order.

    Parameters
    ----------
    model
        A fitted :class:`~pyro_personax.models.PersonaXModel`; the draws follow its
        parameters' device and dtype.
    guide
        Its guide (any :class:`~pyro_personax.models.GraphPosterior`); unused, and may be
        ``None``, when ``graphs`` is given.
    do
        Latent name (:attr:`LatentLayout.names <pyro_personax.layout.LatentLayout.names>`)
        -> value: a finite number, or an array broadcastable to ``(num_graphs, num_samples)``
        (e.g. one value per sample, ``(num_samples,)``).
    num_graphs
        Graphs ``S`` drawn from ``q(G)`` (ignored when ``graphs`` is given).
    num_samples
        Noise draws ``N`` per graph.
    seed
        Seed of the graph, noise and nuisance draws: the same seed gives the same numbers.
        The global random state is left untouched.
    graphs
        Optional 0/1 DAGs ``(S, D, D)`` or one ``(D, D)`` (``[i, j]`` = parent i -> child j)
        to use instead of draws from ``q(G)``; they must respect the layout's forbidden and
        required edges.

    Returns
    -------
    Interventional
        Latent samples ``(S * N, D)`` of both arms, per-graph decoded means ``(S, d)`` per
        modality, the graphs; :meth:`Interventional.effect` and
        :meth:`Interventional.measurement_effect` give the mean changes.

    Raises
    ------
    ValueError
        For an unknown latent name (the known ones are listed), a non-finite or
        ill-shaped value, ``num_graphs`` / ``num_samples`` that are not positive ints, or a
        graph of the wrong shape, not 0/1, against the layout's masks, or cyclic (a
        pairwise ``q(G)`` can draw cycles: pass acyclic ``graphs`` then).
    TypeError
        For a non-numeric value, a model that is not a ``PersonaXModel``, or a missing
        guide.

    Examples
    --------
    >>> import numpy as np
    >>> from pyro_personax.data import MultiModalData
    >>> from pyro_personax.layout import LatentLayout
    >>> from pyro_personax.models import ModelSpec, PersonaXGuide, PersonaXModel
    >>> data = MultiModalData({"face": np.zeros((10, 2, 3)), "text": np.zeros((10, 3, 2))})
    >>> layout, spec = LatentLayout(1, {"face": 1, "text": 1}), ModelSpec.from_data(data)
    >>> model, guide = PersonaXModel(layout, spec), PersonaXGuide(layout, spec)
    >>> out = intervene(model, guide, {"s1": 2.0}, num_graphs=4, num_samples=10, seed=1)
    >>> out.interventional.shape, list(out.effect().index)
    ((40, 3), ['s1', 'face_1', 'text_1'])
    >>> float(out.interventional[:, 0].min())
    2.0
    """
    if not isinstance(model, PersonaXModel):
        raise TypeError(f"model: expected a PersonaXModel; found {type(model).__name__}")
    num_graphs, num_samples = check_int("num_graphs", num_graphs), check_int("num_samples", num_samples)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected an int; found {seed!r}")
    param = next(model.parameters())
    like = {"dtype": param.dtype, "device": param.device}
    generator = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]), local_params():
        draws = _graph_draws(model, guide, graphs, num_graphs, generator)
        S, D = draws.shape[0], model.layout.latent_dim
        values = _check_do(model, do, (S, num_samples))
        eps = torch.randn((S, num_samples, D), generator=generator, dtype=param.dtype)
        etas = {
            m.name: torch.randn((S, num_samples, m.num_measurements, e), generator=generator, dtype=param.dtype)
            if (e := model.nuisance_dims[m.name]) > 0
            else None
            for m in model.spec.modalities
        }
        arms = _run(model, torch.as_tensor(draws, **like), eps, etas, values, num_samples)
    intervention = {k: (float(v) if np.ndim(v) == 0 else np.asarray(v)) for k, v in do.items()}
    return Interventional(
        latent_names=tuple(model.layout.names),
        intervention=intervention,
        interventional=arms["do"][0].reshape(S * num_samples, D),
        observational=arms["obs"][0].reshape(S * num_samples, D),
        interventional_measurements=arms["do"][1],
        observational_measurements=arms["obs"][1],
        graphs=draws.astype(np.int64),
        num_samples=num_samples,
        seed=int(seed),
    )


def _run(model, graphs: torch.Tensor, eps, etas, values, num_samples: int) -> dict:
    """Both arms, chunk by chunk: ``{"do" | "obs": (latents (S, N, D), modality -> (S, d))}``."""
    S, D = graphs.shape[0], graphs.shape[-1]
    device, dtype = graphs.device, graphs.dtype
    widths = [m.num_measurements * max(m.measurement_dim, 1) for m in model.spec.modalities]
    width = max(D * D, *widths)
    data = {f"z_{name}": torch.tensor(v, dtype=dtype).expand(S, num_samples) for name, v in values.items()}
    z_out = {arm: torch.zeros((S, num_samples, D), dtype=dtype) for arm in ("do", "obs")}
    sums = {arm: {} for arm in ("do", "obs")}
    for members, cols in _groups(graphs.cpu().numpy(), num_samples, width):
        index = torch.as_tensor(members)
        program = structural_program(model, graphs[index.to(device)])
        noise = eps[index, cols].to(device)
        chunk_etas = {m: None if e is None else e[index, cols].to(device) for m, e in etas.items()}
        chunk_data = {k: v[index, cols].to(device) for k, v in data.items()}
        for arm, fn in (("do", poutine.do(program, data=chunk_data)), ("obs", program)):
            z = fn(noise)
            z_out[arm][index, cols] = z.cpu()
            for mod, mean in _decoded(model, z, chunk_etas).items():
                total = mean.sum(-2).to(torch.float64).cpu()
                acc = sums[arm].setdefault(mod, torch.zeros(S, total.shape[-1], dtype=torch.float64))
                acc[index] += total
    return {arm: (z_out[arm].numpy(), {m: (s / num_samples).numpy() for m, s in sums[arm].items()}) for arm in sums}
