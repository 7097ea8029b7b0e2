"""Other serving systems, serving the same artifact, started as their users start them.

Each :class:`Peer` is what a user of that system writes (its *glue*: a service file, a
runtime class, a settings file, kept as real files under ``serving/peer_code/<peer>/``, so
they are linted and type-checked with the kit) and the command its docs give to start it.
:func:`run_peer`
writes the glue beside a model artifact, starts the command as a real process (in its own
process group: some systems leave worker processes behind otherwise), waits until it answers
its readiness route, and yields a :class:`RunningPeer` with its URL, the request to send and
its cold start; on exit it stops the whole group.

(Over 450 lines: seven systems' launch settings and workarounds, each a table entry of its
own; their code is in ``peer_code``.)

Serving systems pin their own web stacks (MLServer wants an older FastAPI than the kit's
server; BentoML pins OpenTelemetry versions Ray Serve's disagree with), so each peer runs in
**its own virtual environment** (:func:`peer_python`) that installs only the peer's packages
and reads everything else (torch, the kit) from the environment the kit runs in, through a
``.pth`` line: a few hundred megabytes per peer instead of a second copy of torch. Where a
system cannot run on this machine, :func:`run_peer` raises :class:`PeerUnavailable` with the
exact reason, and a notebook records it.

Examples
--------
>>> sorted(PEERS)
['bentoml', 'litserve', 'mlflow', 'mlserver', 'pytriton', 'torchserve']
>>> PEERS["litserve"].glue_lines > 5
True
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from mlinfra_kit.data.projects import project_body
from mlinfra_kit.environments import InstallFailed, environment_python, environments_home
from mlinfra_kit.measure import is_running, process_tree, tree_usage
from mlinfra_kit.services import LOOPBACK, LoggedProcess, free_port, wait_until
from mlinfra_kit.serving.benchmark import ServerUsage, UsageMeter
from mlinfra_kit.serving.loadgen import RepeatedLoad

__all__ = [
    "PEERS",
    "Peer",
    "PeerUnavailable",
    "RunningPeer",
    "load_profile",
    "peer_python",
    "peers_home",
    "run_peer",
]


class PeerUnavailable(RuntimeError):
    """A serving system that cannot run here; the message says exactly why."""


#: The environment variables a peer's code reads its ports from (its settings files have
#: the same names as placeholders: ``{port}``...).
PORT_VARIABLES = {
    "port": "MLINFRA_PORT",
    "grpc_port": "MLINFRA_GRPC_PORT",
    "management_port": "MLINFRA_MANAGEMENT_PORT",
    "metrics_port": "MLINFRA_METRICS_PORT",
}


def _glue(name: str) -> dict[str, str]:
    """The files a user of peer ``name`` writes, by file name: ``peer_code/<name>/``."""
    folder = resources.files("mlinfra_kit.serving") / "peer_code" / name
    return {
        f.name: f.read_text(encoding="utf-8")
        for f in sorted(folder.iterdir(), key=str)
        if f.is_file() and not f.name.startswith(".")
    }


@dataclass(frozen=True)
class Peer:
    """A serving system as its users run it.

    ``glue`` maps file names to the code a user writes (:func:`_glue`: the files of
    ``peer_code/<name>/``). The code reads its model and ports from the environment
    (:data:`PORT_VARIABLES`, ``MLINFRA_MODEL``); in the settings files, ``{port}``,
    ``{grpc_port}``, ``{management_port}`` and ``{metrics_port}`` are filled in.
    ``command(python, port)`` is the start command, run in the glue's folder;
    ``ready_path`` answers 200 once the model can serve (None: ready once a prediction
    request answers 200, for a system whose health route says healthy too early); ``path``
    and ``body(title, description)`` make one prediction request; ``tag_of(json)`` reads the
    tag from its answer. ``metrics_path`` is where it would serve Prometheus metrics (on a
    metrics port of its own where ``own_metrics_port``, else on its port). ``packages`` go
    into the peer's own environment (empty: the kit's own).
    ``workarounds`` are what it took to run it here: part of what a user pays."""

    name: str
    packages: tuple[str, ...]
    glue: dict[str, str]
    command: Callable[[str, int], list[str]]
    ready_path: str | None
    path: str
    body: Callable[[str, str], Any]
    tag_of: Callable[[Any], str]
    env: dict[str, str] = field(default_factory=dict)
    workarounds: tuple[str, ...] = ()
    batching: str = ""
    #: A step a user runs once before starting the server (e.g. saving a model in the
    #: system's own format); not part of the cold start.
    prepare: Callable[[str], list[str]] | None = None
    #: The console scripts the system is started with or runs by name (``mlflow``,
    #: ``uvicorn``): its environment gets each, run with its own Python, even where the
    #: package comes from the kit's environment, and counts as built once each answers
    #: ``--help``.
    commands: tuple[str, ...] = ()
    metrics_path: str = "/metrics"
    own_metrics_port: bool = False

    @property
    def glue_lines(self) -> int:
        """Lines of glue code a user writes (blank lines and comments not counted)."""
        return sum(
            1
            for text in self.glue.values()
            for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")
        )


@dataclass(frozen=True)
class RunningPeer:
    """A started peer: where to send requests, where its metrics would be, and what
    starting it cost."""

    name: str
    url: str
    path: str
    pid: int
    cold_start_s: float
    body: Callable[[str, str], Any]
    tag_of: Callable[[Any], str]
    metrics_url: str = ""

    def tree(self) -> list[int]:
        """The peer's processes: its main process and every descendant (Linux)."""
        return process_tree(self.pid)

    def rss_mb(self) -> float:
        """Resident memory of all its processes, in MB (Linux)."""
        return tree_usage(self.pid)[1]

    def cpu_s(self) -> float:
        """CPU seconds its processes have used so far (Linux)."""
        return tree_usage(self.pid)[0]


