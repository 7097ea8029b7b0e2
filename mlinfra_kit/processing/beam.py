"""The kit's features on Apache Beam: the same definition as Beam transforms.

Beam separates *what* a pipeline computes from *where* it runs: the pipelines below run on
Beam's local runner (``BundleBasedDirectRunner``, named explicitly: left to choose, the
default tries to download its Prism runner first), and the same code runs on Flink, Spark
or Dataflow by naming their runner. Both reuse :func:`compute_features`, so a difference
from the kit's own jobs would be Beam's semantics, not a second definition:

- :func:`beam_batch_features`: a batch job over the event log (events up to ``at``,
  grouped by user), equal to :func:`~mlinfra_kit.processing.features.batch_features`;
- :func:`beam_window_features`: a streaming job with event-time **sliding windows**, a
  **watermark** that trails the newest event by ``watermark_delay_s``, and **allowed
  lateness**: a late event still updates its window (a late pane, panes accumulating) until
  the watermark passes the window's end plus the lateness; after that Beam drops it. The
  events arrive in the order given, so a test can deliver some late on purpose.

Beam keeps timestamps in microseconds; the kit's features of a window ``[start, end)`` are
:func:`compute_features` as of ``end`` minus one microsecond.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mlinfra_kit.processing.events import Event
from mlinfra_kit.processing.features import DEFAULT_WINDOWS, compute_features, feature_names

__all__ = [
    "RUNNER",
    "JobRun",
    "beam_batch_features",
    "beam_window_features",
    "final_panes",
    "window_reference",
]

#: The local runner, named explicitly.
RUNNER = "BundleBasedDirectRunner"
_MICRO = 1e-6


@contextlib.contextmanager
def _quiet_beam() -> Iterator[Any]:
    """Import Beam without its start-up notices (optional cloud file systems it cannot
    load here are logged as warnings on the root logger) and keep its runners' INFO quiet."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        import apache_beam as beam

        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        yield beam
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def _pipeline(beam: Any, folder: str, **options: Any) -> Iterator[Any]:
    """``beam.Pipeline(**options)``, run on exit as Beam's own ``with`` block runs it, with
    every temporary folder Beam makes meanwhile inside ``folder``: in IPython Beam leaves
    them behind (for its interactive runner), one or two per job, in the system's
    temporary folder."""
    before = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        with beam.Pipeline(**options) as pipeline:
            yield pipeline
    finally:
        tempfile.tempdir = before


@dataclass(frozen=True)
class JobRun:
    """What an engine's job produced and what it took: ``rows`` (its output), ``events``
    read, wall ``seconds`` (a JVM's start included, for Flink), and for a Beam streaming job
    the panes it fired."""

    rows: list[dict[str, Any]]
    events: int
    seconds: float
    panes: int = 0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


def _deliveries(
    arrivals: Sequence[Event], chunk: int, delay_s: float
) -> Iterator[tuple[Sequence[Event], int | None]]:
    """The arrivals ``chunk`` at a time, each with the watermark after it: the newest event
    time so far minus ``delay_s``, in whole milliseconds (an ``int``: Beam's test stream
    takes only those, and a float would not always land on one), or None where it would
    not move forward."""
    newest, current = float("-inf"), None
    for i in range(0, len(arrivals), chunk):
        part = arrivals[i : i + chunk]
        newest = max(newest, *(e.event_time for e in part))
        mark = math.floor((newest - delay_s) * 1000)
        if current is None or mark > current:
            current = mark
            yield part, mark
        else:
            yield part, None


def _event_row(e: Event) -> tuple:
    return (e.event_id, e.user_id, e.category, e.kind, e.event_time)


def beam_batch_features(
    events: Sequence[Event],
    at: float,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    runner: str = RUNNER,
) -> tuple[dict[str, dict[str, Any]], JobRun]:
    """Every user's features as of ``at``, as a Beam batch job: the events up to ``at``,
    keyed and grouped by user, then :func:`compute_features` per user; written as JSON
    lines and read back. Returns the features by user, and the run."""
    windows = tuple(windows)
    with _quiet_beam() as beam, tempfile.TemporaryDirectory(prefix="mlinfra-beam-") as folder:
        tic = time.perf_counter()
        with _pipeline(beam, folder, runner=runner) as p:
            (
                p
                | "Events" >> beam.Create([_event_row(e) for e in events])
                | "Up to at" >> beam.Filter(lambda r: r[4] <= at)
                | "By user" >> beam.Map(lambda r: (r[1], Event(*r)))
                | "Group" >> beam.GroupByKey()
                | "Features" >> beam.Map(
                    lambda kv: {"user": kv[0], **compute_features(kv[1], at, windows)}
                )
                | "JSON" >> beam.Map(json.dumps)
                | "Write" >> beam.io.WriteToText(os.path.join(folder, "features"))
            )  # fmt: skip
        seconds = time.perf_counter() - tic
        rows = [
            row for path in glob.glob(os.path.join(folder, "features*")) for row in _lines(path)
        ]
    return {r.pop("user"): r for r in rows}, JobRun(rows, len(events), seconds)


