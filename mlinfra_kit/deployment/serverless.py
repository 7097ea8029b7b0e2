"""Serverless: the same FastAPI app as an AWS Lambda function, through Mangum.

A Lambda function is a process the platform starts on the first request (a *cold start*:
imports, model load, first request) and reuses while requests keep coming (*warm*). The
handler here loads the model during start-up, not in the background (there is no "later"
in a function), rejects bodies over Lambda's synchronous payload limit with a clear 413
before any work, and is invoked in-process with real API Gateway event payloads.

Examples
--------
>>> event = api_gateway_v2_event("GET", "/health")
>>> event["requestContext"]["http"]["method"], event["rawPath"]
('GET', '/health')
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlinfra_kit.artifacts import check_quantize
from mlinfra_kit.serving.config import ServerConfig

__all__ = [
    "LAMBDA_LIMITS",
    "LAMBDA_RUNTIME",
    "api_gateway_v1_event",
    "api_gateway_v2_event",
    "handler",
    "lint_template",
    "make_handler",
    "measure_cold_start",
    "package_size_bytes",
    "sam_template",
]

#: AWS Lambda's documented limits (bytes), which decide how a model can be packaged.
LAMBDA_LIMITS = {
    "zip_unzipped_bytes": 250 * 1024 * 1024,
    "container_image_bytes": 10 * 1024**3,
    "sync_payload_bytes": 6 * 1024 * 1024,
}


def _headers(body: str | None) -> dict[str, str]:
    headers = {"host": "lambda.local", "user-agent": "mlinfra-kit"}
    if body is not None:
        headers["content-type"] = "application/json"
    return headers


def api_gateway_v2_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as Lambda receives it."""
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": _headers(text),
        "isBase64Encoded": False,
        "body": text,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "lambda.local",
            "domainPrefix": "lambda",
            "requestId": "local",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "mlinfra-kit",
            },
        },
    }


def api_gateway_v1_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An API Gateway REST API (payload format 1.0, proxy integration) event."""
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    headers = _headers(text)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "isBase64Encoded": False,
        "body": text,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "local",
            "protocol": "HTTP/1.1",
            "domainName": "lambda.local",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "mlinfra-kit"},
        },
    }


def _too_large(event: dict[str, Any], limit: int) -> dict[str, Any]:
    detail = json.dumps(
        {
            "detail": f"request body is larger than {limit} bytes, Lambda's "
            "synchronous payload limit; send fewer or shorter projects"
        }
    )
    response = {
        "statusCode": 413,
        "headers": {"content-type": "application/json"},
        "body": detail,
        "isBase64Encoded": False,
    }
    if "version" not in event:  # REST API responses also carry multi-value headers
        response["multiValueHeaders"] = {"content-type": ["application/json"]}
    return response


def make_handler(
    model: ServerConfig | str | os.PathLike, **settings: Any
) -> Callable[[dict, Any], dict]:
    """A Lambda handler ``handler(event, context)`` serving ``model`` (an artifact path or
    a :class:`ServerConfig`, with any field overridden by ``settings``).

    The model loads here, synchronously: in Lambda this runs in the init phase, once per
    instance (part of the cold start), not on every invocation. Mangum's per-invocation
    lifespan is therefore off. Dynamic batching is off too: an instance serves one request
    at a time, so there is nothing to batch. Called where an event loop already runs (a
    notebook), each invocation runs on a helper thread, as Mangum needs a loop of its own.
    """
    from mangum import Mangum

    from mlinfra_kit.serving.app import create_app, load_now

    if not isinstance(model, ServerConfig):  # a function's defaults, where none were given
        settings = {
            "batching": False,
            "load_in_background": False,
            "max_body_bytes": LAMBDA_LIMITS["sync_payload_bytes"],
            **settings,
        }
    config = ServerConfig.of(model, **settings)
    limit = min(config.max_body_bytes, LAMBDA_LIMITS["sync_payload_bytes"])
    app = create_app(ServerConfig.of(config, max_body_bytes=limit))
    load_now(app)
    adapter = Mangum(app, lifespan="off")

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        body = event.get("body") or ""
        if len(body.encode() if isinstance(body, str) else body) > limit:
            return _too_large(event, limit)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return adapter(event, context)
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(_with_own_loop, adapter, event, context).result()

    return handler


def _with_own_loop(adapter: Callable, event: dict, context: Any) -> dict:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return adapter(event, context)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


_handler: Callable | None = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The entry point a deployment names (``mlinfra_kit.deployment.serverless.handler``):
    serves the artifact at ``$MLINFRA_MODEL``, built on the first call of the instance."""
    global _handler
    if _handler is None:
        model = os.environ.get("MLINFRA_MODEL")
        if not model:
            raise RuntimeError("set MLINFRA_MODEL to the model artifact folder")
        _handler = make_handler(model)
    return _handler(event, context)


