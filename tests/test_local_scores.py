"""``benchmarks/local_scores.py``: node tables fitted one parent set at a time, Jacobians, the local polish."""

import numpy as np
import pytest
import torch
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("local_scores")


def test_the_local_table_fills_every_cell_and_finds_the_one_dependence(bench):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(800, 4))
    z[:, 2] = np.sin(2 * z[:, 0]) + 0.3 * rng.normal(size=800)  # latent 0 -> latent 2, the rest independent
    u = (z - z.mean(0)) / z.std(0)
    table = bench.local_table(u, noise_flow="spline", steps=200, seed=0)
    assert table.shape == (16, 4)
    for j in range(4):  # exactly the parent sets without j itself are filled
        filled = [b for b in range(16) if np.isfinite(table[b, j])]
        assert filled == [b for b in range(16) if not b >> j & 1]
    assert table[0b0001, 2] - table[0, 2] > 300  # latent 0 explains most of latent 2
    assert abs(table[0b0010, 2] - table[0, 2]) < 30  # latent 1 does not
    best, graph, P = bench.table_posterior(table, len(u), noise_flow="spline")
    assert np.isfinite(best)
    assert graph[0, 2] + graph[2, 0] == 1 and graph.sum() == 1
    assert P[0, 2] + P[2, 0] > 0.99
    off = P.copy()
    off[0, 2] = off[2, 0] = 0
    assert off.max() < 0.5


def test_the_mixed_bases_log_jacobian_is_the_maps(bench):
    truth = np.random.default_rng(1).normal(size=(300, 4)) * [1, 2, 0.5, 3]
    t = (truth - truth.mean(0)) / truth.std(0)
    w = bench.turned(t, 30.0)
    np.testing.assert_allclose((w[:, :2] ** 2).sum(1), (t[:, :2] ** 2).sum(1))  # a turn inside each block
    np.testing.assert_allclose((w[:, 2:] ** 2).sum(1), (t[:, 2:] ** 2).sum(1))
    np.testing.assert_allclose(bench.mixed_truth(truth, 30.0), w + 0.5 * np.tanh(2 * w))

    def as_map(row):
        a = np.radians(30.0)
        turn = torch.tensor([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], dtype=torch.float64)
        v = torch.cat([turn @ row[:2], turn @ row[2:]])
        return v + 0.5 * torch.tanh(2 * v)

    logdets = [float(torch.linalg.slogdet(torch.autograd.functional.jacobian(as_map, torch.as_tensor(r)))[1])
               for r in t]
    assert bench.mixed_log_jacobian(truth, 30.0) == pytest.approx(np.mean(logdets), rel=1e-6)


def test_the_local_criterion_polishes_the_block_flows(bench):
    flow_bench = load_benchmark("block_flow")
    rng = np.random.default_rng(2)
    z = rng.normal(size=(300, 4))
    z[:, 2] += z[:, 0]
    x = torch.as_tensor((z - z.mean(0)) / z.std(0), dtype=torch.float32)
    slices = [[0, 1], [2, 3]]
    flows = flow_bench.block_flows([2, 2], seed=0)
    model = bench.new_model("spline", 0)
    before = [p.detach().clone() for p in flow_bench.flow_parameters(flows)]
    rounds = flow_bench.polish(model, x, slices, flows, rounds=1, steps=3, refit_steps=10, criterion="local")
    assert len(rounds) == 1 and np.isfinite(rounds[0][0])
    edges = rounds[0][1].split()
    assert ("02" in edges) != ("20" in edges)  # the one dependence, in one direction
    after = [p.detach() for p in flow_bench.flow_parameters(flows)]
    assert any(float((a - b).abs().max()) > 0 for a, b in zip(after, before))
