"""Where a request's time goes in the kit's server, stage by stage, measured in process.

:func:`where_time_goes` drives the server's ASGI app directly (no sockets, no HTTP client),
so nothing else shares the measurement, and times every stage a ``POST /predict`` passes
through on the same bodies:

- **framework**: an endpoint doing no work on the same path through the framework: with
  the fast route (``ServerConfig.fast_route``, the default) the app's outer layers and the
  fast route's hand-off; without it FastAPI's routing, request object and response too;
- **body limits**: the middleware that reads the body within its size and time limits;
- **validation**: the body parsed and validated against the request model;
- **featurisation**: text to weighted n-gram ids;
- **model**: the network's forward pass and softmax (for a lone text or a small batch, in
  NumPy where the server runs it so: ``ServerConfig.numpy_max_batch``);
- **answers**: the answer objects built from the probabilities;
- **encoding**: the answer as JSON bytes;
- **the rest**: what the whole app costs beyond the sum of those stages: the route's own
  lines, the batcher's hand-offs, the model call's set-up (threads, inference mode) and the
  routing among the server's other routes.

Costs are microseconds per request: a stage run once per batch (featurisation, the model,
the answers) is divided by the batch's size. The HTTP layer (parsing the request line and
headers, writing the answer to the socket) happens in uvicorn before and after the app, so
it is not here: a notebook sets it beside this from the no-work endpoint's measured latency.

Examples
--------
>>> STAGES[:3]
('framework', 'body limits', 'validation')
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["STAGES", "Breakdown", "where_time_goes"]

#: The stages, in the order a request meets them (the last is what the whole app costs
#: beyond the others).
STAGES = (
    "framework",
    "body limits",
    "validation",
    "featurisation",
    "model",
    "answers",
    "encoding",
    "the rest",
)


@dataclass(frozen=True)
class Breakdown:
    """Microseconds per request by stage, at one batch size, and the whole app measured
    at once (``whole_us``): the stages, "the rest" included, sum to it."""

    batch_size: int
    parts_us: dict[str, float]
    whole_us: float
    #: Each stage's lowest and highest value over the rounds (the spread a verdict reads).
    ranges_us: dict[str, tuple[float, float]]
    #: With the fast route, what an endpoint doing no work costs through FastAPI's routing
    #: instead (what the fast route saves is this less "framework"); None without it.
    routed_us: float | None = None

    @property
    def measured_us(self) -> float:
        """The stages timed one by one (everything but "the rest")."""
        return sum(v for k, v in self.parts_us.items() if k != STAGES[-1])

    @property
    def largest(self) -> str:
        """The costliest stage ("the rest" is what no stage accounts for, not a stage)."""
        return max(STAGES[:-1], key=lambda k: self.parts_us[k])

    def row(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            **{f"{k}_us": round(v, 1) for k, v in self.parts_us.items()},
            "whole_us": round(self.whole_us, 1),
            "largest": self.largest,
            # Beside the stages, not one of them: the no-work endpoint through the routing.
            **({} if self.routed_us is None else {"no_work_routed_us": round(self.routed_us, 1)}),
        }


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: Any, body: bytes) -> int:
    """One POST through ``app``; its status."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(body), receive, send)
    return status


async def _per_request(app: Any, bodies: list[bytes], together: int) -> float:
    """Microseconds per request through ``app``, ``together`` requests at a time."""
    tic = time.perf_counter()
    for i in range(0, len(bodies), together):
        statuses = await asyncio.gather(*(_call(app, b) for b in bodies[i : i + together]))
        if any(s != 200 for s in statuses):
            raise RuntimeError(f"the app answered {sorted(set(statuses))}, not 200")
    return (time.perf_counter() - tic) / len(bodies) * 1e6


def _per_item(run: Callable[[], Any], items: int) -> float:
    """Microseconds per item of ``run()``, which handles ``items`` items."""
    tic = time.perf_counter()
    run()
    return (time.perf_counter() - tic) / items * 1e6


async def _started(app: Any) -> asyncio.Future[Any]:
    """Run ``app``'s lifespan start-up (the model loads); returns the lifespan's task."""
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    done = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            done.set()

    lifespan: asyncio.Future[Any] = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send)
    )
    await done.wait()
    app.state.mlinfra.predictor.require()  # not loaded: ModelNotReady says why
    return lifespan


