"""A load generator over real HTTP, in its own process, fast enough not to be the limit.

Two ways to load a server:

- **closed loop** (``concurrency=N``): N clients, each sending its next request when the
  previous one is answered. Throughput is what the server sustains; latency never shows
  queueing beyond N requests, because the clients slow down with the server.
- **open loop** (``rate_rps=R``): requests leave at a fixed rate whatever the server does,
  and each latency is counted from the moment its request *should* have left, so
  queueing delay is measured, not hidden (no "coordinated omission").

The client is aiohttp on its own event loop in a separate process (so it does not share
the notebook's GIL); its own CPU time is reported, and :func:`run_load` against
:func:`~mlinfra_kit.serving.run_trivial_server` tells the client's ceiling on this machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlinfra_kit.measure import LatencyStats, latency_stats
from mlinfra_kit.progress import bar as progress_bar
from mlinfra_kit.serving.workload import LoadFigures, Request, get_paths, post_json

__all__ = [  # the requests and figures live in serving.workload, re-exported for callers
    "LoadFigures",
    "LoadResult",
    "RepeatedLoad",
    "Request",
    "closed_loop",
    "get_paths",
    "pick_client",
    "post_json",
    "run_load",
    "run_repeated",
    "zipf_indices",
]


def zipf_indices(n_items: int, size: int, s: float = 1.1, seed: int = 0) -> list[int]:
    """``size`` draws from ``range(n_items)`` where item k is drawn with weight 1/(k+1)^s:
    a few popular inputs and a long tail, like real request mixes.

    >>> picks = zipf_indices(100, 1000, s=1.2, seed=0)
    >>> picks.count(0) > picks.count(50)
    True
    """
    import numpy as np

    if n_items < 1 or size < 0:
        raise ValueError(f"need n_items >= 1 and size >= 0 (got {n_items}, {size})")
    if s < 0:
        raise ValueError(f"the Zipf exponent s must be 0 or more, got {s}")
    weights = 1.0 / np.arange(1, n_items + 1) ** s
    rng = np.random.default_rng(seed)
    picks: list[int] = rng.choice(n_items, size=size, p=weights / weights.sum()).tolist()
    return picks


@dataclass(frozen=True)
class LoadResult(LoadFigures):
    """What a load run of this module's client measured. Latencies are of successful
    (2xx) requests."""

    mode: str
    concurrency: int
    rate_rps: float | None
    requests: int
    errors: int
    status_counts: dict[str, int]
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    client_cpu_s: float
    client: str = "python"

    @property
    def stats(self) -> LatencyStats:
        return latency_stats([ms / 1000 for ms in self.latencies_ms])

    def _latency(self) -> LatencyStats | None:
        return self.stats if self.latencies_ms else None


@dataclass(frozen=True)
class RepeatedLoad:
    """The same load run several times against one server: the median run by throughput
    stands for them, with the spread (min–max) beside it. Reads like a :class:`LoadResult`."""

    runs: tuple[Any, ...]  # LoadResult or serving.wrk.WrkResult: the same properties

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("RepeatedLoad needs at least one run")

    @property
    def median(self) -> LoadResult:
        ordered = sorted(self.runs, key=lambda r: r.throughput_rps)
        middle: LoadResult = ordered[(len(ordered) - 1) // 2]
        return middle

    @property
    def throughput_rps(self) -> float:
        return self.median.throughput_rps

    @property
    def throughput_range_rps(self) -> tuple[float, float]:
        values = [r.throughput_rps for r in self.runs]
        return min(values), max(values)

    @property
    def stats(self) -> LatencyStats:
        return self.median.stats

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    @property
    def client_cpu_cores(self) -> float:
        return self.median.client_cpu_cores

    def row(self, **extra: Any) -> dict[str, Any]:
        """The median run's row, with every run's errors and the throughput's min and max."""
        low, high = self.throughput_range_rps
        return self.median.row(**extra) | {
            "errors": self.errors,
            "repeats": len(self.runs),
            "throughput_min_rps": low,
            "throughput_max_rps": high,
        }


