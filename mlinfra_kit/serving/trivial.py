"""A FastAPI app that does no work: the ceiling a load generator reaches on this machine.

Every served throughput is reported next to this one, so a reader can tell the server's
limit from the client's. Its endpoints have the same shapes as the model server's.
"""

from fastapi import FastAPI, Request

__all__ = ["health", "predict"]

app = FastAPI(title="mlinfra-kit trivial server")

_ANSWER = {"tag": "other", "probabilities": {"other": 1.0}, "model_version": "none"}


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.post("/predict")
async def predict(request: Request):
    await request.body()
    return _ANSWER
