"""Independence of the residuals of a basis under its DAG, on held-out rows: a criterion besides the density.

``graph_switch.py --rows-to ROWS`` fits block flows and mechanisms under each of several
fixed DAGs and saves each DAG's fitted basis of all rows. Its held-out score is the
model's density, and a misfit of the density family (for instance to uniform noise)
enters that score. This script scores the same bases by a criterion without a density
family: under a DAG whose structural equations hold with additive noise, each latent's
residual given its parents is independent of every other latent's residual and of its
own parents. For each saved basis and its DAG, a regression of each latent on its parents
is fitted on the training rows (scikit-learn's ``MLPRegressor``, or ``--regressor gbm``,
``HistGradientBoostingRegressor``; a root's residual is the latent itself), and on the
held-out rows every pair of residuals and every (residual, parent) pair is tested with
the library's HSIC (:func:`~pyro_personax.independence.hsic.hsic_gamma_test`).

A DAG given as ``"10 13 32@truth"`` reads the basis saved under that start instead of
``--start``'s, so that bases of several starts are compared on one seed.

Printed per basis: its start and the DAG it was fitted under; ``entropy score``, the held-out mean log
density with the noises' densities estimated without a family, ``mean log |det J| - sum_j
H(e_j)`` (``H``: scipy's ``differential_entropy``, Vasicek's spacing estimate, on the
held-out residuals ``e_j``; in expectation the true log density less the residuals'
mutual information, where the regressions are exact); each pair's ``n HSIC`` and p-value,
their sum and the smallest p-value. With ``--folds K`` (default 10) the entropy score is also
taken on ``K`` folds of the held-out rows, and each basis after a seed's first is printed
with its difference to the first, the mean over the folds and its standard error (the
folds' spread over the root of ``K``). With ``--exact`` the standardised true latents of the
same rows (``graph_switch.rows``; the exact-latents mode only) are scored too, under every
listed DAG: the reference where the truth's graph holds by construction.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/graph_switch.py --seeds 0 --rows-to /tmp/ri --graphs "01 02 23" "10 13 32"
    OMP_NUM_THREADS=1 python benchmarks/residual_independence.py --rows /tmp/ri --seeds 0 \\
        --graphs "01 02 23" "10 13 32" --exact
"""

from __future__ import annotations

import argparse
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from graph_switch import basis_path, parse_graph, rows_path  # noqa: E402


def residuals(u: np.ndarray, A: np.ndarray, n_train: int, *, regressor: str = "mlp", seed: int = 0) -> np.ndarray:
    """Held-out residuals ``(N - n_train, D)`` of ``u`` ``(N, D)`` under DAG ``A`` ``(D, D)`` (parent -> child):
    each latent less its regression on its parents, fitted on the first ``n_train`` rows; a root is itself."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.neural_network import MLPRegressor

    out = u[n_train:].copy()
    for j in range(u.shape[1]):
        parents = np.flatnonzero(A[:, j])
        if parents.size == 0:
            continue
        if regressor == "mlp":
            model = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=1000, early_stopping=True,
                                 n_iter_no_change=20, random_state=seed)
        elif regressor == "gbm":
            model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed)
        else:
            raise ValueError(f"regressor: expected 'mlp' or 'gbm', found {regressor!r}")
        model.fit(u[:n_train, parents], u[:n_train, j])
        out[:, j] -= model.predict(u[n_train:, parents])
    return out


def tested_pairs(A: np.ndarray) -> list[tuple[str, int, int]]:
    """The pairs tested under DAG ``A``: ``("e", i, j)`` for residuals ``i < j``, ``("p", j, p)`` for residual ``j``
    and its parent ``p``."""
    D = A.shape[0]
    pairs = [("e", i, j) for i, j in combinations(range(D), 2)]
    return pairs + [("p", j, int(p)) for j in range(D) for p in np.flatnonzero(A[:, j])]


def independence(u: np.ndarray, e: np.ndarray, A: np.ndarray, *, seed: int = 0) -> dict:
    """HSIC of every pair of :func:`tested_pairs` on the held-out rows (the last ``len(e)`` of ``u`` ``(N, D)``, with
    their residuals ``e``): ``{label: (n HSIC, p-value)}``, labels ``e{i}-e{j}`` and ``e{j}-z{p}``."""
    from pyro_personax.independence.hsic import hsic_gamma_test

    held = u[len(u) - len(e):]
    out = {}
    for kind, a, b in tested_pairs(A):
        other = e[:, b] if kind == "e" else held[:, b]
        out[f"e{a}-{'e' if kind == 'e' else 'z'}{b}"] = hsic_gamma_test(e[:, a], other, seed=seed)
    return out


def entropy_score(e: np.ndarray, logdet: np.ndarray, folds: int = 1) -> np.ndarray:
    """``mean(logdet) - sum_j H(e_j)`` on the held-out rows, one per consecutive fold of them ``(folds,)``: ``e``
    ``(M, D)`` their residuals (:func:`residuals`), ``logdet`` ``(M,)`` their log |det| of the map to the scored
    basis, ``H`` Vasicek's spacing estimate of the entropy."""
    from scipy.stats import differential_entropy

    return np.array([np.mean(logdet[k]) - differential_entropy(e[k], method="vasicek", axis=0).sum()
                     for k in np.array_split(np.arange(len(e)), folds)])


