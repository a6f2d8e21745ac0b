"""The Level I battery: every test on every (trait, feature) pair, as one tidy table."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from pyro_personax.independence.cache import ResultCache, cache_key
from pyro_personax.independence.catalog import DEFAULT_TESTS
from pyro_personax.independence.encoding import VariableInfo, complete_pair, describe_columns
from pyro_personax.independence.fdr import benjamini_hochberg
from pyro_personax.independence.features import FeatureSelection, default_features
from pyro_personax.independence.pairwise import TESTS, PairOutcome, TestSettings, run_test

__all__ = ["test_battery", "battery_summary", "DEFAULT_TESTS", "RESULT_COLUMNS"]

logger = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "test", "trait", "feature", "n", "n_test", "statistic", "p_value", "q_value",
    "dependent", "status", "error", "seconds", "cached",
)


def check_columns(df: pd.DataFrame, traits: Sequence[str], features: Sequence[str]) -> None:
    """Raise unless ``df`` is a DataFrame with distinct, present ``traits`` (numeric) and ``features`` columns."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df: expected a pandas DataFrame, found {type(df).__name__}")
    for arg, cols in (("traits", traits), ("features", features)):
        if isinstance(cols, str) or len(cols) == 0:
            raise ValueError(f"{arg}: expected a non-empty list of column names, found {cols!r}")
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{arg}: columns {missing} not in the table (columns: {list(df.columns)})")
        if len(set(cols)) != len(cols):
            raise ValueError(f"{arg}: expected distinct names, found duplicates in {list(cols)}")
    for t in traits:
        if not (pd.api.types.is_numeric_dtype(df[t]) or pd.api.types.is_bool_dtype(df[t])):
            raise TypeError(f"traits: column {t!r} must be numeric (ordinal scores), found {df[t].dtype}")


def _precheck(x, y, min_n: int) -> str:
    """Reason a pair cannot be tested at all, or ``""``."""
    if x.n < min_n:
        return f"only {x.n} complete rows for ({x.info.name!r}, {y.info.name!r}); min_n={min_n}"
    for var in (x, y):
        if var.num_distinct() < 2:
            return f"{var.info.name!r} is constant on the {var.n} complete rows of this pair"
    return ""


def _pair_seed(key: str) -> int:
    return int(key[:15], 16)


def _run_tasks(tasks, settings: TestSettings, n_jobs: int, progress: bool) -> list[PairOutcome]:
    if not tasks:
        return []
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="independence tests", disable=not progress, leave=False)
    if n_jobs == 1:
        results = []
        for test, x, y, seed in tasks:
            results.append(run_test(test, x, y, settings, seed))
            bar.update()
    else:
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(run_test)(test, x, y, settings, seed) for test, x, y, seed in tasks
        )
        results = []
        for outcome in gen:
            results.append(outcome)
            bar.update()
    bar.close()
    return results


def _add_q_values(table: pd.DataFrame, alpha: float, fdr_scope: str) -> pd.DataFrame:
    p = table["p_value"].to_numpy(dtype=float)
    q = np.full_like(p, np.nan)
    if fdr_scope == "all":
        q = benjamini_hochberg(p)
    else:
        for _, idx in table.groupby("test", sort=False).indices.items():
            q[idx] = benjamini_hochberg(p[idx])
    table["q_value"] = q
    dependent = pd.array(q < alpha, dtype="boolean")
    dependent[np.isnan(q)] = pd.NA
    table["dependent"] = dependent
    return table


def _validate_options(tests, alpha, fdr_scope, min_n, n_jobs) -> tuple[str, ...]:
    tests = (tests,) if isinstance(tests, str) else tuple(tests)
    unknown = [t for t in tests if t not in TESTS]
    if unknown or not tests:
        raise ValueError(f"tests: expected names among {sorted(TESTS)}, found {list(tests)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a level in (0, 1), found {alpha}")
    if fdr_scope not in ("test", "all"):
        raise ValueError(f"fdr_scope: expected 'test' or 'all', found {fdr_scope!r}")
    if min_n < 6:
        raise ValueError(f"min_n: expected an integer >= 6, found {min_n}")
    if n_jobs == 0:
        raise ValueError("n_jobs: expected a positive integer or -1 (all cores), found 0")
    return tests


def _select_features(df, traits, features) -> tuple[list[str], dict]:
    """Feature columns to test and their ``attrs["features"]`` record."""
    if features is None or isinstance(features, FeatureSelection):
        if features is None:
            features = default_features(df, [traits] if isinstance(traits, str) else traits)
        if not features.features:
            raise ValueError(f"features: no column left to test ({features.describe()}); name the features")
        return list(features.features), {"selection": "default", **features.to_dict()}
    features = features if isinstance(features, str) else list(features)
    return features, {"selection": "given", "tested": list(features), "excluded": {}}


