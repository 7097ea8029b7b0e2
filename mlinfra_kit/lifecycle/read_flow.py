"""The latest retraining run, read through Metaflow's client, run as a script in a fresh
Python process by :func:`mlinfra_kit.lifecycle.flow_results` (the client reads its
datastore root once, when imported); prints one line of JSON."""

import json

from metaflow import Flow, namespace

__all__ = ["latest"]


def latest() -> dict:
    namespace(None)
    run = Flow("RetrainFlow").latest_run
    data = run.data
    return {
        "run_id": run.id,
        "successful": run.successful,
        "steps": [s.id for s in run.steps()],
        "attempts": {s.id: s.task.current_attempt for s in run.steps()},
        "seconds": (run.finished_at - run.created_at).total_seconds(),
        "checks": data.checks,
        "version": data.version,
        "champion_before": data.champion,
        "candidate_macro_f1": data.candidate_metrics["macro_f1"],
        "champion_macro_f1": (data.champion_metrics or {}).get("macro_f1"),
        "promoted": data.better,
        "serving": data.serving,
        "stored": data.stored,
    }


if __name__ == "__main__":
    print(json.dumps(latest()))
