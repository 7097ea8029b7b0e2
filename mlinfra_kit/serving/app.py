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
import re
import threading
import time
from typing import Annotated, Any, cast

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from mlinfra_kit.artifacts import is_artifact
from mlinfra_kit.data.projects import project_text
from mlinfra_kit.serving.batching import DynamicBatcher
from mlinfra_kit.serving.cache import LRUCache
from mlinfra_kit.serving.config import READY_DIR_ENV, ServerConfig, workers_env, workers_loaded
from mlinfra_kit.serving.limits import NON_BLANK, excerpt, safe_text
from mlinfra_kit.serving.metrics import METRICS_CONTENT_TYPE, ServerMetrics
from mlinfra_kit.serving.protocols import add_open_protocols

__all__ = [
    "APP_FACTORY",
    "BatchOut",
    "BodySizeLimit",
    "FieldError",
    "MessageOut",
    "ModelIn",
    "PredictionOut",
    "StoredOut",
    "SwapOut",
    "VERSION_LABEL",
    "ValidationErrorOut",
    "app_from_env",
    "check_admin",
    "create_app",
    "is_loopback",
    "load_model",
    "load_now",
    "request_models",
    "run_uvicorn",
    "serve",
    "uvicorn_options",
    "validation_errors",
    "write_admin_token",
]


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


def _loc(part: Any) -> str | int:
    return part if isinstance(part, int) and not isinstance(part, bool) else safe_text(part)


def validation_errors(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's validation errors as a short JSON body that always encodes: each field's
    location, message, type and an excerpt of its input (never the whole input)."""
    return {
        "detail": [
            {
                "loc": [_loc(p) for p in e.get("loc", ())],
                "msg": safe_text(e.get("msg", "invalid")),
                "type": safe_text(e.get("type", "value_error")),
                "input": excerpt(e["input"]) if "input" in e else None,
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
    decoded wrongly, not rejected); 408 when the body stalls for ``timeout_s``, or has not
    all come ``deadline_s`` after the headers (one byte every few seconds must not hold a
    connection for hours)."""

    def __init__(self, app, max_bytes: int, timeout_s: float = 30.0, deadline_s: float = 60.0):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        content_type, declared = b"", None
        for name, value in scope["headers"]:  # the two it needs, without copying them all
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value
        charset = _charset(content_type)
        if charset not in (None, "utf-8", "utf8"):
            return await _reply(
                send,
                415,
                f"charset {excerpt(charset)} is not supported: send the "
                "JSON body in UTF-8 (charset=utf-8, or none)",
            )
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send)
        chunks, size, more = [], 0, True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        while more:
            left = deadline - loop.time()
            try:
                # asyncio.timeout, not wait_for: no extra Task per chunk of every body
                async with asyncio.timeout(min(self.timeout_s, max(left, 0))):
                    message = await receive()
            except TimeoutError:  # a stalled client must not hold a worker (or a shutdown)
                why = (
                    f"no more of the body came for {self.timeout_s:g} s"
                    if left > self.timeout_s
                    else f"the body had not all come {self.deadline_s:g} s after the headers"
                )
                return await _reply(send, 408, f"{why}; send the whole body at once")
            except asyncio.CancelledError:
                # The server is stopping and its grace period is over: the body will never
                # come. Say so (a 408, not the 500 and traceback a cancelled app gets), and
                # end this request's task, as the cancellation asked.
                return await _reply(
                    send, 408, "the server is shutting down and the body had not all come"
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
        self.metrics = ServerMetrics() if config.metrics else None

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
                on_batch=None if self.metrics is None else self.metrics.observe_batch,
            )
            self.model = model
            if self.metrics is not None:
                self.metrics.set_model(model.version)
            if folder := os.environ.get(READY_DIR_ENV):  # this worker is ready
                open(os.path.join(folder, str(os.getpid())), "w").close()
            # Everything allocated so far lives as long as the server: take it out of the
            # garbage collector's scans, whose full passes otherwise pause every request.
            gc.freeze()
        except Exception as err:  # reported by /ready instead of killing the server
            self.load_error = f"{type(err).__name__}: {err}"

    def predict_versioned(self, texts: list[str], model: Any = None) -> list[tuple[Any, str]]:
        """``(prediction, version)`` per text from ``model`` (default: the one serving now):
        every answer names the version that computed it, across a swap too."""
        model = model or self.model
        if self.metrics is not None:  # input drift: the share of unknown words, sampled
            self.metrics.sample_unknown(texts, model.vocab_.unknown_rate)
        return [(p, model.version) for p in model.predict(texts)]

    def swap(self, model: Any) -> str:
        """Serve ``model`` from now on; returns the version it replaced. One assignment on
        the event loop: a request computes with the old model or the new one, never a mix,
        and says which. Cached answers of the old model are dropped."""
        previous, self.model = self.model.version, model
        self.cache.clear()
        if self.metrics is not None:
            self.metrics.set_model(model.version)
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

    model = TagClassifier.load(path, device=config.device, quantize=config.quantize)
    if not VERSION_LABEL.fullmatch(str(model.version)):
        raise ValueError(
            f"version label {excerpt(model.version)} is not allowed: use 1 to 64 letters, "
            "digits, '.', '_', '+' or '-', starting with a letter or digit"
        )
    return model