def test_battery(
    df: pd.DataFrame,
    traits: Sequence[str],
    features: Sequence[str] | FeatureSelection | None = None,
    tests: Iterable[str] = DEFAULT_TESTS,
    alpha: float = 0.05,
    discrete: Mapping[str, bool] | Iterable[str] | None = None,
    *,
    fdr_scope: str = "test",
    max_levels: int = 12,
    bins: int | None = None,
    min_n: int = 20,
    kci_max_n: int = 2000,
    kci_approx: bool = True,
    rcit_approx: str = "lpd4",
    hsic_block_size: int = 512,
    n_jobs: int = 1,
    cache_dir=None,
    progress: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Pairwise unconditional independence tests between traits and features.

    Every test in ``tests`` runs on every (trait, feature) pair, on the rows where
    neither is missing. Available tests: ``"kci"`` (causal-learn KCI, subsampled to
    ``kci_max_n`` rows: the large-n strategy, see
    :mod:`pyro_personax.independence.pairwise`), ``"rcit"`` (causal-learn RIT, random
    Fourier features, all rows), ``"hsic"`` (gamma-approximation HSIC, exact, all rows),
    ``"chisq"`` and ``"gsq"`` (causal-learn, discrete pairs only), ``"fisherz"``
    (causal-learn's statistic, numeric or binary pairs). p-values come from survival
    functions and are never below
    :data:`~pyro_personax.independence.pairwise.P_VALUE_FLOOR` (see
    :mod:`pyro_personax.independence.pairwise`).

    Parameters
    ----------
    df
        ``(N, P)`` table. Traits must be numeric; features may be numeric, bool,
        categorical or strings. Missing cells are dropped pair by pair, never filled.
    traits
        Trait column names.
    features
        Feature column names. ``None`` (default): the structured features of the table,
        :func:`~pyro_personax.independence.features.default_features` (identifiers,
        other traits, per-LLM scores, embeddings, constant and identifier-like columns
        are left out); a :class:`~pyro_personax.independence.features.FeatureSelection`
        is used as given.
    tests
        Test names, in the order of the output.
    alpha
        Level for the ``dependent`` column (``q_value < alpha``).
    discrete
        Override of the discrete/continuous detection: a mapping ``column -> bool`` or
        a list of columns to treat as discrete. Default: numeric columns with at most
        ``max_levels`` distinct values, and every categorical column, are discrete.
    fdr_scope
        Benjamini-Hochberg over the pairs of each test (``"test"``) or over every row
        of the table (``"all"``).
    max_levels
        Cardinality threshold of the discrete detection.
    bins
        Quantile bins for continuous columns in chi-square / G-square; ``None`` marks
        those pairs ``not_applicable``.
    min_n
        Fewest complete rows a pair needs; fewer gives an ``error`` row.
    kci_max_n, kci_approx, rcit_approx, hsic_block_size
        Test settings (see :class:`~pyro_personax.independence.pairwise.TestSettings`).
    n_jobs
        Parallel workers over (test, pair) tasks (joblib; ``-1`` = all cores).
    cache_dir
        Folder of the on-disk result cache; ``None`` (default) = in-process memo only.
    progress
        Show a progress bar (tqdm, on stderr).
    seed
        Seed of every random choice (KCI subsample, random features, bandwidth rows);
        each pair's seed is derived from it and the pair's data, so results do not
        depend on ``n_jobs`` or on the order of columns.

    Returns
    -------
    pandas.DataFrame
        One row per (test, trait, feature), columns :data:`RESULT_COLUMNS`: ``n``
        (complete rows of the pair), ``n_test`` (rows the test used), ``statistic``,
        ``p_value``, ``q_value``, ``dependent`` (nullable boolean, ``<NA>`` without a
        p-value), ``status`` (``ok`` / ``not_applicable`` / ``error``), ``error`` (why),
        ``seconds``, ``cached``. ``attrs`` records the settings, the KCI strategy, how
        each column was read and ``features``: ``selection`` (``"default"`` or
        ``"given"``), the ``tested`` columns and the ``excluded`` ones with the reason.

    Raises
    ------
    ValueError, TypeError
        On unknown columns or tests, non-numeric traits, or bad options.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"o": rng.integers(1, 4, 200).astype(float),
    ...                    "height": rng.normal(170, 10, 200)})
    >>> out = test_battery(df, ["o"], ["height"], tests=("hsic", "chisq"))
    >>> out[["test", "status"]].values.tolist()
    [['hsic', 'ok'], ['chisq', 'not_applicable']]
    """
    tests = _validate_options(tests, alpha, fdr_scope, min_n, n_jobs)
    traits = traits if isinstance(traits, str) else list(traits)
    features, selection = _select_features(df, traits, features)
    check_columns(df, traits, features)
    settings = TestSettings(kci_max_n, kci_approx, rcit_approx, hsic_block_size, bins)
    infos = describe_columns(df, dict.fromkeys(traits + features), max_levels, discrete)
    cache = ResultCache(cache_dir)
    start = time.perf_counter()
    pairs = {(t, f): complete_pair(df, infos[t], infos[f]) for t in traits for f in features}
    rows, tasks, task_rows = _plan(tests, pairs, settings, cache, min_n, seed)
    logger.info("%d tests to run, %d from cache", len(tasks), len(rows) - len(tasks))
    for row, outcome in zip(task_rows, _run_tasks(tasks, settings, n_jobs, progress)):
        row["outcome"] = outcome
        cache.put(row["key"], outcome)
    table = _to_table(rows)
    table = _add_q_values(table, alpha, fdr_scope)[list(RESULT_COLUMNS)]
    table.attrs = _attrs(tests, alpha, fdr_scope, settings, infos, min_n, seed, cache_dir,
                         time.perf_counter() - start)
    table.attrs["features"] = selection
    return table


test_battery.__test__ = False  # not a pytest test despite its name


def _plan(tests, pairs, settings: TestSettings, cache: ResultCache, min_n: int, seed: int):
    """Output rows in order, plus the (test, pair) tasks the cache cannot answer."""
    rows, tasks, task_rows = [], [], []
    for test in tests:
        for (trait, feature), (x, y) in pairs.items():
            row = {"test": test, "trait": trait, "feature": feature, "n": x.n, "cached": False}
            rows.append(row)
            reason = _precheck(x, y, min_n)
            if reason:
                row["outcome"] = PairOutcome(np.nan, np.nan, x.n, "error", reason)
                continue
            row["key"] = key = cache_key(test, settings.for_test(test), x, y, seed)
            hit = cache.get(key)
            if hit is not None:
                row["outcome"], row["cached"] = hit, True
            else:
                tasks.append((test, x, y, _pair_seed(key)))
                task_rows.append(row)
    return rows, tasks, task_rows


def _to_table(rows: list[dict]) -> pd.DataFrame:
    records = []
    for row in rows:
        o: PairOutcome = row["outcome"]
        records.append({
            "test": row["test"], "trait": row["trait"], "feature": row["feature"],
            "n": row["n"], "n_test": o.n_test, "statistic": o.statistic, "p_value": o.p_value,
            "status": o.status, "error": o.error, "seconds": o.seconds, "cached": row["cached"],
        })
    table = pd.DataFrame.from_records(records)
    return table.astype({"n": "int64", "n_test": "int64", "statistic": "float64", "p_value": "float64"})


def _attrs(tests, alpha, fdr_scope, settings: TestSettings, infos: dict[str, VariableInfo],
           min_n, seed, cache_dir, seconds) -> dict:
    return {
        "tests": list(tests),
        "alpha": alpha,
        "fdr_scope": fdr_scope,
        "min_n": min_n,
        "seed": seed,
        "bins": settings.bins,
        "kci_strategy": {
            "method": "subsample",
            "max_n": settings.kci_max_n,
            "approx": "gamma" if settings.kci_approx else "spectral",
            "why": "causal-learn KCI is O(n^2) memory / O(n^3) time; pairs with more complete "
            "rows run on a seeded uniform subsample of max_n rows (see n_test)",
        },
        "rcit": {"approx": settings.rcit_approx, "rows": "all"},
        "hsic": {"null": "gamma", "kernel": "gaussian(median) / delta(categorical)", "rows": "all"},
        "variables": {k: {"kind": v.kind, "discrete": v.discrete, "levels": v.num_levels}
                      for k, v in infos.items()},
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "seconds": seconds,
    }


def battery_summary(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """One line on a battery table: dependent results among the tests that ran, and every
    test that did not run (not applicable, or failed), by test.

    Parameters
    ----------
    table
        Output of :func:`test_battery` (columns ``test``, ``status``, ``dependent``).
    alpha
        The level the ``dependent`` column used (for the wording only).

    Returns
    -------
    str

    Examples
    --------
    >>> t = pd.DataFrame({"test": ["kci", "chisq", "chisq"], "status": ["ok", "not_applicable", "error"],
    ...                   "dependent": [True, False, False]})
    >>> battery_summary(t)
    '1 of 1 (test, trait, feature) results dependent at BH q < 0.05; 1 not applicable (chisq 1); 1 failed (chisq 1)'
    """
    missing = [c for c in ("test", "status", "dependent") if c not in table.columns]
    if missing:
        raise ValueError(f"table: expected the columns of test_battery's output; missing {missing}")
    ok = table[table["status"] == "ok"]
    parts = [f"{int(ok['dependent'].sum())} of {len(ok)} (test, trait, feature) results dependent at BH q < {alpha:g}"]
    for status, words in (("not_applicable", "not applicable"), ("error", "failed")):
        counts = table.loc[table["status"] == status, "test"].value_counts(sort=False)
        if len(counts):
            by_test = ", ".join(f"{t} {n}" for t, n in counts.items())
            parts.append(f"{int(counts.sum())} {words} ({by_test})")
    return "; ".join(parts)

