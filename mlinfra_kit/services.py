"""Real local services for notebooks and tests: free ports, child processes, redis-server.

Every service here is a real process bound to 127.0.0.1 on a free port, waited for until
it answers, and stopped when its ``with`` block ends, even when the block fails.

(Over 450 lines: one module per kind of thing the services share, port, child process and
readiness wait, which each service below is a few lines over.)

Examples
--------
>>> port = free_port()
>>> 1024 <= port <= 65535
True
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "LOOPBACK",
    "LoggedProcess",
    "PrometheusServer",
    "RedisServer",
    "child_process",
    "drop_output_lines",
    "free_port",
    "open_sqlite",
    "parse_store_url",
    "prometheus_available",
    "prometheus_config",
    "prometheus_server",
    "python_json",
    "quiet_loggers",
    "redis_available",
    "redis_server",
    "redis_text",
    "run_coroutine",
    "stop_process",
    "together",
    "wait_until",
]

LOOPBACK = "127.0.0.1"

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def parse_store_url(url: str | os.PathLike, kind: str = "store") -> tuple[str, str]:
    """Where a store lives, as ``("redis", URL)`` or ``("sqlite", PATH)``: the one reading
    of store URLs that every store of the kit (predictions, features) accepts.

    ``redis://HOST:PORT/DB`` (also ``rediss://``, ``unix://``), ``sqlite:PATH`` (also
    ``sqlite://PATH``) or a path ending in ``.db``, ``.sqlite`` or ``.sqlite3``.

    >>> parse_store_url("sqlite:runs/p.db"), parse_store_url("features.sqlite")
    (('sqlite', 'runs/p.db'), ('sqlite', 'features.sqlite'))
    >>> parse_store_url("redis://127.0.0.1:6379/0")
    ('redis', 'redis://127.0.0.1:6379/0')
    """
    text = str(url)
    if text.startswith(_REDIS_SCHEMES):
        return "redis", text
    if text.startswith("sqlite:"):
        path = text.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise ValueError(f"a sqlite: {kind} needs a path, e.g. sqlite:predictions.db")
        return "sqlite", path
    if text.endswith(_SQLITE_SUFFIXES):
        return "sqlite", text
    raise ValueError(
        f"unknown {kind} {text!r}: use sqlite:PATH, a path ending in .db, or redis://HOST:PORT/DB"
    )


@contextlib.contextmanager
def quiet_loggers(names: Sequence[str], level: int) -> Iterator[None]:
    """Raise the named loggers to ``level`` in this block, and put them back after: for
    a library's notices that say nothing a user can act on.

    >>> import logging
    >>> with quiet_loggers(["some.library"], logging.ERROR):
    ...     logging.getLogger("some.library").level == logging.ERROR
    True
    >>> logging.getLogger("some.library").level
    0
    """
    import logging

    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, previous in zip(loggers, levels, strict=True):
            logger.setLevel(previous)


@contextlib.contextmanager
def drop_output_lines(patterns: Sequence[str]) -> Iterator[None]:
    """Hold back, in this block, the output lines that match one of ``patterns`` (regular
    expressions); every other line goes to its stream when the block ends.

    For notices a library's native code or background threads print straight to the
    process's stderr (file descriptor 2) or to ``sys.stdout``/``sys.stderr``, past any
    logger: all three are captured, so a notebook shows only the lines that were not
    expected, and an unexpected error still shows.

    >>> import sys
    >>> with drop_output_lines([r"^noise"]):
    ...     print("noise: a known notice")
    ...     print("a line that stays")
    a line that stays
    """
    import io
    import re
    import sys

    noise = [re.compile(p) for p in patterns]

    def keep(text: str, stream: Any) -> None:
        lines = [line for line in text.splitlines() if not any(n.search(line) for n in noise)]
        if lines:
            print("\n".join(lines), file=stream)

    out, err = io.StringIO(), io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as native:
        os.dup2(native.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            native.seek(0)
            keep(out.getvalue(), sys.stdout)
            keep(native.read().decode(errors="replace") + err.getvalue(), sys.stderr)


def run_coroutine(coroutine: Any) -> Any:
    """Run ``coroutine`` to completion from ordinary code and return its result, also
    where an event loop is already running (a Jupyter kernel has one): then it runs on a
    helper thread with a loop of its own.

    >>> import asyncio
    >>> run_coroutine(asyncio.sleep(0, result=42))
    42
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def open_sqlite(path: str | os.PathLike, schema: str) -> sqlite3.Connection:
    """An SQLite database for the kit's stores: created with its folder if missing, WAL
    mode (readers never wait for a writer), one connection shareable by threads that
    serialise their use, and ``schema`` (a CREATE TABLE IF NOT EXISTS) applied."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    with db:
        db.execute(schema)
    return db


def python_json(
    code: str = "",
    args: Sequence[str] = (),
    what: str = "the Python process",
    env: dict[str, str] | None = None,
    timeout_s: float = 600,
    script: str | os.PathLike | None = None,
) -> Any:
    """Run ``code`` (or the file ``script``) in a fresh Python process (this interpreter,
    ``args`` as ``sys.argv[1:]``, ``env`` added to the environment) and return the JSON its
    last line of output prints: a measurement that must start from nothing (a cold start),
    or a library that reads its settings once, at import. A failure is a ``RuntimeError``
    naming ``what``, with the end of its error output.

    >>> python_json("import json, sys; print(json.dumps({'args': sys.argv[1:]}))", ["x"])
    {'args': ['x']}
    """
    import json
    import sys

    done = subprocess.run(
        [sys.executable, *(["-c", code] if script is None else [str(script)]), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{what} printed nothing; it should print one line of JSON last")
    return json.loads(lines[-1])


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(
    check: Callable[[], bool],
    timeout_s: float,
    what: str,
    process: subprocess.Popen | None = None,
    interval_s: float = 0.05,
) -> None:
    """Poll ``check()`` until it is true; fail early if ``process`` has exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {process.returncode} before it was ready{_tail(process)}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not ready after {timeout_s:.0f} s{_tail(process)}")
        time.sleep(interval_s)


