"""Compute engine: the real-time server with N uvicorn worker processes on one machine.

Each worker is a separate process with its own copy of the model (and its own GIL), so N
workers can use N cores, at N times the memory. uvicorn's master process accepts the
connections and the kernel spreads them over the workers.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlinfra_kit.artifacts import require_artifact
from mlinfra_kit.measure import process_rss_mb
from mlinfra_kit.services import LOOPBACK, child_process, free_port
from mlinfra_kit.serving.config import ServerConfig
from mlinfra_kit.serving.process import server_command

__all__ = ["WorkerPool", "run_workers"]


@dataclass(frozen=True)
class WorkerPool:
    """A running pool of uvicorn worker processes: its URL, how long it took until every
    worker was ready, and the processes that answered."""

    url: str
    workers: int
    startup_s: float  # from launch until every worker answered /ready
    master_pid: int
    worker_pids: tuple[int, ...]  # the processes that answered

    def rss_mb(self) -> dict[int, float]:
        """Resident memory of each worker process, in MB (Linux)."""
        return {pid: process_rss_mb(pid) for pid in self.worker_pids}


@contextlib.contextmanager
def run_workers(
    model: ServerConfig | str | os.PathLike,
    workers: int = 2,
    port: int | None = None,
    timeout_s: float = 180,
    **settings: Any,
) -> Iterator[WorkerPool]:
    """Serve ``model`` (an artifact path or a :class:`ServerConfig`, with any field
    overridden by ``settings``) with ``workers`` uvicorn worker processes on a free
    loopback port.

    Waits until every worker has loaded the model (each answers /ready), yields, stops
    them all. Needs Linux (it reads /proc) for the memory and process numbers.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    config = ServerConfig.of(model, **settings)
    require_artifact(config.model)
    import httpx

    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"

    def all_ready() -> bool:
        # /ready must answer 200 from `workers` distinct processes.
        # A new connection per request, so the kernel may hand each to another worker.
        seen.clear()
        close = {"connection": "close"}
        for _ in range(20 * workers):
            if httpx.get(url + "/ready", headers=close, timeout=2).status_code != 200:
                return False
            seen.add(httpx.get(url + "/health", headers=close, timeout=2).json()["pid"])
            if len(seen) == workers:
                return True
        return False

    seen: set[int] = set()
    tic = time.perf_counter()
    with child_process(  # the command makes the workers' shared folders (workers_env)
        server_command(port, workers),
        f"{workers} uvicorn worker(s) on port {port}",
        all_ready,
        timeout_s,
        env=config.to_env(),
    ) as process:
        yield WorkerPool(url, workers, time.perf_counter() - tic, process.pid, tuple(sorted(seen)))