def load_profile(
    name: str,
    url: str,
    requests: Any,
    pid: int | None,
    *,
    concurrencies: tuple[int, ...] = (1, 64),
    client: str = "auto",
    repeats: int = 3,
    seconds: float = 3.0,
    total: int = 2000,
    warmup: int = 100,
    min_requests: int = 0,
    made: Mapping[int, tuple[RepeatedLoad, ServerUsage | None]] | None = None,
) -> dict[str, Any]:
    """One server's row of a side-by-side comparison: for each concurrency, the median of
    ``repeats`` closed-loop runs (throughput, p50, p99), the requests answered
    (``requests_c<N>``), errors over all runs, and during the runs at the highest
    concurrency the CPU its process tree used (in cores) and its resident memory after them
    (``pid=None``: not measured, e.g. a server whose processes are not one tree).

    ``made``: runs already made, by concurrency, with what the server used during them (a
    :class:`~mlinfra_kit.serving.benchmark.LoadComparison`'s side and its ``usage``): the row
    shows those runs, the ones a verdict rests on, and makes none again at that concurrency.

    Where the runs at the highest concurrency answered fewer than ``min_requests`` (a slow
    server, short runs), more runs there send the rest (:func:`_top_up`): they count for
    errors and requests, not for the timings."""
    from mlinfra_kit.serving.loadgen import closed_loop

    row: dict[str, Any] = {"server": name, "errors": 0}
    highest = max(concurrencies)
    for c in concurrencies:
        if made and c in made:
            load, used = made[c]
        else:
            meter = UsageMeter(pid) if pid is not None else None
            run = partial(
                closed_loop,
                url,
                requests,
                concurrency=c,
                client=client,
                repeats=repeats,
                total=total,
                seconds=seconds,
                warmup=warmup,
            )
            load = run() if meter is None else meter.around(run)
            used = meter.total() if meter is not None else None
        if c == highest and used is not None:
            row |= {"server_cpu_cores": used.cpu_cores, "rss_mb": used.rss_mb}
        low, high = load.throughput_range_rps
        row |= {
            f"rps_c{c}": load.throughput_rps,
            f"rps_min_c{c}": low,
            f"rps_max_c{c}": high,
            f"p50_ms_c{c}": load.stats.p50_ms,
            f"p99_ms_c{c}": load.stats.p99_ms,
            f"client_cpu_cores_c{c}": load.client_cpu_cores,  # the median run's: is it the limit?
        }
        row["errors"] += load.errors
        row["client"] = load.row()["client"]
        row[f"requests_c{c}"] = sum(run.stats.count for run in load.runs)
        if c == highest:
            _top_up(row, c, min_requests, load.throughput_rps, url, requests, client)
    return row


