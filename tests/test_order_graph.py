"""The order-based graph distribution: sampler, log_prob and closed-form marginals agree."""

import itertools
import math

import numpy as np
import pytest
import torch

from pyro_personax.graph import acyclicity, is_dag
from pyro_personax.models.order_graph import (
    CausalOrder,
    EdgesGivenOrder,
    order_graph_edge_probs,
    order_ranks,
    sample_order_graph,
)


def _within_4_se(estimate, exact, n):
    se = np.sqrt(np.clip(exact * (1 - exact), 1e-12, None) / n)
    return np.all(np.abs(estimate - exact) <= 4 * se + 1e-12)


@pytest.mark.parametrize("tiers", [[0, 0, 0, 0], [0, 1, 1, 1], [0, 0, 1, 1]])
def test_order_sampler_matches_log_prob(tiers):
    gen = torch.Generator().manual_seed(1)
    d = CausalOrder(torch.tensor([0.3, -1.0, 1.2, 0.1]), torch.tensor(tiers))
    n = 40000
    orders = d.sample((n,), generator=gen)
    counts = {}
    for o in map(tuple, orders.tolist()):
        counts[o] = counts.get(o, 0) + 1
    total = 0.0
    for perm in itertools.permutations(range(4)):
        p = float(d.log_prob(torch.tensor(perm)).exp())
        total += p
        emp = counts.get(perm, 0) / n
        assert abs(emp - p) <= 4 * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-9, (perm, emp, p)
        if p == 0:
            assert perm not in counts
    assert total == pytest.approx(1.0, abs=1e-5)


def test_order_precedence_marginals_closed_form():
    gen = torch.Generator().manual_seed(2)
    theta = torch.tensor([0.5, -0.7, 1.5, 0.0, -2.0])
    d = CausalOrder(theta, torch.tensor([0, 1, 1, 1, 1]))
    n = 40000
    ranks = order_ranks(d.sample((n,), generator=gen))
    emp = (ranks.unsqueeze(-1) < ranks.unsqueeze(-2)).double().mean(0).numpy()
    exact = d.precedes_probs().double().numpy()
    assert exact[0, 1:].tolist() == [1.0] * 4 and exact[1:, 0].tolist() == [0.0] * 4
    assert exact[1, 2] == pytest.approx(float(torch.sigmoid(theta[1] - theta[2])), abs=1e-6)
    off = ~np.eye(5, dtype=bool)
    assert _within_4_se(emp[off], exact[off], n)


def test_required_edges_constrain_the_order():
    gen = torch.Generator().manual_seed(3)
    required = torch.zeros(4, 4, dtype=torch.bool)
    required[3, 0] = True
    d = CausalOrder(torch.tensor([2.0, 0.0, 0.0, -2.0]), torch.zeros(4, dtype=torch.long), required)
    ranks = order_ranks(d.sample((5000,), generator=gen))
    assert bool((ranks[:, 3] < ranks[:, 0]).all())
    assert float(d.log_prob(torch.tensor([0, 1, 2, 3]))) == -math.inf  # 0 before its required parent 3
    assert float(d.precedes_probs()[3, 0]) == 1.0


def _order_graph(D=5, seed=0, tiers=None, required=None, forbidden=None):
    g = torch.Generator().manual_seed(seed)
    theta, phi = torch.randn(D, generator=g), torch.randn(D, D, generator=g)
    tiers = torch.zeros(D, dtype=torch.long) if tiers is None else torch.tensor(tiers)
    req = torch.zeros(D, D, dtype=torch.bool) if required is None else required
    allowed = ~torch.eye(D, dtype=torch.bool) & ~(tiers[:, None] > tiers[None, :])
    if forbidden is not None:
        allowed &= ~forbidden
    free = allowed & ~req
    return CausalOrder(theta, tiers, req), phi, free, req


