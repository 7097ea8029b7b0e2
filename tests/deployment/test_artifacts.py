"""Generated Dockerfile, Kubernetes manifests and SAM templates, validated offline."""

import pytest

from mlinfra_kit.deployment.container import (
    DOCKERIGNORE,
    dockerfile,
    problems,
    write_build_context,
)
from mlinfra_kit.deployment.kubernetes import (
    kserve_inference_service,
    manifests,
    validate,
    validate_inference_service,
)
from mlinfra_kit.deployment.serverless import (
    LAMBDA_RUNTIME,
    lint_template,
    package_size_bytes,
    sam_template,
)


def test_dockerfile_is_pinned_non_root_with_health_check():
    text = dockerfile("model", port=9000)
    assert problems(text) == []
    assert "USER app" in text and "HEALTHCHECK" in text and "/health" in text
    assert "download.pytorch.org/whl/cpu" in text and '--port", "9000' in text


@pytest.mark.parametrize(
    "text, finding",
    [
        ('FROM python:latest\nUSER app\nHEALTHCHECK CMD true\nCMD ["x"]', "not pinned"),
        ('FROM python:3.11\nUSER app\nHEALTHCHECK CMD true\nCMD ["x"]', "not pinned"),
        ('FROM python:3.11.11-slim\nHEALTHCHECK CMD true\nCMD ["x"]', "root"),
        ('FROM python:3.11.11-slim\nUSER root\nHEALTHCHECK CMD true\nCMD ["x"]', "root"),
        ('FROM python:3.11.11-slim\nUSER app\nCMD ["x"]', "HEALTHCHECK"),
    ],
)
def test_dockerfile_problems_are_found(text, finding):
    assert any(finding in p for p in problems(text))


def test_build_context(tmp_path, artifact):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    context = write_build_context(tmp_path / "ctx", artifact, root)
    assert (context / "model" / "metadata.json").is_file()
    assert (context / "mlinfra_kit" / "serving" / "app.py").is_file()
    assert (context / ".dockerignore").read_text() == DOCKERIGNORE
    with pytest.raises(ValueError, match="not a model artifact"):
        write_build_context(tmp_path / "x", tmp_path, root)


def test_kubernetes_manifests_validate_strictly():
    docs = manifests("tag-classifier", "registry.local/tag:1", replicas=2)
    assert validate(docs) == []
    deployment = docs[0]["spec"]
    container = deployment["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_validation_catches_unknown_fields_and_bad_types():
    docs = manifests("tag-classifier", "registry.local/tag:1")
    docs[0]["spec"]["replicaz"] = 3
    docs[1]["spec"]["ports"][0]["port"] = "eighty"
    errors = validate(docs)
    assert any("replicaz" in e for e in errors) and any("Service" in e for e in errors)


def test_kserve_canary():
    isvc = kserve_inference_service("tagger", "s3://models/v1", "s3://models/v2", 20)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/v2"
    assert validate_inference_service(isvc) == []
    assert (
        validate(
            [kserve_inference_service("tagger", "s3://models/v1"), *manifests("tagger", "img")]
        )
        == []
    )


def test_kserve_validation_catches_typos_types_and_missing_fields():
    isvc = kserve_inference_service("tagger", "s3://models/v1", "s3://models/v2", 20)
    predictor = isvc["spec"]["predictor"]
    predictor["canaryTraficPercent"] = predictor.pop("canaryTrafficPercent")
    predictor["minReplicas"] = "two"
    del predictor["model"]["modelFormat"]
    errors = validate([isvc])
    assert any("unknown field 'canaryTraficPercent'" in e for e in errors)
    assert any("minReplicas: expected int" in e for e in errors)
    assert any("model_format" in e for e in errors)
    assert validate_inference_service(
        {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "spec": {}}
    )
    assert "expected apiVersion" in validate_inference_service({"kind": "Pod"})[0]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: manifests("tag-classifier", "img", replicas=-1), "replicas"),
        (lambda: manifests("Bad_Name", "img"), "valid Kubernetes name"),
        (lambda: kserve_inference_service("tagger", "s3://a", "s3://b", 150), "0..100"),
        (lambda: dockerfile("model", port=0), "port"),
        (lambda: sam_template("tarball"), "image"),
        (lambda: package_size_bytes(("no-such-distribution",)), "not installed"),
    ],
)
def test_bad_generator_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("package", ["image", "zip"])
def test_sam_templates_pass_cfn_lint(package):
    text = sam_template(package)
    assert lint_template(text) == []
    assert package != "zip" or LAMBDA_RUNTIME in text


def test_cfn_lint_reports_a_broken_template():
    broken = sam_template("zip").replace("MemorySize: 2048", "MemorySize: lots")
    assert lint_template(broken)


def test_package_size_counts_torch_and_the_model(artifact):
    sizes = package_size_bytes(("torch",), extra_paths=(artifact,))
    assert sizes["torch"] > 100e6 and sizes[str(artifact)] > 1000
