"""Processing: batch vs stream features for users whose behaviour changes over time.

- :func:`simulate_events`: seeded users whose interests drift and burst (ground truth);
- :func:`compute_features` (one definition), :func:`batch_features` (a batch refresh from
  the log) and :class:`StreamFeatures` (event by event: sliding windows with eviction,
  idempotent, allowed lateness);
- :class:`FeatureStore`: the latest features per user (SQLite);
- :func:`point_in_time_rows`: training rows with features as they were, no leakage;
- :class:`RedisStreamSource` and :func:`consume`: a real broker (consumer groups, XACK
  after applying, pending entries reclaimed after a consumer crash).

Still to come (issue #3): a Redis feature store, the staleness study and its notebook.
"""

from mlinfra_kit.processing.events import CATEGORIES, Event, EventLog, simulate_events
from mlinfra_kit.processing.features import (
    DEFAULT_WINDOWS,
    StreamFeatures,
    batch_features,
    compute_features,
    feature_names,
)
from mlinfra_kit.processing.sources import ConsumeReport, RedisStreamSource, consume
from mlinfra_kit.processing.store import FeatureStore
from mlinfra_kit.processing.training import point_in_time_rows

__all__ = [
    "CATEGORIES",
    "ConsumeReport",
    "DEFAULT_WINDOWS",
    "Event",
    "EventLog",
    "FeatureStore",
    "RedisStreamSource",
    "StreamFeatures",
    "batch_features",
    "compute_features",
    "consume",
    "feature_names",
    "point_in_time_rows",
    "simulate_events",
]
