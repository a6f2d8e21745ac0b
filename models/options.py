"""One set of model options, shared by ``PersonaX``, the run configuration and the modules.

:class:`ModelOptions` holds every option of :class:`~pyro_personax.models.PersonaXModel` and
:class:`~pyro_personax.models.PersonaXGuide` with its default, checks them when it is built,
and hands each module the options it takes (:meth:`ModelOptions.model_kwargs`,
:meth:`ModelOptions.guide_kwargs`): the options both must agree on (``nuisance_dim``,
``graph_posterior``) go to both from one value.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from pyro_personax.checks import check_int

from .common import (
    DEFAULT_GRAPH_POSTERIOR,
    DEFAULT_NUISANCE_DIM,
    DEFAULT_POSTERIOR_COVARIANCE,
    GRAPH_POSTERIORS,
    LATENT_TRANSFORMS,
    POSTERIOR_COVARIANCES,
)
from .latent_flow import MECHANISMS, NOISE_FLOWS

__all__ = ["ModelOptions", "MODEL_FIELDS", "GUIDE_FIELDS"]

#: Options of :class:`~pyro_personax.models.PersonaXModel`.
MODEL_FIELDS = (
    "mechanism", "mechanism_hidden_dim", "noise_flow", "latent_transform", "spline_bins", "spline_bound",
    "nuisance_dim", "decoder_hidden_dim", "decoder_layers", "edge_prior", "cyclic_logdet", "graph_posterior",
)
#: Options of :class:`~pyro_personax.models.PersonaXGuide`.
GUIDE_FIELDS = (
    "encoder_hidden_dim", "encoder_layers", "nuisance_dim", "init_edge_logit", "posterior_covariance",
    "graph_posterior",
)


@dataclass(frozen=True)
class ModelOptions:
    """Every option of the Level II model and guide, with its default.

    Parameters
    ----------
    mechanism
        ``"mlp"`` (linear term + tanh network per node, with a log noise scale per parent
        set), ``"mlp_additive"`` (the same network, noise added with no scale) or
        ``"linear"`` causal mechanisms.
    mechanism_hidden_dim
        Hidden width of each node's network.
    noise_flow
        ``"spline"``, ``"parent_spline"`` (a noise shape per parent set), ``"affine"`` or
        ``"identity"`` noise flow.
    latent_transform
        ``"identity"`` (additive noise) or ``"spline"`` (a learned monotone map after the
        structural equations; see :class:`~pyro_personax.models.PersonaXModel`).
    spline_bins, spline_bound
        Spline settings of the noise flow and of the latent transform.
    nuisance_dim
        Size of every measurement's nuisance (an int for the measurement modalities;
        tabular ones get 0), or a mapping modality -> size.
    decoder_hidden_dim, decoder_layers, encoder_hidden_dim, encoder_layers
        Width and depth of the per-measurement decoders and encoders.
    edge_prior
        Prior inclusion probability of every free edge.
    cyclic_logdet
        Pairwise graph posterior: score a cyclic edge sample with ``log |det(I - J)|``.
    graph_posterior
        ``"order"`` (causal order then edges; every graph a DAG) or ``"pairwise"``.
    init_edge_logit
        Initial logit of every free edge in ``q(G)``.
    posterior_covariance
        ``"full"`` (default: ``q(z | x)`` may correlate latents of one block, and of the
        shared block and a modality block) or ``"diagonal"`` (mean-field).

    Examples
    --------
    >>> options = ModelOptions(mechanism="linear", nuisance_dim=0)
    >>> options.model_kwargs()["nuisance_dim"] == options.guide_kwargs()["nuisance_dim"] == 0
    True
    >>> ModelOptions(mechanism="cubic")
    Traceback (most recent call last):
    ...
    ValueError: mechanism: expected one of ('mlp', 'mlp_additive', 'linear'); found 'cubic'
    """

    mechanism: str = "mlp"
    mechanism_hidden_dim: int = 16
    noise_flow: str = "spline"
    latent_transform: str = "identity"
    spline_bins: int = 8
    spline_bound: float = 3.0
    nuisance_dim: int | Mapping[str, int] = DEFAULT_NUISANCE_DIM
    decoder_hidden_dim: int = 64
    decoder_layers: int = 2
    edge_prior: float = 0.2
    cyclic_logdet: bool = True
    graph_posterior: str = DEFAULT_GRAPH_POSTERIOR
    encoder_hidden_dim: int = 64
    encoder_layers: int = 2
    init_edge_logit: float = 0.0
    posterior_covariance: str = DEFAULT_POSTERIOR_COVARIANCE

    def __post_init__(self):
        choices = {
            "mechanism": MECHANISMS,
            "noise_flow": NOISE_FLOWS,
            "latent_transform": LATENT_TRANSFORMS,
            "graph_posterior": GRAPH_POSTERIORS,
            "posterior_covariance": POSTERIOR_COVARIANCES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}; found {getattr(self, name)!r}")
        for name, low in (
            ("mechanism_hidden_dim", 1), ("spline_bins", 1), ("decoder_hidden_dim", 1), ("decoder_layers", 0),
            ("encoder_hidden_dim", 1), ("encoder_layers", 0),
        ):
            check_int(name, getattr(self, name), low=low)
        nuisance = self.nuisance_dim
        values = nuisance.values() if isinstance(nuisance, Mapping) else [nuisance]
        if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0 for v in values):
            raise ValueError(
                f"nuisance_dim: expected an int >= 0 or a mapping modality -> int >= 0; found {nuisance!r}"
            )
        if isinstance(nuisance, Mapping):
            object.__setattr__(self, "nuisance_dim", dict(nuisance))
        for name in ("spline_bound", "init_edge_logit"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), numbers.Real):
                raise ValueError(f"{name}: expected a number; found {getattr(self, name)!r}")
        if self.spline_bound <= 0:
            raise ValueError(f"spline_bound: expected a number > 0; found {self.spline_bound!r}")
        if isinstance(self.edge_prior, bool) or not isinstance(self.edge_prior, numbers.Real) or not (
            0.0 < self.edge_prior < 1.0
        ):
            raise ValueError(f"edge_prior: expected a number in (0, 1); found {self.edge_prior!r}")
        if not isinstance(self.cyclic_logdet, bool):
            raise ValueError(f"cyclic_logdet: expected True or False; found {self.cyclic_logdet!r}")

    def model_kwargs(self) -> dict:
        """The keyword options of :class:`~pyro_personax.models.PersonaXModel`."""
        return {name: getattr(self, name) for name in MODEL_FIELDS}

    def guide_kwargs(self) -> dict:
        """The keyword options of :class:`~pyro_personax.models.PersonaXGuide`."""
        return {name: getattr(self, name) for name in GUIDE_FIELDS}

    def as_dict(self) -> dict:
        """Every option, defaults included (JSON-ready): what a saved model or an InferenceData records.

        Examples
        --------
        >>> ModelOptions(mechanism="linear").as_dict()["mechanism"]
        'linear'
        """
        return asdict(self)

    def changed(self) -> dict:
        """The options that differ from their defaults (JSON-ready)."""
        default = ModelOptions()
        return {k: v for k, v in asdict(self).items() if v != getattr(default, k)}

    @classmethod
    def from_mapping(cls, table: Mapping, where: str = "model options") -> ModelOptions:
        """Build from a plain mapping; an unknown key or bad value is refused, naming ``where``."""
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; allowed keys are {sorted(allowed)}")
        try:
            return cls(**table)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from None
