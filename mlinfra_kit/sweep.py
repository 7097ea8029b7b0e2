"""Sweeps: one notebook run over a grid of parameters and seeds, resumable, side by side.

``mlinfra sweep 01_serving -p MAX_BATCH_SIZE=8,32,64 --seeds 0-2 --quick --out runs/batching``
runs the notebook once per point of the grid (here 3 sizes x 3 seeds) with papermill,
through the same runner as ``mlinfra run``, and answers with one table and one figure:

- each point runs in a folder of its own and lands in ``DIR/points/<id>/`` (``<id>``: a
  hash of its parameters) only when it has finished, with ``point.json`` (its parameters,
  status, time, metrics, and each lesson's outcome); a failed point is recorded with its
  error and does not stop the others;
- the same command run again skips the finished points (``--retry-failed`` reruns the
  failed ones), so a killed sweep is resumed by running it again;
- ``--parallel N`` runs N points at once, each in a process of its own (the kit's notebooks
  choose their own torch threads, mostly one); the default is one at a time, as the kit's
  notebooks measure timings that parallel points would disturb;
- ``DIR/sweep.json`` and ``DIR/report.md``: a row per point (its parameters, chosen
  metrics and lesson outcomes), each lesson's robustness (the share of points where it
  held), and with ``metrics`` a figure per metric against each swept parameter (the mean
  over seeds, the band their min-max).

Examples
--------
>>> grid({"SIZE": [8, 32], "SEED": [0, 1]})  # doctest: +NORMALIZE_WHITESPACE
[{'SIZE': 8, 'SEED': 0}, {'SIZE': 8, 'SEED': 1},
 {'SIZE': 32, 'SEED': 0}, {'SIZE': 32, 'SEED': 1}]
>>> parse_values("8,32,64"), parse_values("[1, 2]"), parse_values("cpu,cuda")
((8, 32, 64), ([1, 2],), ('cpu', 'cuda'))
>>> parse_seeds("0-2"), parse_seeds("1,5")
([0, 1, 2], [1, 5])
>>> point_id({"SEED": 0, "MAX_BATCH_SIZE": 8}) == point_id({"MAX_BATCH_SIZE": 8, "SEED": 0})
True
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from mlinfra_kit.notebooks import NotebookInfo
from mlinfra_kit.results import format_value, markdown_table

__all__ = [
    "grid",
    "load_sweep",
    "parse_seeds",
    "parse_values",
    "point_id",
    "render_sweep_report",
    "run_sweep",
    "sweep_file",
    "track_sweep",
    "write_sweep_report",
]


def parse_values(raw: str) -> tuple[Any, ...]:
    """The values of one swept parameter from ``-p KEY=V1,V2,...``: Python literals
    (``8,32``, ``0.5,2.0``, ``True,False``), else text (``cpu,cuda``). A list literal
    (``[1, 2]``) is one value."""
    text = raw.strip()
    if not text:
        raise ValueError("a swept parameter needs at least one value: KEY=V1,V2,...")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return tuple(part.strip() for part in text.split(","))
    return value if isinstance(value, tuple) else (value,)


def parse_seeds(raw: str) -> list[int]:
    """``0-9`` (a range, both ends included) or ``0,1,5``: the seeds to run each point with."""
    try:
        if "-" in raw.strip().lstrip("-"):
            low, high = (int(x) for x in raw.split("-", 1))
            seeds = list(range(low, high + 1))
        else:
            seeds = [int(x) for x in raw.split(",")]
    except ValueError:
        raise ValueError(f"seeds {raw!r}: give a range (0-9) or a list (0,1,5)") from None
    if not seeds:
        raise ValueError(f"seeds {raw!r} is an empty range: the first must not exceed the last")
    return seeds


def grid(values: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``values`` (one dict per point), in a stable order."""
    empty = [key for key, options in values.items() if not len(options)]
    if empty:
        raise ValueError(f"no values to sweep for {', '.join(empty)}")
    keys = list(values)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values.values())]


