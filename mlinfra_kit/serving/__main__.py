"""``python -m mlinfra_kit.serving --port PORT [--workers N]``: serve the
:class:`~mlinfra_kit.serving.config.ServerConfig` held in
:data:`~mlinfra_kit.serving.config.CONFIG_ENV` on loopback, as ``mlinfra serve`` does (the
same uvicorn settings, worker supervision and shutdown). :func:`~mlinfra_kit.serving.run_server`
and :func:`~mlinfra_kit.deployment.run_workers` start their servers with it."""

from __future__ import annotations

import argparse

from mlinfra_kit.services import LOOPBACK
from mlinfra_kit.serving.config import ServerConfig
from mlinfra_kit.serving.launch import run_uvicorn

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlinfra_kit.serving")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    run_uvicorn(ServerConfig.from_env(), LOOPBACK, args.port, "warning", args.workers)


if __name__ == "__main__":
    main()
