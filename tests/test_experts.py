"""Tests of the precision-weighted product of Gaussian experts."""
import pytest
import torch

from pyro_personax.models import product_of_experts


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
