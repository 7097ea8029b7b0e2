"""Measuring what infrastructure choices cost: latency, throughput, size, memory.

Every number a notebook reports comes from these helpers, so all notebooks measure the
same way: timings are taken with ``time.perf_counter``, in seconds, and summarised in
milliseconds; GPU work is synchronised before the clock is read.

Examples
--------
>>> stats = latency_stats([0.010, 0.012, 0.011, 0.050])
>>> stats.count, round(stats.p50_ms, 1), round(stats.max_ms, 1)
(4, 11.5, 50.0)
>>> throughput(1000, 2.0)
500.0
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mlinfra_kit import device as _device

__all__ = [
    "LatencyStats",
    "latency_stats",
    "throughput",
    "Timer",
    "time_calls",
    "model_size_bytes",
    "peak_memory_mb",
    "process_rss_mb",
    "process_tree",
    "is_running",
    "tree_usage",
    "environment",
    "distribution_version",
    "busy_cores",
]


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a list of timings, in milliseconds (p50/p90/p99 are percentiles)."""

    count: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """The fields as a flat dict, names prefixed (``prefix="predict_"`` gives
        ``predict_p50_ms`` ...), ready for :func:`mlinfra_kit.results.record`."""
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0-100; numpy's default method) of sorted values:
    the one definition every number the kit reports uses."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_stats(seconds: Sequence[float]) -> LatencyStats:
    """Summarise timings given in **seconds** into :class:`LatencyStats` in milliseconds."""
    values = [float(s) for s in seconds]
    if not values:
        raise ValueError("latency_stats needs at least one timing; got an empty sequence")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError("timings must be finite, non-negative numbers of seconds")
    ms = sorted(v * 1000.0 for v in values)
    n = len(ms)
    mean = sum(ms) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in ms) / (n - 1)) if n > 1 else 0.0
    return LatencyStats(
        count=n,
        mean_ms=mean,
        std_ms=std,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1],
    )


def throughput(items: int | float, seconds: float) -> float:
    """Items per second; ``seconds`` must be positive."""
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"throughput needs a positive duration in seconds, got {seconds!r}")
    if items < 0:
        raise ValueError(f"throughput needs a non-negative item count, got {items!r}")
    return items / seconds


class Timer:
    """Context manager timing a block; synchronises CUDA on entry and exit when timing
    GPU work, so ``seconds`` is the time the work took, not the time to queue it.

    >>> with Timer() as t:
    ...     _ = sum(range(1000))
    >>> t.seconds > 0
    True
    """

    def __init__(self, device: object = None):
        self.device = device
        self.seconds: float = float("nan")

    def __enter__(self) -> Timer:
        _device.synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        _device.synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def time_calls(
    fn: Callable[[], Any], repeat: int = 100, warmup: int = 5, device: object = None
) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed; return seconds.

    Warm-up absorbs one-off costs (allocations, lazy initialisation, caches) that would
    otherwise land in the first timing and inflate the tail percentiles.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more, got {warmup}")
    for _ in range(warmup):
        fn()
    timings = []
    for _ in range(repeat):
        with Timer(device) as t:
            fn()
        timings.append(t.seconds)
    return timings


def model_size_bytes(model: Any) -> int:
    """Size of a model's weights as ``torch.save`` writes them (what a deploy ships).

    ``model`` is an ``nn.Module``, a state dict, or any object with ``state_dict()``.
    """
    import torch

    state = model if isinstance(model, Mapping) else getattr(model, "state_dict", None)
    if state is None:
        raise TypeError(
            f"model_size_bytes needs a torch module or a state dict, not {type(model).__name__}"
        )
    if callable(state):
        state = state()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes


@contextlib.contextmanager
def busy_cores(n: int = 1) -> Iterator[None]:
    """Keep ``n`` cores busy (one spinning process each) during the block: to measure how
    something behaves when it shares the machine, as a server shares it with its clients.
    The processes are killed when the block ends, even on error."""
    if n < 1:
        raise ValueError(f"n must be 1 or more, got {n}")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def process_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` now, in MB (Linux: ``/proc``); NaN when it has
    none to report (a zombie). An ``OSError`` when there is no such process."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def _stat_fields(stat: Path) -> list[str]:
    """The fields of a ``/proc/<pid>/stat`` file after the command name (which may hold
    spaces and parentheses): state, parent pid, ... ; empty when the process is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def is_running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return bool(fields) and fields[0] != "Z"


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it, now (Linux: ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields:
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _proc_rss_mb(pid: int) -> float:
    """Its resident MB, 0 for a process that has gone or is a zombie (a tree is read while
    its processes come and go)."""
    try:
        rss = process_rss_mb(pid)
    except OSError:
        return 0.0
    return 0.0 if math.isnan(rss) else rss


def _proc_cpu_s(pid: int) -> float:
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def tree_usage(pid: int) -> tuple[float, float]:
    """CPU seconds used so far and resident MB of ``pid`` and all its descendants (Linux)."""
    tree = process_tree(pid)
    return sum(_proc_cpu_s(p) for p in tree), sum(_proc_rss_mb(p) for p in tree)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB (10**6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def distribution_version(dist: str) -> str | None:
    """The installed version of a Python distribution, without importing it (fast), or
    ``None`` where it is not installed.

    >>> distribution_version("no-such-distribution") is None
    True
    """
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Fingerprint of the machine and library versions that produced a measurement.

    Numbers from different machines are not comparable; recording this next to them
    says which machine a number belongs to.
    """
    import torch

    from mlinfra_kit.comparison import rounds_cap

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "mlinfra_kit": distribution_version("mlinfra-kit"),
        "torch": torch.__version__,
        "torchvision": distribution_version("torchvision"),
        "river": distribution_version("river"),
        "numpy": distribution_version("numpy"),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cuda": torch.version.cuda if cuda else None,
        "max_rounds": rounds_cap(),  # None: each comparison's own (a cap: a check-only run)
    }
