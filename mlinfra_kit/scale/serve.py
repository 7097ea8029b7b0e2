"""The kit's model on Ray Serve: N replicas, requests batched with ``@serve.batch``.

The deployment answers the kit server's API (``POST /predict`` with the same request model,
so bad input gets the same 422; ``GET /health``), so the kit's load generator can load both
and compare them at the same concurrency.
"""

# No ``from __future__ import annotations`` here: FastAPI must see the request model itself,
# not its name, in the endpoint's signature (the model is local to tag_service).
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from mlinfra_kit.scale.cluster import RAY_NOISE, require_ray
from mlinfra_kit.services import LOOPBACK, drop_output_lines, free_port, quiet_loggers, wait_until

__all__ = ["SHUTDOWN_NOTICE_S", "ray_serve", "tag_service"]


def tag_service(
    model_path: str,
    replicas: int = 1,
    max_batch_size: int = 32,
    batch_wait_timeout_s: float = 0.002,
    max_text_chars: int = 5000,
) -> Any:
    """A bound Ray Serve application serving the artifact ``model_path``."""
    require_ray()
    from fastapi import FastAPI
    from ray import serve

    from mlinfra_kit.data.projects import project_text
    from mlinfra_kit.serving.schemas import request_models

    if replicas < 1 or max_batch_size < 1:
        raise ValueError("replicas and max_batch_size must be at least 1")
    project_in, _ = request_models(max_text_chars, 1)
    api = FastAPI(title="mlinfra-kit tag prediction on Ray Serve")

    # Serve caps requests in flight per replica (5 by default): too few for batches to form.
    @serve.deployment(
        num_replicas=replicas,
        ray_actor_options={"num_cpus": 1},
        max_ongoing_requests=4 * max_batch_size,
    )
    @serve.ingress(api)
    class TagService:
        def __init__(self, path: str):
            import torch

            from mlinfra_kit.models import TagClassifier

            torch.set_num_threads(1)  # one core per replica, like one kit worker
            self.model = TagClassifier.load(path)

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s)
        async def predict_many(self, texts: list[str]) -> list[dict[str, Any]]:
            return [
                {
                    "tag": p.tag,
                    "probabilities": p.probabilities,
                    "model_version": self.model.version,
                }
                for p in self.model.predict(texts)
            ]

        @api.post("/predict")
        async def predict(self, project: project_in) -> dict[str, Any]:  # type: ignore[valid-type]
            text = project_text(project.title, project.description)  # type: ignore[attr-defined]
            return await self.predict_many(text)

        @api.get("/health")
        async def health(self) -> dict[str, str]:
            return {"status": "ok"}

    return TagService.bind(str(model_path))  # type: ignore[attr-defined]  # added by @serve.deployment


SHUTDOWN_NOTICE_S = 1.0  # how long to hold back the killed controller's late notice


@contextlib.contextmanager
def ray_serve(
    model_path: str,
    replicas: int = 1,
    port: int | None = None,
    timeout_s: float = 120,
    **options: Any,
) -> Iterator[str]:
    """Run :func:`tag_service` on the connected Ray cluster, HTTP on 127.0.0.1; yields its
    URL once ``/health`` answers, and shuts Serve down on exit."""
    require_ray()
    import httpx
    from ray import serve  # its import sets the "ray.serve" logger to INFO, on stderr

    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    with quiet_loggers(("ray.serve",), logging.WARNING):
        serve.start(
            http_options={"host": LOOPBACK, "port": port},
            logging_config={"enable_access_log": False, "log_level": "WARNING"},
        )
        try:
            # Per-request access logs cost the proxy and replicas CPU the kit's server spends
            # on nothing comparable: off, for a like-for-like measurement.
            serve.run(
                tag_service(model_path, replicas, **options),
                name="mlinfra",
                route_prefix="/",
                logging_config={"enable_access_log": False, "log_level": "WARNING"},
            )

            def healthy() -> bool:
                try:
                    return httpx.get(url + "/health", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(healthy, timeout_s, f"Ray Serve on {url}")
            yield url
        finally:
            with drop_output_lines(RAY_NOISE):
                serve.shutdown()
                # The killed controller's pending task is reported a moment later.
                time.sleep(SHUTDOWN_NOTICE_S)