def run_repeated(
    base_url: str, requests: Sequence[Request], *, repeats: int = 3, **kwargs: Any
) -> RepeatedLoad:
    """:func:`run_load` ``repeats`` times in a row (each with its own warm-up); on a noisy
    machine report the median and the spread, not one sample."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    desc = kwargs.pop("desc", "load")
    return RepeatedLoad(
        tuple(
            run_load(base_url, requests, desc=f"{desc} ({i + 1}/{repeats})", **kwargs)
            for i in range(repeats)
        )
    )


def pick_client(client: str = "auto") -> str:
    """``"wrk"`` when asked for and installed (``"auto"``: when installed), else
    ``"python"``, this module's client. Asking for ``"wrk"`` without it is an error."""
    from mlinfra_kit.serving.wrk import WRK_HINT, wrk_available

    if client not in ("auto", "wrk", "python"):
        raise ValueError(f"client must be 'auto', 'wrk' or 'python', got {client!r}")
    if client == "wrk" and not wrk_available():
        raise RuntimeError(WRK_HINT)
    if client == "auto":
        return "wrk" if wrk_available() else "python"
    return client


def closed_loop(
    base_url: str,
    requests: Sequence[Request],
    *,
    concurrency: int,
    client: str = "auto",
    repeats: int = 3,
    total: int = 1000,
    seconds: float = 3.0,
    warmup: int = 100,
    desc: str = "load",
    progress: bool = False,
    warmup_s: float = 1.0,
) -> RepeatedLoad:
    """``repeats`` closed-loop runs at ``concurrency`` with the chosen client
    (:func:`pick_client`): wrk for ``seconds`` each (``warmup_s`` seconds of warm-up before
    the first), or this module's client for ``total`` requests each (after ``warmup``).
    Every row says which client measured it."""
    chosen = pick_client(client)
    if chosen == "wrk":
        from mlinfra_kit.serving.wrk import run_wrk

        return RepeatedLoad(
            tuple(  # one warm-up second before the first run; the others follow it warm
                run_wrk(
                    base_url,
                    requests,
                    seconds=seconds,
                    concurrency=concurrency,
                    warmup_s=warmup_s if i == 0 else 0.0,
                )
                for i in range(repeats)
            )
        )
    return run_repeated(
        base_url,
        requests,
        repeats=repeats,
        total=total,
        concurrency=concurrency,
        warmup=warmup,
        desc=desc,
        progress=progress,
    )


