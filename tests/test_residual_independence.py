"""``benchmarks/residual_independence.py``: HSIC of a basis's residuals under its DAG, on held-out rows."""

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("residual_independence")


@pytest.fixture(scope="module")
def exact():
    """Standardised true variant-MNIST latents, 2,000 rows (1,500 fit, 500 score), and the same turned by 30
    degrees inside each block."""
    from block_flow import mixed_truth

    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    truth = sample_variant_mnist_latents(2000, seed=1)
    mixed = mixed_truth(truth, 30.0)
    return [(x - x[:1500].mean(0)) / x[:1500].std(0) for x in (truth, mixed)]


def test_the_pairs_are_the_residuals_and_each_residual_with_its_parents(bench):
    A = bench.parse_graph("01 02 23").numpy()
    pairs = bench.tested_pairs(A)
    assert len(pairs) == 6 + 3 and ("p", 3, 2) in pairs and ("e", 0, 3) in pairs
    assert bench.tested_pairs(np.zeros((2, 2))) == [("e", 0, 1)]


def test_residuals_are_the_latent_less_its_regression_and_a_root_itself(bench, exact):
    t = exact[0]
    A = bench.parse_graph("01 02 23").numpy()
    e = bench.residuals(t, A, 1500, regressor="gbm")
    assert e.shape == (500, 4) and np.array_equal(e[:, 0], t[1500:, 0])
    assert np.var(e[:, 2]) < 0.75 * np.var(t[1500:, 2])  # Z11 explains part of Z21
    with pytest.raises(ValueError, match="regressor: expected 'mlp' or 'gbm', found 'svm'"):
        bench.residuals(t, A, 1500, regressor="svm")


@pytest.mark.parametrize("regressor", ["mlp", "gbm"])
def test_the_truths_basis_and_graph_leave_the_least_dependence(bench, exact, regressor):
    """The true latents under the truth's DAG: no pair dependent at 1e-3 (Bonferroni over the pairs); the same
    latents under the DAG with the colour roles swapped, and the latents turned inside the blocks under the
    truth's DAG, leave clear dependence."""
    t, mixed = exact
    truth_graph, swapped = (bench.parse_graph(g).numpy() for g in ("01 02 23", "10 13 32"))
    total = {}
    for name, u, A in [("truth", t, truth_graph), ("swapped", t, swapped), ("mixed", mixed, truth_graph)]:
        scores = bench.independence(u, bench.residuals(u, A, 1500, regressor=regressor), A)
        total[name] = (sum(s for s, _ in scores.values()), min(p for _, p in scores.values()))
    assert total["truth"][1] > 1e-3 / 9
    assert total["swapped"][1] < 1e-6 and total["mixed"][1] < 1e-6
    assert total["truth"][0] < total["swapped"][0] / 3 and total["truth"][0] < total["mixed"][0] / 3


def test_main_scores_saved_bases_and_names_a_missing_one(bench, exact, tmp_path, capsys):
    t, mixed = exact
    for g, u in [("01 02 23", t), ("10 13 32", mixed)]:
        np.savez(bench.basis_path(bench.rows_path(tmp_path, 1, "mixed", g)), basis=u, logdet=np.zeros(500))
    bench.main(["--rows", str(tmp_path), "--seeds", "1", "--graphs", "01 02 23", "10 13 32", "--train", "1500",
                "--regressor", "gbm"])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[1].startswith("seed 1 mixed") and "e2-z0" in out[1]
    truth_row, mixed_row = (row.split() for row in out[1:])
    assert float(truth_row[6]) > float(mixed_row[6])  # the entropy score (both maps' log |det| taken as 0)
    diff, se = float(mixed_row[7]), float(mixed_row[8].strip("()"))  # the mixed less the truth's, over 10 folds
    assert diff < -3 * se < 0  # (folds of 50 rows: each estimate more biased than the whole's)
    assert float(truth_row[7]) < float(mixed_row[9])  # the sum of n HSIC
    np.savez(bench.basis_path(bench.rows_path(tmp_path, 1, "truth", "01 02 23")), basis=t, logdet=np.zeros(500))
    bench.main(["--rows", str(tmp_path), "--seeds", "1", "--graphs", "10 13 32", "01 02 23@truth", "--train", "1500"])
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("seed 1 mixed") and out[2].startswith("seed 1 truth")
    assert float(out[2].split()[7]) > 0  # the truth's basis less the mixed one's
    with pytest.raises(SystemExit):
        bench.main(["--rows", str(tmp_path), "--graphs", "01 02 23", "--folds", "0"])
    assert "--folds 0: expected at least 1" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no basis seed1_mixed_01-03_basis.npz"):
        bench.main(["--rows", str(tmp_path), "--seeds", "1", "--graphs", "01 03"])


def test_the_entropy_score_of_the_truth_is_near_its_density_and_above_a_wrong_graph(bench, exact):
    """The true latents: under the truth's DAG the score is near the closed-form mean log density of the held-out
    rows (in the standardised coordinates); under the DAG with the colour roles swapped it is far below."""
    from noise_shape import true_node_log_density

    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    truth = sample_variant_mnist_latents(2000, seed=1)
    test = truth[1500:]  # the true density of ``exact[0]``, the truth standardised by the training rows
    true = float((true_node_log_density(test) - np.log(test.std(0)) + np.log(truth[:1500].std(0))).sum())
    logdet = np.zeros(500)  # scored in ``exact[0]``'s own coordinates
    scores = {g: bench.entropy_score(bench.residuals(exact[0], bench.parse_graph(g).numpy(), 1500), logdet)
              for g in ("01 02 23", "10 13 32")}
    assert scores["01 02 23"].shape == (1,) and abs(scores["01 02 23"][0] - true) < 0.1
    assert scores["10 13 32"][0] < scores["01 02 23"][0] - 0.3
    e = bench.residuals(exact[0], bench.parse_graph("01 02 23").numpy(), 1500)
    folds = bench.entropy_score(e, logdet, 5)  # five folds of 100 rows, each its own estimate
    assert folds.shape == (5,) and np.all(np.isfinite(folds)) and len(set(folds.round(6))) == 5
