"""Scale-out on Ray: the kit's batch predictions, batch features and serving, unchanged in
what they compute, run on a Ray cluster (a local one by default, a real one by address).

- :func:`ray_cluster`: connect to ``address`` / ``RAY_ADDRESS``, or start a local cluster,
  and time the start-up;
- :func:`ray_predict_into_store`: the batch-serving job as Ray Data ``map_batches`` over an
  actor pool (the model loads once per actor), written to the kit's prediction store one
  partition per transaction;
- :class:`RayPredictorPool`: the same predictions on a warm pool of actors kept across jobs
  (start-up paid once), as a long-lived service would run them;
- :func:`ray_batch_features`: the processing module's batch features as a Ray Data groupby;
- :func:`ray_serve`: the kit's model behind a Ray Serve deployment with ``@serve.batch`` and
  N replicas, answering the kit server's API;
- :func:`raycluster_manifest` / :func:`validate_raycluster`: the KubeRay ``RayCluster`` that
  points the same code at Kubernetes; :func:`rayjob_manifest` / :func:`validate_rayjob`: a
  ``RayJob``, a cluster made for one command (``mlinfra sweep ... --ray auto``).

Ray is an optional extra: ``pip install "mlinfra-kit[scale]"``.
"""

from mlinfra_kit.scale.cluster import RayCluster, ray_available, ray_cluster
from mlinfra_kit.scale.jobs import RayPredictorPool, ray_batch_features, ray_predict_into_store
from mlinfra_kit.scale.kuberay import (
    raycluster_manifest,
    rayjob_manifest,
    validate_raycluster,
    validate_rayjob,
)

__all__ = [
    "RayCluster",
    "RayPredictorPool",
    "ray_available",
    "ray_batch_features",
    "ray_cluster",
    "ray_predict_into_store",
    "raycluster_manifest",
    "rayjob_manifest",
    "validate_raycluster",
    "validate_rayjob",
]
