"""Precision-weighted product of Gaussian experts.

Several conditionally independent measurements of one latent block each give a
Gaussian "expert" ``N(loc_k, 1 / precision_k)``; with a standard-normal prior expert,
their normalised product is Gaussian with

    precision = prior_precision + sum_k mask_k * precision_k
    loc       = sum_k mask_k * precision_k * loc_k / precision

A missing measurement (``mask_k = False``) has precision 0 and drops out.
"""

from __future__ import annotations

import torch

__all__ = ["product_of_experts"]


def product_of_experts(
    loc: torch.Tensor,
    precision: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    prior_precision: float = 1.0,
    dim: int = -2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Combine Gaussian experts along ``dim`` with a zero-mean prior expert.

    Parameters
    ----------
    loc, precision
        Expert means and precisions (``> 0``), same shape, e.g. ``(N, K, d)`` with the
        experts along ``dim``.
    mask
        Optional boolean of ``loc``'s shape without the last dimension (e.g. ``(N, K)``
        for ``dim=-2``), or of ``loc``'s shape; ``False`` drops an expert.
    prior_precision
        Precision of the ``N(0, 1 / prior_precision)`` prior expert (``>= 0``; 0 means no
        prior expert, which needs at least one expert per row).
    dim
        Dimension holding the experts.

    Returns
    -------
    (loc, scale)
        Mean and standard deviation of the product, ``loc``'s shape without ``dim``.
    """
    if loc.shape != precision.shape:
        raise ValueError(f"loc and precision must have one shape; found {tuple(loc.shape)} and {tuple(precision.shape)}")
    if prior_precision < 0:
        raise ValueError(f"prior_precision must be >= 0; found {prior_precision}")
    weight = precision
    if mask is not None:
        if mask.shape != loc.shape:
            mask = mask.unsqueeze(-1)
        weight = torch.where(mask, precision, torch.zeros_like(precision))
    total = weight.sum(dim) + prior_precision
    mean = (weight * torch.where(weight > 0, loc, torch.zeros_like(loc))).sum(dim) / total
    return mean, total.rsqrt()
