"""Shadow testing: mirror live requests to a candidate without letting it touch the answer.

The user's request goes to the primary; as soon as the primary has answered, the same
request is sent to the candidate in the background, and the answer goes back to the user
without waiting for it. When the candidate answers (or fails), its prediction is compared
with the primary's. A slow or broken candidate costs the user nothing but the CPU the
mirror uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ShadowReport", "run_shadow"]


@dataclass
class ShadowReport:
    """Primary latencies (what users waited), answers, and the candidate's record."""

    primary_latencies_ms: list[float] = field(default_factory=list, repr=False)
    responses: list[dict] = field(default_factory=list, repr=False)
    candidate_latencies_ms: list[float] = field(default_factory=list, repr=False)
    agreements: int = 0
    compared: int = 0
    candidate_errors: int = 0
    mirrored: int = 0

    @property
    def agreement(self) -> float:
        return self.agreements / self.compared if self.compared else float("nan")


async def _mirror(client, url: str, body: dict, primary: dict, report: ShadowReport) -> None:
    tic = time.perf_counter()
    try:
        response = await client.post(url + "/predict", json=body)
        response.raise_for_status()
        tag = response.json()["tag"]
    except Exception:  # a broken candidate is recorded, never raised
        report.candidate_errors += 1
        return
    report.candidate_latencies_ms.append(1000 * (time.perf_counter() - tic))
    report.compared += 1
    report.agreements += tag == primary.get("tag")


async def _serve(
    primary_url: str, candidate_url: str | None, bodies: Sequence[dict], timeout_s: float
) -> ShadowReport:
    import httpx

    report = ShadowReport()
    background: set[asyncio.Task] = set()
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for body in bodies:
            tic = time.perf_counter()
            response = await client.post(primary_url + "/predict", json=body)
            answer = response.json()
            report.primary_latencies_ms.append(1000 * (time.perf_counter() - tic))
            report.responses.append(answer)
            if candidate_url is not None:
                report.mirrored += 1
                task = asyncio.create_task(_mirror(client, candidate_url, body, answer, report))
                background.add(task)
                task.add_done_callback(background.discard)
            await asyncio.sleep(0)  # let mirrors start; the user already has the answer
        if background:
            await asyncio.wait(background, timeout=timeout_s)
    return report


def run_shadow(
    primary_url: str,
    bodies: Sequence[dict],
    candidate_url: str | None = None,
    timeout_s: float = 30,
) -> ShadowReport:
    """Send ``bodies`` one by one to ``primary_url``, mirroring each to ``candidate_url``
    (``None``: no shadow, the baseline to compare the primary's latency with).

    Works the same from a notebook (whose loop is already running), a script or a test
    (:func:`~mlinfra_kit.services.run_coroutine`).
    """
    if not bodies:
        raise ValueError("bodies is empty: nothing to send")
    from mlinfra_kit.services import run_coroutine

    return run_coroutine(
        _serve(
            primary_url.rstrip("/"), candidate_url and candidate_url.rstrip("/"), bodies, timeout_s
        )
    )
