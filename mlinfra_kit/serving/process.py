"""Start servers as real processes on a free loopback port, for notebooks and tests.

>>> import httpx
>>> with run_trivial_server() as server:
...     httpx.get(server.url + "/health").json()
{'status': 'ok'}
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from subprocess import Popen

from mlinfra_kit.services import LOOPBACK, child_process, free_port


@dataclass(frozen=True)
class RunningServer:
    url: str
    port: int
    process: Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def get(self, path: str) -> dict:
        """GET ``path`` and return the JSON body (e.g. ``server.get("/metadata")``)."""
        import httpx

        response = httpx.get(self.url + path, timeout=30)
        response.raise_for_status()
        return response.json()


def _answers(url: str, status: int = 200) -> bool:
    import httpx

    return httpx.get(url, timeout=1.0).status_code == status


@contextlib.contextmanager
def run_server(model: str | os.PathLike, *, store: str | None = None, batching: bool = True,
               max_batch_size: int = 32, max_wait_ms: float = 2.0, cache_size: int = 0,
               max_items: int | None = None, max_body_bytes: int | None = None,
               device: str = "cpu", quantize: str | None = None, port: int | None = None,
               wait_for: str = "/ready", timeout_s: float = 120) -> Iterator[RunningServer]:
    """Run ``mlinfra serve`` for the artifact ``model`` in a child process.

    Waits until ``wait_for`` answers 200 (``/ready``: the model is loaded; ``/health``: the
    process is up), yields the server, and stops it when the block ends, even on error.
    """
    port = port or free_port()
    args = [sys.executable, "-m", "mlinfra_kit.cli", "serve", "--model", str(model),
            "--host", LOOPBACK, "--port", str(port), "--max-batch-size", str(max_batch_size),
            "--max-wait-ms", str(max_wait_ms), "--cache-size", str(cache_size),
            "--device", device]
    if not batching:
        args.append("--no-batching")
    if store:
        args += ["--store", str(store)]
    if max_items is not None:
        args += ["--max-items", str(max_items)]
    if max_body_bytes is not None:
        args += ["--max-body-bytes", str(max_body_bytes)]
    if quantize is not None:
        args += ["--quantize", quantize]
    url = f"http://{LOOPBACK}:{port}"
    with child_process(args, f"model server on port {port}",
                       lambda: _answers(url + wait_for), timeout_s) as process:
        yield RunningServer(url, port, process)


@contextlib.contextmanager
def run_trivial_server(port: int | None = None, timeout_s: float = 60
                       ) -> Iterator[RunningServer]:
    """A server that does no work, to measure what a load generator can drive at most."""
    port = port or free_port()
    args = [sys.executable, "-m", "uvicorn", "mlinfra_kit.serving.trivial:app",
            "--host", LOOPBACK, "--port", str(port), "--log-level", "warning",
            "--no-access-log"]
    url = f"http://{LOOPBACK}:{port}"
    with child_process(args, f"trivial server on port {port}",
                       lambda: _answers(url + "/health"), timeout_s) as process:
        yield RunningServer(url, port, process)
