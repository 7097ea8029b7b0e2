"""The ``mlinfra`` command: list, run and report the notebooks; check the machine; build
the environments of the peers and engines.

Heavy libraries (torch, papermill) are imported inside the commands that use them, so
``mlinfra --help`` answers instantly.

(Over 450 lines: one parser with every subcommand and its help, the whole CLI in one place;
each command's work is a call into the package.)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlinfra_kit import __version__
from mlinfra_kit.serving.config import add_arguments

__all__ = ["build_parser", "main"]


def _cmd_list(args: argparse.Namespace) -> int:
    from mlinfra_kit.runner import discover

    for nb in discover(args.notebooks):
        print(f"{nb.name:<22} {nb.title}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from mlinfra_kit.runner import discover, parse_parameter, run_notebooks, select

    try:
        chosen = select(discover(args.notebooks), args.names)
        parameters = dict(parse_parameter(p) for p in args.parameter)
        if args.max_rounds is not None:
            if args.max_rounds < 2:
                raise ValueError(f"--max-rounds must be 2 or more, got {args.max_rounds}")
            from mlinfra_kit.comparison import ROUNDS_CAP_VARIABLE

            os.environ[ROUNDS_CAP_VARIABLE] = str(args.max_rounds)  # the kernels inherit it
    except (ValueError, FileNotFoundError) as err:
        print(f"mlinfra run: {err}", file=sys.stderr)
        return 2

    def report(event, nb, result):
        if event == "start":
            print(f"▶ {nb.name} ...", flush=True)
        elif result.status == "ok":
            print(f"  ok in {result.seconds:.1f} s -> {result.output}", flush=True)
        elif result.status == "skipped":
            print(f"  skipped: {result.error}", flush=True)
        else:
            print(f"  FAILED after {result.seconds:.1f} s\n  {result.error}", flush=True)

    track = None
    if not args.no_track:
        from mlinfra_kit.tracking import TRACK_HINT, tracking_available, tracking_uri

        if tracking_available():
            track = tracking_uri(args.out)
        else:
            print(f"tracking off: {TRACK_HINT}", flush=True)
    try:
        outcomes = run_notebooks(
            chosen,
            args.out,
            parameters,
            quick=args.quick,
            kernel=args.kernel,
            cell_timeout=args.cell_timeout,
            on_event=report,
            track=track,
        )
    except ValueError as err:
        print(f"mlinfra run: {err}", file=sys.stderr)
        return 2
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = sum(o.status == "skipped" for o in outcomes)
    total = sum(o.seconds for o in outcomes)
    print(
        f"{len(outcomes) - len(failed) - skipped}/{len(outcomes)} notebook(s) ok"
        f"{f', {skipped} skipped' if skipped else ''} in {total:.1f} s; "
        f"results in {Path(args.out) / 'results'}"
    )
    tracked = [o for o in outcomes if o.mlflow_run_id]
    if tracked:
        print(
            f"{len(tracked)} MLflow run(s) in {track}; to compare them: "
            f"mlflow ui --backend-store-uri {track}"
        )
    for o in outcomes:
        if o.tracking_error:
            print(f"{o.notebook} ran but was not tracked: {o.tracking_error}", file=sys.stderr)
    for o in failed:
        print(f"failed: {o.error}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from mlinfra_kit import sweep
    from mlinfra_kit.runner import discover, parse_parameter, select

    try:
        (notebook,) = select(discover(args.notebooks), [args.name])
        spec = sweep.sweep_file(args.file) if args.file else sweep.SweepSpec()
        for text in args.parameter:
            key, _, raw = text.partition("=")
            parse_parameter(text)  # the same KEY=VALUE check as `mlinfra run`
            spec.grid[key.strip()] = sweep.parse_values(raw)
        if args.seeds:
            spec.grid["SEED"] = tuple(sweep.parse_seeds(args.seeds))
        points = spec.points()
    except (ValueError, FileNotFoundError) as err:
        print(f"mlinfra sweep: {err}", file=sys.stderr)
        return 2

    def report(event, summary):
        line = sweep.format_point(summary)
        marks = {"skip": "  done before:", "start": "▶", "end": "  "}
        print(f"{marks[event]} {line}", flush=True)

    parallel = args.parallel or notebook.runs_at_once()
    where = f"on Ray ({args.ray})" if args.ray else f"{parallel} at a time"
    print(f"{notebook.name}: {len(points)} point(s), {where} -> {args.out}")
    try:
        summaries = sweep.run_sweep(
            notebook,
            points,
            args.out,
            fixed=spec.fixed,
            quick=args.quick,
            parallel=parallel,
            retry_failed=args.retry_failed,
            cell_timeout=args.cell_timeout,
            on_point=report,
            ray_address=args.ray,
            cpus_per_point=args.cpus_per_point,
        )
        if not args.no_track:
            from mlinfra_kit.tracking import TRACK_HINT, tracking_available, tracking_uri

            if tracking_available():
                uri = tracking_uri(args.out)
                run_id = sweep.track_sweep(args.out, uri)
                print(f"MLflow: the sweep is run {run_id} in {uri}, one child run per point")
            else:
                print(f"tracking off: {TRACK_HINT}", flush=True)
        path = sweep.write_sweep_report(args.out, args.metric)
    except ValueError as err:
        print(f"mlinfra sweep: {err}", file=sys.stderr)
        return 2
    failed = [s for s in summaries if s["status"] != "ok"]
    print(f"{len(summaries) - len(failed)}/{len(summaries)} point(s) ok; report: {path}")
    for s in failed:
        print(f"failed: {s['error']}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mlinfra_kit.report import write_report

    try:
        path = write_report(args.dir)
    except ValueError as err:
        print(f"mlinfra report: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from mlinfra_kit.artifacts import require_artifact
    from mlinfra_kit.serving.config import ServerConfig
    from mlinfra_kit.serving.launch import serve
    from mlinfra_kit.serving.protocols import port_from_env

    try:
        config = ServerConfig.from_args(args)
        if str(config.model).startswith("models:/"):  # a version in MLflow's registry
            config = dataclasses.replace(config, model=str(_registered(config.model)))
        require_artifact(config.model)
        port = args.port if args.port is not None else port_from_env(8000)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
    except ValueError as err:
        print(f"mlinfra serve: {err}", file=sys.stderr)
        return 2
    print(
        f"serving {config.model} on http://{args.host}:{port} "
        f"(batching {'on' if config.batching else 'off'}"
        + (f", {args.workers} worker processes)" if args.workers > 1 else ")"),
        flush=True,
    )
    serve(config, host=args.host, port=port, workers=args.workers)
    return 0


def _registered(uri: str) -> Path:
    """The local artifact of a registered model URI (``models:/tag-classifier@champion``)."""
    try:
        from mlinfra_kit.application.mlflow_registry import resolve_model
    except ImportError:
        raise ValueError(
            f"{uri} names a model in MLflow's registry: pip install 'mlinfra-kit[track]'"
        ) from None
    return resolve_model(uri)


def _service_version(program: str) -> str | None:
    path = shutil.which(program)
    if path is None:
        return None
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return f"found at {path}"


def _cmd_doctor(args: argparse.Namespace) -> int:
    from mlinfra_kit.measure import distribution_version, environment

    env = environment()
    services = {
        "CUDA GPU": env["gpu"] or None,
        "redis-server": _service_version("redis-server"),
        "wrk (load client)": _service_version("wrk"),
        "prometheus (metrics)": _service_version("prometheus"),
        "docker": _service_version("docker"),
        "java (Flink, TorchServe)": _service_version("java"),
        "ray (scale extra)": distribution_version("ray"),
        "mlflow (track extra)": distribution_version("mlflow"),
        "metaflow (flows extra)": distribution_version("metaflow"),
        "apache-beam (streams extra)": distribution_version("apache-beam"),
        "moto (streams extra)": distribution_version("moto"),
    }
    width = max(map(len, [*env, *services, "jupyter kernels", "small-model threads"])) + 2
    print("environment")
    for key, value in env.items():
        print(f"  {key:<{width}}{value if value is not None else '-'}")
    cores = os.cpu_count() or 1
    print(
        f"  {'small-model threads':<{width}}1 of {cores} core(s): the tag classifier and the "
        "servers run torch with one intra-op thread (each call is too small to split)"
    )
    print("optional services")
    for name, found in services.items():
        print(f"  {name:<{width}}{found or 'not available'}")
    from jupyter_client.kernelspec import KernelSpecManager

    from mlinfra_kit.environments import built_environments, environments_home

    built = built_environments()
    listed = ", ".join(f"{n} ({i['size_mb']:,.0f} MB)" for n, i in built.items())
    print(
        f"  {'environments built':<{width}}{listed or 'none'} in {environments_home()}"
        + ("" if built else ": `mlinfra envs build`")
    )
    kernels = sorted(KernelSpecManager().find_kernel_specs())
    print(f"  {'jupyter kernels':<{width}}{', '.join(kernels) or 'none: pip install ipykernel'}")
    return 0


def _known_environments() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every environment the kit builds beside its own: name -> (packages, commands)."""
    from mlinfra_kit.processing.flink import FLINK_PACKAGES
    from mlinfra_kit.serving.peers import PEERS

    peers = {p.name: (p.packages, p.commands) for p in PEERS.values() if p.packages}
    return peers | {"flink": (FLINK_PACKAGES, ())}


