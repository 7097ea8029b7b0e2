"""The comparison engine on synthetic measurements with a known answer: a 1.3x ratio is
found with an interval that covers it, an A/A comparison is never "held", rounds are
interleaved and stop when the interval is narrow, the verdict is settled or the budget is
spent; lessons built from it carry their outcome, estimate, interval and threshold."""

import math
import random

import pytest

from mlinfra_kit.comparison import accuracy_difference, bootstrap_difference, compare, paired
from mlinfra_kit.results import Lesson, lessons_markdown


def noisy(value, rng, sigma=0.08):
    """A measurement of ``value`` with lognormal noise, as a rate on a shared machine."""
    return value * math.exp(rng.gauss(0, sigma))


def test_a_known_ratio_is_found_with_an_interval_that_covers_it():
    rng = random.Random(0)
    c = compare(lambda: noisy(1000, rng), lambda: noisy(1300, rng), max_rounds=20, rel_width=0.1)
    lo, hi = c.interval
    assert lo < 1.3 < hi and abs(c.estimate - 1.3) < 0.1
    assert c.verdict(at_least=1.1) == "held"
    assert c.verdict(at_least=1.6) == "not_held"
    assert 0.01 <= c.noise < 0.3


def test_lower_is_better_turns_the_ratio_into_how_many_times_faster():
    rng = random.Random(1)
    c = compare(lambda: noisy(2.0, rng), lambda: noisy(1.0, rng), lower_is_better=True)
    assert 1.7 < c.estimate < 2.3 and c.verdict(at_least=1.2) == "held"


def test_a_against_a_is_not_held():
    # The same variant on both sides, heavy noise, few rounds: a 99 % interval with the noise
    # floor calls it held in about 1 % of seeds (the price of any test at that level), and
    # an A/A whose rounds agree exactly is inconclusive.
    outcomes = []
    for seed in range(500):
        rng = random.Random(seed)
        c = compare(
            lambda r=rng: noisy(500, r, 0.15), lambda r=rng: noisy(500, r, 0.15), max_rounds=6
        )
        outcomes.append(c.verdict(at_least=1.0))
    assert outcomes.count("held") <= 0.02 * len(outcomes)
    assert outcomes.count("inconclusive") >= 0.95 * len(outcomes)
    same = paired([500, 520, 480, 510], [500, 520, 480, 510])
    assert same.verdict(at_least=1.0) == "inconclusive" and same.estimate == 1.0


def test_an_effect_below_the_noise_floor_is_not_called():
    # A real 3 % gain measured with 20 % run-to-run noise: many rounds narrow the interval,
    # but the effect stays below what one setting varies by between rounds.
    c = paired(
        [100, 120, 85, 110, 95, 118, 88, 104], [103, 123.6, 87.6, 113.3, 97.9, 121.5, 90.6, 107]
    )
    assert c.interval[0] > 1.0 and c.noise > 0.03
    assert c.verdict(at_least=1.0) == "inconclusive"
    assert "noise" in c.settle_hint() and "noise" in c.settle_hint(at_least=1.0)


def test_the_hint_reads_the_estimate_against_the_claims_threshold():
    """An estimate of about 1.00x against a claim of "at most 15 % slower" (at least 1/1.15)
    sits 15 % above its threshold, beyond the noise floor: only the interval's width keeps
    it open, so the hint asks for more rounds, not for a quieter machine."""
    c = paired([100, 104, 96], [101, 97, 104])
    assert c.interval[0] < 1 / 1.15 < c.estimate / (1 + c.noise)
    assert c.verdict(at_least=1 / 1.15) == "inconclusive"
    assert "rounds" in c.settle_hint(at_least=1 / 1.15)
    assert "noise" in c.settle_hint()  # against no change, 1.00x is within the noise
    assert "noise of the claim's threshold" in c.settle_hint(at_least=1.0)
    assert "noise" in c.settle_hint(within=1.02)


def test_rounds_alternate_order_and_stop_at_the_budget():
    order = []
    c = compare(
        lambda: order.append("A") or 1.0,
        lambda: order.append("B") or 1.0,
        warmup=1,
        min_rounds=4,
        max_rounds=4,
    )
    assert order == ["A", "B"] + ["A", "B", "B", "A", "A", "B", "B", "A"]
    assert c.repeats == 4
    rng = random.Random(2)
    slow = compare(
        lambda: noisy(1, rng, 0.5), lambda: noisy(1, rng, 0.5), budget_s=1e-9, max_rounds=50
    )
    assert slow.repeats == 3  # min_rounds, then the budget was spent


