"""Dynamic batching: gather concurrent requests into one model call.

A model call has a fixed cost (Python, tensor set-up, kernel launches) that a batch pays
once. Under concurrency, requests that arrive while the model is busy, or within
``max_wait_ms`` of the first one, share the next call, up to ``max_batch_size`` items.
With batching off, every request is its own call.

**Adaptive** batching (the default) does not wait for company that is not coming: a
request that finds nobody else waiting lets the event loop turn once, so requests already
received reach the batcher, and if none did it is computed at once, without the queue's
hand-offs, as without batching. Otherwise the batch takes what is queued, lets the loop run
a few times more, and closes as soon as a turn brings nothing new; under load a batch still
gathers everything that arrived while the model was busy, and ``max_wait_ms`` only bounds
how long a stream of arrivals can keep a batch open. ``adaptive=False`` waits the full
``max_wait_ms`` for stragglers, as classic dynamic batching does.

The model runs on the event loop itself, not on a worker thread: for a model this fast, a
hand-off to another thread costs more than it saves, because the two threads queue for
Python's GIL (measured here: about half the throughput). While a batch computes, new
requests wait in the socket buffers and form the next batch.

Examples
--------
>>> import asyncio
>>> async def demo():
...     batcher = DynamicBatcher(lambda xs: [x * 2 for x in xs], max_batch_size=8,
...                              max_wait_ms=5)
...     answers = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
...     await batcher.close()
...     return answers, batcher.stats()["model_calls"]
>>> asyncio.run(demo())
([0, 2, 4, 6, 8], 1)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ADAPTIVE_TURNS", "CLIENT_CHUNK", "CLIENT_CHUNK_CHARS", "DynamicBatcher"]

#: Items of a client's batch computed per model call before other requests get a turn:
#: small enough that one chunk takes tens of milliseconds, large enough that a huge batch
#: costs what it costs in one call (measured on 2 busy cores, 5,000 projects: 0.91 s in
#: chunks of 256, 0.97 s in one call, 1.36 s in chunks of 32).
CLIENT_CHUNK = 256
#: ... and at most this many characters of text per chunk: a batch of long texts (or of
#: huge made-up words) costs by its characters, not its count. 256 typical projects (about
#: 150 characters each) fit; 256 texts of 3,800 letters would hold the loop about 90 ms.
CLIENT_CHUNK_CHARS = 48_000

#: Event-loop turns an adaptive batch waits, after the queue empties, for requests already
#: received to reach it (a request's parsing and validation take a few turns).
ADAPTIVE_TURNS = 3


def _chunks(items: Sequence[Any]) -> list[list[Any]]:
    """``items`` cut into chunks of at most :data:`CLIENT_CHUNK` items and
    :data:`CLIENT_CHUNK_CHARS` characters (a string counts its length, anything else 1;
    one item longer than that is a chunk of its own)."""
    chunks: list[list[Any]] = []
    chunk: list[Any] = []
    chars = 0
    for item in items:
        size = len(item) if isinstance(item, str) else 1
        if chunk and (len(chunk) == CLIENT_CHUNK or chars + size > CLIENT_CHUNK_CHARS):
            chunks.append(chunk)
            chunk, chars = [], 0
        chunk.append(item)
        chars += size
    if chunk:
        chunks.append(chunk)
    return chunks


class DynamicBatcher:
    """Runs ``predict_many(items) -> results`` on batches of submitted items."""

    def __init__(
        self,
        predict_many: Callable[[list[Any]], Sequence[Any]],
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        enabled: bool = True,
        adaptive: bool = True,
        on_batch: Callable[[int, list[float]], None] | None = None,
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be 0 or more, got {max_wait_ms}")
        self.predict_many = predict_many
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.enabled = enabled
        self.adaptive = adaptive
        #: Called per model call with its size and each queued item's wait in seconds
        #: (the server's metrics); items of a client's own batch did not queue.
        self.on_batch = on_batch
        self.model_calls = 0
        self.items = 0
        self.largest_batch = 0
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[Any], float]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one the worker runs on
        self._submitting = 0  # calls of submit() not yet answered

    def stats(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "adaptive": self.adaptive,
            "max_batch_size": self.max_batch_size,
            "max_wait_ms": self.max_wait_ms,
            "model_calls": self.model_calls,
            "items": self.items,
            "mean_batch_size": self.items / self.model_calls if self.model_calls else 0.0,
            "largest_batch": self.largest_batch,
        }

    async def _call(
        self,
        items: list[Any],
        predict_many: Callable[[list[Any]], Sequence[Any]] | None = None,
        waits: list[float] | None = None,
    ) -> Sequence[Any]:
        self.model_calls += 1
        self.items += len(items)
        self.largest_batch = max(self.largest_batch, len(items))
        if self.on_batch is not None:
            self.on_batch(len(items), waits or [])
        # On the loop, on purpose: see the module notes.
        results = (predict_many or self.predict_many)(items)
        if len(results) != len(items):
            raise RuntimeError(
                f"predict_many returned {len(results)} results for {len(items)} items"
            )
        return results

    async def submit(self, item: Any) -> Any:
        """The result for one item, computed in a batch with its concurrent neighbours."""
        if not self.enabled:
            return (await self._call([item], waits=[0.0]))[0]
        if self.adaptive:
            self._submitting += 1
            try:
                if self._alone():
                    # Alone so far: one loop turn lets requests already received reach here;
                    # if none did, compute at once, without the queue's hand-offs.
                    await asyncio.sleep(0)
                    if self._alone():
                        return (await self._call([item], waits=[0.0]))[0]
                return await self._queued(item)
            finally:
                self._submitting -= 1
        return await self._queued(item)

    def _alone(self) -> bool:
        """Whether the one item being submitted is all there is: nothing queued or batched."""
        return self._submitting == 1 and (self._queue is None or self._queue.empty())

    async def _queued(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        queue = self._queue
        if self._loop is not loop or queue is None:  # the first call, or a new event loop
            self._queue = queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(queue))
            self._loop = loop
        future = loop.create_future()
        await queue.put((item, future, loop.time()))
        return await future

    async def submit_many(
        self,
        items: list[Any],
        predict_many: Callable[[list[Any]], Sequence[Any]] | None = None,
    ) -> list[Any]:
        """A client's own batch is already a batch: it goes to the model in chunks of
        :data:`CLIENT_CHUNK` items (and :data:`CLIENT_CHUNK_CHARS` characters), yielding to
        the event loop between chunks, so a huge batch never keeps other requests (or
        ``/health``) waiting for more than one chunk (tens of milliseconds for the tag
        model). ``predict_many`` overrides the batcher's function for this call."""
        results: list[Any] = []
        for n, chunk in enumerate(_chunks(items)):
            if n:
                await asyncio.sleep(0)  # let waiting requests in between chunks
            results.extend(await self._call(chunk, predict_many))
        return results

    async def _run(self, queue: asyncio.Queue[tuple[Any, asyncio.Future[Any], float]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_wait_ms / 1000
            quiet_turns = 0
            while len(batch) < self.max_batch_size:
                # Take what is already waiting without yielding; then wait for stragglers.
                try:
                    batch.append(queue.get_nowait())
                    quiet_turns = 0
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                if self.adaptive:  # a few loop turns for requests already received, no more
                    if quiet_turns == ADAPTIVE_TURNS:
                        break
                    quiet_turns += 1
                    await asyncio.sleep(0)
                    continue
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            futures = [f for _, f, _ in batch]
            now = loop.time()
            try:
                results = await self._call(
                    [item for item, _, _ in batch], waits=[now - t for _, _, t in batch]
                )
            except Exception as err:  # every waiter gets the error, the worker lives on
                for f in futures:
                    if not f.done():
                        f.set_exception(err)
                continue
            for f, r in zip(futures, results, strict=True):
                if not f.done():
                    f.set_result(r)

    async def close(self) -> None:
        if self._worker is not None and self._loop is asyncio.get_running_loop():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = self._loop = None
