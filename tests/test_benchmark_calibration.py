"""The calibration benchmark's converters from causal-learn outputs to edge probabilities."""

import argparse

import numpy as np
import pytest
from conftest import load_benchmark

from pyro_personax.metrics import expected_shd


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("calibration_graph_posterior")


def test_causal_learn_encoding_by_hand(bench):
    # 0 -> 1 (graph[1, 0] = 1, graph[0, 1] = -1), 1 - 2 undirected, 2 <-> 3 bidirected
    G = np.zeros((4, 4), dtype=int)
    G[1, 0], G[0, 1] = 1, -1
    G[1, 2] = G[2, 1] = -1
    G[2, 3] = G[3, 2] = 1
    P = bench.causal_learn_to_probs(G)
    expected = np.zeros((4, 4))
    expected[0, 1] = 1.0
    expected[1, 2] = expected[2, 1] = 0.5
    expected[2, 3] = expected[3, 2] = 0.5
    np.testing.assert_array_equal(P, expected)


def _linear_sem(parents_of, n=2000, seed=0, noise="laplace"):
    rng = np.random.default_rng(seed)
    D = len(parents_of)
    z = np.zeros((n, D))
    for j in range(D):  # nodes are listed in a causal order
        e = rng.laplace(size=n) if noise == "laplace" else rng.normal(size=n)
        z[:, j] = sum(1.5 * z[:, i] for i in parents_of[j]) + e
    return z


def test_pc_and_ges_orient_a_v_structure_and_leave_a_chain_undirected(bench):
    vstruct = _linear_sem([[], [], [0, 1]], noise="gauss")  # 0 -> 2 <- 1
    expected = np.zeros((3, 3))
    expected[0, 2] = expected[1, 2] = 1.0
    np.testing.assert_array_equal(bench.run_pc(vstruct, "fisherz", 0), expected)
    np.testing.assert_array_equal(bench.run_ges(vstruct), expected)
    chain = _linear_sem([[], [0], [1]], noise="gauss")  # 0 -> 1 -> 2: its class is undirected
    undirected = np.zeros((3, 3))
    undirected[0, 1] = undirected[1, 0] = undirected[1, 2] = undirected[2, 1] = 0.5
    np.testing.assert_array_equal(bench.run_pc(chain, "fisherz", 0), undirected)
    np.testing.assert_array_equal(bench.run_ges(chain), undirected)


def test_lingam_coefficients_become_parent_to_child(bench):
    z = _linear_sem([[], [0], [1]])  # 0 -> 1 -> 2, non-Gaussian noise
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[1, 2] = 1.0
    np.testing.assert_array_equal(bench.run_lingam(z, 0), expected)
    B = np.array([[0.0, 0.0], [0.7, 0.0]])  # x1 = 0.7 x0 + e1
    np.testing.assert_array_equal(bench.lingam_to_probs(B), [[0.0, 1.0], [0.0, 0.0]])


def test_orientation_draws_give_the_coin_flip_expected_shd(bench):
    truth = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)  # 0 -> 1 -> 2
    P = np.zeros((3, 3))
    P[0, 1] = 1.0  # right
    P[1, 2] = P[2, 1] = 0.5  # undirected true edge: wrong orientation with probability 1/2
    P[0, 2] = P[2, 0] = 0.5  # undirected false edge: always 1
    assert expected_shd(bench.orientation_draws(P), truth) == pytest.approx(1.5)
    sure = truth.copy()
    np.testing.assert_array_equal(bench.orientation_draws(sure), np.stack([sure, sure]))


def test_pool_scores_every_graph_once(bench):
    a, b = np.eye(3)[[1, 2, 0]] * 0.9, np.full((2, 2), 0.2)
    ta, tb = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), np.array([[0, 1], [0, 0]])
    P, T, mask = bench.pool([(a, ta), (b, tb)])
    assert P.shape == T.shape == mask.shape == (5, 5)
    assert (mask & ~np.eye(5, dtype=bool)).sum() == 6 + 2
    assert T.sum() == 3 and not mask[0, 3]


def test_a_failed_fit_is_a_row_of_nan_and_the_run_goes_on(bench, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(bench, "run_reference", broken)
    args = argparse.Namespace(seed=0, num_entities=100, epochs=1, pc_test="fisherz", verbose=False)
    rows, kept = bench.run_graph(0, args, ["ges", "null 0.5"])
    assert rows[0]["error"] == "RuntimeError: boom" and np.isnan(rows[0]["auroc"])
    assert rows[1]["error"] == "" and rows[1]["auroc"] == 0.5
    assert list(kept) == ["null 0.5"]
    assert "FAILED: RuntimeError: boom" in capsys.readouterr().out
    table = bench.summarise(rows, {m: [kept[m]] if m in kept else [] for m in ("ges", "null 0.5")})
    assert table.loc["ges", "fits"] == "0/1" and np.isnan(table.loc["ges", "ECE"])
    assert table.loc["null 0.5", "Brier"] == pytest.approx(0.25)


def test_null_expands_to_two_rows(bench):
    assert bench.expand_methods(["order", "pairwise", "null"]) == ["order", "pairwise", *bench.NULL_ROWS]
    assert bench.expand_methods(["order", "pc"]) == ["order", "pc"]


def test_graph_stage_options_reach_the_model_fit_only_when_given(bench, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "fit_model", lambda *args: seen.append(args[-2:]) or {})
    for argv, expected in (([], (None, True)), (["--graph-moves", "3"], (3, True)),
                           (["--no-best-dag-start"], (None, False))):
        args = bench.parse_args(["--methods", "order", *argv])
        bench.run_method("order", None, None, 0, args)
        assert seen[-1] == expected


def test_graphs_runs_only_the_graphs_named(bench, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(bench, "run_graph", lambda g, args, methods: ran.append(g) or ([], {}))
    monkeypatch.setattr(bench, "summarise", lambda rows, pooled: bench.pd.DataFrame())
    monkeypatch.setattr(bench, "format_table", lambda table: "")
    bench.main(["--methods", "null", "--graphs", "7", "2"])
    assert ran == [7, 2] and "graphs [7, 2] (seeds [7, 2])" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.parse_args(["--num-graphs", "5", "--graphs", "5"])
    assert "--graphs: expected graphs in 0..4" in capsys.readouterr().err
