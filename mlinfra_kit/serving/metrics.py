"""Prometheus metrics of the kit's server: ``GET /metrics`` in the text format.

What production monitoring reads from a model server, recorded as the server works:

- ``mlinfra_requests_total{route, status}`` and ``mlinfra_request_seconds{route}`` (a
  histogram): every request, by its route *template* (``/predictions/{entity_id}``, never the
  raw path, so a client cannot create series) and answer status; requests that match no
  route count under ``route="unmatched"``;
- ``mlinfra_in_flight_requests``: requests being answered now;
- ``mlinfra_batch_size`` and ``mlinfra_queue_wait_seconds``: how many items each model call
  took, and how long each request waited in the batcher's queue for its batch;
- ``mlinfra_predictions_total{tag}``: answers by tag (output drift), cached answers included;
- ``mlinfra_unknown_word_share``: the share of a text's word features the vocabulary does
  not know (input drift), for every :data:`UNKNOWN_SAMPLE`-th text the model computes (a
  sample: tokenizing every text twice would cost more than all the other metrics);
- ``mlinfra_model_info{version}``: the version serving now (1), and ``mlinfra_process_id``.

Each app has its own registry, so several servers in one process (tests) never mix counts.
With ``--workers N`` the workers share one port, and a scrape is answered by whichever worker
the kernel picks: ``mlinfra serve`` then gives them one folder (:data:`MULTIPROCESS_ENV`,
prometheus_client's multiprocess mode), where each writes its values, and any worker answers
with the sum of all of them (in-flight requests: the live workers'; the model version: the
highest of the live workers', 1 where one serves it).

Examples
--------
>>> metrics = ServerMetrics()
>>> metrics.observe_batch(4, [0.001, 0.002])
>>> metrics.count_tags(["mlops", "mlops"])
>>> b'mlinfra_predictions_total{tag="mlops"} 2.0' in metrics.render()
True
"""

from __future__ import annotations

import math
import os
import re
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate
from typing import Any, cast

__all__ = [
    "LATENCY_BUCKETS",
    "METRICS_CONTENT_TYPE",
    "MULTIPROCESS_ENV",
    "ServerMetrics",
    "UNKNOWN_SAMPLE",
    "UNKNOWN_SHARE_BUCKETS",
    "bucket_quantile",
    "read_exposition",
]

#: Request latency buckets (seconds), chosen for this server's range: a lone prediction
#: answers in under a millisecond, a loaded server in a few to tens of milliseconds, a huge
#: client batch in up to a second or two.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05)
#: The buckets of the unknown-word share (a share: 0 to 1).
UNKNOWN_SHARE_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
#: The unknown-word share is observed for one computed text in this many.
UNKNOWN_SAMPLE = 4
#: The folder where the workers of one server write their values (prometheus_client reads it
#: when it is imported, so it is set before the workers start).
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The Content-Type of Prometheus' text format.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


#: Metric families about serving traffic (requests, latency, inference, batches, queues),
#: by name: what a dashboard or a canary would read from a server.
_TRAFFIC = re.compile(r"request|latency|duration|infer|batch|queue|predict", re.IGNORECASE)


