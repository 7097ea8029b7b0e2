"""FastAPI apps that do no work: the ceiling a load generator reaches on this machine.

Every served throughput is reported next to this one, so a reader can tell the server's
limit from the client's. Their endpoints have the same shapes as the model server's.
``app`` answers through FastAPI's routing, as any endpoint does; ``fast_app`` answers
``POST /predict`` before it, by the :class:`~mlinfra_kit.serving.middleware.FastRoute` the
kit's server uses (``ServerConfig.fast_route``): the ceiling on the kit's own path.
"""

from fastapi import FastAPI, Request
from pydantic_core import to_json

from mlinfra_kit.serving.middleware import add_fast_route

__all__ = ["app", "fast_app"]

_ANSWER = {"tag": "other", "probabilities": {"other": 1.0}, "model_version": "none"}
_ENCODED = to_json(_ANSWER)


def _app() -> FastAPI:
    made = FastAPI(title="mlinfra-kit trivial server")

    @made.get("/health")
    async def health():
        return {"status": "ok"}

    @made.post("/predict")
    async def predict(request: Request):
        await request.body()
        return _ANSWER

    return made


async def _answer(body: bytes) -> bytes:
    return _ENCODED


app = _app()
fast_app = _app()
add_fast_route(fast_app, "/predict", _answer)
