"""Calibration and power of the Level I tests on synthetic data with known dependence.

Null calibration: 5 independent ordinal traits x 40 independent features (continuous,
skewed, +-1 binary, 4-level categorical) give 200 null pairs per test. Each p-value is
uniform under the null, so the number of rejections at alpha = 0.05 is close to
Binomial(200, 0.05) (mean 10, sd 3.1; pairs sharing a column are uncorrelated under
the null, not exactly independent). We accept counts between the 0.1% and 99.9%
binomial quantiles ([2, 21] for 200 pairs, [0, 13] for the 100 discrete pairs of
chi-square / G-square): a test that over-rejects (the failure mode that matters) or, for
200 pairs, never rejects (a dead test returning p = 1) fails.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pyro_personax import independence as ind
from pyro_personax.independence.cache import ResultCache

ALPHA = 0.05


@pytest.fixture(autouse=True)
def _fresh_memo():
    ResultCache.clear_memo()
    yield
    ResultCache.clear_memo()


def _null_table(n, seed):
    rng = np.random.default_rng(seed)
    cols = {f"t{i}": np.median(rng.integers(1, 4, (n, 3)), axis=1) for i in range(5)}
    for i in range(10):
        cols[f"cont{i}"] = rng.normal(size=n)
        cols[f"skew{i}"] = rng.exponential(size=n)
        cols[f"bin{i}"] = rng.choice([-1, 1], n)
        cols[f"cat{i}"] = rng.choice(["a", "b", "c", "d"], n)
    return pd.DataFrame(cols)


def _bounds(num_tests):
    lo, hi = stats.binom.ppf([0.001, 0.999], num_tests, ALPHA)
    return int(lo), int(hi)


@pytest.mark.parametrize("test", ["rcit", "hsic", "fisherz", "chisq", "gsq", "kci"])
def test_null_rejection_rate_is_nominal(test):
    df = _null_table(300, seed=11)
    traits = [c for c in df.columns if c.startswith("t")]
    features = [c for c in df.columns if not c.startswith("t")]
    out = ind.test_battery(df, traits, features, tests=(test,), seed=2)
    ok = out[out["status"] == "ok"]
    # chisq/gsq: 100 discrete pairs; fisherz: 150 numeric/binary pairs; others: 200
    expected = {"chisq": 100, "gsq": 100, "fisherz": 150}.get(test, 200)
    assert len(ok) == expected
    rejected = int((ok["p_value"] < ALPHA).sum())
    lo, hi = _bounds(len(ok))
    assert lo <= rejected <= hi, f"{test}: {rejected} of {len(ok)} null pairs rejected, expected [{lo}, {hi}]"
    # BH keeps false discoveries rarer still on a pure null
    assert int(ok["dependent"].sum()) <= 2


def _dependent_table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x_lin, x_nl = rng.normal(size=n), rng.normal(size=n)
    group = rng.choice(["actor", "singer", "athlete", "politician"], n)
    shift = pd.Series(group).map({"actor": 0.0, "singer": 0.8, "athlete": -0.8, "politician": 0.0})
    nose = rng.choice([-1, 1], n)

    def scale(z):  # paper's 3-point scale with medians: 1, 1.5, ..., 3
        return np.clip(np.round(2 * (2 + 0.7 * z)) / 2, 1, 3)

    return pd.DataFrame({
        "t_linear": scale(x_lin + 0.5 * rng.normal(size=n)),
        "t_nonlinear": scale(x_nl**2 - 1 + 0.5 * rng.normal(size=n)),  # uncorrelated with x_nl
        "t_categorical": scale(shift.to_numpy() + 0.5 * rng.normal(size=n)),
        "t_binary": scale(0.6 * nose + 0.6 * rng.normal(size=n)),
        "height": x_lin, "latitude": x_nl, "occupation": group, "pointy_nose": nose,
    })


# trait: (feature, tests that must flag it). Fisher-z also runs on the nonlinear pair but
# only sees correlation, which is zero there (see the next test).
PAIRS = {
    "t_linear": ("height", ("kci", "rcit", "hsic", "fisherz")),
    "t_nonlinear": ("latitude", ("kci", "rcit", "hsic")),
    "t_categorical": ("occupation", ("kci", "rcit", "hsic", "chisq", "gsq")),
    "t_binary": ("pointy_nose", ("kci", "rcit", "hsic", "fisherz", "chisq", "gsq")),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("trait", sorted(PAIRS))
def test_dependent_pair_flagged_by_every_applicable_test(trait, seed):
    feature, applicable = PAIRS[trait]
    df = _dependent_table(seed=seed)
    tests = ("kci", "rcit", "hsic", "fisherz", "chisq", "gsq")
    out = ind.test_battery(df, list(PAIRS), [p[0] for p in PAIRS.values()], tests=tests, seed=seed)
    rows = out[(out["trait"] == trait) & (out["feature"] == feature)].set_index("test")
    ran = set(rows.index[rows["status"] == "ok"])
    assert ran == set(applicable) | ({"fisherz"} if trait == "t_nonlinear" else set())
    flagged = rows.loc[list(applicable), "dependent"]
    assert flagged.all(), f"{trait} ~ {feature} missed by {list(flagged.index[~flagged.astype(bool)])}"


def test_nonlinear_pair_is_invisible_to_fisherz():
    out = ind.test_battery(_dependent_table(seed=0), ["t_nonlinear"], ["latitude"], tests=("fisherz", "hsic"))
    p = out.set_index("test")["p_value"]
    assert p["fisherz"] > ALPHA and p["hsic"] < 1e-6
