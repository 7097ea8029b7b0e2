"""wrk, the native load client: its Lua script carries the kit's requests intact, and its
summary reads like the Python client's result."""

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import skip_unless_ci

from mlinfra_kit.serving import run_server
from mlinfra_kit.serving.loadgen import Request, get_paths, post_json
from mlinfra_kit.serving.wrk import WRK_HINT, lua_script, run_wrk, wrk_available


@pytest.fixture(scope="module")
def server(artifact):
    if not wrk_available():
        skip_unless_ci(WRK_HINT)
    with run_server(artifact) as running:
        yield running


def test_bodies_reach_the_server_intact_and_nothing_fails(server):
    tricky = [
        {"title": 'quotes " and brackets ]] and ]=] and a \\ backslash'},
        {"title": "ünïcode — and a newline\nin the middle", "description": "x" * 2000},
    ]
    result = run_wrk(
        server.url, post_json("/predict", tricky), seconds=1, concurrency=4, warmup_s=0
    )
    assert result.requests > 10 and result.errors == 0, result.error_kinds  # a 422 is an error
    assert result.throughput_rps > 0 and 0 < result.stats.p50_ms <= result.stats.p99_ms
    assert result.client_cpu_s > 0 and result.client == "wrk"
    row = result.row(server="kit")
    assert row["server"] == "kit" and row["errors"] == 0 and row["concurrency"] == 4


def test_a_fraction_of_a_second_is_cut_short_and_counts_the_time_it_ran(server):
    # wrk's -d takes whole seconds: a 0.3 s run is a longer one stopped by SIGINT at 0.3 s.
    result = run_wrk(server.url, get_paths(["/health"]), seconds=0.3, concurrency=2, warmup_s=0)
    assert 0.25 < result.seconds < 1.5  # its own clock: stopped long before the 2 s it was given
    assert result.requests > 0 and result.errors == 0
    assert result.throughput_rps == pytest.approx(result.requests / result.seconds)


@contextlib.contextmanager
def held_server(hold_all: bool) -> Iterator[str]:
    """A server that holds its first request unanswered until a second one arrives (every
    request with ``hold_all``), so a wrk run alone in its window gets no answer."""
    arrived, released = [], threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived.append(self.path)
            if len(arrived) > 1 and not hold_all:
                released.set()
            released.wait()
            with contextlib.suppress(OSError):  # the first one's client may be gone
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        released.set()
        httpd.shutdown()
        httpd.server_close()


def test_a_window_with_no_answer_is_measured_again_longer():
    if not wrk_available():
        skip_unless_ci(WRK_HINT)
    with held_server(hold_all=False) as url:
        result = run_wrk(url, get_paths(["/health"]), seconds=0.2, concurrency=1, warmup_s=0)
    assert result.requests > 0 and result.throughput_rps > 0  # never a throughput of 0
    assert result.seconds > 0.3  # a later, longer window than the first


def test_a_server_that_never_answers_is_an_error_not_zero_throughput():
    if not wrk_available():
        skip_unless_ci(WRK_HINT)
    with held_server(hold_all=True) as url, pytest.raises(RuntimeError, match="no answer"):
        run_wrk(url, get_paths(["/health"]), seconds=0.1, concurrency=1, warmup_s=0, retries=1)


def test_non_2xx_answers_are_counted_as_errors(server):
    result = run_wrk(server.url, get_paths(["/nowhere"]), seconds=1, concurrency=2, warmup_s=0)
    assert result.errors == result.requests > 0 and result.error_kinds["status"] == result.errors


@pytest.mark.parametrize(
    "kwargs, message",
    [({"concurrency": 1, "threads": 2}, "concurrency"), ({"seconds": 0}, "seconds")],
)
def test_bad_settings(server, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_wrk(server.url, get_paths(["/health"]), **kwargs)


def test_the_script_quotes_every_body_so_nothing_inside_can_close_it():
    script = lua_script([Request("POST", "/p", b"a ]] b ]=] c"), Request("GET", "/h")])
    assert "[==[a ]] b ]=] c]==]" in script and "nil}" in script
    with pytest.raises(ValueError, match="empty"):
        lua_script([])


@pytest.mark.slow
def test_closed_loop_repeats_with_the_chosen_client(server):
    from mlinfra_kit.serving.loadgen import closed_loop, pick_client

    assert pick_client("auto") == "wrk" and pick_client("python") == "python"
    bodies = post_json("/predict", [{"title": "YOLO on a webcam"}])
    by_wrk = closed_loop(server.url, bodies, concurrency=4, repeats=2, seconds=1)
    by_python = closed_loop(
        server.url, bodies, concurrency=4, client="python", repeats=2, total=100, warmup=10
    )
    assert by_wrk.row()["client"] == "wrk" and by_python.row()["client"] == "python"
    assert len(by_wrk.runs) == len(by_python.runs) == 2
    assert by_wrk.errors == by_python.errors == 0
    with pytest.raises(ValueError, match="client"):
        pick_client("curl")
