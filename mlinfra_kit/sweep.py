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
- ``--parallel N`` runs N points at once, each in a process of its own whose kernel's math
  libraries get ``cores // N`` threads (their default, one per core, makes parallel points
  spin against each other); the default is what the notebook declares
  (``metadata.mlinfra.cores``: a run of ``03_learning`` needs one core, so as many at once
  as there are cores), else one at a time, as most of the kit's notebooks measure timings
  that parallel points would disturb;
- ``DIR/sweep.json`` and ``DIR/report.md``: a row per point (its parameters, chosen
  metrics and lesson outcomes), each lesson's robustness (the share of points where it
  held), and with ``metrics`` a figure per metric against each swept parameter (the mean
  over seeds, the band their min-max).

(Over 450 lines: the grid, the points' folders, the local pool and Ray, and the report are
one resumable procedure over one folder layout.)

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
import math
import os
import random
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlinfra_kit.notebooks import NotebookInfo
from mlinfra_kit.results import format_value, markdown_table

__all__ = [
    "SweepSpec",
    "grid",
    "load_sweep",
    "parse_seeds",
    "parse_values",
    "point_id",
    "render_sweep_report",
    "robustness",
    "run_sweep",
    "sweep_file",
    "track_sweep",
    "write_sweep_report",
]


#: The variables that set how many threads torch, NumPy's BLAS and OpenMP code start with.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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


@dataclass
class SweepSpec:
    """What a sweep runs: a ``grid`` (parameter -> values, every combination; seeds as
    ``SEED``), ``random`` parameters drawn ``samples`` times (parameter -> a list of choices,
    or ``{low, high}`` for a number between, ``log: true`` on a log scale, ``integer: true``
    rounded), and ``fixed`` parameters for every point. The draws come from ``sample_seed``,
    so the same spec gives the same points: a rerun resumes them.

    >>> spec = SweepSpec(grid={"SEED": (0, 1)}, random={"LR": {"low": 1e-3, "high": 1e-1,
    ...     "log": True}, "SIZE": [8, 32]}, samples=2)
    >>> points = spec.points()
    >>> len(points), [p["SEED"] for p in points], points == spec.points()
    (4, [0, 1, 0, 1], True)
    >>> all(1e-3 <= p["LR"] <= 1e-1 and p["SIZE"] in (8, 32) for p in points)
    True
    """

    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    random: dict[str, Any] = field(default_factory=dict)
    samples: int = 0
    sample_seed: int = 0

    def points(self) -> list[dict[str, Any]]:
        """Every point: each random draw (one when nothing is random) at every grid point."""
        both = sorted(set(self.grid) & set(self.random))
        if both:
            raise ValueError(f"{', '.join(both)} is both in the grid and random: choose one")
        if self.random and self.samples < 1:
            raise ValueError("random parameters need samples: the number of points to draw")
        rng = random.Random(self.sample_seed)
        draws = [
            {key: _draw(key, self.random[key], rng) for key in sorted(self.random)}
            for _ in range(self.samples if self.random else 1)
        ]
        base = grid(self.grid) if self.grid else [{}]
        return [{**draw, **point} for draw in draws for point in base]


def _draw(key: str, spec: Any, rng: random.Random) -> Any:
    """One value of a random parameter (see :class:`SweepSpec`)."""
    if isinstance(spec, list) and spec:
        return rng.choice(spec)
    if not (isinstance(spec, dict) and {"low", "high"} <= set(spec) <= _RANGE_KEYS):
        raise ValueError(
            f"random {key}: give a list of choices or {{low, high}} (with log, integer), "
            f"not {spec!r}"
        )
    low, high = float(spec["low"]), float(spec["high"])
    if not low < high or (spec.get("log") and low <= 0):
        raise ValueError(f"random {key}: need low < high (both above 0 with log), got {spec!r}")
    if spec.get("log"):
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return round(value) if spec.get("integer") else float(f"{value:.4g}")


_RANGE_KEYS = {"low", "high", "log", "integer"}
_FILE_KEYS = {"grid", "fixed", "seeds", "random", "samples", "sample_seed"}


