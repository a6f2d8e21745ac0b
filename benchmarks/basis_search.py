"""Can the sparsity of a cross-block derivative find the basis inside each block?

Oracle test of candidate estimators of the basis inside modality blocks (the piece
issue 25 found missing). On the true latents of ``personax demo``'s data, mixed inside
the face and the text block by a random linear map, it computes per-entity derivative
matrices ``M_n`` (face x text) in the mixed coordinates, then searches block-linear maps
``U = diag(U_face, U_text)`` (rows scaled so that every mapped latent has unit
variance) minimising the group-lasso size ``sum_ij sqrt(mean_n [M'_n]_ij^2)`` of the
mapped matrices (Adam; one start at the mixed coordinates, one at the exact unmixing,
the rest random). ``--score`` chooses the derivative:

- ``hessian``: the library model's mechanisms and noise flows are fitted to the mixed
  latents (:func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`), the log
  density of a complete DAG in a random order is the density estimate ``log p(z)``, and
  ``M_n`` is the face x text block of its Hessian, mapped as ``U_face^-T M_n U_text^-1``.
  A zero entry at every entity means the two latents are separated given the rest.
- ``jacobian``: a small network regresses the face block on the shared and the text
  block (early-stopped on a held-out fifth), and ``M_n`` is its Jacobian with respect to
  the text block, mapped as ``U_face M_n U_text^-1``. A zero entry at every entity means
  that face latent does not depend on that text latent given the other text and shared
  latents (in the demo's graph every cross-modal edge points from text to face).

It prints the objective at the mixed start, at the exact unmixing and at the best map
found (and whether the start at the exact unmixing stays there), and the MCC (within
blocks) of the mixed and the mapped latents against the truth.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/basis_search.py --seeds 0 1 --score hessian
    OMP_NUM_THREADS=1 python benchmarks/basis_search.py --seeds 0 1 --score jacobian
"""

from __future__ import annotations

import argparse
import copy
import math
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


def regression_jacobian(z: np.ndarray, outputs: list[int], inputs: list[int], covariates: list[int], seed: int,
                        max_steps: int = 3000) -> torch.Tensor:
    """``(N, |outputs|, |inputs|)`` Jacobians of a regression of ``z[:, outputs]`` on ``z[:, covariates + inputs]``.

    A one-hidden-layer tanh network (32 units), full-batch Adam, stopped where the mean
    squared error on a held-out fifth of the rows is lowest; the Jacobian is taken with
    respect to the ``inputs`` columns at every row.
    """
    torch.manual_seed(seed)
    x = torch.tensor(z[:, covariates + inputs], dtype=torch.float32)
    y = torch.tensor(z[:, outputs], dtype=torch.float32)
    held = torch.zeros(len(z), dtype=torch.bool)
    held[torch.randperm(len(z))[: len(z) // 5]] = True
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 32), torch.nn.Tanh(), torch.nn.Linear(32, y.shape[1]))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    best, state = math.inf, None
    for _ in range(max_steps):
        optimizer.zero_grad()
        (net(x[~held]) - y[~held]).pow(2).mean().backward()
        optimizer.step()
        with torch.no_grad():
            held_mse = float((net(x[held]) - y[held]).pow(2).mean())
        if held_mse < best:
            best, state = held_mse, copy.deepcopy(net.state_dict())
    net.load_state_dict(state)
    x = x.requires_grad_(True)
    out = net(x)
    rows = [torch.autograd.grad(out[:, k].sum(), x, retain_graph=True)[0][:, len(covariates):]
            for k in range(y.shape[1])]
    return torch.stack(rows, 1).detach()


def mapped_matrices(M: torch.Tensor, U: list[torch.Tensor], score: str) -> torch.Tensor:
    """The derivative matrices ``M (N, d1, d2)`` in the coordinates ``U = [U_1, U_2]``.

    A Hessian block maps as ``U_1^-T M U_2^-1``, a Jacobian of block 1 with respect to
    block 2 as ``U_1 M U_2^-1``.
    """
    left = torch.linalg.inv(U[0]).T if score == "hessian" else U[0]
    return left @ M @ torch.linalg.inv(U[1])


