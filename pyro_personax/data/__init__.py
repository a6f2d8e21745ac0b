"""Data containers and dataset loaders."""
from pyro_personax.data.multimodal import ModalityTensors, MultiModalData, TabularColumn

__all__ = ["MultiModalData", "TabularColumn", "ModalityTensors"]
