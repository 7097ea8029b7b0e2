"""Slow clients and shutdown: a stalled body gets 408, SIGTERM with a thousand stalled
clients exits 0 within its bound, and a request in flight at SIGTERM is answered."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from helpers import accept_queue, in_flight

from mlinfra_kit.services import LOOPBACK, free_port, wait_until

BODY = {"title": "object detection on a webcam"}


@pytest.fixture
def serve(artifact):
    """Start `mlinfra serve` as its users do; yields (url, process)."""
    started = []

    def start(*flags):
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlinfra_kit.cli",
                "serve",
                "--model",
                str(artifact),
                "--port",
                str(port),
                *flags,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        url = f"http://{LOOPBACK}:{port}"

        def ready():
            try:
                return httpx.get(url + "/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, "mlinfra serve")
        return url, process, port

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_stalled_body_gets_408(serve):
    url, _, port = serve("--body-timeout-s", "1")
    with socket.create_connection((LOOPBACK, port)) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"title":'
        )
        sock.settimeout(10)
        answer = b""
        while not answer.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"body" in answer
    assert httpx.post(url + "/predict", json=BODY).status_code == 200


@pytest.mark.slow
def test_a_trickled_body_is_cut_off_at_the_deadline(serve):
    import select

    _, _, port = serve("--body-timeout-s", "2", "--body-deadline-s", "3")
    with socket.create_connection((LOOPBACK, port)) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        started, answer = time.monotonic(), b""
        while not answer and time.monotonic() - started < 30:
            sock.sendall(b" ")  # one byte every half second: never stalled for 2 s
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                answer = sock.recv(4096)
        sock.settimeout(10)  # the head and the body can arrive apart on a busy machine
        while answer and not answer.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"after the headers" in answer


@pytest.mark.slow
def test_sigterm_with_a_thousand_stalled_clients_exits_0_in_bound(serve):
    _, process, port = serve("--body-timeout-s", "2", "--shutdown-timeout-s", "5")
    stalled = []
    for i in range(1000):
        sock = socket.create_connection((LOOPBACK, port))
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\n"
            if i % 2
            else b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        stalled.append(sock)
    # SIGTERM once the server has accepted all of them (queued unaccepted, they would be
    # reset): its listener's accept queue is empty. Counting its sockets cannot tell, since
    # the first stalled bodies get their 408 and close while the last are still connecting.
    wait_until(lambda: accept_queue(port) == 0, 60, "the server accepting 1,000 clients")
    tic = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    took = time.perf_counter() - tic
    for sock in stalled:
        sock.close()
    assert code == 0, process.stderr.read()[-2000:]
    assert took < 5 + 5  # the shutdown bound, plus start-up slack on a busy machine


def test_stalled_bodies_cut_off_by_shutdown_get_408_without_a_traceback(serve):
    url, process, port = serve("--body-timeout-s", "30", "--shutdown-timeout-s", "1")
    stalled = []
    for _ in range(40):
        sock = socket.create_connection((LOOPBACK, port))
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        stalled.append(sock)

    def all_inside():  # the 40, and the scrape that asks, in flight in the app
        text = httpx.get(url + "/metrics", timeout=5).text
        line = next(x for x in text.splitlines() if x.startswith("mlinfra_in_flight_requests "))
        return float(line.split()[1]) >= 41

    wait_until(all_inside, 30, "40 stalled requests in the app")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    answers = []
    for sock in stalled:
        sock.settimeout(5)
        answers.append(sock.recv(64).split(b"\r\n")[0])
        sock.close()
    assert set(answers) == {b"HTTP/1.1 408 Request Timeout"}, set(answers)
    assert "Traceback" not in process.stderr.read()


def test_a_request_in_flight_at_sigterm_is_answered(serve):
    items = 20_000
    body = json.dumps({"projects": [BODY] * items})
    url, process, _ = serve("--max-items", str(items), "--max-body-bytes", str(len(body) + 1))
    answers = []
    worker = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                url + "/predict/batch",
                content=body,
                headers={"content-type": "application/json"},
                timeout=60,
            )
        )
    )
    worker.start()
    wait_until(lambda: in_flight(url) >= 1, 60, "the batch in flight")  # being computed
    process.send_signal(signal.SIGTERM)
    worker.join(timeout=60)
    assert answers and answers[0].status_code == 200
    assert len(answers[0].json()["predictions"]) == items
    assert process.wait(timeout=30) == 0


def test_a_client_that_never_finishes_its_headers_is_disconnected(serve):
    url, _, port = serve("--keep-alive-s", "1")
    with socket.create_connection((LOOPBACK, port)) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        sock.settimeout(10)
        tic = time.perf_counter()
        assert sock.recv(4096) == b""  # closed by the server
        assert time.perf_counter() - tic < 10
    assert httpx.post(url + "/predict", json=BODY).status_code == 200  # others unaffected


@pytest.mark.parametrize("workers", ["1", "2"])
def test_requests_around_sigterm_are_answered_or_refused_never_reset(serve, workers):
    """Unbatched requests on open keep-alive connections, SIGTERM while they arrive:
    each is answered, or (if it had not reached the server yet) refused at connect;
    none is cut off mid-request, with one process or several."""
    url, process, _ = serve("--no-batching", "--workers", workers)
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(40)]
    for client in clients:
        client.get("/health")  # the connection is open and idle
    outcomes, start = [], threading.Barrier(len(clients) + 1)

    def send(client):
        start.wait()
        try:
            outcomes.append(client.post("/predict", json={"title": "yolo " * 300}).status_code)
        except httpx.HTTPError as err:
            outcomes.append(type(err).__name__)

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    start.wait()
    process.send_signal(signal.SIGTERM)  # as the requests leave
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.close()
    assert process.wait(timeout=30) == 0
    assert set(outcomes) <= {200, "ConnectError"}, outcomes
    assert outcomes.count(200) > 0


def test_workers_share_the_port_and_stop_together_on_sigterm(serve):
    url, process, _ = serve("--workers", "2")
    pids = set()
    for _ in range(400):  # a new connection each time: the kernel spreads them
        with httpx.Client(base_url=url, headers={"connection": "close"}) as client:
            answer = client.post("/predict", json=BODY)  # /ready said every worker loaded
            assert answer.status_code == 200, answer.text
            pids.add(client.get("/health").json()["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2 and process.pid not in pids
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, process.stderr.read()[-2000:]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_workers_below_one_is_refused_with_the_flag_named(artifact):
    done = subprocess.run(
        [sys.executable, "-m", "mlinfra_kit.cli", "serve", "--model", str(artifact),
         "--workers", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--workers must be at least 1" in done.stderr