def test_a_settled_verdict_stops_early():
    rng = random.Random(3)
    c = compare(lambda: noisy(100, rng), lambda: noisy(300, rng), at_least=1.2, max_rounds=30)
    assert c.repeats == 3 and c.verdict(at_least=1.2) == "held"


def test_a_narrow_interval_across_the_threshold_is_measured_on():
    """3 % better, asked about 5 %: three rounds give an interval under 10 % wide that still
    straddles 1.05; the engine goes on until the claim is settled."""
    rng = random.Random(5)
    c = compare(
        lambda: noisy(100, rng, 0.005), lambda: noisy(103, rng, 0.005), at_least=1.05, max_rounds=30
    )
    assert c.repeats > 3 and c.verdict(at_least=1.05) == "not_held"


def test_a_claim_of_about_the_same_is_measured_until_settled():
    """Equal speeds, asked "within 5 % either way" (``within=``): the rounds go on past the
    10 % width the engine accepts without a claim, until the interval lies within 5 %."""
    rng = random.Random(7)
    c = compare(
        lambda: noisy(100, rng, 0.03), lambda: noisy(100, rng, 0.03), within=1.05, max_rounds=40
    )
    assert c.repeats > 3 and c.verdict(within=1.05) == "held"
    with pytest.raises(ValueError, match="at most one claim"):
        compare(lambda: 1.0, lambda: 1.0, at_least=1.0, within=1.05)


def test_rounds_go_on_until_another_claim_on_the_same_measurements_is_settled_too():
    """The first claim settles at three rounds; ``until`` (here: six rounds seen) keeps
    them going, and never past ``max_rounds``."""
    rng = random.Random(3)
    seen = []
    c = compare(
        lambda: noisy(100, rng),
        lambda: seen.append(1) or noisy(300, rng),
        warmup=0,
        at_least=1.2,
        max_rounds=30,
        until=lambda: len(seen) >= 6,
    )
    assert c.repeats == 6 and c.verdict(at_least=1.2) == "held"
    capped = compare(lambda: 1.0, lambda: 3.0, at_least=1.2, max_rounds=4, until=lambda: False)
    assert capped.repeats == 4


def test_within_says_two_variants_are_about_the_same():
    rng = random.Random(4)
    c = compare(lambda: noisy(100, rng, 0.02), lambda: noisy(101, rng, 0.02), max_rounds=12)
    assert c.verdict(within=1.2) == "held"
    far = paired([100, 101, 99], [200, 205, 198])
    assert far.verdict(within=1.2) == "not_held"


def test_differences_for_accuracy_over_seeds_or_folds():
    c = paired([0.80, 0.82, 0.79, 0.81], [0.85, 0.86, 0.84, 0.87], kind="difference")
    assert 0.03 < c.estimate < 0.07 and c.verdict(at_least=0.0) == "held"
    assert c.verdict(within=0.01) == "not_held"


def test_bad_inputs_say_what_to_fix():
    with pytest.raises(ValueError, match="as many B as A"):
        paired([1, 2], [1])
    with pytest.raises(ValueError, match="positive"):
        paired([0, 1], [1, 1])
    with pytest.raises(ValueError, match="finite"):
        paired([float("nan")], [1])
    with pytest.raises(ValueError, match="kind"):
        paired([1], [1], kind="speed")
    with pytest.raises(ValueError, match="one of at_least"):
        paired([1, 2], [1, 2]).verdict()
    with pytest.raises(ValueError, match="min_rounds"):
        compare(lambda: 1.0, lambda: 1.0, min_rounds=1)


def test_a_bootstrap_interval_over_the_evaluation_items():
    right = [1] * 90 + [0] * 10  # 0.90 accuracy, against a published 0.905
    c = bootstrap_difference(len(right), lambda idx: (0.905, sum(right[i] for i in idx) / len(idx)))
    lo, hi = c.interval
    assert lo < 0 < hi and c.verdict(at_least=0.0) == "inconclusive"
    assert hi - lo > 0.05  # 100 items: a few points either way


