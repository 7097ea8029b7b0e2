"""Power, tests, SRM and the sequential test against known values and seeded simulation."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlinfra_kit.online_testing import (
    Router,
    interval_coverage,
    mde_proportions,
    msprt_p_values,
    peeking_simulation,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
    simulate_users,
    srm_check,
    welch_t_test,
    z_test_proportions,
)


@pytest.mark.parametrize(
    "p, mde, expected",
    [
        (0.5, 0.1, 388),  # Fleiss et al., pooled normal approximation: 387.3
        (0.10, 0.02, 3841),  # 10 % -> 12 %: 3840.8
    ],
)
def test_sample_size_proportions_textbook(p, mde, expected):
    assert sample_size_proportions(p, mde) == expected


def test_sample_size_means_textbook():
    assert sample_size_means(0.5, 1.0) == 63  # Cohen's d = 0.5, normal approximation: 62.8
    assert sample_size_means(0.2, 1.0) == 393


def test_power_and_mde_invert_the_sample_size():
    n = sample_size_proportions(0.1, 0.02)
    assert power_proportions(0.1, 0.02, n) == pytest.approx(0.8, abs=0.002)
    assert mde_proportions(0.1, n) == pytest.approx(0.02, rel=0.01)


def test_z_test_matches_a_hand_computation():
    r = z_test_proportions(100, 1000, 130, 1000)
    pooled = 230 / 2000
    z = 0.03 / np.sqrt(pooled * (1 - pooled) * 2 / 1000)
    from scipy.stats import norm

    assert r.p_value == pytest.approx(2 * norm.sf(z))
    assert r.ci_low < 0.03 < r.ci_high


def test_welch_interval_covers_the_true_difference():
    rng = np.random.default_rng(0)
    r = welch_t_test(rng.normal(0, 1, 400), rng.normal(0.5, 2, 300))
    assert r.significant and r.ci_low < 0.5 < r.ci_high


def test_srm_catches_a_52_48_split_at_a_sensible_size():
    assert srm_check({"a": 5200, "b": 4800}, {"a": 0.5, "b": 0.5}).flagged
    assert not srm_check({"a": 520, "b": 480}, {"a": 0.5, "b": 0.5}).flagged
    router = Router("srm", {"a": 0.5, "b": 0.5})
    counts = simulate_users(router, {"a": 0.1, "b": 0.1}, 4000, seed=1)
    assert not srm_check({k: v["users"] for k, v in counts.items()}, router.weights).flagged


def test_peeking_inflates_false_positives_and_msprt_does_not():
    result = peeking_simulation(0.1, n_per_arm=4000, looks=20, sims=1000, seed=3)
    margin = 3 * result["mc_standard_error"]
    assert result["fixed_horizon_final"] < 0.05 + margin
    assert result["fixed_horizon_any_look"] > 0.15
    assert result["sequential_any_look"] <= 0.05 + margin


def test_msprt_detects_a_real_difference():
    result = peeking_simulation(0.1, n_per_arm=8000, looks=10, sims=200, seed=1, lift=0.03)
    assert result["sequential_any_look"] > 0.8


def test_msprt_p_values_never_increase():
    p = msprt_p_values([5, 12, 30], [50, 100, 200], [9, 20, 45], [50, 100, 200])
    assert np.all(np.diff(p) <= 0) and np.all((p >= 0) & (p <= 1))


def test_novelty_effect_flatters_early_results():
    router = Router("novel", {"a": 0.5, "b": 0.5})
    early = simulate_users(
        router,
        {"a": 0.1, "b": 0.1},
        3000,
        seed=2,
        novelty=1.0,
        novelty_half_life=500,
        novelty_variant="b",
    )
    assert early["b"]["conversions"] > early["a"]["conversions"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sample_size_proportions(0.1, 0.02, alpha=1.5), "alpha"),
        (lambda: sample_size_proportions(0.1, 0.0), "non-zero"),
        (lambda: sample_size_proportions(0.95, 0.1), "rate"),
        (lambda: z_test_proportions(-1, 10, 2, 10), "successes"),
        (lambda: srm_check({"a": -1, "b": 5}, {"a": 0.5, "b": 0.5}), ">= 0"),
        (lambda: srm_check({"a": 1, "c": 5}, {"a": 0.5, "b": 0.5}), "variants"),
        (lambda: msprt_p_values([1], [0], [1], [1]), "users"),
        (lambda: welch_t_test([1.0], [1.0, 2.0]), "at least 2"),
        (lambda: simulate_users(Router("x", {"a": 1.0}), {"b": 0.1}, 10), "differ"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_msprt_is_valid_from_the_first_user():
    # one user per arm, 0 vs 1: a likelihood ratio near 1, not a certain difference
    assert msprt_p_values([0], [1], [1], [1])[0] > 0.9
    # an A/A test checked after every single user keeps its false positives under alpha
    for p in (0.02, 0.5):
        result = peeking_simulation(p, n_per_arm=1000, looks=1000, sims=400, seed=2)
        assert result["sequential_any_look"] <= 0.05 + 3 * result["mc_standard_error"]


def test_the_score_interval_agrees_with_its_test_where_wald_did_not():
    r = z_test_proportions(0, 100, 4, 1000)
    assert not r.significant and r.ci_low < 0 < r.ci_high
    r = z_test_proportions(100, 1000, 130, 1000)
    assert r.significant and 0 < r.ci_low < r.effect < r.ci_high


@settings(max_examples=200, deadline=None)
@given(
    n_a=st.integers(1, 400),
    n_b=st.integers(1, 400),
    fa=st.floats(0, 1),
    fb=st.floats(0, 1),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_the_interval_excludes_zero_exactly_when_the_test_rejects(n_a, n_b, fa, fb, alpha):
    sa, sb = round(fa * n_a), round(fb * n_b)
    r = z_test_proportions(sa, n_a, sb, n_b, alpha)
    assume(abs(r.p_value - alpha) > 1e-6)  # on the boundary, rounding decides
    assert r.ci_low <= r.effect <= r.ci_high
    assert r.significant == (not r.ci_low <= 0 <= r.ci_high)


def test_score_interval_coverage_where_wald_falls_short():
    cov = interval_coverage(0.02, 0.04, 100, 1000, sims=1000, seed=0)
    assert 0.93 <= cov["score"] <= 0.97 and cov["wald"] < 0.9


def test_srm_with_a_rolled_back_arm_and_bad_weights():
    after_rollback = {"baseline": 1.0, "candidate": 0.0}
    assert not srm_check({"baseline": 900, "candidate": 0}, after_rollback).flagged
    leaked = srm_check({"baseline": 900, "candidate": 3}, after_rollback)
    assert leaked.flagged and leaked.p_value == 0.0
    with pytest.raises(ValueError, match="sum to 1"):
        srm_check({"a": 10, "b": 10}, {"a": 0.5, "b": 0.6})


def test_welch_with_no_spread_in_either_arm():
    same = welch_t_test([1.0, 1.0, 1.0], [1.0, 1.0])
    assert (same.effect, same.p_value, same.ci_low, same.ci_high) == (0.0, 1.0, 0.0, 0.0)
    apart = welch_t_test([1.0, 1.0], [2.0, 2.0])
    assert apart.significant and apart.ci_low == apart.ci_high == 1.0
