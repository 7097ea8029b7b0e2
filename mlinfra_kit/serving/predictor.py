"""The served model and everything between a text and its answer, in one object.

A :class:`Predictor` holds the loaded model, the cache of recent answers, the dynamic
batcher and the server's metrics hooks, and keeps one rule every route relies on: **an
answer names the model version that computed it**, and a client's own batch is computed by
one version, even when the model is swapped while it waits. Every route of the server
(``/predict``, ``/predict/batch``, the v2 and SageMaker protocols, and through them the
serverless handlers) answers through it, so they give the same answers within the same
limits.

An answer is the JSON object the routes send, built once per text from the model's
probabilities: ``{"tag": ..., "probabilities": {tag: p, ...}, "model_version": ...}``.
Answers are shared (a cached one goes to every client that asks the same text): read them,
never change them.

Examples
--------
>>> import asyncio
>>> from mlinfra_kit.serving.config import ServerConfig
>>> predictor = Predictor(ServerConfig.of("unused"))
>>> predictor.ready
False
>>> try:
...     predictor.require()
... except ModelNotReady as err:
...     print(err)
model is loading; retry when GET /ready answers 200
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import numpy as np

from mlinfra_kit.serving.batching import DynamicBatcher
from mlinfra_kit.serving.cache import LRUCache
from mlinfra_kit.serving.config import ServerConfig
from mlinfra_kit.serving.limits import excerpt
from mlinfra_kit.serving.metrics import ServerMetrics

__all__ = [
    "Answer",
    "ModelNotReady",
    "Predictor",
    "VERSION_LABEL",
    "answers_of",
    "load_model",
    "numpy_proba",
]

#: One text's answer, as the routes send it (read it, never change it: it may be cached).
Answer = dict[str, Any]

#: What a served model's version label may be: it is shown by /ready, in every answer and
#: in logs and dashboards, so it must be short and plain.
VERSION_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


class ModelNotReady(Exception):
    """No model to answer with yet (loading), or none at all (it failed to load): a 503."""


def load_model(path: str, config: ServerConfig) -> Any:
    """The tag classifier at ``path`` as ``config`` serves it (device, quantization), with
    a version label checked against :data:`VERSION_LABEL`."""
    from mlinfra_kit.models import TagClassifier

    model = TagClassifier.load(path, device=config.device, quantize=config.quantize)
    if not VERSION_LABEL.fullmatch(str(model.version)):
        raise ValueError(
            f"version label {excerpt(model.version)} is not allowed: use 1 to 64 letters, "
            "digits, '.', '_', '+' or '-', starting with a letter or digit"
        )
    return model


def answers_of(proba: np.ndarray, tags: Sequence[str], version: str) -> list[Answer]:
    """Answers from a ``[texts, tags]`` probability matrix, in one step: the top tag of
    every row from one ``argmax``, every probability a Python float from one ``tolist``.

    >>> answers_of(np.array([[0.2, 0.8]]), ["a", "b"], "v1")
    [{'tag': 'b', 'probabilities': {'a': 0.2, 'b': 0.8}, 'model_version': 'v1'}]
    """
    tags = list(tags)
    top = proba.argmax(axis=1).tolist() if len(proba) else []
    return [
        {
            "tag": tags[i],
            "probabilities": dict(zip(tags, row, strict=True)),
            "model_version": version,
        }
        for i, row in zip(top, proba.tolist(), strict=True)
    ]


def numpy_proba(model: Any) -> Callable[[Sequence[str]], np.ndarray] | None:
    """A few texts' probabilities, ``[texts, tags]``, with the forward pass in NumPy
    (:func:`~mlinfra_kit.models.network.numpy_forward`), or None where the model's network
    has no NumPy twin (quantized, on a GPU). A request alone in the server, or a small
    batch of them, is a few texts: this path skips torch's fixed cost per operator, the
    largest part of their model time for a network this small.

    >>> from mlinfra_kit.models import TagClassifier
    >>> texts = ["object detection with yolo", "machine translation with bert"]
    >>> model = TagClassifier(epochs=2, min_freq=1, progress=False, device="cpu")
    >>> model = model.fit(texts, ["computer-vision", "natural-language-processing"])
    >>> proba = numpy_proba(model)(texts)
    >>> proba.shape, bool(np.allclose(proba, model.predict_proba(texts), atol=1e-6))
    ((2, 4), True)
    """
    from mlinfra_kit.models.network import numpy_forward

    net = getattr(model, "net_", None)  # a stand-in model without a network: torch's path
    forward = None if net is None else numpy_forward(net)
    if forward is None:
        return None
    encode = model.vocab_.encode_batch

    def proba(texts: Sequence[str]) -> np.ndarray:
        return forward(*encode(texts))

    return proba


class Predictor:
    """The loaded model (once :meth:`start` has it), its cache, batcher and metrics."""

    def __init__(self, config: ServerConfig, metrics: ServerMetrics | None = None):
        self.config = config
        self.metrics = metrics
        self.cache = LRUCache(config.cache_size)
        self.model: Any = None
        self._numpy: tuple[Any, Callable[[Sequence[str]], np.ndarray] | None] = (None, None)
        self.load_error: str | None = None
        self.batcher = DynamicBatcher(
            self.predict_now,
            config.max_batch_size,
            config.max_wait_ms,
            config.batching,
            config.adaptive_batching,
            on_batch=None if metrics is None else metrics.observe_batch,
        )

    @property
    def ready(self) -> bool:
        return self.model is not None

    def start(self, model: Any) -> None:
        """Serve ``model`` (loaded by :func:`load_model`) from now on."""
        self._serve(model)

    def failed(self, error: str) -> None:
        """Loading failed: every prediction answers ``error`` from now on."""
        self.load_error = error

    def require(self) -> Any:
        """The model serving now; :class:`ModelNotReady` while it loads or if it failed."""
        if self.model is None:
            raise ModelNotReady(
                f"model failed to load: {self.load_error}"
                if self.load_error
                else "model is loading; retry when GET /ready answers 200"
            )
        return self.model

    def predict_now(self, texts: list[str], model: Any = None) -> list[Answer]:
        """The answers for ``texts`` from ``model`` (default: the one serving now), computed
        here, in one model call: what the batcher runs per batch. A call of at most
        ``config.numpy_max_batch`` texts goes through the model's NumPy twin where it has
        one (:func:`numpy_proba`): the same probabilities, to float32 rounding."""
        model = model or self.model
        if self.metrics is not None:  # input drift: the share of unknown words, sampled
            self.metrics.sample_unknown(texts, model.vocab_.unknown_rate)
        twin_of, twin = self._numpy
        if twin is not None and twin_of is model and len(texts) <= self.config.numpy_max_batch:
            proba = twin(texts)
        else:
            proba = model.predict_proba(texts)
        return answers_of(proba, model.tags, model.version)

    async def predict(self, text: str) -> Answer:
        """One text's answer, from the cache or computed in a batch with its concurrent
        neighbours."""
        self.require()
        answer = self.cache.get(text)
        if answer is None:
            answer = cast(dict[str, Any], await self.batcher.submit(text))
            if answer["model_version"] == self.model.version:  # not from a model swapped out
                self.cache.put(text, answer)
        self._count([answer])
        return answer

    async def predict_many(self, texts: list[str]) -> list[Answer]:
        """A client's own batch, every answer from one model version, even across a swap
        (cached answers of another version are computed again)."""
        model = self.require()
        answers = [self.cache.get(t) for t in texts]
        todo = [
            i for i, a in enumerate(answers) if a is None or a["model_version"] != model.version
        ]
        computed = await self.batcher.submit_many(
            [texts[i] for i in todo], lambda xs: self.predict_now(xs, model)
        )
        for i, answer in zip(todo, computed, strict=True):
            answers[i] = answer
            if self.model is model:
                self.cache.put(texts[i], answer)
        done = cast(list[Answer], answers)  # every gap was filled above
        self._count(done)
        return done

    def swap(self, model: Any) -> str:
        """Serve ``model`` from now on; returns the version it replaced. One assignment on
        the event loop: a request computes with the old model or the new one, never a mix,
        and says which. Cached answers of the old model are dropped."""
        previous = str(self.require().version)
        self._serve(model)
        self.cache.clear()
        return previous

    def stats(self) -> dict[str, Any]:
        """The batcher's and the cache's counters (``/metadata`` shows them)."""
        return {"batching": self.batcher.stats(), "cache": self.cache.stats()}

    async def close(self) -> None:
        await self.batcher.close()

    def _serve(self, model: Any) -> None:
        # Its NumPy twin first: a request that sees the new model finds the twin ready.
        self._numpy = (model, numpy_proba(model) if self.config.numpy_max_batch else None)
        self.model = model
        if self.metrics is not None:
            self.metrics.set_model(model.version)

    def _count(self, answers: Iterable[Answer]) -> None:
        if self.metrics is not None:  # output drift: answers by tag
            self.metrics.count_tags(a["tag"] for a in answers)
