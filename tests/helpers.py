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