def test_edge_marginals_closed_form_match_draws_and_draws_are_dags():
    forbidden = torch.zeros(5, 5, dtype=torch.bool)
    forbidden[2, 4] = True
    order_dist, phi, free, req = _order_graph(5, seed=4, tiers=[0, 1, 1, 1, 1], forbidden=forbidden)
    n = 10000
    order, edges = sample_order_graph(order_dist, phi, free, req, n, torch.Generator().manual_seed(5))
    exact = order_graph_edge_probs(order_dist, phi, free, req).double().numpy()
    emp = edges.double().mean(0).numpy()
    off = ~np.eye(5, dtype=bool)
    assert _within_4_se(emp[off], exact[off], n)
    assert exact[2, 4] == 0.0 and exact[1:, 0].tolist() == [0.0] * 4  # forbidden and against the tiers
    assert float(acyclicity(edges).abs().max()) == 0.0  # h(G) = 0 on every draw
    assert all(is_dag(g) for g in edges[:500])
    ranks = order_ranks(order)
    assert bool(((edges > 0) <= (ranks.unsqueeze(-1) < ranks.unsqueeze(-2))).all())  # edges follow the order


def test_required_edges_are_always_present():
    req = torch.zeros(4, 4, dtype=torch.bool)
    req[2, 1] = True
    order_dist, phi, free, req = _order_graph(4, seed=6, required=req)
    order, edges = sample_order_graph(order_dist, phi, free, req, 2000, torch.Generator().manual_seed(7))
    assert bool((edges[:, 2, 1] == 1).all()) and bool((edges[:, 1, 2] == 0).all())
    exact = order_graph_edge_probs(order_dist, phi, free, req)
    assert float(exact[2, 1]) == 1.0 and float(exact[1, 2]) == 0.0


def test_edges_given_order_log_prob_is_exact():
    order_dist, phi, free, req = _order_graph(3, seed=8)
    order = torch.tensor([2, 0, 1])
    d = EdgesGivenOrder(phi, order, free, req)
    total = 0.0
    for bits in itertools.product([0, 1], repeat=9):
        g = torch.tensor(bits, dtype=torch.float32).reshape(3, 3)
        total += float(d.log_prob(g).exp())
    assert total == pytest.approx(1.0, abs=1e-5)
    against = torch.zeros(3, 3)
    against[1, 2] = 1.0  # in the order (2, 0, 1) node 1 comes last: 1 -> 2 is impossible
    assert float(d.log_prob(against)) == -math.inf
    p = torch.sigmoid(phi[2, 0])
    one = torch.zeros(3, 3)
    one[2, 0] = 1.0
    others = [(2, 1), (0, 1)]
    expected = float(torch.log(p)) + sum(float(torch.nn.functional.logsigmoid(-phi[i, j])) for i, j in others)
    assert float(d.log_prob(one)) == pytest.approx(expected, abs=1e-5)


def test_ten_thousand_draws_acyclic_with_a_batch_of_particles():
    order_dist, phi, free, req = _order_graph(8, seed=9, tiers=[0, 0, 1, 1, 1, 1, 1, 1])
    plate_dist = order_dist.expand((10000, 1))
    order = plate_dist.sample()
    edges = EdgesGivenOrder(phi, order, free, req).sample()
    assert tuple(edges.shape) == (10000, 1, 8, 8)
    assert float(acyclicity(edges.squeeze(1)).abs().max()) == 0.0
    lp = plate_dist.log_prob(order)
    assert tuple(lp.shape) == (10000, 1) and bool(torch.isfinite(lp).all())


@pytest.mark.parametrize("graph_posterior", ["order", "pairwise"])
def test_guides_and_mechanisms_follow_the_written_protocols(graph_posterior):
    from pyro_personax.data import MultiModalData
    from pyro_personax.layout import LatentLayout
    from pyro_personax.models import GraphPosterior, Mechanism, Mechanisms, ModelSpec, PersonaXGuide

    spec = ModelSpec.from_data(MultiModalData({"face": np.zeros((4, 2, 3))}))
    guide = PersonaXGuide(LatentLayout(0, {"face": 2}), spec, graph_posterior=graph_posterior)
    assert isinstance(guide, GraphPosterior)
    draws = guide.sample_graphs(5, torch.Generator().manual_seed(0))
    assert tuple(draws["edges"].shape) == (5, 2, 2) and ("order" in draws) == (graph_posterior == "order")
    assert isinstance(Mechanisms(3), Mechanism) and isinstance(Mechanisms(3, "linear"), Mechanism)
    assert not isinstance(torch.nn.Linear(2, 2), Mechanism)