def where_time_goes(
    model: str | Any,
    projects: Sequence[dict[str, str]],
    batch_sizes: Sequence[int] = (1, 32),
    rounds: int = 5,
) -> list[Breakdown]:
    """A :class:`Breakdown` per batch size for serving the artifact ``model`` (a path or a
    :class:`~mlinfra_kit.serving.config.ServerConfig`) ``projects`` (request bodies, each
    ``{"title": ..., "description": ...}``), each stage the median over ``rounds``.

    Batch size 1 sends one request at a time with batching off; a larger size sends that
    many at once to a server batching up to that size. On the CPU, metrics off (01 measures
    what they cost apart), no answer cache. Runs its own event loop (on a helper thread
    where one already runs, as in a notebook)."""
    import gc

    import torch

    from mlinfra_kit.data.projects import project_text
    from mlinfra_kit.serving import trivial
    from mlinfra_kit.serving.app import create_app
    from mlinfra_kit.serving.config import ServerConfig
    from mlinfra_kit.serving.middleware import BodySizeLimit
    from mlinfra_kit.serving.schemas import JsonBody, request_models

    if not projects:
        raise ValueError("projects is empty: give at least one request body")
    if rounds < 1 or any(b < 1 for b in batch_sizes):
        raise ValueError("rounds and every batch size must be at least 1")
    base = ServerConfig.of(
        model, metrics=False, cache_size=0, load_in_background=False, device="cpu"
    )
    bodies = [json.dumps(p).encode() for p in projects]
    texts = [project_text(p["title"], p.get("description", "")) for p in projects]

    async def noop(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    no_work = trivial.fast_app if base.fast_route else trivial.app
    limits = BodySizeLimit(noop, max_bytes=base.max_body_bytes)
    project_body = JsonBody(request_models(base.max_text_chars, base.max_items)[0])

    async def measure() -> list[Breakdown]:
        out = []
        for size in batch_sizes:
            config = ServerConfig.of(base, batching=size > 1, max_batch_size=size)
            app = create_app(config)
            lifespan = await _started(app)
            served = app.state.mlinfra.predictor.model
            await _per_request(app, bodies, size)  # warm-up: every word's n-grams seen once
            chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
            samples: dict[str, list[float]] = {k: [] for k in (*STAGES, "whole", "routed")}
            for _ in range(rounds):
                samples["whole"].append(await _per_request(app, bodies, size))
                samples["framework"].append(await _per_request(no_work, bodies, size))
                if base.fast_route:
                    samples["routed"].append(await _per_request(trivial.app, bodies, size))
                samples["body limits"].append(await _middleware_us(limits, noop, bodies))
                stages = _model_stages(served, chunks, bodies, project_body, config.numpy_max_batch)
                for stage, us in stages.items():
                    samples[stage].append(us)
            await app.state.mlinfra.close()
            lifespan.cancel()
            rest = [
                w - sum(samples[k][i] for k in STAGES[:-1]) for i, w in enumerate(samples["whole"])
            ]
            samples[STAGES[-1]] = [max(r, 0.0) for r in rest]
            parts = {k: statistics.median(samples[k]) for k in STAGES[:-1]}
            whole = statistics.median(samples["whole"])
            parts[STAGES[-1]] = max(whole - sum(parts.values()), 0.0)
            ranges = {k: (min(samples[k]), max(samples[k])) for k in STAGES}
            routed = statistics.median(samples["routed"]) if samples["routed"] else None
            out.append(Breakdown(size, parts, whole, ranges, routed))
        return out

    threads = torch.get_num_threads()
    try:
        if not _loop_running():
            return asyncio.run(measure())
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:  # a notebook's kernel runs a loop
            return pool.submit(asyncio.run, measure()).result()
    finally:  # the server's set-up, undone for the caller's process
        torch.set_num_threads(threads)
        gc.unfreeze()


async def _middleware_us(wrapped: Any, inner: Any, bodies: list[bytes]) -> float:
    """Microseconds per request that the middleware ``wrapped`` adds around ``inner``."""
    tic = time.perf_counter()
    for b in bodies:
        await _call(wrapped, b)
    outer = time.perf_counter() - tic
    tic = time.perf_counter()
    for b in bodies:
        await inner(_scope(b), _receiver(b), None)
    return max(outer - (time.perf_counter() - tic), 0.0) / len(bodies) * 1e6


def _model_stages(
    model: Any,
    chunks: list[list[str]],
    bodies: list[bytes],
    project_body: Any,
    numpy_max_batch: int = 0,
) -> dict[str, float]:
    """Microseconds per request of the stages around the model, each timed on its own;
    the forward pass as the server runs it (chunks of at most ``numpy_max_batch`` texts
    through the network's NumPy twin, where the network has one)."""
    from pydantic_core import to_json

    from mlinfra_kit.models.network import numpy_forward
    from mlinfra_kit.serving.predictor import answers_of

    n = len(bodies)
    encode = model.vocab_.encode_batch
    featurisation = _per_item(lambda: [encode(c) for c in chunks], n)
    arrays = [encode(c) for c in chunks]
    small = all(len(c) <= numpy_max_batch for c in chunks)
    twin = numpy_forward(model.net_) if small else None
    forward = (lambda a: _forward(model.net_, a)) if twin is None else (lambda a: twin(*a))
    proba = [model.predict_proba(c) for c in chunks]
    made = [answers_of(p, model.tags, model.version) for p in proba]
    return {
        "validation": _per_item(lambda: [project_body.parse(b) for b in bodies], n),
        "featurisation": featurisation,
        "model": _per_item(lambda: [forward(a) for a in arrays], n),
        "answers": _per_item(lambda: [answers_of(p, model.tags, model.version) for p in proba], n),
        "encoding": _per_item(lambda: [to_json(a) for m in made for a in m], n),
    }


def _receiver(body: bytes) -> Callable[[], Any]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _forward(net: Any, arrays: Any) -> Any:
    """The network's probabilities for one encoded batch (on the CPU)."""
    import torch

    with torch.inference_mode():
        tensors = (torch.from_numpy(a) for a in arrays)
        return torch.softmax(net(*tensors), dim=1).numpy()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
