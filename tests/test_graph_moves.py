"""Moves between graphs on the identified edges, each scored with the basis polished under it."""

import math

import numpy as np
import pytest
import torch

from pyro_personax.inference import GraphRefinement
from pyro_personax.inference.graph_moves import _moves, switch_graph
from pyro_personax.layout import LatentLayout
from pyro_personax.metrics import mcc


def _turned_face(seed: int, degrees: float = 30.0):
    """``text_1 -> face_1`` (nonlinear), the other two latents roots; the face block turned by ``degrees``, so
    that both turned face latents depend on ``text_1``. Returns the truth, the turned latents and a model."""
    from pyro_personax.models import ModelSpec, PersonaXModel
    from pyro_personax.synthetic.graphs import observe_latents

    layout = LatentLayout(0, {"face": 2, "text": 2})
    rng = np.random.default_rng(seed)
    n = 1500
    t = rng.laplace(size=(n, 2))
    f = np.stack([np.tanh(2 * t[:, 0]) + 0.3 * rng.laplace(size=n), rng.laplace(size=n)], 1)
    z = np.concatenate([f, t], 1)
    z = (z - z.mean(0)) / z.std(0)
    A = np.zeros((4, 4))
    A[2, 0] = 1
    data, _ = observe_latents(z, A, layout, num_measurements=1, measurement_dim=4, seed=seed)
    torch.manual_seed(seed)
    model = PersonaXModel(layout, ModelSpec.from_data(data))
    a = math.radians(degrees)
    turn = np.eye(4)
    turn[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    return z, z @ turn.T, model


def test_the_candidates_are_the_graph_and_one_move_of_an_identified_edge():
    """Deletions and reversals of the movable edges only; no reversal into a cycle or a disallowed pair."""
    graph = np.zeros((4, 4), dtype=bool)
    graph[1, 0] = graph[2, 0] = graph[2, 1] = True  # 2 -> 1 -> 0 and 2 -> 0
    movable = np.zeros((4, 4), dtype=bool)
    movable[2:, :2] = movable[:2, 2:] = True  # the cross-modal pairs
    allowed = ~np.eye(4, dtype=bool)
    found = {tuple(map(tuple, np.argwhere(G))) for G in _moves(graph, movable, allowed)}
    assert found == {
        ((1, 0), (2, 0), (2, 1)),  # stay
        ((1, 0), (2, 1)),  # 2 -> 0 deleted (its reversal would close 0 -> 2 -> 1 -> 0)
        ((1, 0), (2, 0)), ((1, 0), (1, 2), (2, 0)),  # 2 -> 1 deleted, reversed
    }
    no_back = allowed.copy()
    no_back[1, 2] = False
    assert len(_moves(graph, movable, no_back)) == 3


@pytest.mark.parametrize("seed", [0, 1])
def test_the_moves_drop_the_edge_a_turn_added_and_undo_the_turn(seed):
    """A face block turned by 30 degrees reads ``text_1`` in both latents, so the most probable DAG has two
    cross-modal edges. One is not needed in the basis the turn came from: the moves drop it and the map they
    return takes most of the turn back (block-diagonal)."""
    from pyro_personax.inference.oracle import fit_mechanisms_given_latents
    from pyro_personax.inference.refine import map_dag

    z, turned, model = _turned_face(seed)
    x = torch.as_tensor(turned, dtype=torch.float32)
    model.standardise_latents(x)
    fit_mechanisms_given_latents(model, x, seed=seed)
    start = map_dag(model, x, "bic", len(x)).numpy().astype(bool)
    assert start[2:, :2].sum() == 2  # text_1 -> both turned face latents
    T, graph, log = switch_graph(model, x, start, max_moves=3, seed=seed)
    assert graph[2:, :2].sum() + graph[:2, 2:].sum() == 1
    assert torch.all(T[:2, 2:] == 0) and torch.all(T[2:, :2] == 0)
    assert mcc((x @ T.T).numpy(), z).value > mcc(turned, z).value + 0.03
    assert log[0]["candidates"] >= 3 and log[-1]["graph"] == [tuple(e) for e in np.argwhere(graph).tolist()]


def test_bad_arguments_are_named():
    _, turned, model = _turned_face(0)
    x = torch.as_tensor(turned[:100], dtype=torch.float32)
    model.standardise_latents(x)
    empty = np.zeros((4, 4))
    with pytest.raises(ValueError, match="max_moves"):
        switch_graph(model, x, empty, max_moves=0)
    with pytest.raises(ValueError, match="holdout"):
        switch_graph(model, x, empty, max_moves=1, holdout=1.0)
    cycle = empty.copy()
    cycle[0, 2] = cycle[2, 0] = 1
    with pytest.raises(ValueError, match="graph: expected a DAG"):
        switch_graph(model, x, cycle, max_moves=1)
    with pytest.raises(ValueError, match="z: expected at least 6 rows"):
        switch_graph(model, x[:5], empty, max_moves=1)
    with pytest.raises(ValueError, match="graph_moves"):
        GraphRefinement(graph_moves=-1)
