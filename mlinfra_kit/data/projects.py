"""The running example: ML projects, each with a title, a description and one tag.

Examples
--------
>>> projects = load_projects("made-with-ml")
>>> projects.source
"made-with-ml projects (datasets/made-with-ml/dataset.csv, the course's real projects)"
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
from datetime import UTC, datetime
from pathlib import Path
from typing import overload

from mlinfra_kit.data.sources import KNOWN_SOURCES, REMOTE, SHIPPED, fetch, sha256_of, shipped_path

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


def project_body(title: str, description: str) -> dict[str, str]:
    """The JSON body of one project as the kit's server (and its peers) take it."""
    return {"title": title, "description": description}


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

    @property
    def body(self) -> dict[str, str]:
        """The JSON body the kit's server takes for this project (``POST /predict``)."""
        return project_body(self.title, self.description)


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
    def __getitem__(self, index: int | slice) -> Project | Projects:
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
        return {int(k): v for k, v in self.tag_counts_by_period("%Y").items()}

    def tag_counts_by_period(self, fmt: str = "%Y-%m") -> dict[str, dict[str, int]]:
        """``{period: {tag: count}}`` with periods named by ``created_on.strftime(fmt)``
        (``"%Y-%m"``: months), in time order."""
        periods = list(dict.fromkeys(p.created_on.strftime(fmt) for p in self.sorted_by_time()))
        by_period: dict[str, list[Project]] = {k: [] for k in periods}
        for p in self.rows:
            by_period[p.created_on.strftime(fmt)].append(p)
        return {k: Projects(tuple(rows), self.source).tag_counts() for k, rows in by_period.items()}

    def where(self, predicate: Callable[[Project], bool]) -> Projects:
        """The projects for which ``predicate(project)`` is true, in the same order."""
        return Projects(tuple(p for p in self.rows if predicate(p)), self.source)

    def sorted_by_time(self) -> Projects:
        return Projects(tuple(sorted(self.rows, key=lambda p: (p.created_on, p.id))), self.source)


def _shipped(source: str, which: str) -> tuple[str, Path]:
    name, sha256 = SHIPPED[source][which]
    path = shipped_path(name)
    if sha256 is not None and sha256_of(path) != sha256:
        raise ValueError(
            f"the shipped {source} {which} file {path} does not have its pinned sha256 "
            f"{sha256}: it was changed; restore it (git checkout datasets/) or reinstall"
        )
    label = "the course's real projects" if source == "made-with-ml" else "generated projects"
    return f"{source} {which} (datasets/{name}, {label})", path


def _describe_source(source: str | os.PathLike[str] | None, which: str) -> tuple[str, str | Path]:
    """Resolve ``source`` to (human description, local path or URL)."""
    if source is None:
        source = "synthetic"
    if isinstance(source, str) and source in SHIPPED:
        return _shipped(source, which)
    if isinstance(source, str) and "://" in source:
        return source, source
    path = Path(source)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass the path of a projects CSV file in it")
    looks_like_a_name = isinstance(source, str) and os.sep not in source and not path.suffix
    if looks_like_a_name and not path.exists():
        raise ValueError(
            f"unknown data source {source!r}: use one of {', '.join(KNOWN_SOURCES)}, "
            "the path of a CSV file, or a URL"
        )
    return str(source), path


def _load(source: str | os.PathLike[str] | None, which: str, sha256: str | None) -> Projects:
    description, location = _describe_source(source, which)
    if isinstance(location, str):
        known = {r.url: r.sha256 for named in REMOTE.values() for r in named.values()}
        location = fetch(location, sha256 or known.get(location))
    return read_projects_csv(location, source=description)


def load_projects(
    source: str | os.PathLike[str] | None = None, sha256: str | None = None
) -> Projects:
    """Load the projects used for training.

    ``source`` is a shipped dataset, read offline: ``"made-with-ml"`` (the course's real
    projects, hash-checked) or ``"synthetic"`` (generated, with controlled drift; also
    ``None``); or a CSV path, or a URL (downloaded once into the cache; ``sha256``
    optional, known URLs are always checked). The result's ``source`` says which was used.
    """
    return _load(source, "projects", sha256)


def load_holdout(
    source: str | os.PathLike[str] | None = None, sha256: str | None = None
) -> Projects:
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
        if created.tzinfo is not None:  # one clock for every row: naive UTC
            created = created.astimezone(UTC).replace(tzinfo=None)
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


def read_projects_csv(path: str | os.PathLike[str], source: str | None = None) -> Projects:
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


