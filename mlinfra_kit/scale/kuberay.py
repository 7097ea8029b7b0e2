"""A KubeRay ``RayCluster``: the manifest that gives the same Ray code a cluster, and a
``RayJob``: a cluster made for one command (a sweep) and removed when it ends.

``RayCluster`` is a custom resource (KubeRay's CRD is not bundled with any validator here),
so :func:`validate_raycluster` checks it in two layers: the RayCluster's own fields against
the names and types KubeRay's ``ray.io/v1`` API defines for them (strict: an unknown
field is an error), and every embedded pod template with the same strict Kubernetes schema
validation as the deployment module's manifests.

Examples
--------
>>> doc = raycluster_manifest("mlinfra", "registry.local/mlinfra:1", workers=2)
>>> [g["replicas"] for g in doc["spec"]["workerGroupSpecs"]]
[2]
>>> validate_raycluster(doc)
[]
"""

from __future__ import annotations

from typing import Any

from mlinfra_kit.deployment.kubernetes import KUBERNETES_VERSION, _check_name

__all__ = [
    "RAY_VERSION",
    "raycluster_manifest",
    "rayjob_manifest",
    "validate_raycluster",
    "validate_rayjob",
]

RAY_VERSION = "2.60.0"

# The RayCluster fields this kit writes, as KubeRay's ray.io/v1 API names and types them.
_SPEC_FIELDS = {
    "rayVersion": str,
    "enableInTreeAutoscaling": bool,
    "headGroupSpec": dict,
    "workerGroupSpecs": list,
}
_HEAD_FIELDS = {"rayStartParams": dict, "serviceType": str, "template": dict}
_WORKER_FIELDS = {
    "groupName": str,
    "replicas": int,
    "minReplicas": int,
    "maxReplicas": int,
    "rayStartParams": dict,
    "template": dict,
}


def _pod_template(
    image: str, cpu: str, memory: str, ports: list[dict], claim: str | None, mount: str
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "ray",
        "image": image,
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu, "memory": memory},
        },
    }
    if ports:
        container["ports"] = ports
    spec: dict[str, Any] = {"containers": [container]}
    if claim:  # a folder every pod of the cluster shares (a sweep's DIR)
        container["volumeMounts"] = [{"name": "shared", "mountPath": mount}]
        spec["volumes"] = [{"name": "shared", "persistentVolumeClaim": {"claimName": claim}}]
    return {"spec": spec}


def raycluster_manifest(
    name: str,
    image: str,
    workers: int = 2,
    max_workers: int = 4,
    cpu: str = "2",
    memory: str = "4Gi",
    shared_claim: str | None = None,
    mount: str = "/runs",
) -> dict[str, Any]:
    """A ``RayCluster`` with one head and ``workers`` worker pods (autoscaling up to
    ``max_workers``) running ``image`` (the kit installed with its ``scale`` extra); with
    ``shared_claim``, every pod mounts that PersistentVolumeClaim at ``mount``."""
    _check_name(name)
    if not 0 <= workers <= max_workers or max_workers < 1:
        raise ValueError(
            f"need 0 <= workers <= max_workers and max_workers >= 1, got {workers}, {max_workers}"
        )
    head_ports = [
        {"containerPort": 6379, "name": "gcs"},
        {"containerPort": 8265, "name": "dashboard"},
        {"containerPort": 10001, "name": "client"},
        {"containerPort": 8000, "name": "serve"},
    ]
    return _document(
        "RayCluster",
        name,
        {
            "rayVersion": RAY_VERSION,
            "enableInTreeAutoscaling": True,
            "headGroupSpec": {
                "rayStartParams": {"dashboard-host": "0.0.0.0"},
                "template": _pod_template(image, cpu, memory, head_ports, shared_claim, mount),
            },
            "workerGroupSpecs": [
                {
                    "groupName": "workers",
                    "replicas": workers,
                    "minReplicas": 0,
                    "maxReplicas": max_workers,
                    "rayStartParams": {},
                    "template": _pod_template(image, cpu, memory, [], shared_claim, mount),
                }
            ],
        },
    )


