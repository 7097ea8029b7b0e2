"""Serverless on Google Cloud Functions: the kit's server behind one HTTP function.

Cloud Functions (2nd gen) runs Python functions with ``functions-framework``, an HTTP server
that calls one function for every request to the function's URL, whatever its path. The
function here, :func:`predict`, hands each request to the kit's own FastAPI app in process,
so ``/predict``, ``/predict/batch``, ``/health``, ``/ready`` and ``/metadata`` answer with
the same schemas and the same errors as ``mlinfra serve`` (422 naming the field, 413 for a
body over the limit); nothing is re-implemented. As with Lambda
(:mod:`mlinfra_kit.deployment.serverless`), the model loads during the instance's first
request (part of its cold start) and batching is off: an instance serves one request at a
time by default.

:func:`run_function` starts ``functions-framework`` as a real local HTTP server, as Cloud
Functions runs it; :func:`measure_function` times a cold start and warm requests over HTTP;
:func:`deploy_command` is the ``gcloud`` command that would deploy it (shown, never run).

Examples
--------
>>> print(FUNCTION_SOURCE, end="")
from mlinfra_kit.deployment.cloud_functions import predict  # noqa: F401
>>> " ".join(deploy_command("tag-predict", region="europe-west1")[:4])
'gcloud functions deploy tag-predict'
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlinfra_kit.services import LOOPBACK, child_process, free_port
from mlinfra_kit.serving.config import ServerConfig

__all__ = [
    "CLOUD_FUNCTIONS_RUNTIME",
    "FUNCTION_SOURCE",
    "RunningFunction",
    "deploy_command",
    "make_function",
    "measure_function",
    "predict",
    "run_function",
]

#: The file a deployment's source folder holds: the entry point, imported from the kit.
FUNCTION_SOURCE = "from mlinfra_kit.deployment.cloud_functions import predict  # noqa: F401\n"
#: A supported Cloud Functions Python runtime.
CLOUD_FUNCTIONS_RUNTIME = "python311"


def make_function(
    model: ServerConfig | str | os.PathLike, **settings: Any
) -> Callable[[Request], Awaitable[Response]]:
    """An async Cloud Functions HTTP function serving ``model`` (an artifact path or a
    :class:`ServerConfig`, with any field overridden by ``settings``) through the kit's
    app. The model loads here, before the first answer."""
    from mlinfra_kit.serving.app import create_app, load_now

    if not isinstance(model, ServerConfig):  # a function's defaults, where none were given
        settings = {"batching": False, "load_in_background": False, **settings}
    app = create_app(ServerConfig.of(model, **settings))
    load_now(app)

    async def function(request: Request) -> Response:
        messages: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await app(request.scope, request.receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        response = Response(body, status_code=start["status"])
        response.raw_headers = list(start.get("headers", []))  # the app's own, length included
        return response

    return function


_function: Callable[[Request], Awaitable[Response]] | None = None


@functions_framework.aio.http
async def predict(request: Request) -> Response:
    """The entry point a deployment names (``--entry-point predict``): serves the artifact
    at ``$MLINFRA_MODEL``, built on the instance's first request. Until a model has loaded,
    every request gets 503 with the reason (as the kit's server's ``/ready`` does), and the
    next request tries again."""
    global _function
    if _function is None:
        model = os.environ.get("MLINFRA_MODEL")
        try:
            if not model:
                raise ValueError("set MLINFRA_MODEL to the model artifact folder")
            _function = make_function(model)
        except ValueError as err:
            return JSONResponse({"detail": str(err)}, status_code=503)
    return await _function(request)


@dataclass(frozen=True)
class RunningFunction:
    """A function served by a local ``functions-framework`` process."""

    url: str
    pid: int
    started_at: float  # time.perf_counter() when the command was launched


@contextlib.contextmanager
def run_function(
    model: str | os.PathLike, port: int | None = None, timeout_s: float = 60
) -> Iterator[RunningFunction]:
    """Run :func:`predict` for ``model`` under ``functions-framework`` on loopback, from a
    source folder holding only :data:`FUNCTION_SOURCE` (what a deployment uploads besides
    the model). Yields once the server accepts connections: the model is not loaded yet,
    the first request loads it, as on a cold instance. Stops the server on exit."""
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="mlinfra-function-") as folder:
        source = Path(folder, "main.py")
        source.write_text(FUNCTION_SOURCE, encoding="utf-8")
        command = [
            str(Path(sys.executable).with_name("functions-framework")),
            "--target", "predict", "--source", str(source),
            "--host", LOOPBACK, "--port", str(port),
        ]  # fmt: skip
        tic = time.perf_counter()
        with child_process(
            command,
            f"functions-framework on port {port}",
            lambda: _accepts(port),
            timeout_s,
            env={"MLINFRA_MODEL": str(Path(model).resolve())},
        ) as process:
            yield RunningFunction(f"http://{LOOPBACK}:{port}", process.pid, tic)


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.2):
        return True
    return False


def measure_function(
    model: str | os.PathLike, warm_calls: int = 200, body: dict | None = None
) -> dict[str, Any]:
    """A cold start and ``warm_calls`` warm requests over HTTP against a fresh
    ``functions-framework`` process: ``cold_s`` (from launching the server to the first
    answer of ``POST /predict``: imports, server start, model load, first request),
    ``warm_s`` (each warm request's latency, one at a time on a keep-alive connection),
    the first answer's ``status`` and ``rss_mb``, the resident memory of the server's
    processes after the warm requests (what the function's memory setting must cover)."""
    import httpx

    from mlinfra_kit.measure import tree_usage

    if warm_calls < 1:
        raise ValueError(f"warm_calls must be 1 or more, got {warm_calls}")

    body = body or {"title": "Object detection with YOLO"}
    with run_function(model) as function, httpx.Client(base_url=function.url, timeout=60) as c:
        first = c.post("/predict", json=body)
        cold = time.perf_counter() - function.started_at
        warm = []
        for _ in range(warm_calls):
            tic = time.perf_counter()
            c.post("/predict", json=body).raise_for_status()
            warm.append(time.perf_counter() - tic)
        rss = tree_usage(function.pid)[1]
    return {"cold_s": cold, "warm_s": warm, "status": first.status_code, "rss_mb": rss}


def deploy_command(
    name: str = "tag-predict", region: str = "us-central1", memory: str = "1Gi"
) -> list[str]:
    """The ``gcloud`` command that deploys :func:`predict` from a folder holding
    ``main.py`` (:data:`FUNCTION_SOURCE`), a ``requirements.txt`` naming the kit, and the
    model artifact at ``./model``. Shown by the notebook, never run here."""
    return [
        "gcloud", "functions", "deploy", name, "--gen2",
        f"--runtime={CLOUD_FUNCTIONS_RUNTIME}", f"--region={region}", "--source=.",
        "--entry-point=predict", "--trigger-http", f"--memory={memory}",
        "--set-env-vars=MLINFRA_MODEL=model",
    ]  # fmt: skip
