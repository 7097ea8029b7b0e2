"""Processing: batch vs stream features for users whose behaviour changes over time.

- :func:`simulate_events`: seeded users whose interests drift and burst (ground truth);
- :func:`compute_features` (one definition), :func:`batch_features` (a batch refresh from
  the log) and :class:`StreamFeatures` (event by event: sliding windows with eviction,
  idempotent, allowed lateness);
- :func:`point_in_time_rows`: training rows with features as they were, no leakage;
- :class:`FeatureStore` (SQLite) and :class:`RedisFeatureStore`: the latest features per
  user, written atomically (:func:`open_feature_store` picks one from a URL);
- :func:`batch_refresh` and :class:`StreamPipeline`: the two ways to fill the store (the
  stream in micro-batches of any size, measured for throughput and lag);
- :class:`RedisStreamSource` and :func:`consume`: a real broker (consumer groups, XACK
  after applying, pending entries reclaimed after a consumer crash);
- :func:`serve_from_pipeline`: predictions read from the store a stream pipeline fills.
- :func:`staleness_sweep`: one model, evaluated with batch features refreshed at several
  intervals and with stream features; the accuracy that freshness buys.
"""

from mlinfra_kit.processing.events import CATEGORIES, Event, EventLog, simulate_events
from mlinfra_kit.processing.features import (
    DEFAULT_WINDOWS,
    EventIndex,
    StreamFeatures,
    batch_features,
    compute_features,
    feature_names,
)
from mlinfra_kit.processing.pipeline import (
    PipelineReport,
    RefreshReport,
    StreamPipeline,
    batch_refresh,
)
from mlinfra_kit.processing.sources import ConsumeReport, RedisStreamSource, consume
from mlinfra_kit.processing.staleness import (
    NextCategoryModel,
    ceiling_accuracy,
    feature_vector,
    serve_from_batch,
    serve_from_pipeline,
    serve_from_stream,
    staleness_sweep,
)
from mlinfra_kit.processing.store import (
    BaseFeatureStore,
    FeatureStore,
    RedisFeatureStore,
    open_feature_store,
)
from mlinfra_kit.processing.training import point_in_time_rows

__all__ = [
    "CATEGORIES",
    "ConsumeReport",
    "DEFAULT_WINDOWS",
    "Event",
    "EventIndex",
    "EventLog",
    "BaseFeatureStore",
    "FeatureStore",
    "NextCategoryModel",
    "PipelineReport",
    "RedisFeatureStore",
    "RedisStreamSource",
    "RefreshReport",
    "StreamFeatures",
    "StreamPipeline",
    "batch_features",
    "batch_refresh",
    "ceiling_accuracy",
    "compute_features",
    "consume",
    "feature_names",
    "feature_vector",
    "open_feature_store",
    "point_in_time_rows",
    "serve_from_batch",
    "serve_from_pipeline",
    "serve_from_stream",
    "simulate_events",
    "staleness_sweep",
]
