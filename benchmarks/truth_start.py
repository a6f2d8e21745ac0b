"""Does the objective prefer the true representation? Fits started at the truth against default fits.

For each seed of the demo's synthetic persona data (``personax demo``'s data: 2,000
people, the truth's layout), two fits with the library's defaults and one chain:

- ``default``: the usual random start;
- ``truth start``: before SVI, the guide's encoders are trained to put the posterior
  mean at the standardised true latents (squared error) and the decoders to maximise
  the likelihood of the measurements given the true latents (``--pretrain-steps``
  full-batch Adam steps each, on all rows: an oracle start, not a method). With
  ``--rotate DEG`` the target is the true latents turned inside each modality block by
  a random rotation of largest angle ``DEG`` (:func:`block_rotation`; the shared block is
  left alone), and the MCC of that target is printed. Everything else (SVI, the graph
  stage) is unchanged.

Both print the final training and validation ELBO per entity, MCC over latents matched
within blocks, and on the identified (cross-modal) edges the number recovered at
P > 0.5, AUROC and ECE. If the truth start ends with a higher ELBO and keeps the truth,
the objective decides the representation and a random start is an optimisation failure;
if it drifts to a mixed representation with an ELBO as high, the objective does not
decide it at this size.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/truth_start.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def pretrain(model, guide, batch, z_true: torch.Tensor, steps: int, seed: int) -> tuple[float, float]:
    """Fit the guide's encoders to ``z_true`` and the decoders to the data given ``z_true``.

    Returns the final mean squared error of the posterior mean and the final mean
    log-likelihood per entity.
    """
    torch.manual_seed(seed)
    enc = torch.optim.Adam(guide.encoders.parameters(), lr=3e-3)
    for _ in range(steps):
        enc.zero_grad()
        loc = guide._posterior(guide._experts(batch)[1])[0]
        mse = (loc - z_true).pow(2).mean()
        mse.backward()
        enc.step()
    dec = torch.optim.Adam(model.decoders.parameters(), lr=3e-3)
    for _ in range(steps):
        dec.zero_grad()
        ll = sum(model.likelihood(m, z_true, _zero_eta(model, m, z_true), batch[m]).log_prob(batch[m][0]).mean()
                 for m in batch)
        (-ll).backward()
        dec.step()
    return float(mse.detach()), float(ll.detach())


def truth_builder(build, batch, z_true: torch.Tensor, steps: int, seed: int, stats: list):
    """A model builder that calls ``build`` and then :func:`pretrain` (its result appended to ``stats``)."""
    def build_at_truth():
        model, guide = build()
        with torch.no_grad():  # materialise lazily created modules
            guide(batch, num_entities=z_true.shape[0], subsample=None)
        stats.append(pretrain(model, guide, batch, z_true, steps, seed))
        return model, guide

    return build_at_truth


def _zero_eta(model, mod: str, z: torch.Tensor):
    e = model.nuisance_dims[mod]
    return None if e == 0 else z.new_zeros(z.shape[0], model.spec[mod].num_measurements, e)


def block_rotation(layout, angle_deg: float, seed: int) -> np.ndarray:
    """``(D, D)`` rotation acting inside each modality block (the shared block is left alone).

    Each block's part is ``expm(theta * A / |A|)`` for a random skew-symmetric ``A``:
    a rotation whose largest angle is ``theta`` (``angle_deg`` in degrees).
    """
    from scipy.linalg import expm

    rng = np.random.default_rng(seed)
    R = np.eye(layout.latent_dim)
    for block in layout.modalities:
        sl = layout.block_slice(block)
        k = sl.stop - sl.start
        if k < 2:
            continue
        A = rng.normal(size=(k, k))
        A = A - A.T
        R[sl, sl] = expm(np.deg2rad(angle_deg) * A / np.linalg.norm(A, 2))
    return R


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--pretrain-steps", type=int, default=400)
    parser.add_argument("--rotate", type=float, default=0.0,
                        help="truth start: rotate the true latents inside each modality block by this many degrees")
    parser.add_argument("--posterior-covariance", default=None, choices=("diagonal", "full"),
                        help="PersonaX's posterior_covariance (default: the library's)")
    parser.add_argument("--trace", action="store_true", help="also print the training ELBO every tenth of the epochs")
    parser.add_argument("--starts", nargs="+", default=["default", "truth"], choices=("default", "truth"))
    args = parser.parse_args(argv)

    from persona_recovery import demo_scores

    from pyro_personax import PersonaX
    from pyro_personax.metrics import evaluate_recovery
    from pyro_personax.synthetic import persona

    print(f"{'seed':>4} {'start':>7} {'s':>5} {'ELBO_tr':>9} {'ELBO_val':>9} {'MCC':>6} {'recovered':>9} "
          f"{'AUROC_id':>8} {'ECE_id':>6}  pretrain (mse, ll)")
    for seed in args.seeds:
        dataset, truth = persona(args.entities, seed=seed)
        data, layout = dataset.to_multimodal(), truth.layout
        blocks, identified = np.array(layout.block_of), layout.identified_mask()
        full = data.to_tensors()
        z_std = (truth.latents - truth.latents.mean(0)) / truth.latents.std(0)
        rotation = block_rotation(layout, args.rotate, seed)
        z_true = torch.as_tensor(z_std @ rotation.T, dtype=torch.get_default_dtype())
        for start in args.starts:
            options = {} if args.posterior_covariance is None else {"posterior_covariance": args.posterior_covariance}
            px = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim, **options)
            note = ""
            if start == "truth":
                stats = []
                px._build = truth_builder(px._build, full, z_true, args.pretrain_steps, seed, stats)
            began = time.perf_counter()
            px.fit(data, num_epochs=args.epochs, num_chains=1, seed=seed, device="cpu", progress=False)
            seconds = time.perf_counter() - began
            if start == "truth":
                kw0 = {"identified": identified, "learned_blocks": blocks, "true_blocks": blocks, "with_r2": False}
                mcc0 = evaluate_recovery(z_true.numpy(), truth.latents, np.zeros_like(truth.adjacency),
                                         truth.adjacency, **kw0)["mcc"]
                note = f"  ({stats[0][0]:.3f}, {stats[0][1]:.1f}; MCC at the start {mcc0:.3f})"
            chain = px.fit_result.chains[0]
            soft, hard = demo_scores(px, data, truth)
            print(f"{seed:>4} {start:>7} {seconds:>5.0f} {chain.train_elbo[-1]:>9.2f} "
                  f"{np.nanmax(chain.validation_elbo):>9.2f} {soft['mcc']:>6.3f} "
                  f"{hard['recovered_identified']:>4}/{hard['num_true_identified']:<4} "
                  f"{soft['edge_auroc_identified']:>8.3f} {soft['ece_identified']:>6.3f}{note}", flush=True)
            if args.trace:
                step = max(1, len(chain.train_elbo) // 10)
                print("      training ELBO by epoch: " + ", ".join(
                    f"{e + 1}: {v:.1f}" for e, v in enumerate(chain.train_elbo) if (e + 1) % step == 0), flush=True)


if __name__ == "__main__":
    main()