def _lines(path: str) -> list[dict[str, Any]]:
    """The JSON lines of a file a job wrote."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class _AppendLines:
    """A local sink for a streaming job: each element, a JSON line appended to ``path``
    (Beam's file sinks need a triggering frequency for unbounded input)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def beam_window_features(
    arrivals: Sequence[Event],
    window_s: float = 300.0,
    period_s: float = 60.0,
    allowed_lateness_s: float = 60.0,
    watermark_delay_s: float = 0.0,
    chunk: int = 50,
    runner: str = RUNNER,
) -> JobRun:
    """A Beam streaming job over ``arrivals`` (events in the order they arrive), with
    sliding event-time windows of ``window_s`` every ``period_s``.

    Events arrive ``chunk`` at a time; after each chunk the watermark moves to the newest
    event time seen minus ``watermark_delay_s``. A window fires when the watermark passes
    its end (on time) and again for each late event within ``allowed_lateness_s`` (late
    panes, accumulating). Each row is one pane: ``user``, ``start``, ``end``, ``timing``
    (``ON_TIME``, ``LATE``), and the window's features (``count_<w>s_<category>``,
    ``clicks_<w>s``, ``click_rate_<w>s``) from :func:`compute_features`.
    """
    if chunk < 1 or window_s <= 0 or period_s <= 0 or allowed_lateness_s < 0:
        raise ValueError(
            "chunk, window_s and period_s must be positive and allowed_lateness_s >= 0 "
            f"(got {chunk}, {window_s}, {period_s}, {allowed_lateness_s})"
        )
    with _quiet_beam() as beam, tempfile.TemporaryDirectory(prefix="mlinfra-beam-") as folder:
        from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
        from apache_beam.testing.test_stream import TestStream
        from apache_beam.transforms import trigger, window
        from apache_beam.utils.timestamp import Timestamp

        stream = TestStream()
        for part, watermark in _deliveries(arrivals, chunk, watermark_delay_s):
            stream = stream.add_elements(
                [window.TimestampedValue(_event_row(e), e.event_time) for e in part]
            )
            if watermark is not None:
                stream = stream.advance_watermark_to(Timestamp(micros=watermark * 1000))
        stream = stream.advance_watermark_to_infinity()
        keys = [k for k in feature_names((window_s,)) if k not in ("recency_s", "top_category")]

        def pane(kv, w=beam.DoFn.WindowParam, info=beam.DoFn.PaneInfoParam):
            end = float(w.end)
            features = compute_features(kv[1], end - _MICRO, (window_s,))
            timing = {0: "EARLY", 1: "ON_TIME", 2: "LATE"}.get(info.timing, str(info.timing))
            row = {"user": kv[0], "start": float(w.start), "end": end, "timing": timing}
            return json.dumps(row | {k: features[k] for k in keys})

        options = PipelineOptions()
        options.view_as(StandardOptions).streaming = True
        out = os.path.join(folder, "panes.jsonl")
        tic = time.perf_counter()
        with _pipeline(beam, folder, runner=runner, options=options) as p:
            (
                p
                | "Arrivals" >> stream
                | "Windows" >> beam.WindowInto(
                    window.SlidingWindows(window_s, period_s),
                    trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                    accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
                    allowed_lateness=allowed_lateness_s,
                )
                | "By user" >> beam.Map(lambda r: (r[1], Event(*r)))
                | "Group" >> beam.GroupByKey()
                | "Features" >> beam.Map(pane)
                | "Sink" >> beam.Map(_AppendLines(out))
            )  # fmt: skip
        seconds = time.perf_counter() - tic
        rows = _lines(out) if os.path.exists(out) else []
    return JobRun(rows, len(arrivals), seconds, panes=len(rows))


def final_panes(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, float], dict[str, Any]]:
    """The last pane of each (user, window end): with accumulating panes, the window's
    final answer."""
    last: dict[tuple[str, float], dict[str, Any]] = {}
    for row in rows:
        key = (row["user"], row["end"])
        if key not in last or row["timing"] == "LATE":
            last[key] = row
    return last


def window_reference(
    arrivals: Sequence[Event],
    window_s: float = 300.0,
    period_s: float = 60.0,
    allowed_lateness_s: float = 60.0,
    watermark_delay_s: float = 0.0,
    chunk: int = 50,
) -> tuple[dict[tuple[str, float], dict[str, Any]], int]:
    """What :func:`beam_window_features`' final panes should hold, computed by the kit
    without Beam: for each user and window, :func:`compute_features` over the window's
    events, leaving out an event that arrived after the watermark had passed the window's
    end plus the allowed lateness (Beam drops it there). Also returns how many
    (event, window) pairs were dropped so."""
    watermark = float("-inf")
    kept: dict[tuple[str, float], list[Event]] = {}
    dropped = 0
    for part, advanced in _deliveries(arrivals, chunk, watermark_delay_s):
        for e in part:
            first = int((e.event_time - window_s) // period_s) + 1
            last = int(e.event_time // period_s)
            for k in range(first, last + 1):
                start = k * period_s
                end = start + window_s
                if not start <= e.event_time < end:
                    continue
                if end + allowed_lateness_s <= watermark:
                    dropped += 1
                    continue
                kept.setdefault((e.user_id, end), []).append(e)
        if advanced is not None:
            watermark = advanced / 1000
    reference = {}
    for (user, end), evs in kept.items():
        features = compute_features(evs, end - _MICRO, (window_s,))
        reference[(user, end)] = {
            k: v for k, v in features.items() if k not in ("recency_s", "top_category")
        }
    return reference, dropped