def measure_cold_start(
    model: str | os.PathLike, warm_calls: int = 200, quantize: str | None = None
) -> dict[str, Any]:
    """Time a cold start in a fresh Python process (imports, model load, first request),
    then ``warm_calls`` warm invocations in the same process, the handler called directly
    (no HTTP). ``quantize="int8"`` serves the dynamic int8 model (converted during the cold
    start, as a function would). Returns ``cold_s``, ``warm_s`` (a list), the first
    answer's ``status`` and the process's ``peak_rss_mb`` (what the function's memory
    setting must cover)."""
    from mlinfra_kit.services import python_json

    check_quantize(quantize)
    args = [str(model), str(warm_calls), quantize or ""]
    script = Path(__file__).with_name("cold_start.py")
    return python_json(script=script, args=args, what="the cold-start process")


#: A supported Lambda Python runtime (python3.11 is deprecated for new functions since
#: 2026-06-30, and cfn-lint says so).
LAMBDA_RUNTIME = "python3.12"


def sam_template(
    package: str = "image",
    memory_mb: int = 2048,
    timeout_s: int = 30,
    image_uri: str = "000000000000.dkr.ecr.eu-west-1.amazonaws.com/tag:1",
) -> str:
    """An AWS SAM template (``AWS::Serverless::Function`` behind an HTTP API).

    ``package="image"`` ships a container image (up to 10 GB: room for torch);
    ``package="zip"`` a zip archive (250 MB unzipped: too small for CPU torch, which alone
    is about 750 MB; kept to show the limit).
    """
    if package not in ("image", "zip"):
        raise ValueError(f"package must be 'image' or 'zip', got {package!r}")
    if not 128 <= memory_mb <= 10240 or not 1 <= timeout_s <= 900:
        raise ValueError("memory_mb must be in 128..10240 and timeout_s in 1..900")
    if package == "image":
        code = f"      PackageType: Image\n      ImageUri: {image_uri}\n"
    else:
        code = (
            f"      Runtime: {LAMBDA_RUNTIME}\n      CodeUri: build/\n"
            "      Handler: mlinfra_kit.deployment.serverless.handler\n"
        )
    return f"""\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: mlinfra-kit tag prediction as a Lambda function behind an HTTP API
Resources:
  TagPredictionFunction:
    Type: AWS::Serverless::Function
    Properties:
{code}      MemorySize: {memory_mb}
      Timeout: {timeout_s}
      Environment:
        Variables:
          MLINFRA_MODEL: /var/task/model
      Events:
        Api:
          Type: HttpApi
Outputs:
  Endpoint:
    Value: !Sub "https://${{ServerlessHttpApi}}.execute-api.${{AWS::Region}}.amazonaws.com"
"""


def lint_template(text: str) -> list[str]:
    """cfn-lint's findings on a CloudFormation/SAM template (empty: it passes)."""
    import cfnlint.api

    return [f"{m.rule.id}: {m.message}" for m in cfnlint.api.lint(text, regions=["eu-west-1"])]


#: File names only a GPU build of torch carries.
_GPU_ONLY = re.compile(r"cuda|cudnn|nccl|nvrtc|nvshmem|cublas|cusparse|cufft|curand|cusolver|nvjit")


def package_size_bytes(
    distributions: tuple[str, ...] = (
        "torch",
        "numpy",
        "fastapi",
        "pydantic",
        "starlette",
        "mangum",
    ),
    extra_paths: tuple[str | os.PathLike, ...] = (),
    gpu_libraries: bool = True,
) -> dict[str, int]:
    """Bytes each installed distribution (and each extra path, e.g. the model) takes on
    disk: what a deployment package must carry.

    ``gpu_libraries=False`` leaves out the files only a GPU build carries (``libtorch_cuda``,
    NCCL, cuDNN...): an estimate of the CPU wheel a CPU image installs, measured from a
    CUDA build of torch."""
    from importlib import metadata
    from pathlib import Path

    sizes = {}
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ValueError(f"{name} is not installed") from None
        total = 0
        for f in dist.files or ():
            path = Path(dist.locate_file(f))
            if not gpu_libraries and _GPU_ONLY.search(path.name):
                continue
            if path.is_file():
                total += path.stat().st_size
        sizes[name] = total
    for extra in extra_paths:
        path = Path(extra)
        if not path.exists():
            raise ValueError(f"{path} does not exist")
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        sizes[str(path)] = sum(p.stat().st_size for p in files)
    return sizes
