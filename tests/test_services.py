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


def test_together_starts_every_manager_at_once_and_stops_them_all():
    import contextlib
    import threading

    from mlinfra_kit.services import together

    meeting = threading.Barrier(3, timeout=30)  # only passes when all three enter at once
    stopped = []

    @contextlib.contextmanager
    def service(name):
        meeting.wait()
        yield name
        stopped.append(name)

    with together(service("a"), service("b"), service("c")) as running:
        assert running == ("a", "b", "c") and stopped == []
    assert sorted(stopped) == ["a", "b", "c"]


def test_together_stops_those_that_started_when_one_fails():
    import contextlib

    from mlinfra_kit.services import together

    stopped = []

    @contextlib.contextmanager
    def service(name):
        if name == "broken":
            raise RuntimeError("broken did not start")
        yield name
        stopped.append(name)

    with (
        pytest.raises(RuntimeError, match="broken did not start"),
        together(service("a"), service("broken"), service("c")),
    ):
        raise AssertionError("the block must not run")
    assert sorted(stopped) == ["a", "c"]
    with pytest.raises(ValueError, match="at least one"), together():
        pass
