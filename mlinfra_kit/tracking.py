"""Experiment tracking with MLflow: each notebook a run executes becomes an MLflow run.

``mlinfra run`` calls :func:`log_notebook_run` after each notebook: its parameters, every
metric it recorded, its lessons (how many held, and their text), the machine's fingerprint
as tags, and the executed notebook and its results JSON as artifacts, in one experiment per
notebook (``mlinfra-kit/<notebook>``). The tracking location follows MLflow's convention:
``MLFLOW_TRACKING_URI`` when it is set, else a SQLite file in the run's folder
(:func:`default_tracking_uri`), with artifacts beside it. A sweep is then three commands and
no code::

    for s in 0 1 2; do mlinfra run 03 --quick -p SEED=$s --out sweep; done
    mlflow ui --backend-store-uri sqlite:///sweep/mlflow.db

Examples
--------
>>> default_tracking_uri("/tmp/sweep")
'sqlite:////tmp/sweep/mlflow.db'
>>> experiment_name("03_learning")
'mlinfra-kit/03_learning'
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "TRACK_HINT",
    "default_tracking_uri",
    "ensure_experiment",
    "log_sweep_run",
    "experiment_name",
    "log_notebook_run",
    "tracking_available",
    "tracking_uri",
]

TRACK_HINT = 'MLflow is not installed: pip install "mlinfra-kit[track]" (or run with --no-track)'


def tracking_available() -> bool:
    """Whether MLflow can be imported here."""
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def default_tracking_uri(out_dir: str | os.PathLike) -> str:
    """A SQLite tracking store in ``out_dir`` (``mlflow.db``)."""
    return f"sqlite:///{Path(out_dir).resolve() / 'mlflow.db'}"


def tracking_uri(out_dir: str | os.PathLike) -> str:
    """``MLFLOW_TRACKING_URI`` when set (a server, a database), else
    :func:`default_tracking_uri` of ``out_dir``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(out_dir)


def experiment_name(notebook: str) -> str:
    """The experiment a notebook's runs are grouped in."""
    return f"mlinfra-kit/{notebook}"


def ensure_experiment(client: Any, uri: str, name: str) -> str:
    """The id of experiment ``name`` at ``uri``, made if missing. With a SQLite store its
    artifacts go to ``mlartifacts`` beside the database (MLflow's default, ``./mlruns``,
    would be the current folder's)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        store = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
        location = (store / name.replace("/", "-")).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's notices (creating its tables) and its libraries' deprecation warnings are
    not the run's output: only errors reach the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import mlflow  # noqa: F401 - it sets its loggers' levels on import: quiet them after
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


def log_notebook_run(
    results_path: str | os.PathLike,
    uri: str,
    *,
    notebook_path: str | os.PathLike | None = None,
    parameters: Mapping[str, Any] | None = None,
    status: str = "ok",
    seconds: float | None = None,
    parent_run_id: str | None = None,
) -> str:
    """Log one executed notebook as an MLflow run at ``uri``; return the run's id.

    ``results_path`` is the JSON the notebook recorded (``results.record``): its parameters
    (updated with ``parameters``, what the runner passed), metrics, environment and lessons
    are logged; ``notebook_path`` (the executed copy) and the JSON become artifacts. A
    notebook that failed (``status`` other than ``"ok"``) is logged as a failed run.
    With a SQLite ``uri`` (the default), artifacts are stored in ``mlartifacts`` beside
    the database, not in the current folder. ``parent_run_id`` nests it under that run
    (a sweep's).
    """
    with _quiet():
        return _log(results_path, uri, notebook_path, parameters, status, seconds, parent_run_id)


def _log(results_path, uri, notebook_path, parameters, status, seconds, parent) -> str:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from mlinfra_kit import results
    from mlinfra_kit.results import Lesson, lessons_markdown, outcome_counts

    doc = results.load(results_path)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = ensure_experiment(client, uri, experiment_name(doc["notebook"]))

    params = {**doc.get("parameters", {}), **(parameters or {})}
    lessons = [Lesson(**lesson) for lesson in doc.get("lessons", [])]
    run_name = doc["notebook"] + "".join(
        f" {k}={params[k]}" for k in ("SEED", "QUICK") if k in params
    )
    tags = {f"env.{k}": str(v) for k, v in doc.get("environment", {}).items()}
    tags["mlinfra.notebook"] = doc["notebook"]
    tags["mlinfra.status"] = status
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = {k: float(v) for k, v in doc.get("metrics", {}).items()}  # finite: record checks
    if lessons:
        metrics["lessons_total"] = float(len(lessons))
        for outcome, count in outcome_counts(lessons).items():
            metrics[f"lessons_{outcome}"] = float(count)
    if seconds is not None:
        metrics["run_seconds"] = float(seconds)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)[:6000]) for k, v in params.items()],
    )
    if lessons:  # the run's description in the UI: what the notebook claims
        client.set_tag(run_id, "mlflow.note.content", "\n".join(f"- {x.claim}" for x in lessons))
        client.log_text(run_id, lessons_markdown(lessons), "lessons.md")
    client.log_artifact(run_id, str(results_path))
    if notebook_path is not None and Path(notebook_path).exists():
        client.log_artifact(run_id, str(notebook_path))
    client.set_terminated(run_id, "FINISHED" if status == "ok" else "FAILED")
    return run_id


def log_sweep_run(
    uri: str,
    notebook: str,
    swept: Mapping[str, Any],
    fixed: Mapping[str, Any],
    metrics: Mapping[str, float],
    run_id: str | None = None,
) -> str:
    """Log a sweep of ``notebook`` as one MLflow run (its points are logged as its
    children with :func:`log_notebook_run`'s ``parent_run_id``): the fixed parameters as
    parameters, the values of each swept one as tags (``swept.KEY``: a resumed sweep may
    add values), and ``metrics`` (e.g. the points that ran, each lesson's share of points
    held). With ``run_id``, update that run instead (a resumed sweep); return its id."""
    with _quiet():
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        if run_id is None:
            experiment_id = ensure_experiment(client, uri, experiment_name(notebook))
            tags = {"mlinfra.notebook": notebook, "mlinfra.sweep": "true"}
            run = client.create_run(experiment_id, run_name=f"sweep of {notebook}", tags=tags)
            run_id = run.info.run_id
            client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in fixed.items()])
        for key, values in swept.items():
            client.set_tag(run_id, f"swept.{key}", str(values)[:5000])
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        client.set_terminated(run_id, "FINISHED")
        return run_id
