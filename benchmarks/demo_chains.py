"""A `personax demo` run chain by chain: q(G) against the best DAG given the chain's latents, and their basis.

For each chain of a saved demo run (``personax demo --out DIR``), matched to the truth
within blocks by ``metrics.evaluate_recovery``, the script prints the identified
(cross-modal) edges that differ from the truth for

- ``q(G)``: the chain's edge probabilities thresholded at 0.5;
- ``MAP``: the most probable DAG given the chain's posterior means under the chain's own
  fitted mechanisms and noise flows (node table, the prior's BIC edge charge, exact
  dynamic programming over subsets: :func:`pyro_personax.graph.best_dag`);

(with ``--charges``, the same MAP under multiples of the BIC edge charge), and then
scores bases of the same latents by the model's own criterion: the chain's
mechanisms refitted for ``--steps`` steps to the standardised latents mapped linearly
inside each block, the best DAG's ``log p(z | G) + log p(G)`` per entity plus the map's
``log |det|`` per entity, so every basis is scored as a density of the same latents.
Bases: the learned one, the least-squares map of each block onto its true latents (an
oracle), with ``--oracle-less-shared`` the same map onto the true modality latents less
what a function of the shared block explains of them (a representation the likelihood
does not tell from the truth: "What the data can decide" in the README), and
``--rotations`` random rotations near the identity. Last, the bound: the
best DAG given the true latents, mechanisms fitted afresh.

With ``--latents likelihood`` every chain's posterior means are replaced, before the MAP
and the bases, by latents that maximise the likelihood alone (the chain's decoders held
fixed, no causal prior): a check of whether the prior ``p(z | G)``, through the encoder,
holds the latents near the graph the fit learned. The MAP line then uses the chain's
mechanisms as trained on the means (their scale); the basis lines refit them.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/demo_chains.py --run DIR [--chains 0 1] [--steps 300] [--latents likelihood]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np


def oracle_map(z: np.ndarray, truth: np.ndarray, blocks) -> np.ndarray:
    """``(D, D)`` block-diagonal least-squares map of each block of ``z`` onto the same block of ``truth``."""
    blocks = np.asarray(blocks)
    M = np.zeros((z.shape[1], z.shape[1]))
    for b in dict.fromkeys(blocks):
        idx = np.flatnonzero(blocks == b)
        coef, *_ = np.linalg.lstsq(z[:, idx] - z[:, idx].mean(0), truth[:, idx] - truth[:, idx].mean(0), rcond=None)
        M[np.ix_(idx, idx)] = coef
    return M


def less_shared_part(truth: np.ndarray, blocks) -> np.ndarray:
    """``truth`` with each modality latent replaced by its residual on features of the shared latents.

    Least squares on ``s, s^2, s^3, tanh(s), sin(s), s / (1 + |s|)`` of every shared
    latent ``s`` and the products of pairs: the part of a modality latent that a function
    of the shared block does not explain. The shared columns are kept.
    """
    from pyro_personax.layout import SHARED

    blocks = np.asarray(blocks)
    shared, modality = truth[:, blocks == SHARED], blocks != SHARED
    if shared.shape[1] == 0:
        return truth.copy()
    feats = [shared, shared**2, shared**3, np.tanh(shared), np.sin(shared), shared / (1 + np.abs(shared))]
    i, j = np.triu_indices(shared.shape[1], 1)
    F = np.column_stack([np.ones(len(truth)), *feats, shared[:, i] * shared[:, j]])
    coef, *_ = np.linalg.lstsq(F, truth[:, modality], rcond=None)  # one fit per modality column
    out = truth.copy()
    out[:, modality] -= F @ coef
    return out


def near_identity_rotation(blocks, rng: np.random.Generator, spread: float = 0.3) -> np.ndarray:
    """``(D, D)`` block-diagonal orthogonal map, each block the Q factor of ``I + spread * noise``."""
    blocks = np.asarray(blocks)
    R = np.eye(len(blocks))
    for b in dict.fromkeys(blocks):
        idx = np.flatnonzero(blocks == b)
        Q, r = np.linalg.qr(np.eye(len(idx)) + spread * rng.normal(size=(len(idx), len(idx))))
        R[np.ix_(idx, idx)] = Q * np.sign(np.diag(r))
    return R


def standardised(z: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float]:
    """``z M`` scaled to unit variance per column, and ``log |det|`` of the whole map (per row)."""
    w = z @ M
    scale = w.std(0)
    return w / scale, float(np.linalg.slogdet(M / scale)[1])


def differing_identified(G: np.ndarray, perm, truth: np.ndarray, identified: np.ndarray, names) -> list[str]:
    """Identified cells where the learned graph ``G`` (matched by ``perm``) differs from ``truth``."""
    Gp = np.asarray(G)[np.ix_(perm, perm)]
    D = len(names)
    return [f"{names[i]}->{names[j]} ({'missed' if truth[i, j] else 'spurious'})"
            for i in range(D) for j in range(D) if identified[i, j] and bool(Gp[i, j]) != bool(truth[i, j])]


def likelihood_objective(model, batch, z, etas):
    """``sum_n [log p(x_n | z_n, eta_n) + log p(eta_n)]`` under ``model``'s decoders (observed entries only).

    ``z (N, D)`` in the model's latent coordinates; ``etas``: modality -> ``(N, K, e)``
    for the modalities with a nuisance.
    """
    from torch.distributions import Normal

    total = 0.0
    for m in model.spec.modalities:
        t, eta = batch[m.name], etas.get(m.name)
        total = total + model.likelihood(m.name, z, eta, t).log_prob(t[0]).sum()
        if eta is not None:
            total = total + (Normal(0.0, 1.0).log_prob(eta).sum(-1) * t[1]).sum()
    return total


def likelihood_latents(model, guide, batch, *, steps: int = 200, lr: float = 0.01):
    """Latents that maximise :func:`likelihood_objective` per entity, the decoders held fixed.

    Started at the guide's posterior means (and its nuisance means given them); Adam on
    all entities at once. The causal prior ``p(z | G)`` is left out, so the latents are
    not drawn towards the graph the fit learned.

    Returns
    -------
    tuple
        ``(N, D)`` float64 latents, and the objective per entity at the start and at the end.
    """
    import torch

    from pyro_personax.models.common import _block_latents, _cat

    with torch.no_grad():
        feats, experts = guide._experts(batch)
        z0 = guide._distribution(experts).mean
        etas = {}
        for m in model.spec.modalities:
            if model.nuisance_dims[m.name] > 0:
                lat = _block_latents(guide.layout, guide._to_trained_basis(z0), m.name, m.num_measurements)
                etas[m.name] = guide.nuisance_encoders[m.name](_cat([feats[m.name], lat])).chunk(2, dim=-1)[0]
    n = z0.shape[0]
    z = z0.clone().requires_grad_(True)
    etas = {k: v.clone().requires_grad_(True) for k, v in etas.items()}
    held = [p for p in model.parameters() if p.requires_grad]
    for p in held:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            start = float(likelihood_objective(model, batch, z, etas)) / n
        opt = torch.optim.Adam([z, *etas.values()], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            (-likelihood_objective(model, batch, z, etas)).backward()
            opt.step()
        with torch.no_grad():
            end = float(likelihood_objective(model, batch, z, etas)) / n
    finally:
        for p in held:
            p.requires_grad_(True)
    return z.detach().double().numpy(), start, end


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the OUT folder of `personax demo`")
    parser.add_argument("--entities", type=int, default=2000, help="the demo's --num-entities")
    parser.add_argument("--seed", type=int, default=0, help="the demo's --seed")
    parser.add_argument("--chains", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=300, help="steps of the mechanisms' refit per basis")
    parser.add_argument("--rotations", type=int, default=3)
    parser.add_argument("--charges", type=float, nargs="+", default=[],
                        help="also give each chain's MAP under these multiples of the BIC edge charge")
    parser.add_argument("--latents", choices=("means", "likelihood"), default="means",
                        help="the chains' posterior means, or latents that maximise the likelihood alone "
                             "(decoders fixed, started at the means; no causal prior)")
    parser.add_argument("--oracle-less-shared", action="store_true",
                        help="also score the least-squares map onto the true latents less what a function of the "
                             "shared block explains of each modality latent (undecided by the data)")
    parser.add_argument("--likelihood-steps", type=int, default=200, help="Adam steps of --latents likelihood")
    args = parser.parse_args(argv)
    if not (args.run / "run" / "model").is_dir():
        raise SystemExit(f"--run: expected a `personax demo` folder with run/model; not found under {args.run}")

    from pyro_personax import PersonaX
    from pyro_personax.inference import local_params
    from pyro_personax.inference.oracle import fit_mechanisms_given_latents, most_probable_dag, node_table
    from pyro_personax.metrics import evaluate_recovery
    from pyro_personax.synthetic import persona

    px = PersonaX.load(args.run / "run" / "model")
    dataset, truth = persona(args.entities, seed=args.seed)
    data, layout = dataset.to_multimodal(), truth.layout
    blocks, identified, names = np.array(layout.block_of), layout.identified_mask(), layout.names
    n = data.num_entities
    draws = px.sample_posterior(2000, seed=0)["edges"]  # (C, S, D, D), chain 0's labels

    def score(G, z):
        rec = evaluate_recovery(z, truth.latents, G.astype(float), truth.adjacency, identified=identified,
                                learned_blocks=blocks, true_blocks=blocks, with_r2=False)
        return rec, differing_identified(G, rec["permutation"], truth.adjacency, identified, names)

    def best(model, z, multiple=1.0):
        charge = multiple * model.edge_penalty("bic", n)
        return most_probable_dag(model, node_table(model, z), sparsity=charge, num_entities=n)

    if args.latents == "likelihood":  # every chain reads the same rows
        import torch

        from pyro_personax.inference.batches import index_batch

        batch = index_batch(data.to_tensors(fill=False), torch.arange(n))
    rng = np.random.default_rng(args.seed)
    with local_params():
        for c in args.chains if args.chains is not None else range(px.num_chains):
            relabelled = px.get_latent_representation(data, chain=c)  # chain 0's labels
            rec, wrong = score((draws[c].mean(0) > 0.5).astype(int), relabelled)
            print(f"chain {c} q(G) > 0.5: SHD_id {rec['shd_identified']}, MCC {rec['mcc']:.3f}; {wrong}", flush=True)
            model = px.model(c)
            own = relabelled[:, np.argsort(px.chain_alignment.permutations[c])]  # the chain's own labels
            if args.latents == "likelihood":
                ml, start, end = likelihood_latents(model, px.guide(c), batch, steps=args.likelihood_steps)
                print(f"chain {c} likelihood latents: log p(x | z, eta) + log p(eta) per entity {start:.2f} -> "
                      f"{end:.2f}; corr with the means per latent "
                      f"{np.round([np.corrcoef(ml[:, j], own[:, j])[0, 1] for j in range(ml.shape[1])], 3)}",
                      flush=True)
                own = ml
                relabelled = own[:, px.chain_alignment.permutations[c]]
                rec, wrong = score((draws[c].mean(0) > 0.5).astype(int), relabelled)
                print(f"chain {c} q(G) > 0.5 on these latents: SHD_id {rec['shd_identified']}, MCC {rec['mcc']:.3f}",
                      flush=True)
            G, _, _ = best(model, own)
            rec, wrong = score(G, own)
            print(f"chain {c} MAP given its latents, own mechanisms: SHD_id {rec['shd_identified']}, "
                  f"{int(G.sum())} edges; {wrong}", flush=True)
            for multiple in args.charges:
                G, _, _ = best(model, own, multiple)
                rec, wrong = score(G, own)
                print(f"chain {c}   the same, {multiple:g} x the BIC charge: SHD_id {rec['shd_identified']}, "
                      f"{int(G.sum())} edges; {wrong}", flush=True)
            z0 = (own - own.mean(0)) / own.std(0)
            bases = [("learned", np.eye(len(names))), ("least-squares onto the truth (oracle)",
                                                         oracle_map(z0, truth.latents, blocks))]
            if args.oracle_less_shared:
                bases.append(("onto the truth less its shared part",
                              oracle_map(z0, less_shared_part(truth.latents, blocks), blocks)))
            bases += [(f"rotation near the identity {r}", near_identity_rotation(blocks, rng))
                      for r in range(args.rotations)]
            for tag, M in bases:
                z, logdet = standardised(z0, M)
                refit = copy.deepcopy(model)
                fit_mechanisms_given_latents(refit, z, num_steps=args.steps, seed=args.seed)
                G, _, s = best(refit, z)
                rec, _ = score(G, z)
                print(f"chain {c}   basis {tag:38s} score {s / n + logdet:+.4f} nats per entity (log|det| "
                      f"{logdet:+.3f}), {int(G.sum())} edges, MCC {rec['mcc']:.3f}, SHD_id {rec['shd_identified']}",
                      flush=True)
        model = copy.deepcopy(px.model(0))
        z = (truth.latents - truth.latents.mean(0)) / truth.latents.std(0)
        fit_mechanisms_given_latents(model, z, num_steps=args.steps, seed=args.seed)
        G, _, _ = best(model, z)
        rec, wrong = score(G, z)
        print(f"bound: MAP given the true latents: SHD_id {rec['shd_identified']}, {int(G.sum())} edges "
              f"(truth {int(truth.adjacency.sum())}); {wrong}", flush=True)


if __name__ == "__main__":
    main()
