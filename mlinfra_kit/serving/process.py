"""Start servers as real processes on a free loopback port, for notebooks and tests.

>>> import httpx
>>> with run_trivial_server() as server:
...     httpx.get(server.url + "/health").json()
{'status': 'ok'}
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from subprocess import Popen
from typing import Any

from mlinfra_kit.services import LOOPBACK, child_process, free_port
from mlinfra_kit.serving.config import APP_FACTORY, ServerConfig

__all__ = [
    "HTTP_SERVERS",
    "RunningServer",
    "granian_available",
    "run_server",
    "run_trivial_server",
    "server_command",
]

HTTP_SERVERS = ("uvicorn", "granian")
"""The HTTP servers an app can run on: uvicorn (the default, with the kit's hardening) or
Granian (a Rust HTTP server for ASGI apps, ``pip install granian``), to measure what the
HTTP layer costs."""


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


def granian_available() -> bool:
    """Whether Granian is installed in this environment (``pip install 'mlinfra-kit[peers]'``)."""
    return importlib.util.find_spec("granian") is not None


def _granian_command(target: str, port: int, workers: int = 1, factory: bool = False) -> list[str]:
    """Granian serving the ASGI app ``target`` (``module:attribute``; with ``factory``, a
    function that returns the app) on loopback, on its default event loop (uvloop when
    installed, as uvicorn's), without websockets or an access log."""
    if not granian_available():
        raise RuntimeError(
            "Granian is not installed: pip install 'mlinfra-kit[peers]' (or granian)"
        )
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", LOOPBACK]
    command += ["--port", str(port), "--workers", str(workers), "--no-ws", "--log-level", "warning"]
    return [*command, *(["--factory"] if factory else []), target]


def _check_http(http: str) -> None:
    if http not in HTTP_SERVERS:
        raise ValueError(f"http must be one of {', '.join(HTTP_SERVERS)}, got {http!r}")


@contextlib.contextmanager
def run_server(
    model: ServerConfig | str | os.PathLike[str],
    *,
    port: int | None = None,
    wait_for: str = "/ready",
    timeout_s: float = 120,
    http: str = "uvicorn",
    **settings: Any,
) -> Iterator[RunningServer]:
    """Run the model server for ``model`` (an artifact path or a :class:`ServerConfig`)
    in a child process, with any :class:`ServerConfig` field overridden by ``settings``
    (``run_server(path, batching=False, max_wait_ms=1)``).

    Waits until ``wait_for`` answers 200 (``/ready``: the model is loaded; ``/health``: the
    process is up), yields the server, and stops it when the block ends, even on error.
    Without an ``admin_token`` setting the server gets a fresh random one
    (``server.admin_token``), passed to the child process in its environment.

    ``http="granian"`` runs the same app on Granian instead of uvicorn, to measure what the
    HTTP server costs; the kit's own hardening of the HTTP layer (the deadline for request
    headers, the bounded graceful shutdown, several workers stopping together) is uvicorn's
    only, so ``mlinfra serve`` stays on uvicorn.
    """
    _check_http(http)
    config = ServerConfig.of(model, **settings).with_admin_token()
    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    if http == "granian":
        command = _granian_command(APP_FACTORY, port, factory=True)
    else:
        command = server_command(port)
    with child_process(
        command,
        f"model server on port {port}",
        lambda: _answers(url + wait_for),
        timeout_s,
        env=config.to_env(),
    ) as process:
        yield RunningServer(url, port, process, config.admin_token)


@contextlib.contextmanager
def run_trivial_server(
    port: int | None = None,
    timeout_s: float = 60,
    workers: int = 1,
    http: str = "uvicorn",
    fast_route: bool = False,
) -> Iterator[RunningServer]:
    """A server that does no work, to measure what a load generator can drive at most, in
    ``workers`` processes of ``http`` (uvicorn or Granian; compare a server with as many).
    ``fast_route``: ``POST /predict`` answered before FastAPI's routing, as the kit's server
    answers it (:mod:`mlinfra_kit.serving.trivial`)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    _check_http(http)
    port = port or free_port()
    app = f"mlinfra_kit.serving.trivial:{'fast_app' if fast_route else 'app'}"
    if http == "granian":
        args = _granian_command(app, port, workers)
    else:
        args = [sys.executable, "-m", "uvicorn", app, "--host", LOOPBACK, "--port", str(port)]
        args += ["--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    url = f"http://{LOOPBACK}:{port}"
    with child_process(
        args, f"trivial server on port {port}", lambda: _answers(url + "/health"), timeout_s
    ) as process:
        yield RunningServer(url, port, process)
