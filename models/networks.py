"""Small networks with one set of weights per measurement (grouped layers)."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GroupedLinear", "GroupedMLP", "MaskedDecoder"]


class GroupedLinear(nn.Module):
    """``G`` independent linear maps applied along a group dimension.

    ``x (..., G, in) -> (..., G, out)`` with weights ``(G, in, out)``.

    Parameters
    ----------
    num_groups, in_dim, out_dim
        ``G``, input and output widths (``in_dim`` may be 0: the output is the bias).

    Examples
    --------
    >>> layer = GroupedLinear(3, 4, 2)
    >>> layer(torch.zeros(5, 3, 4)).shape
    torch.Size([5, 3, 2])
    """

    def __init__(self, num_groups: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(max(in_dim, 1))
        self.weight = nn.Parameter(torch.empty(num_groups, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_groups, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the group-specific maps; ``x`` is ``(..., G, in)``."""
        return torch.einsum("...gi,gio->...go", x, self.weight) + self.bias


class GroupedMLP(nn.Module):
    """One MLP per group (measurement): ``(..., G, in) -> (..., G, out)``.

    Parameters
    ----------
    num_groups
        ``G`` (measurements).
    in_dim, hidden_dim, out_dim
        Widths.
    num_layers
        Number of hidden layers (ELU activations); 0 gives a grouped linear map.

    Examples
    --------
    >>> net = GroupedMLP(3, 4, 16, 2)
    >>> net(torch.zeros(5, 3, 4)).shape
    torch.Size([5, 3, 2])
    """

    def __init__(self, num_groups: int, in_dim: int, hidden_dim: int, out_dim: int, *, num_layers: int = 2):
        super().__init__()
        if num_layers < 0 or hidden_dim < 1:
            raise ValueError(f"num_layers must be >= 0 and hidden_dim >= 1; found {num_layers} and {hidden_dim}")
        widths = [in_dim] + [hidden_dim] * num_layers + [out_dim]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [GroupedLinear(num_groups, a, b), nn.ELU()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply each group's MLP; ``x`` is ``(..., G, in)``."""
        return self.net(x)


class MaskedDecoder(nn.Module):
    """A decoder whose output features read declared subsets of its inputs.

    Each group ``(inputs, outputs)`` has its own :class:`GroupedMLP` from the input
    columns ``inputs`` to the output features ``outputs``; the groups' outputs are put
    back in feature order, so an output feature depends only on its group's inputs.

    Parameters
    ----------
    num_measurements
        ``K`` (one set of weights per measurement, as :class:`GroupedMLP`).
    groups
        Sequence of ``(inputs, outputs)`` index sequences; the ``outputs`` of all groups
        must partition ``range(out_dim)``.
    hidden_dim, num_layers
        Width and depth of each group's MLP.

    Examples
    --------
    >>> net = MaskedDecoder(2, [([0, 2], [1]), ([1, 2], [0, 2])], 8)
    >>> net(torch.zeros(5, 2, 3)).shape
    torch.Size([5, 2, 3])
    """

    def __init__(self, num_measurements: int, groups, hidden_dim: int, *, num_layers: int = 2):
        super().__init__()
        outputs = [int(o) for _, outs in groups for o in outs]
        if sorted(outputs) != list(range(len(outputs))):
            raise ValueError(f"groups: the output features must partition range(out_dim); found {sorted(outputs)}")
        self.nets = nn.ModuleList(
            GroupedMLP(num_measurements, len(ins), hidden_dim, len(outs), num_layers=num_layers) for ins, outs in groups
        )
        for g, (ins, _) in enumerate(groups):
            self.register_buffer(f"inputs_{g}", torch.as_tensor([int(i) for i in ins], dtype=torch.long))
        self.register_buffer("order", torch.argsort(torch.as_tensor(outputs, dtype=torch.long)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., K, in) -> (..., K, out)``."""
        outs = [net(x.index_select(-1, getattr(self, f"inputs_{g}"))) for g, net in enumerate(self.nets)]
        return torch.cat(outs, dim=-1).index_select(-1, self.order)
