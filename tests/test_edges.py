"""PairwiseEdges: one edge per pair, exact probabilities, KL and the model's prior."""
import itertools
import math

import pytest
import torch
from torch.distributions import kl_divergence

from models.edges import IMPOSSIBLE, PairwiseEdges, pair_state_logits


def _all_graphs(D):
    """Every 0/1 matrix with a zero diagonal, ``(2^(D(D-1)), D, D)``."""
    off = [(i, j) for i in range(D) for j in range(D) if i != j]
    graphs = []
    for bits in itertools.product([0.0, 1.0], repeat=len(off)):
        A = torch.zeros(D, D, dtype=torch.float64)
        for (i, j), b in zip(off, bits):
            A[i, j] = b
        graphs.append(A)
    return torch.stack(graphs)


def _dist(seed=0, D=3):
    g = torch.Generator().manual_seed(seed)
    return PairwiseEdges(torch.randn(D * (D - 1) // 2, 3, generator=g, dtype=torch.float64))


def test_log_prob_is_normalised_and_excludes_two_cycles():
    d = _dist()
    A = _all_graphs(3)
    lp = d.log_prob(A)
    assert math.isclose(lp.exp().sum().item(), 1.0, abs_tol=1e-12)
    two_cycle = ((A * A.transpose(-1, -2)).sum((-2, -1)) > 0)
    assert torch.isinf(lp[two_cycle]).all() and torch.isfinite(lp[~two_cycle]).all()
    # the marginal edge probabilities are the sums over graphs
    marginal = (lp.exp()[:, None, None] * A).sum(0)
    assert torch.allclose(marginal, d.edge_probs(), atol=1e-12)


def test_samples_are_exact_graphs_with_the_right_frequencies():
    d = _dist(seed=1, D=4)
    A = d.sample((20000,), generator=torch.Generator().manual_seed(0))
    assert set(A.unique().tolist()) <= {0.0, 1.0}
    assert (A * A.transpose(-1, -2)).sum().item() == 0
    assert A.diagonal(dim1=-2, dim2=-1).abs().sum().item() == 0
    assert (A.mean(0) - d.edge_probs()).abs().max().item() < 0.015  # ~4 standard errors
    again = d.sample((20000,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(A, again)


def test_kl_equals_the_sum_over_graphs():
    q, p = _dist(seed=2), _dist(seed=3)
    A = _all_graphs(3)
    lq, lp = q.log_prob(A), p.log_prob(A)
    keep = torch.isfinite(lq)
    expected = (lq[keep].exp() * (lq[keep] - lp[keep])).sum()
    assert math.isclose(kl_divergence(q, p).item(), expected.item(), abs_tol=1e-10)
    assert math.isclose(q.entropy().item(), -(lq[keep].exp() * lq[keep]).sum().item(), abs_tol=1e-10)


def test_prior_is_independent_edges_conditioned_on_no_two_cycle():
    probs = torch.tensor([[0.0, 0.2, 1.0], [0.3, 0.0, 0.0], [0.0, 0.4, 0.0]], dtype=torch.float64)
    d = PairwiseEdges(pair_state_logits(probs))
    A = _all_graphs(3)
    independent = (
        (probs * A + (1 - probs) * (1 - A)).masked_fill(torch.eye(3, dtype=torch.bool), 1.0).flatten(-2).prod(-1)
    )
    no_two_cycle = (A * A.transpose(-1, -2)).sum((-2, -1)) == 0
    expected = torch.where(no_two_cycle, independent, 0.0)
    expected = expected / expected.sum()
    assert torch.allclose(d.log_prob(A).exp(), expected, atol=1e-12)
    assert d.edge_probs()[0, 2].item() == 1.0  # required edge
    assert d.edge_probs()[2, 0].item() == 0.0 and d.edge_probs()[1, 2].item() == 0.0  # forbidden


def test_two_required_directions_are_rejected():
    probs = torch.zeros(2, 2)
    probs[0, 1] = probs[1, 0] = 1.0
    with pytest.raises(ValueError, match="two-cycle"):
        pair_state_logits(probs)


def test_rsample_gradient_reaches_the_logits_and_impossible_states_stay_out():
    logits = torch.zeros(3, 3, requires_grad=True)
    masked = torch.where(
        torch.tensor([[True, True, True], [False, True, True], [True, True, True]]), logits, IMPOSSIBLE
    )
    d = PairwiseEdges(masked, temperature=0.5)
    A = d.rsample((500,))
    assert A[:, 0, 2].sum().item() == 0  # pair (0, 2) can never be 0 -> 2
    (A * torch.arange(9.0).reshape(3, 3)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum().item() > 0
    assert torch.isfinite(logits.grad).all()


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"\(\.\.\., P, 3\)"):
        PairwiseEdges(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="pairs"):
        PairwiseEdges(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="temperature"):
        PairwiseEdges(torch.zeros(3, 3), temperature=0.0)
