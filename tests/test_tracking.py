"""Every notebook a run executes becomes an MLflow run: parameters, every metric, the
lessons, the machine as tags, the executed notebook and its results as artifacts; a sweep
is comparable runs in one experiment."""

import json

import pytest
from helpers import make_notebook, require_module

from mlinfra_kit import results
from mlinfra_kit.report import render_report
from mlinfra_kit.results import Lesson
from mlinfra_kit.runner import discover, run_notebooks
from mlinfra_kit.tracking import default_tracking_uri, experiment_name, log_notebook_run

mlflow = require_module("mlflow", 'pip install "mlinfra-kit[track]"')

SWEEP = (
    "from mlinfra_kit import results\n"
    "from mlinfra_kit.results import Lesson\n"
    "results.record('07_sweep', dict(SEED=SEED), {'accuracy': 0.5 + SEED / 10, 'errors': 0},\n"
    "               results_dir=RESULTS_DIR,\n"
    "               lessons=[Lesson('more seeds, more accuracy', f'seed {SEED}', SEED > 0)])\n"
)


def client(uri):
    return mlflow.tracking.MlflowClient(tracking_uri=uri)


def test_a_results_file_is_logged_whole(tmp_path):
    path = results.record(
        "02_processing",
        {"QUICK": True, "SEED": 3, "PEERS": ["a", "b"]},
        {"accuracy": 0.75, "lag_ms": 12.5, "errors": 0},
        results_dir=tmp_path / "results",
        environment={"python": "3.11", "torch": "2.14.1", "cpu_count": 2},
        lessons=[Lesson("a claim", "what was seen", True), Lesson("another", "seen", False)],
    )
    notebook = tmp_path / "02_processing.ipynb"
    notebook.write_text("{}")
    uri = default_tracking_uri(tmp_path)
    run_id = log_notebook_run(path, uri, notebook_path=notebook, seconds=4.2)
    run = client(uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"QUICK": "True", "SEED": "3", "PEERS": "['a', 'b']"}
    assert run.data.metrics == {
        "accuracy": 0.75,
        "lag_ms": 12.5,
        "errors": 0.0,
        "lessons_total": 2.0,
        "lessons_held": 1.0,
        "lessons_not_held": 1.0,
        "lessons_inconclusive": 0.0,
        "run_seconds": 4.2,
    }
    assert run.data.tags["env.torch"] == "2.14.1" and run.data.tags["env.cpu_count"] == "2"
    assert "a claim" in run.data.tags["mlflow.note.content"]
    artifacts = {a.path for a in client(uri).list_artifacts(run_id)}
    assert artifacts == {"02_processing.json", "02_processing.ipynb", "lessons.md"}
    assert (tmp_path / "mlartifacts").is_dir()  # beside the database, not in the cwd


@pytest.mark.slow
def test_a_three_seed_sweep_is_three_comparable_runs(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(folder / "07_sweep.ipynb", SWEEP, metrics=("accuracy",))
    out = tmp_path / "sweep"
    uri = default_tracking_uri(out)
    for seed in (0, 1, 2):
        (outcome,) = run_notebooks(discover(folder), out, {"SEED": seed}, track=uri)
        assert outcome.status == "ok" and outcome.mlflow_run_id and not outcome.tracking_error
    experiment = client(uri).get_experiment_by_name(experiment_name("07_sweep"))
    runs = client(uri).search_runs([experiment.experiment_id], order_by=["params.SEED"])
    assert [r.data.params["SEED"] for r in runs] == ["0", "1", "2"]
    assert [r.data.metrics["accuracy"] for r in runs] == [0.5, 0.6, 0.7]
    assert all(r.data.metrics["errors"] == 0 for r in runs)
    assert [r.data.metrics["lessons_held"] for r in runs] == [0, 1, 1]
    assert json.loads((out / "run.json").read_text())["mlflow_runs_logged"] == 1  # the last
    assert "1 logged as MLflow runs" in render_report(out)


def test_a_failed_notebook_with_results_is_logged_as_failed(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(
        folder / "07_sweep.ipynb", SWEEP + "raise RuntimeError('after recording')\n", ("accuracy",)
    )
    uri = default_tracking_uri(tmp_path / "out")
    (outcome,) = run_notebooks(discover(folder), tmp_path / "out", track=uri)
    assert outcome.status == "failed"
    assert client(uri).get_run(outcome.mlflow_run_id).info.status == "FAILED"


def test_without_track_nothing_is_logged(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(folder / "07_sweep.ipynb", SWEEP, metrics=("accuracy",))
    (outcome,) = run_notebooks(discover(folder), tmp_path / "out")
    assert outcome.status == "ok" and outcome.mlflow_run_id is None
    assert not (tmp_path / "out" / "mlflow.db").exists()
