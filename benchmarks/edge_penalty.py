"""The effective number of parameters of one MLP edge, by simulation under the null.

The mechanisms and noise flows are fitted as in training (random parent sets, each
free pair present with probability 1/2; Adam, learning rate 0.01, batches of 256) on
``D`` independent Laplace latents. An edge ``i -> j`` between independent latents can
only fit noise, so its in-sample log-likelihood gain over the empty parent set
estimates ``k_eff / 2`` (Wilks): the effective number of parameters ``k_eff`` is twice
the mean gain. ``k_eff / 2 * log N`` is then the BIC edge penalty
(``models.latent_flow.MLP_EFFECTIVE_EDGE_PARAMS`` holds the values used by default, per
mechanism kind).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/edge_penalty.py               # 6 seeds, N = 2000
    python benchmarks/edge_penalty.py --hidden-dim 32 --seeds 0 1 2
    python benchmarks/edge_penalty.py --mechanism mlp_additive

Prints the mean, standard deviation and maximum gain per edge, ``k_eff`` and the penalty
it gives against the raw parameter count.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from pyro_personax.models.latent_flow import MLP_EFFECTIVE_EDGE_PARAMS, DAGFlowLatent, Mechanisms, MonotoneNoiseFlow


def null_gains(seed: int, num_entities: int, latent_dim: int, hidden_dim: int, epochs: int,
               noise_flow: str = "spline", mechanism: str = "mlp") -> list[float]:
    """In-sample gains ``(D (D - 1),)`` of every single edge between independent latents."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    z = torch.tensor(rng.laplace(size=(num_entities, latent_dim)), dtype=torch.float32)
    z = (z - z.mean(0)) / z.std(0)
    mech = Mechanisms(latent_dim, mechanism, hidden_dim=hidden_dim)
    flow = MonotoneNoiseFlow(latent_dim, noise_flow)
    opt = torch.optim.Adam([*mech.parameters(), *flow.parameters()], lr=0.01)
    free = ~torch.eye(latent_dim, dtype=torch.bool)
    for _ in range(epochs):
        for idx in torch.randperm(num_entities).split(256):
            masks = ((torch.rand(8, latent_dim, latent_dim) < 0.5) & free).float().unsqueeze(1)
            loss = -DAGFlowLatent(masks, mech, flow).node_log_prob(z[idx]).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    gains = []
    with torch.no_grad():
        base = DAGFlowLatent(torch.zeros(latent_dim, latent_dim), mech, flow).node_log_prob(z).sum(0)
        for i, j in zip(*np.nonzero(free.numpy())):
            A = torch.zeros(latent_dim, latent_dim)
            A[i, j] = 1.0
            gains.append(float(DAGFlowLatent(A, mech, flow).node_log_prob(z).sum(0)[j] - base[j]))
    return gains


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    parser.add_argument("--num-entities", type=int, default=2000)
    parser.add_argument("--latent-dim", type=int, default=4)
    parser.add_argument("--hidden-dim", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--noise-flow", choices=("spline", "parent_spline"), default="spline",
                        help="the noise flow (parent_spline: an edge also changes its child's noise shape)")
    parser.add_argument("--mechanism", choices=tuple(MLP_EFFECTIVE_EDGE_PARAMS), default="mlp",
                        help="the mechanisms (mlp_additive: no log noise scale per parent set)")
    args = parser.parse_args(argv)
    sys.stdout.write(f"null edge gain: N={args.num_entities}, D={args.latent_dim}, H={args.hidden_dim}, "
                     f"{args.epochs} epochs, noise flow {args.noise_flow}, mechanism {args.mechanism}, "
                     f"seeds {args.seeds}, "
                     f"torch threads {torch.get_num_threads()}\n")
    gains = np.concatenate([null_gains(s, args.num_entities, args.latent_dim, args.hidden_dim, args.epochs,
                                       args.noise_flow, args.mechanism)
                            for s in args.seeds])
    k_eff = 2 * gains.mean()
    raw = 1 + 2 * args.hidden_dim
    log_n = np.log(args.num_entities)
    sys.stdout.write(f"gain per edge: mean {gains.mean():.2f}, sd {gains.std():.2f}, max {gains.max():.2f} nats "
                     f"({gains.size} edges)\n")
    sys.stdout.write(f"k_eff = {k_eff:.2f}; BIC penalty at N={args.num_entities}: {0.5 * k_eff * log_n:.1f} nats "
                     f"(raw count k = {raw}: {0.5 * raw * log_n:.1f} nats)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
