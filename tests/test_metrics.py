"""Recovery metrics against exact values on hand-made cases."""

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pyro_personax.metrics import (
    block_r2,
    correlation_matrix,
    cpdag,
    edge_auprc,
    edge_auroc,
    edge_brier,
    edge_calibration,
    edge_log_loss,
    edge_probability_report,
    evaluate_recovery,
    expected_shd,
    match_latents,
    mcc,
    permute_adjacency,
    r2,
    shd,
)


@pytest.fixture
def latents():
    rng = np.random.default_rng(1)
    return rng.normal(size=(400, 4))


def test_metrics_package_imports_no_torch():
    import pyro_personax.metrics as m

    imported = set()
    for path in Path(m.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
    allowed = {"__future__", "logging", "warnings", "dataclasses", "numpy", "pandas", "scipy", "sklearn", "networkx",
               "causallearn", "pyro_personax"}
    assert imported <= allowed
    assert {"latent", "graph"} <= {p.stem for p in Path(m.__file__).parent.glob("*.py")}


def test_mcc_spearman_is_one_under_permutation_and_monotone_maps(latents):
    perm = np.array([2, 0, 3, 1])
    learned = latents[:, perm].copy()
    learned[:, 0] = np.exp(learned[:, 0])
    learned[:, 1] = -(learned[:, 1] ** 3)
    learned[:, 2] = np.tanh(learned[:, 2])
    res = mcc(learned, latents, "spearman")
    assert res.value == pytest.approx(1.0, abs=1e-12)
    # learned[:, k] holds true[:, perm[k]], so true j is matched to the k with perm[k] == j
    np.testing.assert_array_equal(res.permutation, np.argsort(perm))
    assert res.correlations[perm[1]] == pytest.approx(-1.0)
    # Pearson is below 1 for the nonlinear maps
    assert mcc(learned, latents, "pearson").value < 0.97
    assert float(res) == res.value


def test_mcc_of_independent_noise_is_near_zero(latents):
    noise = np.random.default_rng(7).normal(size=latents.shape)
    assert mcc(noise, latents).value < 0.1
    assert mcc(noise, latents, "pearson").value < 0.1


def test_mcc_accepts_more_learned_columns(latents):
    rng = np.random.default_rng(3)
    learned = np.column_stack([rng.normal(size=400), latents[:, ::-1], rng.normal(size=400)])
    res = mcc(learned, latents)
    assert res.value == pytest.approx(1.0)
    np.testing.assert_array_equal(res.permutation, [4, 3, 2, 1])
    assert res.matrix.shape == (4, 6)


def test_match_latents_and_correlation_matrix(latents):
    learned = latents[:, [1, 0, 3, 2]] * np.array([1.0, -2.0, 3.0, 0.5])
    np.testing.assert_array_equal(match_latents(learned, latents, "pearson"), [1, 0, 3, 2])
    C = correlation_matrix(learned, latents, "pearson")
    assert C[0, 1] == pytest.approx(-1.0)
    const = np.column_stack([np.ones(400), latents[:, 1:]])
    assert correlation_matrix(const, latents)[0, 0] == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda z: mcc(z[:, :2], z), "at least as many columns"),
        (lambda z: mcc(z[:10], z), "same rows"),
        (lambda z: mcc(z, z, "kendall"), "method"),
        (lambda z: mcc(np.where(z > 2, np.nan, z), z), "learned: contains NaN"),
        (lambda z: mcc(z[:, 0], z), "learned: expected a 2-d array"),
    ],
)
def test_latent_metric_errors(latents, call, match):
    with pytest.raises(ValueError, match=match):
        call(latents)


def test_r2_held_out_is_high_for_an_invertible_map_and_low_for_noise(latents):
    z = latents[:, :2]
    learned = np.column_stack([np.tanh(z[:, 1]) + 0.3 * z[:, 0], z[:, 0] ** 3])
    good = r2(learned, z, seed=0)
    assert good.value > 0.9
    assert good.num_test == 40 and good.num_train == 360
    noise = np.random.default_rng(2).normal(size=z.shape)
    assert r2(noise, z, seed=0).value < 0.1
    # held out: a noise predictor must not score high, as in-sample kernel fits would
    assert r2(noise, z, seed=0).per_latent.shape == (2,)


