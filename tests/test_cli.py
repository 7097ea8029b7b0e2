"""The command line, run as a user runs it: a real subprocess."""

import json
import os
import subprocess
import sys

import pytest
from helpers import make_notebook

MLINFRA = [sys.executable, "-m", "mlinfra_kit.cli"]


def mlinfra(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*MLINFRA, *map(str, args)], capture_output=True, text=True, env=env, timeout=600, **kwargs
    )


def test_help_is_instant_and_does_not_import_torch():
    """Instant because the CLI's start imports neither torch nor papermill (asserted, not
    timed: a timing would fail on a loaded machine and prove less)."""
    probe = "import sys, mlinfra_kit.cli; print('torch' in sys.modules, 'papermill' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"]
    done = mlinfra("--help")
    assert done.returncode == 0 and "run" in done.stdout and "doctor" in done.stdout


def test_list(tiny_notebooks):
    done = mlinfra("list", "--notebooks", tiny_notebooks)
    assert done.returncode == 0
    assert "01_good" in done.stdout and "01_good title" in done.stdout
    assert "00_quickstart" in mlinfra("list").stdout


@pytest.mark.slow
def test_run_then_report(tiny_notebooks, tmp_path):
    out = tmp_path / "run"
    done = mlinfra(
        "run", "good", "--quick", "--out", out, "-p", "SEED=1", "--notebooks", tiny_notebooks
    )
    assert done.returncode == 0, done.stderr
    assert "1/1 notebook(s) ok" in done.stdout
    params = json.loads((out / "results" / "01_good.json").read_text())["parameters"]
    assert params == {"QUICK": True, "SEED": 1}
    done = mlinfra("report", out)
    assert done.returncode == 0
    assert "| answer | 43 |" in (out / "report.md").read_text()


def test_max_rounds_reaches_the_notebooks_comparisons(tmp_path):
    """``--max-rounds`` caps every comparison in the notebooks' kernels, and the results
    record the cap beside the numbers."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    body = (
        "from mlinfra_kit import results\n"
        "from mlinfra_kit.comparison import compare\n"
        "c = compare(lambda: 1.0, lambda: 1.0, rel_width=0.0, max_rounds=10)\n"
        "results.record('05_capped', {}, {'answer': c.repeats}, results_dir=RESULTS_DIR)\n"
    )
    make_notebook(folder / "05_capped.ipynb", body)
    out = tmp_path / "run"
    done = mlinfra("run", "capped", "--max-rounds", "2", "--out", out, "--notebooks", folder)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "results" / "05_capped.json").read_text())
    assert doc["metrics"] == {"answer": 2} and doc["environment"]["max_rounds"] == 2


def test_failing_notebook_exits_nonzero_and_names_the_cell(tiny_notebooks, tmp_path):
    done = mlinfra("run", "02", "--out", tmp_path, "--notebooks", tiny_notebooks)
    assert done.returncode == 1
    assert "02_broken failed in cell" in done.stderr and "broken on purpose" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope"], "no notebook named 'nope'"),
        (["run", "good", "-p", "SEED"], "is not KEY=VALUE"),
        (["run", "good", "-p", "TYPO=1"], "unknown parameter(s) TYPO"),
        (["run", "good", "--max-rounds", "1"], "--max-rounds must be 2 or more, got 1"),
    ],
)
def test_usage_errors_exit_2_with_a_message(tiny_notebooks, tmp_path, args, message):
    done = mlinfra(*args, "--notebooks", tiny_notebooks, "--out", tmp_path)
    assert done.returncode == 2
    assert message in done.stderr


def test_report_of_empty_folder(tmp_path):
    done = mlinfra("report", tmp_path)
    assert done.returncode == 2 and "no results" in done.stderr


def test_doctor_lists_environment_and_services():
    done = mlinfra("doctor")
    assert done.returncode == 0, done.stderr
    for word in (
        "torch",
        "river",
        "cpu",
        "CUDA GPU",
        "redis-server",
        "small-model threads",
        "ray (scale extra)",
        "jupyter kernels",
    ):
        assert word in done.stdout


def test_serve_rejects_a_folder_that_is_not_an_artifact(tmp_path):
    done = mlinfra("serve", "--model", tmp_path)
    assert done.returncode == 2 and "not a model artifact" in done.stderr


def test_serve_rejects_bad_settings(artifact):
    done = mlinfra("serve", "--model", artifact, "--max-batch-size", "0")
    assert done.returncode == 2 and "max_batch_size must be at least 1" in done.stderr


@pytest.mark.slow
def test_envs_build_list_and_remove_in_a_scratch_folder(tmp_path):
    # MLflow's own packages are in the kit's environment: its build is the quick one (a venv,
    # a no-op pip install, the commands written and checked), with every step of a real one.
    home = tmp_path / "envs"
    built = mlinfra("envs", "build", "mlflow", "--home", home)
    assert built.returncode == 0, built.stderr
    assert "mlflow: ready in" in built.stdout and (home / "mlflow" / "bin" / "mlflow").exists()
    listed = mlinfra("envs", "list", "--home", home).stdout
    assert "mlflow       built," in listed and "flink        not built" in listed
    doctor = subprocess.run(
        [*MLINFRA, "doctor"],
        capture_output=True,
        text=True,
        env={**os.environ, "MLINFRA_PEERS_HOME": str(home)},
        timeout=120,
    )
    assert "environments built" in doctor.stdout and "mlflow (" in doctor.stdout
    removed = mlinfra("envs", "remove", "--home", home)
    assert "mlflow: removed" in removed.stdout and not (home / "mlflow").exists()
    unknown = mlinfra("envs", "build", "nope", "--home", home)
    assert unknown.returncode == 2 and "unknown environment(s) nope" in unknown.stderr
