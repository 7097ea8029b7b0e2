"""A/B statistics with SciPy: power, tests with intervals, SRM, and a sequential test.

Examples
--------
>>> sample_size_proportions(0.5, 0.1)          # 50 % -> 60 %, alpha 0.05, power 0.8
388
>>> sample_size_means(effect=0.5, sd=1.0)
63
>>> r = z_test_proportions(100, 1000, 130, 1000)
>>> round(r.effect, 3), r.significant
(0.03, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from mlinfra_kit.online_testing.router import check_weights

__all__ = [
    "SRMResult",
    "TestResult",
    "mde_proportions",
    "msprt_p_values",
    "power_proportions",
    "sample_size_means",
    "sample_size_proportions",
    "score_z",
    "srm_check",
    "welch_t_test",
    "z_test_proportions",
]


def _check_alpha(alpha: float, name: str = "alpha") -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"{name} must be in (0, 1), got {alpha}")


def _check_rate(p: float, name: str) -> None:
    if not 0 < p < 1:
        raise ValueError(f"{name} must be a rate in (0, 1), got {p}")


def _check_counts(successes: int, n: int, name: str) -> None:
    if n <= 0 or successes < 0 or successes > n:
        raise ValueError(f"{name}: need 0 <= successes <= n and n > 0, got {successes}/{n}")


def sample_size_proportions(
    p_baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per arm to detect an absolute lift ``mde`` over ``p_baseline`` with a
    two-sided two-proportion z-test (normal approximation, pooled variance under H0)."""
    _check_rate(p_baseline, "p_baseline")
    _check_rate(p_baseline + mde, "p_baseline + mde")
    _check_alpha(alpha)
    _check_alpha(power, "power")
    if mde == 0:
        raise ValueError("mde must be non-zero: no sample detects a zero effect")
    p1, p2 = p_baseline, p_baseline + mde
    pooled = (p1 + p2) / 2
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    n = (
        z_a * math.sqrt(2 * pooled * (1 - pooled)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2 / mde**2
    return math.ceil(n)


def power_proportions(p_baseline: float, mde: float, n_per_arm: int, alpha: float = 0.05) -> float:
    """The power of the two-sided z-test with ``n_per_arm`` users per arm."""
    if n_per_arm < 1:
        raise ValueError(f"n_per_arm must be at least 1, got {n_per_arm}")
    _check_rate(p_baseline, "p_baseline")
    _check_rate(p_baseline + mde, "p_baseline + mde")
    _check_alpha(alpha)
    p1, p2 = p_baseline, p_baseline + mde
    pooled = (p1 + p2) / 2
    se0 = math.sqrt(2 * pooled * (1 - pooled) / n_per_arm)
    se1 = math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n_per_arm)
    z_a = stats.norm.ppf(1 - alpha / 2)
    return float(
        stats.norm.cdf((abs(mde) - z_a * se0) / se1) + stats.norm.cdf((-abs(mde) - z_a * se0) / se1)
    )


def mde_proportions(
    p_baseline: float,
    n_per_arm: int,
    alpha: float = 0.05,
    power: float = 0.8,
    direction: str = "up",
) -> float:
    """The smallest absolute change the test detects with ``power`` at ``n_per_arm``: a
    rise (``direction="up"``), a fall (``"down"``, e.g. a quality near 1 that drops), or
    whichever is smaller (``"either"``).

    >>> round(mde_proportions(0.1, 500), 3), round(mde_proportions(0.9, 500, direction="down"), 3)
    (0.059, 0.059)
    """
    if n_per_arm < 2:
        raise ValueError(f"n_per_arm must be at least 2, got {n_per_arm}")
    _check_rate(p_baseline, "p_baseline")
    ways = {"up": [(1, 1 - p_baseline)], "down": [(-1, p_baseline)]}
    ways["either"] = ways["up"] + ways["down"]
    if direction not in ways:
        raise ValueError(f"direction must be 'up', 'down' or 'either', got {direction!r}")
    found = []
    for sign, room in ways[direction]:
        far = room - 1e-9

        def short(d: float, sign: int = sign) -> float:
            return power_proportions(p_baseline, sign * d, n_per_arm, alpha) - power

        if short(far) >= 0:
            found.append(float(optimize.brentq(short, 1e-9, far)))
    if not found:
        other = {"up": " (a fall may be: direction='down')", "down": " (direction='up')"}
        raise ValueError(
            f"{n_per_arm} users per arm cannot reach power {power} for a change {direction} from "
            f"{p_baseline}{other.get(direction, '')}"
        )
    return min(found)


def sample_size_means(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm to detect a difference ``effect`` in means with standard deviation
    ``sd`` (two-sided, normal approximation)."""
    _check_alpha(alpha)
    _check_alpha(power, "power")
    if effect == 0 or sd <= 0:
        raise ValueError("effect must be non-zero and sd positive")
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return math.ceil(2 * (z_a + z_b) ** 2 * sd**2 / effect**2)


@dataclass(frozen=True)
class TestResult:
    """B minus A: the effect, its confidence interval, and the p-value."""

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def _restricted_rates(
    sa: float, na: float, sb: float, nb: float, delta: float
) -> tuple[float, float]:
    """Maximum-likelihood rates of arms A and B under the constraint ``pb - pa = delta``
    (the closed form of Miettinen and Nurminen, 1985)."""
    p1, p2, theta = sb / nb, sa / na, na / nb
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta**2 + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b**3 / (3 * a) ** 3 - b * c / (6 * a**2) + d / (2 * a)
    u = math.copysign(math.sqrt(max(b**2 / (3 * a) ** 2 - c / (3 * a), 0.0)), v)
    ratio = 0.0 if u == 0 else max(-1.0, min(1.0, v / u**3))
    w = (math.pi + math.acos(ratio)) / 3
    rb = min(max(2 * u * math.cos(w) - b / (3 * a), 0.0), 1.0)
    return min(max(rb - delta, 0.0), 1.0), rb


def score_z(sa: int, na: int, sb: int, nb: int, delta: float) -> float:
    """The score statistic for ``pb - pa = delta`` from ``sa`` of ``na`` and ``sb`` of
    ``nb``: the observed difference minus delta, over its standard error at the rates
    that maximise the likelihood under that constraint (at delta 0: the pooled z).
    Positive when B's rate exceeds A's by more than delta.

    >>> round(score_z(100, 1000, 130, 1000, 0.0), 3)
    2.103
    """
    if delta == 0:  # the pooled rate, in closed form: exact at any n
        ra = rb = (sa + sb) / (na + nb)
    else:
        ra, rb = _restricted_rates(sa, na, sb, nb, delta)
    se = math.sqrt(ra * (1 - ra) / na + rb * (1 - rb) / nb)
    diff = sb / nb - sa / na - delta
    if se == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / se


def z_test_proportions(
    successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05
) -> TestResult:
    """Two-sided two-proportion z-test (the score test: pooled variance under H0), with
    the **score interval** that inverts the same test: every difference ``delta`` the
    test would not reject at ``alpha`` (Farrington-Manning / Miettinen-Nurminen without
    the small-sample factor). So the interval excludes 0 exactly when ``p < alpha``, and
    it keeps its coverage for small or unequal arms, where the Wald interval does not.

    >>> r = z_test_proportions(0, 100, 4, 1000)   # the Wald interval excluded 0 here
    >>> r.significant, r.ci_low < 0 < r.ci_high
    (False, True)
    """
    _check_counts(successes_a, n_a, "arm A")
    _check_counts(successes_b, n_b, "arm B")
    _check_alpha(alpha)
    effect = successes_b / n_b - successes_a / n_a
    z0 = score_z(successes_a, n_a, successes_b, n_b, 0.0)
    p_value = 1.0 if z0 == 0 else float(2 * stats.norm.sf(abs(z0)))
    crit = stats.norm.ppf(1 - alpha / 2)

    def excess(delta: float) -> float:
        return abs(score_z(successes_a, n_a, successes_b, n_b, delta)) - crit

    low = -1.0 if excess(-1 + 1e-12) <= 0 else optimize.brentq(excess, -1 + 1e-12, effect)
    high = 1.0 if excess(1 - 1e-12) <= 0 else optimize.brentq(excess, effect, 1 - 1e-12)
    return TestResult(effect, float(low), float(high), p_value, alpha)


def welch_t_test(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> TestResult:
    """Welch's t-test (unequal variances) for a difference in means, with its interval."""
    _check_alpha(alpha)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        raise ValueError("each arm needs at least 2 observations")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("welch_t_test needs finite observations: drop or fix the NaN/inf values")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    effect = float(y.mean() - x.mean())
    if va + vb == 0:  # no spread in either arm: the difference is known exactly
        return TestResult(effect, effect, effect, 1.0 if effect == 0 else 0.0, alpha)
    result = stats.ttest_ind(y, x, equal_var=False)
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    half = stats.t.ppf(1 - alpha / 2, df) * math.sqrt(va + vb)
    return TestResult(effect, effect - half, effect + half, float(result.pvalue), alpha)


@dataclass(frozen=True)
class SRMResult:
    """A sample-ratio-mismatch check: the chi-square p-value, whether it is flagged, and
    the observed and expected counts."""

    p_value: float
    flagged: bool
    observed: dict[str, int]
    expected: dict[str, float]


def srm_check(
    counts: Mapping[str, int], weights: Mapping[str, float], alpha: float = 0.001
) -> SRMResult:
    """Sample-ratio mismatch: does the observed split fit the configured weights?

    A tiny p-value means assignment or logging is broken, and the experiment's results
    cannot be trusted, whatever they say. The usual threshold is strict (0.001).
    """
    _check_alpha(alpha)
    unknown = sorted(set(counts) - set(weights))
    if unknown:
        raise ValueError(f"counts have variants {unknown} that the weights do not")
    # A variant nobody reached yet is a count of 0 (and, where it should get users, a mismatch).
    counts = {k: counts.get(k, 0) for k in weights}
    bad = {
        k: c
        for k, c in counts.items()
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 0
    }
    if bad:
        raise ValueError(f"counts must be whole numbers >= 0, got {bad}")
    weights = check_weights(weights)
    total = sum(counts.values())
    if total == 0:
        raise ValueError("no users counted yet")
    expected = {k: total * weights[k] for k in weights}
    # An arm with weight 0 (a rolled-back canary) must get nobody: anyone there is a
    # mismatch for certain. The test runs on the arms that should get users.
    if any(counts[k] for k, w in weights.items() if w == 0):
        return SRMResult(0.0, True, dict(counts), expected)
    live = [k for k, w in weights.items() if w > 0]
    if len(live) < 2:
        return SRMResult(1.0, False, dict(counts), expected)
    p = float(stats.chisquare([counts[k] for k in live], [expected[k] for k in live]).pvalue)
    return SRMResult(p, p < alpha, dict(counts), expected)


def msprt_p_values(
    successes_a: np.ndarray,
    n_a: np.ndarray,
    successes_b: np.ndarray,
    n_b: np.ndarray,
    tau: float = 0.05,
) -> np.ndarray:
    """Always-valid p-values of the mixture sequential probability ratio test (mSPRT).

    Inputs are cumulative counts at each look (arrays of the same shape; extra leading
    dimensions are independent experiments). With a normal mixture of scale ``tau`` over
    the effect, the likelihood ratio of the observed difference is

        Lambda_n = sqrt(V / (V + n tau^2)) * exp(n^2 tau^2 d^2 / (2 V (V + n tau^2)))

    with ``d`` the difference in rates, ``V`` the per-pair variance and ``n`` the pairs
    seen. ``p_n = min(1, 1 / max_{k<=n} Lambda_k)`` may be checked after every look: the
    chance that it ever drops below alpha under no difference is at most alpha.

    ``V`` is estimated under the null, from the pooled rate with one success and one
    failure added (``(s_a + s_b + 1) / (n_a + n_b + 2)``), so it cannot collapse to 0 in
    the first looks: one user with 0 and one with 1 is a likelihood ratio near 1, not a
    certainty. Valid from the first user (the notebook checks an A/A test after every user).
    """
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau}")
    sa, na, sb, nb = (np.asarray(v, dtype=float) for v in (successes_a, n_a, successes_b, n_b))
    if not all(np.isfinite(v).all() for v in (sa, na, sb, nb)):
        raise ValueError("counts must be finite numbers")
    if (na <= 0).any() or (nb <= 0).any() or (sa < 0).any() or (sb < 0).any():
        raise ValueError("counts must be non-negative and every look must have users")
    if (sa > na).any() or (sb > nb).any():
        raise ValueError("successes cannot exceed the users counted at the same look")
    pa, pb = sa / na, sb / nb
    n = np.minimum(na, nb)
    pooled = (sa + sb + 1) / (na + nb + 2)
    variance = 2 * pooled * (1 - pooled)
    t2 = tau**2
    log_lr = 0.5 * np.log(variance / (variance + n * t2)) + n**2 * t2 * (pb - pa) ** 2 / (
        2 * variance * (variance + n * t2)
    )
    running = np.maximum.accumulate(log_lr, axis=-1)
    return np.minimum(1.0, np.exp(-running))