class LoggedProcess(subprocess.Popen):
    """A child process whose output goes to the file ``log_path``, quoted when it fails."""

    log_path: str = ""


def _tail(process: subprocess.Popen | None) -> str:
    log = getattr(process, "log_path", None)
    if not log or not os.path.exists(log):
        return ""
    with open(log, encoding="utf-8", errors="replace") as f:
        text = f.read()[-2000:].strip()
    return f"; its output ended with:\n{text}" if text else ""


def stop_process(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM, wait, then SIGKILL: a child never outlives the block that started it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def child_process(
    args: Sequence[str],
    what: str,
    ready: Callable[[], bool],
    timeout_s: float = 60,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """Start ``args`` as a child process, wait until ``ready()``, stop it on exit.

    The child's output goes to a temporary log, quoted in the error if it fails to start.
    """
    with tempfile.TemporaryDirectory(prefix="mlinfra-") as folder:
        log_path = os.path.join(folder, "output.log")
        with open(log_path, "wb") as log:
            process = LoggedProcess(
                list(args), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        process.log_path = log_path
        try:
            wait_until(ready, timeout_s, what, process)
            yield process
        finally:
            stop_process(process)


@contextlib.contextmanager
def together(*managers: contextlib.AbstractContextManager[T]) -> Iterator[tuple[T, ...]]:
    """Enter ``managers`` at once, each in a thread of its own, and exit them the same way:
    servers that start side by side (their imports and model loads overlap on the cores)
    instead of one after the other. Yields what each one's ``with`` gives, in order. If one
    fails to start, those that started are stopped and its error is raised.

    >>> with together(contextlib.nullcontext(1), contextlib.nullcontext(2)) as (a, b):
    ...     a + b
    3
    """
    from concurrent.futures import ThreadPoolExecutor

    if not managers:
        raise ValueError("together() needs at least one context manager")
    with ThreadPoolExecutor(len(managers)) as pool:
        entering = [pool.submit(m.__enter__) for m in managers]
    started = [m for m, f in zip(managers, entering, strict=True) if f.exception() is None]
    failed = next((f.exception() for f in entering if f.exception() is not None), None)
    try:
        if failed is not None:
            raise failed
        yield tuple(f.result() for f in entering)
    except BaseException as error:
        failed = failed or error
        raise
    finally:
        with ThreadPoolExecutor(max(len(started), 1)) as pool:
            leaving = [pool.submit(m.__exit__, None, None, None) for m in started]
        stopping = next((f.exception() for f in leaving if f.exception() is not None), None)
        if stopping is not None and failed is None:
            raise stopping


def _require(program: str, install: str) -> str:
    """The path of ``program``, or a ``RuntimeError`` with the command that installs it."""
    binary = shutil.which(program)
    if binary is None:
        raise RuntimeError(f"{program} is not installed; on Debian/Ubuntu: {install}")
    return binary


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server: connect with :attr:`url`."""

    host: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def redis_text(value: bytes | str) -> str:
    """A Redis reply as text (redis-py answers bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else value


def redis_available() -> bool:
    """Whether ``redis-server`` and the ``redis`` client package are installed."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return False
    return shutil.which("redis-server") is not None


@contextlib.contextmanager
def redis_server(port: int | None = None, timeout_s: float = 20) -> Iterator[RedisServer]:
    """Start a throwaway ``redis-server`` on loopback (no persistence), stop it on exit.

    Raises ``RuntimeError`` with an install hint when redis-server is missing.
    """
    binary = _require("redis-server", "apt-get install redis-server (or: conda install redis)")
    import redis

    port = port or free_port()
    client = redis.Redis(host=LOOPBACK, port=port, socket_connect_timeout=0.5)
    with tempfile.TemporaryDirectory(prefix="mlinfra-redis-") as workdir:
        args = [
            binary,
            "--bind",
            LOOPBACK,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ]
        try:
            with child_process(
                args, f"redis-server on port {port}", client.ping, timeout_s
            ) as process:
                yield RedisServer(LOOPBACK, port, process)
        finally:
            client.close()


@dataclass(frozen=True)
class PrometheusServer:
    """A running Prometheus scraping the servers it was given: ask it with :meth:`query`;
    scrape more with :meth:`add_targets`."""

    url: str
    process: subprocess.Popen
    scrape_interval_s: float
    config: Path
    targets: list[str]

    def add_targets(self, targets: Sequence[str], timeout_s: float = 30) -> None:
        """Scrape ``targets`` (``host:port``) too, from now on: the configuration is rewritten
        and reloaded (SIGHUP, as a config management tool would), and this returns once
        Prometheus has scraped each new target once (its ``up`` series exists)."""
        new = [t for t in targets if t not in self.targets]
        if not new:
            return
        self.targets.extend(new)
        self.config.write_text(prometheus_config(self.targets, self.scrape_interval_s) + "\n")
        self.process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: all(self.query(f'up{{instance="{t}"}}') for t in new),
            timeout_s,
            f"prometheus scraping {', '.join(new)}",
            self.process,
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result of an instant PromQL query: one ``{"labels": {...}, "value": float}``
        per series (an empty list when nothing matches yet). A query Prometheus rejects is
        a ``ValueError`` with its reason."""
        import httpx

        answer = httpx.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10)
        body = answer.json()
        if body.get("status") != "success":
            raise ValueError(f"Prometheus refused {promql!r}: {body.get('error', answer.text)}")
        return [
            {"labels": series["metric"], "value": float(series["value"][1])}
            for series in body["data"]["result"]
        ]

    def value(self, promql: str) -> float | None:
        """The single value of a query that yields one series (None while it yields none)."""
        result = self.query(promql)
        if len(result) > 1:
            raise ValueError(f"{promql!r} yields {len(result)} series; aggregate it to one")
        return result[0]["value"] if result else None


def prometheus_available() -> bool:
    """Whether the ``prometheus`` server binary is installed."""
    return shutil.which("prometheus") is not None


def prometheus_config(targets: Sequence[str], scrape_interval_s: float = 1.0) -> str:
    """A Prometheus configuration scraping ``targets`` (``host:port``, their ``/metrics``)
    every ``scrape_interval_s`` seconds, as one job named ``mlinfra``.

    >>> print(prometheus_config(["127.0.0.1:8000"]))
    global:
      scrape_interval: 1s
      evaluation_interval: 1s
    scrape_configs:
      - job_name: mlinfra
        static_configs:
          - targets: ["127.0.0.1:8000"]
    """
    if scrape_interval_s <= 0:
        raise ValueError(f"scrape_interval_s must be more than 0, got {scrape_interval_s}")
    interval = f"{round(scrape_interval_s * 1000)}ms"
    if scrape_interval_s == int(scrape_interval_s):
        interval = f"{int(scrape_interval_s)}s"
    listed = ", ".join(f'"{t}"' for t in targets)
    return (
        f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
        f"scrape_configs:\n  - job_name: mlinfra\n    static_configs:\n"
        f"      - targets: [{listed}]"
    )


@contextlib.contextmanager
def prometheus_server(
    targets: Sequence[str],
    scrape_interval_s: float = 1.0,
    data_dir: str | os.PathLike | None = None,
    port: int | None = None,
    timeout_s: float = 30,
) -> Iterator[PrometheusServer]:
    """Start a real ``prometheus`` on loopback scraping ``targets`` (``host:port``) with a
    generated config, its data in ``data_dir`` (default: a temporary folder); stop it on
    exit; ``targets`` may be empty, to be added as servers start
    (:meth:`PrometheusServer.add_targets`). Raises ``RuntimeError`` with the install command
    when it is missing."""
    binary = _require(
        "prometheus", "apt-get install prometheus (or download it from prometheus.io)"
    )
    import httpx

    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    with tempfile.TemporaryDirectory(prefix="mlinfra-prometheus-") as workdir:
        config = Path(workdir) / "prometheus.yml"
        config.write_text(prometheus_config(targets, scrape_interval_s) + "\n")
        args = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir or Path(workdir) / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--log.level=warn",
        ]
        with child_process(
            args,
            f"prometheus on port {port}",
            lambda: httpx.get(url + "/-/ready", timeout=1).status_code == 200,
            timeout_s,
        ) as process:
            yield PrometheusServer(url, process, scrape_interval_s, config, list(targets))
