"""The model's lifecycle on workflow tools: the retraining pipeline as a Metaflow flow
(:mod:`mlinfra_kit.lifecycle.retrain_flow`), run locally and read back with Metaflow's
client.

:func:`run_retrain_flow` runs the flow as its users run it (``python retrain_flow.py run``)
with ``USERNAME`` and the local datastore set explicitly (:func:`flow_env`: Metaflow needs a
user name, and its client finds runs relative to the datastore root), and returns what the
run stored, read through Metaflow's client (:func:`flow_results`). :func:`train_candidate`
is the flow's train step as a plain function, for a champion trained the way the flow trains.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported only when a model is trained
    from mlinfra_kit.data import Projects
    from mlinfra_kit.models import TagClassifier

__all__ = ["FLOW_FILE", "flow_env", "flow_results", "run_retrain_flow", "train_candidate"]

#: The flow, run as a script.
FLOW_FILE = Path(__file__).with_name("retrain_flow.py")


def train_candidate(projects: Projects, *, seed: int = 0, epochs: int = 0) -> TagClassifier:
    """The flow's train step, without Metaflow: a fifth of ``projects`` (drawn by ``seed``)
    held out for early stopping, the tag model trained on the rest on the CPU. ``epochs`` 0
    keeps the model's default. A notebook that makes a champion for the flow to beat makes
    it with this, so the two are trained alike.

    >>> from mlinfra_kit.data import load_projects
    >>> model = train_candidate(load_projects("synthetic"), seed=1, epochs=5)
    >>> model.seed, model.epochs
    (1, 5)
    """
    from mlinfra_kit.data import train_val_split
    from mlinfra_kit.models import TagClassifier

    fit, val = train_val_split(projects, 0.2, seed=seed)
    settings = {"epochs": epochs} if epochs else {}
    model = TagClassifier(seed=seed, progress=False, device="cpu", **settings)
    return model.fit(fit.texts, fit.tags, val.texts, val.tags)


def flow_env(root: str | os.PathLike, user: str = "mlinfra") -> dict[str, str]:
    """The environment a local Metaflow run and its client need: a user name, local
    metadata and datastore, the datastore's root."""
    return {
        "USERNAME": os.environ.get("USERNAME", user),
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(Path(root).resolve()),
    }


def run_retrain_flow(
    root: str | os.PathLike,
    *,
    registry: str,
    store: str,
    data_source: str = "made-with-ml",
    seed: int = 0,
    epochs: int = 0,
    min_gain: float = 0.0,
    rehearse_retry: bool = False,
    timeout_s: float = 900,
) -> dict[str, Any]:
    """Run the retraining flow with its datastore under ``root`` and return
    :func:`flow_results` of that run. ``rehearse_retry`` fails the data load's first
    attempt, to show the retry. A failed run raises ``RuntimeError`` with the end of its
    output (Metaflow names the step that failed)."""
    command = [
        sys.executable, str(FLOW_FILE), "run",
        "--data-source", str(data_source), "--registry", registry, "--store", store,
        "--seed", str(seed), "--epochs", str(epochs), "--min-gain", str(min_gain),
        "--rehearse-retry", str(rehearse_retry),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        env={**os.environ, **flow_env(root)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the retraining flow failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return flow_results(root)


def flow_results(root: str | os.PathLike) -> dict[str, Any]:
    """The latest retraining run under ``root``, read through Metaflow's client (in a
    fresh process: the client reads its datastore root once, when imported): run id,
    success, steps and attempts, the data checks, the version registered, the candidate's
    and the former champion's macro F1, whether it was promoted, the version serving and
    how many predictions were stored."""
    from mlinfra_kit.services import python_json

    script = Path(__file__).with_name("read_flow.py")
    return python_json(
        script=script, what="reading the flow's run", env=flow_env(root), timeout_s=120
    )