def _top_up(
    row: dict[str, Any],
    c: int,
    min_requests: int,
    rps: float,
    url: str,
    requests: Any,
    client: str,
    tries: int = 5,
) -> None:
    """Runs at concurrency ``c`` until ``row`` counts ``min_requests`` answers there: each
    sized from the last throughput, which a busy machine can make too short, so up to
    ``tries`` of them."""
    from mlinfra_kit.serving.loadgen import closed_loop

    for _ in range(tries):
        missing = min_requests - row[f"requests_c{c}"]
        if missing <= 0:
            return
        more = closed_loop(
            url,
            requests,
            concurrency=c,
            client=client,
            repeats=1,
            total=missing,
            seconds=1.2 * missing / max(rps, 1.0),
            warmup=0,
        ).median
        row["errors"] += more.errors
        row[f"requests_c{c}"] += more.stats.count
        rps = more.throughput_rps


def peers_home() -> Path:
    """Where peer environments live (:func:`mlinfra_kit.environments.environments_home`)."""
    return environments_home()


def peer_python(peer: Peer, home: Path | None = None, timeout_s: float = 900) -> str:
    """The Python that runs ``peer``: the kit's own when it needs no packages of its own,
    else a virtual environment made once under ``home`` (:func:`peers_home`) with the
    peer's packages, reading every other package from the kit's environment."""
    if not peer.packages:
        return sys.executable
    try:
        return environment_python(peer.name, peer.packages, home, timeout_s, peer.commands)
    except InstallFailed as err:
        raise PeerUnavailable(str(err)) from None


