"""The individual pairwise tests of the battery.

Each test takes two :class:`~pyro_personax.independence.encoding.EncodedVariable`
sides (trait, feature) over their complete rows and returns a :class:`PairOutcome`.
KCI, RCIT, chi-square and G-square come from causal-learn; Fisher-z is causal-learn's
statistic computed here (see below); HSIC is
:func:`~pyro_personax.independence.hsic.hsic_gamma_test`.

Large-n strategy for KCI (documented choice): causal-learn's KCI builds dense
``(n, n)`` kernels, O(n^2) memory and O(n^2)-O(n^3) time (``benchmarks/RESULTS.md`` has
the figures at CelebPersona size). Its FastKCI is slower still at that size, and RCIT *is*
the random-feature kernel approximation (run as its own test). So KCI runs on a uniform
random subsample of ``kci_max_n`` complete rows (default 2,000),
drawn with a seed derived from the battery seed and the pair's data; the table's
``n_test`` column shows the rows it used. HSIC and RCIT keep every row, so the battery
still has full-n kernel tests; the benchmark reports the power this costs KCI.

p-values of strong dependence: ``1 - cdf(statistic)`` rounds to exactly 0 once the
p-value falls below about ``1e-16``, so every test takes the survival function of its
statistic (``gamma.sf``, ``norm.sf``, ``chi2.sf``). KCI runs causal-learn's own kernels,
statistic and gamma moments (``KCI_UInd.kernel_matrix``, ``HSIC_V_statistic``,
``get_kappa``) and only replaces its ``1 - gamma.cdf``; Fisher-z is computed here
(``2 * norm.sf(sqrt(n - 3) * |atanh r|)``, causal-learn's statistic). RCIT runs
causal-learn's random Fourier features, statistic and null eigenvalues (``RIT``) and
replaces its ``1 - cdf`` of the weighted chi-square null by the survival function of the
same moment approximation (Lindsay-Pilla-Basak, Hall-Buckley-Eagleson,
Satterthwaite-Welch or chi-square). A survival function that underflows is reported as
:data:`P_VALUE_FLOOR`, never 0: such a p-value means "at most the floor", and the
``statistic`` column keeps the strength. The permutation nulls count null draws at least
as large as the statistic, ``(1 + count) / (1 + draws)``, so their smallest p-value is
``1 / (1 + draws)``: KCI with the spectral null (``kci_approx=False``, ``null_ss``
draws) and RCIT with ``rcit_approx="perm"`` (1,000 permutations).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pyro_personax.independence.catalog import TEST_NAMES
from pyro_personax.independence.encoding import (
    EncodedVariable,
    NotApplicable,
    integer_codes,
    kernel_input,
)
from pyro_personax.independence.hsic import hsic_gamma_test

__all__ = ["PairOutcome", "TestSettings", "TESTS", "P_VALUE_FLOOR", "run_test"]

#: Smallest p-value reported by a test that takes a survival function: the smallest
#: positive normal double. A survival function that underflows below it gives this value.
P_VALUE_FLOOR = float(np.finfo(np.float64).tiny)


def _floored(p: float) -> float:
    """``p`` from a survival function, raised to :data:`P_VALUE_FLOOR` where it underflowed."""
    return max(float(p), P_VALUE_FLOOR) if np.isfinite(p) else float(p)


@dataclass(frozen=True)
class TestSettings:
    """Settings of the pairwise tests (part of the cache key).

    Parameters
    ----------
    kci_max_n
        KCI runs on a random subsample of this many rows when a pair has more.
    kci_approx
        causal-learn KCI null: gamma approximation (``True``) or spectral simulation.
    rcit_approx
        causal-learn RIT null approximation (``"lpd4"``, ``"hbe"``, ``"gamma"``,
        ``"chi2"``, ``"perm"``).
    hsic_block_size
        Row block of the HSIC sums (memory knob).
    bins
        Quantile bins for continuous columns in chi-square / G-square (``None`` = such
        pairs are not applicable).
    """

    __test__ = False

    kci_max_n: int = 2000
    kci_approx: bool = True
    rcit_approx: str = "lpd4"
    hsic_block_size: int = 512
    bins: int | None = None

    def __post_init__(self):
        if self.kci_max_n < 10:
            raise ValueError(f"kci_max_n: expected an integer >= 10, found {self.kci_max_n}")
        if self.bins is not None and self.bins < 2:
            raise ValueError(f"bins: expected None or an integer >= 2, found {self.bins}")
        if self.rcit_approx not in ("lpd4", "hbe", "gamma", "chi2", "perm"):
            raise ValueError(
                f"rcit_approx: expected one of lpd4, hbe, gamma, chi2, perm, found {self.rcit_approx!r}"
            )
        if self.hsic_block_size < 1:
            raise ValueError(f"hsic_block_size: expected a positive integer, found {self.hsic_block_size}")

    def for_test(self, test: str) -> dict:
        """The settings that change the result of ``test`` (for the cache key)."""
        relevant = {
            "kci": {"kci_max_n": self.kci_max_n, "kci_approx": self.kci_approx},
            "rcit": {"rcit_approx": self.rcit_approx},
            "hsic": {},
            "fisherz": {},
            "chisq": {"bins": self.bins},
            "gsq": {"bins": self.bins},
        }
        return relevant[test]


@dataclass(frozen=True)
class PairOutcome:
    """Result of one test on one pair.

    Parameters
    ----------
    statistic, p_value
        Test statistic and p-value (``NaN`` unless ``status == "ok"``).
    n_test
        Rows the test ran on (smaller than the pair's complete rows for subsampled KCI).
    status
        ``"ok"``, ``"not_applicable"`` or ``"error"``.
    error
        Why the test did not give a p-value (empty when ``ok``).
    seconds
        Wall time of the test.
    """

    statistic: float
    p_value: float
    n_test: int
    status: str = "ok"
    error: str = ""
    seconds: float = 0.0


@contextlib.contextmanager
def _global_numpy_seed(seed: int):
    """causal-learn draws from numpy's global generator: seed it, then restore it."""
    state = np.random.get_state()  # noqa: NPY002 (causal-learn uses the global generator)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _kci(x: EncodedVariable, y: EncodedVariable, settings: TestSettings, seed: int):
    from causallearn.utils.KCI.KCI import KCI_UInd

    xa, ya = kernel_input(x), kernel_input(y)
    if x.n > settings.kci_max_n:
        rows = np.random.default_rng(seed).choice(x.n, size=settings.kci_max_n, replace=False)
        xa, ya = xa[np.sort(rows)], ya[np.sort(rows)]
        for name, arr in (("trait", xa), ("feature", ya)):
            if np.all(arr == arr[0]):
                raise ValueError(f"{name} is constant on the KCI subsample of {settings.kci_max_n} rows")
    with _global_numpy_seed(seed):
        stat, p = _kci_p_value(KCI_UInd(approx=settings.kci_approx), xa, ya)
    return stat, p, xa.shape[0]


def _kci_p_value(kci, xa: np.ndarray, ya: np.ndarray) -> tuple[float, float]:
    """``KCI_UInd.compute_pvalue`` with ``gamma.sf`` for its ``1 - gamma.cdf`` (module docstring)."""
    kx, ky = kci.kernel_matrix(xa, ya)
    stat, kxc, kyc = kci.HSIC_V_statistic(kx, ky)
    if kci.approx:
        shape, scale = kci.get_kappa(kxc, kyc)
        return float(stat), _floored(stats.gamma.sf(stat, shape, 0, scale))
    null = np.asarray(kci.null_sample_spectral(kxc, kyc)).ravel()
    return float(stat), float((1 + np.sum(null >= stat)) / (1 + null.size))


def _rcit(x: EncodedVariable, y: EncodedVariable, settings: TestSettings, seed: int):
    from causallearn.utils.RCIT.RCIT import RIT

    with _global_numpy_seed(seed):
        stat, p = _rit_p_value(RIT(approx=settings.rcit_approx), kernel_input(x), kernel_input(y))
    return stat, p, x.n


def _rit_p_value(rit, xa: np.ndarray, ya: np.ndarray) -> tuple[float, float]:
    """``RIT.compute_pvalue`` with survival functions for its ``1 - cdf`` (module docstring).

    The statistic, the random Fourier features (drawn in causal-learn's order from the
    global generator) and the null's eigenvalues are causal-learn's; only the tail
    probability is taken from the same null distribution's survival function.
    """
    from scipy.spatial.distance import pdist

    r = xa.shape[0]
    xa = (xa - xa.mean(axis=0)) / xa.std(axis=0, ddof=1)
    ya = (ya - ya.mean(axis=0)) / ya.std(axis=0, ddof=1)
    sigmas = []
    for a in (xa, ya):
        d = pdist(a[: min(r, 500)], metric="euclidean")  # causal-learn counts each distance twice:
        sigmas.append(np.median(d[d != 0]))  # the same median
    four_x = rit.random_fourier_features(xa, num_f=5, sigma=sigmas[0])
    four_y = rit.random_fourier_features(ya, num_f=5, sigma=sigmas[1])
    f_x = (four_x - four_x.mean(axis=0)) / four_x.std(axis=0, ddof=1)
    f_y = (four_y - four_y.mean(axis=0)) / four_y.std(axis=0, ddof=1)
    cxy = rit.matrix_cov(f_x, f_y)
    stat = float(r * np.sum(cxy**2))
    if rit.approx == "perm":
        null = np.empty(1000)
        for k in range(null.size):  # causal-learn's permutations, from the global generator
            perm = np.random.choice(np.arange(r), size=r, replace=False)  # noqa: NPY002
            null[k] = r * np.sum(rit.matrix_cov(f_x[perm], f_y) ** 2)
        return stat, float((1 + np.sum(null >= stat)) / (1 + null.size))
    res_x, res_y = f_x - f_x.mean(axis=0), f_y - f_y.mean(axis=0)
    res = (res_x[:, :, None] * res_y[:, None, :]).reshape(r, -1)  # column i * ny + j: x_i * y_j
    cov = 1 / r * res.T @ res
    if rit.approx == "chi2":
        from scipy.linalg import pinv

        stat = float(r * (cxy.ravel() @ (pinv(cov) @ cxy.ravel())))
        return stat, _floored(stats.chi2.sf(stat, cxy.size))
    eig = np.linalg.eigh(cov)[0]
    return stat, _floored(_weighted_chi2_sf(eig[eig > 0], stat, rit.approx))


def _weighted_chi2_sf(coeff: np.ndarray, x: float, approx: str) -> float:
    """``P(sum_i coeff_i chi2_1 > x)`` by the moment approximations of ``momentchi2``.

    The same approximations as ``momentchi2.sw`` (``"gamma"``), ``hbe`` and ``lpb4``
    (``"lpd4"``: a mixture of gammas, with the Hall-Buckley-Eagleson fallback that
    causal-learn uses when it fails or has fewer than four weights), as survival functions.
    """
    if approx == "gamma":
        u = np.sum(coeff**2) / np.sum(coeff) ** 2
        return float(stats.gamma.sf(x, a=0.5 / u, scale=2 * u * np.sum(coeff)))
    if approx == "lpd4" and coeff.size >= 4:
        with contextlib.suppress(Exception):
            from momentchi2 import utilities as mc

            moments = mc.get_weighted_sum_of_chi_squared_moments(coeff, 4)
            lam = mc.get_lambdatilde_p(mc.get_lambdatilde_1(moments[0], moments[1]), 4, moments, 1e-9)
            m_p = mc.deltaNmat_applied(lam, moments, 4)
            mu = mc.get_real_poly_roots(mc.get_Stilde_poly_coeff(m_p))
            weights = mc.gen_and_solve_VDM_system(m_p, mu)
            p = float(np.sum([w * stats.gamma.sf(x, a=1 / lam, scale=m * lam) for w, m in zip(weights, mu)]))
            if np.isfinite(p):
                return p
    k1, k2, k3 = np.sum(coeff), 2 * np.sum(coeff**2), 8 * np.sum(coeff**3)
    nu = 8 * k2**3 / k3**2
    return float(stats.gamma.sf(np.sqrt(2 * nu / k2) * (x - k1) + nu, a=nu / 2, scale=2))


def _hsic(x: EncodedVariable, y: EncodedVariable, settings: TestSettings, seed: int):
    stat, p = hsic_gamma_test(
        x.values,
        y.values,
        x_categorical=x.info.kind == "categorical",
        y_categorical=y.info.kind == "categorical",
        block_size=settings.hsic_block_size,
        seed=seed,
    )
    return stat, _floored(p), x.n


def _fisherz(x: EncodedVariable, y: EncodedVariable, settings: TestSettings, seed: int):
    for var in (x, y):
        if var.info.kind == "categorical" and var.num_distinct() > 2:
            raise NotApplicable(
                f"{var.info.name!r} is categorical with {var.num_distinct()} levels; "
                "Fisher-z needs numeric or binary columns"
            )
    data = np.column_stack([kernel_input(x), kernel_input(y)])
    # causal-learn's statistic (|r| = 1 becomes 1 - eps there too); its 1 - cdf becomes sf
    r = float(np.corrcoef(data.T)[0, 1])
    r = float(np.clip(r, -1 + np.finfo(float).eps, 1 - np.finfo(float).eps))
    stat = float(np.sqrt(x.n - 3) * abs(np.arctanh(r)))
    return stat, _floored(2 * stats.norm.sf(stat)), x.n


def _contingency(method: str):
    def run(x: EncodedVariable, y: EncodedVariable, settings: TestSettings, seed: int):
        from causallearn.utils.cit import CIT

        cx, cy = integer_codes(x, settings.bins), integer_codes(y, settings.bins)
        p = CIT(np.column_stack([cx, cy]), method)(0, 1)  # chi2.sf of causal-learn's statistic
        table = np.zeros((cx.max() + 1, cy.max() + 1))
        np.add.at(table, (cx, cy), 1.0)
        lam = "log-likelihood" if method == "gsq" else None
        stat = stats.chi2_contingency(table, correction=False, lambda_=lam).statistic
        return float(stat), _floored(p), x.n

    return run


TESTS: dict[str, Callable] = {
    "kci": _kci,
    "rcit": _rcit,
    "hsic": _hsic,
    "fisherz": _fisherz,
    "chisq": _contingency("chisq"),
    "gsq": _contingency("gsq"),
}
assert tuple(TESTS) == TEST_NAMES, "catalog.TEST_NAMES must list the tests of TESTS"


def run_test(test: str, x: EncodedVariable, y: EncodedVariable, settings: TestSettings, seed: int) -> PairOutcome:
    """Run one test on one pair; never raises for a failing test.

    Parameters
    ----------
    test
        A key of :data:`TESTS`.
    x, y
        Trait and feature over the pair's ``n`` complete rows.
    settings
        Test settings.
    seed
        Seed for every random choice of this test on this pair.

    Notes
    -----
    Numerical ``RuntimeWarning`` s inside a test (overflow, division by zero) are raised
    as errors, so a p-value computed from a degenerate quantity is never reported.

    Returns
    -------
    PairOutcome
        ``status="not_applicable"`` when the test does not apply, ``"error"`` with the
        exception text when it fails; ``p_value`` is then ``NaN``, never 0.
    """
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            stat, p, n_test = TESTS[test](x, y, settings, seed)
        if not np.isfinite(p):
            raise RuntimeError(f"{test} returned a non-finite p-value ({p})")
        status, error = "ok", ""
    except NotApplicable as err:
        stat, p, n_test, status, error = np.nan, np.nan, x.n, "not_applicable", str(err)
    except (ArithmeticError, ValueError, RuntimeError, AssertionError, np.linalg.LinAlgError, Warning) as err:
        stat, p, n_test = np.nan, np.nan, x.n
        status, error = "error", f"{type(err).__name__}: {err}"
    p = float(min(max(p, 0.0), 1.0)) if np.isfinite(p) else p
    return PairOutcome(stat, p, n_test, status, error, time.perf_counter() - start)
