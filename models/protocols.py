"""The protocols a researcher implements to plug in another mechanism or graph posterior.

:class:`Mechanism` is what :class:`~pyro_personax.models.latent_flow.DAGFlowLatent`
calls; :class:`GraphPosterior` is what the trainer, the facade and the posterior
collection call on a guide. Both are :class:`typing.Protocol`\\ s checked at run time
(``isinstance``) for the presence of their methods.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["Mechanism", "GraphPosterior"]


@runtime_checkable
class Mechanism(Protocol):
    """Structural equations of all children at once.

    ``loc_and_log_scale(z, A)`` returns the location ``f_j(A[:, j] * z)`` and the log
    noise scale ``s_j`` of every child, each ``(..., D)``, for latents ``z (..., D)`` and a
    graph ``A (..., D, D)`` (``[i, j]`` = i -> j); ``forward`` returns the location alone.
    ``effective_params_per_edge`` is the ``k`` of the BIC edge penalty.
    """

    latent_dim: int

    def __call__(self, z: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor: ...

    def loc_and_log_scale(self, z: torch.Tensor, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    @property
    def effective_params_per_edge(self) -> float: ...


@runtime_checkable
class GraphPosterior(Protocol):
    """``q(G)`` as the rest of the package uses it (a guide implements it).

    - ``graph_sites(temperature)``: the guide's graph sample sites (inside the guide; in
      the ``"graphs"`` plate for a posterior drawn in particles);
    - ``edge_probabilities()``: exact marginals ``(D, D)``, the one source of every
      reported edge probability;
    - ``sample_graphs(num_samples, generator)``: whole graphs, a dict with ``"edges"``
      ``(S, D, D)`` and the values of any other graph site (``"order"``), the one
      sampler;
    - ``graph_parameters()``: the parameters of ``q(G)`` (own learning rate, warm-up).
    """

    def graph_sites(self, temperature: float = 1.0) -> None: ...

    def edge_probabilities(self) -> torch.Tensor: ...

    def sample_graphs(self, num_samples: int, generator: torch.Generator | None = None) -> dict: ...

    def graph_parameters(self) -> list: ...
