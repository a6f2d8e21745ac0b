"""Data containers, the PersonaX dataset schema, loaders and trait aggregation."""
from pyro_personax.data.datasets import PersonaDataset
from pyro_personax.data.multimodal import ModalityTensors, MultiModalData, TabularColumn
from pyro_personax.data.persona_io import (
    load_athlepersona,
    load_celebpersona,
    load_persona,
    write_persona,
)
from pyro_personax.data.traits import aggregate_traits, krippendorff_alpha, trait_agreement

__all__ = [
    "MultiModalData",
    "TabularColumn",
    "ModalityTensors",
    "PersonaDataset",
    "load_persona",
    "load_celebpersona",
    "load_athlepersona",
    "write_persona",
    "aggregate_traits",
    "trait_agreement",
    "krippendorff_alpha",
]
