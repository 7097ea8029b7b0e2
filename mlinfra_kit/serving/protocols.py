"""The open inference protocols on the kit's server, so one image runs where others expect them.

- **Open Inference Protocol v2** (KServe, Seldon's MLServer and Triton speak it):
  ``GET /v2``, ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2/models/{name}``,
  ``GET /v2/models/{name}/ready`` and ``POST /v2/models/{name}/infer``. The model takes one
  ``BYTES`` input (each element a project's text: its title, a space, its description) and
  answers two outputs: ``tag`` (``BYTES``, one per text) and ``probabilities`` (``FP32``,
  ``[n, tags]``, in the order of the model's metadata). Errors answer as the protocol says:
  400 (404 for an unknown model, 503 while loading) with ``{"error": "..."}``. Inputs may
  come as JSON or in the binary tensor extension (Triton's clients send that by default);
  outputs are always JSON, which those clients read as well.
- **SageMaker's container contract**: ``GET /ping`` (200 once the model is loaded) and
  ``POST /invocations`` with one project, or ``{"instances": [project, ...]}``; the port
  comes from the environment (:func:`port_from_env`).

Both go through the same batcher and cache as ``POST /predict``: the same answers, the same
limits.

Examples
--------
>>> v2_request(["YOLO on a webcam"])["inputs"][0]["datatype"]
'BYTES'
"""

import json
import math
import os
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from mlinfra_kit.serving.config import workers_loaded
from mlinfra_kit.serving.limits import (
    NON_BLANK,
    cut,
    encodable,
    excerpt,
    loads_bounded,
    safe_text,
)
from mlinfra_kit.serving.schemas import BODY_ERRORS, JsonAnswer, JsonBody, inline_refs

#: The model's name on the v2 routes.
V2_MODEL_NAME = "tag-classifier"
#: The input the v2 model takes, and the outputs it answers.
V2_INPUT = "text"
V2_OUTPUTS = ("tag", "probabilities")
#: Where a platform says which port to listen on: SageMaker's multi-container variable,
#: then the common ``PORT`` (Cloud Run, Cloud Functions and most PaaS).
PORT_VARIABLES = ("SAGEMAKER_BIND_TO_PORT", "PORT")

__all__ = [
    "PORT_VARIABLES",
    "V2_MODEL_NAME",
    "add_open_protocols",
    "port_from_env",
    "v2_request",
]


def port_from_env(default: int = 8000) -> int:
    """The port the platform asks for (:data:`PORT_VARIABLES`), else ``default``; a value
    that is not a port is a ``ValueError`` naming the variable."""
    for name in PORT_VARIABLES:
        value = os.environ.get(name)
        if value:
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise ValueError(f"{name}={value!r} is not a port number (1-65535)")
            return int(value)
    return default


def v2_request(texts: list[str], request_id: str | None = None) -> dict[str, Any]:
    """A v2 ``infer`` body for ``texts`` (for clients without a v2 library)."""
    body: dict[str, Any] = {
        "inputs": [{"name": V2_INPUT, "shape": [len(texts)], "datatype": "BYTES", "data": texts}]
    }
    if request_id is not None:
        body["id"] = request_id
    return body


class V2Error(BaseModel):
    """An error as the v2 protocol answers it."""

    error: str


_UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": V2Error, "description": "no model of that name here"}
}
_LOADING: dict[int | str, dict[str, Any]] = {
    503: {"model": V2Error, "description": "the model is still loading"}
}
_BAD = {400: {"model": V2Error, "description": "the request does not fit the model"}}


#: Longest tensor name, datatype and request id accepted (Triton's own names are far shorter).
V2_MAX_NAME_CHARS = 256

_Name = Field(min_length=1, max_length=V2_MAX_NAME_CHARS)


#: The model's name in a v2 path, documented as the one name this server serves (an
#: unknown name still reaches the route, which answers 404 naming the right one).
_ModelName = Annotated[str, Path(json_schema_extra={"enum": [V2_MODEL_NAME]})]


def _encodable(value: str | None) -> str | None:
    """A string the answer can repeat: UTF-8 encodable (no lone surrogates)."""
    if value is not None and not encodable(value):
        raise ValueError("must be valid Unicode text (it has a lone surrogate)")
    return value


