"""The running example: ML projects, each with a title, a description and one tag.

Examples
--------
>>> projects = load_projects()
>>> projects.source
'shipped synthetic dataset (datasets/projects.csv)'
>>> len(projects), projects.tags[0] in TAGS
(764, True)
>>> train, val = train_val_split(projects, val_fraction=0.25, seed=0)
>>> len(train) + len(val) == len(projects)
True
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import overload

from mlinfra_kit.data.sources import REMOTE, fetch, shipped_path

__all__ = [
    "TAGS",
    "COLUMNS",
    "Project",
    "Projects",
    "load_projects",
    "load_holdout",
    "read_projects_csv",
    "train_val_split",
]

#: The four tags, in the order models use for their outputs.
TAGS = ("computer-vision", "natural-language-processing", "mlops", "other")


def project_text(title: str, description: str) -> str:
    """The text a model reads for a project: its title and description, joined.

    >>> project_text("YOLO", "on a webcam"), project_text("YOLO", "")
    ('YOLO on a webcam', 'YOLO')
    """
    return f"{title} {description}".strip()


COLUMNS = ("id", "created_on", "title", "description", "tag")


@dataclass(frozen=True)
class Project:
    """One ML project; ``text`` is what a model reads."""

    id: int
    created_on: datetime
    title: str
    description: str
    tag: str

    @property
    def text(self) -> str:
        return project_text(self.title, self.description)


@dataclass(frozen=True)
class Projects:
    """An ordered, immutable collection of projects that remembers where it came from."""

    rows: tuple[Project, ...]
    source: str

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Project]:
        return iter(self.rows)

    @overload
    def __getitem__(self, index: int) -> Project: ...
    @overload
    def __getitem__(self, index: slice) -> Projects: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return Projects(self.rows[index], self.source)
        return self.rows[index]

    def __repr__(self) -> str:
        return f"Projects({len(self)} rows from {self.source})"

    @property
    def ids(self) -> list[int]:
        return [p.id for p in self.rows]

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.rows]

    @property
    def tags(self) -> list[str]:
        return [p.tag for p in self.rows]

    def tag_counts(self) -> dict[str, int]:
        """Projects per tag, every tag listed (zero where absent), in ``TAGS`` order."""
        counts = Counter(self.tags)
        return {tag: counts.get(tag, 0) for tag in TAGS}

    def tag_counts_by_year(self) -> dict[int, dict[str, int]]:
        """``{year: {tag: count}}`` by ``created_on``: how the topic mix moves over time."""
        years = sorted({p.created_on.year for p in self.rows})
        return {y: self.where(lambda p, y=y: p.created_on.year == y).tag_counts() for y in years}

    def where(self, predicate: Callable[[Project], bool]) -> Projects:
        """The projects for which ``predicate(project)`` is true, in the same order."""
        return Projects(tuple(p for p in self.rows if predicate(p)), self.source)

    def sorted_by_time(self) -> Projects:
        return Projects(tuple(sorted(self.rows, key=lambda p: (p.created_on, p.id))), self.source)


def _describe_source(source: str | os.PathLike | None, which: str) -> tuple[str, str | Path]:
    """Resolve ``source`` to (human description, local path or URL)."""
    if source is None or source == "synthetic":
        path = shipped_path(f"{which}.csv")
        return f"shipped synthetic dataset (datasets/{path.name})", path
    if isinstance(source, str) and source in REMOTE:
        remote = REMOTE[source][which]
        return f"{source} {which} ({remote.url})", remote.url
    if isinstance(source, str) and "://" in source:
        return source, source
    return str(source), Path(source)


def _load(source: str | os.PathLike | None, which: str, sha256: str | None) -> Projects:
    description, location = _describe_source(source, which)
    if isinstance(location, str):
        known = {r.url: r.sha256 for named in REMOTE.values() for r in named.values()}
        location = fetch(location, sha256 or known.get(location))
    return read_projects_csv(location, source=description)


def load_projects(source: str | os.PathLike | None = None, sha256: str | None = None) -> Projects:
    """Load the projects used for training.

    ``source`` is ``None`` (the shipped synthetic dataset, offline), ``"made-with-ml"``
    (the public course dataset, pinned and hash-checked, downloaded once into the cache),
    a CSV path, or a URL (``sha256`` optional; known URLs are always checked). The result's
    ``source`` says which was used.
    """
    return _load(source, "projects", sha256)


def load_holdout(source: str | os.PathLike | None = None, sha256: str | None = None) -> Projects:
    """Load the held-out projects for the final evaluation (same sources as
    :func:`load_projects`)."""
    return _load(source, "holdout", sha256)


def _parse_row(row: dict[str, str], line: int, where: str) -> Project:
    try:
        pid = int(row["id"])
    except ValueError:
        raise ValueError(f"{where}, row {line}: id {row['id']!r} is not an integer") from None
    try:
        created = datetime.fromisoformat(row["created_on"].strip())
    except ValueError:
        raise ValueError(
            f"{where}, row {line}: created_on {row['created_on']!r} is not a date-time "
            "such as '2020-02-17 06:30:41'"
        ) from None
    tag = row["tag"].strip()
    if tag not in TAGS:
        raise ValueError(
            f"{where}, row {line}: unknown tag {tag!r}; expected one of {', '.join(TAGS)}"
        )
    title, description = row["title"] or "", row["description"] or ""
    if not (title.strip() or description.strip()):
        raise ValueError(f"{where}, row {line}: title and description are both empty")
    return Project(pid, created, title.strip(), description.strip(), tag)


def read_projects_csv(path: str | os.PathLike, source: str | None = None) -> Projects:
    """Read and validate a projects CSV (columns ``id, created_on, title, description,
    tag``; extra columns are ignored; quoted fields may hold commas, quotes, newlines)."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"no projects file at {path}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{where} is not a readable UTF-8 CSV file ({err.reason})") from None
    if not text.strip():
        raise ValueError(f"{where} is empty: expected a header line {','.join(COLUMNS)}")
    if "\x00" in text:
        raise ValueError(f"{where} is not a readable CSV file: it contains NUL bytes")
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{where} is missing column(s) {', '.join(missing)}; found {', '.join(header)}"
        )
    rows, seen = [], set()
    try:
        for row in reader:
            line = reader.line_num
            if None in row or any(row[c] is None for c in COLUMNS):
                raise ValueError(
                    f"{where}, row {line}: expected {len(header)} fields; check quoting"
                )
            project = _parse_row(row, line, where)
            if project.id in seen:
                raise ValueError(f"{where}, row {line}: duplicate id {project.id}")
            seen.add(project.id)
            rows.append(project)
    except csv.Error as err:
        raise ValueError(
            f"{where} is not a readable CSV file (line {reader.line_num}: {err})"
        ) from None
    if not rows:
        raise ValueError(f"{where} has a header but no projects")
    return Projects(tuple(rows), source or where)


def train_val_split(
    projects: Projects, val_fraction: float = 0.2, seed: int = 0
) -> tuple[Projects, Projects]:
    """Split stratified by tag, so both parts keep the class balance; deterministic in
    ``seed``. Each part keeps the input's order."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    rng = random.Random(seed)
    val_ids: set[int] = set()
    for tag in TAGS:
        ids = [p.id for p in projects if p.tag == tag]
        rng.shuffle(ids)
        val_ids.update(ids[: round(len(ids) * val_fraction)])
    train = projects.where(lambda p: p.id not in val_ids)
    val = projects.where(lambda p: p.id in val_ids)
    if not len(train) or not len(val):
        raise ValueError(
            f"val_fraction={val_fraction} leaves an empty part for {len(projects)} projects"
        )
    return train, val
