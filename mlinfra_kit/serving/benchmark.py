"""Two servers compared under the same load, interleaved, until a rerun would agree.

One load run per server says little on a shared machine: the same server measured twice
can differ by more than the effect being judged. :func:`compare_closed_loop` and
:func:`compare_open_loop` load two running servers in alternating order (A B, B A, ...),
one run per server per round, through :func:`mlinfra_kit.comparison.compare`: a warm-up
round first, then rounds until the interval of the ratio is narrow, the verdict settled or
the time budget spent. Every run is kept, so the tables show the same runs the verdict
rests on.

The ratio is always how many times better B is than A: ``B / A`` for throughput, ``A / B``
for a latency percentile.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlinfra_kit.comparison import Comparison, compare, paired
from mlinfra_kit.measure import tree_usage
from mlinfra_kit.serving.loadgen import RepeatedLoad, Request, closed_loop, run_load

__all__ = [
    "LoadComparison",
    "ServerUsage",
    "UsageMeter",
    "compare_closed_loop",
    "compare_open_loop",
]

#: What a load run is judged by: (reads the number, lower is better).
METRICS: dict[str, tuple[Callable[[Any], float], bool]] = {
    "throughput": (lambda run: run.throughput_rps, False),
    "p50": (lambda run: run.stats.p50_ms, True),
    "p99": (lambda run: run.stats.p99_ms, True),
}


@dataclass(frozen=True)
class ServerUsage:
    """What a server's process tree used while it was loaded: CPU in cores over its own
    runs (the other server's runs left out), and its resident memory after the last."""

    cpu_cores: float
    rss_mb: float


@dataclass
class UsageMeter:
    """What a server's process tree (``pid`` and its descendants) uses during the runs
    made :meth:`around` it: CPU and wall seconds summed over them, its memory after the last."""

    pid: int
    cpu_s: float = 0.0
    wall_s: float = 0.0
    rss_mb: float = 0.0

    def around(self, run: Callable[[], Any]) -> Any:
        cpu, tic = tree_usage(self.pid)[0], time.perf_counter()
        result = run()
        self.wall_s += time.perf_counter() - tic
        now, self.rss_mb = tree_usage(self.pid)
        self.cpu_s += now - cpu
        return result

    def total(self) -> ServerUsage:
        """CPU in cores over the runs, and the memory after the last."""
        return ServerUsage(self.cpu_s / max(self.wall_s, 1e-9), self.rss_mb)


@dataclass(frozen=True)
class LoadComparison:
    """Server B against server A: the :class:`~mlinfra_kit.comparison.Comparison` of the
    chosen metric and every measured run of each (warm-up rounds left out), and where
    their process ids were given, what each used (:class:`ServerUsage`)."""

    comparison: Comparison
    a: RepeatedLoad
    b: RepeatedLoad
    usage: tuple[ServerUsage | None, ServerUsage | None] = (None, None)

    @property
    def errors(self) -> int:
        return self.a.errors + self.b.errors

    def by(self, metric: str) -> Comparison:
        """The same runs compared by another metric (how many times better B is)."""
        return _paired_metric(self.a.runs, self.b.runs, self.comparison.names, metric)


def _metric(name: str, says: str = "metric must be one of") -> tuple[Callable[[Any], float], bool]:
    """How a run is judged by ``name`` (:data:`METRICS`); a ``ValueError`` naming the choices."""
    if name not in METRICS:
        raise ValueError(f"{says} {', '.join(METRICS)}, got {name!r}")
    return METRICS[name]


def _paired_metric(
    runs_a: Sequence[Any], runs_b: Sequence[Any], names: tuple[str, str], metric: str
) -> Comparison:
    read, lower_is_better = _metric(metric)
    return paired(
        [read(r) for r in runs_a],
        [read(r) for r in runs_b],
        names,
        lower_is_better=lower_is_better,
    )


def _compare(
    run_a: Callable[[], Any],
    run_b: Callable[[], Any],
    names: tuple[str, str],
    metric: str,
    **engine: Any,
) -> LoadComparison:
    read, lower_is_better = _metric(metric)
    runs: dict[str, list[Any]] = {"a": [], "b": []}
    warm = {"a": 0, "b": 0}
    warmup = engine.pop("warmup", 1)
    also: dict[str, float] = engine.pop("also", None) or {}
    for other in also:
        _metric(other, "also's metrics must be among")

    def also_settled() -> bool:
        """Every other claim, read from the same runs, held or not held."""
        return all(
            _paired_metric(runs["a"], runs["b"], names, other).verdict(at_least=threshold)
            != "inconclusive"
            for other, threshold in also.items()
        )

    def measuring(side: str, run: Callable[[], Any]) -> Callable[[], float]:
        def measure() -> float:
            result = run()
            if warm[side] < warmup:  # the engine's warm-up calls: not kept
                warm[side] += 1
            else:
                runs[side].append(result)
            return read(result)

        return measure

    comparison = compare(
        measuring("a", run_a),
        measuring("b", run_b),
        names=names,
        lower_is_better=lower_is_better,
        warmup=warmup,
        until=also_settled if also else None,
        **engine,
    )
    return LoadComparison(
        comparison, RepeatedLoad(tuple(runs["a"])), RepeatedLoad(tuple(runs["b"]))
    )


def compare_closed_loop(
    url_a: str,
    url_b: str,
    requests: Sequence[Request],
    *,
    concurrency: int,
    names: tuple[str, str] = ("A", "B"),
    metric: str = "throughput",
    client: str = "auto",
    seconds: float = 3.0,
    total: int = 1000,
    warmup: int = 100,
    min_rounds: int = 3,
    max_rounds: int = 8,
    budget_s: float = 60.0,
    rel_width: float = 0.10,
    at_least: float | None = None,
    requests_b: Sequence[Request] | None = None,
    warmup_rounds: int = 1,
    pids: tuple[int | None, int | None] = (None, None),
    also: dict[str, float] | None = None,
) -> LoadComparison:
    """Closed-loop runs at ``concurrency`` against two running servers, interleaved
    (:func:`~mlinfra_kit.serving.loadgen.closed_loop`, one run per server per round, the
    client's own warm-up before each), compared by ``metric`` (``throughput``, ``p50``,
    ``p99``) until the 99 % interval is ``rel_width`` wide, a verdict ``at_least`` is
    settled, ``max_rounds`` are done or ``budget_s`` seconds are spent. ``requests_b``:
    B's own requests where its API differs from A's (the same projects, another body);
    ``warmup_rounds``: untimed rounds first (0 for servers already warm); ``pids``: each
    server's main process, whose tree's CPU and memory are read around its runs
    (``usage``), so one comparison gives a server's whole row; ``also``: other claims read
    from the same runs, ``{metric: at_least}``, that must be settled too before the rounds
    stop early (:meth:`LoadComparison.by` compares them)."""
    usage = [UsageMeter(pid) if pid is not None else None for pid in pids]

    def one_run(url: str, sent: Sequence[Request], side: int) -> Callable[[], Any]:
        def run() -> Any:
            return closed_loop(
                url,
                sent,
                concurrency=concurrency,
                client=client,
                repeats=1,
                total=total,
                seconds=seconds,
                warmup=warmup,
                warmup_s=0.0,  # the engine's warm-up rounds warm each server
            ).runs[0]

        counted = usage[side]
        return run if counted is None else lambda: counted.around(run)

    compared = _compare(
        one_run(url_a, requests, 0),
        one_run(url_b, requests if requests_b is None else requests_b, 1),
        names,
        metric,
        warmup=warmup_rounds,
        min_rounds=min_rounds,
        max_rounds=max_rounds,
        budget_s=budget_s,
        rel_width=rel_width,
        at_least=at_least,
        also=also,
    )
    used_a, used_b = (u.total() if u is not None else None for u in usage)
    return dataclasses.replace(compared, usage=(used_a, used_b))


def compare_open_loop(
    url_a: str,
    url_b: str,
    requests: Sequence[Request],
    *,
    rate_rps: float,
    total: int,
    names: tuple[str, str] = ("A", "B"),
    metric: str = "p50",
    concurrency: int = 256,
    min_rounds: int = 3,
    max_rounds: int = 8,
    budget_s: float = 60.0,
    rel_width: float = 0.10,
    at_least: float | None = None,
) -> LoadComparison:
    """Open-loop runs of ``total`` requests at ``rate_rps`` against two running servers
    (:func:`~mlinfra_kit.serving.loadgen.run_load`, the Python client), interleaved and
    compared by ``metric`` (``p50`` by default) as :func:`compare_closed_loop` does."""

    def one_run(url: str) -> Callable[[], Any]:
        return lambda: run_load(
            url, requests, total=total, rate_rps=rate_rps, concurrency=concurrency, progress=False
        )

    return _compare(
        one_run(url_a),
        one_run(url_b),
        names,
        metric,
        min_rounds=min_rounds,
        max_rounds=max_rounds,
        budget_s=budget_s,
        rel_width=rel_width,
        at_least=at_least,
    )
