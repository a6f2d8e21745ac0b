"""A likelihood for tinted images: one colour per image times a grey intensity map.

An image of ``C`` channels and ``P`` pixels, flattened channel first (``(channel, row,
column)``, ``d = C P``), is modelled as

    x_cp = c_c (g_p + tau_p e_p) + sigma_cp n_cp,        e_p, n_cp ~ Normal(0, 1),

where ``c`` (``C`` positive values summing to ``C``) is the image's colour and ``g`` its
intensity map, both read from the decoder. The error ``tau_p e_p`` of a pixel's intensity
moves its ``C`` values along the image's colour, and ``sigma_cp n_cp`` is independent
noise per channel; ``tau`` and ``sigma`` are learned per measurement and pixel. Each pixel's
``C`` values are therefore Normal with covariance ``diag(sigma_p^2) + tau_p^2 c c^T``:
an intensity the decoder does not reproduce (a shape the nuisance does not describe)
costs little, a colour it does not reproduce costs much. The colour is read from the
latents the modality's decoders read, never from the per-measurement nuisance
(:meth:`TintedRGBLikelihood.latent_only_outputs`), so it is a property of the entity.

Use it for images whose pixels share one colour per image (a tinted glyph, a single-dye
stain); it is wrong for natural colour images, whose pixels differ in colour.
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution, constraints
from torch import nn

from .likelihoods import _SOFTPLUS_ONE, Likelihood, positive_scale, register_likelihood

__all__ = ["TintedImage", "TintedRGBLikelihood"]


class TintedImage(TorchDistribution):
    """Images ``x (*batch, C P)`` whose pixels are one colour times an intensity, with gain and channel noise.

    Parameters
    ----------
    colour
        ``(*batch, C)`` positive colour ``c`` of each image.
    intensity
        ``(*batch, P)`` intensity map ``g``.
    sigma
        ``(*batch or broadcastable, C, P)`` positive scale of each channel's own noise.
    tau
        ``(*batch or broadcastable, P)`` positive scale of each pixel's intensity error.

    Examples
    --------
    >>> d = TintedImage(torch.ones(4, 3), torch.zeros(4, 5), torch.ones(3, 5), torch.ones(5))
    >>> d.log_prob(torch.zeros(4, 15)).shape
    torch.Size([4])
    """

    arg_constraints = {}
    support = constraints.real_vector

    def __init__(self, colour, intensity, sigma, tau, validate_args=None):
        C, P = colour.shape[-1], intensity.shape[-1]
        if sigma.shape[-2:] != (C, P) or tau.shape[-1] != P:
            raise ValueError(
                f"sigma, tau: expected trailing shapes ({C}, {P}) and ({P},); found "
                f"{tuple(sigma.shape[-2:])} and {tuple(tau.shape[-1:])}"
            )
        batch = torch.broadcast_shapes(colour.shape[:-1], intensity.shape[:-1])
        self.colour = colour.expand(batch + (C,))
        self.intensity = intensity.expand(batch + (P,))
        self.sigma, self.tau = sigma, tau
        super().__init__(batch, torch.Size([C * P]), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        b = torch.Size(batch_shape)
        return TintedImage(self.colour.expand(b + self.colour.shape[-1:]),
                           self.intensity.expand(b + self.intensity.shape[-1:]), self.sigma, self.tau)

    def _mean_grid(self) -> torch.Tensor:
        """``(*batch, C, P)``: ``c_c g_p``."""
        return self.colour[..., :, None] * self.intensity[..., None, :]

    @property
    def mean(self) -> torch.Tensor:
        """``(*batch, C P)``: ``c_c g_p`` channel first."""
        return self._mean_grid().flatten(-2)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Sum over pixels of each pixel's ``C``-variate Normal log density, ``(*sample, *batch)``.

        With ``w = tau_p c / sigma_p`` and ``s = r / sigma_p`` (``r`` the residual), the
        covariance ``diag(sigma_p^2) + tau_p^2 c c^T`` gives the quadratic form
        ``|s|^2 - (w . s)^2 / (1 + |w|^2)`` and the log determinant
        ``2 sum log sigma_p + log(1 + |w|^2)`` (the matrix determinant lemma).
        """
        C, P = self.colour.shape[-1], self.intensity.shape[-1]
        x = value.unflatten(-1, (C, P))
        s = (x - self._mean_grid()) / self.sigma
        w = self.tau[..., None, :] * self.colour[..., :, None] / self.sigma
        ww = (w * w).sum(-2)
        ws = (w * s).sum(-2)
        quad = (s * s).sum(-2) - ws * ws / (1.0 + ww)
        logdet = 2.0 * torch.log(self.sigma).sum(-2) + torch.log1p(ww)
        return (-0.5 * (quad + logdet + C * math.log(2.0 * math.pi))).sum(-1)

    def sample(self, sample_shape=()) -> torch.Tensor:
        """Draw images ``(*sample, *batch, C P)``."""
        with torch.no_grad():
            shape = torch.Size(sample_shape) + self.batch_shape
            C, P = self.colour.shape[-1], self.intensity.shape[-1]
            e = torch.randn(shape + (1, P), dtype=self.intensity.dtype, device=self.intensity.device)
            n = torch.randn(shape + (C, P), dtype=self.intensity.dtype, device=self.intensity.device)
            x = self._mean_grid() + self.colour[..., :, None] * self.tau[..., None, :] * e + self.sigma * n
            return x.flatten(-2)


class TintedRGBLikelihood(Likelihood):
    """``"tinted_rgb"``: an RGB image flattened channel first, scored by :class:`TintedImage`.

    The decoder gives, per measurement, 3 colour logits (``c = 3 softmax``; the colour's
    brightness is the intensity's) and ``P = d / 3`` intensities; the colour logits read
    only the latents (:meth:`latent_only_outputs`). Learned: ``sigma`` ``(K, 3, P)`` and
    ``tau`` ``(K, P)``.
    """

    name = "tinted_rgb"
    channels = 3

    def check_spec(self, m) -> None:
        super().check_spec(m)
        if m.measurement_dim % self.channels:
            raise ValueError(
                f"modality {m.name!r}: the {self.name!r} likelihood needs {self.channels} channels of equal size "
                f"(d a multiple of {self.channels}); found d = {m.measurement_dim}"
            )

    def _pixels(self, m) -> int:
        return m.measurement_dim // self.channels

    def param_dim(self, m) -> int:
        return self.channels + self._pixels(m)

    def latent_only_outputs(self, m) -> tuple[int, ...]:
        return tuple(range(self.channels))

    def make_parameter(self, m) -> nn.Parameter:
        return nn.Parameter(torch.full((m.num_measurements, m.measurement_dim + self._pixels(m)), _SOFTPLUS_ONE))

    def _parts(self, params, parameter, m):
        C, P = self.channels, self._pixels(m)
        colour = C * torch.softmax(params[..., :C], dim=-1)
        sigma = positive_scale(parameter[..., : C * P]).unflatten(-1, (C, P))
        return colour, params[..., C:], sigma, positive_scale(parameter[..., C * P :])

    def distribution(self, params, parameter, m, t):
        return TintedImage(*self._parts(params, parameter, m))

    def mean(self, params, parameter, m):
        return TintedImage(*self._parts(params, parameter, m)).mean


register_likelihood(TintedRGBLikelihood())
