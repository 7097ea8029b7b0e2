"""The retraining pipeline as a Metaflow flow, run as its users run it, read back through
Metaflow's client: a first run registers and promotes; a run that does not beat the
champion registers without promoting, and the store keeps the champion's answers; a
failed first attempt of the data load is retried."""

import sqlite3

import pytest
from helpers import require_module

require_module("metaflow", 'pip install "mlinfra-kit[flows]"')
require_module("mlflow", 'pip install "mlinfra-kit[track]"')

from mlinfra_kit.lifecycle import run_retrain_flow  # noqa: E402


def stored_versions(path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        rows = db.execute(f"select model_version, count(*) from {tables[0]} group by 1").fetchall()
    return dict(rows)


@pytest.mark.slow
def test_the_flow_promotes_only_a_better_model_and_fills_the_store(tmp_path):
    registry = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = tmp_path / "predictions.db"
    common = dict(registry=registry, store=f"sqlite:{store}", data_source="synthetic", epochs=20)

    first = run_retrain_flow(tmp_path / "metaflow", rehearse_retry=True, **common)
    assert first["successful"] and first["attempts"]["start"] == 1  # retried once
    assert set(first["steps"]) == {
        "start", "check_data", "train", "evaluate", "register", "batch_predict", "end"
    }  # fmt: skip
    assert first["version"] == "v1" and first["champion_before"] is None and first["promoted"]
    assert first["serving"] == "v1" and first["stored"] == first["checks"]["holdout_rows"]

    second = run_retrain_flow(tmp_path / "metaflow", min_gain=1.0, seed=1, **common)
    assert second["version"] == "v2" and second["champion_before"] == "v1"
    assert not second["promoted"] and second["serving"] == "v1"  # no model gains 1.0 F1
    assert second["champion_macro_f1"] == pytest.approx(first["candidate_macro_f1"])
    assert second["stored"] == 0  # the champion's answers are in the store already
    assert stored_versions(store) == {"v1": first["checks"]["holdout_rows"]}


def test_a_run_on_unusable_data_fails_naming_the_step(tmp_path):
    bad = tmp_path / "projects.csv"
    bad.write_text("id,created_on,title,description,tag\n1,2020-01-01,a,b,computer-vision\n")
    with pytest.raises(RuntimeError, match="retraining flow failed"):
        run_retrain_flow(
            tmp_path / "metaflow",
            registry=str(tmp_path / "registry"),
            store=f"sqlite:{tmp_path / 'p.db'}",
            data_source=str(bad),
        )