def read_exposition(url: str, prefix: str = "", timeout_s: float = 10) -> dict[str, Any]:
    """What a server exposes at ``url`` for Prometheus, read as a scraper reads it: the
    HTTP status, how many metric families parse from the answer (prometheus_client's
    parser), and the names and types of those about serving traffic (requests, latency,
    inference, batches, queues), as ``name (type)``, of those whose names start with
    ``prefix`` (one system's, where an endpoint serves many). An endpoint that does not answer, or
    answers something else than Prometheus' text format, says so in ``note``.

    >>> read_exposition("http://127.0.0.1:9/metrics")["note"]
    'no answer: ConnectError'
    """
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, Any] = {"url": url, "status": None, "families": 0, "traffic": [], "note": ""}
    try:
        answer = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as err:
        return found | {"note": f"no answer: {type(err).__name__}"}
    found["status"] = answer.status_code
    if answer.status_code != 200:
        return found | {"note": f"HTTP {answer.status_code}: no metrics there"}
    try:
        families = list(text_string_to_metric_families(answer.text))
    except ValueError as err:
        return found | {"note": f"not Prometheus' text format ({str(err)[:80]})"}
    traffic = sorted(
        f"{f.name} ({f.type})"
        for f in families
        if f.name.startswith(prefix)
        and _TRAFFIC.search(f.name)
        and not f.name.endswith("_created")  # a counter's start time
    )
    return found | {"families": len(families), "traffic": traffic}


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float:
    """The ``q`` quantile from a histogram's bucket counts (``counts[i]`` observations in
    ``(bounds[i-1], bounds[i]]``, one more count for above the last bound), interpolated
    linearly inside the bucket where the rank falls, as PromQL's ``histogram_quantile``
    does: the estimate lies in the same bucket as the exact quantile of the same
    observations, and is off by at most that bucket's width.

    >>> bucket_quantile(0.5, [0.001, 0.002], [0, 4, 0])  # four values in (1 ms, 2 ms]
    0.0015
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within [0, 1], got {q}")
    total = sum(counts)
    if total == 0:
        return math.nan
    rank, seen = q * total, 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i == len(bounds):  # above the last bound: PromQL answers that bound
                return float(bounds[-1])
            low = 0.0 if i == 0 else float(bounds[i - 1])
            return low + (float(bounds[i]) - low) * (rank - seen) / n
        seen += n
    return float(bounds[-1])


class ServerMetrics:
    """The metrics of one server app, in a registry of their own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=False)
        self.shared = bool(os.environ.get(MULTIPROCESS_ENV))  # one of several workers
        r = self.registry
        # With workers, each writes its values to the shared folder (prometheus_client); one
        # process keeps plain numbers, read when Prometheus scrapes (no lock per update).
        counter, gauge, histogram = (Counter, Gauge, Histogram) if self.shared else _plain(r)
        self.requests = counter(
            "mlinfra_requests", "Requests answered", ["route", "status"], registry=r
        )
        self.latency = histogram(
            "mlinfra_request_seconds",
            "Time to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = gauge(
            "mlinfra_in_flight_requests",
            "Requests being answered",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.batch_size = histogram(
            "mlinfra_batch_size", "Items per model call", buckets=_BATCH_BUCKETS, registry=r
        )
        self.queue_wait = histogram(
            "mlinfra_queue_wait_seconds",
            "Time a request waited in the batcher's queue",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.predictions = counter("mlinfra_predictions", "Answers by tag", ["tag"], registry=r)
        self.unknown_share = histogram(
            "mlinfra_unknown_word_share",
            "Share of a text's word features the vocabulary does not know",
            buckets=UNKNOWN_SHARE_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "mlinfra_model_info",
            "The model version serving now",
            ["version"],
            registry=r,
            multiprocess_mode="livemax",
        )
        Gauge(
            "mlinfra_process_id",
            "This worker's process id",
            registry=r,
            multiprocess_mode="liveall",
        ).set(os.getpid())
        self._version: str | None = None
        self._texts_seen = 0
        # Labelled children, looked up once each: labels() takes a lock and builds a key.
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}
        self._tagged: dict[str, Any] = {}

    def set_model(self, version: str) -> None:
        """Mark ``version`` as the one serving (1) and the one before as not (removed)."""
        if self._version is not None:  # shared: a value once written stays in the folder
            if self.shared:
                self.model_info.labels(self._version).set(0)
            else:
                self.model_info.remove(self._version)
        self.model_info.labels(version).set(1)
        self._version = version

    def observe_batch(self, size: int, waits: Iterable[float]) -> None:
        self.batch_size.observe(size)
        for wait in waits:
            self.queue_wait.observe(wait)

    def count_tags(self, tags: Iterable[str]) -> None:
        tagged = self._tagged
        for tag in tags:
            child = tagged.get(tag)
            if child is None:
                child = tagged[tag] = self.predictions.labels(tag)
            child.inc()

    def sample_unknown(self, texts: list[str], unknown_rate: Any) -> None:
        """Observe ``unknown_rate([text])`` for every :data:`UNKNOWN_SAMPLE`-th of ``texts``
        (counted across calls)."""
        seen = self._texts_seen
        first = -seen % UNKNOWN_SAMPLE
        for text in texts[first::UNKNOWN_SAMPLE]:
            self.unknown_share.observe(unknown_rate([text]))
        self._texts_seen = seen + len(texts)

    def _record(self, route: str, status: int, seconds: float) -> None:
        counted = self._counted.get((route, status))
        if counted is None:
            counted = self._counted[(route, status)] = self.requests.labels(route, str(status))
            if route not in self._timed:
                self._timed[route] = self.latency.labels(route)
        counted.inc()
        self._timed[route].observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if not self.shared:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        every_worker = CollectorRegistry()
        cast(Callable[[CollectorRegistry], object], MultiProcessCollector)(every_worker)
        return generate_latest(every_worker)

    def close(self) -> None:
        """A worker that stops: its live gauges no longer count."""
        if self.shared:
            from prometheus_client.multiprocess import mark_process_dead

            cast(Callable[[int], None], mark_process_dead)(os.getpid())  # untyped upstream

    def middleware(self, app: Any) -> Any:
        """ASGI middleware that counts and times every HTTP request by route and status."""
        metrics = self

        async def counted(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = 500  # unless the app answers
            tic = time.perf_counter()

            async def watched(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            metrics.in_flight.inc()
            try:
                await app(scope, receive, watched)
            finally:
                metrics.in_flight.dec()
                name = getattr(scope.get("route"), "path", None) or "unmatched"
                metrics._record(name, status, time.perf_counter() - tic)

        return counted


def _plain(registry: Any) -> tuple[Any, Any, Any]:
    """Factories of :class:`_Plain` counters, gauges and histograms, every one collected by
    ``registry`` when it is scraped."""
    collector = _PlainCollector()
    registry.register(collector)

    def make(kind: str) -> Any:
        def factory(name: str, doc: str, labelnames: Iterable[str] = (), **options: Any) -> _Plain:
            metric = _Plain(kind, name, doc, tuple(labelnames), options.get("buckets"))
            collector.metrics.append(metric)
            return metric

        return factory

    return make("counter"), make("gauge"), make("histogram")


class _Value:
    """One series of a :class:`_Plain` metric: a number, or a histogram's bucket counts."""

    __slots__ = ("bounds", "counts", "sum", "value")

    def __init__(self, bounds: tuple[float, ...] | None):
        self.value = 0.0
        self.bounds = bounds or ()  # a histogram's upper bounds; none for a number
        self.counts = [0] * (len(bounds) + 1) if bounds is not None else []
        self.sum = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def observe(self, amount: float) -> None:
        # the first bound >= amount (Prometheus' "le"); past the last one, +Inf
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class _Plain:
    """A metric of one process kept as plain Python numbers, updated without a lock (the
    server updates it from its event loop only) and turned into a metric family when
    Prometheus scrapes. It answers the calls the server makes of prometheus_client's metrics
    (``labels``, ``inc``, ``dec``, ``observe``), so the server's code is the same for both."""

    def __init__(self, kind: str, name: str, doc: str, labelnames: tuple[str, ...], buckets: Any):
        self.kind, self.name, self.doc, self.labelnames = kind, name, doc, labelnames
        self.bounds = tuple(float(b) for b in buckets) if kind == "histogram" else None
        self.series: dict[tuple[str, ...], _Value] = {}
        if not labelnames:
            only = self.labels()
            self.inc, self.dec, self.observe = only.inc, only.dec, only.observe

    def labels(self, *values: Any) -> _Value:
        key = tuple(str(v) for v in values)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Value(self.bounds)
        return series

    def family(self) -> Any:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        kinds = {
            "counter": CounterMetricFamily,
            "gauge": GaugeMetricFamily,
            "histogram": HistogramMetricFamily,
        }
        family = kinds[self.kind](self.name, self.doc, labels=list(self.labelnames))
        for key, series in sorted(self.series.items()):
            if self.bounds is None:
                family.add_metric(list(key), series.value)
                continue
            bounds = [*(repr(b) for b in self.bounds), "+Inf"]
            cumulative = list(zip(bounds, accumulate(series.counts), strict=True))
            family.add_metric(list(key), cumulative, series.sum)
        return family


class _PlainCollector:
    """The :class:`_Plain` metrics of one registry, read when it is scraped."""

    def __init__(self) -> None:
        self.metrics: list[_Plain] = []

    def describe(self) -> list[Any]:
        return []  # nothing to check at registration: the families appear when collected

    def collect(self) -> Iterable[Any]:
        return [m.family() for m in self.metrics]
