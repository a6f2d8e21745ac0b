"""Rules for weighing a fit's restarts, scored on the demo's data against the truth.

Reads the files of ``persona_recovery.py --save-chains DIR`` (one ``.npz`` per fit: every
restart's edge probabilities in its own labels and in chain 0's, its latents, its final
training ELBO, best validation ELBO and best basis-search score, and the truth) and
prints, per fit,

- every restart on its own (its latents and ``q(G)``): the statistics a rule could read
  without the truth (validation ELBO, basis score, ``E_x`` and ``E_in``: the expected
  number of cross-modal edges and of the other edges under its ``q(G)``) beside its
  scores on the identified (cross-modal) edges (recovered at P > 0.5 of the thresholded
  acyclic graph, SHD_id, AUROC_id, ECE_id);
- the library's pool (``equal``: the mean of the restarts' ``q(G)`` in chain 0's labels,
  scored with the pooled latents), then the restart each rule picks, scored on its own:
  the best validation ELBO, the highest basis score, the lowest ``E_x`` (Sun et al.'s
  Theorem 4.4 reads the sparsest cross-modal graph among fits of equal likelihood as
  the identified one) or the highest ``E_x + E_in``;
- ``stacking`` (files that hold ``log_density``): the restarts' ``q(G)`` pooled with the
  weights that maximise the held-out log density of the mixture of the restarts'
  predictive densities, ``sum_n log sum_k w_k p_k(x_n)`` over the fit's validation rows
  (:func:`stacking_weights`; Yao, Vehtari and Gelman, "Stacking for non-mixing Bayesian
  computations", JMLR 2022, for restarts that do not mix), scored with the pooled latents.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/persona_recovery.py --seeds 0 --chains 4 --latent-transforms identity \\
        --per-chain --save-chains DIR
    OMP_NUM_THREADS=1 python benchmarks/chain_selection.py DIR/*.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from persona_recovery import recovery_scores  # noqa: E402


def scores(latents: np.ndarray, P: np.ndarray, fit: dict) -> str:
    """The demo's scores (:func:`persona_recovery.recovery_scores`) of edge probabilities ``P`` ``(D, D)`` with
    ``latents`` ``(N, D)``, as one line: MCC, then on the identified edges (recovered / true at P > 0.5 of the
    thresholded acyclic graph, SHD_id, AUROC_id, ECE_id)."""
    soft, hard = recovery_scores(latents, fit["true_latents"], P, fit["adjacency"], fit["identified"], fit["blocks"])
    return (f"{soft['mcc']:>6.3f} {hard['recovered_identified']:>4}/{hard['num_true_identified']:<4} "
            f"{hard['shd_identified']:>6} {soft['edge_auroc_identified']:>8.3f} {soft['ece_identified']:>6.3f}")


def expected_edges(fit: dict) -> tuple[np.ndarray, np.ndarray]:
    """``E_x`` and ``E_in`` ``(C,)``: every restart's expected number of cross-modal edges and of the others."""
    P, identified = fit["P_own"], fit["identified"].astype(bool)
    others = ~identified & ~np.eye(P.shape[-1], dtype=bool)
    return P[:, identified].sum(1), P[:, others].sum(1)


def picks(fit: dict) -> dict[str, int]:
    """The restart of ``fit`` each rule picks (see the module's docstring)."""
    e_x, e_in = expected_edges(fit)
    return {"best validation ELBO": int(np.argmax(fit["validation_elbo"])),
            "highest basis score": int(np.nanargmax(fit["basis_score"])), "lowest E_x": int(np.argmin(e_x)),
            "highest E_x + E_in": int(np.argmax(e_x + e_in))}


def stacking_weights(log_density: np.ndarray, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Weights ``w`` ``(K,)`` on the simplex that maximise ``sum_n log sum_k w_k exp(log_density[k, n])``.

    ``log_density`` ``(K, N)`` holds each of ``K`` predictive distributions' log density of ``N``
    held-out rows. The objective is concave in ``w``; the EM update ``w_k <- mean_n r_kn`` (``r_kn``
    the share of row ``n``'s mixture density that comes from ``k``) raises it at every step and stops
    when no weight moves by more than ``tol``.
    """
    log_density = np.asarray(log_density, dtype=float)
    if log_density.ndim != 2 or 0 in log_density.shape or not np.isfinite(log_density).all():
        raise ValueError(f"log_density: expected a finite (K, N) array; found shape {log_density.shape}")
    shifted = log_density - log_density.max(axis=0)  # rows scaled alike: the weights do not change
    dens = np.exp(shifted)
    w = np.full(len(dens), 1.0 / len(dens))
    for _ in range(max_iter):
        mix = w @ dens
        new = w * (dens / mix).mean(axis=1)
        if np.abs(new - w).max() < tol:
            return new / new.sum()
        w = new
    return w / w.sum()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="the .npz files of persona_recovery.py --save-chains")
    args = parser.parse_args(argv)
    for path in args.files:
        fit = dict(np.load(path))
        P, (e_x, e_in) = fit["P_own"], expected_edges(fit)
        print(f"{Path(path).stem}\n{'':>22} {'val ELBO':>8} {'basis':>7} {'E_x':>5} {'E_in':>5} "
              f"{'MCC':>6} {'recovered':>9} {'SHD_id':>6} {'AUROC_id':>8} {'ECE_id':>6}")
        for c in range(len(P)):
            print(f"{'chain ' + str(c):>22} {fit['validation_elbo'][c]:>8.2f} {fit['basis_score'][c]:>7.3f} "
                  f"{e_x[c]:>5.2f} {e_in[c]:>5.2f} "
                  f"{scores(fit['own_latents'][c], P[c], fit)}")
        print(f"{'equal':>22} {'':>8} {'':>7} {'':>5} {'':>5} "
              f"{scores(fit['latents'], fit['P_aligned'].mean(0), fit)}")
        for name, c in picks(fit).items():
            print(f"{name:>22} {'chain ' + str(c):>8} {'':>7} {'':>5} {'':>5} "
                  f"{scores(fit['own_latents'][c], P[c], fit)}", flush=True)
        if "log_density" in fit:
            held_out = fit["log_density"][:, fit["validation_rows"]]
            w = stacking_weights(held_out)
            print(f"{'stacking':>22} {'':>8} {'':>7} {'':>5} {'':>5} "
                  f"{scores(fit['latents'], np.tensordot(w, fit['P_aligned'], axes=1), fit)}"
                  f"   weights {np.array2string(w, precision=3)}; held-out log density per entity "
                  f"{np.array2string(held_out.mean(1), precision=2)}", flush=True)


if __name__ == "__main__":
    main()
