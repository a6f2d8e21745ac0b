"""Pyro generative models and guides of PersonaX Level II (``pyro_personax.models``)."""

from .edges import PairwiseEdges
from .experts import product_of_experts, product_of_experts_full
from .latent_flow import (
    DAGFlowLatent,
    Mechanisms,
    MonotoneNoiseFlow,
    mechanisms,
    monotone_noise_flow,
)
from .likelihoods import MeasurementSet, TabularLikelihood
from .networks import GroupedLinear, GroupedMLP
from .personax import DEFAULT_NUISANCE_DIM, DEFAULT_SPARSITY, PersonaXGuide, PersonaXModel
from .spec import ModalitySpec, ModelSpec

__all__ = [
    "DAGFlowLatent",
    "DEFAULT_NUISANCE_DIM",
    "DEFAULT_SPARSITY",
    "GroupedLinear",
    "GroupedMLP",
    "Mechanisms",
    "MeasurementSet",
    "ModalitySpec",
    "ModelSpec",
    "MonotoneNoiseFlow",
    "PairwiseEdges",
    "PersonaXGuide",
    "PersonaXModel",
    "TabularLikelihood",
    "mechanisms",
    "monotone_noise_flow",
    "product_of_experts",
    "product_of_experts_full",
]
