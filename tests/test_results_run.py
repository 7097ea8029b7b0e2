"""results.Run: a notebook's parameters from its parameters cell, metrics added where measured."""

import json

import pytest

from mlinfra_kit.results import Lesson, Run
from mlinfra_kit.runner import parameter_names


def test_parameters_come_from_the_notebooks_parameters_cell(tmp_path):
    names = parameter_names("03_learning")
    assert names[:5] == ["QUICK", "SEED", "DEVICE", "RESULTS_DIR", "INTERACTIVE"]
    namespace = {name: 0 for name in names} | {"RESULTS_DIR": str(tmp_path), "helper": print}
    run = Run("03_learning", namespace)
    run.add(accuracy_online=0.8)
    run.add({"retrains_periodic": 3})
    path = run.record([Lesson("c", "o", True)], environment={}, quiet=True)
    doc = json.loads(path.read_text())
    assert set(doc["parameters"]) == set(names) and "helper" not in doc["parameters"]
    assert doc["metrics"] == {"accuracy_online": 0.8, "retrains_periodic": 3}
    assert path.parent == tmp_path


def test_a_bad_metric_fails_where_it_is_added_and_a_rerun_cell_replaces(tmp_path):
    run = Run("00_demo", {"SEED": 0, "RESULTS_DIR": str(tmp_path)}, parameters=["SEED"])
    with pytest.raises(ValueError, match="must be finite"):
        run.add(p99_ms=float("nan"))
    with pytest.raises(ValueError, match="snake_case"):
        run.add({"P99 ms": 1.0})
    run.add(p99_ms=2.0)
    run.add(p99_ms=1.0)  # the same cell run again
    assert run.metrics == {"p99_ms": 1.0}


def test_parameters_not_run_yet_and_unknown_notebooks_are_named():
    with pytest.raises(ValueError, match="run the parameters cell first; SEED"):
        Run("00_demo", {"QUICK": True}, parameters=["QUICK", "SEED"])
    with pytest.raises(ValueError, match="no notebook '99_nothing'"):
        parameter_names("99_nothing")
