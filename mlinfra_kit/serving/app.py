"""The real-time prediction server: a FastAPI app factory for a model artifact.

Endpoints: ``POST /predict`` (one project), ``POST /predict/batch`` (a list),
``GET /predictions/{id}`` (batch serving: a stored prediction and its age),
``GET /health`` (alive), ``GET /ready`` (model loaded), ``GET /metadata``; and the open
protocols of :mod:`mlinfra_kit.serving.protocols` (Open Inference Protocol v2, SageMaker's
``/ping`` and ``/invocations``).

Bad input never reaches the model: pydantic answers 422 naming the field at fault, a
body over ``max_body_bytes`` gets 413, and until the model has loaded every prediction
endpoint answers 503. Run it with ``mlinfra serve`` or :func:`mlinfra_kit.serving.run_server`.

Note: this module avoids ``from __future__ import annotations`` on purpose: FastAPI reads
the request models, which are built per app (their limits are settings), from the
annotations at run time.
"""

import asyncio
import contextlib
import gc
import json
import os
import threading
import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from mlinfra_kit.artifacts import is_artifact
from mlinfra_kit.data.projects import project_text
from mlinfra_kit.serving.batching import DynamicBatcher
from mlinfra_kit.serving.cache import LRUCache
from mlinfra_kit.serving.config import ServerConfig
from mlinfra_kit.serving.protocols import add_open_protocols

#: Whitespace as every engine that reads the schema understands it (Python's str.strip,
#: pydantic's Rust regex, the JSON Schema validators' ECMAScript regex): a title made only
#: of these is blank. The pattern requires one character outside the set.
_BLANK = (
    "\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
)
NON_BLANK = f"[^{_BLANK}]"
#: Longest excerpt of a rejected input an error message repeats.
EXCERPT_CHARS = 80


class MessageOut(BaseModel):
    """An error: what went wrong and what to do."""

    detail: str


class FieldError(BaseModel):
    """One field at fault: where (``loc``), why (``msg``, ``type``) and a short excerpt
    of what was sent (``input``, at most a few dozen characters, JSON-safe)."""

    loc: list[str | int]
    msg: str
    type: str
    input: str | None = None


class ValidationErrorOut(BaseModel):
    """422: every field at fault."""

    detail: list[FieldError]


