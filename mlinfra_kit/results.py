"""Recording what a notebook measured, in one JSON file per notebook.

A run writes ``RESULTS_DIR/<notebook>.json`` with the schema::

    {"notebook": str, "parameters": {...}, "environment": {...},
     "metrics": {name: number}, "tables": {name: [row, ...]},
     "lessons": [{"id": str, "claim": str, "observed": str, "outcome": str,
                  "holds": bool, "estimate": number | null,
                  "interval": [low, high] | null, "threshold": number | null}, ...]}

``outcome`` is ``held``, ``not_held`` or ``inconclusive``; the last three keys are set for
a comparative lesson (:meth:`Lesson.compared`).

Metric names are stable snake_case with the unit in the name (``p99_ms``,
``throughput_rps``, ``size_mb``, ``accuracy``), so runs on different machines or with
different parameters can be compared key by key (``mlinfra report`` does this).

Examples
--------
>>> import tempfile, json
>>> out = tempfile.mkdtemp()
>>> path = record("00_demo", {"SEED": 0}, {"accuracy": 0.9}, results_dir=out,
...               environment={"python": "3.11"})
>>> json.loads(path.read_text())["metrics"]
{'accuracy': 0.9}
>>> print(markdown_table([{"variant": "fp32", "p50_ms": 1.23456}]))
| variant | p50_ms |
|---|---|
| fp32 | 1.235 |
>>> print(lessons_markdown([Lesson("int8 is smaller", "0.9 vs 3.6 MB", True),
...                         Lesson("int8 is faster", "1.2 vs 1.1 ms", False)]))
- int8 is smaller: 0.9 vs 3.6 MB.
- **Did not hold in this run:** int8 is faster: 1.2 vs 1.1 ms.
>>> print(lessons_markdown([Lesson("int8 is faster", "1.1 vs 1.2 ms", outcome="inconclusive")]))
- **Inconclusive in this run:** int8 is faster: 1.1 vs 1.2 ms.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlinfra_kit.comparison import OUTCOMES

if TYPE_CHECKING:
    from mlinfra_kit.comparison import Comparison

__all__ = [
    "SCHEMA_KEYS",
    "Lesson",
    "Run",
    "format_value",
    "lessons_markdown",
    "load",
    "load_all",
    "markdown_table",
    "settle_note",
    "outcome_counts",
    "record",
]


@dataclass(frozen=True)
class Lesson:
    """A claim a notebook teaches, what this run measured for it, and its outcome: ``held``,
    ``not_held`` or ``inconclusive`` (in this run: the interval straddles the claim's
    threshold, or the effect is below the noise floor).

    Give ``holds`` for a claim that needs no interval (a count, an identity), or build a
    comparative lesson from a measured :class:`~mlinfra_kit.comparison.Comparison` with
    :meth:`compared`, which records its ``estimate``, ``interval`` and ``threshold`` as
    numbers. ``id`` is stable across runs (default: made from the claim's words).
    Conclusions are rendered from lessons (:func:`lessons_markdown`), so a claim that did
    not hold on this run is said plainly beside its numbers instead of being asserted.

    >>> Lesson("int8 is smaller", "0.9 vs 3.6 MB", True).id
    'int8_is_smaller'
    """

    claim: str
    observed: str
    holds: bool | None = None
    id: str = ""
    outcome: str = ""
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        outcome = self.outcome
        if not outcome:
            if self.holds is None:
                raise ValueError(f"lesson {self.claim!r}: give holds= or outcome=")
            outcome = "held" if self.holds else "not_held"
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}; got {outcome!r}")
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "holds", outcome == "held")
        object.__setattr__(self, "id", self.id or _slug(self.claim))
        if not _NAME.match(self.id):
            raise ValueError(f"lesson id {self.id!r} is not snake_case")
        if self.interval is not None:
            lo, hi = (float(v) for v in self.interval)
            object.__setattr__(self, "interval", (lo, hi))

    @classmethod
    def compared(
        cls,
        id: str,
        claim: str,
        observed: str,
        comparison: Comparison,
        at_least: float | None = None,
        within: float | None = None,
        unit: str = "",
        settle: str | None = None,
        cut_short: str | None = None,
    ) -> Lesson:
        """The lesson of a claim about B against A, decided by ``comparison.verdict``
        (``at_least``: B better by at least; ``within``: B about A); the observed text
        gains the estimate, its interval, the noise floor and the rounds, and an
        inconclusive one says what would settle it (``settle``, else the comparison's own
        hint).

        ``cut_short``: how this run's sizes were cut below the claim's (quick mode's
        shorter training, say). A run cut short cannot refute the claim: a "did not hold"
        becomes inconclusive, with this reason and a full run as what would settle it.

        >>> from mlinfra_kit.comparison import paired
        >>> c = paired([100, 101, 99], [100, 99, 101])
        >>> lesson = Lesson.compared("b_faster", "B is faster", "rps", c, at_least=1.0)
        >>> lesson.outcome, lesson.threshold
        ('inconclusive', 1.0)
        >>> worse = paired([0.9, 0.91, 0.9], [0.8, 0.8, 0.81], kind="difference", noise=0.0)
        >>> Lesson.compared("b_as_good", "B is as good", "accuracy", worse, at_least=0.0,
        ...                 cut_short="quick mode trains 8 epochs, not 30").outcome
        'inconclusive'
        """
        outcome = comparison.verdict(at_least=at_least, within=within)
        text = f"{observed}: {comparison.describe(unit, at_least=at_least)}"
        if outcome == "not_held" and cut_short:
            outcome = "inconclusive"
            text += f"; {cut_short}, so a shortfall here does not decide the claim"
            text += ": to settle it, a full run"
        else:
            text += settle_note(outcome, comparison, at_least, within, hint=settle)
        return cls(
            claim,
            text,
            id=id,
            outcome=outcome,
            estimate=comparison.estimate,
            interval=comparison.interval,
            threshold=comparison.threshold(at_least=at_least, within=within),
        )


def settle_note(
    outcome: str,
    comparison: Comparison,
    at_least: float | None = None,
    within: float | None = None,
    hint: str | None = None,
) -> str:
    """What would settle an ``"inconclusive"`` outcome, as a clause to end a lesson's
    observed text (``hint``, else the comparison's own); empty for any other outcome. For
    a lesson whose outcome a notebook decides itself (two comparisons combined, say):
    :meth:`Lesson.compared` adds it on its own.

    >>> from mlinfra_kit.comparison import paired
    >>> c = paired([100, 101, 99], [100, 99, 101])
    >>> settle_note("held", c, at_least=1.0)
    ''
    >>> settle_note("inconclusive", c, at_least=1.0, hint="more rounds")
    '; to settle it: more rounds'
    """
    if outcome != "inconclusive":
        return ""
    return f"; to settle it: {hint or comparison.settle_hint(at_least=at_least, within=within)}"


_MARKS = {
    "held": "",
    "not_held": "**Did not hold in this run:** ",
    "inconclusive": "**Inconclusive in this run:** ",
}


def _slug(claim: str) -> str:
    words = re.findall(r"[a-z][a-z0-9]*", claim.lower())  # numbers alone drop out
    return "_".join(words)[:60].rstrip("_") or "lesson"


def lessons_markdown(lessons: Sequence[Lesson]) -> str:
    """One bullet per lesson: the claim and its numbers; one that did not hold, or could
    not be decided in this run, is marked."""
    return "\n".join(
        f"- {_MARKS[lesson.outcome]}{lesson.claim}: {lesson.observed}." for lesson in lessons
    )


def outcome_counts(lessons: Sequence[Lesson]) -> dict[str, int]:
    """How many lessons had each outcome.

    >>> outcome_counts([Lesson("a", "1", True), Lesson("b", "2", False)])
    {'held': 1, 'not_held': 1, 'inconclusive': 0}
    """
    return {outcome: sum(lesson.outcome == outcome for lesson in lessons) for outcome in OUTCOMES}


SCHEMA_KEYS = ("notebook", "parameters", "environment", "metrics", "tables")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_NOTEBOOK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths and tuples into JSON-friendly values."""
    if isinstance(value, bool | str | type(None)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _plain(value.tolist())
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    return str(value)


def _check_metrics(metrics: Mapping[str, Any]) -> dict[str, float | int]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict of name -> number, not {type(metrics).__name__}")
    checked: dict[str, float | int] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"metric name {name!r} is not snake_case: use lowercase letters, digits and "
                "underscores, with the unit in the name (e.g. 'p99_ms')"
            )
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"metric {name!r} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"metric {name!r} must be finite, got {value!r}")
        checked[name] = int(value) if isinstance(value, numbers.Integral) else float(value)
    return checked


def _check_tables(tables: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    if tables is None:
        return {}
    if not isinstance(tables, Mapping):
        raise TypeError("tables must be a dict of name -> list of row dicts")
    checked = {}
    for name, rows in tables.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"table name {name!r} is not snake_case")
        if isinstance(rows, Mapping | str) or not all(isinstance(r, Mapping) for r in rows):
            raise ValueError(f"table {name!r} must be a list of row dicts")
        checked[name] = [_plain(r) for r in rows]
    return checked


def record(
    notebook: str,
    parameters: Mapping[str, Any],
    metrics: Mapping[str, Any],
    tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    results_dir: str | os.PathLike[str] = "results",
    environment: Mapping[str, Any] | None = None,
    lessons: Sequence[Lesson] = (),
) -> Path:
    """Write ``results_dir/<notebook>.json`` atomically and return its path.

    ``environment`` defaults to :func:`mlinfra_kit.measure.environment`. The file is
    written to a temporary name and renamed, so a crash never leaves half a result.
    """
    if not isinstance(notebook, str) or not _NOTEBOOK.match(notebook):
        raise ValueError(f"notebook must be a file stem such as '00_quickstart', got {notebook!r}")
    if not isinstance(parameters, Mapping):
        raise TypeError("parameters must be a dict of the notebook's knobs")
    if environment is None:
        from mlinfra_kit.measure import environment as fingerprint

        environment = fingerprint()
    doc = {
        "notebook": notebook,
        "parameters": _plain(parameters),
        "environment": _plain(environment),
        "metrics": _check_metrics(metrics),
        "tables": _check_tables(tables),
        "lessons": [_plain(asdict(lesson)) for lesson in lessons],
    }
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{notebook}.json"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{notebook}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class Run:
    """What one run of a notebook measured, gathered where it is measured and written by
    one call: a notebook makes one after its parameters, each section adds (:meth:`add`) the metrics
    it just measured, and the last cell calls :meth:`record` with the lessons.

    ``namespace`` is the notebook's ``globals()``: the parameters recorded are the values of
    the names its ``parameters`` cell assigns (read from the kit's copy of the notebook), as
    they are now, after papermill's overrides; the results go to its ``RESULTS_DIR``.

    >>> import tempfile
    >>> run = Run("00_demo", {"SEED": 0, "RESULTS_DIR": tempfile.mkdtemp()}, parameters=["SEED"])
    >>> run.add(accuracy=0.9)
    >>> run.add({"macro_f1": 0.8}, size_mb=1.5)
    >>> run.table("per_class", [{"tag": "mlops", "f1": 0.7}])
    >>> path = run.record([Lesson("it learns", "accuracy 0.9", True)],
    ...                   environment={"python": "3.11"}, quiet=True)
    >>> doc = load(path)
    >>> doc["parameters"], sorted(doc["metrics"]), list(doc["tables"])
    ({'SEED': 0}, ['accuracy', 'macro_f1', 'size_mb'], ['per_class'])
    """

    def __init__(
        self,
        notebook: str,
        namespace: Mapping[str, Any],
        parameters: Sequence[str] | None = None,
    ):
        if not isinstance(notebook, str) or not _NOTEBOOK.match(notebook):
            raise ValueError(
                f"notebook must be a file stem such as '00_quickstart', got {notebook!r}"
            )
        if parameters is None:
            from mlinfra_kit.notebooks import parameter_names

            parameters = parameter_names(notebook)
        missing = [name for name in parameters if name not in namespace]
        if missing:
            raise ValueError(
                f"{notebook}: run the parameters cell first; {', '.join(missing)} not defined"
            )
        self.notebook = notebook
        self.parameters = {name: namespace[name] for name in parameters}
        self.results_dir = namespace.get("RESULTS_DIR", "results")
        self.metrics: dict[str, float | int] = {}
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def add(self, metrics: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """Add metrics (a dict, keywords, or both), checked now so a bad one fails in the
        cell that measured it. Adding a name again replaces it (a cell run twice)."""
        self.metrics.update(_check_metrics({**(metrics or {}), **more}))

    def table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add a table of row dicts under ``name`` (replaced if added again)."""
        self.tables.update(_check_tables({name: rows}))

    def record(
        self,
        lessons: Sequence[Lesson] = (),
        environment: Mapping[str, Any] | None = None,
        quiet: bool = False,
    ) -> Path:
        """Write everything added, with ``lessons``, by :func:`record`; print and return
        the file's path."""
        path = record(
            self.notebook,
            self.parameters,
            self.metrics,
            self.tables,
            results_dir=self.results_dir,
            environment=environment,
            lessons=lessons,
        )
        if not quiet:
            print(f"recorded {path}")
        return path


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one results file and check it has the schema's keys."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rerun the notebook") from None
    missing = [k for k in SCHEMA_KEYS if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ValueError(f"{path} is not a results file: missing {', '.join(missing)}")
    loaded: dict[str, Any] = doc
    return loaded


def load_all(results_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every results file in ``results_dir``, sorted by notebook name."""
    return [load(p) for p in sorted(Path(results_dir).glob("*.json"))]


def format_value(value: Any) -> str:
    """Readable text for a table cell: 4 significant figures for small floats, fixed
    decimals for larger ones, thousands separators for big numbers."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v) or v == 0:
            return str(v) if v else "0"
        if abs(v) >= 10_000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.4g}" if abs(v) < 1 else f"{v:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render row dicts as a Markdown table (columns default to the keys in order seen).

    In a notebook: ``display(Markdown(markdown_table(rows)))``.
    """
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)
