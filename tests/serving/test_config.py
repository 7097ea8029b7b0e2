"""One server configuration: every ServerConfig field reaches the server from every entry
point (the command line, run_server, run_workers and the Lambda handler)."""

import json
from dataclasses import asdict, fields

import pytest

from mlinfra_kit.cli import build_parser
from mlinfra_kit.deployment import api_gateway_v2_event, make_handler, run_workers
from mlinfra_kit.serving import ServerConfig, run_server


def every_field_changed(model, tmp_path) -> dict:
    """A value other than the default for every field the server can run with here."""
    return dict(
        model=str(model),
        store=f"sqlite:{tmp_path / 'predictions.db'}",
        batching=False,
        max_batch_size=7,
        max_wait_ms=0.5,
        adaptive_batching=False,
        cache_size=3,
        fast_route=False,
        numpy_max_batch=2,
        max_items=5,
        max_text_chars=99,
        max_body_bytes=12_345,
        max_headers=50,
        max_header_bytes=16_000,
        max_url_bytes=4_000,
        device="cpu",
        threads=2,
        load_in_background=False,
        body_timeout_s=12.5,
        body_deadline_s=40.0,
        keep_alive_s=7,
        shutdown_timeout_s=3,
        metrics=False,
        admin_token="a" * 24,
        model_root=str(tmp_path),
        quantize="int8",
    )


def shown(wanted: dict) -> dict:
    """What /metadata shows of a config: the admin token hidden."""
    return {**wanted, "admin_token": "***"}


def test_the_settings_cover_every_field(tmp_path):
    assert set(every_field_changed("m", tmp_path)) == {f.name for f in fields(ServerConfig)}


def test_the_command_line_has_a_flag_with_the_default_for_every_field(tmp_path):
    parser = build_parser()
    defaults = ServerConfig.from_args(parser.parse_args(["serve", "--model", "m"]))
    assert defaults == ServerConfig(model="m")
    wanted = every_field_changed("m", tmp_path)
    argv = [
        "serve",
        "--model",
        "m",
        "--store",
        wanted["store"],
        "--no-batching",
        "--max-batch-size",
        "7",
        "--max-wait-ms",
        "0.5",
        "--no-adaptive-batching",
        "--cache-size",
        "3",
        "--no-fast-route",
        "--numpy-max-batch",
        "2",
        "--max-items",
        "5",
        "--max-text-chars",
        "99",
        "--max-body-bytes",
        "12345",
        "--max-headers",
        "50",
        "--max-header-bytes",
        "16000",
        "--max-url-bytes",
        "4000",
        "--device",
        "cpu",
        "--threads",
        "2",
        "--no-load-in-background",
        "--body-timeout-s",
        "12.5",
        "--body-deadline-s",
        "40",
        "--no-metrics",
        "--admin-token",
        "a" * 24,
        "--model-root",
        str(tmp_path),
        "--keep-alive-s",
        "7",
        "--shutdown-timeout-s",
        "3",
        "--quantize",
        "int8",
    ]
    assert asdict(ServerConfig.from_args(parser.parse_args(argv))) == wanted


def test_run_server_passes_every_field(artifact, tmp_path):
    wanted = every_field_changed(artifact, tmp_path)
    with run_server(artifact, **{k: v for k, v in wanted.items() if k != "model"}) as server:
        assert server.get("/metadata")["config"] == shown(wanted)
    config = ServerConfig.of(artifact, max_items=3)
    with run_server(config, cache_size=2) as server:  # a config, with overrides
        expected = ServerConfig.of(config, cache_size=2, admin_token=server.admin_token)
        assert server.get("/metadata")["config"] == expected.shown()


def test_run_workers_passes_every_field(artifact, tmp_path):
    wanted = every_field_changed(artifact, tmp_path)
    with run_workers(ServerConfig(**wanted), workers=1) as pool:
        import httpx

        assert httpx.get(pool.url + "/metadata", timeout=30).json()["config"] == shown(wanted)


def test_the_handler_passes_every_field(artifact, tmp_path):
    wanted = every_field_changed(artifact, tmp_path)
    handler = make_handler(artifact, **{k: v for k, v in wanted.items() if k != "model"})
    answer = handler(api_gateway_v2_event("GET", "/metadata"), None)
    assert json.loads(answer["body"])["config"] == shown(wanted)


def test_an_unknown_setting_is_named(artifact):
    with pytest.raises(ValueError, match=r"unknown server setting\(s\) \['max_wait'\]"):
        ServerConfig.of(artifact, max_wait=1)
    with pytest.raises(ValueError, match="max_wait"), run_server(artifact, max_wait=1):
        pass
