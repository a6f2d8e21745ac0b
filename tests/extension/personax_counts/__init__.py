"""An extension of pyro_personax written outside the package, as a researcher would.

It adds a Poisson likelihood for count measurements and a model whose decoders have a
linear skip connection, through the public hooks only (``Likelihood`` and
``register_likelihood``; ``PersonaXModel.make_decoder``).
"""

import torch
import torch.nn.functional as F
from pyro.distributions import Poisson
from torch import nn

from pyro_personax.models import GroupedLinear, GroupedMLP, Likelihood, PersonaXModel, register_likelihood


class PoissonLikelihood(Likelihood):
    """``x ~ Poisson(softplus(decoder output))`` per feature; the encoder reads ``log1p(x)``."""

    name = "poisson"

    def distribution(self, params, parameter, m, t):
        return Poisson(F.softplus(params) + 1e-6).to_event(1)

    def mean(self, params, parameter, m):
        return F.softplus(params) + 1e-6

    def encoder_features(self, m, t):
        values, mask = t[0], t[1]
        return torch.where(mask.unsqueeze(-1), torch.log1p(values), torch.zeros_like(values))


POISSON = register_likelihood(PoissonLikelihood())


class SkipDecoder(nn.Module):
    """A grouped MLP plus a grouped linear skip: ``(..., K, in) -> (..., K, out)``."""

    def __init__(self, num_groups, in_dim, out_dim, hidden_dim=16):
        super().__init__()
        self.skip = GroupedLinear(num_groups, in_dim, out_dim)
        self.mlp = GroupedMLP(num_groups, in_dim, hidden_dim, out_dim, num_layers=1)

    def forward(self, x):
        return self.skip(x) + self.mlp(x)


class SkipDecoderModel(PersonaXModel):
    """PersonaXModel whose decoders are all SkipDecoders."""

    def make_decoder(self, modality, in_dim, out_dim):
        return SkipDecoder(modality.num_measurements, in_dim, out_dim)
