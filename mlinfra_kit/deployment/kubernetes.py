"""Kubernetes: manifests for the served model, validated offline.

:func:`manifests` returns a Deployment (resources, readiness probe on ``/ready``, liveness
on ``/health``, rolling updates that never drop below the desired replicas), a Service and
a HorizontalPodAutoscaler; :func:`kserve_inference_service` the KServe equivalent with a
canary share for a second model version. :func:`validate` checks the built-in kinds against
the Kubernetes OpenAPI schemas bundled with ``kubernetes-validate``, and the KServe custom
resource against the typed models of KServe's own Python SDK (both strict: unknown fields
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

__all__ = [
    "KUBERNETES_VERSION",
    "kserve_inference_service",
    "kubectl_commands",
    "manifests",
    "validate",
    "validate_inference_service",
]

KUBERNETES_VERSION = "1.31.0"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_name(name: str) -> None:
    if not _NAME.match(name) or len(name) > 63:
        raise ValueError(
            f"{name!r} is not a valid Kubernetes name: lowercase letters, digits "
            "and '-', at most 63 characters"
        )


def manifests(
    name: str,
    image: str,
    replicas: int = 2,
    port: int = 8080,
    cpu: str = "1",
    memory: str = "1Gi",
    max_replicas: int = 10,
    target_cpu_percent: int = 70,
) -> list[dict[str, Any]]:
    """Deployment, Service and HorizontalPodAutoscaler for ``image`` (serving on ``port``)."""
    _check_name(name)
    if replicas < 1 or max_replicas < replicas:
        raise ValueError(f"need 1 <= replicas <= max_replicas, got {replicas} and {max_replicas}")
    if not 1 <= target_cpu_percent <= 100:
        raise ValueError(f"target_cpu_percent must be in 1..100, got {target_cpu_percent}")
    labels = {"app.kubernetes.io/name": name}

    def probe(path: str, delay: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": port},
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
        }

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [
                        {
                            "name": "server",
                            "image": image,
                            "ports": [{"containerPort": port, "name": "http"}],
                            "resources": {
                                "requests": {"cpu": cpu, "memory": memory},
                                "limits": {"cpu": cpu, "memory": memory},
                            },
                            "readinessProbe": probe("/ready", 5),
                            "livenessProbe": probe("/health", 15),
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": port, "name": "http"}]},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target_cpu_percent},
                    },
                }
            ],
        },
    }
    return [deployment, service, autoscaler]


def kserve_inference_service(
    name: str,
    storage_uri: str,
    canary_storage_uri: str | None = None,
    canary_traffic_percent: int = 10,
) -> dict[str, Any]:
    """A KServe ``InferenceService`` with a custom predictor; with a canary URI, the new
    version gets ``canary_traffic_percent`` of the traffic (KServe's canary rollout)."""
    _check_name(name)
    if not 0 <= canary_traffic_percent <= 100:
        raise ValueError(f"canary_traffic_percent must be in 0..100, got {canary_traffic_percent}")
    predictor: dict[str, Any] = {
        "model": {
            "modelFormat": {"name": "pytorch"},
            "storageUri": canary_storage_uri or storage_uri,
        }
    }
    if canary_storage_uri:
        predictor["canaryTrafficPercent"] = canary_traffic_percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": predictor},
    }


def validate(docs: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> list[str]:
    """Errors of each manifest, an empty list when all are valid: built-in kinds against
    Kubernetes ``version``'s schemas, KServe's ``InferenceService`` with
    :func:`validate_inference_service`. Both strict: an unknown field is an error."""
    import kubernetes_validate

    errors = []
    for doc in docs:
        where = f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"
        if str(doc.get("apiVersion", "")).startswith("serving.kserve.io/"):
            errors += [f"{where}: {e}" for e in validate_inference_service(doc)]
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = "/".join(str(p) for p in err.path)
            errors.append(f"{where}: {err.message} (at {path or 'top level'})")
        except kubernetes_validate.SchemaNotFoundError as err:
            errors.append(f"{where}: no schema for it in Kubernetes {version}: {err}")
    return errors


# OpenAPI primitive type names used by the generated models, and what JSON values they take.
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (object,),
    "datetime": (str,),
    "date": (str,),
    "bytes": (str,),
    "ResourceQuantity": (str, int, float),
}


def _model_class(type_name: str) -> Any:
    import kserve.models
    import kubernetes.client.models

    for module in (kserve.models, kubernetes.client.models):
        cls = getattr(module, type_name, None)
        if cls is not None and hasattr(cls, "attribute_map"):
            return cls
    return None


def _check_typed(value: Any, type_name: str, path: str, errors: list[str]) -> None:
    """Recursively check ``value`` against a generated OpenAPI model type (KServe's models
    spell containers ``list[X]``, the Kubernetes client's ``List[X]``)."""
    if type_name.startswith(("list[", "List[")):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check_typed(item, type_name[5:-1], f"{path}[{i}]", errors)
    elif type_name.startswith(("dict(", "Dict[")):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return
        inner = type_name[5:-1].split(", ", 1)[1]
        for key, item in value.items():
            _check_typed(item, inner, f"{path}.{key}", errors)
    elif type_name in _PRIMITIVES:
        kinds = _PRIMITIVES[type_name]
        wrong_bool = isinstance(value, bool) and bool not in kinds and object not in kinds
        if wrong_bool or not isinstance(value, kinds):
            errors.append(f"{path}: expected {type_name}, got {value!r}")
    else:
        cls = _model_class(type_name)
        if cls is None:
            errors.append(f"{path}: no model for type {type_name} in kserve or kubernetes")
        elif not isinstance(value, dict):
            errors.append(f"{path}: expected an object ({type_name}), got {value!r}")
        else:
            attributes = {key: attr for attr, key in cls.attribute_map.items()}
            found = len(errors)
            for key, item in value.items():
                if key not in attributes:
                    errors.append(f"{path}: unknown field {key!r} for {type_name}")
                else:
                    _check_typed(item, cls.openapi_types[attributes[key]], f"{path}.{key}", errors)
            if len(errors) > found:  # reported below this level already
                return
            try:  # the generated constructor enforces required fields and enum values
                cls(**{attributes[k]: v for k, v in value.items() if k in attributes})
            except ValueError as err:  # pydantic's errors too: they span several lines
                errors.append(f"{path}: " + "; ".join(str(err).splitlines()[:3]))


def validate_inference_service(doc: dict[str, Any]) -> list[str]:
    """Errors of a KServe ``InferenceService`` against the typed models of KServe's Python
    SDK (``kserve.models``, with ``kubernetes.client.models`` for the embedded core types):
    unknown fields, wrong types, missing required fields. An empty list when valid.

    The SDK is installed with the ``dev`` extra (``pip install kserve``)."""
    if doc.get("apiVersion") != "serving.kserve.io/v1beta1" or doc.get("kind") != (
        "InferenceService"
    ):
        return [
            f"expected apiVersion serving.kserve.io/v1beta1, kind InferenceService; got "
            f"{doc.get('apiVersion')!r}, {doc.get('kind')!r}"
        ]
    errors: list[str] = []
    _check_typed(doc, "V1beta1InferenceService", "InferenceService", errors)
    if "spec" not in doc:
        errors.append("InferenceService: spec is required")
    return errors


def kubectl_commands(path: str = "k8s/") -> list[str]:
    """What a user with a cluster runs to apply and watch the manifests."""
    return [
        f"kubectl apply -f {path}",
        "kubectl rollout status deployment",
        "kubectl get hpa --watch",
    ]
