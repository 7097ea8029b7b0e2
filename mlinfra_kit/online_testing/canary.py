"""Canary rollout: give a candidate a growing share of traffic, roll back on a breach.

At each step (1 % → 5 % → 25 % → 50 % → 100 % by default) the controller waits for
``min_requests`` candidate requests, then runs three **one-sided tests** on everything the
candidate has served so far against everything the baseline has: is its error rate higher,
its latency (at a quantile) slower, its quality lower, each by more than the allowed margin?
A guardrail fires only on evidence (a p-value below its share of the rollout's
``false_rollback`` budget), so an identical candidate is promoted, and the decision log
says which test fired, with its statistic, threshold and sample. Users keep their variant
within a step (the router is sticky), and growing the share moves users only from
baseline to candidate.

(Over 450 lines: the three guardrail tests, the controller and its decision log share one
state, read together.)

Examples
--------
>>> canary = Canary(steps=(0.1, 1.0), min_requests=20)
>>> for i in range(2000):
...     user = f"u{i}"
...     variant = canary.route(user)
...     canary.observe(user, Observation(variant, latency_ms=10.0, error=False, quality=1.0))
>>> canary.status
'completed'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from scipy import stats

from mlinfra_kit.online_testing.router import Router
from mlinfra_kit.online_testing.stats import score_z

__all__ = [
    "ArmData",
    "ArmSummary",
    "Canary",
    "CanaryDecision",
    "CanaryStatus",
    "GuardrailCheck",
    "Guardrails",
    "MIN_BASELINE_LATENCIES",
    "Observation",
    "guardrail_checks",
    "latency_window",
    "run_canary",
    "slower_p",
]


@dataclass(frozen=True)
class Observation:
    """One served request: which variant, how long, whether it failed, how good it was."""

    variant: str
    latency_ms: float
    error: bool
    quality: float | None = None  # e.g. 1.0 if the predicted tag was right, else 0.0

    def __post_init__(self):
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError(
                f"latency_ms must be a finite number of milliseconds >= 0, got {self.latency_ms}: "
                "a request that never answered is an error (error=True) with the time waited"
            )
        if self.quality is not None and not (
            math.isfinite(self.quality) and 0 <= self.quality <= 1
        ):
            raise ValueError(
                f"quality must be in [0, 1] (e.g. 1.0 for a right answer), got {self.quality}: "
                "rescale a score on another range, or pass None where there is none"
            )


@dataclass(frozen=True)
class Guardrails:
    """What counts as a breach, each a one-sided test of the candidate against the baseline:

    - error rate: higher than the baseline's by more than ``max_error_rate_increase``. At
      the default 0, an **exact** test: given the errors both arms made, is the candidate's
      share of them larger than its share of the requests (a conditional binomial test, as
      Fisher's), so its false alarms stay within its share of the budget at any error rate
      and traffic, rare errors included; with a margin, a score test for two proportions;
    - latency: the candidate's ``latency_quantile`` (e.g. p95) above ``max_latency_ratio``
      times the baseline's, tested as "more than 1 - quantile of its requests are slower
      than that limit" (a binomial test: a quantile, not a 30-request p99). The baseline's
      quantile is itself estimated: the limit uses its upper confidence bound (an order
      statistic) at half the test's share, the binomial test the other half;
    - quality: lower than the baseline's by more than ``max_quality_drop`` (a score test;
      quality per request in [0, 1], e.g. 1 for a right answer).

    ``false_rollback`` is the chance, over the whole rollout, of rolling back a candidate
    that is as good as the baseline: it is split evenly over the three tests at every
    step's decision (Bonferroni), so it holds whatever the number of looks.
    """

    max_error_rate_increase: float = 0.0
    max_latency_ratio: float = 1.5
    latency_quantile: float = 0.95
    max_quality_drop: float = 0.01
    false_rollback: float = 0.05

    def __post_init__(self):
        if (
            self.max_error_rate_increase < 0
            or self.max_latency_ratio < 1
            or self.max_quality_drop < 0
        ):
            raise ValueError(
                "guardrails need max_error_rate_increase >= 0, "
                "max_latency_ratio >= 1 and max_quality_drop >= 0"
            )
        if not 0 < self.latency_quantile < 1:
            raise ValueError(f"latency_quantile must be in (0, 1), got {self.latency_quantile}")
        if not 0 < self.false_rollback < 1:
            raise ValueError(f"false_rollback must be in (0, 1), got {self.false_rollback}")


@dataclass
class ArmData:
    """What one arm has served so far: request, error and quality counts, latencies."""

    requests: int = 0
    errors: int = 0
    quality_n: int = 0
    quality_sum: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, observation: Observation) -> None:
        self.requests += 1
        self.errors += int(observation.error)
        self.latencies.append(observation.latency_ms)
        if observation.quality is not None:
            self.quality_n += 1
            self.quality_sum += observation.quality

    def extend(
        self,
        errors: int,
        latencies: np.ndarray,
        quality_n: int = 0,
        quality_sum: float = 0.0,
        keep_latencies: bool = True,
    ) -> None:
        """Add a block of requests at once (for simulations). ``keep_latencies=False``
        counts them without storing their latencies, for a simulation that tests latency
        on windows of its own (storing is most of the cost of a large block)."""
        self.requests += len(latencies)
        self.errors += int(errors)
        if keep_latencies:
            self.latencies.extend(np.asarray(latencies, dtype=float).tolist())
        self.quality_n += int(quality_n)
        self.quality_sum += float(quality_sum)


@dataclass(frozen=True)
class ArmSummary:
    """What one arm served up to a canary decision."""

    requests: int
    error_rate: float
    p99_ms: float
    quality: float  # nan where no request had a quality yet
    quality_n: int

    @classmethod
    def of(cls, arm: ArmData) -> ArmSummary:
        return cls(
            requests=arm.requests,
            error_rate=arm.errors / arm.requests if arm.requests else math.nan,
            p99_ms=float(np.percentile(arm.latencies, 99)) if arm.latencies else math.nan,
            quality=arm.quality_sum / arm.quality_n if arm.quality_n else math.nan,
            quality_n=arm.quality_n,
        )


@dataclass(frozen=True)
class GuardrailCheck:
    """One guardrail's test at one decision: its statistic, one-sided p-value, the
    threshold it is compared with (its share of the false-rollback budget), the candidate
    sample it used, and a sentence with the numbers."""

    name: Literal["error_rate", "latency", "quality"]
    statistic: float
    p_value: float
    threshold: float
    sample: int
    detail: str

    @property
    def fired(self) -> bool:
        return self.p_value < self.threshold


def guardrail_checks(
    baseline: ArmData,
    candidate: ArmData,
    guardrails: Guardrails,
    threshold: float,
    latencies: tuple[Sequence[float], Sequence[float]] | None = None,
) -> list[GuardrailCheck]:
    """The three one-sided tests of ``candidate`` against ``baseline``, each compared
    with ``threshold``: error rate and quality on all the data so far (quality skipped
    until both arms have some); latency on ``latencies`` = (baseline's, candidate's) from
    the same stretch of time (a :class:`Canary` passes the current step's), because
    latency drifts with the machine's load and an old baseline would blame the candidate
    for it; by default, on all the data."""
    g = guardrails
    base_ms, cand_ms = latencies or (baseline.latencies, candidate.latencies)
    if not baseline.requests or not candidate.requests or not len(base_ms) or not len(cand_ms):
        raise ValueError(
            "guardrail_checks needs requests from both arms (and latencies from the same "
            f"stretch): baseline {baseline.requests}, candidate {candidate.requests}"
        )
    checks = [
        _error_check(baseline, candidate, g, threshold),
        _latency_check(base_ms, cand_ms, g, threshold),
    ]
    if baseline.quality_n and candidate.quality_n:
        checks.append(_quality_check(baseline, candidate, g, threshold))
    return checks


def _latency_check(
    base_ms: Sequence[float], cand_ms: Sequence[float], g: Guardrails, threshold: float
) -> GuardrailCheck:
    """The latency guardrail on every request's latency: binomial, against the baseline's
    quantile at its upper confidence bound (half the share), so a candidate at the
    allowed ratio is not blamed for the baseline's own noise."""
    base = np.asarray(base_ms, dtype=float)
    rank = min(
        int(stats.binom.ppf(1 - threshold / 2, len(base), g.latency_quantile)), len(base) - 1
    )
    # The rank-th smallest latency, found without sorting them all.
    quantile_bound = float(np.partition(base, rank)[rank])
    limit = g.max_latency_ratio * quantile_bound
    slower = int(np.sum(np.asarray(cand_ms) > limit))
    allowed = 1 - g.latency_quantile
    return GuardrailCheck(
        "latency",
        slower / len(cand_ms),
        slower_p(slower, len(cand_ms), allowed),
        threshold,
        len(cand_ms),
        f"{slower} of {len(cand_ms)} candidate requests slower than {limit:.2f} ms "
        f"(x{g.max_latency_ratio} the baseline's p{round(100 * g.latency_quantile)}, "
        f"{quantile_bound:.2f} ms at its upper bound over {len(base)} requests); "
        f"allowed {allowed:.0%}",
    )


def slower_p(slower: int, requests: int, allowed: float) -> float:
    """The latency test's one-sided p-value: ``slower`` of ``requests`` above the limit,
    where at most a share ``allowed`` may be (binomial; doubled, as the limit itself is
    estimated at half the test's share)."""
    return min(1.0, 2 * float(stats.binom.sf(slower - 1, requests, allowed)))


def _quality_check(
    baseline: ArmData, candidate: ArmData, g: Guardrails, threshold: float
) -> GuardrailCheck:
    """The quality guardrail: a score test for a drop larger than ``max_quality_drop``."""
    zq = score_z(
        round(baseline.quality_sum),
        baseline.quality_n,
        round(candidate.quality_sum),
        candidate.quality_n,
        -g.max_quality_drop,
    )
    return GuardrailCheck(
        "quality",
        zq,
        float(stats.norm.cdf(zq)),
        threshold,
        candidate.quality_n,
        f"quality {candidate.quality_sum / candidate.quality_n:.3f} vs baseline "
        f"{baseline.quality_sum / baseline.quality_n:.3f} (allowed -{g.max_quality_drop})",
    )


def _error_check(
    baseline: ArmData, candidate: ArmData, g: Guardrails, threshold: float
) -> GuardrailCheck:
    """The error-rate guardrail: exact (conditional binomial) at margin 0, else a score test."""
    rate_c, rate_b = candidate.errors / candidate.requests, baseline.errors / baseline.requests
    allowed = g.max_error_rate_increase
    detail = f"error rate {rate_c:.2%} vs baseline {rate_b:.2%} (allowed +{allowed:.2%})"
    if g.max_error_rate_increase == 0:
        total = baseline.errors + candidate.errors
        share = candidate.requests / (candidate.requests + baseline.requests)
        p = float(stats.binom.sf(candidate.errors - 1, total, share)) if total else 1.0
        return GuardrailCheck(
            "error_rate",
            candidate.errors / total if total else 0.0,
            p,
            threshold,
            candidate.requests,
            f"{detail}; the candidate made {candidate.errors} of the {total} errors with "
            f"{share:.1%} of the requests (exact test)",
        )
    z = score_z(
        baseline.errors,
        baseline.requests,
        candidate.errors,
        candidate.requests,
        g.max_error_rate_increase,
    )
    return GuardrailCheck(
        "error_rate", z, float(stats.norm.sf(z)), threshold, candidate.requests, detail
    )


#: Fewest baseline latencies a step's latency test compares with; a step with fewer (the
#: last one, at 100 %, has none) uses the previous step's as well.
MIN_BASELINE_LATENCIES = 50


def latency_window(current: Sequence[float], previous: Sequence[float]) -> np.ndarray:
    """The baseline latencies a step's latency test uses, as one array: this step's, or,
    with fewer than :data:`MIN_BASELINE_LATENCIES`, the previous step's too.

    >>> latency_window([2.0] * 60, [1.0]).size, latency_window([2.0], [1.0]).tolist()
    (60, [1.0, 2.0])
    """
    if len(current) >= MIN_BASELINE_LATENCIES:
        return np.asarray(current, dtype=float)
    return np.concatenate((np.asarray(previous, dtype=float), np.asarray(current, dtype=float)))


CanaryStatus = Literal["running", "completed", "rolled_back"]


@dataclass(frozen=True)
class CanaryDecision:
    """One decision of a :class:`Canary`: at which request, at which share, what it
    decided (``"rollback"``, ``"complete"`` or ``"advance to N%"``), the arms' summaries and
    every guardrail's test."""

    request: int
    share: float
    decision: str
    candidate: ArmSummary
    baseline: ArmSummary
    checks: tuple[GuardrailCheck, ...] = ()

    @property
    def fired(self) -> GuardrailCheck | None:
        """The guardrail that rolled the candidate back, if one did."""
        return next((c for c in self.checks if c.fired), None)

    def row(self) -> dict[str, float | int | str]:
        """Flat, for a table: ``candidate_p99_ms``, ``baseline_quality``, ``quality_p``..."""
        return {
            "request": self.request,
            "share": self.share,
            **{f"candidate_{k}": v for k, v in asdict(self.candidate).items()},
            **{f"baseline_{k}": v for k, v in asdict(self.baseline).items()},
            **{f"{c.name}_p": c.p_value for c in self.checks},
            "threshold": self.checks[0].threshold if self.checks else math.nan,
            "decision": self.decision,
        }


class Canary:
    """A rollout controller. ``route`` users, ``observe`` what they got; it decides."""

    def __init__(
        self,
        steps: Sequence[float] = (0.01, 0.05, 0.25, 0.5, 1.0),
        min_requests: int = 200,
        guardrails: Guardrails | None = None,
        experiment: str = "canary",
        baseline: str = "baseline",
        candidate: str = "candidate",
    ):
        steps = list(steps)
        if (
            not steps
            or any(not 0 < s <= 1 for s in steps)
            or steps != sorted(steps)
            or steps[-1] != 1.0
        ):
            raise ValueError(f"steps must increase within (0, 1] and end at 1.0, got {steps}")
        if len(steps) == 1:
            raise ValueError(
                "a one-step canary (steps=(1.0,)) gives the baseline no traffic to compare "
                "with: start with a share below 1.0, e.g. steps=(0.5, 1.0)"
            )
        if min_requests < 1:
            raise ValueError(f"min_requests must be at least 1, got {min_requests}")
        self.steps = steps
        self.min_requests = min_requests
        self.guardrails = guardrails or Guardrails()
        self.baseline, self.candidate = baseline, candidate
        self.router = Router(experiment, {candidate: steps[0], baseline: 1 - steps[0]})
        self.step = 0
        self.status: CanaryStatus = "running"
        self.reason = ""
        self.requests = 0
        self.users_exposed: set[str] = set()
        self.decisions: list[CanaryDecision] = []
        self.shares: list[tuple[int, float]] = [(0, steps[0])]
        self._baseline = ArmData()
        self._candidate = ArmData()
        self._candidate_in_step = 0
        self._step_latencies: tuple[list[float], list[float]] = ([], [])
        self._previous_baseline: np.ndarray = np.zeros(0)

    @property
    def threshold(self) -> float:
        """Each test's share of the false-rollback budget: three tests at every step."""
        return self.guardrails.false_rollback / (3 * len(self.steps))

    @property
    def share(self) -> float:
        return self.router.weights[self.candidate]

    @property
    def arms(self) -> tuple[ArmData, ArmData]:
        """What the (baseline, candidate) arms have served so far, as the canary observed
        it (the candidate's until the canary ended)."""
        return self._baseline, self._candidate

    def detectable(
        self, baseline_error_rate: float = 0.01, baseline_quality: float = 0.9, power: float = 0.8
    ) -> list[dict[str, float]]:
        """What this canary can see, before it starts: at each step's decision (after
        ``min_requests`` more candidate requests, the baseline having served the rest of
        each step's traffic), the smallest error-rate increase and quality drop its tests
        detect with ``power`` at their share of the budget (normal approximation; ``nan``:
        not detectable at that traffic). A margin or a drop smaller than these can pass
        unseen: the canary then guards against larger harm only.

        >>> rows = Canary(steps=(0.1, 1.0), min_requests=200).detectable(0.01, 0.9)
        >>> [round(r["error_rate_increase"], 3) for r in rows]
        [0.033, 0.024]
        """
        from scipy import optimize

        for rate, name in (
            (baseline_error_rate, "baseline_error_rate"),
            (1 - baseline_quality, "1 - baseline_quality"),
        ):
            if not 0 < rate < 1:
                raise ValueError(f"{name} must be in (0, 1), got {rate}")
        if not 0 < power < 1:
            raise ValueError(f"power must be in (0, 1), got {power}")
        z_a, z_b = stats.norm.ppf(1 - self.threshold), stats.norm.ppf(power)

        def smallest(p: float, n_c: float, n_b: float) -> float:
            def short(d: float) -> float:
                pooled = (p * n_b + (p + d) * n_c) / (n_b + n_c)
                se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_b))
                se1 = math.sqrt((p + d) * (1 - p - d) / n_c + p * (1 - p) / n_b)
                return d - z_a * se0 - z_b * se1

            far = 1 - p - 1e-9
            return float(optimize.brentq(short, 1e-9, far)) if short(far) > 0 else math.nan

        rows, n_c, n_b = [], 0.0, 0.0
        for share in self.steps:
            n_c += self.min_requests
            n_b += self.min_requests * (1 - share) / share
            rows.append(
                {
                    "share": share,
                    "candidate_requests": n_c,
                    "baseline_requests": n_b,
                    "error_rate_increase": smallest(baseline_error_rate, n_c, n_b),
                    "quality_drop": smallest(1 - baseline_quality, n_c, n_b),
                }
            )
        return rows

    def route(self, user_id: object) -> str:
        return self.router.assign(user_id)

    def observe(self, user_id: object, observation: Observation) -> None:
        if observation.variant not in (self.baseline, self.candidate):
            raise ValueError(f"unknown variant {observation.variant!r}")
        self.requests += 1
        if observation.variant == self.baseline:
            self._baseline.add(observation)
            self._step_latencies[0].append(observation.latency_ms)
            return
        self.users_exposed.add(str(user_id))
        if self.status != "running":
            return
        self._candidate.add(observation)
        self._step_latencies[1].append(observation.latency_ms)
        self._candidate_in_step += 1
        if self._candidate_in_step >= self.min_requests and self._baseline.requests:
            self.decide()

    def decide(self) -> CanaryDecision:
        """Test the guardrails on the data so far and act: roll back, advance, complete.
        ``observe`` calls it once a step has ``min_requests`` candidate requests; called
        before the step has requests from both arms, it refuses (a step without traffic
        waits, it does not decide)."""
        if self.status != "running":
            raise ValueError(f"the canary has ended ({self.status}): nothing to decide")
        if not self._step_latencies[1] or not (
            self._step_latencies[0] or self._previous_baseline.size
        ):
            raise ValueError(
                "no decision without data: this step has "
                f"{len(self._step_latencies[1])} candidate and {len(self._step_latencies[0])} "
                "baseline requests so far; observe more traffic first"
            )
        checks = tuple(
            guardrail_checks(
                self._baseline,
                self._candidate,
                self.guardrails,
                self.threshold,
                (
                    latency_window(self._step_latencies[0], self._previous_baseline),
                    self._step_latencies[1],
                ),
            )
        )
        share = self.share
        fired = next((c for c in checks if c.fired), None)
        if fired:
            self.status = "rolled_back"
            self.reason = (
                f"{fired.name}: {fired.detail}; one-sided p = {fired.p_value:.2g} < "
                f"{fired.threshold:.2g} on {fired.sample} candidate requests"
            )
            self.router = self.router.with_weights({self.candidate: 0.0, self.baseline: 1.0})
            decision = "rollback"
        elif self.step + 1 == len(self.steps):
            self.status = "completed"
            decision = "complete"
        else:
            self.step += 1
            new = self.steps[self.step]
            self.router = self.router.with_weights({self.candidate: new, self.baseline: 1 - new})
            decision = f"advance to {new:.0%}"
        made = CanaryDecision(
            self.requests,
            share,
            decision,
            ArmSummary.of(self._candidate),
            ArmSummary.of(self._baseline),
            checks,
        )
        self.decisions.append(made)
        self.shares.append((self.requests, self.share))
        self._candidate_in_step = 0
        self._previous_baseline = latency_window(self._step_latencies[0], self._previous_baseline)
        self._step_latencies = ([], [])
        return made


def run_canary(
    canary: Canary, users: Iterable[object], send: Callable[[str, object], Observation]
) -> Canary:
    """Serve ``users`` in turn through ``canary`` until it completes or rolls back.

    ``send(variant, user)`` serves one request with that variant and returns what was
    observed; it may call a real server.
    """
    for user in users:
        if canary.status != "running":
            break
        variant = canary.route(user)
        canary.observe(user, send(variant, user))
    return canary
