"""The application end to end (issue: real-time tag prediction kept honest by monitoring).

Assembles the other subpackages; the only one allowed to depend on all of them.

- :class:`Monitor`: input drift (text length, out-of-vocabulary rate), output drift
  (predicted tag mix), and quality where labels have arrived, per window of the stream,
  each against a reference and a stated threshold; an :class:`Alert` says which.
"""

from mlinfra_kit.application.monitoring import Alert, Monitor, WindowReport

__all__ = ["Alert", "Monitor", "WindowReport"]
