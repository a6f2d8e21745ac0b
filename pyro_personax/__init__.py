"""pyro_personax: Bayesian multimodal causal representation learning for PersonaX."""
from pyro_personax._version import __version__

__all__ = ["__version__"]