def _cmd_envs(args: argparse.Namespace) -> int:
    import time

    from mlinfra_kit import environments
    from mlinfra_kit.progress import bar

    home = args.home or environments.environments_home()
    known = _known_environments()
    unknown = [n for n in args.names if n not in known]
    if unknown and args.action == "build":
        print(
            f"mlinfra envs: unknown environment(s) {', '.join(unknown)}; known: {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    if args.action == "list":
        built = environments.built_environments(home)
        print(f"environments in {home}")
        for name in dict.fromkeys([*known, *built]):
            if name in built:
                info = built[name]
                state = f"built, {info['size_mb']:,.0f} MB" + (
                    "" if info["current"] else " (for another kit environment: rebuilt on use)"
                )
            else:
                state = "not built (`mlinfra envs build " + name + "`)"
            listed = " ".join(known[name][0]) if name in known else "-"
            print(f"  {name:<12} {state:<44} {listed}")
        return 0
    if args.action == "remove":
        names = args.names or list(environments.built_environments(home))
        for name in names:
            removed = environments.remove_environment(name, home)
            print(f"  {name}: {'removed' if removed else 'not built'}")
        return 0
    failed = 0
    names = args.names or list(known)
    for name in bar(names, desc="environments", unit="env"):
        packages, commands = known[name]
        tic = time.perf_counter()
        try:
            environments.environment_python(name, packages, home, commands=commands)
        except environments.InstallFailed as err:
            failed += 1
            print(f"  {name}: FAILED: {err}", flush=True)
            continue
        size = environments.environment_size_mb(Path(home) / name)  # this one only
        print(f"  {name}: ready in {time.perf_counter() - tic:.0f} s, {size:,.0f} MB", flush=True)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlinfra",
        description="Run and measure the ML infrastructure patterns of mlinfra-kit.",
    )
    parser.add_argument("--version", action="version", version=f"mlinfra-kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    notebooks_help = "folder of notebooks (default: the kit's notebooks)"
    p = sub.add_parser("list", help="list the notebooks")
    p.add_argument("--notebooks", type=Path, help=notebooks_help)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "run",
        help="execute notebooks with papermill and record results",
        description="Execute notebooks into DIR: executed copies, "
        "DIR/results/*.json and DIR/run.json.",
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="notebooks to run: 00_quickstart, 00 or quickstart (default: all)",
    )
    p.add_argument("--quick", action="store_true", help="QUICK=True: small sizes, ~1 min each")
    p.add_argument(
        "--out", default="runs/latest", metavar="DIR", help="output folder (default: runs/latest)"
    )
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a notebook parameter, e.g. -p SEED=1 (repeatable)",
    )
    p.add_argument(
        "--max-rounds",
        type=int,
        metavar="N",
        help="cap every comparison at N rounds (2 or more): a run that checks the notebooks "
        "work, with more verdicts inconclusive (recorded as environment.max_rounds)",
    )
    p.add_argument("--kernel", default="python3", help="Jupyter kernel (default: python3)")
    p.add_argument(
        "--cell-timeout",
        type=int,
        default=1200,
        metavar="SECONDS",
        help="fail a cell that runs longer than this (default: 1200)",
    )
    p.add_argument(
        "--no-track",
        action="store_true",
        help="do not log the runs to MLflow (default: $MLFLOW_TRACKING_URI, else DIR/mlflow.db)",
    )
    p.add_argument("--notebooks", type=Path, help=notebooks_help)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "sweep",
        help="run one notebook over a grid of parameters and seeds; one report",
        description="Run NAME once per point of a grid (-p KEY=V1,V2 per parameter, --seeds, or "
        "a sweep file), each point in DIR/points/<hash of its parameters>/; run again, it "
        "skips the finished points. Writes DIR/sweep.json and DIR/report.md.",
    )
    p.add_argument("name", metavar="NAME", help="the notebook: 01_serving, 01 or serving")
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a swept parameter and its values, e.g. -p MAX_BATCH_SIZE=8,32,64 (repeatable)",
    )
    p.add_argument("--seeds", metavar="0-9", help="run every point with these seeds (SEED)")
    p.add_argument(
        "--file",
        type=Path,
        metavar="FILE",
        help="a sweep file (YAML): grid, random choices with samples, fixed, seeds",
    )
    p.add_argument("--quick", action="store_true", help="QUICK=True for every point")
    p.add_argument(
        "--out", default="runs/sweep", metavar="DIR", help="output folder (default: runs/sweep)"
    )
    p.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help="points run at once, each in a process of its own (default: as many as the "
        "notebook's declared cores fit here; 1 for a notebook that measures timings)",
    )
    p.add_argument(
        "--ray",
        metavar="local|auto|ADDRESS",
        help="run each point as a Ray task: on a Ray started here (local), the cluster this "
        "machine belongs to (auto) or one at ADDRESS; DIR must be shared by its nodes",
    )
    p.add_argument(
        "--cpus-per-point",
        type=float,
        default=1.0,
        metavar="N",
        help="CPUs Ray reserves for each point (default: 1)",
    )
    p.add_argument("--retry-failed", action="store_true", help="rerun the points that failed")
    p.add_argument(
        "--no-track",
        action="store_true",
        help="do not log the sweep to MLflow (default: $MLFLOW_TRACKING_URI, else DIR/mlflow.db)",
    )
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="a recorded metric to tabulate and plot against the swept parameters (repeatable)",
    )
    p.add_argument(
        "--cell-timeout", type=int, default=1200, metavar="SECONDS", help="(default: 1200)"
    )
    p.add_argument("--notebooks", type=Path, help=notebooks_help)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("report", help="write DIR/report.md from a run's results")
    p.add_argument("dir", type=Path, metavar="DIR", help="the --out folder of `mlinfra run`")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "serve",
        help="serve a model artifact over HTTP (FastAPI + uvicorn)",
        description="Real-time predictions: POST /predict, POST /predict/batch, "
        "GET /predictions/{id} (from --store), /health, /ready, /metadata.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default: $SAGEMAKER_BIND_TO_PORT, else $PORT, else 8000)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port, each with its own model (default: 1; "
        "one per core uses the machine)",
    )
    add_arguments(p)  # one flag per ServerConfig field, with its default
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "envs",
        help="build, list or remove the environments of the peers and engines",
        description="The serving systems of 09_serving_systems and Flink in 02_processing run in "
        "environments of their own, built once (minutes the first time; a notebook that finds "
        "one missing builds it). Build them before a tour so the notebooks time what they teach.",
    )
    p.add_argument("action", choices=("build", "list", "remove"))
    p.add_argument("names", nargs="*", metavar="NAME", help="environments (default: all)")
    p.add_argument(
        "--home",
        type=Path,
        default=None,
        help="where they live (default: $MLINFRA_PEERS_HOME, else ~/.cache/mlinfra-kit/peers)",
    )
    p.set_defaults(func=_cmd_envs)

    p = sub.add_parser("doctor", help="print versions, CPU, GPU and optional services")
    p.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
