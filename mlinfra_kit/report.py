"""One readable report of a run: ``mlinfra report DIR`` writes ``DIR/report.md``.

For each notebook: its status and run time, the lessons it recorded (each claim with the
numbers behind it, and whether it held, did not hold or was inconclusive on that
machine; a table counts the three per notebook), the parameters it ran with, the machine it ran
on, every metric it recorded and its tables. Every number comes from the results
files the notebooks wrote in that run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlinfra_kit.results import (
    Lesson,
    format_value,
    lessons_markdown,
    load_all,
    markdown_table,
    outcome_counts,
)

__all__ = ["render_report", "write_report"]


def _key_values(mapping: dict[str, Any], key: str, value: str) -> str:
    return markdown_table([{key: k, value: v} for k, v in mapping.items()], [key, value])


def render_report(run_dir: str | os.PathLike) -> str:
    """The Markdown text of the report for ``run_dir`` (see :func:`write_report`)."""
    run_dir = Path(run_dir)
    docs = load_all(run_dir / "results")
    summary_path = run_dir / "run.json"
    runs = (
        json.loads(summary_path.read_text(encoding="utf-8"))["notebooks"]
        if summary_path.exists()
        else []
    )
    if not docs and not runs:
        raise ValueError(
            f"no results in {run_dir / 'results'}: run `mlinfra run --out {run_dir}` first"
        )
    lines = ["# mlinfra-kit run report", ""]
    if runs:
        total = sum(r["seconds"] for r in runs)
        failed = [r for r in runs if r["status"] == "failed"]
        skipped = [r for r in runs if r["status"] == "skipped"]
        tracked = [r for r in runs if r.get("mlflow_run_id")]
        lines += [
            f"{len(runs)} notebook(s), {len(runs) - len(failed) - len(skipped)} ok, "
            f"{len(failed)} failed, {len(skipped)} skipped, {format_value(total)} s in all"
            + (f"; {len(tracked)} logged as MLflow runs." if tracked else "."),
            "",
            markdown_table(
                [
                    {"notebook": r["notebook"], "status": r["status"], "seconds": r["seconds"]}
                    | ({"mlflow_run": r.get("mlflow_run_id") or "-"} if tracked else {})
                    for r in runs
                ]
            ),
            "",
        ]
        for r in failed:
            lines += [f"- **{r['notebook']} failed**: {r['error']}"]
        for r in skipped:
            lines += [f"- {r['notebook']} skipped: {r['error']}"]
        lines += [""] if failed or skipped else []
    counted = [
        {"notebook": doc["notebook"], **outcome_counts([Lesson(**x) for x in doc["lessons"]])}
        for doc in docs
        if doc.get("lessons")
    ]
    if counted:
        lines += ["## Lessons per notebook", "", markdown_table(counted), ""]
    for doc in docs:
        lines += [f"## {doc['notebook']}", ""]
        lessons = [Lesson(**lesson) for lesson in doc.get("lessons", [])]
        if lessons:
            counts = outcome_counts(lessons)
            lines += [
                f"### Lessons ({counts['held']} held, {counts['not_held']} not held, "
                f"{counts['inconclusive']} inconclusive, of {len(lessons)})",
                "",
                lessons_markdown(lessons),
                "",
            ]
        lines += ["### Metrics", ""]
        lines += [
            _key_values(doc["metrics"], "metric", "value") if doc["metrics"] else "(none recorded)",
            "",
        ]
        for name, rows in doc["tables"].items():
            lines += [f"### Table: {name}", "", markdown_table(rows) if rows else "(empty)", ""]
        lines += ["### Parameters", "", _key_values(doc["parameters"], "parameter", "value"), ""]
        lines += ["### Environment", "", _key_values(doc["environment"], "key", "value"), ""]
    return "\n".join(lines)


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write ``run_dir/report.md`` from ``run_dir/results/*.json`` and ``run_dir/run.json``."""
    path = Path(run_dir) / "report.md"
    path.write_text(render_report(run_dir), encoding="utf-8")
    return path
