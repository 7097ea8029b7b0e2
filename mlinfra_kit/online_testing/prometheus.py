"""The canary's guardrails read from Prometheus, as production rollouts read them.

A rollout controller in production (Flagger, Argo Rollouts' analysis) does not see each
request: it asks Prometheus, every interval, for what the servers counted. This module
gives a :class:`~mlinfra_kit.online_testing.canary.Canary` that view beside its own:

- :class:`PrometheusSource` reads each variant's answered requests, its errors (any status
  but 2xx) and its latency histogram from the kit's servers' ``/metrics``, scraped by a
  real Prometheus, with PromQL;
- :func:`histogram_checks` runs the canary's error-rate and latency tests on those
  counts: exact on the counters; on the histogram, only as fine as its buckets;
- :class:`PrometheusCanary` follows a running canary: at each of its decisions it waits for
  Prometheus to have scraped every request answered so far, decides again from Prometheus
  and records both decisions and the wait;
- :func:`run_canary_with_prometheus` serves a rollout as :func:`run_canary` does, with a
  :class:`PrometheusCanary` beside it.

Quality needs the true tag, which the server never sees: it comes from the labels on the
client's side in both decisions (in production, from the label pipeline), so the two
decisions differ only where the servers' metrics tell another story than the client's
timings.

Examples
--------
The latency test on a histogram: the baseline's p95 lies in the bucket up to 2 ms, the
limit (x3) is 6 ms, and the candidate requests surely slower than that are the ones above
the first bucket edge at or over it (10 ms):

>>> baseline = ArmCounts(200, 0, ((1.0, 150), (2.0, 198), (10.0, 200), (math.inf, 200)))
>>> candidate = ArmCounts(50, 0, ((1.0, 30), (2.0, 40), (10.0, 41), (math.inf, 50)))
>>> check = histogram_checks(baseline, candidate, Guardrails(max_latency_ratio=3), 0.01)[1]
>>> check.sample, round(check.statistic, 2), check.fired
(50, 0.18, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from scipy import stats

from mlinfra_kit.online_testing.canary import (
    MIN_BASELINE_LATENCIES,
    ArmData,
    Canary,
    GuardrailCheck,
    Guardrails,
    Observation,
    _error_check,
    _quality_check,
    slower_p,
)

__all__ = [
    "ArmCounts",
    "PrometheusCanary",
    "PrometheusSource",
    "SourceDecision",
    "buckets_since",
    "histogram_checks",
    "run_canary_with_prometheus",
]


class Queryable(Protocol):
    """What :class:`PrometheusSource` needs of a Prometheus: instant queries
    (:class:`mlinfra_kit.services.PrometheusServer` has it)."""

    def query(self, promql: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ArmCounts:
    """One variant's totals as Prometheus last scraped them: requests answered, errors
    (any status but 2xx), and its latency histogram as (upper bound in ms, cumulative
    count) pairs in ascending order, the last one at infinity. Subtract an earlier
    snapshot to get what happened since."""

    requests: int
    errors: int
    buckets: tuple[tuple[float, int], ...]

    def __post_init__(self):
        if self.buckets and self.buckets[-1][0] != math.inf:
            raise ValueError("a histogram's last bucket is +Inf: pass every bucket, in order")

    def __sub__(self, earlier: ArmCounts) -> ArmCounts:
        return ArmCounts(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            buckets_since(self.buckets, earlier.buckets),
        )

    @property
    def timed(self) -> int:
        """Requests in the histogram (its +Inf bucket)."""
        return self.buckets[-1][1] if self.buckets else 0

    def at_most(self, ms: float) -> int:
        """Requests the histogram puts at or under the bucket edge ``ms`` (an edge)."""
        return next(count for le, count in self.buckets if le == ms)


def buckets_since(
    now: tuple[tuple[float, int], ...], earlier: Sequence[tuple[float, int]]
) -> tuple[tuple[float, int], ...]:
    """A histogram's cumulative ``(le, count)`` pairs counted since an earlier reading (a
    bucket the earlier reading lacks counted from 0).

    >>> buckets_since(((1.0, 8), (math.inf, 10)), ((1.0, 3), (math.inf, 4)))
    ((1.0, 5), (inf, 6))
    """
    before = dict(earlier)
    return tuple((le, count - before.get(le, 0)) for le, count in now)


class PrometheusSource:
    """Each variant's counts, read from Prometheus with PromQL.

    ``instances`` maps a variant (``"baseline"``, ``"candidate"``) to the scrape target
    its server is (``host:port``, Prometheus' ``instance`` label); ``route`` is the route
    the rollout's traffic takes; ``error_status`` the statuses that count as errors (a
    regular expression; default every status but 2xx; ``"5.."`` leaves the client's bad
    inputs out). The queries, per variant::

        sum(mlinfra_requests_total{instance="...", route="/predict"})
        sum(mlinfra_requests_total{instance="...", route="/predict", status=~"[^2].."})
        sum by (le) (mlinfra_request_seconds_bucket{instance="...", route="/predict"})
        timestamp(up{instance="..."})  # when it last scraped the server
        sum by (tag) (mlinfra_predictions_total{instance="..."})  # the output mix
        sum by (le) (mlinfra_unknown_word_share_bucket{instance="..."})  # unknown words
    """

    def __init__(
        self,
        prometheus: Queryable,
        instances: Mapping[str, str],
        route: str = "/predict",
        error_status: str = "[^2]..",
    ):
        if not instances:
            raise ValueError("PrometheusSource needs the scrape target of every variant")
        self.prometheus, self.instances, self.route = prometheus, dict(instances), route
        self.error_status = error_status

    def queries(self, variant: str) -> dict[str, str]:
        """The PromQL this source asks for ``variant``: requests, errors and buckets."""
        if variant not in self.instances:
            raise ValueError(f"unknown variant {variant!r}; known: {sorted(self.instances)}")
        server = f'instance="{self.instances[variant]}"'
        where = f'{server}, route="{self.route}"'
        return {
            "requests": f"sum(mlinfra_requests_total{{{where}}})",
            "errors": f'sum(mlinfra_requests_total{{{where}, status=~"{self.error_status}"}})',
            "buckets": f"sum by (le) (mlinfra_request_seconds_bucket{{{where}}})",
            "scraped": f"timestamp(up{{{server}}})",
            "tags": f"sum by (tag) (mlinfra_predictions_total{{{server}}})",
            "unknown": f"sum by (le) (mlinfra_unknown_word_share_bucket{{{server}}})",
        }

    def counts(self, variant: str) -> ArmCounts:
        """``variant``'s totals at Prometheus' last scrape (zeros before its first)."""
        asked = self.queries(variant)

        def total(promql: str) -> int:
            return round(sum(series["value"] for series in self.prometheus.query(promql)))

        buckets = self._histogram(asked["buckets"], scale=1000)
        return ArmCounts(total(asked["requests"]), total(asked["errors"]), buckets)

    def _histogram(self, promql: str, scale: float = 1) -> tuple[tuple[float, int], ...]:
        return tuple(
            sorted(
                (scale * float(series["labels"]["le"]), round(series["value"]))
                for series in self.prometheus.query(promql)
            )
        )

    def outputs(self, variant: str) -> tuple[dict[str, int], tuple[tuple[float, int], ...]]:
        """What ``variant``'s server answered so far, as the drift monitor reads it: answers
        by tag, and its histogram of sampled unknown-word shares (cumulative ``(le,
        count)`` pairs, the last at infinity); subtract an earlier reading for a window."""
        asked = self.queries(variant)
        tags = {
            series["labels"]["tag"]: round(series["value"])
            for series in self.prometheus.query(asked["tags"])
        }
        return tags, self._histogram(asked["unknown"])

    def scraped_at(self, variant: str) -> float:
        """When Prometheus last scraped ``variant``'s server (Unix time; 0 before the first
        scrape)."""
        found = self.prometheus.query(self.queries(variant)["scraped"])
        return max((series["value"] for series in found), default=0.0)

    def snapshot(self, after: float | None = None, timeout_s: float = 30) -> dict[str, ArmCounts]:
        """Every variant's counts; with ``after`` (Unix time), from scrapes that began after
        it, waiting for them: with no traffic in between, they hold every request answered
        before ``after``. A ``TimeoutError`` names the servers not scraped in time."""
        if after is not None:
            self.wait(after, timeout_s)
        return {variant: self.counts(variant) for variant in self.instances}

    def wait(self, after: float, timeout_s: float = 30) -> float:
        """Wait until Prometheus has scraped every variant's server in a scrape that began
        after ``after`` (Unix time); return the seconds waited. A ``TimeoutError`` names the
        servers not scraped in time."""
        tic = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while late := [v for v in self.instances if self.scraped_at(v) < after]:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Prometheus scraped no new /metrics from {late} in {timeout_s:g} s: are "
                    "they its scrape targets (instance host:port), with metrics on?"
                )
            time.sleep(0.05)
        return time.perf_counter() - tic


def histogram_checks(
    baseline: ArmCounts,
    candidate: ArmCounts,
    guardrails: Guardrails,
    threshold: float,
    latencies: tuple[ArmCounts, ArmCounts] | None = None,
    quality: tuple[ArmData, ArmData] | None = None,
) -> list[GuardrailCheck]:
    """The canary's tests on counts read from Prometheus: error rate on ``baseline`` and
    ``candidate`` (exact, as the canary's own); latency on the histograms of
    ``latencies`` = (baseline's, candidate's) counts over the same stretch (default: all);
    quality on ``quality`` = (baseline's, candidate's) client-side data when given.

    The latency test asks the same question as the canary's (are more than ``1 -
    latency_quantile`` of the candidate's requests slower than ``max_latency_ratio`` times
    the baseline's quantile at its upper bound?) at bucket resolution: the baseline's
    quantile is its bucket's upper edge, and the candidate's slow requests are those above
    the first edge at or over the limit, so a slow-down that stays inside one bucket is not
    seen."""
    g = guardrails
    base_h, cand_h = latencies or (baseline, candidate)
    if not baseline.requests or not candidate.requests or not base_h.timed:
        raise ValueError(
            "histogram_checks needs requests from both arms: baseline "
            f"{baseline.requests}, candidate {candidate.requests}"
        )
    arms = [ArmData(requests=c.requests, errors=c.errors) for c in (baseline, candidate)]
    checks = [_error_check(arms[0], arms[1], g, threshold)]
    if cand_h.timed:
        checks.append(_histogram_latency_check(base_h, cand_h, g, threshold))
    if quality and quality[0].quality_n and quality[1].quality_n:
        checks.append(_quality_check(quality[0], quality[1], g, threshold))
    return checks


def _histogram_latency_check(
    base: ArmCounts, cand: ArmCounts, g: Guardrails, threshold: float
) -> GuardrailCheck:
    rank = int(stats.binom.ppf(1 - threshold / 2, base.timed, g.latency_quantile))
    bound = next(le for le, count in base.buckets if count > min(rank, base.timed - 1))
    limit = g.max_latency_ratio * bound
    edge = next(le for le, _ in cand.buckets if le >= limit)
    slower = cand.timed - cand.at_most(edge)
    allowed = 1 - g.latency_quantile
    return GuardrailCheck(
        "latency",
        slower / cand.timed,
        slower_p(slower, cand.timed, allowed),
        threshold,
        cand.timed,
        f"{slower} of {cand.timed} candidate requests above the {edge:g} ms bucket edge, "
        f"the first at or over {limit:g} ms (x{g.max_latency_ratio} the baseline's "
        f"p{round(100 * g.latency_quantile)} at its upper bound, in the bucket up to "
        f"{bound:g} ms, over {base.timed} requests); allowed {allowed:.0%}",
    )


@dataclass(frozen=True)
class SourceDecision:
    """One decision of a rollout made twice: by the canary from what the client saw and
    from what Prometheus counted, and how long after the first the second could be made
    (waiting for the scrape that holds every request the first one saw)."""

    request: int
    share: float
    client: str
    prometheus: str
    delay_s: float
    checks: tuple[GuardrailCheck, ...] = field(default=())

    @property
    def agree(self) -> bool:
        return self.client == self.prometheus

    def row(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "share": self.share,
            "client_decision": self.client,
            "prometheus_decision": self.prometheus,
            "agree": self.agree,
            "prometheus_delay_s": self.delay_s,
            **{f"prometheus_{c.name}_p": c.p_value for c in self.checks},
        }


class PrometheusCanary:
    """Makes each of ``canary``'s decisions again from ``source``, as a rollout controller
    reading Prometheus would, and records both (:attr:`decisions`).

    Call :meth:`decide` each time the canary has decided. It waits until Prometheus has
    scraped every request answered so far, reads the counts since the canary started (the
    reading when this object was made), runs the same tests at the same threshold, with the
    latency test on the step's histogram (the step before it too while the baseline has
    fewer than :data:`MIN_BASELINE_LATENCIES`, as the canary's own window), and quality from
    the canary's own labelled data (a server never sees the true tag).

    Prometheus counts every request answered, so where the canary decides on fewer (labels
    that have not yet arrived), the Prometheus decision rests on more, and fresher, data.
    ``source`` maps ``canary.baseline`` and ``canary.candidate`` to their servers.
    """

    def __init__(self, canary: Canary, source: PrometheusSource, timeout_s: float = 30):
        missing = {canary.baseline, canary.candidate} - set(source.instances)
        if missing:
            raise ValueError(f"the source has no server for {sorted(missing)}")
        self.canary, self.source, self.timeout_s = canary, source, timeout_s
        self.names = (canary.baseline, canary.candidate)
        self.start = source.snapshot(after=time.time(), timeout_s=timeout_s)
        self.steps = [self.start]  # readings at each step's start
        self.decisions: list[SourceDecision] = []

    def decide(self, sent: Mapping[str, int] | None = None) -> SourceDecision:
        """Decide the canary's last decision again from Prometheus. ``sent``: the requests
        each variant answered since the canary started, when known: Prometheus must have
        counted exactly these (a ``RuntimeError`` otherwise: another client is sending)."""
        canary, names = self.canary, self.names
        if not canary.decisions:
            raise ValueError("the canary has not decided yet: call decide() after it has")
        decided, tic = time.time(), time.perf_counter()
        now = self.source.snapshot(after=decided, timeout_s=self.timeout_s)
        delay = time.perf_counter() - tic
        total = {name: now[name] - self.start[name] for name in names}
        counted = {name: total[name].requests for name in names}
        if sent is not None and counted != dict(sent):
            raise RuntimeError(
                f"Prometheus counted {counted} requests where the client sent {dict(sent)}: "
                "another client is sending to these servers, or a request went unanswered"
            )
        step = {name: now[name] - self.steps[-1][name] for name in names}
        if step[names[0]].requests < MIN_BASELINE_LATENCIES and len(self.steps) > 1:
            step[names[0]] = now[names[0]] - self.steps[-2][names[0]]  # as the canary's window
        checks = tuple(
            histogram_checks(
                total[names[0]],
                total[names[1]],
                canary.guardrails,
                canary.threshold,
                (step[names[0]], step[names[1]]),
                canary.arms,
            )
        )
        last = canary.decisions[-1]
        if any(c.fired for c in checks):
            ours = "rollback"
        elif last.decision != "rollback":
            ours = last.decision
        elif last.share < 1:
            ours = f"advance to {canary.steps[canary.steps.index(last.share) + 1]:.0%}"
        else:
            ours = "complete"
        made = SourceDecision(last.request, last.share, last.decision, ours, delay, checks)
        self.decisions.append(made)
        self.steps.append(now)
        return made


def run_canary_with_prometheus(
    canary: Canary,
    users: Iterable[object],
    send: Callable[[str, object], Observation],
    source: PrometheusSource,
    timeout_s: float = 30,
) -> tuple[Canary, list[SourceDecision]]:
    """Serve ``users`` through ``canary`` as :func:`run_canary` does; at each of its
    decisions, pause the traffic until Prometheus has scraped every request the decision
    saw, decide again from ``source`` (a :class:`PrometheusCanary`) and record both. The
    rollout follows the canary's own decision: the Prometheus one is compared with it.

    ``source`` maps ``canary.baseline`` and ``canary.candidate`` to their servers; the
    servers' counts before the first user are taken as the start."""
    reader = PrometheusCanary(canary, source, timeout_s)
    for user in users:
        if canary.status != "running":
            break
        observation = send(canary.route(user), user)
        made = len(canary.decisions)
        canary.observe(user, observation)
        if len(canary.decisions) > made:
            reader.decide(
                {name: arm.requests for name, arm in zip(reader.names, canary.arms, strict=True)}
            )
    return canary, reader.decisions
