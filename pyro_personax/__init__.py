"""pyro_personax: Bayesian multimodal causal representation learning for PersonaX.

Level I (independence tests) lives in :mod:`pyro_personax.independence`; Level II
(the Pyro model, training and diagnostics) is reached through :class:`PersonaX`,
:func:`edge_report`, :mod:`pyro_personax.models` and :mod:`pyro_personax.inference`.
Adjacency matrices are parent -> child everywhere (:mod:`pyro_personax.graph`).

``PersonaX`` and ``edge_report`` are imported on first use, so that
``import pyro_personax`` stays light (no torch, pyro or arviz).
"""

from pyro_personax._version import __version__

__all__ = ["__version__", "PersonaX", "edge_report"]

_LAZY = {
    "PersonaX": ("pyro_personax.facade", "PersonaX"),
    "edge_report": ("pyro_personax.inference.report", "edge_report"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pyro_personax' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
