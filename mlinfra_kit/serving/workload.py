"""What a load test sends and what every load client reports, below the clients.

:class:`Request` lists (built by :func:`post_json`, :func:`get_paths`) go to either client
(:mod:`mlinfra_kit.serving.loadgen`'s own, or wrk through :mod:`mlinfra_kit.serving.wrk`);
:class:`LoadFigures` is what both results derive from their counts. Neither client imports
the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mlinfra_kit.measure import LatencyStats

__all__ = ["LoadFigures", "Request", "get_paths", "post_json"]


@dataclass(frozen=True)
class Request:
    """One HTTP request to send: a method, a path and an optional JSON body (bytes)."""

    method: str
    path: str
    body: bytes | None = None


def post_json(path: str, bodies: Iterable[Any]) -> list[Request]:
    """POST requests to ``path``, one per JSON body (serialised once, here)."""
    return [Request("POST", path, json.dumps(b).encode()) for b in bodies]


def get_paths(paths: Iterable[str]) -> list[Request]:
    return [Request("GET", p) for p in paths]


class LoadFigures:
    """What every load result derives from its counts, whichever client measured it
    (:class:`LoadResult`, :class:`~mlinfra_kit.serving.wrk.WrkResult`): throughput, the
    client's CPU share, and one flat row with the same keys for a results table."""

    client: str
    mode: str
    concurrency: int
    rate_rps: float | None
    requests: int
    errors: int
    seconds: float
    client_cpu_s: float

    @property
    def throughput_rps(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0

    @property
    def client_cpu_cores(self) -> float:
        """CPU the client used, in cores (1.0 = one core busy for the whole run)."""
        return self.client_cpu_s / self.seconds if self.seconds > 0 else 0.0

    def _latency(self) -> LatencyStats | None:
        stats: LatencyStats | None = getattr(self, "stats", None)
        return stats

    def row(self, **extra: Any) -> dict[str, Any]:
        """A flat dict for a results table."""
        stats = self._latency()
        return {
            **extra,
            "client": self.client,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "rate_rps": self.rate_rps,
            "requests": self.requests,
            "errors": self.errors,
            "throughput_rps": self.throughput_rps,
            "p50_ms": stats.p50_ms if stats else float("nan"),
            "p99_ms": stats.p99_ms if stats else float("nan"),
            "client_cpu_cores": self.client_cpu_cores,
        }
