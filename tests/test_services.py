"""Child processes and redis-server, started and always stopped."""

import sys

import pytest

from mlinfra_kit.services import child_process, free_port, redis_server, wait_until


def test_child_is_stopped_when_the_block_fails():
    with (
        pytest.raises(KeyError),
        child_process(
            [sys.executable, "-c", "import time; time.sleep(60)"], "sleeper", ready=lambda: True
        ) as process,
    ):
        raise KeyError("boom")
    assert process.poll() is not None


def test_child_that_exits_early_is_reported_with_its_output():
    with (
        pytest.raises(RuntimeError, match="(?s)exited with code 3.*no luck"),
        child_process(
            [sys.executable, "-c", "print('no luck'); raise SystemExit(3)"],
            "quitter",
            ready=lambda: False,
        ),
    ):
        pass


def test_wait_until_times_out():
    with pytest.raises(TimeoutError, match="never was not ready"):
        wait_until(lambda: False, 0.2, "never")


def test_free_port_is_bindable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_redis_server_starts_and_stops(redis_url):
    import redis

    with redis_server() as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.close()
    assert server.process.poll() is not None
