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
from typing import Any

from mlinfra_kit.data.projects import Project
from mlinfra_kit.processing.sources import RedisStreamSource, text_fields

__all__ = ["ProjectCodec", "project_source", "redis_project_stream"]


class ProjectCodec:
    """A :class:`Project` as one JSON stream field."""

    def encode(self, project: Project) -> dict[str, Any]:
        return {
            "project": json.dumps(
                {
                    "id": project.id,
                    "created_on": project.created_on.isoformat(),
                    "title": project.title,
                    "description": project.description,
                    "tag": project.tag,
                }
            )
        }

    def decode(self, fields: dict) -> Project:
        raw = text_fields(fields).get("project")
        if raw is None:
            raise ValueError(f"stream entry lacks the 'project' field: {fields}")
        data = json.loads(raw)
        return Project(
            int(data["id"]),
            datetime.fromisoformat(data["created_on"]),
            data["title"],
            data["description"],
            data["tag"],
        )


def redis_project_stream(
    url: str,
    projects: Sequence[Project],
    stream: str = "mlinfra:projects",
    group: str = "application",
    count: int = 50,
) -> Iterator[Project]:
    """Publish ``projects`` to a Redis Stream, then yield them back through a consumer
    group, acknowledging each read batch once it has been handled. The stream is deleted
    at the end."""
    source = RedisStreamSource(url, stream, group, codec=ProjectCodec(), fresh=True)
    try:
        source.publish(projects)
        while batch := source.read(count):
            for _, project in batch:
                yield project
            source.ack([mid for mid, _ in batch])
    finally:
        source.delete()
        source.close()


def project_source(projects: Sequence[Project], redis_url: str | None = None) -> Iterable[Project]:
    """The projects in order: directly, or through a Redis Stream when ``redis_url`` is set."""
    return projects if redis_url is None else redis_project_stream(redis_url, projects)
