"""Swapping the served model under load, and checking that nothing was dropped or
mislabelled: every answer names the version that computed it.

:func:`swap_under_load` keeps ``concurrency`` clients busy on ``/predict`` while it asks the
server (``POST /admin/model``) to serve another artifact, then counts failed requests and
answers labelled with a version they should not carry: after the swap was acknowledged,
every request that starts must be answered by the new version.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SwapReport", "swap_under_load"]


@dataclass(frozen=True)
class SwapReport:
    """What happened to the requests around a model swap."""

    requests: int
    failed: int
    by_version: dict[str, int]
    mis_versioned: int  # started after the swap was acknowledged, answered by the old model
    previous_version: str
    new_version: str
    swap_seconds: float  # from the swap request to its answer (loading included)
    statuses: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "mis_versioned": self.mis_versioned,
            "previous_version": self.previous_version,
            "new_version": self.new_version,
            **{f"answered_by_{v}": n for v, n in self.by_version.items()},
            "swap_seconds": self.swap_seconds,
        }


def swap_under_load(
    server: Any,
    bodies: list[dict[str, str]],
    new_model: str | Path,
    requests: int = 3000,
    concurrency: int = 64,
    swap_after: float = 0.5,
    timeout_s: float = 60,
    admin_token: str | None = None,
) -> SwapReport:
    """Load ``server`` (a :class:`~mlinfra_kit.serving.RunningServer`, or a URL with its
    ``admin_token``) with ``requests`` predictions from ``concurrency`` clients and, after
    ``swap_after`` seconds, swap it to the artifact ``new_model``."""
    if not bodies or requests < 1 or concurrency < 1:
        raise ValueError("need request bodies, requests >= 1 and concurrency >= 1")
    from mlinfra_kit.services import run_coroutine

    url = server if isinstance(server, str) else server.url
    token = admin_token or getattr(server, "admin_token", None)
    if token is None:
        raise ValueError("the swap needs the server's admin token (admin_token=...)")
    report: SwapReport = run_coroutine(
        _run(url, token, bodies, str(new_model), requests, concurrency, swap_after, timeout_s)
    )
    return report


async def _run(
    url: str,
    token: str,
    bodies: Sequence[dict[str, Any]],
    new_model: str,
    requests: int,
    concurrency: int,
    swap_after: float,
    timeout_s: float,
) -> SwapReport:
    import httpx

    limits = httpx.Limits(max_connections=concurrency + 1)
    results: list[tuple[float, int, str | None]] = []  # (started, status, version)
    swap: dict[str, Any] = {}
    counter = iter(range(requests))
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

        async def worker() -> None:
            for i in counter:
                started = time.perf_counter()
                try:
                    response = await client.post("/predict", json=bodies[i % len(bodies)])
                    version = response.json().get("model_version") if response.is_success else None
                    results.append((started, response.status_code, version))
                except httpx.HTTPError as err:
                    results.append((started, 0, type(err).__name__))

        async def swapper() -> None:
            await asyncio.sleep(swap_after)
            tic = time.perf_counter()
            response = await client.post(
                "/admin/model",
                json={"path": new_model},
                headers={"Authorization": f"Bearer {token}"},
            )
            swap["done"], swap["seconds"] = time.perf_counter(), time.perf_counter() - tic
            if response.status_code != 200:
                raise RuntimeError(f"the swap failed ({response.status_code}): {response.text}")
            swap.update(response.json())

        await asyncio.gather(swapper(), *(worker() for _ in range(concurrency)))
    new, old = swap["model_version"], swap["previous_version"]
    statuses = Counter(str(status) for _, status, _ in results)
    return SwapReport(
        requests=len(results),
        failed=sum(status != 200 for _, status, _ in results),
        by_version=dict(Counter(v for _, s, v in results if s == 200 and v is not None)),
        mis_versioned=sum(
            1
            for started, status, version in results
            if status == 200
            and (version not in (old, new) or (started > swap["done"] and version != new))
        ),
        previous_version=old,
        new_version=new,
        swap_seconds=swap["seconds"],
        statuses=dict(statuses),
    )
