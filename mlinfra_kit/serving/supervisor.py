"""Worker processes that stop together: uvicorn's supervisor, with a shutdown in two phases.

With ``--workers N`` the workers share one listening socket, each holding a copy of it, and
the kernel queues a new connection as long as any copy is open. uvicorn stops a worker by
closing its copy and then, at once, its idle keep-alive connections. A client whose idle
connection is closed reconnects at once; while a sibling worker still holds its copy, the
kernel queues that connection, and it is reset when the sibling closes its copy in turn
(the client sees a reset, not an answer and not a refusal). With one process this cannot
happen: its copy is the last.

Here every worker first closes its copy, then waits until all of them have (each leaves a
mark in the workers' shared folder, :data:`~mlinfra_kit.serving.config.READY_DIR_ENV`; at most
:data:`LISTENERS_CLOSED_TIMEOUT_S`), and only then closes its connections: a client that
reconnects finds the port closed and is refused at once, as with one process. The
supervisor closes its own copy before it signals the workers. (A worker uvicorn starts
again after one died is uvicorn's own and leaves no mark: the others then wait the whole
timeout before they close their connections.)

This module imports uvicorn: :func:`mlinfra_kit.serving.launch.run_uvicorn` imports it only
to start several workers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from mlinfra_kit.serving.config import READY_DIR_ENV, WORKERS_ENV

__all__ = ["LISTENERS_CLOSED_TIMEOUT_S", "Supervisor"]

#: How long a stopping worker waits for its siblings to close their listening sockets
#: before it closes its connections anyway (a sibling that died never marks).
LISTENERS_CLOSED_TIMEOUT_S = 2.0


def _closed_marks(folder: Path) -> int:
    return sum(1 for _ in folder.glob("closed-*"))


class _DrainingServer(uvicorn.Server):
    """A worker's server: on shutdown, stop listening, wait for every sibling to have
    stopped listening too, then close the connections (uvicorn's own shutdown)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        folder = os.environ.get(READY_DIR_ENV)
        if folder:
            Path(folder, f"closed-{os.getpid()}").touch()
            workers = int(os.environ.get(WORKERS_ENV, "1"))
            deadline = time.monotonic() + LISTENERS_CLOSED_TIMEOUT_S
            while _closed_marks(Path(folder)) < workers and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        await super().shutdown(sockets)


class _Worker(Process):
    """uvicorn's worker process, running a :class:`_DrainingServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = _DrainingServer(config=self.config)
        return self._server


class Supervisor(Multiprocess):
    """uvicorn's supervisor of worker processes whose workers stop listening together
    (see the module docstring), and which on SIGTERM closes its own copy of the listening
    socket before it signals them (uvicorn's keeps it open until it exits)."""

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = _Worker(self.config, self.sockets)
            process.start()
            self.processes.append(process)

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()
