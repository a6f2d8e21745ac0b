"""The verdict's rules: one sound InferenceData passes every check, and each check fails on
the one defect it is there to catch."""

import numpy as np
import pytest

from pyro_personax.inference.diagnostics import build_inference_data
from pyro_personax.inference.verdict import Check, Verdict, assess, cross_modal_ppc, elbo_rise
from pyro_personax.layout import LatentLayout

LAYOUT = LatentLayout(0, {"a": 1, "b": 1})  # a_1 -> b_1 is cross-modal: decided by the data
C, S, N = 2, 200, 120


def _idata(
    p_edge=(0.95, 0.95),
    alignment=0.99,
    log_weight_scale=0.1,
    elbo_tail="flat",
    replicate_dependence=True,
    warnings=(),
    model_options=None,
):
    rng = np.random.default_rng(0)
    probs = np.zeros((C, 2, 2))
    probs[:, 0, 1] = p_edge
    edges = (rng.random((C, S, 2, 2)) < probs[:, None]).astype(int)
    epochs = np.arange(100.0)
    rise = -100 * np.exp(-epochs / 10.0) if elbo_tail == "flat" else epochs
    elbo = [rise, rise + 1.0]
    log_weights = log_weight_scale * rng.standard_normal((C, S, N))

    def pair(dependent):
        s = rng.standard_normal(N)
        a = s[:, None] + 0.5 * rng.standard_normal((N, 2))
        b = (s if dependent else rng.standard_normal(N))[:, None] + 0.5 * rng.standard_normal((N, 2))
        return a[:, None, :], b[:, None, :]

    obs_a, obs_b = pair(True)
    reps = [pair(replicate_dependence) for _ in range(C * 10)]
    rep_a = np.stack([r[0] for r in reps]).reshape(C, 10, N, 1, 2)
    rep_b = np.stack([r[1] for r in reps]).reshape(C, 10, N, 1, 2)
    attrs = {"fit_warnings": list(warnings), "chain_alignment_abs_spearman": [[alignment, alignment]]}
    if model_options is not None:
        attrs["model_options"] = model_options
    return build_inference_data(
        LAYOUT,
        edges,
        edge_probabilities=probs,
        elbo=elbo,
        log_weights=log_weights,
        posterior_predictive={"a": rep_a, "b": rep_b},
        observed={"a": obs_a, "b": obs_b},
        attrs=attrs,
    )


def _status(verdict: Verdict) -> dict[str, str]:
    return {c.name: c.status for c in verdict.checks}


def test_a_sound_fit_passes_every_check_and_the_headline_says_so():
    verdict = assess(_idata(warnings=["chain 1 took long"]))
    assert set(_status(verdict).values()) == {"pass"}, verdict.to_markdown()
    assert verdict.trustworthy and verdict.headline.startswith("The graph passed every check")
    assert "chain 1 took long" in verdict.to_markdown() and "chain 1 took long" in verdict.to_html()


@pytest.mark.parametrize(
    "defect, check",
    [
        ({"p_edge": (0.95, 0.3)}, "restart agreement"),
        ({"alignment": 0.2}, "restart agreement"),
        ({"log_weight_scale": 6.0}, "guide (Pareto k)"),
        ({"elbo_tail": "rising"}, "ELBO convergence"),
        ({"p_edge": (0.05, 0.05)}, "identified edges"),
        ({"replicate_dependence": False}, "predictive check"),
    ],
)
def test_each_check_fails_on_its_defect_and_says_what_to_try(defect, check):
    verdict = assess(_idata(**defect))
    status = _status(verdict)
    assert status[check] == "fail", verdict.to_markdown()
    assert not verdict.trustworthy and check in verdict.headline
    failed = next(c for c in verdict.checks if c.name == check)
    assert failed.advice, "a failed check says what to try"
    others = {k: v for k, v in status.items() if k != check}
    assert "fail" not in others.values(), verdict.to_markdown()


@pytest.mark.parametrize("covariance, suggested", [("diagonal", True), ("full", False), (None, False)])
def test_the_guide_check_suggests_a_full_posterior_only_to_a_diagonal_fit(covariance, suggested):
    options = None if covariance is None else {"posterior_covariance": covariance}
    verdict = assess(_idata(log_weight_scale=6.0, model_options=options))
    check = next(c for c in verdict.checks if c.name == "guide (Pareto k)")
    assert check.status == "fail" and "encoder_hidden_dim" in check.advice
    assert ("posterior_covariance='full'" in check.advice) == suggested


def test_checks_that_cannot_run_say_why():
    idata = build_inference_data(LAYOUT, np.zeros((1, 10, 2, 2), dtype=int))
    status = _status(assess(idata))
    assert status["restart agreement"] == "not run"
    assert status["guide (Pareto k)"] == status["predictive check"] == status["ELBO convergence"] == "not run"


def test_elbo_rise_and_the_ppc_statistic():
    assert elbo_rise(np.arange(100.0)) == pytest.approx(0.1, abs=0.02)
    assert np.isnan(elbo_rise(np.arange(5.0)))
    result = cross_modal_ppc(_idata(replicate_dependence=False))
    ((pair, stats),) = result.items()
    assert pair == ("a", "b") and stats["observed"] > stats["replicated_mean"] and stats["p"] == 0.0
    with pytest.raises(ValueError, match="status: expected one of"):
        Check("x", "maybe", "")
