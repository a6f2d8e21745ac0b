"""Precision-weighted product of Gaussian experts.

Several conditionally independent measurements of one latent block each give a
Gaussian "expert" ``N(loc_k, 1 / precision_k)``; with a standard-normal prior expert,
their normalised product is Gaussian with

    precision = prior_precision + sum_k mask_k * precision_k
    loc       = sum_k mask_k * precision_k * loc_k / precision

A missing measurement (``mask_k = False``) has precision 0 and drops out.

:func:`product_of_experts_full` is the same product for experts with full precision
matrices (correlated posterior coordinates)::

    Lambda = prior_precision * I + sum_k mask_k * Lambda_k
    loc    = Lambda^{-1} sum_k mask_k * Lambda_k loc_k

An expert over a subset of the coordinates is an expert whose precision is zero
outside that subset, which is how a measurement informs only ``(s, z_m)`` of ``z``.
"""

from __future__ import annotations

import torch

__all__ = ["product_of_experts", "product_of_experts_full"]


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
        raise ValueError(
            f"loc and precision must have one shape; found {tuple(loc.shape)} and {tuple(precision.shape)}"
        )
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


def product_of_experts_full(
    loc: torch.Tensor,
    precision: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    prior_precision: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Combine Gaussian experts with full precision matrices and a zero-mean prior expert.

    Parameters
    ----------
    loc
        Expert means ``(..., K, d)``, the ``K`` experts along dimension ``-2``.
    precision
        Expert precision matrices ``(..., K, d, d)``, symmetric positive semi-definite
        (zero rows and columns where an expert says nothing about a coordinate).
    mask
        Optional boolean ``(..., K)``; ``False`` drops an expert (its ``loc`` may then
        hold anything finite or not).
    prior_precision
        Precision of the ``N(0, I / prior_precision)`` prior expert (``> 0``, so that the
        product is a proper Gaussian whatever the experts).

    Returns
    -------
    (loc, precision)
        Mean ``(..., d)`` and precision matrix ``(..., d, d)`` of the product, exactly
        symmetric.
    """
    if loc.shape[-1:] != precision.shape[-1:] or precision.shape[:-1] != loc.shape:
        raise ValueError(
            "loc (..., K, d) and precision (..., K, d, d) must agree; "
            f"found {tuple(loc.shape)} and {tuple(precision.shape)}"
        )
    if not prior_precision > 0:
        raise ValueError(f"prior_precision must be > 0; found {prior_precision}")
    if mask is not None:
        if mask.shape != loc.shape[:-1]:
            raise ValueError(f"mask: expected shape {tuple(loc.shape[:-1])}; found {tuple(mask.shape)}")
        precision = torch.where(mask[..., None, None], precision, torch.zeros_like(precision))
        loc = torch.where(mask.unsqueeze(-1), loc, torch.zeros_like(loc))
    eye = torch.eye(loc.shape[-1], dtype=loc.dtype, device=loc.device)
    total = precision.sum(-3) + prior_precision * eye
    # float32 sums of symmetric matrices round (i, j) and (j, i) differently; a distribution's
    # symmetry check (atol 1e-6) then rejects a small off-diagonal entry built from large ones
    total = 0.5 * (total + total.mT)
    info = (precision @ loc.unsqueeze(-1)).sum(-3)
    mean = torch.cholesky_solve(info, torch.linalg.cholesky(total)).squeeze(-1)
    return mean, total
