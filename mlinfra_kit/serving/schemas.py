"""The server's request and answer bodies, and its error bodies, as pydantic models.

The request models are built per server (:func:`request_models`), since their limits are
settings; the answer models document the routes in the OpenAPI spec. Every server of the
kit (``mlinfra serve``, the Ray Serve deployment) validates with the same models, so it
rejects the same input the same way: a 422 naming each field at fault
(:func:`validation_errors`).

Examples
--------
>>> ProjectIn, BatchIn = request_models(max_chars=100, max_items=8)
>>> ProjectIn(title="YOLO on a webcam").description
''
"""

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import to_json

from mlinfra_kit.serving.limits import NON_BLANK, excerpt, safe_text

__all__ = [
    "BODY_ERRORS",
    "BatchOut",
    "FieldError",
    "JsonAnswer",
    "JsonBody",
    "MessageOut",
    "ModelIn",
    "PredictionOut",
    "StoredOut",
    "SwapOut",
    "ValidationErrorOut",
    "inline_refs",
    "request_models",
    "validation_errors",
]


class MessageOut(BaseModel):
    """An error: what went wrong and what to do."""

    detail: str


class FieldError(BaseModel):
    """One field at fault: where (``loc``), why (``msg``, ``type``) and a short excerpt
    of what was sent (``input``, at most a few dozen characters, JSON-safe)."""

    loc: list[str | int]
    msg: str
    type: str
    input: str | None = None


class ValidationErrorOut(BaseModel):
    """422: every field at fault."""

    detail: list[FieldError]


def _loc(part: Any) -> str | int:
    return part if isinstance(part, int) and not isinstance(part, bool) else safe_text(part)


def validation_errors(errors: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's validation errors as a short JSON body that always encodes: each field's
    location, message, type and an excerpt of its input (never the whole input)."""
    return {
        "detail": [
            {
                "loc": [_loc(p) for p in e.get("loc", ())],
                "msg": safe_text(e.get("msg", "invalid")),
                "type": safe_text(e.get("type", "value_error")),
                "input": excerpt(e["input"]) if "input" in e else None,
            }
            for e in errors[:20]
        ]
    }


#: The error answers of a route that reads a JSON body, as the OpenAPI spec documents them.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": MessageOut, "description": "the body is not JSON that can be read"},
    413: {"model": MessageOut, "description": "the body is larger than the limit"},
    415: {"model": MessageOut, "description": "a charset other than UTF-8"},
    422: {
        "model": ValidationErrorOut,
        "description": "a field is missing, of the wrong type, blank, too long, or unknown",
    },
    503: {"model": MessageOut, "description": "the model is loading or failed to load"},
}


class ModelIn(BaseModel):
    """The artifact to serve from now on."""

    model_config = ConfigDict(extra="forbid")
    path: Annotated[StrictStr, StringConstraints(min_length=1, max_length=4096)]


class SwapOut(BaseModel):
    model_version: str
    previous_version: str


class PredictionOut(BaseModel):
    tag: str
    probabilities: dict[str, float]
    model_version: str


class BatchOut(BaseModel):
    predictions: list[PredictionOut]
    model_version: str


class StoredOut(PredictionOut):
    id: str
    created_at: float
    age_s: float


def request_models(max_chars: int, max_items: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """The request bodies ``(ProjectIn, BatchIn)`` with these limits: one definition, so
    every server of the kit (this one, Ray Serve's) rejects the same input the same way."""

    class ProjectIn(BaseModel):
        """One project to tag: a non-empty title and an optional description."""

        model_config = ConfigDict(extra="forbid")
        title: Annotated[
            StrictStr,
            StringConstraints(min_length=1, max_length=max_chars, pattern=NON_BLANK),
        ]
        description: Annotated[StrictStr, StringConstraints(max_length=max_chars)] = ""

    class BatchIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        projects: Annotated[list[ProjectIn], Field(min_length=1, max_length=max_items)]

    return ProjectIn, BatchIn


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` written in place: a schema that stands
    alone inside an OpenAPI document (no recursion in these models)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


class JsonBody:
    """A request model read from the raw body in one compiled pass (pydantic-core parses
    and validates the bytes at once: no ``json.loads`` into Python objects first, no
    dependency solving per request). Its errors are FastAPI's: a ``RequestValidationError``
    with every location under ``body``, so the server's 422 reads the same.

    >>> ProjectIn, _ = request_models(max_chars=100, max_items=8)
    >>> JsonBody(ProjectIn).parse(b'{"title": "YOLO on a webcam"}').title
    'YOLO on a webcam'
    """

    def __init__(self, model: Any):  # a model class, or a union of them
        self.model = model
        self._adapter: TypeAdapter[Any] = TypeAdapter(model)

    def parse(self, raw: bytes) -> Any:
        try:
            return self._adapter.validate_json(raw)
        except ValidationError as err:
            errors = [dict(e, loc=("body", *e["loc"])) for e in err.errors(include_url=False)]
            raise RequestValidationError(errors) from None

    def openapi(self) -> dict[str, Any]:
        """The request body as the OpenAPI spec documents it (``openapi_extra``)."""
        schema = inline_refs(self._adapter.json_schema())
        return {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        }


class JsonAnswer(JSONResponse):
    """A JSON response encoded in compiled code (pydantic-core's ``to_json``: about 0.4 µs
    for an answer, where ``json.dumps`` takes 2.5 µs)."""

    def render(self, content: Any) -> bytes:
        return to_json(content)
