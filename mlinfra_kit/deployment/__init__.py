"""Deployment targets for the same served model.

- compute engine: :func:`run_workers` (uvicorn worker processes on one machine);
- container: :func:`dockerfile`, :func:`write_build_context`, :func:`problems`;
- Kubernetes: :func:`manifests`, :func:`kserve_inference_service`, :func:`validate`;
- serverless: :func:`make_handler` (an AWS Lambda handler through Mangum), API Gateway
  event builders, :func:`measure_cold_start`, :func:`sam_template`, :func:`lint_template`,
  :func:`package_size_bytes`; Google Cloud Functions in
  :mod:`mlinfra_kit.deployment.cloud_functions` (imported on its own: it needs
  ``functions-framework``).
"""

from mlinfra_kit.deployment.container import (
    build_image,
    docker_available,
    dockerfile,
    problems,
    write_build_context,
)
from mlinfra_kit.deployment.kubernetes import (
    kserve_inference_service,
    kubectl_commands,
    manifests,
    validate,
)
from mlinfra_kit.deployment.serverless import (
    LAMBDA_LIMITS,
    LAMBDA_RUNTIME,
    api_gateway_v1_event,
    api_gateway_v2_event,
    lint_template,
    make_handler,
    measure_cold_start,
    package_size_bytes,
    sam_template,
)
from mlinfra_kit.deployment.workers import WorkerPool, run_workers

__all__ = [
    "LAMBDA_LIMITS",
    "LAMBDA_RUNTIME",
    "build_image",
    "docker_available",
    "dockerfile",
    "kserve_inference_service",
    "kubectl_commands",
    "lint_template",
    "manifests",
    "package_size_bytes",
    "problems",
    "sam_template",
    "validate",
    "write_build_context",
    "WorkerPool",
    "api_gateway_v1_event",
    "api_gateway_v2_event",
    "make_handler",
    "measure_cold_start",
    "run_workers",
]