def time_split(projects: Projects, holdout_fraction: float = 0.2) -> tuple[Projects, Projects]:
    """The oldest projects for training and the newest ``holdout_fraction`` held out, by
    ``created_on``: the split for a question about the future (drift, retraining)."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    ordered = projects.sorted_by_time().rows
    cut = len(ordered) - round(len(ordered) * holdout_fraction)
    if not 0 < cut < len(ordered):
        raise ValueError(
            f"holdout_fraction={holdout_fraction} leaves an empty part for {len(ordered)} projects"
        )
    return Projects(ordered[:cut], projects.source), Projects(ordered[cut:], projects.source)


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def overlap(train: Projects, holdout: Projects) -> list[str]:
    """What a holdout shares with its training set, one line per shared project: the same
    id, or the same text (title and description, compared without case or extra spaces),
    the input a model reads. Empty for a clean split. (A shared title alone, with another
    description, is another project: :func:`shared_titles` counts those.)

    >>> day = datetime(2020, 1, 1)
    >>> a = Projects((Project(1, day, "YOLO", "Boxes.", "computer-vision"),), "a")
    >>> b = Projects((Project(2, day, "yolo ", "boxes.", "computer-vision"),), "b")
    >>> overlap(a, b)
    ['holdout id 2 has the text of training id 1']
    """
    ids = {p.id for p in train}
    texts = {_normal(p.text): p.id for p in train}
    found = []
    for p in holdout:
        text = _normal(p.text)
        if p.id in ids:
            found.append(f"id {p.id} is in both")
        elif text in texts:
            found.append(f"holdout id {p.id} has the text of training id {texts[text]}")
    return found


def shared_titles(train: Projects, holdout: Projects) -> int:
    """How many holdout projects have a title (without case or extra spaces) that a
    training project has too, with another description."""
    titles = {_normal(p.title) for p in train}
    return sum(_normal(p.title) in titles for p in holdout)


def check_no_leak(train: Projects, holdout: Projects) -> None:
    """Raise a ``ValueError`` naming the overlap if ``holdout`` shares a project with
    ``train`` (see :func:`overlap`): a score on such a holdout measures memory, not
    generalisation."""
    found = overlap(train, holdout)
    if found:
        shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        raise ValueError(
            f"the holdout overlaps the training data in {len(found)} project(s): {shown}. "
            "Use a holdout file with other projects (HOLDOUT_SOURCE), or pass one CSV and "
            "let the kit split it"
        )


@dataclass(frozen=True)
class DataSplit:
    """Training projects, held-out projects, and how the holdout was made."""

    train: Projects
    holdout: Projects
    how: str

    def metrics(self) -> dict[str, int]:
        """``train_rows``, ``holdout_rows``, ``holdout_overlap`` (0 for a clean split) and
        ``holdout_shared_titles`` (other projects under a title seen in training), for a
        notebook to record."""
        return {
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "holdout_overlap": len(overlap(self.train, self.holdout)),
            "holdout_shared_titles": shared_titles(self.train, self.holdout),
        }


def load_split(
    source: str | os.PathLike[str] | None = None,
    holdout_source: str | os.PathLike[str] | None = None,
    *,
    by_time: bool = False,
    holdout_fraction: float = 0.2,
    seed: int = 0,
) -> DataSplit:
    """Training and held-out projects that share nothing (checked: a ``ValueError``
    names any overlap).

    ``source`` is read as by :func:`load_projects` (``None``: the synthetic dataset). A
    shipped dataset (``"made-with-ml"``, ``"synthetic"``) brings its own holdout file;
    so does a path or URL with ``holdout_source``. A single file without one is split:
    stratified by tag (``seed``), or with ``by_time`` the newest ``holdout_fraction`` held
    out. ``how`` says which happened, for the notebook to print.

    >>> split = load_split("synthetic")
    >>> split.metrics()["holdout_overlap"], split.how.startswith("the holdout file")
    (0, True)
    """
    projects = load_projects(source)
    if holdout_source is not None:
        holdout = load_holdout(holdout_source)
        how = f"the holdout file {holdout.source}"
        train = projects
    elif source is None or (isinstance(source, str) and source in SHIPPED):
        train, holdout = projects, load_holdout(source)
        how = f"the holdout file that ships with {source or 'synthetic'}"
    elif by_time:
        train, holdout = time_split(projects, holdout_fraction)
        how = (
            f"the newest {holdout_fraction:.0%} of {projects.source} by created_on "
            "(one file given, split by time)"
        )
    else:
        train, holdout = train_val_split(projects, holdout_fraction, seed=seed)
        how = (
            f"{holdout_fraction:.0%} of {projects.source}, stratified by tag with seed "
            f"{seed} (one file given, split)"
        )
    check_no_leak(train, holdout)
    return DataSplit(train, holdout, how)