def _cut(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _excerpt(value: Any) -> str:
    """A short, always-encodable rendering of a rejected input: ``repr`` with non-ASCII
    escaped (lone surrogates, NaN and huge numbers included), cut to EXCERPT_CHARS."""
    return _cut(ascii(value))


def _safe_loc(part: Any) -> str | int:
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    text = str(part)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = ascii(text)
    return _cut(text)


def validation_errors(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's validation errors as a short JSON body that always encodes: each field's
    location, message, type and an excerpt of its input (never the whole input)."""
    return {
        "detail": [
            {
                "loc": [_safe_loc(p) for p in e.get("loc", ())],
                "msg": _safe_loc(e.get("msg", "invalid")),
                "type": _safe_loc(e.get("type", "value_error")),
                "input": _excerpt(e["input"]) if "input" in e else None,
            }
            for e in errors[:20]
        ]
    }


_BODY_ERRORS = {
    400: {"model": MessageOut, "description": "the body is not JSON that can be read"},
    413: {"model": MessageOut, "description": "the body is larger than the limit"},
    415: {"model": MessageOut, "description": "a charset other than UTF-8"},
    422: {
        "model": ValidationErrorOut,
        "description": "a field is missing, of the wrong type, blank, too long, or unknown",
    },
    503: {"model": MessageOut, "description": "the model is loading or failed to load"},
}


class ModelIn(BaseModel):
    """The artifact to serve from now on."""

    model_config = ConfigDict(extra="forbid")
    path: Annotated[StrictStr, StringConstraints(min_length=1, max_length=4096)]


class SwapOut(BaseModel):
    model_version: str
    previous_version: str


class PredictionOut(BaseModel):
    tag: str
    probabilities: dict[str, float]
    model_version: str


class BatchOut(BaseModel):
    predictions: list[PredictionOut]
    model_version: str


class StoredOut(PredictionOut):
    id: str
    created_at: float
    age_s: float


def request_models(max_chars: int, max_items: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """The request bodies ``(ProjectIn, BatchIn)`` with these limits: one definition, so
    every server of the kit (this one, Ray Serve's) rejects the same input the same way."""

    class ProjectIn(BaseModel):
        """One project to tag: a non-empty title and an optional description."""

        model_config = ConfigDict(extra="forbid")
        title: Annotated[
            StrictStr,
            StringConstraints(min_length=1, max_length=max_chars, pattern=NON_BLANK),
        ]
        description: Annotated[StrictStr, StringConstraints(max_length=max_chars)] = ""

    class BatchIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        projects: Annotated[list[ProjectIn], Field(min_length=1, max_length=max_items)]

    return ProjectIn, BatchIn


def _charset(content_type: bytes) -> str | None:
    """The ``charset`` parameter of a Content-Type header, lowercased, if any."""
    for part in content_type.decode("latin-1").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


class BodySizeLimit:
    """ASGI middleware for request bodies: 413 for one over ``max_bytes``, declared or
    streamed; 415 for a charset other than UTF-8 (JSON is UTF-8; another charset would be
    decoded wrongly, not rejected); 408 when the body stalls for ``timeout_s``."""

    def __init__(self, app, max_bytes: int, timeout_s: float = 30.0):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        charset = _charset(headers.get(b"content-type", b""))
        if charset not in (None, "utf-8", "utf8"):
            return await _reply(
                send,
                415,
                f"charset {charset!r} is not supported: send the "
                "JSON body in UTF-8 (charset=utf-8, or none)",
            )
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send)
        chunks, size, more = [], 0, True
        while more:
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:  # a stalled client must not hold a worker (or a shutdown)
                return await _reply(
                    send,
                    408,
                    f"no more of the body came for {self.timeout_s:g} s; "
                    "send the whole body at once",
                )
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self._too_large(send)
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send):
        await _reply(
            send,
            413,
            f"request body is larger than {self.max_bytes} bytes; send fewer or shorter projects",
        )


async def _reply(send, status: int, detail: str) -> None:
    """Answer with ``{"detail": ...}`` from an ASGI middleware."""
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class _State:
    """What the app holds: the model (once loaded), the batcher, the cache, the store."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.model: Any = None
        self.load_error: str | None = None
        self.store: Any = None
        self.batcher: DynamicBatcher | None = None
        self.cache = LRUCache(config.cache_size)
        self.started_at = time.time()

    def load(self) -> None:
        """Runs on a thread, so /health answers (and /ready says 503) while loading."""
        try:
            import torch

            torch.set_num_threads(self.config.threads)
            model = load_model(self.config.model, self.config)
            if self.config.store:
                from mlinfra_kit.serving.store import open_store

                self.store = open_store(self.config.store)
            self.batcher = DynamicBatcher(
                self.predict_versioned,
                self.config.max_batch_size,
                self.config.max_wait_ms,
                self.config.batching,
                self.config.adaptive_batching,
            )
            self.model = model
            # Everything allocated so far lives as long as the server: take it out of the
            # garbage collector's scans, whose full passes otherwise pause every request.
            gc.freeze()
        except Exception as err:  # reported by /ready instead of killing the server
            self.load_error = f"{type(err).__name__}: {err}"

    def predict_versioned(self, texts: list[str], model: Any = None) -> list[tuple[Any, str]]:
        """``(prediction, version)`` per text from ``model`` (default: the one serving now):
        every answer names the version that computed it, across a swap too."""
        model = model or self.model
        return [(p, model.version) for p in model.predict(texts)]

    def swap(self, model: Any) -> str:
        """Serve ``model`` from now on; returns the version it replaced. One assignment on
        the event loop: a request computes with the old model or the new one, never a mix,
        and says which. Cached answers of the old model are dropped."""
        previous, self.model = self.model.version, model
        self.cache.clear()
        return previous

    def require_model(self):
        if self.model is None:
            detail = (
                f"model failed to load: {self.load_error}"
                if self.load_error
                else "model is loading; retry when GET /ready answers 200"
            )
            raise HTTPException(503, detail)
        return self.model


def load_model(path: str, config: ServerConfig) -> Any:
    """The tag classifier at ``path`` as ``config`` serves it (device, quantization)."""
    from mlinfra_kit.models import TagClassifier

    return TagClassifier.load(path, device=config.device, quantize=config.quantize)


def _is_loopback(host: str | None) -> bool:
    import ipaddress

    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _out(answer: tuple[Any, str]) -> dict[str, Any]:
    prediction, version = answer
    return {
        "tag": prediction.tag,
        "probabilities": prediction.probabilities,
        "model_version": version,
    }


def create_app(config: ServerConfig) -> FastAPI:
    """A FastAPI app serving the model artifact ``config.model``."""
    state = _State(config)
    ProjectIn, BatchIn = request_models(config.max_text_chars, config.max_items)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if config.load_in_background:
            threading.Thread(target=state.load, name="model-loader", daemon=True).start()
        else:
            state.load()
        yield
        if state.batcher is not None:
            await state.batcher.close()
        if state.store is not None:
            state.store.close()

    app = FastAPI(title="mlinfra-kit tag prediction", lifespan=lifespan)
    app.state.mlinfra = state
    app.add_middleware(
        BodySizeLimit, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes every input whole, and fails (a 500) on inputs JSON
        # cannot encode: NaN, infinities, lone surrogates.
        return JSONResponse(validation_errors(exc.errors()), status_code=422)

    async def predict_text(text: str):
        cached = state.cache.get(text)
        if cached is not None:
            return cached
        answer = await state.batcher.submit(text)
        if answer[1] == state.model.version:  # not an answer of a model swapped out meanwhile
            state.cache.put(text, answer)
        return answer

    @app.post(
        "/predict", response_model=None, responses={200: {"model": PredictionOut}, **_BODY_ERRORS}
    )
    async def predict(project: ProjectIn):
        state.require_model()
        answer = await predict_text(project_text(project.title, project.description))
        return JSONResponse(_out(answer))

    @app.post(
        "/predict/batch", response_model=None, responses={200: {"model": BatchOut}, **_BODY_ERRORS}
    )
    async def predict_batch(batch: BatchIn):
        texts = [project_text(p.title, p.description) for p in batch.projects]
        answers = await predict_texts(texts)
        return JSONResponse(
            {"predictions": [_out(a) for a in answers], "model_version": answers[0][1]}
        )

    async def predict_texts(texts: list[str]) -> list[tuple[Any, str]]:
        """A client's own batch: one model version for all of it, even across a swap."""
        model = state.require_model()
        answers = [state.cache.get(t) for t in texts]
        todo = [i for i, a in enumerate(answers) if a is None or a[1] != model.version]
        computed = await state.batcher.submit_many(
            [texts[i] for i in todo], lambda xs: state.predict_versioned(xs, model)
        )
        for i, answer in zip(todo, computed, strict=True):
            answers[i] = answer
            if state.model is model:
                state.cache.put(texts[i], answer)
        return answers

    add_open_protocols(app, state, predict_texts, ProjectIn, _BODY_ERRORS)

    @app.post(
        "/admin/model",
        response_model=None,
        responses={
            200: {"model": SwapOut},
            403: {"model": MessageOut, "description": "not from this machine"},
            404: {"model": MessageOut, "description": "no model artifact at that path"},
            409: {"model": MessageOut, "description": "the artifact does not load"},
            **{k: v for k, v in _BODY_ERRORS.items() if k != 415},
        },
    )
    async def swap_model(body: ModelIn, request: Request):
        """Serve another artifact from now on, without a restart: loaded on a thread while
        the current model keeps answering, then swapped in at once. Loopback clients only."""
        if not _is_loopback(request.client.host if request.client else None):
            raise HTTPException(403, "the model can be swapped from this machine only")
        state.require_model()
        if not is_artifact(body.path):
            raise HTTPException(404, f"no model artifact at {_excerpt(body.path)}")
        try:
            new = await asyncio.to_thread(load_model, body.path, config)
        except Exception as err:  # a broken artifact: say so, keep serving the old one
            raise HTTPException(
                409,
                f"cannot load {_excerpt(body.path)}: {type(err).__name__}: {_excerpt(str(err))}",
            ) from None
        previous = state.swap(new)
        return JSONResponse({"model_version": new.version, "previous_version": previous})

    @app.get(
        "/predictions/{entity_id}",
        response_model=None,
        responses={
            200: {"model": StoredOut},
            404: {"model": MessageOut, "description": "not stored, or no store"},
            503: _BODY_ERRORS[503],
        },
    )
    async def stored_prediction(entity_id: str):
        state.require_model()
        if state.store is None:
            raise HTTPException(
                404,
                "this server has no prediction store; start it with "
                "--store sqlite:PATH or --store redis://HOST:PORT/DB",
            )
        row = state.store.get(entity_id)
        if row is None:
            raise HTTPException(
                404,
                f"no stored prediction for id {entity_id!r}: a new "
                "entity; predict it live with POST /predict",
            )
        return JSONResponse(
            {
                "id": row.entity_id,
                "tag": row.tag,
                "probabilities": row.probabilities,
                "model_version": row.model_version,
                "created_at": row.created_at,
                "age_s": row.age_s(),
            }
        )

    @app.get("/health")
    async def health():
        return {"status": "ok", "uptime_s": time.time() - state.started_at, "pid": os.getpid()}

    @app.get("/ready", responses={503: _BODY_ERRORS[503]})
    async def ready():
        state.require_model()
        return {"status": "ready", "model_version": state.model.version}

    @app.get("/metadata", responses={503: _BODY_ERRORS[503]})
    async def metadata():
        model = state.require_model()
        meta = model.metadata_
        return {
            "model_version": model.version,
            "tags": list(model.tags),
            "metrics": meta.get("metrics", {}),
            "created_at": meta.get("created_at"),
            "config": asdict(config),
            "batching": state.batcher.stats(),
            "cache": state.cache.stats(),
        }

    return app


def load_now(app: FastAPI) -> None:
    """Load the model of an app made by :func:`create_app` now, in this thread, instead
    of in its lifespan (a serverless function, whose runtime may not run one). Raises a
    ``ValueError`` naming the artifact and why it failed to load."""
    state: _State = app.state.mlinfra
    state.load()
    if state.load_error:
        raise ValueError(f"cannot serve {state.config.model}: {state.load_error}")


#: The app factory uvicorn imports in each worker process.
APP_FACTORY = "mlinfra_kit.serving.app:app_from_env"


def app_from_env() -> FastAPI:
    """An app from the ``MLINFRA_SERVER_CONFIG`` environment variable (JSON of a
    :class:`ServerConfig`): the factory uvicorn calls in each server process."""
    return create_app(ServerConfig.from_env())


def uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    """The uvicorn settings every way of starting the server uses: no access log (at
    thousands of requests per second, logging each would cost more than predicting it),
    the HTTP protocol with a deadline for request headers, and the keep-alive and
    graceful-shutdown bounds of ``config``."""
    return {
        "access_log": False,
        "http": "mlinfra_kit.serving.protocol:HeaderTimeoutProtocol",
        "timeout_keep_alive": config.keep_alive_s,
        "timeout_graceful_shutdown": config.shutdown_timeout_s,
    }


def serve(
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    workers: int = 1,
) -> None:
    """Serve ``config`` with uvicorn until interrupted (what ``mlinfra serve`` runs), in
    ``workers`` processes sharing the port (each loads its own copy of the model: one per
    core is the usual choice, since each runs its model on its own event loop).

    On SIGTERM or Ctrl-C it stops accepting, answers what it has read, closes idle
    connections, waits at most ``config.shutdown_timeout_s`` for the rest, and exits 0.
    """
    import signal
    import sys

    import uvicorn

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    options = dict(host=host, port=port, log_level=log_level, **uvicorn_options(config))
    if workers > 1:  # uvicorn starts each worker from the factory, which reads the config
        os.environ.update(config.to_env())
        uvicorn.run(APP_FACTORY, factory=True, workers=workers, **options)
        return
    # uvicorn re-raises the signal it handled once it has shut down: exiting through this
    # handler makes a requested stop a clean exit (status 0), not a death by signal (143).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(create_app(config), **options)
