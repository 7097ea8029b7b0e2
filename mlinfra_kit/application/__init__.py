"""The application end to end (issue: real-time tag prediction kept honest by monitoring).

Assembles the other subpackages; the only one allowed to depend on all of them.

- :class:`Monitor`: input drift (text length, out-of-vocabulary rate), output drift
  (predicted tag mix), and quality where labels have arrived, per window of the stream,
  each against a reference and a stated threshold; an :class:`Alert` says which;
- :class:`ModelRegistry`: numbered versions on disk and which one is in production;
- :func:`run_application`: serve v1 from a real server, replay the later projects as a
  stream (in process or through a Redis Stream) with delayed labels, monitor, retrain on
  the first alert, shadow, canary, then promote or roll back;
- :func:`timeline`: that story in one figure.
"""

from mlinfra_kit.application.monitoring import Alert, Monitor, WindowReport
from mlinfra_kit.application.registry import ModelRegistry
from mlinfra_kit.application.system import (
    AppConfig,
    AppEvent,
    ApplicationRun,
    Phase,
    Served,
    Trained,
    run_application,
    train,
)
from mlinfra_kit.application.timeline import timeline

__all__ = [
    "Alert",
    "AppConfig",
    "AppEvent",
    "ApplicationRun",
    "ModelRegistry",
    "Monitor",
    "Phase",
    "Served",
    "Trained",
    "WindowReport",
    "run_application",
    "timeline",
    "train",
]
