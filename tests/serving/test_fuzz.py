"""No input gets a 500, no error echoes the input whole, and the OpenAPI spec tells the
truth: schemathesis (all checks) against a real server, then the hand-found cases."""

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mlinfra_kit.serving import run_server
from mlinfra_kit.serving.config import ServerConfig

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def server(artifact):
    with run_server(artifact, max_items=8, max_body_bytes=20_000) as running:
        yield running


@pytest.mark.slow
def test_schemathesis_finds_nothing_with_all_checks(server):
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is part of the dev extra: pip install -e '.[dev]'"
    done = subprocess.run(
        [
            cli,
            "--config-file",
            str(CONFIG),
            "run",
            server.url + "/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "60",
            "--seed",
            "0",
            "--workers",
            "1",
            "--no-shrink",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " 0 failures" in done.stdout or "failures" not in done.stdout.split("SUMMARY")[-1]


RAW_BODIES = {
    "NaN": b'{"title": NaN}',
    "Infinity": b'{"title": Infinity}',
    "-Infinity in a batch": b'{"projects": [{"title": -Infinity}]}',
    "1e309": b'{"title": "x", "description": 1e309}',
    "lone surrogate": b'{"title": "\\ud800"}',
    "lone surrogate as a key": b'{"\\udc00": "x", "title": "y"}',
    "not UTF-8": b'{"title": "\xff\xfe"}',
    "gzip": gzip.compress(b'{"title": "x"}'),
    "10^4400": b'{"title": ' + b"1" * 4401 + b"}",
    "deep nesting": b'{"title": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    "form feed title": b'{"title": "\\f"}',
    "blank title": b'{"title": "   "}',
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_bad_bodies_get_a_short_4xx(server, name):
    path = "/predict/batch" if "batch" in name else "/predict"
    response = httpx.post(
        server.url + path,
        content=RAW_BODIES[name],
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
    assert len(response.content) < 2_000 and "detail" in response.json()


def test_a_non_utf8_charset_is_refused_not_misread(server):
    body = '{"title": "caf\u00e9"}'.encode("latin-1")
    response = httpx.post(
        server.url + "/predict",
        content=body,
        headers={"content-type": "application/json; charset=latin-1"},
    )
    assert response.status_code == 415 and "UTF-8" in response.json()["detail"]
    fine = httpx.post(
        server.url + "/predict",
        json={"title": "caf\u00e9"},
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert fine.status_code == 200


def test_a_huge_title_gets_an_excerpt_not_an_echo(artifact):
    with run_server(artifact, max_body_bytes=12_000_000) as big:
        title = "y" * 10_000_000
        response = httpx.post(big.url + "/predict", json={"title": title}, timeout=60)
    assert response.status_code == 422 and len(response.content) < 2_000
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "title"] and len(error["input"]) <= 80


def test_the_spec_lists_every_status_an_operation_returns(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(predict)
    assert "503" in spec["paths"]["/ready"]["get"]["responses"]
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    title = body["schema"]["properties"]["title"]  # every request body is inlined in its route
    assert title["pattern"].startswith("[^") and json.dumps(title)


V2 = "/v2/models/tag-classifier/infer"
HUGE = "n" * 900_000


def _v2(**overrides):
    tensor = {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["YOLO on a webcam"]}
    body = {"inputs": [tensor]}
    for key, value in overrides.items():
        (tensor if key in tensor else body)[key] = value
    return json.dumps(body).encode()


V2_BODIES = {
    "200,000 open brackets": (b'{"inputs":' + b"[" * 200_000, {}),
    "a closed 5,000-deep array in parameters": (
        b'{"parameters": {"x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}, " + _v2()[1:],
        {},
    ),
    "a lone surrogate in id": (_v2()[:-1] + b', "id": "\\ud800"}', {}),
    "binary header on an array": (b"[]", {"inference-header-content-length": "2"}),
    "binary header, inputs a number": (b'{"inputs": 5}', {"inference-header-content-length": "13"}),
    "binary header, parameters a string": (
        b'{"inputs": [{"name": "text", "parameters": "x"}]}',
        {"inference-header-content-length": "49"},
    ),
    "inputs a number": (b'{"inputs": 5}', {}),
    "parameters a string": (_v2(parameters="x"), {}),
    "a 900 KB input name": (_v2(name=HUGE), {}),
    "a 900 KB datatype": (_v2(datatype=HUGE), {}),
    "a 900 KB output name": (_v2(outputs=[{"name": HUGE}]), {}),
    "a 900 KB id": (_v2(id=HUGE), {}),
    "a 900 KB extra key": (b'{"' + HUGE.encode() + b'": 1, ' + _v2()[1:], {}),
}


@pytest.fixture(scope="module")
def roomy(artifact):
    """A server that reads bodies up to 2 MB, so the 900 KB inputs reach the route."""
    with run_server(artifact, max_body_bytes=2_000_000) as running:
        yield running


@pytest.mark.parametrize("name", list(V2_BODIES))
def test_hostile_v2_bodies_get_a_short_4xx(roomy, name):
    body, headers = V2_BODIES[name]
    response = httpx.post(
        roomy.url + V2,
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=30,
    )
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
    assert len(response.content) < 2_000 and "error" in response.json()


def test_nothing_long_is_echoed_on_any_route(roomy):
    long = "q" * 60_000
    answers = [
        httpx.get(roomy.url + f"/v2/models/{long}"),
        httpx.get(roomy.url + f"/v2/models/{long}/ready"),
        httpx.get(roomy.url + f"/predictions/{long}"),
        httpx.post(
            roomy.url + "/predict",
            content=b'{"title": "x"}',
            headers={"content-type": "application/json; charset=" + long},
        ),
    ]
    for response in answers:
        assert 400 <= response.status_code < 500, response.text[:200]
        assert len(response.content) < 2_000


def test_the_v2_answer_repeats_a_short_id_and_its_spec_has_a_request_schema(roomy):
    response = httpx.post(roomy.url + V2, content=_v2(id="req-7"))
    assert response.status_code == 200 and response.json()["id"] == "req-7"
    spec = httpx.get(roomy.url + "/openapi.json").json()["paths"]["/v2/models/{name}/infer"]["post"]
    schema = spec["requestBody"]["content"]["application/json"]["schema"]
    tensor = schema["properties"]["inputs"]["items"]["properties"]
    assert tensor["name"]["enum"] == ["text"] and tensor["data"]["maxItems"] == 256
    assert {"400", "404", "413", "415", "503"} <= set(spec["responses"])


def _raw(port: int, head: bytes) -> bytes:
    import contextlib
    import socket

    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        with contextlib.suppress(OSError):  # the server may stop reading early: fine
            sock.sendall(head)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(4096):
                answer += chunk
    return answer


def test_a_header_flood_is_refused_before_it_is_kept(server):
    many = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * 200_000 + b"\r\n"
    assert _raw(server.port, many).startswith(b"HTTP/1.1 431")
    huge = b"GET /health HTTP/1.1\r\nHost: x\r\nx-big: " + b"v" * 40_000 + b"\r\n\r\n"
    assert _raw(server.port, huge).startswith(b"HTTP/1.1 431")
    long_url = b"GET /" + b"p" * 9_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _raw(server.port, long_url).startswith(b"HTTP/1.1 414")
    fine = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * 50 + b"Connection: close\r\n\r\n"
    assert _raw(server.port, fine).startswith(b"HTTP/1.1 200")


def test_the_head_limits_are_the_servers_settings(artifact):
    with run_server(artifact, max_headers=10, max_header_bytes=1_000, max_url_bytes=64) as tight:
        head = b"GET /health HTTP/1.1\r\nHost: x\r\n"
        refused = _raw(tight.port, head + b"a: b\r\n" * 12 + b"\r\n")
        assert refused.startswith(b"HTTP/1.1 431") and b"at most 10 header lines" in refused
        big = _raw(tight.port, head + b"x-big: " + b"v" * 1_200 + b"\r\n\r\n")
        assert big.startswith(b"HTTP/1.1 431") and b"1000 bytes" in big
        assert _raw(tight.port, b"GET /" + b"p" * 80 + b" HTTP/1.1\r\n\r\n").startswith(
            b"HTTP/1.1 414"
        )
        fine = head + b"a: b\r\n" * 5 + b"Connection: close\r\n\r\n"
        assert _raw(tight.port, fine).startswith(b"HTTP/1.1 200")
    with pytest.raises(ValueError, match="max_headers must be at least 1"):
        ServerConfig.of(artifact, max_headers=0)
