"""Helpers the tests share (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import pytest


def skip_unless_ci(reason: str) -> None:
    """Skip for a missing optional service or extra, except in CI (``CI=true``), where
    ``.ci/run`` installs everything and a skip would hide a broken part: fail there."""
    import os

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def require_module(name: str, hint: str):
    """Import ``name``, or skip with ``hint`` (the install command) — and fail under
    ``CI=true``, where every extra is installed and a skip would hide a missing engine."""
    import importlib
    import os

    try:
        return importlib.import_module(name)
    except ImportError:
        reason = f"{name} is not installed: {hint}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def make_notebook(path, body: str, metrics=("answer",), parameters: str = ""):
    """Write a minimal kit-style notebook: a tagged parameters cell, then ``body``."""
    import nbformat  # here, not at the top: the GPU tests run where only torch is installed

    params = nbformat.v4.new_code_cell(
        'QUICK = False\nSEED = 0\nDEVICE = "auto"\nRESULTS_DIR = "results"\n'
        "INTERACTIVE = True\n" + parameters
    )
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(f"# {path.stem} title"),
            params,
            nbformat.v4.new_code_cell(body),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["mlinfra"] = {"metrics": list(metrics)}
    nbformat.write(nb, path)
    return path


RECORD = (
    "from mlinfra_kit import results\n"
    "results.record('{name}', dict(QUICK=QUICK, SEED=SEED), {{'answer': 42 + SEED}},\n"
    "               results_dir=RESULTS_DIR, environment={{'python': 'test'}})\n"
)


def _in_flight(metrics_text: str) -> float:
    """Requests in flight on a kit server, the scrape that asked not counted."""
    import re

    found = re.search(r"^mlinfra_in_flight_requests (\S+)$", metrics_text, re.MULTILINE)
    return float(found.group(1)) - 1 if found else 0.0


def in_flight(url: str) -> float:
    """Requests the kit's server at ``url`` is answering now (its ``/metrics``), this one
    left out: a signal that a request has reached the app, to wait for instead of a sleep."""
    import httpx

    return _in_flight(httpx.get(url + "/metrics", timeout=10).text)


async def in_flight_async(client) -> float:
    """:func:`in_flight` through an ``httpx.AsyncClient`` with the server's base URL."""
    return _in_flight((await client.get("/metrics")).text)


def accept_queue(port: int) -> int:
    """Connections waiting in the accept queue of the loopback listener on ``port`` (Linux:
    a listening socket's ``rx_queue`` in /proc/net/tcp). 0 once the server has accepted every
    connection a client completed."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":  # 0A: LISTEN
                return int(fields[4].split(":")[1], 16)
    raise LookupError(f"no listener on 127.0.0.1:{port}")
