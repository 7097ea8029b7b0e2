"""Sweeps: a small notebook run over a grid and seeds, for real, through papermill."""

import json
import os
import subprocess
import sys

import pytest
from helpers import make_notebook

from mlinfra_kit import sweep
from mlinfra_kit.notebooks import discover

#: Records ``value`` = 10 x SIZE + SEED and a lesson that holds when SIZE > 1; SIZE 13 fails.
BODY = """
from mlinfra_kit import results
from mlinfra_kit.results import Lesson
if SIZE == 13:
    raise ValueError("13 is unlucky")
import os, pathlib, threading
reached = os.environ.get("SWEEP_REACHED")  # the killed-sweep test holds SIZE 3 here
if reached and SIZE == 3:  # until the sweep is killed: the kernel then sees its parent
    pathlib.Path(reached).touch()  # gone and exits
    threading.Event().wait()
threads = int(os.environ.get("OMP_NUM_THREADS", 0))
results.record("01_sized", dict(QUICK=QUICK, SEED=SEED, SIZE=SIZE),
               {"value": 10 * SIZE + SEED, "threads": threads},
               results_dir=RESULTS_DIR, environment={"python": "test"},
               lessons=[Lesson("Bigger is bigger", f"size {SIZE}", SIZE > 1)])
"""


