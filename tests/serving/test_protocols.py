"""The open inference protocols on the kit's server: Open Inference Protocol v2 (read by
Triton's own client) and SageMaker's container contract, over real HTTP."""

import httpx
import numpy as np
import pytest

from mlinfra_kit.serving import run_server
from mlinfra_kit.serving.protocols import V2_MODEL_NAME, port_from_env, v2_request

INFER = f"/v2/models/{V2_MODEL_NAME}/infer"


@pytest.fixture(scope="module")
def server(artifact):
    with run_server(artifact, max_items=4, max_text_chars=50) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_v2_health_and_metadata(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"/v2/models/{V2_MODEL_NAME}/ready").json()["ready"] is True
    meta = client.get(f"/v2/models/{V2_MODEL_NAME}").json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in meta["outputs"]] == ["tag", "probabilities"]
    assert client.get("/v2").json()["name"] == "mlinfra-kit"


def test_v2_infer_answers_what_predict_answers(client):
    texts = ["YOLO object detection on a webcam", "Fine-tuning BERT for legal clauses"]
    reply = client.post(INFER, json=v2_request(texts, request_id="r-1")).json()
    assert reply["id"] == "r-1" and reply["model_name"] == V2_MODEL_NAME
    outputs = {o["name"]: o for o in reply["outputs"]}
    tags = client.get(f"/v2/models/{V2_MODEL_NAME}").json()["parameters"]["tags"]
    assert outputs["probabilities"]["shape"] == [2, len(tags)]
    for i, text in enumerate(texts):
        live = client.post("/predict", json={"title": text}).json()
        assert outputs["tag"]["data"][i] == live["tag"]
        row = outputs["probabilities"]["data"][i * len(tags) : (i + 1) * len(tags)]
        assert row == pytest.approx([live["probabilities"][t] for t in tags])
    only = client.post(INFER, json={**v2_request(texts[:1]), "outputs": [{"name": "tag"}]})
    assert [o["name"] for o in only.json()["outputs"]] == ["tag"]


@pytest.mark.parametrize(
    "body, status, words",
    [
        (
            {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": ["x"]}]},
            400,
            "BYTES",
        ),
        (
            {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["x"]}]},
            400,
            "shape",
        ),
        (
            {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["x"]}]},
            400,
            "unknown input",
        ),
        (v2_request(["  "]), 400, "blank"),
        (v2_request(["x"] * 5), 400, "1 to 4"),
        (v2_request(["x" * 200]), 400, "longer"),
        ({**v2_request(["x"]), "outputs": [{"name": "logits"}]}, 400, "unknown output"),
        ({"inputs": []}, 400, "inputs"),
        (
            {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [1]}]},
            400,
            "data",
        ),
    ],
)
def test_v2_bad_requests_get_a_400_that_says_why(client, body, status, words):
    response = client.post(INFER, json=body)
    assert response.status_code == status and words in response.json()["error"]


def test_v2_unknown_model_and_unreadable_body(client):
    missing = client.post("/v2/models/resnet/infer", json=v2_request(["x"]))
    assert missing.status_code == 404 and "resnet" in missing.json()["error"]
    assert client.get("/v2/models/resnet").status_code == 404
    broken = client.post(INFER, content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "not JSON" in broken.json()["error"]


def test_tritons_own_client_reads_the_v2_routes(server):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(V2_MODEL_NAME)
    assert client.get_model_metadata(V2_MODEL_NAME)["inputs"][0]["datatype"] == "BYTES"
    texts = np.array(
        ["YOLO object detection on a webcam", "Serving models with Docker"], dtype=object
    )
    tensor = triton.InferInput("text", [2], "BYTES")
    tensor.set_data_from_numpy(texts)
    result = client.infer(V2_MODEL_NAME, [tensor])
    tags = result.as_numpy("tag")
    assert len(tags) == 2 and result.as_numpy("probabilities").shape[0] == 2
    live = httpx.post(server.url + "/predict", json={"title": str(texts[0])}).json()["tag"]
    assert (tags[0].decode() if isinstance(tags[0], bytes) else tags[0]) == live
    with pytest.raises(triton.InferenceServerException, match="unknown model"):
        client.infer("resnet", [tensor])
    client.close()


def test_sagemaker_ping_and_invocations(client):
    assert client.get("/ping").status_code == 200
    one = client.post("/invocations", json={"title": "YOLO on a webcam"})
    assert one.status_code == 200 and "tag" in one.json()
    many = client.post("/invocations", json={"instances": [{"title": "a"}, {"title": "b"}]})
    assert many.status_code == 200 and len(many.json()["predictions"]) == 2
    assert client.post("/invocations", json={"title": " "}).status_code == 422
    assert client.post("/invocations", json={"instances": []}).status_code == 422


def test_the_port_comes_from_the_platform(monkeypatch):
    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert port_from_env(8000) == 8000
    monkeypatch.setenv("PORT", "9090")
    assert port_from_env() == 9090
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8080")
    assert port_from_env() == 8080
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "eighty")
    with pytest.raises(ValueError, match="SAGEMAKER_BIND_TO_PORT"):
        port_from_env()


def test_a_binary_body_that_does_not_fit_gets_a_400(client):
    header = b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", '
    header += b'"parameters": {"binary_data_size": 50}}]}'
    for length, body in ((str(len(header)), header + b"\x05\x00\x00\x00ab"), ("9999", header)):
        response = client.post(
            INFER,
            content=body,
            headers={
                "content-type": "application/octet-stream",
                "inference-header-content-length": length,
            },
        )
        assert response.status_code == 400 and "fit" in response.json()["error"]
