"""Learning: offline training vs periodic retraining vs online learning on drifting data.

- streams: :func:`drift_stream` (River's Agrawal with abrupt or gradual drift at known
  points), :func:`river_dataset` (Phishing, Bananas: shipped inside River),
  :func:`projects_stream` (the projects by date), :func:`from_samples` (your own);
- learners a strategy retrains: :class:`RiverBatch`, :class:`TorchMLP`;
- strategies: :class:`Offline`, :class:`Periodic`, :class:`DriftTriggered`,
  :class:`Online`, :class:`OnlineMiniBatch`;
- :func:`prequential` evaluates a strategy test-then-train, with a label delay.
"""

from mlinfra_kit.learning.learners import RiverBatch, TorchMLP
from mlinfra_kit.learning.prequential import PrequentialResult, compare, prequential
from mlinfra_kit.learning.strategies import (
    DriftTriggered,
    FitEvent,
    Offline,
    Online,
    OnlineMiniBatch,
    Periodic,
    Strategy,
)
from mlinfra_kit.learning.streams import (
    Stream,
    drift_stream,
    from_samples,
    projects_stream,
    river_dataset,
)

__all__ = [
    "DriftTriggered",
    "FitEvent",
    "Offline",
    "Online",
    "OnlineMiniBatch",
    "Periodic",
    "PrequentialResult",
    "RiverBatch",
    "Stream",
    "Strategy",
    "TorchMLP",
    "compare",
    "drift_stream",
    "from_samples",
    "prequential",
    "projects_stream",
    "river_dataset",
]