@pytest.fixture
def sized(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(folder / "01_sized.ipynb", BODY, metrics=("value",), parameters="SIZE = 1\n")
    (notebook,) = discover(folder)
    return notebook


@pytest.mark.slow
def test_a_grid_over_seeds_runs_every_point_and_reports_them(sized, tmp_path):
    out = tmp_path / "sweep"
    points = sweep.grid({"SIZE": (1, 2), "SEED": (0, 1)})
    events = []
    summaries = sweep.run_sweep(
        sized, points, out, quick=True, parallel=2, on_point=lambda e, s: events.append(e)
    )
    assert [s["status"] for s in summaries] == ["ok"] * 4
    assert [s["metrics"]["value"] for s in summaries] == [10, 11, 20, 21]
    share = max(1, (os.cpu_count() or 1) // 2)  # two points side by side: half the cores each
    assert {s["metrics"]["threads"] for s in summaries} == {share}
    assert [s["lessons"]["bigger_is_bigger"] for s in summaries] == ["not_held"] * 2 + ["held"] * 2
    assert events.count("start") == events.count("end") == 4
    for s in summaries:  # each point whole in its own folder, nothing half-written beside
        assert json.loads((out / "points" / s["id"] / "point.json").read_text()) == s
        assert (out / "points" / s["id"] / "01_sized.ipynb").exists()
    assert sorted(p.name for p in out.iterdir()) == ["points", "sweep.json"]
    assert sweep.load_sweep(out)["points"] == summaries

    report = sweep.write_sweep_report(out, metrics=["value"]).read_text()
    assert "4 point(s), 4 ok, 0 failed; quick mode." in report
    assert "| bigger_is_bigger | 2 | 2 | 0 | 0.5 |" in report
    assert "![value.png](value.png)" in report and (out / "value.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="metric.* nope not recorded"):
        sweep.render_sweep_report(out, metrics=["nope"])


def test_a_sweep_run_again_skips_finished_points_and_retries_failed_ones(sized, tmp_path):
    out = tmp_path / "sweep"
    points = sweep.grid({"SIZE": (2, 13)})
    first = sweep.run_sweep(sized, points, out, quick=True)
    assert [s["status"] for s in first] == ["ok", "failed"]
    assert "13 is unlucky" in first[1]["error"]
    (out / ".interrupted-point").mkdir()  # what a killed sweep leaves: not a finished point
    events = []
    again = sweep.run_sweep(sized, points, out, quick=True, on_point=lambda e, s: events.append(e))
    assert events == ["skip", "skip"] and again == first
    events.clear()
    sweep.run_sweep(
        sized, points, out, quick=True, retry_failed=True, on_point=lambda e, s: events.append(e)
    )
    assert events == ["skip", "start", "end"]


def test_bad_sweeps_are_refused_with_what_to_fix(sized, tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown parameter\(s\) BATCH; the selected notebooks take"
    ):
        sweep.run_sweep(sized, [{"BATCH": 1}], tmp_path)
    with pytest.raises(ValueError, match="SIZE is both swept and fixed"):
        sweep.run_sweep(sized, [{"SIZE": 1}], tmp_path, fixed={"SIZE": 2})
    with pytest.raises(ValueError, match="parallel must be 1 or more"):
        sweep.run_sweep(sized, [{"SIZE": 1}], tmp_path, parallel=0)
    with pytest.raises(ValueError, match="no values to sweep for SIZE"):
        sweep.grid({"SIZE": ()})
    with pytest.raises(ValueError, match="give a range"):
        sweep.parse_seeds("a-b")
    with pytest.raises(ValueError, match="empty range"):
        sweep.parse_seeds("5-2")
    with pytest.raises(ValueError, match="at least one value"):
        sweep.parse_values(" ")
    with pytest.raises(ValueError, match="no sweep in"):
        sweep.load_sweep(tmp_path / "nothing")


def test_a_sweep_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("grid: {SIZE: [1, 2]}\nfixed: {QUICK: true}\nseeds: 0-1\n")
    spec = sweep.sweep_file(path)
    assert (spec.grid, spec.fixed) == ({"SIZE": (1, 2), "SEED": (0, 1)}, {"QUICK": True})
    assert spec.points() == sweep.grid(spec.grid)
    path.write_text("grid: {SIZE: [1]}\nrandoms: {SIZE: [1]}\n")
    with pytest.raises(ValueError, match=r"not \['randoms'\]"):
        sweep.sweep_file(path)


def test_random_choices_are_drawn_once_each_and_the_same_on_every_read(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "random: {WAIT: {low: 0.5, high: 8, log: true}, SIZE: [8, 32], N: {low: 1, high: 9, "
        "integer: true}}\nsamples: 5\nseeds: [0, 1, 2]\n"
    )
    points = sweep.sweep_file(path).points()
    assert points == sweep.sweep_file(path).points()  # a rerun resumes the same points
    assert len(points) == 15 and len({sweep.point_id(p) for p in points}) == 15
    for draw in range(5):  # each draw at every seed, the same values
        same = points[3 * draw : 3 * draw + 3]
        assert [p.pop("SEED") for p in same] == [0, 1, 2]
        assert same[0] == same[1] == same[2]
        assert 0.5 <= same[0]["WAIT"] <= 8 and same[0]["SIZE"] in (8, 32)
        assert isinstance(same[0]["N"], int) and 1 <= same[0]["N"] <= 9
    other = sweep.SweepSpec(random={"SIZE": [8, 32, 64, 128]}, samples=5, sample_seed=1)
    assert other.points() != sweep.SweepSpec(random=other.random, samples=5).points()
    for bad, match in [
        (sweep.SweepSpec(random={"SIZE": [1]}), "need samples"),
        (sweep.SweepSpec(grid={"SIZE": (1,)}, random={"SIZE": [1]}, samples=1), "both in"),
        (sweep.SweepSpec(random={"W": {"low": 2, "high": 1}}, samples=1), "low < high"),
        (sweep.SweepSpec(random={"W": {"low": 0, "high": 1, "log": True}}, samples=1), "above 0"),
        (sweep.SweepSpec(random={"W": {"low": 0}}, samples=1), "list of choices or"),
        (sweep.SweepSpec(random={"W": []}, samples=1), "list of choices or"),
    ]:
        with pytest.raises(ValueError, match=match):
            bad.points()


@pytest.mark.slow
def test_the_command_line_sweeps_and_resumes(sized, tmp_path):
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "mlinfra_kit.cli", "sweep", "sized", "-p", "SIZE=2,13"]
    command += ["--seeds", "0-1", "--quick", "--out", str(out), "--metric", "value"]
    command += ["--notebooks", str(sized.path.parent)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    assert "4 point(s), 1 at a time" in done.stdout and "2/4 point(s) ok" in done.stdout
    assert "failed: " in done.stderr and "13 is unlucky" in done.stderr
    assert "| value |" in (out / "report.md").read_text()
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.stdout.count("done before:") == 4
    bad = subprocess.run([*command[:6], "SIZE", *command[-2:]], capture_output=True, text=True)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


@pytest.mark.slow
def test_a_killed_sweep_run_again_runs_only_what_did_not_finish(sized, tmp_path):
    import signal

    from mlinfra_kit.services import wait_until

    out, reached = tmp_path / "sweep", tmp_path / "reached"
    command = [sys.executable, "-m", "mlinfra_kit.cli", "sweep", "sized", "-p", "SIZE=2,3"]
    command += ["--quick", "--no-track", "--out", str(out), "--notebooks", str(sized.path.parent)]
    env = {**os.environ, "SWEEP_REACHED": str(reached)}
    sweeping = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:  # SIZE 2 has finished when SIZE 3 starts: kill the sweep there
        wait_until(reached.exists, 300, "the second point")
    finally:
        os.killpg(sweeping.pid, signal.SIGKILL)
        sweeping.wait()
    (first,) = (out / "points").iterdir()
    landed = (first / "point.json").stat().st_mtime_ns
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)  # not held
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done before:") == 1 and "2/2 point(s) ok" in again.stdout
    assert (first / "point.json").stat().st_mtime_ns == landed  # not run again
    points = sweep.load_sweep(out)["points"]
    assert [p["parameters"]["SIZE"] for p in points] == [2, 3]
    assert sorted(p.name for p in (out / "points").iterdir()) == sorted(p["id"] for p in points)


@pytest.mark.slow
def test_on_a_local_ray_a_sweep_gives_the_same_table(sized, tmp_path):
    from helpers import skip_unless_ci

    from mlinfra_kit.scale.cluster import INSTALL_HINT, ray_available

    if not ray_available():
        skip_unless_ci(INSTALL_HINT)
    points = sweep.grid({"SIZE": (1, 2, 13), "SEED": (0, 1)})
    here = sweep.run_sweep(sized, points, tmp_path / "here", quick=True, parallel=2)
    on_ray = sweep.run_sweep(sized, points, tmp_path / "ray", quick=True, ray_address="local")

    def table(summaries):  # what does not depend on the machine: not the threads given
        return [(s["id"], s["status"], s["metrics"].get("value"), s["lessons"]) for s in summaries]

    assert table(on_ray) == table(here)
    assert "13 is unlucky" in on_ray[4]["error"]


def test_a_sweep_is_one_mlflow_run_with_a_child_per_point(sized, tmp_path):
    from helpers import require_module

    mlflow = require_module("mlflow", 'pip install "mlinfra-kit[track]"')
    from mlinfra_kit.tracking import default_tracking_uri, experiment_name

    out, uri = tmp_path / "sweep", default_tracking_uri(tmp_path)
    points = sweep.grid({"SIZE": (1, 2, 13)})
    sweep.run_sweep(sized, points[:2], out, quick=True)
    parent = sweep.track_sweep(out, uri)
    sweep.run_sweep(sized, points, out, quick=True)  # resumed with one more point
    assert sweep.track_sweep(out, uri) == parent
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    (experiment,) = [client.get_experiment_by_name(experiment_name("01_sized"))]
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert len(runs) == 3 and len(children) == 2  # the failed point recorded no results
    assert sorted(r.data.params["SIZE"] for r in children) == ["1", "2"]
    sweep_run = client.get_run(parent)
    assert sweep_run.data.tags["swept.SIZE"] == "[1, 2, 13]"
    assert sweep_run.data.metrics["points"] == 3 and sweep_run.data.metrics["points_ok"] == 2
    assert sweep_run.data.metrics["lesson_held_share.bigger_is_bigger"] == 0.5
    assert f"run `{parent}`" in sweep.render_sweep_report(out)


def test_a_sweep_runs_as_many_points_at_once_as_the_notebook_s_declared_cores_fit():
    kit = {nb.name: nb for nb in discover()}
    assert kit["03_learning"].cores == 1  # accuracy on streams: one core a run
    assert kit["03_learning"].runs_at_once(4) == 4
    assert kit["01_serving"].cores is None  # its verdicts rest on timings: the whole machine
    assert kit["01_serving"].runs_at_once(4) == 1


def test_a_grid_has_every_combination_once_in_a_stable_order():
    values = {"A": (1, 2, 3), "B": ("x", "y"), "SEED": (0, 1)}
    points = sweep.grid(values)
    combos = {tuple(p[k] for k in values) for p in points}
    assert len(points) == len(combos) == 3 * 2 * 2
    assert points == sweep.grid(values)
    assert len({sweep.point_id(p) for p in points}) == len(points)
    assert sweep.point_id({"A": 1}) != sweep.point_id({"A": "1"})  # a value's type counts
