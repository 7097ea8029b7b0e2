"""The Predictor, in process: one version per answer, batch and single equal, swaps."""

import asyncio
import threading

import numpy as np
import pytest

from mlinfra_kit.models import TagClassifier
from mlinfra_kit.serving.config import ServerConfig
from mlinfra_kit.serving.predictor import ModelNotReady, Predictor, answers_of, load_model


@pytest.fixture(scope="module")
def models(artifact, tmp_path_factory):
    """The shared model as served ("v1"), and the same weights saved as "v2"."""
    config = ServerConfig.of(artifact, threads=1)
    v1 = load_model(str(artifact), config)
    v2_path = TagClassifier.load(artifact).save(
        tmp_path_factory.mktemp("v2") / "tag-classifier", version="v2"
    )
    return config, v1, load_model(str(v2_path), config)


def started(config, model, **settings):
    predictor = Predictor(ServerConfig.of(config, **settings))
    predictor.start(model)
    return predictor


def test_not_ready_until_started_and_says_why_it_failed(models):
    config, v1, _ = models
    predictor = Predictor(config)
    with pytest.raises(ModelNotReady, match="loading"):
        asyncio.run(predictor.predict("yolo"))
    predictor.failed("ValueError: no weights")
    with pytest.raises(ModelNotReady, match="failed to load: ValueError: no weights"):
        predictor.require()
    predictor.start(v1)
    assert predictor.ready and predictor.require() is v1


def test_single_and_batch_answers_equal_the_model(models, projects):
    config, v1, _ = models
    texts = [p.text for p in projects[:40]]
    predictor = started(config, v1)

    async def both():
        singles = await asyncio.gather(*(predictor.predict(t) for t in texts))
        batch = await predictor.predict_many(texts)
        await predictor.close()
        return singles, batch

    singles, batch = asyncio.run(both())
    # equal, to float32 rounding: the two may group the texts into model calls differently,
    # and a small call runs in NumPy (numpy_max_batch), a larger one in torch
    for single, answer in zip(singles, batch, strict=True):
        assert single["tag"] == answer["tag"] and single["model_version"] == "v1"
        assert single["probabilities"] == pytest.approx(answer["probabilities"], abs=1e-6)
    expected = v1.predict(texts)
    assert [a["tag"] for a in batch] == [p.tag for p in expected]
    for answer, p in zip(batch, expected, strict=True):
        assert answer["model_version"] == "v1"
        assert answer["probabilities"] == pytest.approx(p.probabilities, abs=1e-6)
    assert predictor.stats()["batching"]["model_calls"] < len(texts) + 1  # singles were batched


def test_a_batch_is_one_version_even_when_the_model_is_swapped_while_it_waits(models, projects):
    config, v1, v2 = models
    texts = [p.text for p in projects[:600]]  # several chunks: the swap lands between them
    predictor = started(config, v1, cache_size=1000)

    async def swap_midway():
        asyncio.get_running_loop().call_soon(predictor.swap, v2)
        return await predictor.predict_many(texts)

    answers = asyncio.run(swap_midway())
    assert {a["model_version"] for a in answers} == {"v1"}
    assert predictor.model is v2
    assert len(predictor.cache) == 0  # v1's answers are not kept once v2 serves
    again = asyncio.run(predictor.predict_many(texts[:5]))
    assert {a["model_version"] for a in again} == {"v2"}


def test_cached_answers_of_a_swapped_out_model_are_not_served(models):
    config, v1, v2 = models
    predictor = started(config, v1, cache_size=10)
    first = asyncio.run(predictor.predict("pose estimation with yolo"))
    predictor.swap(v2)
    second = asyncio.run(predictor.predict("pose estimation with yolo"))
    assert (first["model_version"], second["model_version"]) == ("v1", "v2")


def test_event_loops_on_several_threads_each_get_their_own_answers(models, projects):
    """A predictor per thread, each with its own event loop (as uvicorn's workers would
    be, or a serverless handler's helper thread): answers equal to one thread's."""
    config, v1, _ = models
    texts = [p.text for p in projects[:30]]
    reference = v1.predict(texts)
    seen: list[list[str]] = []

    def work():
        predictor = started(config, v1)

        async def run():
            answers = await asyncio.gather(*(predictor.predict(t) for t in texts))
            await predictor.close()
            return [a["tag"] for a in answers]

        seen.append(asyncio.run(run()))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [[p.tag for p in reference]] * 3


def test_a_few_texts_go_through_the_served_models_numpy_twin(models, projects, monkeypatch):
    """One text alone or a small batch: NumPy's forward pass, the same probabilities as
    torch's; a larger batch: torch; after a swap, the new model's twin; with
    ``numpy_max_batch=0``, torch's ``predict_proba`` for every call."""
    config, v1, v2 = models
    texts = [p.text for p in projects[:20]]
    expected = v1.predict_proba(texts)
    predictor = started(config, v1, numpy_max_batch=3)
    called = []
    monkeypatch.setattr(v1, "predict_proba", lambda xs, **kw: called.append(xs) or expected[:1])
    for text, row in zip(texts, expected, strict=True):
        (answer,) = predictor.predict_now([text])
        assert list(answer["probabilities"].values()) == pytest.approx(row.tolist(), abs=1e-6)
    small = predictor.predict_now(texts[:3])
    for answer, row in zip(small, expected[:3], strict=True):
        assert list(answer["probabilities"].values()) == pytest.approx(row.tolist(), abs=1e-6)
    assert not called  # the twin answered every lone text and the batch of three
    predictor.predict_now(texts[:4])
    assert called == [texts[:4]]  # a larger batch runs in torch
    predictor.swap(v2)
    assert predictor.predict_now(texts[:1])[0]["model_version"] == "v2"
    torch_only = started(config, v1, numpy_max_batch=0)
    torch_only.predict_now(texts[:1])
    assert called[-1] == texts[:1]


def test_answers_of_builds_every_row_at_once():
    proba = np.array([[0.1, 0.9], [0.7, 0.3]], dtype=np.float32)
    answers = answers_of(proba, ("a", "b"), "v9")
    assert [a["tag"] for a in answers] == ["b", "a"]
    assert all(type(v) is float for a in answers for v in a["probabilities"].values())
    assert answers_of(np.zeros((0, 2)), ("a", "b"), "v9") == []