def test_accuracy_on_the_same_items_paired():
    rng = random.Random(0)
    a = [rng.random() < 0.70 for _ in range(2000)]
    b = [right or rng.random() < 0.5 for right in a]  # right where A is, and on half the rest
    c = accuracy_difference(a, b, names=("a", "b"))
    lo, hi = c.interval
    assert lo < 0.15 < hi  # the true gain: half of A's 30 % misses
    assert c.verdict(at_least=0.05) == "held" and c.verdict(within=0.01) == "not_held"
    same = accuracy_difference(a, a)
    assert same.estimate == 0 and same.verdict(at_least=0.0) == "inconclusive"
    with pytest.raises(ValueError, match="on the same items"):
        accuracy_difference(a, b[:10])


def test_lessons_record_their_outcome_and_render_three_ways():
    c = paired([100, 102, 98, 101], [131, 133, 126, 130])
    held = Lesson.compared("b_is_faster", "B is faster", "rps", c, at_least=1.1)
    assert (held.outcome, held.threshold, held.id) == ("held", 1.1, "b_is_faster")
    assert held.interval[0] < held.estimate < held.interval[1]
    unsure = Lesson.compared("b_is_2x", "B is twice as fast", "rps", c, at_least=1.3)
    assert unsure.outcome == "inconclusive" and "to settle it" in unsure.observed
    text = lessons_markdown([held, unsure, Lesson("x", "y", False)])
    assert "- B is faster: rps: 1.30x" in text
    assert "**Inconclusive in this run:** B is twice as fast" in text
    assert "**Did not hold in this run:** x" in text
    with pytest.raises(ValueError, match="outcome"):
        Lesson("x", "y", outcome="maybe")
    with pytest.raises(ValueError, match="holds= or outcome="):
        Lesson("x", "y")


def test_a_ratio_below_one_reads_the_other_way_round_from_the_printed_estimate():
    c = paired([100.0, 100.5, 99.5, 100.2], [95.6, 95.65, 95.55, 95.6], names=("A", "B"))
    assert c.interval[1] < 1 and 0.955 < c.estimate < 0.96  # printed 0.96x; 1 / 0.956 is 1.05
    assert c.describe().startswith("0.96x") and "i.e. B 1.04x worse" in c.describe()


def test_a_bound_near_no_change_is_printed_with_the_side_it_ends_on():
    c = paired([100.0, 100.0, 100.0, 100.0], [101.5, 102.5, 103.5, 103.0], names=("A", "B"))
    lo, hi = c.interval
    assert f"{lo:.2f}" == "1.00" and lo > 1  # two decimals would read as touching 1
    assert f"[{lo:.3f}, {hi:.3f}]" in c.describe()
    near = paired([100.0] * 4, [108.0, 110.0, 112.0, 111.0])  # the upper bound near 1.13
    hi = near.interval[1]
    assert f"{hi:.3f}]" in near.describe(at_least=round(hi, 2))
    assert f"{hi:.2f}]" in near.describe(at_least=2.0)


def test_medians_that_disagree_with_the_interval_are_named():
    """A machine whose speed moves between rounds: each round's ratio is about 1, the ratio
    of the medians is not, and the description says so (and only then)."""
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    moved = paired(a, [1.0, 2.0, 3.0, 4.4, 5.0, 6.0, 7.0], lower_is_better=True)
    assert moved.medians_ratio() == pytest.approx(4 / 4.4)
    lo, hi = moved.interval
    assert lo <= moved.estimate <= hi and not lo <= moved.medians_ratio() <= hi
    assert "the ratio of the two sides' medians, 0.91x, lies outside the interval" in (
        moved.describe()
    )
    steady = paired(a, [v * 1.1 for v in a])
    assert "medians" not in steady.describe()
    assert paired([1.0, 2.0], [1.5, 2.5], kind="difference").medians_ratio() is None


def test_a_rounds_cap_from_the_environment_bounds_every_comparison(monkeypatch):
    monkeypatch.setenv("MLINFRA_MAX_ROUNDS", "2")
    assert compare(lambda: 1.0, lambda: 1.0, rel_width=0.0, max_rounds=10).repeats == 2
    monkeypatch.setenv("MLINFRA_MAX_ROUNDS", "one")
    with pytest.raises(ValueError, match="MLINFRA_MAX_ROUNDS must be a whole number"):
        compare(lambda: 1.0, lambda: 1.0)
