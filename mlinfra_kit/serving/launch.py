"""Starting the server with uvicorn: one process, or several sharing the port.

:func:`serve` is what ``mlinfra serve`` runs; :func:`run_uvicorn` what
``python -m mlinfra_kit.serving`` runs for a config from the environment. Both use the same
uvicorn settings (:func:`uvicorn_options`).
"""

import os
from typing import Any

from mlinfra_kit.serving.admin import write_admin_token
from mlinfra_kit.serving.app import APP_FACTORY, create_app
from mlinfra_kit.serving.config import ServerConfig, workers_env

__all__ = ["run_uvicorn", "serve", "uvicorn_options"]


def uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    """The uvicorn settings every way of starting the server uses: no access log (at
    thousands of requests per second, logging each would cost more than predicting it),
    the HTTP protocol with a deadline for request headers, and the keep-alive and
    graceful-shutdown bounds of ``config``."""
    return {
        "access_log": False,
        "http": "mlinfra_kit.serving.protocol:HeaderTimeoutProtocol",
        "timeout_keep_alive": config.keep_alive_s,
        "timeout_graceful_shutdown": config.shutdown_timeout_s,
    }


def serve(
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    workers: int = 1,
) -> None:
    """Serve ``config`` with uvicorn until interrupted (what ``mlinfra serve`` runs), in
    ``workers`` processes sharing the port (each loads its own copy of the model: one per
    core is the usual choice, since each runs its model on its own event loop).

    On SIGTERM or Ctrl-C it stops accepting, answers what it has read, closes idle
    connections, waits at most ``config.shutdown_timeout_s`` for the rest, and exits 0.
    Without ``config.admin_token`` it makes one for the management API, writes it to
    ``~/.mlinfra/admin-token-PORT`` (:func:`write_admin_token`; readable by you only) and
    removes it on exit.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    token_file = None
    if config.admin_token is None:  # made here, so every worker shares it
        config = config.with_admin_token()
        assert config.admin_token is not None  # just made
        token_file = write_admin_token(config.admin_token, port)
        print(f"admin token for POST /admin/model: in {token_file} (yours only)", flush=True)
    try:
        run_uvicorn(config, host, port, log_level, workers)
    finally:  # the token dies with the server
        if token_file is not None:
            os.unlink(token_file)


def run_uvicorn(config: ServerConfig, host: str, port: int, log_level: str, workers: int) -> None:
    """Serve ``config`` with uvicorn in ``workers`` processes until SIGTERM or Ctrl-C (exit
    0): what :func:`serve` runs once the admin token is settled, and what
    ``python -m mlinfra_kit.serving`` runs for a config from the environment."""
    import signal
    import sys

    import uvicorn

    options = dict(host=host, port=port, log_level=log_level, **uvicorn_options(config))
    if workers > 1:  # uvicorn starts each worker from the factory, which reads the config
        with workers_env(workers) as shared:  # one /ready and one /metrics over every worker
            os.environ.update({**config.to_env(), **shared})
            settings = uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **options)
            from mlinfra_kit.serving.supervisor import Supervisor

            Supervisor(settings, sockets=[settings.bind_socket()]).run()
        return
    # uvicorn re-raises the signal it handled once it has shut down: exiting through this
    # handler makes a requested stop a clean exit (status 0), not a death by signal (143).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ.update(config.to_env())  # the HTTP protocol reads its head limits from it
    uvicorn.run(create_app(config), **options)
