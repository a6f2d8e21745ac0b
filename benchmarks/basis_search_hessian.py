"""Can the sparsity of the cross-block Hessian of log p(z) find the basis inside each block?

Oracle test of one candidate estimator of the basis inside modality blocks (the piece
issue 25 found missing). On the true latents of ``personax demo``'s data, mixed inside
the face and the text block by a random linear map, it

1. fits the library model's mechanisms and noise flows to the mixed latents
   (:func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`) and takes the
   log density of a complete DAG in a random order as a density estimate ``log p(z)``;
2. computes the Hessian ``H_n`` of ``log p`` at every entity (autograd);
3. searches block-linear maps ``U = diag(U_face, U_text)`` (rows scaled to unit
   variance) minimising ``sum_ij sqrt(mean_n [(U^-T H_n U^-1)_ij]^2)`` over the face x
   text entries (Adam, several random starts). A zero cross entry at every entity means
   the two latents are separated given the rest, so the true basis should be among the
   sparsest.

It prints the objective at the mixed start, at the exact unmixing and at the best map
found, and the MCC (within blocks) of the mixed and the mapped latents against the truth.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/basis_search_hessian.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def log_density_hessian(model, z: np.ndarray, seed: int) -> torch.Tensor:
    """``(N, D, D)`` Hessians of ``log p(z)`` under a complete DAG in a random order."""
    D = z.shape[1]
    order = np.random.default_rng(seed).permutation(D)
    A = torch.zeros(D, D)
    for a in range(D):
        A[order[a], order[a + 1:]] = 1.0
    x = torch.tensor(z, dtype=torch.float32, requires_grad=True)
    grad = torch.autograd.grad(model.latent_distribution(A).log_prob(x).sum(), x, create_graph=True)[0]
    rows = [torch.autograd.grad(grad[:, d].sum(), x, retain_graph=True)[0] for d in range(D)]
    return torch.stack(rows, 1).detach()


def cross_objective(H: torch.Tensor, U: list[torch.Tensor]) -> torch.Tensor:
    """Group-lasso size of the first x second block of ``U^-T H U^-1`` (``H``: ``(N, d1, d2)``)."""
    mapped = torch.linalg.inv(U[0]).T @ H @ torch.linalg.inv(U[1])
    return mapped.pow(2).mean(0).add(1e-8).sqrt().sum()


def unit_rows(R: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """``R`` with each row scaled so that ``R z`` has unit variance under ``cov``."""
    return R / torch.sqrt(torch.diag(R @ cov @ R.T))[:, None]


def search(H: torch.Tensor, z: np.ndarray, blocks: list[list[int]], restarts: int, steps: int, seed: int):
    """Best block-linear map of :func:`cross_objective`: ``(value, [U_1, U_2])``."""
    cross = H[:, blocks[0]][:, :, blocks[1]]
    covs = [torch.tensor(np.cov(z[:, b].T), dtype=torch.float32) for b in blocks]
    generator = torch.Generator().manual_seed(seed)
    best = None
    for r in range(restarts):
        raw = [(torch.eye(len(b)) + (r > 0) * torch.randn(len(b), len(b), generator=generator)).requires_grad_()
               for b in blocks]
        optimizer = torch.optim.Adam(raw, lr=0.01)
        for _ in range(steps):
            value = cross_objective(cross, [unit_rows(R, c) for R, c in zip(raw, covs)])
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        value = float(value.detach())
        if best is None or value < best[0]:
            best = (value, [unit_rows(R, c).detach() for R, c in zip(raw, covs)])
    return best


def block_mcc(x: np.ndarray, z: np.ndarray, blocks: list[list[int]]) -> str:
    """MCC of ``x`` against ``z`` within each block, as ``"face / text"``."""
    from pyro_personax.metrics import mcc

    return " / ".join(f"{mcc(x[:, b], z[:, b]).value:.3f}" for b in blocks)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--mixing", type=float, default=0.8, help="scale of the random part of the mixing map")
    parser.add_argument("--restarts", type=int, default=6)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args(argv)

    from pyro_personax.inference.oracle import fit_mechanisms_given_latents
    from pyro_personax.models import ModelSpec, PersonaXModel
    from pyro_personax.synthetic.persona import persona

    for seed in args.seeds:
        start = time.perf_counter()
        data, truth = persona(args.entities, seed=seed)
        layout = truth.layout
        blocks = [[i for i, b in enumerate(layout.block_of) if b == name] for name in ("face", "text")]
        z = (truth.latents - truth.latents.mean(0)) / truth.latents.std(0)
        rng = np.random.default_rng(100 + seed)
        M = np.eye(z.shape[1])
        for b in blocks:
            M[np.ix_(b, b)] += args.mixing * rng.normal(size=(len(b), len(b)))
        mixed = z @ M.T
        scale = mixed.std(0)
        mixed = (mixed - mixed.mean(0)) / scale
        exact = [torch.tensor(np.linalg.inv(M[np.ix_(b, b)]) * scale[b][None, :], dtype=torch.float32)
                 for b in blocks]
        torch.manual_seed(seed)
        model = PersonaXModel(layout, ModelSpec.from_data(data.to_multimodal()))
        fit_mechanisms_given_latents(model, mixed, seed=seed)
        H = log_density_hessian(model, mixed, seed)
        cross = H[:, blocks[0]][:, :, blocks[1]]
        at_start = float(cross_objective(cross, [torch.eye(len(b)) for b in blocks]))
        at_truth = float(cross_objective(cross, exact))
        found, U = search(H, mixed, blocks, args.restarts, args.steps, seed)
        mapped = mixed.copy()
        for b, u in zip(blocks, U):
            mapped[:, b] = mixed[:, b] @ u.numpy().T

        print(f"seed {seed}: objective mixed {at_start:.2f}, exact unmixing {at_truth:.2f}, found {found:.2f}; "
              f"MCC face / text mixed {block_mcc(mixed, z, blocks)}, found {block_mcc(mapped, z, blocks)} "
              f"({time.perf_counter() - start:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