def cross_objective(M: torch.Tensor, U: list[torch.Tensor], score: str) -> torch.Tensor:
    """Group-lasso size of the mapped matrices: ``sum_ij sqrt(mean_n [M'_n]_ij^2)``."""
    return mapped_matrices(M, U, score).pow(2).mean(0).add(1e-8).sqrt().sum()


def unit_rows(R: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """``R`` with each row scaled so that ``R z`` has unit variance under ``cov``."""
    return R / torch.sqrt(torch.diag(R @ cov @ R.T))[:, None]


def search(M: torch.Tensor, z: np.ndarray, blocks: list[list[int]], exact: list[torch.Tensor], score: str,
           restarts: int, steps: int, seed: int):
    """Minimise :func:`cross_objective` over block-linear maps from several starts.

    Start 0 is the mixed coordinates (identity), start 1 the exact unmixing ``exact``,
    the others random. Returns ``(value, [U_1, U_2])`` of the best start and of the
    start at the exact unmixing.
    """
    covs = [torch.tensor(np.cov(z[:, b].T), dtype=torch.float32) for b in blocks]
    generator = torch.Generator().manual_seed(seed)
    best, from_exact = None, None
    for r in range(restarts):
        if r == 1:
            raw = [e.clone().requires_grad_() for e in exact]
        else:
            raw = [(torch.eye(len(b)) + (r > 0) * torch.randn(len(b), len(b), generator=generator)).requires_grad_()
                   for b in blocks]
        optimizer = torch.optim.Adam(raw, lr=0.01)
        for _ in range(steps):
            value = cross_objective(M, [unit_rows(R, c) for R, c in zip(raw, covs)], score)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        end = (float(value.detach()), [unit_rows(R, c).detach() for R, c in zip(raw, covs)])
        if r == 1:
            from_exact = end
        if best is None or end[0] < best[0]:
            best = end
    return best, from_exact


def block_mcc(x: np.ndarray, z: np.ndarray, blocks: list[list[int]]) -> str:
    """MCC of ``x`` against ``z`` within each block, as ``"face / text"``."""
    from pyro_personax.metrics import mcc

    return " / ".join(f"{mcc(x[:, b], z[:, b]).value:.3f}" for b in blocks)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--mixing", type=float, default=0.8, help="scale of the random part of the mixing map")
    parser.add_argument("--score", choices=("hessian", "jacobian"), default="hessian")
    parser.add_argument("--restarts", type=int, default=6, help="starts of the search (mixed, exact, random ones)")
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args(argv)
    if args.restarts < 2:
        parser.error(f"--restarts: expected at least 2 (the mixed coordinates and the exact unmixing); "
                     f"found {args.restarts}")

    from pyro_personax.inference.oracle import fit_mechanisms_given_latents
    from pyro_personax.layout import SHARED
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
        if args.score == "hessian":
            torch.manual_seed(seed)
            model = PersonaXModel(layout, ModelSpec.from_data(data.to_multimodal()))
            fit_mechanisms_given_latents(model, mixed, seed=seed)
            cross = log_density_hessian(model, mixed, seed)[:, blocks[0]][:, :, blocks[1]]
        else:
            shared = [i for i, b in enumerate(layout.block_of) if b == SHARED]
            cross = regression_jacobian(mixed, blocks[0], blocks[1], shared, seed)
        at_start = float(cross_objective(cross, [torch.eye(len(b)) for b in blocks], args.score))
        at_truth = float(cross_objective(cross, exact, args.score))
        (found, U), (from_exact, U_exact) = search(cross, mixed, blocks, exact, args.score, args.restarts,
                                                    args.steps, seed)
        mapped, mapped_exact = mixed.copy(), mixed.copy()
        for b, u, e in zip(blocks, U, U_exact):
            mapped[:, b] = mixed[:, b] @ u.numpy().T
            mapped_exact[:, b] = mixed[:, b] @ e.numpy().T

        print(f"seed {seed} ({args.score}): objective mixed {at_start:.2f}, exact unmixing {at_truth:.2f} "
              f"(a search started there ends at {from_exact:.2f}, MCC {block_mcc(mapped_exact, z, blocks)}), "
              f"found {found:.2f}; "
              f"MCC face / text mixed {block_mcc(mixed, z, blocks)}, found {block_mcc(mapped, z, blocks)} "
              f"({time.perf_counter() - start:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
