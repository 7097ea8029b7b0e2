"""Real HTTP traffic for a rollout: one timed prediction, and the ``send(variant, user)``
that :func:`~mlinfra_kit.online_testing.canary.run_canary` takes, over running servers.

>>> import httpx
>>> from mlinfra_kit.serving import run_trivial_server
>>> with run_trivial_server() as server, httpx.Client(base_url=server.url) as client:
...     clients = {"baseline": client, "candidate": client}
...     bodies, labels = [{"title": "object detection"}], ["computer-vision"]
...     send = http_sender(clients, bodies, labels, tag_of=lambda answer: "mlops")
...     observed = send("candidate", "user-3")
>>> observed.variant, observed.error, observed.quality
('candidate', False, 0.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mlinfra_kit.online_testing.canary import Observation

__all__ = ["http_sender", "predict_timed"]


def _tag(answer: dict[str, Any]) -> str | None:
    return answer.get("tag")


def predict_timed(
    client: Any,
    url: str,
    body: Mapping[str, Any],
    tag_of: Callable[[dict[str, Any]], str | None] = _tag,
) -> tuple[int, str | None, float]:
    """POST ``body`` to ``url`` (absolute, or a path under the client's ``base_url``) with an
    ``httpx.Client``: the status, the predicted tag (``None`` unless the status is 200) and
    the milliseconds the client waited."""
    tic = time.perf_counter()
    response = client.post(url, json=body)
    latency_ms = 1000 * (time.perf_counter() - tic)
    tag = tag_of(response.json()) if response.status_code == 200 else None
    return response.status_code, tag, latency_ms


def http_sender(
    clients: Mapping[str, Any],
    bodies: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    path: str = "/predict",
    tag_of: Callable[[dict[str, Any]], str | None] = _tag,
) -> Callable[[str, object], Observation]:
    """``send(variant, user)`` for :func:`~mlinfra_kit.online_testing.canary.run_canary`: one
    real request to ``clients[variant]`` (an ``httpx.Client`` with its server's
    ``base_url``), timed and scored against the true tag. User ``"user-17"`` (or ``17``)
    sends ``bodies[17 % len(bodies)]``, whose true tag is ``labels[17 % len(bodies)]``; an
    answer other than 200 is an error, with the time waited."""
    if len(bodies) != len(labels) or not bodies:
        raise ValueError(
            f"need one label per body and at least one, got {len(bodies)} and {len(labels)}"
        )

    def send(variant: str, user: object) -> Observation:
        i = int(str(user).rsplit("-", 1)[-1]) % len(bodies)
        status, tag, latency_ms = predict_timed(clients[variant], path, bodies[i], tag_of)
        ok = status == 200
        return Observation(variant, latency_ms, not ok, float(ok and tag == labels[i]))

    return send