def run_load(
    base_url: str,
    requests: Sequence[Request],
    *,
    total: int = 1000,
    concurrency: int = 32,
    rate_rps: float | None = None,
    warmup: int = 0,
    timeout_s: float = 30,
    progress: bool = True,
    desc: str = "load",
) -> LoadResult:
    """Send ``total`` requests (cycling through ``requests``) to ``base_url``.

    Closed loop with ``concurrency`` clients, or open loop at ``rate_rps`` requests per
    second (``concurrency`` then caps open connections). ``warmup`` requests go first and
    are not measured.
    """
    if not requests:
        raise ValueError("requests is empty: give at least one Request to send")
    if total < 1 or concurrency < 1 or warmup < 0:
        raise ValueError(
            f"total and concurrency must be at least 1 and warmup 0 or more "
            f"(got total={total}, concurrency={concurrency}, warmup={warmup})"
        )
    if rate_rps is not None and rate_rps <= 0:
        raise ValueError(f"rate_rps must be positive, got {rate_rps}")
    config = {
        "base_url": base_url.rstrip("/"),
        "total": total,
        "concurrency": concurrency,
        "rate_rps": rate_rps,
        "warmup": warmup,
        "timeout_s": timeout_s,
        "requests": [
            [r.method, r.path, base64.b64encode(r.body or b"").decode()] for r in requests
        ],
    }
    # A fresh interpreter, not multiprocessing: it works the same from a notebook, a script
    # or a test, and imports only the client (no torch, no copy of the caller's state).
    with tempfile.TemporaryDirectory(prefix="mlinfra-load-") as folder:
        config_path, result_path = Path(folder, "config.json"), Path(folder, "result.json")
        config_path.write_text(json.dumps(config))
        child = subprocess.Popen(
            [sys.executable, "-m", "mlinfra_kit.serving.loadgen", config_path, result_path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        errors = []
        with progress_bar(total=total, desc=desc, unit="req", show=progress) as bar:
            assert child.stderr is not None  # piped
            for line in child.stderr:  # the child prints how many requests are done
                if line.startswith("done "):
                    bar.update(int(line.split()[1]) - bar.n)
                else:
                    errors.append(line)
        child.wait()
        if child.returncode != 0 or not result_path.exists():
            raise RuntimeError(
                f"the load generator failed (exit code {child.returncode}): "
                + "".join(errors[-20:]).strip()
            )
        return LoadResult(**json.loads(result_path.read_text()))


def _main(config_path: str, result_path: str) -> None:
    """Child process: read the config, run the load, write the result (JSON files)."""
    config = json.loads(Path(config_path).read_text())
    requests = [Request(m, p, base64.b64decode(b) or None) for m, p, b in config.pop("requests")]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    outcome = asyncio.run(_load(requests=requests, **config))
    Path(result_path).write_text(json.dumps(outcome))


async def _load(
    base_url: str,
    requests: list[Request],
    total: int,
    concurrency: int,
    rate_rps: float | None,
    warmup: int,
    timeout_s: float,
) -> dict[str, Any]:
    import aiohttp

    done = 0

    async def report_progress() -> None:
        while True:
            print(f"done {done}", file=sys.stderr, flush=True)
            await asyncio.sleep(0.2)

    headers = {"content-type": "application/json"}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(i: int, started: float, measured: bool) -> None:
            nonlocal done
            # Open loop: count from the scheduled start, which includes any time the
            # request waited in the client, but never from a moment it was not yet sent
            # (a timer may fire a little early).
            started = min(started, time.perf_counter())
            req = requests[i % len(requests)]
            try:
                async with session.request(
                    req.method,
                    base_url + req.path,
                    data=req.body,
                    headers=headers if req.body else None,
                ) as resp:
                    await resp.read()
                    status = str(resp.status)
                    ok = 200 <= resp.status < 300
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                status, ok = type(err).__name__, False
            if measured:
                statuses[status] += 1
                if ok:
                    latencies.append(1000 * (time.perf_counter() - started))
                done += 1

        async def closed_loop(n: int, measured: bool) -> None:
            counter = iter(range(n))

            async def client() -> None:
                for i in counter:
                    await send(i, time.perf_counter(), measured)

            await asyncio.gather(*(client() for _ in range(min(concurrency, n))))

        reporter = asyncio.create_task(report_progress())
        if warmup:
            await closed_loop(warmup, measured=False)
        cpu0, start = time.process_time(), time.perf_counter()
        if rate_rps is None:
            await closed_loop(total, measured=True)
        else:
            tasks = []
            for i in range(total):
                scheduled = start + i / rate_rps
                # asyncio may wake a timer up to its clock resolution early: wait again
                # until the scheduled moment has really come.
                while (delay := scheduled - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(i, scheduled, True)))
            await asyncio.gather(*tasks)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        reporter.cancel()
        print(f"done {done}", file=sys.stderr, flush=True)
    errors = sum(n for s, n in statuses.items() if not s.startswith("2"))
    return {
        "mode": "closed" if rate_rps is None else "open",
        "concurrency": concurrency,
        "rate_rps": rate_rps,
        "requests": total,
        "errors": errors,
        "status_counts": dict(statuses),
        "seconds": seconds,
        "latencies_ms": latencies,
        "client_cpu_s": cpu,
    }


if __name__ == "__main__":
    _main(*sys.argv[1:3])