@contextlib.contextmanager
def run_peer(
    peer: Peer,
    artifact: str | os.PathLike[str],
    port: int | None = None,
    timeout_s: float = 180,
    home: Path | None = None,
) -> Iterator[RunningPeer]:
    """Start ``peer`` serving ``artifact`` on loopback, as its users start it; yield it
    once ready; stop its whole process group on exit. The cold start is from launching
    the command to the first 200 from its readiness route."""
    import httpx

    python = peer_python(peer, home)
    port = port or free_port()
    model = str(Path(artifact).resolve())
    ports = {
        "port": port,
        "grpc_port": free_port(),
        "management_port": free_port(),
        "metrics_port": free_port() if peer.own_metrics_port else port,
    }
    with tempfile.TemporaryDirectory(prefix=f"mlinfra-{peer.name}-") as folder:
        for name, text in peer.glue.items():
            if not name.endswith(".py"):  # a settings file: its ports filled in
                for key, value in ports.items():
                    text = text.replace("{" + key + "}", str(value))
            Path(folder, name).write_text(text, encoding="utf-8")
        log_path = Path(folder, "output.log")
        env = {
            **os.environ,
            **{PORT_VARIABLES[key]: str(value) for key, value in ports.items()},
            "MLINFRA_MODEL": model,
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **{k: v.replace("{folder}", folder) for k, v in peer.env.items()},
        }
        if peer.prepare is not None:
            done = subprocess.run(
                peer.prepare(python), cwd=folder, env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise PeerUnavailable(
                    f"{peer.name}: preparing failed: {(done.stderr or done.stdout).strip()[-800:]}"
                )
        tic = time.perf_counter()
        with open(log_path, "wb") as log:
            process = LoggedProcess(
                peer.command(python, port),
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own group: stopped whole, workers included
            )
        process.log_path = str(log_path)
        url = f"http://{LOOPBACK}:{port}"
        try:

            def ready() -> bool:
                if peer.ready_path is None:  # a real prediction, not a health route
                    probe = peer.body("YOLO on a webcam", "")
                    return httpx.post(url + peer.path, json=probe, timeout=5).status_code == 200
                return httpx.get(url + peer.ready_path, timeout=2).status_code == 200

            wait_until(ready, timeout_s, f"{peer.name} on {url}", process, interval_s=0.1)
            cold = time.perf_counter() - tic
            yield RunningPeer(
                peer.name,
                url,
                peer.path,
                process.pid,
                cold,
                peer.body,
                peer.tag_of,
                f"http://{LOOPBACK}:{ports['metrics_port']}{peer.metrics_path}",
            )
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """SIGTERM to the whole group, then SIGKILL to what is left; returns once none of its
    processes runs any more."""
    group = process_tree(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything of the group still alive
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    deadline = time.monotonic() + 10
    while any(is_running(p) for p in group) and time.monotonic() < deadline:
        time.sleep(0.05)


def _script(python: str, name: str) -> str:
    """The console script ``name`` installed beside ``python``: the command users type."""
    return str(Path(python).parent / name)


LITSERVE = Peer(
    name="litserve",
    packages=(),  # no pins that clash with the kit's: it runs in the kit's environment
    glue=_glue("litserve"),
    command=lambda python, port: [python, "server.py"],
    ready_path="/health",
    path="/predict",
    body=project_body,
    tag_of=lambda answer: answer["tag"],
    workarounds=(
        "SIGTERM to its main process leaves the inference workers holding the port: it runs "
        "in its own process group, stopped as a whole",
    ),
    batching="max_batch_size=32, batch_timeout=2 ms",
)

BENTOML = Peer(
    name="bentoml",
    # Its own environment: it pins OpenTelemetry versions that Ray Serve's disagree with.
    packages=("bentoml==1.4.40",),
    glue=_glue("bentoml"),
    command=lambda python, port: [
        _script(python, "bentoml"),
        "serve",
        "service:TagService",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ],
    ready_path="/readyz",
    path="/predict",
    body=lambda title, description: {"texts": [f"{title} {description}".strip()]},
    tag_of=lambda answer: answer[0]["tag"],
    env={"BENTOML_DO_NOT_TRACK": "True", "BENTOML_HOME": "{folder}/bentoml"},
    workarounds=(
        "BENTOML_DO_NOT_TRACK=True (usage tracking is on by default)",
        "BENTOML_HOME set to a temporary folder (it writes ~/bentoml otherwise)",
        "its own environment: its OpenTelemetry pins break Ray Serve's in a shared one",
    ),
    batching="adaptive batching, max_batch_size=32",
    commands=("bentoml",),
)

MLSERVER = Peer(
    name="mlserver",
    # Its own environment: it needs an older FastAPI and Starlette than the kit's server.
    packages=("mlserver==1.7.1",),
    glue=_glue("mlserver"),
    own_metrics_port=True,
    command=lambda python, port: [_script(python, "mlserver"), "start", "."],
    ready_path="/v2/models/tag-classifier/ready",
    path="/v2/models/tag-classifier/infer",
    body=lambda title, description: {
        "inputs": [
            {
                "name": "text",
                "shape": [1],
                "datatype": "BYTES",
                "data": [f"{title} {description}".strip()],
            }
        ]
    },
    tag_of=lambda answer: answer["outputs"][0]["data"][0],
    workarounds=(
        '"parallel_workers": 0: with uvloop 0.22 or newer its inference worker processes '
        'crash-loop ("There is no current event loop"); the model then runs in the server process',
        "its own environment: it pins FastAPI and Starlette older than the kit's server needs",
    ),
    batching="adaptive batching, max_batch_size=32, max_batch_time=2 ms",
    commands=("mlserver",),
)

MLFLOW = Peer(
    name="mlflow",
    # Its own environment: a tracking server, a registry and their database drivers, none of
    # which the kit's server needs.
    packages=("mlflow==3.17.0",),
    glue=_glue("mlflow"),
    prepare=lambda python: [python, "save.py"],
    command=lambda python, port: [
        _script(python, "mlflow"),
        "models",
        "serve",
        "-m",
        "tag-pyfunc",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ],
    ready_path="/ping",
    path="/invocations",
    body=lambda title, description: {
        "dataframe_records": [{"title": title, "description": description}]
    },
    tag_of=lambda answer: answer["predictions"][0],
    env={"MLFLOW_TRACKING_URI": "sqlite:///{folder}/mlflow.db"},
    workarounds=(
        "--env-manager local, with the environment's bin first on PATH and a uvicorn there "
        "(it execs `uvicorn` by name)",
        "an input example fixes the column names the scoring server enforces",
        "its own environment: the tracking and registry stack the kit's server does not need",
    ),
    batching="none (one model call per request)",
    commands=("mlflow", "uvicorn"),
)

TORCHSERVE = Peer(
    name="torchserve",
    # Its own environment: its archiver and Java front end are not the kit's to carry.
    packages=("torchserve==0.12.0", "torch-model-archiver==0.12.0"),
    glue=_glue("torchserve"),
    own_metrics_port=True,
    prepare=lambda python: [
        "sh",
        "-c",
        f"mkdir -p model-store && {_script(python, 'torch-model-archiver')} --model-name tag "
        "--version 1.0 --handler handler.py --export-path model-store",
    ],
    command=lambda python, port: [
        _script(python, "torchserve"),
        "--start",
        "--foreground",
        "--ncs",
        "--disable-token-auth",
        "--ts-config",
        "config.properties",
    ],
    ready_path=None,  # /ping says Healthy while its workers still die and restart
    path="/predictions/tag",
    body=project_body,
    tag_of=lambda answer: answer["tag"],
    workarounds=(
        "--disable-token-auth (token authorization is on by default since 0.11)",
        "readiness is a real prediction: /ping answers Healthy while workers still fail",
        "archived upstream in 2025: 0.12.0 is its last release; needs Java 17",
        "metrics_mode=prometheus for its /metrics (by default its metrics go to a log file)",
    ),
    batching="batchSize=32, maxBatchDelay=2 ms",
    commands=("torchserve", "torch-model-archiver"),
)

PYTRITON = Peer(
    name="pytriton",
    # Its own environment: it requires numpy<2, older than the kit's; its wheel bundles
    # Triton Inference Server itself.
    packages=("nvidia-pytriton==0.7.0", "numpy<2"),
    glue=_glue("pytriton"),
    own_metrics_port=True,
    command=lambda python, port: [python, "serve.py"],
    ready_path="/v2/models/tag/ready",
    path="/v2/models/tag/infer",
    body=lambda title, description: {
        "inputs": [
            {"name": "title", "shape": [1, 1], "datatype": "BYTES", "data": [title]},
            {"name": "description", "shape": [1, 1], "datatype": "BYTES", "data": [description]},
        ]
    },
    tag_of=lambda answer: answer["outputs"][0]["data"][0],
    # Triton's Python backend loads libpython from the interpreter's LIBDIR.
    env={"LD_LIBRARY_PATH": str(sysconfig.get_config_var("LIBDIR") or "")},
    workarounds=(
        "its own environment: it requires numpy<2 (the kit runs numpy 2)",
        "LD_LIBRARY_PATH set to the interpreter's LIBDIR, else Triton's Python backend cannot "
        "load libpython",
        "the bundled Triton server runs on the CPU here; it logs CUDA errors at start and serves",
    ),
    batching="Triton's dynamic batcher, max_batch_size=32, max_queue_delay 2 ms",
)

#: The peers the kit knows how to start, by name.
PEERS: dict[str, Peer] = {
    p.name: p for p in (BENTOML, LITSERVE, MLFLOW, MLSERVER, PYTRITON, TORCHSERVE)
}
