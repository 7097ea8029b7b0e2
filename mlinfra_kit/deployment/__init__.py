"""Deployment targets for the same served model.

- compute engine: :func:`run_workers` (uvicorn worker processes on one machine);
- serverless: :func:`make_handler` (an AWS Lambda handler through Mangum), API Gateway
  event builders, :func:`measure_cold_start`.
"""

from mlinfra_kit.deployment.serverless import (
    LAMBDA_LIMITS,
    api_gateway_v1_event,
    api_gateway_v2_event,
    make_handler,
    measure_cold_start,
)
from mlinfra_kit.deployment.workers import WorkerPool, run_workers

__all__ = [
    "LAMBDA_LIMITS",
    "WorkerPool",
    "api_gateway_v1_event",
    "api_gateway_v2_event",
    "make_handler",
    "measure_cold_start",
    "run_workers",
]
