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

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def server(artifact):
    with run_server(artifact, max_items=8, max_body_bytes=20_000) as running:
        yield running


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
    title = spec["components"]["schemas"]["ProjectIn"]["properties"]["title"]
    assert title["pattern"].startswith("[^") and json.dumps(title)