def test_r2_uses_given_split_and_is_deterministic(latents):
    train, test = np.arange(300), np.arange(300, 400)
    for kernel in ("ard", "rbf"):
        a = r2(latents ** 3, latents, train=train, test=test, seed=4, kernel=kernel)
        b = r2(latents ** 3, latents, train=train, test=test, seed=4, kernel=kernel)
        np.testing.assert_array_equal([a.value, a.alpha, a.gamma], [b.value, b.alpha, b.gamma])
        np.testing.assert_array_equal(a.per_latent, b.per_latent)
        assert a.num_train == 300 and a.num_test == 100 and a.kernel == kernel
    assert a.length_scales is None  # rbf: no per-column scales
    with pytest.raises(ValueError, match="overlap"):
        r2(latents, latents, train=np.arange(200), test=np.arange(150, 400))
    with pytest.raises(ValueError, match="both"):
        r2(latents, latents, train=np.arange(200))


def test_r2_ard_scores_what_the_learned_latents_hold_unrelated_columns_included():
    """Columns unrelated to the true latents do not lower the default score, and a
    monotone map of a single learned latent does not change what it holds."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(600, 2))
    learned = np.column_stack([np.tanh(z[:, 1]) + 0.3 * z[:, 0], z[:, 0] ** 3])
    extra = np.column_stack([learned, rng.normal(size=(600, 4))])
    alone, with_extra = r2(learned, z, seed=0), r2(extra, z, seed=0)
    assert alone.kernel == "ard" and np.isnan(alone.alpha) and with_extra.length_scales.shape == (2, 6)
    assert alone.value > 0.95 and with_extra.value > alone.value - 0.02
    # the unrelated columns get long length scales, the informative ones short
    assert with_extra.length_scales[:, 2:].min() > 10 * with_extra.length_scales[:, :2].min(1).max()
    assert r2(np.exp(learned), z, seed=0).value == pytest.approx(alone.value, abs=1e-6)
    # the isotropic kernel counts every column: the same latents score lower with the extras
    assert r2(extra, z, seed=0, kernel="rbf").value < r2(learned, z, seed=0, kernel="rbf").value - 0.05


def test_r2_ard_hyper_parameters_are_those_of_scikit_learns_fit():
    """The ARD regression's marginal likelihood and gradient are scikit-learn's, and its
    L-BFGS-B fit lands where ``GaussianProcessRegressor.fit`` does."""
    import warnings

    from sklearn.gaussian_process import GaussianProcessRegressor

    from pyro_personax.metrics.latent import _ard_kernel, _ard_log_marginal_likelihood, _ard_predict

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=200)
    kernel = _ard_kernel(3)
    reference = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None).fit(X, y)
    ys = (y - y.mean()) / y.std()
    for _ in range(3):
        theta = kernel.theta + rng.normal(size=kernel.theta.shape)
        value, grad = reference.log_marginal_likelihood(theta, eval_gradient=True)
        ours = _ard_log_marginal_likelihood(theta, X, ys)
        assert ours[0] == pytest.approx(value, rel=1e-10)
        np.testing.assert_allclose(ours[1], grad, rtol=1e-8, atol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = GaussianProcessRegressor(kernel, normalize_y=True).fit(X, y).kernel_
    pred, scales = _ard_predict(X, y, X[:20], np.arange(200))
    np.testing.assert_allclose(scales, fitted.k1.k2.length_scale, rtol=1e-5)
    np.testing.assert_allclose(pred, GaussianProcessRegressor(fitted, normalize_y=True, optimizer=None)
                               .fit(X, y).predict(X[:20]), atol=1e-6)


def test_r2_rejects_unknown_kernel(latents):
    with pytest.raises(ValueError, match="kernel: expected one of"):
        r2(latents, latents, kernel="linear")
    with pytest.raises(ValueError, match="hyper_rows"):
        r2(latents, latents, hyper_rows=2)


def test_r2_caps_training_rows():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 2))
    res = r2(z, z, max_train=500, seed=0)
    assert res.num_train == 500
    assert res.value > 0.97


def test_block_r2_reads_each_true_block_from_its_own_learned_block():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(600, 3))  # true blocks: a = (z0, z1), b = (z2,)
    noise = rng.normal(size=(600, 1))
    learned = np.column_stack(
        [np.tanh(z[:, 0]) + 0.3 * z[:, 1], np.tanh(z[:, 1]) + 0.5 * z[:, 1], noise[:, 0], z[:, 2]]
    )
    res = block_r2(learned, z, ["a", "a", "b", "b"], ["a", "a", "b"], seed=0)
    assert list(res) == ["a", "b"]
    assert res["a"].per_latent.shape == (2,) and res["b"].per_latent.shape == (1,)
    assert min(res["a"].value, res["b"].value) > 0.9
    assert res["a"].num_test == res["b"].num_test == 60
    # the same columns under the wrong block names hold nothing of the other block
    swapped = block_r2(learned, z, ["b", "b", "a", "a"], ["a", "a", "b"], seed=0)
    assert swapped["a"].value < 0.2 and swapped["b"].value < 0.2
    # all learned latents together carry everything, so r2 cannot tell the two apart
    assert r2(learned, z, seed=0).value > 0.9


@pytest.mark.parametrize(
    "learned_blocks, true_blocks, match",
    [
        (["a", "a", "b"], ["a", "b"], "learned_blocks: expected 4 block names \\(one per column\\)"),
        (["a", "a", "b", "b"], ["a", "b", "b"], "true_blocks: expected 2 block names"),
        (["a", "b", "b", "b"], ["a", "a"], "block 'a' has 1 learned columns for 2 true latents"),
    ],
)
def test_block_r2_errors_name_the_blocks(learned_blocks, true_blocks, match):
    rng = np.random.default_rng(0)
    learned, true = rng.normal(size=(50, 4)), rng.normal(size=(50, 2))
    with pytest.raises(ValueError, match=match):
        block_r2(learned, true, learned_blocks, true_blocks)


CHAIN = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)  # 0 -> 1 -> 2


def test_shd_counts_a_reversal_as_one():
    reversed_one = CHAIN.copy()
    reversed_one[0, 1], reversed_one[1, 0] = 0, 1
    assert shd(CHAIN, CHAIN) == 0
    assert shd(reversed_one, CHAIN) == 1
    missing = CHAIN.copy()
    missing[1, 2] = 0
    assert shd(missing, CHAIN) == 1
    extra = CHAIN.copy()
    extra[0, 2] = 1
    assert shd(extra, CHAIN) == 1
    assert shd(np.zeros((3, 3)), CHAIN) == 2
    assert shd(CHAIN.T, CHAIN) == 2  # both edges reversed
    both = CHAIN.copy()
    both[1, 0] = 1
    assert shd(both, CHAIN) == 1


def test_shd_errors():
    with pytest.raises(ValueError, match="0/1"):
        shd(CHAIN * 0.7, CHAIN)
    with pytest.raises(ValueError, match="shapes differ"):
        shd(np.zeros((2, 2)), CHAIN)
    with pytest.raises(ValueError, match="square"):
        shd(np.zeros((2, 3)), CHAIN)


def test_cpdag_keeps_only_the_orientations_the_equivalence_class_fixes():
    # a chain has no v-structure: every edge is undirected, and so is its reversal's
    undirected = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(cpdag(CHAIN), undirected)
    np.testing.assert_array_equal(cpdag(CHAIN.T), undirected)
    # a collider stays directed, and Meek's first rule then orients 2 - 3 as 2 -> 3
    A = np.zeros((4, 4), dtype=int)
    A[0, 2] = A[1, 2] = A[2, 3] = 1
    np.testing.assert_array_equal(cpdag(A), A)


def test_shd_between_cpdags_ignores_reversals_within_the_class():
    truth = np.zeros((4, 4), dtype=int)  # the variant MNIST graph: 0 -> 1, 0 -> 2, 2 -> 3
    truth[0, 1] = truth[0, 2] = truth[2, 3] = 1
    rooted_at_3 = np.zeros((4, 4), dtype=int)  # 3 -> 2 -> 0 -> 1: same class, 2 reversals
    rooted_at_3[3, 2] = rooted_at_3[2, 0] = rooted_at_3[0, 1] = 1
    assert shd(rooted_at_3, truth) == 2
    assert shd(cpdag(rooted_at_3), cpdag(truth)) == 0
    collider = truth.T.copy()  # 1 -> 0 <- 2, 3 -> 2: a v-structure the truth lacks
    assert shd(cpdag(collider), cpdag(truth)) == 2


def test_cpdag_errors():
    cyclic = CHAIN.copy()
    cyclic[2, 0] = 1
    with pytest.raises(ValueError, match="cycle"):
        cpdag(cyclic)
    with pytest.raises(ValueError, match="0/1"):
        cpdag(CHAIN * 0.7)


def test_expected_shd_is_the_mean_over_samples():
    rev = CHAIN.copy()
    rev[0, 1], rev[1, 0] = 0, 1
    samples = np.stack([CHAIN, rev, np.zeros((3, 3)), CHAIN])
    assert expected_shd(samples, CHAIN) == pytest.approx((0 + 1 + 2 + 0) / 4)
    with pytest.raises(ValueError, match=r"\(S, D, D\)"):
        expected_shd(CHAIN, CHAIN)


def test_edge_auroc_auprc_perfect_and_reversed():
    probs = np.array([[0.3, 0.9, 0.1], [0.2, 0.4, 0.8], [0.05, 0.15, 0.99]])
    # diagonal (0.3, 0.4, 0.99) is excluded: otherwise 0.99 would outrank the edges
    assert edge_auroc(probs, CHAIN) == 1.0
    assert edge_auprc(probs, CHAIN) == 1.0
    assert edge_auroc(1 - probs, CHAIN) == 0.0
    mask = np.ones((3, 3), dtype=bool)
    mask[0, 2] = False
    worse = probs.copy()
    worse[0, 2] = 0.95  # a non-edge scored highest...
    assert edge_auroc(worse, CHAIN) < 1.0
    assert edge_auroc(worse, CHAIN, mask=mask) == 1.0  # ...unless it is masked out
    with pytest.raises(ValueError, match="one class"):
        edge_auroc(probs, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="mask"):
        edge_auroc(probs, CHAIN, mask=np.ones((2, 2), dtype=bool))


def test_edge_auroc_is_half_for_constant_scores():
    assert edge_auroc(np.full((3, 3), 0.5), CHAIN) == 0.5
    assert edge_auprc(np.full((3, 3), 0.5), CHAIN) == pytest.approx(2 / 6)


def test_edge_calibration_table_and_ece():
    probs = np.array([[0.0, 0.95, 0.05], [0.05, 0.0, 0.95], [0.05, 0.05, 0.0]])
    table, ece = edge_calibration(probs, CHAIN, n_bins=10)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["bin_lower", "bin_upper", "count", "mean_prob", "frac_true"]
    assert table["count"].sum() == 6
    assert table.loc[0, "count"] == 4 and table.loc[9, "count"] == 2
    assert table.loc[0, "frac_true"] == 0.0 and table.loc[9, "frac_true"] == 1.0
    assert ece == pytest.approx(0.05)
    assert np.isnan(table.loc[5, "mean_prob"])
    _, ece_bad = edge_calibration(1 - probs, CHAIN, n_bins=10)
    assert ece_bad == pytest.approx(0.95)
    # probability exactly 1 lands in the last bin; stacks of graphs are accepted
    ones = np.where(CHAIN > 0, 1.0, 0.0)
    table, ece = edge_calibration(np.stack([ones, ones]), np.stack([CHAIN, CHAIN]), n_bins=4)
    assert ece == 0.0 and table.loc[3, "count"] == 4
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        edge_calibration(probs + 1, CHAIN)
    with pytest.raises(ValueError, match="n_bins"):
        edge_calibration(probs, CHAIN, n_bins=0)


def test_permute_adjacency_and_graph_metrics_after_matching(latents):
    z = latents[:, :3]
    perm_learned = np.array([2, 0, 1])  # learned column k holds true latent perm_learned[k]
    learned = z[:, perm_learned]
    A_learned = CHAIN[np.ix_(perm_learned, perm_learned)]  # the true graph in learned indices
    perm = match_latents(learned, z)
    np.testing.assert_array_equal(permute_adjacency(A_learned, perm), CHAIN)
    stack = np.stack([A_learned, A_learned])
    np.testing.assert_array_equal(permute_adjacency(stack, perm), np.stack([CHAIN, CHAIN]))
    with pytest.raises(ValueError, match="perm"):
        permute_adjacency(A_learned, [0, 0, 1])
    out = evaluate_recovery(learned, z, A_learned * 0.9, CHAIN)
    assert out["mcc"] == pytest.approx(1.0) and out["shd"] == 0 and out["edge_auroc"] == 1.0
    assert out["r2"] > 0.9
    assert "shd" not in evaluate_recovery(learned, z, None, CHAIN)


# cells of CHAIN (0 -> 1 -> 2), off-diagonal in row order:
#   (0,1) edge P=.95   (0,2) none P=.92   (1,0) none P=.2
#   (1,2) edge P=.05   (2,0) none P=0     (2,1) none P=.5
MIXED = np.array([[0.7, 0.95, 0.92], [0.2, 0.7, 0.05], [0.0, 0.5, 0.7]])  # diagonal ignored


def test_edge_brier_and_log_loss_by_hand():
    assert edge_brier(MIXED, CHAIN) == pytest.approx((0.05**2 + 0.92**2 + 0.2**2 + 0.95**2 + 0.0 + 0.5**2) / 6)
    # P = 0 is clipped to eps before the log
    expected = -(np.log(0.95) + np.log(0.08) + np.log(0.8) + np.log(0.05) + np.log(1 - 1e-6) + np.log(0.5)) / 6
    assert edge_log_loss(MIXED, CHAIN) == pytest.approx(expected)
    assert edge_log_loss(MIXED, CHAIN, eps=1e-2) == pytest.approx(expected + (np.log(1 - 1e-6) - np.log(0.99)) / 6)
    mask = np.ones((3, 3), dtype=bool)
    mask[0, 2] = False  # drop the confident mistake
    assert edge_brier(MIXED, CHAIN, mask=mask) == pytest.approx((0.05**2 + 0.2**2 + 0.95**2 + 0.5**2) / 5)
    assert edge_brier(np.full((3, 3), 0.5), CHAIN) == pytest.approx(0.25)
    assert edge_log_loss(np.full((3, 3), 0.5), CHAIN) == pytest.approx(np.log(2))


def test_edge_probability_report_by_hand():
    rep = edge_probability_report(MIXED, CHAIN)
    assert rep["auroc"] == pytest.approx(5 / 8)  # .95 beats all 4 non-edges, .05 beats only 0
    assert rep["auprc"] == edge_auprc(MIXED, CHAIN)
    assert rep["brier"] == edge_brier(MIXED, CHAIN)
    assert rep["log_loss"] == edge_log_loss(MIXED, CHAIN)
    # bins: {.95, .92} mean .935 vs 1/2; {.2} vs 0; {.05, 0} mean .025 vs 1/2; {.5} vs 0
    assert rep["ece"] == pytest.approx((2 * 0.435 + 0.2 + 2 * 0.475 + 0.5) / 6)
    density = 2 / 6
    entropy = -(density * np.log(density) + (1 - density) * np.log(1 - density))
    assert rep["log_loss_constant"] == pytest.approx(entropy)
    assert rep["log_loss_ratio"] == pytest.approx(edge_log_loss(MIXED, CHAIN) / entropy)
    assert rep["true_edges_below_0.1"] == 0.5  # the edge 1 -> 2 at P = .05
    assert rep["wrong_above_0.9"] == 0.5  # .95 is an edge, .92 is not
    assert isinstance(rep["reliability"], pd.DataFrame)
    assert rep["reliability"]["count"].tolist() == [2, 0, 1, 0, 0, 1, 0, 0, 0, 2]
    mask = np.ones((3, 3), dtype=bool)
    mask[0, 2] = False
    masked = edge_probability_report(MIXED, CHAIN, mask=mask, n_bins=2)
    assert masked["wrong_above_0.9"] == 0.0 and masked["reliability"]["count"].tolist() == [3, 2]
    assert masked["log_loss_constant"] == pytest.approx(-(0.4 * np.log(0.4) + 0.6 * np.log(0.6)))


def test_edge_probability_report_constant_density_and_perfect_predictors():
    const = edge_probability_report(np.full((3, 3), 2 / 6), CHAIN)
    assert const["log_loss_ratio"] == 1.0
    assert const["ece"] == pytest.approx(0.0, abs=1e-15) and const["auroc"] == 0.5
    assert np.isnan(const["wrong_above_0.9"]) and const["true_edges_below_0.1"] == 0.0
    perfect = edge_probability_report(CHAIN.astype(float), CHAIN)
    assert perfect["brier"] == 0.0 and perfect["wrong_above_0.9"] == 0.0 and perfect["ece"] == 0.0
    assert perfect["auroc"] == 1.0 and perfect["auprc"] == 1.0 and perfect["true_edges_below_0.1"] == 0.0
    assert perfect["log_loss"] == pytest.approx(1e-6) and perfect["log_loss_ratio"] < 1e-5
    # one class only: the ranking metrics are undefined, the others are not
    empty = edge_probability_report(np.full((3, 3), 0.1), np.zeros((3, 3)))
    assert np.isnan(empty["auroc"]) and np.isnan(empty["auprc"]) and np.isnan(empty["true_edges_below_0.1"])
    assert empty["brier"] == pytest.approx(0.01)


@pytest.mark.parametrize("fn", [edge_brier, edge_log_loss, edge_probability_report])
def test_edge_probability_metric_errors(fn):
    with pytest.raises(ValueError, match="shapes differ"):
        fn(np.full((2, 2), 0.5), CHAIN)
    with pytest.raises(ValueError, match=r"\(D, D\)"):
        fn(np.full((3, 2), 0.5), CHAIN)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fn(MIXED + 0.5, CHAIN)
    with pytest.raises(ValueError, match="0/1"):
        fn(MIXED, CHAIN * 0.5)
    with pytest.raises(ValueError, match="mask"):
        fn(MIXED, CHAIN, mask=np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="no off-diagonal cell"):
        fn(MIXED, CHAIN, mask=np.eye(3, dtype=bool))


def test_edge_log_loss_eps_error():
    with pytest.raises(ValueError, match="eps"):
        edge_log_loss(MIXED, CHAIN, eps=0.0)


def test_evaluate_recovery_scores_identified_and_undecided_edges_apart():
    from pyro_personax.layout import LatentLayout
    from pyro_personax.metrics import evaluate_recovery

    layout = LatentLayout(0, {"face": 2, "text": 1})  # face_1, face_2 | text_1
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 3))
    T = np.zeros((3, 3))
    T[0, 1] = 1  # face_1 -> face_2: within a block
    T[0, 2] = 1  # face_1 -> text_1: cross-modal
    P = np.zeros((3, 3))
    P[0, 2] = 0.9  # the cross-modal edge is found
    P[1, 0] = 0.8  # the within-block edge is reversed
    P[2, 1] = 0.2
    out = evaluate_recovery(z, z, P, T, identified=layout.identified_mask(), seed=0)
    assert out["num_true_identified"] == 1 and out["recovered_identified"] == 1
    assert out["shd_identified"] == 0 and out["edge_auroc_identified"] == 1.0
    assert out["num_true_undecided"] == 1 and out["recovered_undecided"] == 0
    assert out["shd_undecided"] == 1  # one reversal
    assert np.isclose(out["ece_identified"], (0.1 + 0.2) / 4)  # cells 0.9 (true), 0.2, 0, 0 over 4 cross-modal cells


def test_evaluate_recovery_gives_the_expected_shd_of_each_part_from_matched_draws():
    from pyro_personax.layout import LatentLayout
    from pyro_personax.metrics import evaluate_recovery

    layout = LatentLayout(0, {"face": 2, "text": 1})  # face_1, face_2 | text_1
    z = np.random.default_rng(0).normal(size=(300, 3))
    T = np.zeros((3, 3), dtype=int)
    T[0, 1] = T[0, 2] = 1  # face_1 -> face_2 (within a block), face_1 -> text_1 (cross-modal)
    reversed_cross = T.copy()
    reversed_cross[0, 2], reversed_cross[2, 0] = 0, 1
    no_within = T.copy()
    no_within[0, 1] = 0
    draws = np.stack([T, T, reversed_cross, no_within])
    # learned face latents in swapped order: the draws must be matched before scoring
    swap = [1, 0, 2]
    learned, learned_draws = z[:, swap], draws[:, swap][:, :, swap]
    out = evaluate_recovery(learned, z, learned_draws.mean(0), T, identified=layout.identified_mask(),
                            learned_blocks=layout.block_of, true_blocks=layout.block_of, with_r2=False,
                            graph_samples=learned_draws)
    assert out["expected_shd"] == pytest.approx(2 / 4)
    assert out["expected_shd_identified"] == pytest.approx(1 / 4)  # one reversal in one draw of four
    assert out["expected_shd_undecided"] == pytest.approx(1 / 4)  # one missing edge in one draw
    with pytest.raises(ValueError, match=r"graph_samples: expected 0/1 graphs \(S, D_learned, D_learned\)"):
        evaluate_recovery(z, z, None, T, with_r2=False, graph_samples=T)
    with pytest.raises(ValueError, match="graph_samples: expected 0/1 graph draws"):
        evaluate_recovery(z, z, None, T, with_r2=False, graph_samples=np.full((2, 3, 3), 0.5))


def test_matching_within_blocks_keeps_each_true_latent_in_its_block(latents):
    # learned column 2 (block "b") is a copy of true latent 0 (block "a"): a free matching
    # takes it, a matching within blocks may not
    rng = np.random.default_rng(5)
    mixed = 0.6 * latents[:, 0] + 0.8 * rng.normal(size=400)
    learned = np.column_stack([mixed, latents[:, 1], latents[:, 0], latents[:, 2]])
    true = latents[:, :3]
    assert match_latents(learned, true)[0] == 2
    within = match_latents(learned, true, learned_blocks="aabb", true_blocks="aab")
    np.testing.assert_array_equal(within, [0, 1, 3])
    res = mcc(learned, true, learned_blocks="aabb", true_blocks="aab")
    assert res.correlations[0] == pytest.approx(np.corrcoef(mixed, latents[:, 0])[0, 1], abs=0.05)
    with pytest.raises(ValueError, match="give both"):
        mcc(learned, true, learned_blocks="aabb")
    with pytest.raises(ValueError, match=r"block 'b' has 1 learned latents for 2"):
        match_latents(learned, true, learned_blocks="aaab", true_blocks="abb")
    with pytest.raises(ValueError, match=r"true_blocks: expected one block name per latent \(3\); found 2"):
        match_latents(learned, true, learned_blocks="aabb", true_blocks="ab")


def test_evaluate_recovery_reports_mcc_over_the_pinned_latents(latents):
    # true latents 0 -> 1 -> 2, blocks a, a, b: only 1 -> 2 is identified, so 1 and 2 are pinned
    true = latents[:, :3]
    noise = np.random.default_rng(2).normal(size=400)
    learned = np.column_stack([noise, true[:, 1], true[:, 2]])  # latent 0 is lost
    identified = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 0]], dtype=bool)
    out = evaluate_recovery(learned, true, CHAIN, CHAIN, identified=identified, learned_blocks="aab", true_blocks="aab")
    assert out["mcc_pinned"] == pytest.approx(1.0)
    assert out["mcc"] < 0.75
    none = evaluate_recovery(learned, true, None, CHAIN * 0, identified=identified)
    assert np.isnan(none["mcc_pinned"])
