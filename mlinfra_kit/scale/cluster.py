"""Connecting to Ray: the same code on a laptop and on a cluster."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlinfra_kit.services import quiet_loggers

__all__ = [
    "INSTALL_HINT",
    "RAY_NOISE",
    "RayCluster",
    "quiet_ray_logs",
    "ray_available",
    "ray_cluster",
    "require_ray",
]

#: What Ray's native code and background threads print on the driver that says
#: nothing a user of these jobs can act on: Ray Data's actor pools keep their UDF's class
#: in the object store (flagged for restartable actors), and Serve's controller, killed on
#: shutdown, has its last task reported as failed.
RAY_NOISE = (
    r"core_worker\.cc:\d+: Actor with class name: .* has constructor arguments in the object store",
    r"ServeController\.graceful_shutdown failed",
)

#: How long a local cluster started here keeps an idle worker process beyond one per CPU
#: (Ray's default: 1 s). An actor pool takes workers of its own; when it stops, the next
#: task-based job (a Ray Data groupby) would start fresh ones, each importing Ray and its
#: libraries again: measured on 2 cores, 10 s for a job that takes 0.9 s on warm workers.
IDLE_WORKER_KEEP_S = 600

INSTALL_HINT = 'Ray is not installed: pip install "mlinfra-kit[scale]"'


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray():
    if not ray_available():
        raise ImportError(INSTALL_HINT)
    import ray

    return ray


@dataclass(frozen=True)
class RayCluster:
    """The Ray cluster a block runs on: its address, CPUs, and how long it took to start
    or join."""

    address: str  # "local" for a cluster started here
    cpus: float
    startup_s: float
    #: Where Ray's metrics agent serves the cluster's metrics (Ray Serve's included) for
    #: Prometheus, for a local cluster started with ``metrics_port``; "" otherwise.
    metrics_url: str = ""


@contextlib.contextmanager
def ray_cluster(
    address: str | None = None, num_cpus: int | None = None, metrics_port: int | None = None
) -> Iterator[RayCluster]:
    """Connect to the cluster at ``address`` (or ``RAY_ADDRESS``); without one, start a
    local cluster with ``num_cpus`` CPUs (default: all), its metrics for Prometheus on
    ``metrics_port`` when given. Shut down on exit what was started here; a cluster that
    was already up stays up."""
    ray = require_ray()
    address = address or os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    tic = time.perf_counter()
    if started:
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        # A local cluster turns token authentication on (the safe default) and says so in
        # a warning on stderr, once per start: keep the default, drop the notice.
        with quiet_loggers(("ray._private.authentication",), logging.ERROR):
            if address:
                ray.init(address=address, **options)
            else:
                keep = {"idle_worker_killing_time_threshold_ms": IDLE_WORKER_KEEP_S * 1000}
                if metrics_port:
                    options["_metrics_export_port"] = metrics_port
                ray.init(num_cpus=num_cpus, _system_config=keep, **options)
    startup = time.perf_counter() - tic
    import ray.data  # noqa: F401 - configures Ray Data's logging now, before it is quietened

    # Ray prints the errors its raylet and GCS publish to the driver (a worker that died, a
    # task that failed) on stdout, wrapped in terminal colour codes, which a notebook shows
    # raw: plain text while this block runs (Ray reads the variable at each print).
    colour = os.environ.get("RAY_COLOR_PREFIX")
    os.environ["RAY_COLOR_PREFIX"] = "0"
    try:
        with quiet_ray_logs():
            yield RayCluster(
                address or "local",
                ray.cluster_resources().get("CPU", 0.0),
                startup,
                f"http://127.0.0.1:{metrics_port}/metrics"
                if metrics_port and started and not address
                else "",
            )
    finally:
        if started:
            ray.shutdown()
        if colour is None:
            os.environ.pop("RAY_COLOR_PREFIX", None)
        else:
            os.environ["RAY_COLOR_PREFIX"] = colour


@contextlib.contextmanager
def quiet_ray_logs() -> Iterator[None]:
    """Ray Data's and Ray Serve's driver-side INFO lines (each dataset execution, each
    Serve start) go to stderr: keep their warnings and errors only, in this block."""
    with quiet_loggers(("ray.data", "ray.serve"), logging.WARNING):
        yield
