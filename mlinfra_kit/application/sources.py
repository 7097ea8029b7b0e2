"""Where the application's new projects come from: a list in process, or a Redis Stream.

With Redis, the projects are published to a stream (``XADD``) and the application reads
them in a consumer group (``XREADGROUP``); a read batch is acknowledged (``XACK``) only when
the application asks for the next one, that is after every project in it was handled. A
crash leaves the unhandled projects pending for the next consumer, as in
:mod:`mlinfra_kit.processing.sources`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from mlinfra_kit.data.projects import Project


def _encode(project: Project) -> dict[str, str]:
    return {"project": json.dumps({"id": project.id, "created_on": project.created_on.isoformat(),
                                   "title": project.title, "description": project.description,
                                   "tag": project.tag})}


def _decode(fields: dict) -> Project:
    raw = fields.get(b"project") or fields.get("project")
    if raw is None:
        raise ValueError(f"stream entry lacks the 'project' field: {fields}")
    data = json.loads(raw)
    return Project(int(data["id"]), datetime.fromisoformat(data["created_on"]), data["title"],
                   data["description"], data["tag"])


def redis_project_stream(url: str, projects: Sequence[Project], stream: str = "mlinfra:projects",
                         group: str = "application", count: int = 50) -> Iterator[Project]:
    """Publish ``projects`` to a Redis Stream, then yield them back through a consumer
    group, acknowledging each read batch once it has been handled. The stream is deleted
    at the end."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.delete(stream)
        pipe = client.pipeline(transaction=False)
        for project in projects:
            pipe.xadd(stream, _encode(project))
        pipe.execute()
        client.xgroup_create(stream, group, id="0")
        while True:
            reply = client.xreadgroup(group, "consumer-1", {stream: ">"}, count=count, block=100)
            entries = [entry for _, batch in reply or () for entry in batch]
            if not entries:
                break
            for _, fields in entries:
                yield _decode(fields)
            client.xack(stream, group, *[mid for mid, _ in entries])
    finally:
        client.delete(stream)
        client.close()


def project_source(projects: Sequence[Project], redis_url: str | None = None
                   ) -> Iterable[Project]:
    """The projects in order: directly, or through a Redis Stream when ``redis_url`` is set."""
    return projects if redis_url is None else redis_project_stream(redis_url, projects)
