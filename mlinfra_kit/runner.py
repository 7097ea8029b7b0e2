"""Executing the kit's notebooks as parameterised experiments, with papermill.

Each notebook declares, in its metadata (``metadata.mlinfra.metrics``), the metrics it
promises to record; a run fails when a promised metric is missing, so a notebook that
silently stops measuring something is caught.

``run_notebooks`` writes into ``out_dir``: each executed notebook, ``results/*.json``
(what the notebooks recorded) and ``run.json`` (status and duration of each notebook).
"""

from __future__ import annotations

import ast
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlinfra_kit.notebooks import (
    NotebookInfo,
    discover,
    notebook_parameters,
    notebooks_dir,
    parameter_names,
    select,
)

__all__ = [
    "NotebookInfo",  # from mlinfra_kit.notebooks, kept here for existing imports
    "NotebookResult",
    "check_parameters",
    "notebooks_dir",
    "discover",
    "parameter_names",
    "select",
    "parse_parameter",
    "run_notebooks",
    "RESERVED_PARAMETERS",
]

#: Set by the runner itself: results always land in ``out_dir/results`` and no widget
#: waits for a person.
RESERVED_PARAMETERS = ("RESULTS_DIR", "INTERACTIVE")


@dataclass
class NotebookResult:
    """How one notebook run ended: status, time, the executed copy, the error if any, the
    parameters it ran with."""

    notebook: str
    status: str  # "ok", "failed", or "skipped" (an optional extra is not installed)
    seconds: float
    output: str
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    #: The MLflow run it was logged as (``track``), or why logging it failed.
    mlflow_run_id: str | None = None
    tracking_error: str | None = None


def parse_parameter(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (KEY, value); VALUE is read as a Python literal (``1``, ``0.5``,
    ``True``, ``'cpu'``, ``[1, 2]``; ``true``/``false`` also work), else kept as text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"parameter {text!r} is not KEY=VALUE (e.g. -p SEED=1)")
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    try:
        return key, ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        return key, raw


def _failure_message(nb: NotebookInfo, err: BaseException, output: Path) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        first_line = next((line for line in err.source.splitlines() if line.strip()), "")
        return (
            f"{nb.name} failed in cell {err.cell_index} (execution count {err.exec_count}, "
            f"starting {first_line.strip()!r}): {err.ename}: {err.evalue}. "
            f"The executed notebook with the traceback is {output}"
        )
    return f"{nb.name} failed: {type(err).__name__}: {err}"


def check_parameters(
    notebooks: Sequence[NotebookInfo], parameters: Iterable[str]
) -> dict[str, set[str]]:
    """Refuse ``parameters`` that the runner sets itself or that none of ``notebooks``
    has (probably misspelled), saying which they take; return each notebook's."""
    parameters = set(parameters)
    reserved = sorted(parameters & set(RESERVED_PARAMETERS))
    if reserved:
        raise ValueError(
            f"{', '.join(reserved)} is set by the runner; use --out to choose where results go"
        )
    known = {nb.name: set(notebook_parameters(nb.path)) for nb in notebooks}
    unknown = sorted(k for k in parameters if not any(k in names for names in known.values()))
    if unknown:
        everything = sorted(set().union(*known.values())) if known else []
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)}; the selected notebooks "
            f"take: {', '.join(everything)}"
        )
    return known


def run_notebooks(
    notebooks: Sequence[NotebookInfo],
    out_dir: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    quick: bool = False,
    kernel: str = "python3",
    cell_timeout: int = 1200,
    on_event: Callable[[str, NotebookInfo, NotebookResult | None], None] | None = None,
    track: str | None = None,
) -> list[NotebookResult]:
    """Execute ``notebooks`` in order into ``out_dir``; one failure does not stop the rest.

    ``parameters`` go to every notebook that has them in its ``parameters`` cell; a
    parameter that no selected notebook has is an error (it is probably misspelled).
    ``on_event("start"|"end", notebook, result)`` reports progress. With ``track`` (an
    MLflow tracking URI, see :mod:`mlinfra_kit.tracking`), each notebook that recorded
    results is logged as an MLflow run there; a logging failure is reported in its result
    (``tracking_error``), it does not fail the notebook.
    """
    import papermill

    from mlinfra_kit.results import load

    parameters = dict(parameters or {})
    known = check_parameters(notebooks, parameters)
    out = Path(out_dir).resolve()
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    outcomes: list[NotebookResult] = []
    for nb in notebooks:
        given = {"QUICK": quick, **parameters} if quick else dict(parameters)
        given = {k: v for k, v in given.items() if k in known[nb.name]}
        given.update(RESULTS_DIR=str(results_dir), INTERACTIVE=False)
        output = out / nb.path.name
        if on_event:
            on_event("start", nb, None)
        if nb.missing:
            result = NotebookResult(
                nb.name,
                "skipped",
                0.0,
                "",
                f"{nb.name} needs "
                f"{', '.join(nb.missing)}: pip install "
                f'"mlinfra-kit[{nb.extra or "..."}]"',
                given,
            )
            outcomes.append(result)
            if on_event:
                on_event("end", nb, result)
            continue
        (results_dir / f"{nb.name}.json").unlink(missing_ok=True)
        tic = time.perf_counter()
        error = None
        try:
            papermill.execute_notebook(
                str(nb.path),
                str(output),
                parameters=given,
                kernel_name=kernel,
                execution_timeout=cell_timeout,
                cwd=str(out),
                progress_bar=False,
                # The kernel's own start-up notices (e.g. that it talks over loopback TCP)
                # are not the notebook's output: only its errors reach this terminal.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
            recorded = load(results_dir / f"{nb.name}.json")["metrics"]
            missing = [m for m in nb.metrics if m not in recorded]
            if missing:
                error = f"{nb.name} ran but did not record promised metric(s): {', '.join(missing)}"
        except FileNotFoundError:
            error = f"{nb.name} ran but wrote no results file {results_dir / nb.name}.json"
        except Exception as err:  # noqa: BLE001 - any failure is reported, the tour goes on
            error = _failure_message(nb, err, output)
        result = NotebookResult(
            nb.name,
            "failed" if error else "ok",
            time.perf_counter() - tic,
            str(output),
            error,
            given,
        )
        recorded_path = results_dir / f"{nb.name}.json"
        if track and recorded_path.exists():
            from mlinfra_kit.tracking import log_notebook_run

            try:
                result.mlflow_run_id = log_notebook_run(
                    recorded_path,
                    track,
                    notebook_path=output,
                    parameters={k: v for k, v in given.items() if k not in RESERVED_PARAMETERS},
                    status=result.status,
                    seconds=result.seconds,
                )
            except Exception as err:  # noqa: BLE001 - the notebook ran; say why it is not logged
                result.tracking_error = f"{type(err).__name__}: {err}"
        outcomes.append(result)
        if on_event:
            on_event("end", nb, result)
    _write_summary(out, outcomes)
    return outcomes


def _write_summary(out: Path, outcomes: Sequence[NotebookResult]) -> None:
    """Merge this run's outcomes into ``run.json`` (a later run of one notebook keeps
    the others' entries)."""
    path = out / "run.json"
    previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    entries = {e["notebook"]: e for e in previous.get("notebooks", [])}
    entries.update({o.notebook: asdict(o) for o in outcomes})
    notebooks = [entries[k] for k in sorted(entries)]
    summary = {
        "notebooks": notebooks,
        "mlflow_runs_logged": sum(bool(e.get("mlflow_run_id")) for e in notebooks),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
