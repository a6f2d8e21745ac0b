"""Tests of the precision-weighted product of Gaussian experts."""
import pytest
import torch

from pyro_personax.models import product_of_experts, product_of_experts_full


def _normal_logpdf(x, loc, scale):
    return torch.distributions.Normal(loc, scale).log_prob(x)


def test_product_matches_the_product_of_densities():
    torch.manual_seed(0)
    loc = torch.randn(6, 3, 2, dtype=torch.float64)  # (N, K, d)
    prec = torch.rand(6, 3, 2, dtype=torch.float64) * 4 + 0.1
    mean, scale = product_of_experts(loc, prec)
    assert mean.shape == scale.shape == (6, 2)
    # sum of the log densities of the experts and the N(0, 1) prior minus the log density of
    # the product is constant in x exactly when the product is the normalised product.
    xs = torch.linspace(-3, 3, 7, dtype=torch.float64).view(-1, 1, 1)
    total = _normal_logpdf(xs.unsqueeze(-2), loc, prec.rsqrt()).sum(-2) + _normal_logpdf(xs, 0.0, 1.0)
    diff = total - _normal_logpdf(xs, mean, scale)
    torch.testing.assert_close(diff, diff[:1].expand_as(diff), atol=1e-10, rtol=0)


def test_two_experts_closed_form():
    loc = torch.tensor([[1.0, 3.0]], dtype=torch.float64).unsqueeze(-1)  # (1, 2, 1)
    prec = torch.tensor([[1.0, 3.0]], dtype=torch.float64).unsqueeze(-1)
    mean, scale = product_of_experts(loc, prec, prior_precision=0.0)
    assert mean.item() == pytest.approx((1 * 1 + 3 * 3) / 4)
    assert scale.item() == pytest.approx(0.5)
    mean, scale = product_of_experts(loc, prec)  # with the N(0, 1) prior expert
    assert mean.item() == pytest.approx(10 / 5)
    assert scale.item() == pytest.approx(5 ** -0.5)


def test_masked_expert_drops_out_even_with_garbage_values():
    torch.manual_seed(1)
    loc = torch.randn(5, 4, 3)
    prec = torch.rand(5, 4, 3) + 0.5
    mask = torch.tensor([True, False, True, False]).expand(5, 4)
    mean, scale = product_of_experts(loc, prec, mask)
    ref_mean, ref_scale = product_of_experts(loc[:, [0, 2]], prec[:, [0, 2]])
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(scale, ref_scale)
    bad = loc.clone()
    bad[:, 1] = float("inf")
    bad[:, 3] = float("nan")
    bad.requires_grad_(True)
    mean2, _ = product_of_experts(bad, prec, mask)
    torch.testing.assert_close(mean2, mean)
    mean2.sum().backward()
    assert torch.isfinite(bad.grad).all() and (bad.grad[:, [1, 3]] == 0).all()


def test_all_masked_gives_the_prior():
    mean, scale = product_of_experts(torch.randn(2, 3, 1), torch.ones(2, 3, 1), torch.zeros(2, 3, dtype=torch.bool))
    torch.testing.assert_close(mean, torch.zeros(2, 1))
    torch.testing.assert_close(scale, torch.ones(2, 1))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="one shape"):
        product_of_experts(torch.zeros(2, 3, 1), torch.ones(2, 3, 2))
    with pytest.raises(ValueError, match="prior_precision"):
        product_of_experts(torch.zeros(2, 3, 1), torch.ones(2, 3, 1), prior_precision=-1.0)


def _random_precisions(*shape, d, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(*shape, d, d, generator=gen, dtype=torch.float64)
    return a @ a.mT + 0.1 * torch.eye(d, dtype=torch.float64)


def test_full_product_matches_the_product_of_densities():
    torch.manual_seed(1)
    loc = torch.randn(4, 3, 2, dtype=torch.float64)  # (N, K, d)
    prec = _random_precisions(4, 3, d=2)
    mean, total = product_of_experts_full(loc, prec)
    assert mean.shape == (4, 2) and total.shape == (4, 2, 2)
    mvn = torch.distributions.MultivariateNormal
    xs = torch.randn(7, 1, 2, dtype=torch.float64)  # points, broadcast over N
    experts = mvn(loc, precision_matrix=prec).log_prob(xs.unsqueeze(-2)).sum(-1)
    prior = mvn(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)).log_prob(xs)
    diff = experts + prior - mvn(mean, precision_matrix=total).log_prob(xs)
    torch.testing.assert_close(diff, diff[:1].expand_as(diff), atol=1e-10, rtol=0)


def test_full_product_with_diagonal_precisions_is_the_diagonal_product():
    loc = torch.randn(5, 3, 4, dtype=torch.float64)
    prec = torch.rand(5, 3, 4, dtype=torch.float64) + 0.1
    mask = torch.rand(5, 3) > 0.3
    mean, total = product_of_experts_full(loc, torch.diag_embed(prec), mask)
    ref_mean, ref_scale = product_of_experts(loc, prec, mask)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(total, torch.diag_embed(ref_scale**-2))


def test_full_product_drops_masked_experts_and_partial_experts_inform_their_coordinates():
    loc = torch.randn(2, 3, 3, dtype=torch.float64)
    prec = _random_precisions(2, 3, d=3, seed=2)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    bad = loc.clone()
    bad[0, 1] = float("nan")
    mean, total = product_of_experts_full(bad, prec, mask)
    ref_mean, ref_total = product_of_experts_full(loc[:1, [0, 2]], prec[:1, [0, 2]])
    torch.testing.assert_close(mean[:1], ref_mean)
    torch.testing.assert_close(total[:1], ref_total)
    torch.testing.assert_close(mean[1], torch.zeros(3, dtype=torch.float64))  # only the prior
    # an expert on coordinate 0 only leaves the others at the prior
    only_first = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    only_first[..., 0, 0] = 4.0
    mean, total = product_of_experts_full(torch.tensor([[[2.0, 9.0, 9.0]]], dtype=torch.float64), only_first)
    torch.testing.assert_close(mean, torch.tensor([[8.0 / 5.0, 0.0, 0.0]], dtype=torch.float64))


def test_full_product_in_single_precision_is_exactly_symmetric():
    # float32 sums of many large precisions round (i, j) and (j, i) differently; the product
    # must still pass MultivariateNormal's symmetry check (a fit's q(z | x) is built from it)
    gen = torch.Generator().manual_seed(0)
    a = 4.0 * torch.randn(256, 5, 10, 10, generator=gen)
    loc = torch.randn(256, 5, 10, generator=gen)
    mean, total = product_of_experts_full(loc, a @ a.mT)
    assert total.dtype == torch.float32 and torch.equal(total, total.mT)
    torch.distributions.MultivariateNormal(mean, precision_matrix=total, validate_args=True)


def test_full_product_bad_input_raises():
    with pytest.raises(ValueError, match=r"loc \(\.\.\., K, d\) and precision \(\.\.\., K, d, d\) must agree"):
        product_of_experts_full(torch.zeros(2, 3, 2), torch.ones(2, 3, 2))
    with pytest.raises(ValueError, match="prior_precision must be > 0"):
        product_of_experts_full(torch.zeros(2, 3, 1), torch.ones(2, 3, 1, 1), prior_precision=0.0)
    with pytest.raises(ValueError, match=r"mask: expected shape \(2, 3\)"):
        product_of_experts_full(torch.zeros(2, 3, 1), torch.ones(2, 3, 1, 1), torch.ones(2, dtype=torch.bool))
