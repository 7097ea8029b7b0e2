"""The dynamic batcher and the LRU cache, in process."""

import asyncio

import pytest

from mlinfra_kit.serving import DynamicBatcher, LRUCache


def run(coro):
    return asyncio.run(coro)


def test_concurrent_items_share_calls_up_to_max_batch_size():
    calls = []

    def predict_many(items):
        calls.append(list(items))
        return [x + 1 for x in items]

    async def main():
        b = DynamicBatcher(predict_many, max_batch_size=4, max_wait_ms=20)
        out = await asyncio.gather(*(b.submit(i) for i in range(10)))
        await b.close()
        return out, b.stats()

    out, stats = run(main())
    assert out == list(range(1, 11))
    assert [len(c) for c in calls] == [4, 4, 2]
    assert stats["model_calls"] == 3 and stats["items"] == 10 and stats["largest_batch"] == 4


def test_disabled_batching_calls_once_per_item():
    async def main():
        b = DynamicBatcher(lambda xs: xs, enabled=False)
        await asyncio.gather(*(b.submit(i) for i in range(5)))
        return b.stats()

    assert run(main())["model_calls"] == 5


def test_a_lone_request_waits_at_most_about_max_wait_without_adaptive_batching():
    async def main():
        b = DynamicBatcher(lambda xs: xs, max_batch_size=64, max_wait_ms=10, adaptive=False)
        loop = asyncio.get_running_loop()
        t = loop.time()
        await b.submit(1)
        waited = loop.time() - t
        await b.close()
        return waited

    assert 0.005 < run(main()) < 1.0


def test_adaptive_batching_does_not_wait_for_company_that_is_not_coming():
    async def main():
        b = DynamicBatcher(lambda xs: xs, max_batch_size=64, max_wait_ms=200)
        loop = asyncio.get_running_loop()
        t = loop.time()
        await b.submit(1)  # alone: computed at once, not after 200 ms
        waited = loop.time() - t
        await asyncio.gather(*(b.submit(i) for i in range(10)))  # arrived together: one call
        await b.close()
        return waited, b.stats()

    waited, stats = run(main())
    assert waited < 0.1 and stats["adaptive"]
    assert stats["model_calls"] == 2 and stats["largest_batch"] == 10


def test_adaptive_batching_keeps_gathering_while_requests_keep_coming():
    calls = []

    async def main():
        b = DynamicBatcher(
            lambda xs: calls.append(len(xs)) or xs, max_batch_size=64, max_wait_ms=500
        )

        async def later(i):
            for _ in range(i % 3):  # arrives a loop turn or two after the first
                await asyncio.sleep(0)
            return await b.submit(i)

        await asyncio.gather(*(later(i) for i in range(9)))
        await b.close()

    run(main())
    assert calls == [9]


def test_errors_reach_every_waiter_and_the_worker_survives():
    def predict_many(items):
        if "bad" in items:
            raise RuntimeError("model broke")
        return items

    async def main():
        b = DynamicBatcher(predict_many, max_batch_size=8, max_wait_ms=5)
        results = await asyncio.gather(b.submit("bad"), b.submit("ok"), return_exceptions=True)
        after = await b.submit("fine")
        await b.close()
        return results, after

    results, after = run(main())
    assert all(isinstance(r, RuntimeError) for r in results) and after == "fine"


@pytest.mark.parametrize("kwargs", [{"max_batch_size": 0}, {"max_wait_ms": -1}])
def test_bad_settings(kwargs):
    with pytest.raises(ValueError):
        DynamicBatcher(lambda xs: xs, **kwargs)


def test_lru_cache_evicts_least_recent_and_counts():
    cache = LRUCache(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)  # evicts b
    assert cache.get("b") is None and cache.get("c") == 3
    assert cache.stats() == {
        "enabled": True,
        "maxsize": 2,
        "size": 2,
        "hits": 2,
        "misses": 1,
        "hit_rate": 2 / 3,
    }


def test_lru_cache_off():
    cache = LRUCache(maxsize=0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
    with pytest.raises(ValueError):
        LRUCache(maxsize=-1)


def test_a_batcher_outlives_its_event_loop():
    """Each asyncio.run is a new loop: the batcher starts a worker on it, not waiting on the
    ended loop's queue forever."""
    b = DynamicBatcher(lambda xs: [x * 2 for x in xs], max_batch_size=4, max_wait_ms=1)
    assert run(b.submit(1)) == 2
    assert run(b.submit(2)) == 4
    run(b.close())


def test_a_lone_item_is_computed_at_once_and_company_still_shares_a_call():
    calls = []

    def predict_many(items):
        calls.append(list(items))
        return items

    async def main():
        b = DynamicBatcher(predict_many, max_batch_size=8, max_wait_ms=50)
        alone = await b.submit("a")
        together = await asyncio.gather(*(b.submit(i) for i in range(5)))
        await b.close()
        return alone, together

    alone, together = run(main())
    assert alone == "a" and together == list(range(5))
    assert calls[0] == ["a"] and sorted(calls[1]) == [0, 1, 2, 3, 4] and len(calls) == 2
