"""Calibration of latent-graph edge probabilities on random identified DAGs.

What it measures: how well the posterior edge probabilities ``P(i -> j)`` of the
library's model rank the true edges, how calibrated they are, and how often they are
confidently wrong, next to causal-discovery references run on the *true* latents and to
constant predictors.

Setting. Graph ``g`` (``g = 0 .. --num-graphs - 1``, or those ``--graphs`` names) uses seed ``--seed + g``: ``D`` drawn
from 5..10 latents; an Erdos-Renyi DAG (even ``g``, expected degree drawn from [1, 2]) or
a scale-free DAG (odd ``g``, one parent per latent by preferential attachment, mean
degree ``2 (D - 1) / D``); additive-noise structural equations with random MLP mechanisms
(:func:`~pyro_personax.synthetic.graphs.simulate_sem`, ``mechanism="mlp"``) and Laplace
(even ``g``) or uniform (odd ``g``) noise; ``--num-entities`` entities. No shared block:
latent ``k`` is the one latent of modality ``m<k+1>``, seen through :data:`NUM_MEASUREMENTS`
measurements of :data:`MEASUREMENT_DIM` dimensions each
(:func:`~pyro_personax.synthetic.graphs.observe_latents`), so every edge is identified.

Methods (``--methods``):

- ``order``, ``pairwise``: :class:`pyro_personax.PersonaX` with library defaults except the sizes (one latent
  per modality, ``shared_dim=0``), ``graph_posterior=`` the method and ``--mechanism`` when given;
  ``fit(num_epochs=--epochs, seed=seed + g)``, and ``refine_graph=GraphRefinement(graph_moves=M)`` with
  ``--graph-moves M`` (``best_dag_start=False`` with ``--no-best-dag-start``); ``edge_probabilities()`` re-indexed
  to the true latents by Spearman matching (:func:`~pyro_personax.metrics.mcc`; a warning when not the identity).
- ``order-true-latents``: the model's graph posterior when its latents are exactly the
  true ones (standardised): mechanisms and noise flows fitted to them
  (:func:`~pyro_personax.inference.oracle.fit_mechanisms_given_latents`), then the exact
  posterior over every DAG (:func:`~pyro_personax.inference.oracle.exact_graph_posterior`)
  up to 6 latents, ``q(G)`` fitted to it above
  (:func:`~pyro_personax.inference.oracle.fit_graph_given_latents`). It bounds what a
  perfect representation gives the model's graph posterior.
- ``pc``: causal-learn's PC with ``--pc-test`` (default ``rcit``, the randomised kernel
  test: nonlinear mechanisms, seconds at N = 2000; KCI is too slow there); ``pc-fisherz``
  and ``pc-rcit`` name the test. ``ges``: GES with the BIC score (generalised kernel scores
  cost O(N^3) per evaluation). ``lingam``: DirectLiNGAM. These run on the true latents:
  references for what the latent values alone allow, not competitors. A directed edge
  gives ``P[i, j] = 1``, an undirected (or bidirected) CPDAG edge 0.5 both ways
  (:func:`causal_learn_to_probs`).
- ``null``: every probability 0.5 (``null 0.5``), or the graph's true edge density
  (``null density``, an oracle constant).

Per method the first table gives ``fits`` (fits that ran), ``AUROC``, ``AUPRC`` (means over
graphs with an edge), ``E-SHD`` (expected SHD over 200 draws: ``sample_posterior(200)`` for
the model, Bernoulli draws for the null rows, a fair coin per undirected edge for the
references), ``SHD`` of ``graph.to_dag(P, 0.5)`` (undirected CPDAG edges at 0.5 are dropped:
a true edge costs 1, as a wrong orientation does), ``MCC``; then pooled over every
off-diagonal cell of every graph (:func:`~pyro_personax.metrics.edge_probability_report`):
``ECE`` and ``Brier`` (10 bins), ``LL`` (log loss), ``LL/const`` (over that of the constant
pooled density), ``edge<.1`` (share of true edges with P < 0.1), ``wrong>.9`` (share of
P > 0.9 cells that are not edges), ``cyclic`` (mean share of cyclic draws,
:func:`~pyro_personax.graph.is_dag`) and ``wall s`` (mean seconds per fit or discovery
call). A pooled reliability table with counts per bin follows for each model method. A
method that fails on a graph gives a row of NaN with its error (printed, and in the
``error`` column of ``--out``), and the run goes on.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/calibration_graph_posterior.py            # 20 graphs
    OMP_NUM_THREADS=1 python benchmarks/calibration_graph_posterior.py --quick    # smoke run
    python benchmarks/calibration_graph_posterior.py --methods pairwise pc null --out rows.csv
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import traceback
import warnings

import numpy as np
import pandas as pd
from scipy.linalg import block_diag

from pyro_personax.graph import is_dag, to_dag
from pyro_personax.layout import LatentLayout
from pyro_personax.metrics import edge_probability_report, expected_shd, mcc, permute_adjacency, shd
from pyro_personax.models.latent_flow import MECHANISMS
from pyro_personax.synthetic.graphs import (
    erdos_renyi_dag,
    observe_latents,
    scale_free_dag,
    simulate_sem,
)

MODEL_METHODS = ("order", "pairwise")
TRUE_LATENT_MODEL = "order-true-latents"
PC_TESTS = ("fisherz", "rcit")
REFERENCE_METHODS = ("pc", "pc-fisherz", "pc-rcit", "ges", "lingam")
METHODS = (*MODEL_METHODS, TRUE_LATENT_MODEL, *REFERENCE_METHODS, "null")
DEFAULT_METHODS = ("order", "pairwise", "pc", "ges", "lingam", "null")
NULL_ROWS = ("null 0.5", "null density")
NUM_MEASUREMENTS, MEASUREMENT_DIM = 3, 4
THRESHOLD, N_BINS, NUM_DRAWS, ALPHA = 0.5, 10, 200, 0.05
QUICK = {"num_graphs": 3, "num_entities": 600, "epochs": 10}
PER_GRAPH = ("auroc", "auprc", "expected_shd", "shd", "mcc", "cyclic_share", "wall_s")
POOLED = ("ece", "brier", "log_loss", "log_loss_ratio", "true_edges_below_0.1", "wrong_above_0.9")
COLUMNS = {
    "fits": "fits", "auroc": "AUROC", "auprc": "AUPRC", "expected_shd": "E-SHD", "shd": "SHD", "mcc": "MCC",
    "ece": "ECE", "brier": "Brier", "log_loss": "LL", "log_loss_ratio": "LL/const",
    "true_edges_below_0.1": "edge<.1", "wrong_above_0.9": "wrong>.9", "cyclic_share": "cyclic", "wall_s": "wall s",
}


# ---------------------------------------------------------------------- data
def make_graph(g: int, seed: int, num_entities: int):
    """The data set of graph ``g``.

    Parameters
    ----------
    g
        Graph index: even ``g`` gives an Erdos-Renyi DAG and Laplace noise, odd ``g`` a
        scale-free DAG and uniform noise.
    seed
        Seed of everything in this data set (``--seed + g``).
    num_entities
        Entities ``N``.

    Returns
    -------
    (data, truth, info)
        :class:`~pyro_personax.data.MultiModalData` with ``D`` modalities of
        ``(N, NUM_MEASUREMENTS, MEASUREMENT_DIM)``, the
        :class:`~pyro_personax.synthetic.truth.GroundTruth` (latents ``(N, D)``,
        adjacency ``(D, D)``), and a dict describing the graph.
    """
    rng = np.random.default_rng(seed)
    D = int(rng.integers(5, 11))
    layout = LatentLayout(0, {f"m{k + 1}": 1 for k in range(D)})
    if g % 2 == 0:
        kind, noise, degree = "erdos-renyi", "laplace", float(rng.uniform(1.0, 2.0))
        A = erdos_renyi_dag(layout, degree, seed=seed)
    else:
        kind, noise, degree = "scale-free", "uniform", 2.0 * (D - 1) / D
        A = scale_free_dag(layout, 1, seed=seed)
    z = simulate_sem(A, num_entities, mechanism="mlp", noise=noise, seed=seed)
    data, truth = observe_latents(
        z, A, layout, num_measurements=NUM_MEASUREMENTS, measurement_dim=MEASUREMENT_DIM, seed=seed
    )
    info = {"graph": g, "seed": seed, "kind": kind, "noise": noise, "D": D, "degree": degree, "edges": int(A.sum())}
    return data, truth, info


# ---------------------------------------------------------------------- converters
def causal_learn_to_probs(graph) -> np.ndarray:
    """Parent -> child probabilities from a causal-learn graph matrix (PC, GES).

    causal-learn encodes ``i -> j`` as ``graph[j, i] == 1`` and ``graph[i, j] == -1``,
    ``i - j`` (undirected) as ``-1`` both ways and ``i <-> j`` as ``1`` both ways.

    Parameters
    ----------
    graph
        ``(D, D)`` integer matrix ``G.graph`` of a causal-learn ``GeneralGraph``.

    Returns
    -------
    numpy.ndarray
        ``(D, D)`` float, ``[i, j]`` = P(i -> j): 1 for a directed edge, 0.5 both ways
        for an undirected or bidirected edge, 0 elsewhere.
    """
    G = np.asarray(graph)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"graph: expected a square matrix; found shape {G.shape}")
    directed = (G.T == 1) & (G == -1)
    two_way = ((G == -1) & (G.T == -1)) | ((G == 1) & (G.T == 1))
    P = np.where(directed, 1.0, 0.0) + np.where(two_way, 0.5, 0.0)
    np.fill_diagonal(P, 0.0)
    return P


def lingam_to_probs(B) -> np.ndarray:
    """Parent -> child probabilities from a LiNGAM coefficient matrix.

    causal-learn's ``adjacency_matrix_`` is ``B`` with ``x_j = sum_i B[j, i] x_i + e_j``,
    so ``B[j, i] != 0`` is the edge ``i -> j``.

    Parameters
    ----------
    B
        ``(D, D)`` coefficients.

    Returns
    -------
    numpy.ndarray
        ``(D, D)`` 0/1 float, ``[i, j]`` = 1 for ``i -> j``.
    """
    B = np.asarray(B, dtype=float)
    P = (B.T != 0).astype(float)
    np.fill_diagonal(P, 0.0)
    return P


def orientation_draws(P) -> np.ndarray:
    """The two extreme orientations of a reference's 0.5 (undirected) edges.

    SHD adds up over node pairs, so the mean SHD over these two graphs (every
    undirected edge pointing up in one, down in the other) equals the expected SHD when
    each undirected edge is a fair coin over its two orientations.

    Parameters
    ----------
    P
        ``(D, D)`` with entries 0, 0.5 (symmetric pairs) or 1.

    Returns
    -------
    numpy.ndarray
        ``(2, D, D)`` 0/1 graphs for :func:`~pyro_personax.metrics.expected_shd`.
    """
    P = np.asarray(P, dtype=float)
    half = np.isclose(P, 0.5)
    sure = P > 0.5
    upper = np.triu(np.ones_like(P, dtype=bool), k=1)
    return np.stack([sure | (half & upper), sure | (half & upper.T)]).astype(float)


# ---------------------------------------------------------------------- methods
def fit_model(data, truth, name: str, epochs: int, seed: int, mechanism: str | None = None,
              graph_moves: int | None = None, best_dag_start: bool = True) -> dict:
    """Fit the library model and return its probabilities and draws in the truth's order.

    Parameters
    ----------
    data, truth
        From :func:`make_graph`.
    name
        ``graph_posterior`` value.
    epochs, seed
        ``fit(num_epochs=epochs, seed=seed)``.
    mechanism
        ``PersonaX``'s ``mechanism`` (``None``: the library's default).
    graph_moves
        The graph stage's ``graph_moves`` (``None``: the library's default).
    best_dag_start
        The graph stage's ``best_dag_start`` (``True`` is the library's default).

    Returns
    -------
    dict
        ``probs`` ``(D, D)``, ``draws`` ``(S, D, D)``, ``mcc``, ``wall_s``.
    """
    from pyro_personax import PersonaX
    from pyro_personax.inference.options import GraphRefinement

    start = time.perf_counter()
    options = {} if mechanism is None else {"mechanism": mechanism}
    px = PersonaX(data, latent_dims={m: 1 for m in data.modalities}, shared_dim=0, graph_posterior=name, **options)
    stage = {} if graph_moves is None else {"graph_moves": graph_moves}
    if not best_dag_start:
        stage["best_dag_start"] = False
    fit_options = {"refine_graph": GraphRefinement(**stage)} if stage else {}
    px.fit(data, num_chains=1, num_epochs=epochs, seed=seed, progress=False, **fit_options)
    wall = time.perf_counter() - start
    probs = px.edge_probabilities().to_numpy(dtype=float)
    draws = np.asarray(px.sample_posterior(NUM_DRAWS)["edges"], dtype=float)
    match = mcc(px.get_latent_representation(data), truth.latents)
    if not np.array_equal(match.permutation, np.arange(len(probs))):
        print(f"  warning: latent matching is not the identity: {match.permutation.tolist()}", flush=True)
    draws = draws.reshape(-1, *probs.shape)
    return {
        "probs": permute_adjacency(probs, match.permutation),
        "draws": permute_adjacency(draws, match.permutation),
        "mcc": match.value,
        "wall_s": wall,
    }


def fit_true_latents(data, truth, seed: int, mechanism: str | None = None) -> dict:
    """The model's graph posterior given the true latents (``order-true-latents``), with the model's
    ``mechanism`` (``None``: the library's default).

    Returns
    -------
    dict
        ``probs`` ``(D, D)``, ``draws`` ``(S, D, D)`` (whole graphs from the exact posterior
        or from ``q(G)``), ``wall_s``.
    """
    import torch

    from pyro_personax.inference import local_params
    from pyro_personax.inference.oracle import (
        exact_graph_posterior,
        fit_graph_given_latents,
        fit_mechanisms_given_latents,
    )
    from pyro_personax.models import ModelSpec, PersonaXGuide, PersonaXModel

    start = time.perf_counter()
    z = np.asarray(truth.latents, dtype=float)
    z = (z - z.mean(0)) / z.std(0)
    D = z.shape[1]
    layout = LatentLayout(0, {m: 1 for m in data.modalities})
    spec = ModelSpec.from_data(data)
    rng = np.random.default_rng(seed)
    with local_params(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        options = {} if mechanism is None else {"mechanism": mechanism}
        model, guide = PersonaXModel(layout, spec, **options), PersonaXGuide(layout, spec)
        fit_mechanisms_given_latents(model, z, seed=seed)
        if D <= 6:
            exact = exact_graph_posterior(model, z)
            probs = exact.edge_probabilities()
            draws = exact.graphs[rng.choice(len(exact.graphs), size=NUM_DRAWS, p=exact.probs / exact.probs.sum())]
        else:
            probs = fit_graph_given_latents(model, guide, z, seed=seed)
            gen = torch.Generator().manual_seed(seed)
            draws = guide.sample_graphs(NUM_DRAWS, gen)["edges"].cpu().numpy()
    return {"probs": probs, "draws": np.asarray(draws, dtype=float), "wall_s": time.perf_counter() - start}


def run_pc(z: np.ndarray, test: str, seed: int) -> np.ndarray:
    """PC (causal-learn) on ``z`` ``(N, D)`` with ``test``; returns ``(D, D)`` probabilities."""
    from causallearn.search.ConstraintBased.PC import pc

    np.random.seed(seed)  # noqa: NPY002 -- RCIT draws its random features from numpy's global generator
    return causal_learn_to_probs(pc(z, ALPHA, test, show_progress=False).G.graph)


def run_ges(z: np.ndarray) -> np.ndarray:
    """GES with the BIC score (causal-learn) on ``z`` ``(N, D)``; returns ``(D, D)`` probabilities."""
    from causallearn.search.ScoreBased.GES import ges

    return causal_learn_to_probs(ges(z, score_func="local_score_BIC")["G"].graph)


def run_lingam(z: np.ndarray, seed: int) -> np.ndarray:
    """DirectLiNGAM (causal-learn) on ``z`` ``(N, D)``; returns ``(D, D)`` probabilities."""
    from causallearn.search.FCMBased.lingam import DirectLiNGAM

    return lingam_to_probs(DirectLiNGAM(random_state=seed).fit(z).adjacency_matrix_)


def run_reference(method: str, truth, seed: int, pc_test: str) -> dict:
    """A causal-learn reference on the true latents: probabilities and its wall time."""
    z = truth.latents
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method.startswith("pc"):
            probs = run_pc(z, pc_test if method == "pc" else method.split("-", 1)[1], seed)
        elif method == "ges":
            probs = run_ges(z)
        else:
            probs = run_lingam(z, seed)
    return {"probs": probs, "draws": orientation_draws(probs), "wall_s": time.perf_counter() - start}


def run_null(truth, constant: str, seed: int) -> dict:
    """A constant predictor (0.5, or the graph's true edge density) with Bernoulli draws."""
    T = np.asarray(truth.adjacency)
    D = len(T)
    value = 0.5 if constant == "null 0.5" else T.sum() / (D * (D - 1))
    probs = np.full((D, D), float(value))
    np.fill_diagonal(probs, 0.0)
    draws = (np.random.default_rng(seed).uniform(size=(NUM_DRAWS, D, D)) < probs).astype(float)
    return {"probs": probs, "draws": draws, "wall_s": 0.0}


# ---------------------------------------------------------------------- scoring
def score(fit: dict, truth, sampled: bool) -> dict:
    """Per-graph figures of one fit.

    Parameters
    ----------
    fit
        ``probs`` ``(D, D)``, ``draws`` ``(S, D, D)`` (posterior draws, or the two
        orientations of :func:`orientation_draws`), ``wall_s`` and, for the model, ``mcc``.
    truth
        The ground truth.
    sampled
        Whether ``draws`` are random draws of the posterior (the model's, or the null
        rows' Bernoulli draws); only then is ``cyclic_share`` reported.

    Returns
    -------
    dict
        ``auroc``, ``auprc`` (NaN without a true edge), ``expected_shd``, ``shd`` of
        ``to_dag(probs, 0.5)``, every float of
        :func:`~pyro_personax.metrics.edge_probability_report`, ``cyclic_share``,
        ``mcc`` and ``wall_s``.
    """
    T = np.asarray(truth.adjacency, dtype=float)
    P = np.clip(fit["probs"], 0.0, 1.0)
    rep = edge_probability_report(P, T, n_bins=N_BINS)
    out = {k: v for k, v in rep.items() if k != "reliability"}
    out["expected_shd"] = expected_shd(fit["draws"], T)
    out["shd"] = shd(to_dag(P, THRESHOLD).astype(float), T)
    out["cyclic_share"] = float(np.mean([not is_dag(d) for d in fit["draws"]])) if sampled else np.nan
    out["mcc"] = fit.get("mcc", np.nan)
    out["wall_s"] = fit["wall_s"]
    return out


def pool(pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack graphs of different sizes block-diagonally so that one report pools them.

    Parameters
    ----------
    pairs
        List of ``(probs, truth)``, each ``(D_g, D_g)``.

    Returns
    -------
    (probs, truth, mask)
        ``(sum D_g, sum D_g)`` each; ``mask`` is ``True`` inside the blocks only, so the
        scored cells are exactly the off-diagonal cells of every graph.
    """
    P = block_diag(*[np.clip(p, 0.0, 1.0) for p, _ in pairs])
    T = block_diag(*[np.asarray(t, dtype=float) for _, t in pairs])
    mask = block_diag(*[np.ones_like(t, dtype=bool) for _, t in pairs]).astype(bool)
    return P, T, mask


# ---------------------------------------------------------------------- driver
def expand_methods(methods) -> list[str]:
    """Row names for ``--methods``: ``null`` gives two rows."""
    rows = []
    for m in methods:
        rows += list(NULL_ROWS) if m == "null" else [m]
    return rows


def run_method(method: str, data, truth, seed: int, args) -> dict:
    """One fit of one method on one graph; returns ``probs``, ``draws``, ``wall_s`` (...)."""
    if method in MODEL_METHODS:
        return fit_model(data, truth, method, args.epochs, seed, args.mechanism, args.graph_moves,
                         not args.no_best_dag_start)
    if method == TRUE_LATENT_MODEL:
        return fit_true_latents(data, truth, seed, args.mechanism)
    if method in NULL_ROWS:
        return run_null(truth, method, seed)
    return run_reference(method, truth, seed, args.pc_test)


def run_graph(g: int, args, methods) -> tuple[list[dict], dict]:
    """Every method on graph ``g``: per-graph rows and ``{method: (probs, truth)}``."""
    seed = args.seed + g
    data, truth, info = make_graph(g, seed, args.num_entities)
    print(f"graph {g}: {info['kind']}, D={info['D']}, {info['edges']} edges, {info['noise']} noise", flush=True)
    rows, kept = [], {}
    for method in methods:
        row = {"method": method, **info, "error": ""}
        try:
            fit = run_method(method, data, truth, seed, args)
            row.update(score(fit, truth, sampled=method in (*MODEL_METHODS, TRUE_LATENT_MODEL, *NULL_ROWS)))
            kept[method] = (np.clip(fit["probs"], 0.0, 1.0), np.asarray(truth.adjacency, dtype=float))
            print(f"  {method:<13} AUROC {row['auroc']:.3f}  E-SHD {row['expected_shd']:.2f}  "
                  f"SHD {row['shd']}  {row['wall_s']:.1f} s", flush=True)
        except Exception as exc:  # one failed fit must not end the run
            row.update({k: np.nan for k in (*PER_GRAPH, *POOLED, "log_loss_constant")})
            row["error"] = f"{type(exc).__name__}: {exc}"
            print(f"  {method:<13} FAILED: {row['error']}", flush=True)
            if args.verbose:
                traceback.print_exc()
        rows.append(row)
    return rows, kept


def pooled_report(pairs) -> dict:
    """:func:`~pyro_personax.metrics.edge_probability_report` over every cell of every graph."""
    P, T, mask = pool(pairs)
    return edge_probability_report(P, T, mask=mask, n_bins=N_BINS)


def summarise(rows: list[dict], pooled: dict) -> pd.DataFrame:
    """Per-method table: means over graphs of the per-graph figures, pooled calibration.

    Parameters
    ----------
    rows
        Per-graph rows of :func:`run_graph`.
    pooled
        Method -> list of ``(probs, truth)`` of its successful fits.

    Returns
    -------
    pandas.DataFrame
        One row per method (display column names).
    """
    df = pd.DataFrame(rows)
    out = []
    for method, grp in df.groupby("method", sort=False):
        ok = grp[grp["error"] == ""]
        rec = {"method": method, "fits": f"{len(ok)}/{len(grp)}"}
        rec.update({k: ok[k].mean() if len(ok) else np.nan for k in PER_GRAPH})
        rep = pooled_report(pooled[method]) if pooled.get(method) else {}
        rec.update({k: rep.get(k, np.nan) for k in POOLED})
        out.append(rec)
    return pd.DataFrame(out).set_index("method").rename(columns=COLUMNS)[list(COLUMNS.values())]


def format_table(table: pd.DataFrame) -> str:
    """The summary table as text (NaN as ``-``)."""
    def fmt(col):
        digits = 1 if col in ("E-SHD", "SHD", "wall s") else 3
        return lambda v: v if isinstance(v, str) else f"{v:.{digits}f}"

    return table.to_string(formatters={c: fmt(c) for c in table.columns}, na_rep="-")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num-graphs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="graph g uses seed + g")
    p.add_argument("--num-entities", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(DEFAULT_METHODS))
    p.add_argument("--mechanism", choices=MECHANISMS, default=None,
                   help="the model's mechanisms, for its rows (default: the library's)")
    p.add_argument("--graph-moves", type=int, default=None,
                   help="the graph stage's graph_moves, for the model's rows (default: the library's)")
    p.add_argument("--no-best-dag-start", action="store_true",
                   help="the graph stage without its q(G) restart at the most probable DAG, for the model's rows")
    p.add_argument("--graphs", type=int, nargs="+", default=None, metavar="G",
                   help="run only these graphs g (each 0 <= g < --num-graphs; seed --seed + g)")
    p.add_argument("--pc-test", choices=PC_TESTS, default="rcit", help="conditional independence test of 'pc'")
    p.add_argument("--out", default=None, help="write the per-graph rows to this CSV (must not exist)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 graphs, 600 entities, 10 epochs")
    p.add_argument("--verbose", action="store_true", help="print the traceback of a failed fit")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.graphs is not None and not all(0 <= g < args.num_graphs for g in args.graphs):
        p.error(f"--graphs: expected graphs in 0..{args.num_graphs - 1} (--num-graphs {args.num_graphs}); "
                f"found {args.graphs}")
    return args


def main(argv=None) -> pd.DataFrame:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import torch

    methods = expand_methods(args.methods)
    graphs = (f"{args.num_graphs} graphs (seeds {args.seed}..{args.seed + args.num_graphs - 1})" if args.graphs is None
              else f"graphs {args.graphs} (seeds {[args.seed + g for g in args.graphs]})")
    print(
        f"graph-posterior calibration: {graphs}, "
        f"N={args.num_entities}, {NUM_MEASUREMENTS} x {MEASUREMENT_DIM}-d measurements per latent, "
        f"epochs {args.epochs}, mechanism {args.mechanism or 'default'}, "
        f"graph moves {'default' if args.graph_moves is None else args.graph_moves}"
        f"{', no best-DAG start' if args.no_best_dag_start else ''}, PC test {args.pc_test}, "
        f"torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        flush=True,
    )
    rows, pooled = [], {m: [] for m in methods}
    for g in range(args.num_graphs) if args.graphs is None else args.graphs:
        graph_rows, kept = run_graph(g, args, methods)
        rows += graph_rows
        for method, pair in kept.items():
            pooled[method].append(pair)
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False, mode="x")
    table = summarise(rows, pooled)
    print(
        "\nper method: AUROC, AUPRC, E-SHD, SHD, MCC, cyclic, wall s are means over graphs; "
        "ECE, Brier, LL, LL/const, edge<.1, wrong>.9 are pooled over graphs"
    )
    print(format_table(table))
    for method in (m for m in methods if m in (*MODEL_METHODS, TRUE_LATENT_MODEL) and pooled[m]):
        print(f"\npooled reliability of {method} ({N_BINS} bins):")
        print(pooled_report(pooled[method])["reliability"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


if __name__ == "__main__":
    main()
