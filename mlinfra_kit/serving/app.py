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
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json

from mlinfra_kit.artifacts import is_artifact
from mlinfra_kit.data.projects import project_text
from mlinfra_kit.serving.admin import check_admin, inside_root
from mlinfra_kit.serving.config import APP_FACTORY, READY_DIR_ENV, ServerConfig, workers_loaded
from mlinfra_kit.serving.limits import excerpt
from mlinfra_kit.serving.metrics import METRICS_CONTENT_TYPE, ServerMetrics
from mlinfra_kit.serving.middleware import BodySizeLimit, add_fast_route
from mlinfra_kit.serving.predictor import ModelNotReady, Predictor, load_model
from mlinfra_kit.serving.protocols import add_open_protocols
from mlinfra_kit.serving.schemas import (
    BODY_ERRORS,
    BatchOut,
    JsonAnswer,
    JsonBody,
    MessageOut,
    ModelIn,
    PredictionOut,
    StoredOut,
    SwapOut,
    request_models,
    validation_errors,
)

__all__ = ["APP_FACTORY", "app_from_env", "create_app", "load_now"]


class _Server:
    """What an app holds beside its routes: the predictor, the prediction store (batch
    serving's answers), the metrics; and how they load."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.metrics = ServerMetrics() if config.metrics else None
        self.predictor = Predictor(config, self.metrics)
        self.store: Any = None
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
            self.predictor.start(model)
            if folder := os.environ.get(READY_DIR_ENV):  # this worker is ready
                open(os.path.join(folder, str(os.getpid())), "w").close()
            # Everything allocated so far lives as long as the server: take it out of the
            # garbage collector's scans, whose full passes otherwise pause every request.
            gc.freeze()
        except Exception as err:  # reported by /ready instead of killing the server
            self.predictor.failed(f"{type(err).__name__}: {err}")

    async def close(self) -> None:
        await self.predictor.close()
        if self.store is not None:
            self.store.close()
        if self.metrics is not None:
            self.metrics.close()


def create_app(config: ServerConfig) -> FastAPI:
    """A FastAPI app serving the model artifact ``config.model``."""
    server = _Server(config)
    predictor = server.predictor
    ProjectIn, BatchIn = request_models(config.max_text_chars, config.max_items)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if config.load_in_background:
            threading.Thread(target=server.load, name="model-loader", daemon=True).start()
        else:
            server.load()
        yield
        await server.close()

    app = FastAPI(title="mlinfra-kit tag prediction", lifespan=lifespan)
    app.state.mlinfra = server

    if server.metrics is not None:
        exposition = server.metrics.render

        @app.get("/metrics", include_in_schema=False)
        async def metrics():
            """Prometheus metrics in the text format (:mod:`mlinfra_kit.serving.metrics`)."""
            return Response(exposition(), media_type=METRICS_CONTENT_TYPE)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes every input whole, and fails (a 500) on inputs JSON
        # cannot encode: NaN, infinities, lone surrogates.
        return JSONResponse(validation_errors(exc.errors()), status_code=422)

    @app.exception_handler(ModelNotReady)
    async def not_ready(request, exc: ModelNotReady) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    project_body, batch_body = JsonBody(ProjectIn), JsonBody(BatchIn)

    @app.post(
        "/predict",
        response_model=None,
        responses={200: {"model": PredictionOut}, **BODY_ERRORS},
        openapi_extra=project_body.openapi(),
    )
    async def predict(request: Request):
        project = project_body.parse(await request.body())
        text = project_text(project.title, project.description)
        return JsonAnswer(await predictor.predict(text))

    @app.post(
        "/predict/batch",
        response_model=None,
        responses={200: {"model": BatchOut}, **BODY_ERRORS},
        openapi_extra=batch_body.openapi(),
    )
    async def predict_batch(request: Request):
        batch = batch_body.parse(await request.body())
        texts = [project_text(p.title, p.description) for p in batch.projects]
        answers = await predictor.predict_many(texts)
        return JsonAnswer({"predictions": answers, "model_version": answers[0]["model_version"]})

    add_open_protocols(app, predictor, ProjectIn)

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
            **{k: v for k, v in BODY_ERRORS.items() if k != 415},
        },
    )
    async def swap_model(body: ModelIn, request: Request):
        """Serve another artifact from now on, without a restart: loaded on a thread while
        the current model keeps answering, then swapped in at once. Only with the admin
        token (``Authorization: Bearer TOKEN``), from this machine, and only an artifact
        inside the model folder (``model_root``)."""
        check_admin(config, request)
        predictor.require()
        path = inside_root(config, body.path)
        if not is_artifact(path):
            raise HTTPException(404, f"no model artifact at {excerpt(body.path)}")
        try:
            new = await asyncio.to_thread(load_model, path, config)
        except Exception as err:  # a broken artifact: say so, keep serving the old one
            raise HTTPException(
                409,
                f"cannot load {excerpt(body.path)}: {type(err).__name__}: {excerpt(str(err))}",
            ) from None
        previous = predictor.swap(new)
        return JSONResponse({"model_version": new.version, "previous_version": previous})

    @app.get(
        "/predictions/{entity_id}",
        response_model=None,
        responses={
            200: {"model": StoredOut},
            404: {"model": MessageOut, "description": "not stored, or no store"},
            503: BODY_ERRORS[503],
        },
    )
    async def stored_prediction(entity_id: str):
        predictor.require()
        if server.store is None:
            raise HTTPException(
                404,
                "this server has no prediction store; start it with "
                "--store sqlite:PATH or --store redis://HOST:PORT/DB",
            )
        row = server.store.get(entity_id)
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

    # The middleware, innermost first (each added wraps those before it).
    if config.fast_route:
        add_fast_route(app, "/predict", _fast_predict(predictor, project_body))
    app.add_middleware(
        BodySizeLimit,
        max_bytes=config.max_body_bytes,
        timeout_s=config.body_timeout_s,
        deadline_s=config.body_deadline_s,
    )
    if server.metrics is not None:  # outermost: it counts the 408, 413 and 415 answers too
        app.add_middleware(server.metrics.middleware)

    @app.get("/health")
    async def health():
        return {"status": "ok", "uptime_s": time.time() - server.started_at, "pid": os.getpid()}

    @app.get("/ready", responses={503: BODY_ERRORS[503]})
    async def ready():
        model = predictor.require()
        loaded, expected = workers_loaded()
        if loaded < expected:
            raise HTTPException(
                503, f"{loaded} of {expected} worker processes have loaded the model; retry soon"
            )
        return {"status": "ready", "model_version": model.version}

    @app.get("/metadata", responses={503: BODY_ERRORS[503]})
    async def metadata():
        model = predictor.require()
        meta = model.metadata_
        return {
            "model_version": model.version,
            "tags": list(model.tags),
            "metrics": meta.get("metrics", {}),
            "created_at": meta.get("created_at"),
            "config": config.shown(),
            **predictor.stats(),
        }

    return app


def _fast_predict(
    predictor: Predictor, project_body: JsonBody
) -> Callable[[bytes], Awaitable[bytes | None]]:
    """The fast route's handler for ``POST /predict``: the answer's bytes, or None for a
    body the route must answer (its 422 naming the field, its 503 before the model loads)."""

    async def answer(raw: bytes) -> bytes | None:
        try:
            project = project_body.parse(raw)
            found = await predictor.predict(project_text(project.title, project.description))
        except (RequestValidationError, ModelNotReady):
            return None
        return to_json(found)

    return answer


def load_now(app: FastAPI) -> None:
    """Load the model of an app made by :func:`create_app` now, in this thread, instead
    of in its lifespan (a serverless function, whose runtime may not run one). Raises a
    ``ValueError`` naming the artifact and why it failed to load."""
    server: _Server = app.state.mlinfra
    server.load()
    if server.predictor.load_error:
        raise ValueError(f"cannot serve {server.config.model}: {server.predictor.load_error}")


def app_from_env() -> FastAPI:
    """An app from the ``MLINFRA_SERVER_CONFIG`` environment variable (JSON of a
    :class:`ServerConfig`): the factory uvicorn calls in each server process."""
    return create_app(ServerConfig.from_env())
