"""Trait aggregation rule and LLM agreement."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyro_personax.data.traits import (
    aggregate_traits,
    cohen_kappa,
    krippendorff_alpha,
    trait_agreement,
)

LLMS = ("gpt4o", "gemini", "llama")


def _frame(rows, trait="o"):
    rows = np.asarray(rows, dtype=float)
    return pd.DataFrame({f"{m}_{trait}": rows[:, i] for i, m in enumerate(LLMS)})


def test_aggregation_matches_hand_computation():
    df = _frame([[1, 2, 3], [0, 3, 1], [0, 0, 2], [0, 0, 0], [3, np.nan, 0], [2, 2, 0]])
    out = aggregate_traits(df, traits=("o",))
    expected = [2.0, 2.0, 2.0, np.nan, 3.0, 2.0]
    np.testing.assert_array_equal(out["final_o"].to_numpy(), expected)
    assert list(out.columns) == ["final_o"]


def test_aggregation_all_zero_is_missing_and_input_untouched():
    df = _frame([[0, 0, 0], [1, 0, 0]])
    before = df.copy()
    out = aggregate_traits(df, traits=("o",))
    assert np.isnan(out["final_o"].iloc[0]) and out["final_o"].iloc[1] == 1.0
    pd.testing.assert_frame_equal(df, before)


def test_aggregation_keeps_index_and_all_traits():
    df = pd.concat([_frame([[1, 2, 2], [3, 3, 0]], t) for t in "ocean"], axis=1)
    df.index = ["p1", "p2"]
    out = aggregate_traits(df)
    assert list(out.columns) == [f"final_{t}" for t in "ocean"]
    assert list(out.index) == ["p1", "p2"]
    assert (out.loc["p2"] == 3.0).all()


def test_aggregation_custom_pattern():
    df = pd.DataFrame({"O_a": [1, 0], "O_b": [3, 2]})
    out = aggregate_traits(df, llms=("a", "b"), traits=("O",), pattern="{trait}_{llm}")
    np.testing.assert_array_equal(out["final_O"].to_numpy(), [2.0, 2.0])


def test_aggregation_missing_column_names_closest():
    df = _frame([[1, 2, 3]]).rename(columns={"gpt4o_o": "gpt4_o"})
    with pytest.raises(ValueError, match=r"gpt4o_o.*gpt4_o"):
        aggregate_traits(df, traits=("o",))


def test_aggregation_non_numeric_column_raises():
    df = _frame([[1, 2, 3]])
    df["gemini_o"] = ["high"]
    with pytest.raises(TypeError, match="gemini_o"):
        aggregate_traits(df, traits=("o",))


scores = st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0]), min_size=3, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(scores, min_size=1, max_size=12), st.permutations([0, 1, 2]))
def test_aggregation_order_invariant_over_llms(rows, perm):
    df = _frame(rows)
    shuffled = df[[df.columns[i] for i in perm]]
    llms = tuple(LLMS[i] for i in perm)
    a = aggregate_traits(df, traits=("o",))
    b = aggregate_traits(shuffled, llms=llms, traits=("o",))
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(st.lists(scores, min_size=1, max_size=12))
def test_aggregation_within_range_of_nonzero_scores(rows):
    out = aggregate_traits(_frame(rows), traits=("o",))["final_o"].to_numpy()
    for row, value in zip(rows, out):
        valid = [v for v in row if v != 0]
        if not valid:
            assert np.isnan(value)
        else:
            assert min(valid) <= value <= max(valid)


def test_krippendorff_alpha_reference_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 coders x 12 units.
    n = np.nan
    r = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]).T
    assert krippendorff_alpha(r, "nominal") == pytest.approx(0.743, abs=1e-3)
    assert krippendorff_alpha(r, "interval") == pytest.approx(0.849, abs=1e-3)
    assert krippendorff_alpha(r, "ordinal") == pytest.approx(0.815, abs=1e-3)


def test_krippendorff_alpha_two_coders_by_hand():
    # units (1,1), (2,2), (1,2): values 1,1,2,2,1,2 -> n_1 = n_2 = 3, n = 6;
    # nominal: D_o = 2/6, D_e = 2*3*3/(6*5) = 0.6 -> alpha = 1 - (1/3)/0.6 = 4/9.
    r = np.array([[1, 1], [2, 2], [1, 2]], dtype=float)
    assert krippendorff_alpha(r, "nominal") == pytest.approx(4 / 9)
    assert krippendorff_alpha(np.array([[1, 1], [2, 2]], float), "nominal") == pytest.approx(1.0)
    assert np.isnan(krippendorff_alpha(np.array([[1, np.nan], [2, np.nan]]), "nominal"))
    with pytest.raises(ValueError, match="metric"):
        krippendorff_alpha(r, "ratio")


def _reference_alpha(ratings, metric):
    """The coincidence-matrix computation (Krippendorff 2011) written out, as a reference."""
    units = [row[~np.isnan(row)] for row in ratings if np.sum(~np.isnan(row)) >= 2]
    if not units:
        return float("nan")
    values = np.unique(np.concatenate(units))
    index = {v: i for i, v in enumerate(values)}
    coincidence = np.zeros((len(values), len(values)))
    for row in units:
        idx = np.array([index[v] for v in row])
        pair = np.zeros_like(coincidence)
        np.add.at(pair, (idx[:, None], idx[None, :]), 1.0)
        pair[np.diag_indices_from(pair)] -= np.bincount(idx, minlength=len(values))
        coincidence += pair / (len(row) - 1)
    counts = coincidence.sum(axis=1)
    n = counts.sum()
    if metric == "nominal":
        delta = 1.0 - np.eye(len(values))
    elif metric == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    else:
        cum = np.concatenate([[0.0], np.cumsum(counts)])
        g = np.arange(len(values))
        lo, hi = np.minimum(g[:, None], g[None, :]), np.maximum(g[:, None], g[None, :])
        delta = (cum[hi + 1] - cum[lo] - (counts[:, None] + counts[None, :]) / 2.0) ** 2
    expected = (counts[:, None] * counts[None, :] * delta).sum() / (n * (n - 1))
    if expected == 0:
        return float("nan")
    return float(1.0 - (coincidence * delta).sum() / n / expected)


@pytest.mark.parametrize("metric", ["nominal", "ordinal", "interval"])
def test_krippendorff_alpha_is_the_library_and_equals_the_coincidence_computation(metric):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(3)
    for _ in range(25):
        n, coders = rng.integers(2, 40), rng.integers(2, 5)
        r = rng.integers(1, 6, size=(n, coders)).astype(float)
        r[rng.random(r.shape) < 0.3] = np.nan
        ours, ref = krippendorff_alpha(r, metric), _reference_alpha(r, metric)
        assert (np.isnan(ours) and np.isnan(ref)) or ours == pytest.approx(ref, abs=1e-12)
        pairable = r[(~np.isnan(r)).sum(axis=1) >= 2]
        if np.isfinite(ours):
            lib = krippendorff.alpha(reliability_data=pairable.T, level_of_measurement=metric)
            assert ours == lib
    # undefined cases are NaN, where the library raises
    assert np.isnan(krippendorff_alpha(np.array([[2.0, 2.0], [2.0, 2.0], [1.0, np.nan]]), metric))
    assert np.isnan(krippendorff_alpha(np.full((3, 2), np.nan), metric))


def test_cohen_kappa_by_hand():
    # 2x2 table [[2, 1], [0, 1]] / 4: p_o = 3/4, p_e = (3/4)(2/4) + (1/4)(2/4) = 1/2 -> 0.5.
    a = np.array([1, 1, 1, 2.0])
    b = np.array([1, 1, 2, 2.0])
    assert cohen_kappa(a, b, weights=None) == pytest.approx(0.5)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert np.isnan(cohen_kappa(np.array([np.nan]), np.array([1.0])))


def test_trait_agreement_report():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 4, size=300)
    df = pd.DataFrame({f"{m}_o": truth.copy() for m in LLMS})
    df.loc[:9, "llama_o"] = 0
    report = trait_agreement(df, traits=("o",))
    row = report.loc["o"]
    assert row["alpha"] == pytest.approx(1.0)
    assert row["mean_kappa"] == pytest.approx(1.0)
    assert row["insufficient_llama"] == pytest.approx(10 / 300)
    assert row["n_pairable"] == 300 and row["n_missing"] == 0
    noisy = df.copy()
    noisy["gemini_o"] = rng.integers(1, 4, size=300)
    assert trait_agreement(noisy, traits=("o",)).loc["o", "alpha"] < 0.8


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_equals_sklearn_on_the_rows_both_rated(weights):
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    truth = rng.integers(1, 4, size=200).astype(float)
    a = np.where(rng.uniform(size=200) < 0.3, rng.integers(1, 4, size=200), truth)
    b = np.where(rng.uniform(size=200) < 0.4, rng.integers(1, 4, size=200), truth)
    a[rng.uniform(size=200) < 0.1] = np.nan
    b[rng.uniform(size=200) < 0.1] = np.nan
    both = ~np.isnan(a) & ~np.isnan(b)
    expected = cohen_kappa_score(a[both].astype(int), b[both].astype(int), weights=weights)
    assert cohen_kappa(a, b, weights=weights) == pytest.approx(expected, rel=1e-12)
    # a gap in the scale (no 2) counts one step between 1 and 3, as in scikit-learn
    gap_a, gap_b = np.where(a == 2, 3, a), np.where(b == 2, 1, b)
    expected = cohen_kappa_score(gap_a[both].astype(int), gap_b[both].astype(int), weights=weights)
    assert cohen_kappa(gap_a, gap_b, weights=weights) == pytest.approx(expected, rel=1e-12)
    assert np.isnan(cohen_kappa(np.full(5, 2.0), np.full(5, 2.0), weights=weights))
