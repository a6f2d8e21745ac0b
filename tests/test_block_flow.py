"""The block flows of ``benchmarks/block_flow.py``: invertible maps inside blocks, their Jacobian, the fit."""

import numpy as np
import pytest
import torch
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("block_flow")


def test_mapped_standardises_and_its_log_jacobian_is_the_flows(bench):
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    slices = [[0, 1], [2]]
    flows = bench.block_flows([2, 1], seed=0)
    assert flows[1] is None  # a block of one latent is left as it is
    with torch.no_grad():
        u0 = bench.mapped(x, slices, flows)[0]
        torch.testing.assert_close(u0, (x - x.mean(0)) / x.std(0), atol=5e-3, rtol=0)  # starts at the identity
        for p in bench.flow_parameters(flows):
            p.add_(0.1 * torch.randn_like(p))
        u, logdet, spread = bench.mapped(x, slices, flows)
    assert float((u - u0).abs().max()) > 0.05
    torch.testing.assert_close(u.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(u.std(0), torch.ones(3))
    for n in range(3):  # log |det| of the block's Jacobian, entity by entity
        J = torch.autograd.functional.jacobian(lambda v: flows[0](v[None])[0], x[n, :2])
        assert float(logdet[n]) == pytest.approx(float(torch.linalg.slogdet(J.detach())[1]), abs=1e-3)
    np.testing.assert_array_equal(u[:, 2].numpy(), ((x[:, 2] - x[:, 2].mean()) / x[:, 2].std()).numpy())
    assert spread.shape == (3,)


def test_the_least_squares_fit_unmixes_a_nonlinearly_mixed_block(bench):
    torch.manual_seed(1)
    s = torch.randn(2000, 2)
    mixed = torch.stack([s[:, 0] + 0.4 * s[:, 1], s[:, 1] + 0.3 * torch.tanh(2 * s[:, 0])], 1)
    x = (mixed - mixed.mean(0)) / mixed.std(0)
    target = (s - s.mean(0)) / s.std(0)
    flows = bench.block_flows([2], seed=0)
    before = float(((x - target) ** 2).mean())
    mse = bench.fit_to_targets(x, [[0, 1]], flows, target, steps=400, learning_rate=0.01)
    assert before > 0.05 and mse < 0.2 * before


def test_mixed_truth_maps_each_block_on_its_own_and_keeps_the_coordinates_at_zero_degrees(bench):
    from scipy.stats import spearmanr

    truth = np.random.default_rng(0).normal(size=(200, 4))
    straight = bench.mixed_truth(truth, 0.0)
    for j in range(4):  # a monotone map of each standardised coordinate
        assert spearmanr(straight[:, j], truth[:, j]).statistic == pytest.approx(1.0)
    mixed = bench.mixed_truth(truth, 30.0)
    moved = truth.copy()
    moved[:, 2:] = np.random.default_rng(1).normal(size=(200, 2))  # another fashion block, same colour block
    again = bench.mixed_truth(moved, 30.0)
    np.testing.assert_allclose(again[:, :2], mixed[:, :2])
    assert np.abs(again[:, 2:] - mixed[:, 2:]).max() > 0.1
    assert abs(spearmanr(mixed[:, 0], truth[:, 0]).statistic) < 0.95  # turned: each latent mixes its block