def sweep_file(path: str | os.PathLike) -> SweepSpec:
    """Read a sweep file (YAML or JSON) into a :class:`SweepSpec`: ``grid``, ``random``
    with ``samples`` (and ``sample_seed``), ``fixed``, and ``seeds`` (a list, or ``"0-9"``).

    A file such as::

        grid: {MAX_BATCH_SIZE: [8, 32, 64]}
        random: {MAX_WAIT_MS: {low: 0.5, high: 8, log: true}}
        samples: 3
        fixed: {CONCURRENCY: 64}
        seeds: 0-2
    """
    import yaml

    spec = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    unknown = sorted(set(spec) - _FILE_KEYS) if isinstance(spec, dict) else spec
    if unknown:
        raise ValueError(f"{path}: a sweep file has {', '.join(sorted(_FILE_KEYS))}, not {unknown}")
    values: dict[str, tuple[Any, ...]] = {}
    for key, options in (spec.get("grid") or {}).items():
        values[key] = tuple(options) if isinstance(options, list) else (options,)
    seeds = spec.get("seeds")
    if seeds is not None:
        values["SEED"] = tuple(parse_seeds(str(seeds)) if isinstance(seeds, str | int) else seeds)
    return SweepSpec(
        grid=values,
        fixed=dict(spec.get("fixed") or {}),
        random=dict(spec.get("random") or {}),
        samples=int(spec.get("samples") or 0),
        sample_seed=int(spec.get("sample_seed") or 0),
    )


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
    threads: int | None = None,
) -> dict[str, Any]:
    """Run one point in a folder of its own and move it, whole, to ``out/points/<id>``;
    with ``threads``, its kernel's math libraries (torch, NumPy) use that many threads."""
    from mlinfra_kit.runner import run_notebooks

    if threads is not None:  # read by the kernel this process starts, when it loads them
        os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
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
    parallel: int | None = None,
    retry_failed: bool = False,
    cell_timeout: int = 1200,
    on_point: Callable[[str, dict[str, Any]], None] | None = None,
    ray_address: str | None = None,
    cpus_per_point: float = 1.0,
) -> list[dict[str, Any]]:
    """Run ``notebook`` once per point (each with ``fixed`` too) into ``out_dir`` and
    return every point's summary, in the points' order; also writes ``sweep.json``.

    ``parallel`` points run at once (default: as many as the notebook's declared cores fit
    this machine, :meth:`~mlinfra_kit.notebooks.NotebookInfo.runs_at_once`; one for a
    notebook whose verdicts rest on timings). Finished points already in ``out_dir/points``
    are not run again (failed ones are with
    ``retry_failed``). ``on_point("skip"|"start"|"end", summary)`` reports progress
    (``summary`` holds only ``id`` and ``parameters`` at the start).

    With ``ray_address`` (``"local"``: a Ray started here; ``"auto"``: the cluster this
    machine belongs to; or an address), each point is a Ray task needing ``cpus_per_point``
    CPUs and Ray decides how many run at once (``parallel`` is not used); ``out_dir`` must
    then be a folder every node of the cluster writes to."""
    from mlinfra_kit.runner import check_parameters

    if parallel is None:
        parallel = notebook.runs_at_once()
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

    # Points side by side share the cores: each kernel's math libraries get its share
    # (their default, a thread per core, makes parallel points spin against each other).
    if ray_address is not None:
        threads: int | None = max(1, int(cpus_per_point))
    else:
        threads = max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else None

    def started(point: Mapping[str, Any]) -> tuple[Any, ...]:
        if on_point:
            on_point("start", {"id": point_id(point), "parameters": dict(point)})
        return (notebook, point, fixed, out, quick, cell_timeout, threads)

    def ended(summary: dict[str, Any]) -> None:
        summaries[summary["id"]] = summary
        if on_point:
            on_point("end", summary)

    if ray_address is not None:
        for summary in _on_ray(ray_address, cpus_per_point, [started(p) for p in todo]):
            ended(summary)
    elif parallel == 1:
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


def _on_ray(
    address: str, cpus: float, calls: Sequence[tuple[Any, ...]]
) -> Iterator[dict[str, Any]]:
    """Run ``_run_point(*call)`` for every call as a Ray task of ``cpus`` CPUs, yielding each
    summary as its task ends: Ray's scheduler, not the kit's, decides what runs when."""
    from mlinfra_kit.scale.cluster import ray_cluster

    with ray_cluster(None if address == "local" else address):
        import ray

        task = ray.remote(num_cpus=cpus, max_retries=0)(_run_point)
        pending = [task.remote(*call) for call in calls]
        while pending:
            (done,), pending = ray.wait(pending, num_returns=1)
            yield ray.get(done)


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
    robust = robustness(ok)
    if robust:
        lines += ["## How robust each lesson is over the points", "", markdown_table(robust), ""]
    failed = [p for p in points if p["status"] != "ok"]
    if failed:
        lines += ["## Failed points", ""]
        lines += [f"- `{p['id']}` {p['parameters']}: {p['error']}" for p in failed] + [""]
    if figures and metrics and ok:
        for name in _figures(Path(out_dir), ok, swept, metrics):
            lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def robustness(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per lesson of the finished ``points``: at how many it held, did not hold and was
    inconclusive, and the share of all of them where it held.

    >>> robustness([{"lessons": {"a": "held"}}, {"lessons": {"a": "not_held"}}])
    [{'lesson': 'a', 'held': 1, 'not held': 1, 'inconclusive': 0, 'share held': 0.5}]
    """
    lessons = sorted({lesson for p in points for lesson in p["lessons"]})
    rows = []
    for lesson in lessons:
        outcomes = [p["lessons"].get(lesson) for p in points]
        rows.append(
            {
                "lesson": lesson,
                "held": outcomes.count("held"),
                "not held": outcomes.count("not_held"),
                "inconclusive": outcomes.count("inconclusive"),
                "share held": outcomes.count("held") / len(points),
            }
        )
    return rows


def _figures(
    out: Path, ok: Sequence[dict[str, Any]], swept: Sequence[str], metrics: Sequence[str]
) -> list[str]:
    """One PNG per metric: its mean over seeds (band: min-max) against each swept
    parameter but the seed, the other parameters as separate lines."""
    from matplotlib.figure import Figure  # not pyplot: a notebook's backend stays as it is

    axes_of = [k for k in swept if k != "SEED"] or ["SEED"]
    names = []
    for metric in metrics:
        fig = Figure(figsize=(4.5 * len(axes_of), 3.4))
        axes = fig.subplots(1, len(axes_of), squeeze=False)
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
