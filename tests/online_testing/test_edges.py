"""The canary and the statistics at their edges: the exact error test's size at every base
rate (by enumeration), the latency test at its own boundary, what a canary can detect, and
every bad input answered with a clear error instead of a crash or a silent NaN."""

import math

import numpy as np
import pytest
from scipy import stats

from mlinfra_kit.online_testing import (
    Canary,
    Guardrails,
    Observation,
    canary_simulation,
    mde_proportions,
    msprt_p_values,
    power_proportions,
    srm_check,
    welch_t_test,
    z_test_proportions,
)
from mlinfra_kit.online_testing.canary import ArmData, guardrail_checks

SHARE = 0.05 / 15  # the default canary's per-test share: 3 guardrails x 5 steps


def exact_size(base_rate: float, n_base: int, n_cand: int, threshold: float) -> float:
    """The error test's false-alarm rate for identical arms, summed over every outcome."""
    kb = np.arange(n_base + 1)
    kc = np.arange(n_cand + 1)
    pb, pc = stats.binom.pmf(kb, n_base, base_rate), stats.binom.pmf(kc, n_cand, base_rate)
    size = 0.0
    for i in kb[pb > 1e-15]:
        for j in kc[pc > 1e-15]:
            base = ArmData(requests=n_base, errors=int(i), latencies=[1.0])
            cand = ArmData(requests=n_cand, errors=int(j), latencies=[1.0])
            check = guardrail_checks(base, cand, Guardrails(), threshold)[0]
            if check.fired:
                size += pb[i] * pc[j]
    return size


@pytest.mark.parametrize("base_rate", [0.0005, 0.005, 0.02, 0.1])
@pytest.mark.parametrize("n_cand", [50, 200])
def test_the_exact_error_test_stays_within_its_share_at_every_base_rate(base_rate, n_cand):
    assert exact_size(base_rate, 4 * n_cand, n_cand, SHARE) <= SHARE


def test_latency_at_its_own_boundary_is_not_rolled_back_beyond_its_share():
    rng = np.random.default_rng(0)
    g = Guardrails(max_latency_ratio=1.5)
    fired = 0
    runs = 3000
    for _ in range(runs):
        base = rng.lognormal(0.0, 1.0, 200)
        cand = 1.5 * rng.lognormal(0.0, 1.0, 200)  # exactly at the allowed ratio
        arms = ArmData(1, 0, latencies=list(base)), ArmData(1, 0, latencies=list(cand))
        fired += guardrail_checks(*arms, g, SHARE)[1].fired
    assert fired / runs <= SHARE + 3 * math.sqrt(SHARE / runs)


def test_an_identical_candidate_is_promoted_at_rare_error_rates():
    for base in (0.0005, 0.001):
        result = canary_simulation(
            rollouts=300,
            error_rate=(base, base),
            steps=(0.01, 0.05, 0.25, 0.5, 1.0),
            min_requests=50,
            seed=1,
        )
        assert result["rolled_back"] <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 300)


def test_a_canary_says_what_it_can_detect_before_it_starts():
    rows = Canary(min_requests=200).detectable(baseline_error_rate=0.01, baseline_quality=0.9)
    assert [r["share"] for r in rows] == [0.01, 0.05, 0.25, 0.5, 1.0]
    drops = [r["quality_drop"] for r in rows]
    assert all(0 < d < 0.2 for d in drops) and drops == sorted(drops, reverse=True)
    few = Canary(steps=(0.5, 1.0), min_requests=5).detectable(0.001, 0.99)
    assert few[0]["error_rate_increase"] > 0.5  # 5 requests see only a huge rise


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Observation("baseline", float("nan"), False), "latency_ms"),
        (lambda: Observation("baseline", -1.0, False), "latency_ms"),
        (lambda: Observation("candidate", 5.0, False, float("nan")), "quality"),
        (lambda: Observation("candidate", 5.0, False, 3.0), "quality must be in"),
        (lambda: Canary(steps=(1.0,)), "one-step canary"),
        (lambda: Canary().decide(), "no decision without data"),
        (
            lambda: guardrail_checks(ArmData(), ArmData(1, 0, latencies=[1.0]), Guardrails(), 0.01),
            "needs requests from both arms",
        ),
        (lambda: srm_check({"a": float("nan"), "b": 10}, {"a": 0.5, "b": 0.5}), "whole numbers"),
        (lambda: srm_check({"a": 10, "c": 1}, {"a": 0.5, "b": 0.5}), "variants"),
        (lambda: msprt_p_values([5], [3], [1], [3]), "cannot exceed"),
        (lambda: msprt_p_values([1], [3], [1], [3], tau=float("nan")), "tau"),
        (lambda: power_proportions(0.1, 0.01, 0), "n_per_arm"),
        (lambda: welch_t_test([1.0, float("nan"), 2.0], [1.0, 2.0]), "finite"),
        (lambda: mde_proportions(0.9, 50), "direction='down'"),
    ],
)
def test_bad_inputs_get_a_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_step_without_traffic_waits_after_an_advance():
    canary = Canary(steps=(0.5, 1.0), min_requests=5)
    for i in range(40):
        user = f"u{i}"
        canary.observe(user, Observation(canary.route(user), 10.0, False, 1.0))
        if canary.step == 1:
            break
    assert canary.step == 1 and canary.status == "running"
    with pytest.raises(ValueError, match="no decision without data"):
        canary.decide()


def test_an_arm_nobody_reached_counts_as_zero_and_is_flagged():
    result = srm_check({"a": 1000}, {"a": 0.5, "b": 0.5})
    assert result.flagged and result.observed == {"a": 1000, "b": 0}


def test_mde_searches_down_where_up_is_impossible():
    down = mde_proportions(0.9, 50, direction="down")
    assert 0 < down < 0.9 and mde_proportions(0.9, 50, direction="either") == down


def test_the_z_test_keeps_its_precision_at_huge_counts():
    result = z_test_proportions(0, 10**7, 1, 10**7)
    assert result.p_value == pytest.approx(0.3173, abs=1e-4)


def test_the_sweep_keeps_identical_candidates_within_budget_with_heavy_tails():
    from mlinfra_kit.online_testing import canary_sweep

    rows = canary_sweep(base_rates=(0.0001, 0.1), traffic=(50, 1000), rollouts=150, seed=3)
    assert len(rows) == 4 and all(r["budget"] == 0.05 for r in rows)
    for r in rows:
        assert r["rolled_back_low"] <= r["rolled_back"] <= r["rolled_back_high"]
        assert r["rolled_back"] <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 150), r
