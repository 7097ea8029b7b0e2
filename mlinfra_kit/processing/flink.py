"""The kit's window features on Apache Flink (PyFlink's Table API, a local mini-cluster).

PyFlink pins its own Apache Beam, pyarrow and NumPy, older than the kit's (PyFlink 2.3:
Beam 2.61, NumPy 2.1), so it runs in an environment of its own, made once
(:func:`flink_python`, with :func:`mlinfra_kit.environments.environment_python`, as the
serving peers are), and the job
(:mod:`mlinfra_kit.processing.flink_job`) imports nothing from the kit: events go in as a
CSV file, windows come back as JSON lines. Flink needs Java 11 or newer.

:func:`flink_window_features` computes, per user, Flink SQL ``HOP`` windows (sliding, in
event time, with a watermark ``out_of_orderness_s`` behind the newest event): events per
category, clicks, click rate. Flink keeps timestamps in milliseconds; the kit's reference is
:func:`~mlinfra_kit.processing.beam.window_reference` on the same millisecond times.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from mlinfra_kit.processing.beam import JobRun
from mlinfra_kit.processing.events import CATEGORIES, Event

__all__ = [
    "FLINK_PACKAGES",
    "FlinkUnavailable",
    "flink_python",
    "flink_window_features",
    "to_milliseconds",
]

#: What the Flink environment installs.
FLINK_PACKAGES = ("apache-flink==2.3.0",)
_JOB = Path(__file__).with_name("flink_job.py")


class FlinkUnavailable(RuntimeError):
    """Flink cannot run here; the message says exactly why."""


def flink_python(home: Path | None = None) -> str:
    """The Python of the Flink environment, made once (a few minutes the first time:
    PyFlink's wheel carries Flink's jars)."""
    from mlinfra_kit.environments import InstallFailed, environment_python

    if shutil.which("java") is None:
        raise FlinkUnavailable("Flink needs Java 11 or newer: no `java` on PATH")
    try:
        return environment_python("flink", FLINK_PACKAGES, home)
    except InstallFailed as err:
        raise FlinkUnavailable(str(err)) from None


def to_milliseconds(events: Sequence[Event]) -> list[Event]:
    """The events with their times floored to whole milliseconds, as Flink sees them."""
    return [replace(e, event_time=math.floor(e.event_time * 1000) / 1000) for e in events]


def _epoch_s(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def flink_window_features(
    events: Sequence[Event],
    window_s: int = 300,
    slide_s: int = 60,
    out_of_orderness_s: int = 60,
    home: Path | None = None,
    timeout_s: float = 600,
) -> JobRun:
    """Per user, Flink's sliding event-time windows of ``window_s`` every ``slide_s``:
    rows with ``user``, ``start``, ``end`` (epoch seconds) and the window features
    ``count_<w>s_<category>``, ``clicks_<w>s``, ``click_rate_<w>s``. Raises
    :class:`FlinkUnavailable` when Flink cannot run, and ``RuntimeError`` with Flink's own
    error when the job fails."""
    if window_s <= 0 or slide_s <= 0 or out_of_orderness_s < 0:
        raise ValueError(
            "window_s and slide_s must be positive and out_of_orderness_s >= 0 "
            f"(got {window_s}, {slide_s}, {out_of_orderness_s})"
        )
    python = flink_python(home)
    with tempfile.TemporaryDirectory(prefix="mlinfra-flink-") as folder:
        path = os.path.join(folder, "events.csv")
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            for e in events:
                writer.writerow([e.event_id, e.user_id, e.category, e.kind, repr(e.event_time)])
        tic = time.perf_counter()
        done = subprocess.run(
            [python, str(_JOB), path, str(window_s), str(slide_s), str(out_of_orderness_s)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        seconds = time.perf_counter() - tic
    if done.returncode != 0:
        reason = [line for line in done.stderr.splitlines() if "Exception" in line][-3:]
        raise RuntimeError(f"the Flink job failed: {' | '.join(reason) or done.stderr[-1500:]}")
    rows = []
    w = f"{window_s:g}s"
    for line in done.stdout.splitlines():
        user, start, end, *counts = json.loads(line)
        *per_category, clicks, total = counts
        row = {"user": user, "start": _epoch_s(start), "end": _epoch_s(end)}
        row |= {f"count_{w}_{c}": n for c, n in zip(CATEGORIES, per_category, strict=True)}
        row |= {f"clicks_{w}": clicks, f"click_rate_{w}": clicks / total if total else 0.0}
        rows.append(row)
    return JobRun(rows, len(events), seconds)
