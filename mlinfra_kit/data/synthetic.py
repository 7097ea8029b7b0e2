"""A seeded generator of synthetic ML projects, the kit's offline running example.

The shipped ``datasets/projects.csv`` and ``datasets/holdout.csv`` are made by
``datasets/make_projects.py``, which calls :func:`generate_projects`. The data is
synthetic but built to behave like the public Made-With-ML projects dataset:

- the same schema (``id, created_on, title, description, tag``) and the same four tags;
- realistic vocabulary, with words shared across topics (a PyTorch object detector and
  a PyTorch translator share words) and projects that mix two topics, so the task is not
  trivial; a small share of labels is noisy, as hand labels are;
- class imbalance (MLOps is the smallest class);
- a time axis with drift: the topic mix moves over the years and new terms appear
  (vision transformers, diffusion, large language models), so later notebooks can study
  drift, out-of-vocabulary rates and retraining.

Examples
--------
>>> rows = generate_projects(5, seed=1)
>>> [r["id"] for r in rows]
[1, 2, 3, 4, 5]
>>> sorted(rows[0])
['created_on', 'description', 'id', 'tag', 'title']
>>> generate_projects(5, seed=1) == rows
True
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from mlinfra_kit.data.projects import TAGS

__all__ = ["generate_projects", "TOPIC_MIX"]

# Share of each topic at the start and at the end of the time range (interpolated).
TOPIC_MIX = {
    "computer-vision": (0.42, 0.27),
    "natural-language-processing": (0.31, 0.42),
    "mlops": (0.07, 0.17),
    "other": (0.20, 0.14),
}

#: The word tables projects are drawn from (tasks, methods and words per topic, shared words,
#: templates, name parts), kept as data in ``synthetic_words.json`` beside this module. A term
#: given as ``[term, year]`` appears only from that year on.
_TABLES = json.loads(
    resources.files(__package__).joinpath("synthetic_words.json").read_text("utf-8")
)
_TASKS, _METHODS, _WORDS = _TABLES["tasks"], _TABLES["methods"], _TABLES["words"]
_SHARED, _TITLE_TEMPLATES, _SENTENCES = (
    _TABLES["shared"],
    _TABLES["title_templates"],
    _TABLES["sentences"],
)
_QUOTED, _ADJECTIVES, _FRAMEWORKS = _TABLES["quoted"], _TABLES["adjectives"], _TABLES["frameworks"]
_SYLLABLES, _SUFFIXES = _TABLES["syllables"], _TABLES["suffixes"]

_MIX_PROBABILITY = 0.35  # share of projects that borrow vocabulary from a second topic
_LABEL_NOISE = 0.04  # share of projects whose tag is another plausible topic


def _available(terms: list[Any], year: float) -> list[str]:
    return [t if isinstance(t, str) else t[0] for t in terms if isinstance(t, str) or t[1] <= year]


def _fraction_of_year(when: datetime) -> float:
    return when.year + (when.timetuple().tm_yday - 1) / 366


def _pick_topic(rng: random.Random, progress: float) -> str:
    weights = [a + (b - a) * progress for a, b in TOPIC_MIX.values()]
    return rng.choices(list(TOPIC_MIX), weights=weights)[0]


def _name(rng: random.Random) -> str:
    return str(rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES + _SUFFIXES))


def _fill(template: str, rng: random.Random, topic: str, other: str, year: float) -> str:
    """Fill a template; each slot draws from the second topic ``other`` 30% of the time."""

    def draw(table: dict[str, list[Any]]) -> str:
        source = other if rng.random() < 0.3 else topic
        return rng.choice(_available(table[source], year))

    word = draw(_WORDS)
    values = {
        "task": draw(_TASKS),
        "method": draw(_METHODS),
        "word": word,
        "word2": rng.choice([w for w in _available(_WORDS[topic], year) if w != word]),
        "shared": rng.choice(_SHARED),
        "framework": rng.choice(_FRAMEWORKS),
        "adjective": rng.choice(_ADJECTIVES),
        "adjective2": rng.choice(_ADJECTIVES),
        "name": _name(rng),
    }
    values.update({k.capitalize(): v[:1].upper() + v[1:] for k, v in values.items()})
    return template.format(**values)


_SMALL_WORDS = {"a", "an", "and", "for", "from", "in", "of", "on", "the", "to", "using", "with"}


def _title_case(text: str) -> str:
    """Capitalise words as titles are written, leaving acronyms and small words alone."""
    words = text.split(" ")
    return " ".join(
        w[:1].upper() + w[1:] if w.islower() and (i == 0 or w not in _SMALL_WORDS) else w
        for i, w in enumerate(words)
    )


def _project(rng: random.Random, pid: int, when: datetime, progress: float) -> dict[str, Any]:
    topic = _pick_topic(rng, progress)
    mixed = rng.random() < _MIX_PROBABILITY
    other = rng.choice([t for t in TAGS if t != topic]) if mixed else topic
    year = _fraction_of_year(when)
    title = _title_case(_fill(rng.choice(_TITLE_TEMPLATES), rng, topic, other, year))
    sentences = [
        _fill(s, rng, topic, other, year) for s in rng.sample(_SENTENCES, rng.choice([1, 2, 2, 3]))
    ]
    if rng.random() < 0.08:
        sentences.append(_fill(rng.choice(_QUOTED), rng, topic, other, year))
    separator = "\n" if rng.random() < 0.1 else " "
    tag = topic
    if rng.random() < _LABEL_NOISE:
        tag = other if other != topic else rng.choice([t for t in TAGS if t != topic])
    return {
        "id": pid,
        "created_on": when.strftime("%Y-%m-%d %H:%M:%S"),
        "title": title,
        "description": separator.join(sentences),
        "tag": tag,
    }


def generate_projects(
    n: int = 955,
    seed: int = 0,
    start: datetime = datetime(2019, 1, 1),
    end: datetime = datetime(2024, 1, 1),
) -> list[dict[str, Any]]:
    """Generate ``n`` projects ordered by ``created_on``, ids 1..n, deterministic in ``seed``.

    The topic mix drifts linearly from ``TOPIC_MIX[tag][0]`` at ``start`` to
    ``TOPIC_MIX[tag][1]`` at ``end``; terms appear only after their year.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    offsets = sorted(rng.uniform(0, span) for _ in range(n))
    return [
        _project(rng, i + 1, start + timedelta(seconds=int(offset)), offset / span)
        for i, offset in enumerate(offsets)
    ]