def point_id(parameters: Mapping[str, Any]) -> str:
    """A short, stable name for a point: the hash of its parameters (order does not count)."""
    canonical = json.dumps(dict(parameters), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def sweep_file(path: str | os.PathLike) -> tuple[dict[str, tuple[Any, ...]], dict[str, Any]]:
    """Read a sweep file (YAML or JSON): ``grid`` (parameter -> list of values),
    ``fixed`` (parameter -> value) and ``seeds`` (a list, or ``"0-9"``). Returns the grid,
    seeds included as ``SEED``, and the fixed parameters.

    A file such as::

        grid: {MAX_BATCH_SIZE: [8, 32, 64]}
        fixed: {MAX_WAIT_MS: 2.0}
        seeds: 0-2
    """
    import yaml

    spec = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    unknown = sorted(set(spec) - {"grid", "fixed", "seeds"}) if isinstance(spec, dict) else spec
    if unknown:
        raise ValueError(f"{path}: a sweep file has grid, fixed and seeds, not {unknown}")
    values: dict[str, tuple[Any, ...]] = {}
    for key, options in (spec.get("grid") or {}).items():
        values[key] = tuple(options) if isinstance(options, list) else (options,)
    seeds = spec.get("seeds")
    if seeds is not None:
        values["SEED"] = tuple(parse_seeds(str(seeds)) if isinstance(seeds, str | int) else seeds)
    return values, dict(spec.get("fixed") or {})


def _summary(parameters: Mapping[str, Any], result: Any, results_dir: Path) -> dict[str, Any]:
    from mlinfra_kit.results import load

    summary: dict[str, Any] = {
        "id": point_id(parameters),
        "parameters": dict(parameters),
        "status": result.status,
        "seconds": result.seconds,
        "error": result.error,
        "metrics": {},
        "lessons": {},
    }
    recorded = results_dir / f"{Path(result.output).stem}.json"
    if recorded.exists():
        doc = load(recorded)
        summary["metrics"] = doc["metrics"]
        summary["lessons"] = {x["id"]: x["outcome"] for x in doc.get("lessons", [])}
    return summary


def _run_point(
    notebook: NotebookInfo,
    point: Mapping[str, Any],
    fixed: Mapping[str, Any],
    out: Path,
    quick: bool,
    cell_timeout: int,
) -> dict[str, Any]:
    """Run one point in a folder of its own and move it, whole, to ``out/points/<id>``."""
    from mlinfra_kit.runner import run_notebooks

    name = point_id(point)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))
    try:
        (result,) = run_notebooks(
            [notebook], work, {**fixed, **point}, quick=quick, cell_timeout=cell_timeout
        )
        summary = _summary(point, result, work / "results")
        _write_json(work / "point.json", summary)
        final = out / "points" / name
        shutil.rmtree(final, ignore_errors=True)  # a failed point being retried
        os.replace(work, final)  # the point lands whole, or not at all
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def run_sweep(
    notebook: NotebookInfo,
    points: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    fixed: Mapping[str, Any] | None = None,
    quick: bool = False,
    parallel: int = 1,
    retry_failed: bool = False,
    cell_timeout: int = 1200,
    on_point: Callable[[str, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``notebook`` once per point (each with ``fixed`` too) into ``out_dir`` and
    return every point's summary, in the points' order; also writes ``sweep.json``.

    Finished points already in ``out_dir/points`` are not run again (failed ones are with
    ``retry_failed``). ``on_point("skip"|"start"|"end", summary)`` reports progress
    (``summary`` holds only ``id`` and ``parameters`` at the start)."""
    from mlinfra_kit.runner import check_parameters

    if parallel < 1:
        raise ValueError(f"parallel must be 1 or more, got {parallel}")
    if not points:
        raise ValueError("a sweep needs at least one point")
    fixed = dict(fixed or {})
    overlap = sorted(set(fixed) & set(points[0]))
    if overlap:
        raise ValueError(f"{', '.join(overlap)} is both swept and fixed: choose one")
    check_parameters([notebook], {k for point in points for k in point} | set(fixed))
    out = Path(out_dir).resolve()
    done_dir = out / "points"
    done_dir.mkdir(parents=True, exist_ok=True)

    def finished(point: Mapping[str, Any]) -> dict[str, Any] | None:
        path = done_dir / point_id(point) / "point.json"
        if not path.exists():
            return None
        summary = json.loads(path.read_text(encoding="utf-8"))
        return None if summary["status"] != "ok" and retry_failed else summary

    summaries: dict[str, dict[str, Any]] = {}
    todo = []
    for point in points:
        earlier = finished(point)
        if earlier is None:
            todo.append(point)
            continue
        summaries[point_id(point)] = earlier
        if on_point:
            on_point("skip", earlier)

    def started(point: Mapping[str, Any]) -> tuple[Any, ...]:
        if on_point:
            on_point("start", {"id": point_id(point), "parameters": dict(point)})
        return (notebook, point, fixed, out, quick, cell_timeout)

    def ended(summary: dict[str, Any]) -> None:
        summaries[summary["id"]] = summary
        if on_point:
            on_point("end", summary)

    if parallel == 1:
        for point in todo:
            ended(_run_point(*started(point)))
    else:  # processes, not threads: papermill changes the working folder of its process
        with ProcessPoolExecutor(max_workers=parallel) as pool:
            running, waiting = set(), list(todo)
            while running or waiting:
                while waiting and len(running) < parallel:
                    running.add(pool.submit(_run_point, *started(waiting.pop(0))))
                finished_now, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished_now:
                    ended(future.result())
    ordered = [summaries[point_id(point)] for point in points]
    document = {"notebook": notebook.name, "quick": quick, "fixed": fixed, "points": ordered}
    if (out / "sweep.json").exists():  # a resumed sweep stays the same MLflow run
        tracked = load_sweep(out).get("mlflow_run_id")
        document |= {"mlflow_run_id": tracked} if tracked else {}
    _write_json(out / "sweep.json", document)
    return ordered


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` to ``path`` whole: to a temporary name, then renamed."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def track_sweep(out_dir: str | os.PathLike, uri: str) -> str:
    """Log the sweep in ``out_dir`` to MLflow at ``uri``: one run for the sweep (its swept
    values, the points that ran, each lesson's share of points held), kept in
    ``sweep.json`` and reused when the sweep is resumed, and a child run per point that
    recorded results and is not logged yet (its id kept in its ``point.json``). Returns
    the sweep's run id."""
    from mlinfra_kit.tracking import log_notebook_run, log_sweep_run

    out = Path(out_dir)
    document = load_sweep(out)
    points, name = document["points"], document["notebook"]
    ok = [p for p in points if p["status"] == "ok"]
    swept = {  # each swept parameter's values, in the order the points take them
        key: "[" + ", ".join(dict.fromkeys(json.dumps(p["parameters"][key]) for p in points)) + "]"
        for key in (points[0]["parameters"] if points else {})
    }
    lessons = sorted({lesson for p in ok for lesson in p["lessons"]})
    metrics = {"points": len(points), "points_ok": len(ok)} | {
        f"lesson_held_share.{lesson}": sum(p["lessons"].get(lesson) == "held" for p in ok) / len(ok)
        for lesson in lessons
    }
    parent = log_sweep_run(
        uri, name, swept, document["fixed"], metrics, document.get("mlflow_run_id")
    )
    for p in points:
        folder = out / "points" / p["id"]
        recorded = folder / "results" / f"{name}.json"
        if p.get("mlflow_run_id") or not recorded.exists():
            continue
        p["mlflow_run_id"] = log_notebook_run(
            recorded,
            uri,
            notebook_path=folder / f"{name}.ipynb",
            parameters={**document["fixed"], **p["parameters"]},
            status=p["status"],
            seconds=p["seconds"],
            parent_run_id=parent,
        )
        _write_json(folder / "point.json", p)
    _write_json(out / "sweep.json", document | {"mlflow_run_id": parent})
    return parent


def load_sweep(out_dir: str | os.PathLike) -> dict[str, Any]:
    """``DIR/sweep.json`` as written by :func:`run_sweep`."""
    path = Path(out_dir) / "sweep.json"
    if not path.exists():
        raise ValueError(f"no sweep in {out_dir}: run `mlinfra sweep NOTEBOOK --out {out_dir}`")
    return json.loads(path.read_text(encoding="utf-8"))


def render_sweep_report(
    out_dir: str | os.PathLike, metrics: Sequence[str] = (), figures: bool = True
) -> str:
    """The Markdown of ``DIR/report.md`` for a sweep: one row per point, each lesson's
    share of points where it held, and (``figures``, with ``metrics``) one figure per
    metric against each swept parameter, saved beside it."""
    sweep = load_sweep(out_dir)
    points = sweep["points"]
    swept = list(points[0]["parameters"]) if points else []
    ok = [p for p in points if p["status"] == "ok"]
    missing = sorted({m for m in metrics for p in ok if m not in p["metrics"]})
    if missing:
        raise ValueError(f"metric(s) {', '.join(missing)} not recorded by {sweep['notebook']}")
    fixed = ", ".join(f"{k}={v}" for k, v in sweep["fixed"].items())
    lines = [
        f"# Sweep of {sweep['notebook']}",
        "",
        f"{len(points)} point(s), {len(ok)} ok, {len(points) - len(ok)} failed"
        + ("; quick mode" if sweep["quick"] else "")
        + (f"; fixed: {fixed}" if fixed else "")
        + ".",
        "",
    ]
    rows = []
    for p in points:
        held = sum(outcome == "held" for outcome in p["lessons"].values())
        rows.append(
            {
                "point": p["id"],
                **p["parameters"],
                "status": p["status"],
                "seconds": p["seconds"],
                **{m: p["metrics"].get(m) for m in metrics},
                "lessons held": f"{held} of {len(p['lessons'])}",
            }
        )
    lines += [markdown_table(rows), ""]
    if sweep.get("mlflow_run_id"):
        lines += [
            f"Logged to MLflow as run `{sweep['mlflow_run_id']}`, one child run per point.",
            "",
        ]
    lessons = sorted({lesson for p in ok for lesson in p["lessons"]})
    if lessons:
        robust = [
            {
                "lesson": lesson,
                "held": sum(p["lessons"].get(lesson) == "held" for p in ok),
                "not held": sum(p["lessons"].get(lesson) == "not_held" for p in ok),
                "inconclusive": sum(p["lessons"].get(lesson) == "inconclusive" for p in ok),
                "share held": sum(p["lessons"].get(lesson) == "held" for p in ok) / len(ok),
            }
            for lesson in lessons
        ]
        lines += ["## How robust each lesson is over the points", "", markdown_table(robust), ""]
    failed = [p for p in points if p["status"] != "ok"]
    if failed:
        lines += ["## Failed points", ""]
        lines += [f"- `{p['id']}` {p['parameters']}: {p['error']}" for p in failed] + [""]
    if figures and metrics and ok:
        for name in _figures(Path(out_dir), ok, swept, metrics):
            lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def _figures(
    out: Path, ok: Sequence[dict[str, Any]], swept: Sequence[str], metrics: Sequence[str]
) -> list[str]:
    """One PNG per metric: its mean over seeds (band: min-max) against each swept
    parameter but the seed, the other parameters as separate lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_of = [k for k in swept if k != "SEED"] or ["SEED"]
    names = []
    for metric in metrics:
        fig, axes = plt.subplots(1, len(axes_of), figsize=(4.5 * len(axes_of), 3.4), squeeze=False)
        for ax, key in zip(axes[0], axes_of, strict=True):
            others = [k for k in swept if k not in (key, "SEED")]
            groups: dict[tuple, dict[Any, list[float]]] = {}
            for p in ok:
                line = tuple(p["parameters"][k] for k in others)
                value = p["metrics"].get(metric)
                if isinstance(value, int | float):
                    groups.setdefault(line, {}).setdefault(p["parameters"][key], []).append(value)
            for line, by_x in groups.items():
                xs = sorted(by_x, key=lambda x: (not isinstance(x, int | float), x))
                labels = [str(x) for x in xs]
                numeric = all(isinstance(x, int | float) for x in xs)
                where = xs if numeric else list(range(len(xs)))
                means = [statistics.fmean(by_x[x]) for x in xs]
                label = ", ".join(f"{k}={v}" for k, v in zip(others, line, strict=True)) or None
                ax.plot(where, means, marker="o", label=label)
                ax.fill_between(
                    where, [min(by_x[x]) for x in xs], [max(by_x[x]) for x in xs], alpha=0.2
                )
                if not numeric:
                    ax.set_xticks(where, labels)
            ax.set(xlabel=key, ylabel=metric)
            if any(label for label in (ax.get_legend_handles_labels()[1])):
                ax.legend(fontsize=8)
        seeds = sorted({p["parameters"].get("SEED") for p in ok} - {None})
        over_seeds = len(seeds) > 1 and axes_of != ["SEED"]
        title = f"{metric}: mean over seeds {seeds}, band min–max" if over_seeds else metric
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        name = f"{metric}.png"
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        names.append(name)
    return names


def write_sweep_report(
    out_dir: str | os.PathLike, metrics: Sequence[str] = (), figures: bool = True
) -> Path:
    """Write ``DIR/report.md`` (see :func:`render_sweep_report`) and return its path."""
    path = Path(out_dir) / "report.md"
    path.write_text(render_sweep_report(out_dir, metrics, figures), encoding="utf-8")
    return path


def format_point(summary: Mapping[str, Any]) -> str:
    """One line for a point: its parameters and, once run, its status and time."""
    params = ", ".join(f"{k}={v}" for k, v in summary["parameters"].items())
    if "status" not in summary:
        return params
    return f"{params}: {summary['status']} in {format_value(summary['seconds'])} s"