def _document(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A KubeRay resource of ``kind``: the ``ray.io/v1`` envelope around ``spec``."""
    return {"apiVersion": "ray.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def _check_fields(obj: Any, fields: dict[str, type], where: str, errors: list[str]) -> None:
    if not isinstance(obj, dict):
        errors.append(f"{where}: expected an object, got {type(obj).__name__}")
        return
    for key, value in obj.items():
        if key not in fields:
            errors.append(f"{where}: unknown field {key!r}")
        elif not isinstance(value, fields[key]) or (fields[key] is int and isinstance(value, bool)):
            errors.append(f"{where}.{key}: expected {fields[key].__name__}, got {value!r}")


def _check_template(template: Any, where: str, version: str, errors: list[str]) -> None:
    import kubernetes_validate

    doc = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "template"},
        "template": template,
    }
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = "/".join(str(p) for p in list(err.path)[1:])
        errors.append(f"{where}: {err.message} (at {path or 'top level'})")


def validate_raycluster(doc: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """Errors of a ``RayCluster`` manifest (empty when valid); see the module docstring."""
    errors = _check_kind(doc, "RayCluster")
    if not errors:
        _check_cluster_spec(doc.get("spec", {}), "spec", version, errors)
    return errors


def _check_kind(doc: dict[str, Any], kind: str) -> list[str]:
    if doc.get("apiVersion") != "ray.io/v1" or doc.get("kind") != kind:
        return [
            f"expected apiVersion ray.io/v1, kind {kind}; got {doc.get('apiVersion')!r}"
            f", {doc.get('kind')!r}"
        ]
    errors: list[str] = []
    _check_fields(
        doc, {"apiVersion": str, "kind": str, "metadata": dict, "spec": dict}, kind, errors
    )
    return errors


def _check_cluster_spec(spec: Any, where: str, version: str, errors: list[str]) -> None:
    _check_fields(spec, _SPEC_FIELDS, where, errors)
    if not isinstance(spec, dict):
        return
    if "headGroupSpec" not in spec:
        errors.append(f"{where}: headGroupSpec is required")
    head = spec.get("headGroupSpec", {})
    _check_fields(head, _HEAD_FIELDS, f"{where}.headGroupSpec", errors)
    _check_template(head.get("template", {}), f"{where}.headGroupSpec.template", version, errors)
    for i, group in enumerate(spec.get("workerGroupSpecs", [])):
        at = f"{where}.workerGroupSpecs[{i}]"
        _check_fields(group, _WORKER_FIELDS, at, errors)
        _check_template(group.get("template", {}), f"{at}.template", version, errors)
        counts = (
            [group.get(k, 0) for k in ("minReplicas", "replicas", "maxReplicas")]
            if isinstance(group, dict)
            else []
        )
        if all(type(c) is int for c in counts) and counts != sorted(counts):
            errors.append(f"{at}: need minReplicas <= replicas <= maxReplicas")


def rayjob_manifest(
    name: str,
    image: str,
    entrypoint: str,
    workers: int = 2,
    max_workers: int = 4,
    shared_claim: str | None = "mlinfra-runs",
    mount: str = "/runs",
    deadline_s: int = 3600,
) -> dict[str, Any]:
    """A KubeRay ``RayJob``: a :func:`raycluster_manifest` cluster made for one command
    (``entrypoint``, run on the head once the cluster is up) and removed when it ends; every
    pod mounts ``shared_claim`` at ``mount`` (a sweep's DIR must be seen by every node).

    >>> job = rayjob_manifest("sweep-03", "registry.local/mlinfra:1",
    ...     "mlinfra sweep 03 --quick --seeds 0-9 --ray auto --out /runs/03")
    >>> job["spec"]["entrypoint"].split()[:3], validate_rayjob(job)
    (['mlinfra', 'sweep', '03'], [])
    """
    if not entrypoint.strip():
        raise ValueError("a RayJob needs an entrypoint: the command it runs")
    if deadline_s < 1:
        raise ValueError(f"deadline_s must be at least 1, got {deadline_s}")
    cluster = raycluster_manifest(
        name, image, workers, max_workers, shared_claim=shared_claim, mount=mount
    )
    return _document(
        "RayJob",
        name,
        {
            "entrypoint": entrypoint,
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 600,
            "activeDeadlineSeconds": deadline_s,
            "rayClusterSpec": cluster["spec"],
        },
    )


_JOB_FIELDS = {
    "entrypoint": str,
    "shutdownAfterJobFinishes": bool,
    "ttlSecondsAfterFinished": int,
    "activeDeadlineSeconds": int,
    "submissionMode": str,
    "runtimeEnvYAML": str,
    "rayClusterSpec": dict,
}


def validate_rayjob(doc: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """Errors of a ``RayJob`` manifest (empty when valid): its own fields as KubeRay's
    ``ray.io/v1`` names and types them, and its ``rayClusterSpec`` as a RayCluster's."""
    errors = _check_kind(doc, "RayJob")
    if errors:
        return errors
    spec = doc.get("spec", {})
    _check_fields(spec, _JOB_FIELDS, "spec", errors)
    if not str(spec.get("entrypoint", "")).strip():
        errors.append("spec: entrypoint is required")
    if spec.get("submissionMode", "K8sJobMode") not in {"K8sJobMode", "HTTPMode", "SidecarMode"}:
        errors.append(f"spec.submissionMode: unknown mode {spec['submissionMode']!r}")
    if "rayClusterSpec" not in spec:
        errors.append("spec: rayClusterSpec is required")
    else:
        _check_cluster_spec(spec["rayClusterSpec"], "spec.rayClusterSpec", version, errors)
    return errors
