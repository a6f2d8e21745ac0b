"""The tinted-image likelihood: one colour per image times an intensity, with gain and channel noise."""

import numpy as np
import pytest
import torch
from torch.distributions import LowRankMultivariateNormal

from pyro_personax import PersonaX
from pyro_personax.layout import LatentLayout
from pyro_personax.models import PersonaXModel, TintedImage, get_likelihood
from pyro_personax.models.networks import MaskedDecoder
from pyro_personax.models.spec import ModalitySpec, ModelSpec
from pyro_personax.synthetic.variant_mnist import variant_mnist


def test_log_prob_is_the_low_rank_normal_of_each_pixel():
    g = torch.Generator().manual_seed(0)
    colour = torch.rand(4, 3, generator=g) + 0.1
    intensity = torch.randn(4, 5, generator=g)
    sigma = torch.rand(3, 5, generator=g) + 0.2
    tau = torch.rand(5, generator=g) + 0.1
    x = torch.randn(4, 15, generator=g)
    lp = TintedImage(colour, intensity, sigma, tau).log_prob(x)
    # per pixel: mean c g_p, covariance diag(sigma_p^2) + tau_p^2 c c^T; channel-first flattening
    reference = LowRankMultivariateNormal(
        (colour[:, :, None] * intensity[:, None, :]).transpose(-1, -2),
        (tau[None, :, None] * colour[:, None, :])[..., None],
        (sigma**2).T.expand(4, 5, 3),
    ).log_prob(x.unflatten(-1, (3, 5)).transpose(-1, -2)).sum(-1)
    torch.testing.assert_close(lp, reference)


def test_a_wrong_intensity_costs_less_than_a_wrong_colour():
    colour, intensity = torch.tensor([[1.5, 1.0, 0.5]]), torch.ones(1, 4)
    d = TintedImage(colour, intensity, torch.full((3, 4), 0.05), torch.full((4,), 0.5))
    brighter = (colour[:, :, None] * 1.2 * intensity[:, None, :]).flatten(-2)
    recoloured = (torch.tensor([[1.5, 1.3, 0.5]])[:, :, None] * intensity[:, None, :]).flatten(-2)
    assert d.log_prob(brighter) > d.log_prob(recoloured) + 50
    assert d.sample((7,)).shape == (7, 1, 12)
    torch.testing.assert_close(d.mean, (colour[:, :, None] * intensity[:, None, :]).flatten(-2))


def test_the_colour_reads_the_latents_and_not_the_nuisance():
    data, _ = variant_mnist(40, seed=0)
    assert data.likelihood["colour"] == "tinted_rgb"
    layout = LatentLayout(0, {"colour": 2, "fashion": 2})
    model = PersonaXModel(layout, ModelSpec.from_data(data), nuisance_dim={"colour": 3, "fashion": 0})
    decoder = model.decoders["colour"]
    assert isinstance(decoder, MaskedDecoder)
    x = torch.randn(5, 3, 2 + 3, requires_grad=True)  # (B, K, latents + nuisance)
    params = decoder(x)
    assert params.shape == (5, 3, 3 + 196)
    (colour_grad,) = torch.autograd.grad(params[..., :3].sum(), x, retain_graph=True)
    (intensity_grad,) = torch.autograd.grad(params[..., 3:].sum(), x)
    assert colour_grad[..., 2:].abs().sum() == 0 and colour_grad[..., :2].abs().sum() > 0
    assert intensity_grad[..., 2:].abs().sum() > 0
    t = data.to_tensors()["colour"]
    z, eta = torch.randn(5, 4), torch.randn(5, 3, 3)
    assert model.likelihood("colour", z, eta, (t[0][:5], t[1][:5])).log_prob(t[0][:5]).shape == (5,)
    assert model.decoded_mean("colour", z, eta).shape == (5, 3, 588)


def test_the_likelihood_checks_its_modality():
    with pytest.raises(ValueError, match=r"'img': the 'tinted_rgb' likelihood needs 3 channels .* found d = 10"):
        ModalitySpec("img", 1, 10, "tinted_rgb")
    data, _ = variant_mnist(40, seed=0)
    mapped = LatentLayout(0, {"colour": 2, "fashion": 2},
                          measurement_map={"colour": [(range(294), ["colour_1"]), (range(294, 588), ["colour_2"])]})
    with pytest.raises(ValueError, match=r"measurement_map\['colour'\]: needs a likelihood with one decoder output"):
        PersonaXModel(mapped, ModelSpec.from_data(data))
    assert get_likelihood("tinted_rgb").latent_only_outputs(ModelSpec.from_data(data)["colour"]) == (0, 1, 2)


def test_the_paper_s_gaussian_stays_available():
    data, truth = variant_mnist(40, seed=0, colour_likelihood="normal")
    again, _ = variant_mnist(40, seed=0)
    assert data.likelihood["colour"] == "normal" and truth.info["colour_likelihood"] == "normal"
    np.testing.assert_array_equal(data.values["colour"], again.values["colour"])


def test_a_short_fit_on_tinted_images_runs_and_repeats():
    data, _ = variant_mnist(120, seed=1)

    def fitted():
        px = PersonaX(data, latent_dims={"colour": 2, "fashion": 2}, shared_dim=0)
        px.fit(data, num_epochs=2, num_chains=1, seed=0, progress=False, refine_graph=False)
        return px.get_latent_representation(data)

    first = fitted()
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, fitted())
