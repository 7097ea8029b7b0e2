"""Canary rollout: give a candidate a growing share of traffic, roll back on a breach.

At each step (1 % → 5 % → 25 % → 50 % → 100 % by default) the controller waits for
``min_requests`` candidate requests, then compares the candidate's error rate, p99 latency
and quality with the baseline's. A breach rolls the candidate back to 0 % at once, with the
reason; otherwise the next step begins. Users keep their variant within a step (the
router is sticky), and growing the share moves users only from baseline to candidate.

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
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import stats

from mlinfra_kit.online_testing.router import Router


@dataclass(frozen=True)
class Observation:
    """One served request: which variant, how long, whether it failed, how good it was."""

    variant: str
    latency_ms: float
    error: bool
    quality: float | None = None  # e.g. 1.0 if the predicted tag was right, else 0.0


@dataclass(frozen=True)
class Guardrails:
    """What counts as a breach.

    - error rate: the candidate's exceeds the baseline's by more than
      ``max_error_rate_increase`` (absolute);
    - latency: the candidate's p99 exceeds ``max_p99_ratio`` times the baseline's;
    - quality: the candidate is worse than the baseline by more than ``max_quality_drop``
      with ``confidence`` (one-sided): a point estimate alone would flap on noise.
    """

    max_error_rate_increase: float = 0.01
    max_p99_ratio: float = 1.5
    max_quality_drop: float = 0.02
    confidence: float = 0.95

    def __post_init__(self):
        if self.max_error_rate_increase < 0 or self.max_p99_ratio < 1 or self.max_quality_drop < 0:
            raise ValueError(
                "guardrails need max_error_rate_increase >= 0, "
                "max_p99_ratio >= 1 and max_quality_drop >= 0"
            )
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


CanaryStatus = Literal["running", "completed", "rolled_back"]


@dataclass(frozen=True)
class ArmSummary:
    """What one arm served in the window a canary decision looked at."""

    requests: int
    error_rate: float
    p99_ms: float
    quality: float  # nan where no request had a quality yet
    quality_n: int

    @classmethod
    def of(cls, observations: Sequence[Observation]) -> ArmSummary:
        latencies = np.array([o.latency_ms for o in observations])
        qualities = [o.quality for o in observations if o.quality is not None]
        return cls(
            requests=len(observations),
            error_rate=float(np.mean([o.error for o in observations])),
            p99_ms=float(np.percentile(latencies, 99)),
            quality=float(np.mean(qualities)) if qualities else math.nan,
            quality_n=len(qualities),
        )


@dataclass(frozen=True)
class CanaryDecision:
    """One decision of a :class:`Canary`: at which request, at which share, what it
    decided (``"rollback"``, ``"complete"`` or ``"advance to N%"``) and on what."""

    request: int
    share: float
    decision: str
    candidate: ArmSummary
    baseline: ArmSummary

    def row(self) -> dict[str, float | int | str]:
        """Flat, for a table: ``candidate_p99_ms``, ``baseline_quality``, ..."""
        return {
            "request": self.request,
            "share": self.share,
            **{f"candidate_{k}": v for k, v in asdict(self.candidate).items()},
            **{f"baseline_{k}": v for k, v in asdict(self.baseline).items()},
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
        self._baseline_seen: list[Observation] = []
        self._candidate_step: list[Observation] = []

    @property
    def share(self) -> float:
        return self.router.weights[self.candidate]

    def route(self, user_id: object) -> str:
        return self.router.assign(user_id)

    def observe(self, user_id: object, observation: Observation) -> None:
        if observation.variant not in (self.baseline, self.candidate):
            raise ValueError(f"unknown variant {observation.variant!r}")
        self.requests += 1
        if observation.variant == self.baseline:
            self._baseline_seen.append(observation)
            return
        self.users_exposed.add(str(user_id))
        if self.status != "running":
            return
        self._candidate_step.append(observation)
        if len(self._candidate_step) >= self.min_requests and self._baseline_seen:
            self._decide()

    def _breach(self, cand: ArmSummary, base: ArmSummary) -> str | None:
        g = self.guardrails
        if cand.error_rate - base.error_rate > g.max_error_rate_increase:
            return (
                f"error rate {cand.error_rate:.2%} vs baseline {base.error_rate:.2%} "
                f"(allowed +{g.max_error_rate_increase:.2%})"
            )
        if cand.p99_ms > g.max_p99_ratio * base.p99_ms:
            return (
                f"p99 {cand.p99_ms:.1f} ms vs baseline {base.p99_ms:.1f} ms "
                f"(allowed x{g.max_p99_ratio})"
            )
        if cand.quality_n and base.quality_n:
            diff = cand.quality - base.quality
            se = math.sqrt(
                cand.quality * (1 - cand.quality) / cand.quality_n
                + base.quality * (1 - base.quality) / base.quality_n
            )
            upper = diff + stats.norm.ppf(g.confidence) * se
            if upper < -g.max_quality_drop:
                return (
                    f"quality {cand.quality:.3f} vs baseline {base.quality:.3f}: "
                    f"worse by more than {g.max_quality_drop} with {g.confidence:.0%} "
                    f"confidence"
                )
        return None

    def _decide(self) -> None:
        cand, base = ArmSummary.of(self._candidate_step), ArmSummary.of(self._baseline_seen)
        reason = self._breach(cand, base)
        share = self.share
        if reason:
            self.status, self.reason = "rolled_back", reason
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
        self.decisions.append(CanaryDecision(self.requests, share, decision, cand, base))
        self.shares.append((self.requests, self.share))
        self._candidate_step = []


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
