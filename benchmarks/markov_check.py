"""Does each restart's graph carry the cross-modal dependence its own latents hold?

A restart's graph ``G`` (its ``q(G)`` thresholded into an acyclic graph) implies the
local Markov property on its latents: each latent ``z_j`` is independent of its
non-descendants given its parents. Restricted to what the data decide, the check is:
does ``z_j`` gain predictive power from the latents of the *other* modality blocks that
are not its descendants, beyond its parents? A graph that dropped a cross-modal edge the
latents hold fails it at the child. Each restart is checked on its own latents and
graph, so the check reads no truth and does not depend on the bases the restarts keep.

For every modality latent ``j`` the script fits two regressions (additive splines,
out-of-fold over ``--folds`` folds): ``z_j`` on its parents, and on its parents and its cross-modal
non-descendants, and prints the R^2 gain and its z-score (paired per-row squared errors).
Per restart: ``gain`` (the summed positive gains), ``n_z>3`` (latents whose gain has
z > 3), beside its scores on the identified edges (SHD_id, recovered) and ``E_x``. The
truth's latents and graph are checked too, as the reference a correct graph gives. Then
the library's pool of all restarts and the pool of those with no latent at z > 3.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/markov_check.py DIR/*.npz     # files of persona_recovery.py --save-chains
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chain_selection import expected_edges  # noqa: E402
from persona_recovery import recovery_scores  # noqa: E402


def descendants(adjacency: np.ndarray) -> np.ndarray:
    """``(D, D)`` bool: ``[i, j]`` when ``j`` is a descendant of ``i`` (a directed path ``i -> ... -> j``) in the
    acyclic ``adjacency`` (networkx's transitive closure)."""
    import networkx as nx

    from pyro_personax.graph import to_networkx

    closure = nx.transitive_closure_dag(to_networkx(adjacency))
    return nx.to_numpy_array(closure, nodelist=range(len(adjacency)), weight=None).astype(bool)


def oof_errors(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """``(N,)`` out-of-fold squared errors of an additive regression of ``y`` on ``x`` ``(N, k)`` (cubic splines
    of each column, 6 knots, ridge with its penalty chosen by cross-validation on the training fold; the
    training fold's mean where ``k = 0``). The mechanisms of the demo's data are additive."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    err = np.empty_like(y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(y):
        if x.shape[1] == 0:
            err[test] = (y[test] - y[train].mean()) ** 2
            continue
        net = make_pipeline(SplineTransformer(n_knots=6, extrapolation="linear"),
                            RidgeCV(alphas=np.logspace(-3, 3, 13)))
        net.fit(x[train], y[train])
        err[test] = (y[test] - net.predict(x[test])) ** 2
    return err


def markov_gains(latents: np.ndarray, graph: np.ndarray, identified: np.ndarray, folds: int = 5,
                 seed: int = 0) -> list[tuple[int, float, float]]:
    """``(j, R^2 gain, z)`` for every latent ``j`` with a cross-modal non-descendant: what those latents add
    to ``z_j``'s parents under ``graph`` ``(D, D)`` (0/1, acyclic); ``identified`` ``(D, D)`` marks the
    cross-modal cells."""
    desc, out = descendants(graph), []
    z = (latents - latents.mean(0)) / latents.std(0)
    for j in range(z.shape[1]):
        parents = np.flatnonzero(graph[:, j])
        extra = np.flatnonzero((identified[:, j] | identified[j, :]) & ~desc[j] & ~graph[:, j].astype(bool))
        if len(extra) == 0:
            continue
        base = oof_errors(z[:, parents], z[:, j], folds, seed)
        full = oof_errors(z[:, np.r_[parents, extra]], z[:, j], folds, seed)
        d = base - full
        out.append((j, float(d.mean()), float(d.mean() / (d.std(ddof=1) / np.sqrt(len(d))))))
    return out


def summary(gains) -> str:
    """``gain`` and ``n_z>3`` of :func:`markov_gains`' output, with the latents that fail."""
    total = sum(max(g, 0.0) for _, g, _ in gains)
    failing = [f"{j}:{g:.3f}" for j, g, zs in gains if zs > 3]
    return f"{total:>6.3f} {len(failing):>6}  {' '.join(failing)}"


def main(argv=None) -> None:
    from pyro_personax.graph import to_dag

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="the .npz files of persona_recovery.py --save-chains")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in args.files:
        fit = dict(np.load(path))
        identified = fit["identified"].astype(bool)
        e_x, _ = expected_edges(fit)
        print(f"{Path(path).stem}\n{'':>8} {'E_x':>5} {'SHD_id':>6} {'rec':>5} {'gain':>6} {'n_z>3':>6}  "
              "failing (latent: gain)")
        truth = markov_gains(fit["true_latents"], fit["adjacency"], identified, args.folds, args.seed)
        print(f"{'truth':>8} {identified[fit['adjacency'].astype(bool)].sum():>5} {0:>6} {'':>5} {summary(truth)}")
        passing = []
        for c, (latents, P) in enumerate(zip(fit["own_latents"], fit["P_own"])):
            _, hard = recovery_scores(latents, fit["true_latents"], P, fit["adjacency"], identified, fit["blocks"])
            gains = markov_gains(latents, to_dag(P, 0.5), identified, args.folds, args.seed)
            passing.append(all(z <= 3 for _, _, z in gains))
            print(f"{'chain ' + str(c):>8} {e_x[c]:>5.2f} {hard['shd_identified']:>6} "
                  f"{hard['recovered_identified']:>2}/{hard['num_true_identified']:<2} {summary(gains)}", flush=True)
        for name, keep in (("pool of all", np.ones(len(passing), bool)), ("pool of passing", np.array(passing))):
            if keep.any():
                soft, hard = recovery_scores(fit["latents"], fit["true_latents"], fit["P_aligned"][keep].mean(0),
                                             fit["adjacency"], identified, fit["blocks"])
                print(f"{name} (chains {', '.join(map(str, np.flatnonzero(keep)))}): SHD_id "
                      f"{hard['shd_identified']}, recovered {hard['recovered_identified']}/"
                      f"{hard['num_true_identified']}, AUROC_id {soft['edge_auroc_identified']:.3f}, "
                      f"ECE_id {soft['ece_identified']:.3f}", flush=True)
            else:
                print(f"{name}: none", flush=True)


if __name__ == "__main__":
    main()
