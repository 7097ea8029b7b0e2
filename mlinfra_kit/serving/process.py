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
from dataclasses import dataclass, field
from subprocess import Popen
from typing import Any

from mlinfra_kit.services import LOOPBACK, child_process, free_port
from mlinfra_kit.serving.config import ServerConfig

__all__ = ["RunningServer", "run_server", "run_trivial_server", "server_command"]


@dataclass(frozen=True)
class RunningServer:
    """A server process started on loopback: its URL, port and process, and the token its
    management API takes (``admin_headers``)."""

    url: str
    port: int
    process: Popen[bytes]
    admin_token: str | None = field(default=None, repr=False)

    @property
    def admin_headers(self) -> dict[str, str]:
        """The header ``POST /admin/model`` requires."""
        if self.admin_token is None:
            raise ValueError("this server was started without an admin token")
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def pid(self) -> int:
        return self.process.pid

    def warm_up(
        self, bodies: list[dict[str, Any]], requests: int = 50, path: str = "/predict"
    ) -> None:
        """Send ``requests`` requests (cycling through ``bodies``) and discard the answers:
        a fresh process's first calls pay one-off costs (lazy imports, allocator growth)
        that should not count against it in a comparison."""
        import httpx

        if not bodies:
            raise ValueError("warm_up needs at least one request body")
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for i in range(requests):
                client.post(path, json=bodies[i % len(bodies)])

    def get(self, path: str) -> dict[str, Any]:
        """GET ``path`` and return the JSON body (e.g. ``server.get("/metadata")``)."""
        import httpx

        response = httpx.get(self.url + path, timeout=30)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


def _answers(url: str, status: int = 200) -> bool:
    import httpx

    return httpx.get(url, timeout=1.0).status_code == status


def server_command(port: int, workers: int = 1) -> list[str]:
    """The command that serves a config on loopback with ``workers`` processes as
    ``mlinfra serve`` does (``python -m mlinfra_kit.serving``, which reads the config from
    :data:`~mlinfra_kit.serving.config.CONFIG_ENV`: run it with ``config.to_env()``).
    :func:`run_server` and :func:`~mlinfra_kit.deployment.run_workers` both start servers
    with it."""
    command = [sys.executable, "-m", "mlinfra_kit.serving", "--port", str(port)]
    return [*command, "--workers", str(workers)]


@contextlib.contextmanager
def run_server(
    model: ServerConfig | str | os.PathLike[str],
    *,
    port: int | None = None,
    wait_for: str = "/ready",
    timeout_s: float = 120,
    **settings: Any,
) -> Iterator[RunningServer]:
    """Run the model server for ``model`` (an artifact path or a :class:`ServerConfig`)
    in a child process, with any :class:`ServerConfig` field overridden by ``settings``
    (``run_server(path, batching=False, max_wait_ms=1)``).

    Waits until ``wait_for`` answers 200 (``/ready``: the model is loaded; ``/health``: the
    process is up), yields the server, and stops it when the block ends, even on error.
    Without an ``admin_token`` setting the server gets a fresh random one
    (``server.admin_token``), passed to the child process in its environment.
    """
    config = ServerConfig.of(model, **settings).with_admin_token()
    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    with child_process(
        server_command(port),
        f"model server on port {port}",
        lambda: _answers(url + wait_for),
        timeout_s,
        env=config.to_env(),
    ) as process:
        yield RunningServer(url, port, process, config.admin_token)


@contextlib.contextmanager
def run_trivial_server(
    port: int | None = None, timeout_s: float = 60, workers: int = 1
) -> Iterator[RunningServer]:
    """A server that does no work, to measure what a load generator can drive at most, in
    ``workers`` uvicorn processes (compare a server with as many)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    port = port or free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "mlinfra_kit.serving.trivial:app",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    url = f"http://{LOOPBACK}:{port}"
    with child_process(
        args, f"trivial server on port {port}", lambda: _answers(url + "/health"), timeout_s
    ) as process:
        yield RunningServer(url, port, process)