#: What a served model's version label may be: it is shown by /ready, in every answer and
#: in logs and dashboards, so it must be short and plain.
VERSION_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def write_admin_token(token: str, port: int, folder: str | os.PathLike | None = None) -> str:
    """Write ``token`` to ``folder/admin-token-PORT`` (default folder: ``MLINFRA_STATE_DIR``,
    else ``~/.mlinfra``), readable by this user only, and return the file's path."""
    from pathlib import Path

    folder = folder or os.environ.get("MLINFRA_STATE_DIR")
    where = Path(folder) if folder else Path.home() / ".mlinfra"
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = where / f"admin-token-{port}"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return str(path)


def check_admin(config: ServerConfig, request: Request) -> None:
    """Two fences before the management API: the admin token (compared in constant time),
    then a loopback peer. The token is what counts: a relay on this machine (a port
    forward, a proxy) makes any client look local."""
    import secrets

    if config.admin_token is None:
        raise HTTPException(403, "the management API is off: start the server with an admin token")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.strip().encode("utf-8", "replace"), config.admin_token.encode()
    ):
        raise HTTPException(
            401,
            "send the admin token: Authorization: Bearer TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not is_loopback(request.client.host if request.client else None):
        raise HTTPException(403, "the model can be swapped from this machine only")


def _inside_root(config: ServerConfig, path: str) -> str:
    """``path`` resolved (symlinks too), if it lies inside the model folder; else 403."""
    resolved = os.path.realpath(path)
    root = config.models_folder
    if os.path.commonpath([resolved, root]) != root:
        raise HTTPException(
            403, f"{excerpt(path)} is outside the model folder; artifacts must be inside {root}"
        )
    return resolved


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a client's address) is this machine's loopback (127.0.0.0/8, ::1)."""
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
        if state.metrics is not None:
            state.metrics.close()

    app = FastAPI(title="mlinfra-kit tag prediction", lifespan=lifespan)
    app.state.mlinfra = state
    app.add_middleware(
        BodySizeLimit,
        max_bytes=config.max_body_bytes,
        timeout_s=config.body_timeout_s,
        deadline_s=config.body_deadline_s,
    )

    if state.metrics is not None:  # outermost: it counts the 408, 413 and 415 answers too
        app.add_middleware(state.metrics.middleware)

        @app.get("/metrics", include_in_schema=False)
        async def metrics():
            """Prometheus metrics in the text format (:mod:`mlinfra_kit.serving.metrics`)."""
            return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes every input whole, and fails (a 500) on inputs JSON
        # cannot encode: NaN, infinities, lone surrogates.
        return JSONResponse(validation_errors(exc.errors()), status_code=422)

    async def predict_text(text: str):
        answer = state.cache.get(text)
        if answer is None:
            answer = await state.batcher.submit(text)
            if answer[1] == state.model.version:  # not an answer of a model swapped out since
                state.cache.put(text, answer)
        if state.metrics is not None:
            state.metrics.count_tags([answer[0].tag])
        return answer

    @app.post(
        "/predict", response_model=None, responses={200: {"model": PredictionOut}, **_BODY_ERRORS}
    )
    async def predict(project: ProjectIn):  # type: ignore[valid-type]  # a model built above
        state.require_model()
        answer = await predict_text(project_text(project.title, project.description))  # type: ignore[attr-defined]
        return JSONResponse(_out(answer))

    @app.post(
        "/predict/batch", response_model=None, responses={200: {"model": BatchOut}, **_BODY_ERRORS}
    )
    async def predict_batch(batch: BatchIn):  # type: ignore[valid-type]  # a model built above
        texts = [project_text(p.title, p.description) for p in batch.projects]  # type: ignore[attr-defined]
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
        done = cast(list[tuple[Any, str]], answers)  # every gap was filled above
        if state.metrics is not None:
            state.metrics.count_tags(p.tag for p, _ in done)
        return done

    add_open_protocols(app, state, predict_texts, ProjectIn, _BODY_ERRORS)

    @app.post(
        "/admin/model",
        response_model=None,
        responses={
            200: {"model": SwapOut},
            401: {"model": MessageOut, "description": "no admin token, or the wrong one"},
            403: {
                "model": MessageOut,
                "description": "the API is off, the client is not on this machine, or the "
                "artifact is outside the model folder",
            },
            404: {"model": MessageOut, "description": "no model artifact at that path"},
            409: {"model": MessageOut, "description": "the artifact does not load"},
            **{k: v for k, v in _BODY_ERRORS.items() if k != 415},
        },
    )
    async def swap_model(body: ModelIn, request: Request):
        """Serve another artifact from now on, without a restart: loaded on a thread while
        the current model keeps answering, then swapped in at once. Only with the admin
        token (``Authorization: Bearer TOKEN``), from this machine, and only an artifact
        inside the model folder (``model_root``)."""
        check_admin(config, request)
        state.require_model()
        path = _inside_root(config, body.path)
        if not is_artifact(path):
            raise HTTPException(404, f"no model artifact at {excerpt(body.path)}")
        try:
            new = await asyncio.to_thread(load_model, path, config)
        except Exception as err:  # a broken artifact: say so, keep serving the old one
            raise HTTPException(
                409,
                f"cannot load {excerpt(body.path)}: {type(err).__name__}: {excerpt(str(err))}",
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
                f"no stored prediction for id {excerpt(entity_id)}: a new "
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
        loaded, expected = workers_loaded()
        if loaded < expected:
            raise HTTPException(
                503, f"{loaded} of {expected} worker processes have loaded the model; retry soon"
            )
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
            "config": config.shown(),
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
    Without ``config.admin_token`` it makes one for the management API, writes it to
    ``~/.mlinfra/admin-token-PORT`` (:func:`write_admin_token`; readable by you only) and
    removes it on exit.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    token_file = None
    if config.admin_token is None:  # made here, so every worker shares it
        config = config.with_admin_token()
        token_file = write_admin_token(config.admin_token, port)
        print(f"admin token for POST /admin/model: in {token_file} (yours only)", flush=True)
    try:
        run_uvicorn(config, host, port, log_level, workers)
    finally:  # the token dies with the server
        if token_file is not None:
            os.unlink(token_file)


def run_uvicorn(config: ServerConfig, host: str, port: int, log_level: str, workers: int) -> None:
    """Serve ``config`` with uvicorn in ``workers`` processes until SIGTERM or Ctrl-C (exit
    0): what :func:`serve` runs once the admin token is settled, and what
    ``python -m mlinfra_kit.serving`` runs for a config from the environment."""
    import signal
    import sys

    import uvicorn

    options = dict(host=host, port=port, log_level=log_level, **uvicorn_options(config))
    if workers > 1:  # uvicorn starts each worker from the factory, which reads the config
        with workers_env(workers) as shared:  # one /ready and one /metrics over every worker
            os.environ.update({**config.to_env(), **shared})
            settings = uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **options)
            from mlinfra_kit.serving.supervisor import Supervisor

            Supervisor(settings, sockets=[settings.bind_socket()]).run()
        return
    # uvicorn re-raises the signal it handled once it has shut down: exiting through this
    # handler makes a requested stop a clean exit (status 0), not a death by signal (143).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ.update(config.to_env())  # the HTTP protocol reads its head limits from it
    uvicorn.run(create_app(config), **options)