class _V2Input(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = _Name
    shape: list[StrictInt] = Field(min_length=1, max_length=2)
    datatype: StrictStr = _Name
    data: list[StrictStr]
    parameters: dict[str, Any] | None = None


class _V2Output(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = _Name
    parameters: dict[str, Any] | None = None


class _V2Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: StrictStr | None = Field(default=None, max_length=V2_MAX_NAME_CHARS)
    parameters: dict[str, Any] | None = None
    inputs: list[_V2Input] = Field(min_length=1, max_length=1)
    outputs: list[_V2Output] | None = Field(default=None, max_length=len(V2_OUTPUTS))

    _id_encodable = field_validator("id")(_encodable)


def v2_request_schema(max_items: int, max_chars: int) -> dict[str, Any]:
    """The v2 infer body as the OpenAPI spec documents it, with this server's limits: one
    input named ``text`` of datatype ``BYTES`` holding 1 to ``max_items`` non-blank texts,
    and outputs among :data:`V2_OUTPUTS`. (The route reads the body itself, to accept the
    binary tensor extension too, so FastAPI cannot infer it.) What JSON Schema cannot say,
    that ``shape`` counts the elements of ``data``, the route checks (a 400)."""
    schema = inline_refs(_V2Request.model_json_schema())
    tensor = schema["properties"]["inputs"]["items"]["properties"]
    tensor["name"] = {"type": "string", "enum": [V2_INPUT]}
    tensor["datatype"] = {"type": "string", "enum": ["BYTES"]}
    tensor["shape"]["items"] = {"type": "integer", "minimum": 1, "maximum": max_items}
    tensor["data"] |= {
        "minItems": 1,
        "maxItems": max_items,
        "items": {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": NON_BLANK},
    }
    outputs = schema["properties"]["outputs"]["anyOf"][0]
    outputs["items"]["properties"]["name"] = {"type": "string", "enum": list(V2_OUTPUTS)}
    return schema


def _decode_bytes_tensor(chunk: bytes) -> list[str]:
    """A BYTES tensor in the binary extension: each element a 4-byte little-endian length,
    then that many bytes (UTF-8 text here)."""
    items, at = [], 0
    while at < len(chunk):
        if at + 4 > len(chunk):
            raise ValueError("a BYTES element's length is cut short")
        size = int.from_bytes(chunk[at : at + 4], "little")
        end = at + 4 + size
        if end > len(chunk):
            raise ValueError("a BYTES element is longer than the binary data sent")
        items.append(chunk[at + 4 : end].decode("utf-8"))
        at = end
    return items


def _read_v2_body(raw: bytes, header_length: str | None) -> dict[str, Any]:
    """The request's JSON, with inputs sent in the binary tensor extension (the
    ``Inference-Header-Content-Length`` header, as Triton's clients send by default)
    decoded into ``data``. Raises ``ValueError`` saying what is wrong."""
    if header_length is None:
        return _object(loads_bounded(raw))
    if not header_length.isdigit() or int(header_length) > len(raw):
        raise ValueError(
            f"Inference-Header-Content-Length {excerpt(header_length)} does not fit the body"
        )
    n = int(header_length)
    payload, binary, at = _object(loads_bounded(raw[:n])), raw[n:], 0
    inputs = payload.get("inputs")
    for tensor in inputs if isinstance(inputs, list) else ():
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        if type(size) is not int or size < 0 or at + size > len(binary):
            raise ValueError(f"binary_data_size {excerpt(size)} does not fit the binary data sent")
        if tensor.get("datatype") != "BYTES":
            raise ValueError(f"binary input {excerpt(tensor.get('name'))} must be BYTES")
        tensor["data"] = _decode_bytes_tensor(binary[at : at + size])
        at += size
    return payload


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError(
            f"the body must be a JSON object with 'inputs', not {type(payload).__name__}"
        )
    return payload


def _v2_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _first_problem(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(safe_text(p) for p in e["loc"]) or "body"
    return f"{where}: {safe_text(e['msg'])}"


def _check_texts(body: _V2Request, max_items: int, max_chars: int) -> list[str] | str:
    """The texts of a valid request, or what is wrong with it."""
    tensor = body.inputs[0]
    if tensor.name != V2_INPUT:
        return f"unknown input {excerpt(tensor.name)}: the model takes one input, {V2_INPUT!r}"
    if tensor.datatype != "BYTES":
        return f"input {V2_INPUT!r} has datatype {excerpt(tensor.datatype)}; it must be 'BYTES'"
    n = len(tensor.data)
    if math.prod(tensor.shape) != n or tensor.shape[0] != n:
        return f"input {V2_INPUT!r}: shape {tensor.shape} does not match {n} element(s)"
    if not 1 <= n <= max_items:
        return f"input {V2_INPUT!r}: {n} element(s); send 1 to {max_items}"
    for i, text in enumerate(tensor.data):
        if not text.strip():
            return f"input {V2_INPUT!r}: element {i} is blank"
        if len(text) > max_chars:
            return f"input {V2_INPUT!r}: element {i} is longer than {max_chars} characters"
    wanted = [o.name for o in body.outputs or ()]
    unknown = [w for w in wanted if w not in V2_OUTPUTS]
    if unknown:
        return f"unknown output(s) {excerpt(unknown)}: the model answers {list(V2_OUTPUTS)}"
    return list(tensor.data)


def add_open_protocols(app: FastAPI, predictor: Any, project_in: Any) -> None:
    """Register the v2 and SageMaker routes on ``app``, answering through ``predictor``
    (the server's :class:`~mlinfra_kit.serving.predictor.Predictor`: its batcher, cache and
    version rule); ``project_in`` is the server's request model for one project."""
    config = predictor.config
    max_chars = 2 * config.max_text_chars + 1  # a title, a space, a description

    def loaded() -> Any:
        return predictor.model

    @app.get("/v2", tags=["open inference protocol v2"])
    async def v2_server():
        from mlinfra_kit import __version__

        return {"name": "mlinfra-kit", "version": __version__, "extensions": []}

    @app.get("/v2/health/live", tags=["open inference protocol v2"])
    async def v2_live():
        return {"live": True}

    @app.get("/v2/health/ready", tags=["open inference protocol v2"], responses=_LOADING)
    async def v2_ready():
        done, expected = workers_loaded()
        ready = loaded() is not None and done >= expected
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    def unknown(name: str) -> JSONResponse | None:
        if name == V2_MODEL_NAME:
            return None
        return _v2_error(
            404, f"unknown model {excerpt(name)}; this server serves {V2_MODEL_NAME!r}"
        )

    def known(name: str) -> JSONResponse | None:
        if (problem := unknown(name)) is not None:
            return problem
        if loaded() is None:
            return _v2_error(503, f"model {V2_MODEL_NAME!r} is loading; retry when it is ready")
        return None

    @app.get(
        "/v2/models/{name}", tags=["open inference protocol v2"], responses=_UNKNOWN | _LOADING
    )
    async def v2_metadata(name: _ModelName):
        if (problem := known(name)) is not None:
            return problem
        model = loaded()
        return {
            "name": V2_MODEL_NAME,
            "versions": [model.version],
            "platform": "pytorch",
            "inputs": [{"name": V2_INPUT, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": "tag", "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(model.tags)]},
            ],
            "parameters": {"tags": list(model.tags)},
        }

    @app.get(
        "/v2/models/{name}/ready",
        tags=["open inference protocol v2"],
        responses=_UNKNOWN | _LOADING,
    )
    async def v2_model_ready(name: _ModelName):
        if (problem := unknown(name)) is not None:
            return problem
        ready = loaded() is not None
        status = 200 if ready else 503
        return JSONResponse({"name": V2_MODEL_NAME, "ready": ready}, status_code=status)

    @app.post(
        "/v2/models/{name}/infer",
        tags=["open inference protocol v2"],
        responses=_BAD
        | _UNKNOWN
        | _LOADING
        | {k: v for k, v in BODY_ERRORS.items() if k in (413, 415)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": v2_request_schema(config.max_items, max_chars)}
                },
            }
        },
    )
    async def v2_infer(name: _ModelName, request: Request):
        if (problem := known(name)) is not None:
            return problem
        try:
            payload = _read_v2_body(
                await request.body(), request.headers.get("inference-header-content-length")
            )
            body = _V2Request.model_validate(payload)
        except json.JSONDecodeError as err:
            return _v2_error(400, f"the body is not JSON: {err.msg} at position {err.pos}")
        except UnicodeDecodeError:
            return _v2_error(400, "the body is not UTF-8 text")
        except ValidationError as err:
            return _v2_error(400, _first_problem(err))
        except ValueError as err:
            return _v2_error(400, cut(str(err), 300))
        texts = _check_texts(body, config.max_items, max_chars)
        if isinstance(texts, str):
            return _v2_error(400, texts)
        model = loaded()
        answers = await predictor.predict_many(texts)
        tags = list(model.tags)
        outputs = {
            "tag": {
                "name": "tag",
                "datatype": "BYTES",
                "shape": [len(texts)],
                "data": [a["tag"] for a in answers],
            },
            "probabilities": {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [len(texts), len(tags)],
                "data": [a["probabilities"][t] for a in answers for t in tags],
            },
        }
        wanted = [o.name for o in body.outputs] if body.outputs else list(V2_OUTPUTS)
        reply = {
            "model_name": V2_MODEL_NAME,
            "model_version": answers[0]["model_version"],
            "outputs": [outputs[w] for w in wanted],
        }
        if body.id is not None:
            reply["id"] = body.id
        return reply

    class Instances(BaseModel):
        model_config = ConfigDict(extra="forbid")
        instances: list[project_in] = Field(min_length=1, max_length=config.max_items)

    @app.get("/ping", tags=["sagemaker"], responses={503: BODY_ERRORS[503]})
    async def ping():
        """SageMaker's health check: 200 once the model is loaded."""
        predictor.require()
        return {"status": "ok"}

    invocation = JsonBody(project_in | Instances)  # read as /predict's body is: one compiled pass

    @app.post(
        "/invocations",
        tags=["sagemaker"],
        response_model=None,
        responses=BODY_ERRORS,
        openapi_extra=invocation.openapi(),
    )
    async def invocations(request: Request):
        """SageMaker's inference route: one project, or ``{"instances": [...]}``."""
        from mlinfra_kit.data.projects import project_text

        body = invocation.parse(await request.body())
        if isinstance(body, Instances):
            texts = [project_text(p.title, p.description) for p in body.instances]
            return JsonAnswer({"predictions": await predictor.predict_many(texts)})
        answers = await predictor.predict_many([project_text(body.title, body.description)])
        return JsonAnswer(answers[0])
