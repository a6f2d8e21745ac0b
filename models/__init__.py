"""Pyro generative models and guides of PersonaX Level II (``pyro_personax.models``)."""

from .common import DEFAULT_GRAPH_POSTERIOR, DEFAULT_NUISANCE_DIM, DEFAULT_SPARSITY, GRAPH_POSTERIORS
from .edges import PairwiseEdges
from .experts import product_of_experts, product_of_experts_full
from .guide import PersonaXGuide, draw_latents
from .latent_flow import (
    DAGFlowLatent,
    Mechanisms,
    MonotoneNoiseFlow,
    mechanisms,
    monotone_noise_flow,
)
from .likelihoods import (
    BernoulliLikelihood,
    Likelihood,
    MeasurementSet,
    NormalLikelihood,
    TabularLikelihood,
    TabularRowLikelihood,
    get_likelihood,
    register_likelihood,
    registered_likelihoods,
)
from .networks import GroupedLinear, GroupedMLP
from .options import ModelOptions
from .order_graph import CausalOrder, EdgesGivenOrder
from .personax import PersonaXModel
from .protocols import GraphPosterior, Mechanism
from .spec import ModalitySpec, ModelSpec
from .tinted import TintedImage, TintedRGBLikelihood

__all__ = [
    "draw_latents",
    "BernoulliLikelihood",
    "Likelihood",
    "NormalLikelihood",
    "TabularRowLikelihood",
    "TintedImage",
    "TintedRGBLikelihood",
    "get_likelihood",
    "register_likelihood",
    "registered_likelihoods",
    "CausalOrder",
    "DAGFlowLatent",
    "DEFAULT_GRAPH_POSTERIOR",
    "DEFAULT_NUISANCE_DIM",
    "DEFAULT_SPARSITY",
    "EdgesGivenOrder",
    "GRAPH_POSTERIORS",
    "GraphPosterior",
    "GroupedLinear",
    "GroupedMLP",
    "Mechanism",
    "Mechanisms",
    "MeasurementSet",
    "ModalitySpec",
    "ModelOptions",
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
