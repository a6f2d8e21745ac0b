"""Unit tests of the Level I battery: table shape, BH, errors, cache, encodings, HSIC."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pyro_personax import independence as ind
from pyro_personax.independence import pairwise
from pyro_personax.independence.cache import ResultCache, cache_key
from pyro_personax.independence.encoding import (
    EncodedVariable,
    VariableInfo,
    describe_column,
    kernel_input,
)


@pytest.fixture(autouse=True)
def _fresh_memo():
    """Each test starts with an empty in-process result memo."""
    ResultCache.clear_memo()
    yield
    ResultCache.clear_memo()


def _table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    gender = rng.choice(["f", "m"], n)
    height = rng.normal(170, 10, n)
    return pd.DataFrame({
        "o": np.clip(np.round(2 + (gender == "f") + rng.normal(0, 0.6, n)), 1, 3),
        "c": rng.integers(1, 4, n).astype(float),
        "gender": gender,
        "occupation": pd.Categorical(rng.choice(["actor", "singer", "athlete"], n)),
        "height": height,
        "nose": rng.choice([-1, 1], n),
    })


def test_table_columns_order_and_attrs():
    df = _table()
    out = ind.test_battery(df, ["o", "c"], ["gender", "height"], tests=("hsic", "chisq"))
    assert list(out.columns) == list(ind.RESULT_COLUMNS)
    assert len(out) == 2 * 2 * 2
    assert out["test"].tolist()[:4] == ["hsic"] * 4
    assert out.attrs["kci_strategy"]["method"] == "subsample"
    assert out.attrs["kci_strategy"]["max_n"] == 2000
    assert out.attrs["variables"]["height"] == {"kind": "numeric", "discrete": False, "levels": 300}
    assert out.attrs["variables"]["o"]["discrete"]
    assert str(out["dependent"].dtype) == "boolean"


def test_bh_matches_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    # sorted finite p: 0.005, 0.01, 0.03, 0.04 (m = 4) -> m p / rank = 0.02, 0.02, 0.04, 0.04
    q = ind.benjamini_hochberg(p)
    np.testing.assert_allclose(q[:4], [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(q[4])
    # a step-up case where the running minimum matters: 0.02*3/2 = 0.03 > 0.025*3/3
    np.testing.assert_allclose(ind.benjamini_hochberg([0.001, 0.02, 0.025]), [0.003, 0.025, 0.025])
    np.testing.assert_allclose(ind.benjamini_hochberg([0.9, 0.8]), [0.9, 0.9])


def test_bh_rejects_bad_p():
    with pytest.raises(ValueError, match="p_values"):
        ind.benjamini_hochberg([0.5, 1.5])


def test_q_values_per_test_and_across_all():
    df = _table()
    kw = dict(tests=("hsic", "rcit", "chisq"))
    per = ind.test_battery(df, ["o", "c"], ["gender", "occupation", "height", "nose"], **kw)
    for _, group in per.groupby("test"):
        np.testing.assert_allclose(group["q_value"], ind.benjamini_hochberg(group["p_value"].to_numpy()))
    every = ind.test_battery(df, ["o", "c"], ["gender", "occupation", "height", "nose"], fdr_scope="all", **kw)
    np.testing.assert_allclose(every["q_value"], ind.benjamini_hochberg(every["p_value"].to_numpy()))
    np.testing.assert_array_equal(per["p_value"], every["p_value"])
    ok = per["status"] == "ok"
    assert (per.loc[ok, "dependent"] == (per.loc[ok, "q_value"] < 0.05)).all()
    assert per.loc[~ok, "dependent"].isna().all()


def test_constant_column_and_few_rows_give_error_rows():
    df = _table(n=200)
    df["const"] = 1.0
    df["sparse"] = np.where(np.arange(200) < 10, np.arange(200) % 2, np.nan)
    out = ind.test_battery(df, ["o"], ["const", "sparse", "gender"], tests=ind.DEFAULT_TESTS, min_n=20)
    const = out[out["feature"] == "const"]
    assert (const["status"] == "error").all()
    assert const["error"].str.contains("constant").all()
    sparse = out[out["feature"] == "sparse"]
    assert (sparse["status"] == "error").all() and (sparse["n"] == 10).all()
    assert sparse["error"].str.contains("only 10 complete rows").all()
    for frame in (const, sparse):
        assert frame["p_value"].isna().all() and frame["q_value"].isna().all()
        assert frame["dependent"].isna().all()
    assert (out.loc[out["feature"] == "gender", "status"] == "ok").all()


def test_failing_test_is_recorded_not_coded_as_dependent(monkeypatch):
    def broken(x, y, settings, seed):
        raise np.linalg.LinAlgError("singular matrix")

    monkeypatch.setitem(pairwise.TESTS, "rcit", broken)
    out = ind.test_battery(_table(), ["o"], ["gender", "height"], tests=("rcit", "hsic"), cache_dir=None)
    rcit = out[out["test"] == "rcit"]
    assert (rcit["status"] == "error").all()
    assert rcit["error"].str.contains("LinAlgError: singular matrix").all()
    assert rcit["p_value"].isna().all() and rcit["dependent"].isna().all()
    assert (out.loc[out["test"] == "hsic", "status"] == "ok").all()


def test_chisq_only_on_discrete_and_bins_option():
    df = _table()
    out = ind.test_battery(df, ["o"], ["height", "gender"], tests=("chisq", "gsq"))
    height = out[out["feature"] == "height"]
    assert (height["status"] == "not_applicable").all()
    assert height["error"].str.contains("continuous").all()
    binned = ind.test_battery(df, ["o"], ["height"], tests=("chisq",), bins=4)
    assert binned["status"].tolist() == ["ok"]
    forced = ind.test_battery(df, ["o"], ["nose"], tests=("chisq",), discrete={"nose": False})
    assert forced["status"].tolist() == ["not_applicable"]


def test_chisq_and_gsq_statistics_agree_with_causallearn_p():
    out = ind.test_battery(_table(), ["o", "c"], ["gender", "occupation", "nose"], tests=("chisq", "gsq"))
    for _, row in out.iterrows():
        df_levels = {"gender": 1, "occupation": 2, "nose": 1}[row["feature"]] * 2
        np.testing.assert_allclose(stats.chi2.sf(row["statistic"], df_levels), row["p_value"], rtol=1e-6)


def test_missing_rows_dropped_per_pair_and_input_unchanged():
    df = _table()
    df.loc[:49, "height"] = np.nan
    df["gender"] = df["gender"].astype(object)
    df.loc[100:109, "gender"] = None
    before = df.copy()
    out = ind.test_battery(df, ["o"], ["height", "gender", "nose"], tests=("hsic",))
    assert out.set_index("feature")["n"].to_dict() == {"height": 250, "gender": 290, "nose": 300}
    pd.testing.assert_frame_equal(df, before)


def test_same_seed_same_numbers_and_n_jobs_invariant():
    df = _table(n=250)
    kw = dict(tests=("kci", "rcit"), kci_max_n=100, seed=3)
    a = ind.test_battery(df, ["o", "c"], ["gender", "height"], **kw)
    ResultCache.clear_memo()
    b = ind.test_battery(df, ["o", "c"], ["gender", "height"], n_jobs=2, **kw)
    assert not b["cached"].any()
    np.testing.assert_array_equal(a["p_value"], b["p_value"])
    assert (a.loc[a["test"] == "kci", "n_test"] == 100).all()
    ResultCache.clear_memo()
    c = ind.test_battery(df, ["o", "c"], ["gender", "height"], **{**kw, "seed": 4})
    assert not np.array_equal(a["p_value"], c["p_value"])


def test_disk_cache_round_trip(tmp_path):
    df = _table()
    first = ind.test_battery(df, ["o"], ["gender", "height"], tests=("hsic", "rcit"), cache_dir=tmp_path)
    assert len(list(tmp_path.rglob("*.json"))) == 4
    ResultCache.clear_memo()
    again = ind.test_battery(df, ["o"], ["gender", "height"], tests=("hsic", "rcit"), cache_dir=tmp_path)
    assert again["cached"].all()
    cols = ["statistic", "p_value", "q_value", "n_test"]
    pd.testing.assert_frame_equal(first[cols], again[cols])
    df.loc[0, "height"] += 1e-9
    changed = ind.test_battery(df, ["o"], ["gender", "height"], tests=("hsic",), cache_dir=tmp_path)
    assert changed.set_index("feature")["cached"].to_dict() == {"gender": True, "height": False}


def test_cache_key_uses_real_hash_not_truncated_repr():
    info = VariableInfo("x", "numeric", False, 5000)
    a = np.linspace(0, 1, 5000)
    b = a.copy()
    b[2500] += 0.25  # same truncated numpy repr, different data
    assert str(a) == str(b)
    ka = cache_key("kci", {}, EncodedVariable(info, a), EncodedVariable(info, a), 0)
    kb = cache_key("kci", {}, EncodedVariable(info, a), EncodedVariable(info, b), 0)
    assert ka != kb
    assert ka != cache_key("kci", {"kci_max_n": 10}, EncodedVariable(info, a), EncodedVariable(info, a), 0)


def test_column_errors_name_the_argument():
    df = _table()
    with pytest.raises(ValueError, match=r"features: columns \['weight'\] not in the table"):
        ind.test_battery(df, ["o"], ["weight"])
    with pytest.raises(TypeError, match="traits: column 'gender' must be numeric"):
        ind.test_battery(df, ["gender"], ["height"])
    with pytest.raises(ValueError, match="tests: expected names"):
        ind.test_battery(df, ["o"], ["height"], tests=("pearson",))
    with pytest.raises(ValueError, match="discrete: expected names among the tested columns"):
        ind.test_battery(df, ["o"], ["height"], discrete=["weight"])
    with pytest.raises(ValueError, match="cannot be declared continuous"):
        ind.test_battery(df, ["o"], ["gender"], discrete={"gender": False})
    with pytest.raises(ValueError, match="alpha"):
        ind.test_battery(df, ["o"], ["height"], alpha=1.5)
    df["inf"] = np.inf
    with pytest.raises(ValueError, match="column 'inf'"):
        ind.test_battery(df, ["o"], ["inf"])


@pytest.mark.parametrize(
    ("values", "kind", "discrete"),
    [
        (pd.Series([1.0, 1.5, 2.0, 2.5, 3.0, np.nan]), "numeric", True),
        (pd.Series(np.arange(40.0)), "numeric", False),
        (pd.Series([True, False, True]), "numeric", True),
        (pd.Series(["a", "b", None], dtype=object), "categorical", True),
        (pd.Series(["a", "b", "c"], dtype="string"), "categorical", True),
        (pd.Series(pd.Categorical([1, 2, 1])), "categorical", True),
    ],
)
def test_describe_column(values, kind, discrete):
    info = describe_column(values.rename("v"), max_levels=12)
    assert (info.kind, info.discrete) == (kind, discrete)


def test_kernel_input_one_hot():
    info = VariableInfo("occ", "categorical", True, 3)
    onehot = kernel_input(EncodedVariable(info, np.array([0, 2, 1, 2]), ("a", "b", "c")))
    np.testing.assert_array_equal(onehot, np.eye(3)[[0, 2, 1, 2]])
    binary = kernel_input(EncodedVariable(info, np.array([0, 2, 2]), ("a", "b", "c")))
    assert binary.shape == (3, 1)


def _dense_hsic_gamma(x, y, sx, sy):
    """Gretton et al. (2008) hsicTestGamma, written densely as in their Matlab code."""
    n = x.size
    k = np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * sx**2)) if sx else (x[:, None] == x[None, :]) * 1.0
    l_ = np.exp(-((y[:, None] - y[None, :]) ** 2) / (2 * sy**2)) if sy else (y[:, None] == y[None, :]) * 1.0
    h = np.eye(n) - 1.0 / n
    kc, lc = h @ k @ h, h @ l_ @ h
    stat = np.sum(k.T * lc) / n
    v = (kc * lc / 6) ** 2
    var = (v.sum() - np.trace(v)) / n / (n - 1) * 72 * (n - 4) * (n - 5) / n / (n - 1) / (n - 2) / (n - 3)
    k0, l0 = k - np.diag(np.diag(k)), l_ - np.diag(np.diag(l_))
    mx, my = k0.sum() / n / (n - 1), l0.sum() / n / (n - 1)
    mean = (1 + mx * my - mx - my) / n
    return stat, stats.gamma.sf(stat, mean**2 / var, scale=var * n / mean)


@pytest.mark.parametrize("kind", ["continuous", "ties", "categorical"])
def test_hsic_blockwise_equals_dense(kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=150)
    if kind == "continuous":
        y, ycat = np.sin(2 * x) + rng.normal(size=150), False
    elif kind == "ties":
        x, y, ycat = np.round(x), rng.integers(1, 4, 150).astype(float), False
    else:
        y, ycat = (x > 0.5).astype(np.int64) + rng.integers(0, 2, 150), True
    stat, p = ind.hsic_gamma_test(x, y, y_categorical=ycat, block_size=7, seed=5)
    sx = ind.hsic.median_bandwidth(x, 5)
    sy = None if ycat else ind.hsic.median_bandwidth(y, 6)
    ref_stat, ref_p = _dense_hsic_gamma(x, y, sx, sy)
    np.testing.assert_allclose([stat, p], [ref_stat, ref_p], rtol=1e-9, atol=1e-12)


def test_hsic_input_errors():
    with pytest.raises(ValueError, match="equal length"):
        ind.hsic_gamma_test(np.zeros(10), np.zeros(9))
    with pytest.raises(ValueError, match="constant"):
        ind.hsic_gamma_test(np.ones(50), np.arange(50.0))


def test_import_does_not_load_torch():
    code = "import sys, pyro_personax.independence; print('torch' in sys.modules or 'pyro' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = _table()
    df = df.rename(columns={"o": "gpt_o", "c": "gpt_c"}).assign(llama_o=df["o"])
    out = ind.test_battery(df, ["gpt_o", "gpt_c", "llama_o"], ["gender", "height"], tests=("hsic", "chisq"))
    groups = ind.trait_groups_from_prefix(["gpt_o", "gpt_c", "llama_o"])
    assert groups == {"gpt": ["gpt_o", "gpt_c"], "llama": ["llama_o"]}
    fig = ind.plot_pvalue_heatmap(out, trait_groups=groups)
    assert len(fig.axes) == 3  # two panels and a colour bar
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["gpt_o", "gpt_c", "llama_o"]
    fig.savefig(tmp_path / "h.png")
    summary = ind.plot_significance_summary(out)
    heights = [int(round(b.get_height())) for b in summary.axes[0].patches]
    raw = out.groupby("test", sort=False)["p_value"].apply(lambda p: int((p < 0.05).sum())).tolist()
    assert heights[:2] == raw
    plt.close("all")
    with pytest.raises(ValueError, match="trait_groups"):
        ind.plot_pvalue_heatmap(out, trait_groups={"x": ["nope"]})


# --------------------------------------------------------------------- default features


def _schema_features(frame):
    from pyro_personax.data.datasets import DATE_FEATURES
    from pyro_personax.data.schema import BIO_FIELDS, FACE_ATTRIBUTES, OPTIONAL_FACE_ATTRIBUTES

    schema = [f for f in BIO_FIELDS["celeb"] if f != "ID"] + [*FACE_ATTRIBUTES, *OPTIONAL_FACE_ATTRIBUTES]
    return [c for c in frame.columns if c in schema or c in DATE_FEATURES]


def test_default_features_of_synthetic_persona_are_the_schema_features():
    from pyro_personax.synthetic import persona

    data, _ = persona(200, seed=0)
    frame = data.structured_frame()
    out = ind.test_battery(frame, data.trait_columns, tests=("hsic",))
    pairs = set(zip(out["trait"], out["feature"], strict=True))
    assert len(data.trait_columns) == 5 and len(data.feature_columns) == 22
    assert len(out) == len(pairs) == 5 * 22
    assert pairs == {(t, f) for t in data.trait_columns for f in data.feature_columns}
    assert list(dict.fromkeys(out["feature"])) == _schema_features(frame) == data.feature_columns
    assert out.attrs["features"] == {"selection": "default", "tested": data.feature_columns, "excluded": {}}


def test_default_features_leave_out_id_traits_and_per_llm_scores():
    from pyro_personax.synthetic import persona

    data, _ = persona(200, seed=0)
    released = data.released_frame()  # ID, biography, face attributes, <llm>_<trait>, final_<trait>
    out = ind.test_battery(released, ["final_o"], tests=("hsic",))
    assert len(out) == 1 * 20
    assert out["feature"].tolist() == _schema_features(released)
    excluded = out.attrs["features"]["excluded"]
    assert excluded["ID"] == "identifier"
    assert {c for c, why in excluded.items() if why == "another trait column"} == {
        "final_c", "final_e", "final_a", "final_n"}
    per_llm = {f"{m}_{t}" for m in data.llms for t in "ocean"}
    assert {c for c, why in excluded.items() if why.startswith("per-LLM trait score")} == per_llm
    assert len(excluded) == 1 + 4 + 15


def test_default_feature_rules_and_override():
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({
        "person": [f"p{i}" for i in range(n)],          # identifier-like string
        "row": np.arange(n),                              # identifier-like integer
        "Birthyear": 1900 + np.arange(n),                 # distinct integers, but a schema field
        "height": rng.normal(170, 10, n),                 # distinct floats: a measurement
        "team": rng.choice(["x", "y"], n),
        "league": "NBA",                                  # constant
        "empty": np.nan,                                  # constant (no value)
        "face_emb_0": [np.zeros(2)] * n,                  # embedding
        "claude_o": rng.integers(1, 4, n).astype(float),  # per-LLM score
        "o": rng.integers(1, 4, n).astype(float),
    })
    sel = ind.default_features(df, ["o"])
    assert sel.features == ("Birthyear", "height", "team")
    assert sel.excluded == {
        "person": "one distinct value per row (identifier-like)",
        "row": "one distinct value per row (identifier-like)",
        "league": "constant (at most one distinct value)",
        "empty": "constant (at most one distinct value)",
        "face_emb_0": "embedding (a Level II modality)",
        "claude_o": "per-LLM trait score (final_<trait> is their median)",
    }
    text = sel.describe()
    assert text.startswith("testing 3 feature columns; left out as one distinct value per row (identifier-like): "
                           "person, row; as constant")
    assert ind.default_features(df, ["o"], id_columns=["team"]).excluded["team"] == "identifier"
    given = ind.test_battery(df, ["o"], ["row", "team"], tests=("hsic",))
    assert given["feature"].unique().tolist() == ["row", "team"]
    assert given.attrs["features"] == {"selection": "given", "tested": ["row", "team"], "excluded": {}}
    with pytest.raises(ValueError, match="features: no column left to test"):
        ind.test_battery(df[["o", "person", "league"]], ["o"], tests=("hsic",))


# --------------------------------------------------------------------- libraries and p-values


def test_bh_equals_scipy_false_discovery_control():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=40) ** 3
    p[[3, 17, 29]] = np.nan
    q = ind.benjamini_hochberg(p)
    finite = ~np.isnan(p)
    np.testing.assert_array_equal(q[finite], stats.false_discovery_control(p[finite], method="bh"))
    assert np.isnan(q[~finite]).all()
    assert np.isnan(ind.benjamini_hochberg([np.nan, np.nan])).all()
    assert ind.benjamini_hochberg([]).shape == (0,)


def _strong_pair(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"t": x, "f": x + 1e-3 * rng.normal(size=n)})


@pytest.mark.parametrize("test", ["kci", "fisherz", "hsic", "rcit"])
def test_strong_dependence_gives_a_positive_finite_p_value(test):
    out = ind.test_battery(_strong_pair(), ["t"], ["f"], tests=(test,))
    p = out["p_value"].iloc[0]
    assert out["status"].iloc[0] == "ok"
    assert np.isfinite(p) and p >= ind.P_VALUE_FLOOR > 0
    assert p < (1e-20 if test == "rcit" else 1e-50)  # RCIT: 25 random features, a weaker statistic
    if test in ("kci", "fisherz"):  # causal-learn's 1 - cdf gives exactly 0 here; the survival function underflows
        assert p == ind.P_VALUE_FLOOR


@pytest.mark.parametrize("approx", ["lpd4", "hbe", "gamma", "chi2", "perm"])
def test_rcit_is_causallearn_with_a_survival_function(approx):
    from causallearn.utils.RCIT.RCIT import RIT

    settings = pairwise.TestSettings(rcit_approx=approx)
    rng = np.random.default_rng(5)
    n = 300
    x = rng.normal(size=n)
    y = 0.15 * np.tanh(x) + rng.normal(size=n)
    strong = _strong_pair(n=n)
    for (a, b), must_resolve in (((x, y), True), ((strong["t"].to_numpy(), strong["f"].to_numpy()), False)):
        ex = EncodedVariable(VariableInfo("t", "numeric", False, n), a)
        ey = EncodedVariable(VariableInfo("f", "numeric", False, n), b)
        outcome = pairwise.run_test("rcit", ex, ey, settings, seed=7)
        with pairwise._global_numpy_seed(7):
            p_cl, stat_cl = RIT(approx=approx).compute_pvalue(a[:, None], b[:, None])
        assert outcome.status == "ok" and outcome.statistic == stat_cl  # the same draws and statistic
        if approx == "perm":  # (1 + count) / 1001 against causal-learn's share of 1,000
            assert outcome.p_value >= 1 / 1001 and abs(outcome.p_value - p_cl) <= 1 / 1000
        elif must_resolve:
            assert 1e-4 < p_cl < 1 and outcome.p_value == pytest.approx(p_cl, rel=1e-9)
        else:  # causal-learn's 1 - cdf is exactly 0; the survival function is not
            assert p_cl == 0 and ind.P_VALUE_FLOOR <= outcome.p_value < 1e-20


def test_kci_and_fisherz_p_values_equal_causallearn_where_it_resolves_them():
    from causallearn.utils.cit import CIT
    from causallearn.utils.KCI.KCI import KCI_UInd

    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=n)
    y = 0.15 * np.tanh(x) + rng.normal(size=n)
    df = pd.DataFrame({"t": x, "f": y})
    out = ind.test_battery(df, ["t"], ["f"], tests=("kci", "fisherz"), kci_max_n=n)
    kci_row, fz_row = out.iloc[0], out.iloc[1]
    p_cl, stat_cl = KCI_UInd().compute_pvalue(x[:, None], y[:, None])
    assert 1e-4 < p_cl < 1
    assert kci_row["statistic"] == pytest.approx(stat_cl, rel=1e-12)
    assert kci_row["p_value"] == pytest.approx(p_cl, rel=1e-9)
    p_fz = CIT(np.column_stack([x, y]), "fisherz")(0, 1)
    assert 1e-4 < p_fz < 1
    assert fz_row["p_value"] == pytest.approx(p_fz, rel=1e-9)


def test_kci_spectral_null_p_value_is_never_zero():
    settings = pairwise.TestSettings(kci_approx=False)
    df = _strong_pair(n=200)
    info = VariableInfo("t", "numeric", False, 200)
    x = EncodedVariable(info, df["t"].to_numpy())
    y = EncodedVariable(VariableInfo("f", "numeric", False, 200), df["f"].to_numpy())
    outcome = pairwise.run_test("kci", x, y, settings, seed=0)
    assert outcome.status == "ok"
    assert outcome.p_value == pytest.approx(1 / 1001)


def test_catalog_names_every_test_without_heavy_imports():
    from pyro_personax.independence.catalog import DEFAULT_TESTS, TEST_NAMES

    assert TEST_NAMES == tuple(pairwise.TESTS)
    assert set(DEFAULT_TESTS) <= set(TEST_NAMES) and ind.DEFAULT_TESTS == DEFAULT_TESTS
    code = ("import sys, pyro_personax.independence.catalog;"
            "print([m for m in ('pandas', 'scipy', 'numpy', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_battery_summary_counts_the_tests_that_did_not_apply():
    """A chi-square / G-square test of a continuous feature does not apply; the summary says how many."""
    from pyro_personax.independence import battery_summary

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"t": rng.integers(1, 4, 200).astype(float), "x": rng.normal(size=200),
                       "c": rng.integers(0, 3, 200)})
    table = ind.test_battery(df, ["t"], ["x", "c"], tests=("fisherz", "chisq", "gsq"), progress=False)
    assert (table["status"] == "not_applicable").sum() == 2
    line = battery_summary(table)
    assert line.startswith("0 of 4 (test, trait, feature) results dependent at BH q < 0.05")
    assert line.endswith("2 not applicable (chisq 1, gsq 1)")
    with pytest.raises(ValueError, match=r"table: expected the columns of test_battery's output; missing \['status'\]"):
        battery_summary(table.drop(columns="status"))