def line(label: str, graph: str, entropy: float, versus: str, scores: dict) -> str:
    """One printed row: the basis, its DAG, its entropy score and ``versus`` (its difference to the first basis),
    the sum of ``n HSIC``, the smallest p-value and every pair."""
    total = sum(s for s, _ in scores.values())
    worst = min(p for _, p in scores.values())
    pairs = " ".join(f"{k} {s:.2f} ({p:.0e})" for k, (s, p) in scores.items())
    return f"{label:<22} {graph:<20} {entropy:>8.4f} {versus:>17} {total:>9.2f} {worst:>9.1e}  {pairs}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", metavar="DIR", required=True, help="the folder graph_switch.py --rows-to wrote")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--start", default="mixed", help="the start in the saved files' names (mixed, fit, truth)")
    parser.add_argument("--graphs", nargs="+", required=True,
                        help="the DAGs whose saved bases are scored; 'DAG@START' reads that DAG's of another start")
    parser.add_argument("--train", type=int, default=6000, help="the training rows of graph_switch.py's run")
    parser.add_argument("--regressor", choices=["mlp", "gbm"], default="mlp")
    parser.add_argument("--folds", type=int, default=10, help="folds of the held-out rows for the paired SE")
    parser.add_argument("--exact", action="store_true",
                        help="also score the standardised true latents under every listed DAG (exact latents only)")
    args = parser.parse_args(argv)
    if args.folds < 1:
        parser.error(f"--folds {args.folds}: expected at least 1")
    print(f"{'basis':<22} {'DAG':<20} {'entropy':>8} {'- first (SE)':>17} {'sum nHSIC':>9} {'min p':>9}  "
          "pairs: n HSIC (p)")
    for seed in args.seeds:
        versions = []
        for given in args.graphs:
            g, _, start = given.partition("@")
            path = basis_path(rows_path(args.rows, seed, start or args.start, g))
            if not path.exists():
                raise FileNotFoundError(f"--rows {args.rows}: no basis {path.name} for seed {seed}, DAG {g!r}")
            with np.load(path) as saved:
                versions.append((f"seed {seed} {start or args.start}", g, saved["basis"].astype(float),
                                 saved["logdet"]))
        if args.exact:
            from graph_switch import rows

            truth = rows(seed, 0.0, args.train)[1]
            train_sd = truth[: args.train].std(0)
            t = (truth - truth[: args.train].mean(0)) / train_sd
            logdet = np.full(len(t) - args.train, -np.log(train_sd / truth.std(0)).sum())
            versions += [(f"seed {seed} exact", g, t, logdet) for g in args.graphs]
        first = None
        for label, g, u, logdet in versions:
            A = parse_graph(g, u.shape[1]).numpy()
            e = residuals(u, A, args.train, regressor=args.regressor, seed=seed)
            whole, folds = float(entropy_score(e, logdet)[0]), entropy_score(e, logdet, args.folds)
            versus = ""
            if first is None:
                first = folds
            elif args.folds > 1:
                diff = folds - first
                versus = f"{diff.mean():+.4f} ({diff.std(ddof=1) / np.sqrt(args.folds):.4f})"
            print(line(label, g, whole, versus, independence(u, e, A, seed=seed)), flush=True)


if __name__ == "__main__":
    main()
