"""The application's versions in MLflow's model registry: registered as pyfunc models with a
signature, served by alias (champion), promoted by moving the alias, loaded by
`mlinfra serve --model models:/tag-classifier@champion`."""

import os
import subprocess
import sys

import httpx
import pytest
from helpers import require_module

from mlinfra_kit.services import LOOPBACK, free_port, wait_until

require_module("mlflow", 'pip install "mlinfra-kit[track]"')

from mlinfra_kit.application.mlflow_registry import (  # noqa: E402
    MLflowRegistry,
    resolve_model,
)
from mlinfra_kit.models import TagClassifier  # noqa: E402


@pytest.fixture
def registry(tmp_path):
    return MLflowRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "models")


def test_versions_aliases_and_promotion(registry, trained):
    assert registry.production is None and registry.versions() == {}
    v1 = registry.register(trained, {"macro_f1": 0.8}, notes="first")
    assert v1 == "v1" and registry.production is None  # registering is not deploying
    registry.promote(v1)
    v2 = registry.register(trained, {"macro_f1": 0.9})
    versions = registry.versions()
    assert versions["v1"]["aliases"] == ["champion"] and versions["v1"]["notes"] == "first"
    assert versions["v2"]["aliases"] == ["challenger"]
    assert versions["v2"]["metrics"] == {"macro_f1": 0.9}
    registry.promote(v2)
    assert registry.production == "v2" and registry.versions()["v2"]["aliases"] == ["champion"]
    with pytest.raises(ValueError, match="unknown version 'v9'"):
        registry.promote("v9")


def test_a_version_is_a_pyfunc_model_with_a_signature_and_the_kits_artifact(
    registry, trained, monkeypatch
):
    import mlflow
    import pandas as pd

    registry.promote(registry.register(trained, {"macro_f1": 0.8}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)  # as a user of MLflow would
    mlflow.set_tracking_uri(registry.uri)
    try:
        pyfunc = mlflow.pyfunc.load_model("models:/tag-classifier@champion")
    finally:
        mlflow.set_tracking_uri(None)
    assert [c.name for c in pyfunc.metadata.get_input_schema().inputs] == ["title", "description"]
    title = "YOLO object detection on a webcam"
    frame = pd.DataFrame([{"title": title, "description": ""}])
    assert list(pyfunc.predict(frame)) == [trained.predict([title])[0].tag]
    local = TagClassifier.load(registry.path("v1"))
    assert (
        local.version == "v1" and local.predict([title])[0].tag == trained.predict([title])[0].tag
    )


def test_the_champion_alias_resolves_to_the_promoted_version(registry, trained):
    registry.promote(registry.register(trained, {"macro_f1": 0.8}))
    first = resolve_model("models:/tag-classifier@champion", registry.uri, registry.cache)
    registry.promote(registry.register(trained, {"macro_f1": 0.9}))
    second = resolve_model("models:/tag-classifier@champion", registry.uri, registry.cache)
    assert first != second and TagClassifier.load(second).version == "v2"
    with pytest.raises(ValueError, match="not in the registry"):
        resolve_model("models:/tag-classifier@nobody", registry.uri, registry.cache)
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI"):
        resolve_model("models:/tag-classifier@champion", None, registry.cache)


@pytest.mark.slow
def test_mlinfra_serve_loads_the_champion_by_alias(registry, trained, tmp_path):
    registry.promote(registry.register(trained, {"macro_f1": 0.8}))
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry.uri, "MLINFRA_MODEL_CACHE": str(tmp_path)}
    command = [sys.executable, "-m", "mlinfra_kit.cli", "serve", "--port", str(port),
               "--model", "models:/tag-classifier@champion"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/ready").status_code == 200, 60, "serve", process)
        answer = httpx.post(url + "/predict", json={"title": "YOLO on a webcam"}).json()
        assert answer["model_version"] == "v1"
    finally:
        process.terminate()
        process.wait(timeout=30)
