"""Kubernetes: manifests for the served model, validated offline.

:func:`manifests` returns a Deployment (resources, readiness probe on ``/ready``, liveness
on ``/health``, rolling updates that never drop below the desired replicas), a Service and
a HorizontalPodAutoscaler; :func:`kserve_inference_service` the KServe equivalent with a
canary share for a second model version. :func:`validate` checks the built-in kinds against
the Kubernetes OpenAPI schemas bundled with ``kubernetes-validate`` (strict: unknown fields
are errors), no cluster needed.

Examples
--------
>>> docs = manifests("tag-classifier", "registry.local/tag-classifier:1")
>>> [d["kind"] for d in docs]
['Deployment', 'Service', 'HorizontalPodAutoscaler']
>>> validate(docs)
[]
"""

from __future__ import annotations

import re
from typing import Any

KUBERNETES_VERSION = "1.31.0"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_name(name: str) -> None:
    if not _NAME.match(name) or len(name) > 63:
        raise ValueError(f"{name!r} is not a valid Kubernetes name: lowercase letters, digits "
                         "and '-', at most 63 characters")


def manifests(name: str, image: str, replicas: int = 2, port: int = 8080,
              cpu: str = "1", memory: str = "1Gi", max_replicas: int = 10,
              target_cpu_percent: int = 70) -> list[dict[str, Any]]:
    """Deployment, Service and HorizontalPodAutoscaler for ``image`` (serving on ``port``)."""
    _check_name(name)
    if replicas < 1 or max_replicas < replicas:
        raise ValueError(f"need 1 <= replicas <= max_replicas, got {replicas} and {max_replicas}")
    if not 1 <= target_cpu_percent <= 100:
        raise ValueError(f"target_cpu_percent must be in 1..100, got {target_cpu_percent}")
    labels = {"app.kubernetes.io/name": name}
    probe = lambda path, delay: {"httpGet": {"path": path, "port": port},  # noqa: E731
                                 "initialDelaySeconds": delay, "periodSeconds": 10}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [{
                        "name": "server", "image": image,
                        "ports": [{"containerPort": port, "name": "http"}],
                        "resources": {"requests": {"cpu": cpu, "memory": memory},
                                      "limits": {"cpu": cpu, "memory": memory}},
                        "readinessProbe": probe("/ready", 5),
                        "livenessProbe": probe("/health", 15),
                    }],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": port, "name": "http"}]},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas, "maxReplicas": max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization",
                                          "averageUtilization": target_cpu_percent}}}],
        },
    }
    return [deployment, service, autoscaler]


def kserve_inference_service(name: str, storage_uri: str, canary_storage_uri: str | None = None,
                             canary_traffic_percent: int = 10) -> dict[str, Any]:
    """A KServe ``InferenceService`` with a custom predictor; with a canary URI, the new
    version gets ``canary_traffic_percent`` of the traffic (KServe's canary rollout)."""
    _check_name(name)
    if not 0 <= canary_traffic_percent <= 100:
        raise ValueError(f"canary_traffic_percent must be in 0..100, got "
                         f"{canary_traffic_percent}")
    predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "pytorch"},
                                           "storageUri": canary_storage_uri or storage_uri}}
    if canary_storage_uri:
        predictor["canaryTrafficPercent"] = canary_traffic_percent
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name}, "spec": {"predictor": predictor}}


def validate(docs: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> list[str]:
    """Errors of each built-in manifest against Kubernetes ``version``'s schemas (strict);
    an empty list when all are valid. Custom resources (KServe) are not covered here."""
    import kubernetes_validate

    errors = []
    for doc in docs:
        where = f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = "/".join(str(p) for p in err.path)
            errors.append(f"{where}: {err.message} (at {path or 'top level'})")
        except kubernetes_validate.SchemaNotFoundError as err:
            errors.append(f"{where}: no schema for it in Kubernetes {version}: {err}")
    return errors


def kubectl_commands(path: str = "k8s/") -> list[str]:
    """What a user with a cluster runs to apply and watch the manifests."""
    return [f"kubectl apply -f {path}", "kubectl rollout status deployment",
            "kubectl get hpa --watch"]
