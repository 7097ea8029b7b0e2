"""The server's configuration: one dataclass, the single source of every setting.

Every way of starting the server reads it: ``mlinfra serve`` builds its flags and
defaults from its fields (:func:`add_arguments`, :meth:`ServerConfig.from_args`),
:func:`~mlinfra_kit.serving.run_server` and
:func:`~mlinfra_kit.deployment.run_workers` hand it to the server process as JSON in one
environment variable (:meth:`ServerConfig.to_env`), and
:func:`~mlinfra_kit.deployment.make_handler` builds the app from it directly. A new
setting is a new field here, and every entry point has it.

Importing this module imports neither torch nor FastAPI.

Examples
--------
>>> config = ServerConfig.of("artifacts/tag-classifier", max_wait_ms=1.0)
>>> config.max_wait_ms, config.batching
(1.0, True)
>>> ServerConfig.from_env(config.to_env()) == config
True
>>> ServerConfig.of(config, batching=False).batching
False
>>> ServerConfig.of(config, max_wait=1)
Traceback (most recent call last):
...
ValueError: unknown server setting(s) ['max_wait']; the settings are: model, store, ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import typing
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from mlinfra_kit.artifacts import QUANTIZE_MODES, check_quantize

__all__ = [
    "APP_FACTORY",
    "CONFIG_ENV",
    "READY_DIR_ENV",
    "WORKERS_ENV",
    "ServerConfig",
    "add_arguments",
    "workers_env",
    "workers_loaded",
]

#: The environment variable that carries a :class:`ServerConfig` (JSON) to a server process.
CONFIG_ENV = "MLINFRA_SERVER_CONFIG"
#: The app factory (``module:function``) a server process imports: it builds the app from
#: the config in :data:`CONFIG_ENV` (uvicorn's workers and Granian call it).
APP_FACTORY = "mlinfra_kit.serving.app:app_from_env"


def _setting(
    default: Any, help: str, metavar: str | None = None, repr: bool = True, **cli: Any
) -> Any:
    return field(default=default, repr=repr, metadata={"help": help, "metavar": metavar, **cli})


@dataclass(frozen=True)
class ServerConfig:
    """Everything a model server is configured with.

    ``model`` is the artifact folder; every other field has the default ``mlinfra serve``
    uses. Build one from a model path and overrides with :meth:`of`.
    """

    model: str = field(
        metadata={"help": "model artifact folder (weights.pt + metadata.json)", "metavar": "PATH"}
    )
    store: str | None = _setting(
        None, "prediction store for GET /predictions/{id}: sqlite:PATH or redis://...", "URL"
    )
    batching: bool = _setting(
        True, "merge concurrent requests into one model call", no_help="one model call per request"
    )
    max_batch_size: int = _setting(32, "most requests merged into one model call", "N")
    max_wait_ms: float = _setting(2.0, "longest a request waits for others to batch with", "MS")
    adaptive_batching: bool = _setting(
        True,
        "close a batch as soon as no more requests are waiting (a lone request never waits)",
        no_help="wait the full max_wait_ms for stragglers",
    )
    cache_size: int = _setting(0, "LRU cache of N recent inputs (0: off)", "N")
    #: POST /predict answered by a middleware in front of FastAPI (its routing, request
    #: object and exception layers skipped); any body it cannot answer goes on to the route.
    fast_route: bool = _setting(
        True,
        "answer a valid POST /predict before FastAPI's routing (the framework's work skipped)",
        no_help="every request through FastAPI's routing (to measure what the fast route saves)",
    )
    #: A model call of a few texts (a lone request, or a small batch) runs the network's
    #: forward pass in NumPy from the model's own weights
    #: (:func:`~mlinfra_kit.serving.predictor.numpy_proba`), where the network has a NumPy
    #: twin; larger batches, and quantized or GPU models, run in torch.
    numpy_max_batch: int = _setting(
        8,
        "model calls of at most N texts run the forward pass in NumPy, skipping torch's "
        "fixed cost per operator (0: every call in torch)",
        "N",
    )
    max_items: int = _setting(256, "most projects in one /predict/batch request", "N")
    max_text_chars: int = _setting(5000, "longest title or description accepted", "N")
    max_body_bytes: int = _setting(1_000_000, "larger request bodies get 413", "BYTES")
    #: Bounds on one request's head, checked while it is read (a million header lines would
    #: otherwise all be kept before the app sees the request): browsers and proxies send a
    #: few dozen lines; 32 KB is nginx's default header buffers.
    max_headers: int = _setting(100, "requests with more header lines get 431", "N")
    max_header_bytes: int = _setting(
        32 * 1024, "requests with more bytes of header names and values get 431", "BYTES"
    )
    max_url_bytes: int = _setting(8 * 1024, "longer request targets (path, query) get 414", "BYTES")
    device: str = _setting("cpu", "cpu, cuda, cuda:N or auto")
    #: torch intra-op threads. 1 by default: a server runs many tiny model calls, and idle
    #: intra-op threads spin between them on the cores the event loop (and clients) need.
    threads: int = _setting(1, "torch intra-op threads (1 is best for many small calls)", "N")
    #: Load the model on a thread, so /health answers at once (a long-running server).
    #: False loads it during start-up, before the first request (a serverless function,
    #: where there is no "later").
    load_in_background: bool = _setting(
        True,
        "load the model on a thread, so /health answers while it loads",
        no_help="load the model before answering any request (as a serverless function does)",
    )
    body_timeout_s: float = _setting(
        30.0, "a client that sends no more of its body for this long gets 408", "S"
    )
    body_deadline_s: float = _setting(
        60.0, "a body not all received this long after its headers gets 408", "S"
    )
    keep_alive_s: int = _setting(5, "close an idle keep-alive connection after this", "S")
    shutdown_timeout_s: int = _setting(
        10, "on SIGTERM, wait at most this long for requests in flight, then exit", "S"
    )
    metrics: bool = _setting(
        True,
        "GET /metrics: Prometheus metrics of requests, batches, tags and unknown words",
        no_help="no /metrics (to measure what the metrics cost)",
    )
    #: The management API (POST /admin/model) answers only requests that carry this token
    #: (``Authorization: Bearer TOKEN``), and only from this machine. None: the API is off,
    #: unless the server is started by ``mlinfra serve`` or ``run_server``, which make one.
    admin_token: str | None = _setting(
        None,
        "token POST /admin/model requires (Authorization: Bearer TOKEN); default: mlinfra "
        "serve makes one and writes it to a file only you can read",
        "TOKEN",
        repr=False,
    )
    #: The management API swaps only to artifacts inside this folder (symlinks resolved).
    model_root: str | None = _setting(
        None, "swap only to artifacts inside this folder (default: the model's parent)", "PATH"
    )
    #: "int8": dynamic int8 linear layers, applied at load (CPU only); None serves fp32.
    quantize: str | None = _setting(
        None,
        "serve dynamic int8 linear layers, converted at load (CPU only)",
        choices=list(QUANTIZE_MODES),
    )

    def __post_init__(self) -> None:
        positive = ("max_batch_size", "max_items", "max_text_chars", "max_body_bytes", "threads")
        for name in (*positive, "max_headers", "max_header_bytes", "max_url_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.cache_size < 0 or self.numpy_max_batch < 0:
            raise ValueError("max_wait_ms, cache_size and numpy_max_batch must be 0 or more")
        for name in ("body_timeout_s", "body_deadline_s", "keep_alive_s", "shutdown_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0, got {getattr(self, name)}")
        check_quantize(self.quantize)
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("admin_token must be at least 16 characters (or None: none)")

    @property
    def models_folder(self) -> str:
        """The folder the management API may swap artifacts from, resolved."""
        root = self.model_root or os.path.dirname(os.path.abspath(self.model))
        return os.path.realpath(root)

    def shown(self) -> dict[str, Any]:
        """This config as a server may show it: no token, no password in the store's URL."""
        from mlinfra_kit.serving.limits import redact_url

        shown = asdict(self)
        shown["store"] = redact_url(self.store)
        shown["admin_token"] = None if self.admin_token is None else "***"
        return shown

    def with_admin_token(self) -> ServerConfig:
        """This config with an admin token: its own, or a fresh random one."""
        import secrets

        if self.admin_token is not None:
            return self
        return replace(self, admin_token=secrets.token_urlsafe(24))

    @classmethod
    def of(cls, model: ServerConfig | str | os.PathLike[str], **overrides: Any) -> ServerConfig:
        """A config from a model path or another config, with ``overrides`` applied;
        an unknown setting is a ``ValueError`` that lists the known ones."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ValueError(
                f"unknown server setting(s) {unknown}; the settings are: {', '.join(names)}"
            )
        if isinstance(model, ServerConfig):
            return replace(model, **overrides)
        return cls(model=str(model), **overrides)

    def to_env(self) -> dict[str, str]:
        """This config as the environment variable :meth:`from_env` reads."""
        return {CONFIG_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServerConfig:
        """The config carried by :data:`CONFIG_ENV` (what a server process starts from)."""
        raw = environ.get(CONFIG_ENV)
        if not raw:
            raise RuntimeError(
                f"{CONFIG_ENV} is not set: it holds the server's config as "
                "JSON (see ServerConfig.to_env)"
            )
        return cls(**json.loads(raw))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServerConfig:
        """The config from the flags :func:`add_arguments` defined."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One command-line flag per :class:`ServerConfig` field, with its default and help:
    ``--max-wait-ms MS``; a setting that is on by default gets ``--no-...``."""
    types = typing.get_type_hints(ServerConfig)
    for f in fields(ServerConfig):
        flag = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata)
        help_text = meta.pop("help")
        if types[f.name] is bool:
            if f.default:
                parser.add_argument(
                    "--no-" + flag[2:], dest=f.name, action="store_false", help=meta["no_help"]
                )
            else:
                parser.add_argument(flag, dest=f.name, action="store_true", help=help_text)
            continue
        kind = next(
            t for t in typing.get_args(types[f.name]) or (types[f.name],) if t is not type(None)
        )
        if f.name == "model":
            parser.add_argument(flag, required=True, help=help_text, metavar=meta["metavar"])
            continue
        shown = "" if f.default is None else f" (default: {f.default})"
        parser.add_argument(
            flag,
            type=kind,
            default=f.default,
            help=help_text + shown,
            **{k: v for k, v in meta.items() if v is not None},
        )


#: With several worker processes on one port, each worker that has loaded the model marks it
#: in this folder (a file named by its process id), and ``/ready`` answers 200 only once
#: every one of the ``MLINFRA_WORKERS`` has: a load balancer that reads ``/ready`` then
#: never sends traffic while a worker still answers 503. Set by ``serve`` and ``run_workers``.
READY_DIR_ENV = "MLINFRA_READY_DIR"
WORKERS_ENV = "MLINFRA_WORKERS"


def workers_loaded() -> tuple[int, int]:
    """``(loaded, expected)`` worker processes; ``(1, 1)`` for a single process."""
    folder = os.environ.get(READY_DIR_ENV)
    if not folder or not os.path.isdir(folder):  # not one of several workers
        return 1, 1
    return len(os.listdir(folder)), int(os.environ.get(WORKERS_ENV, "1"))


@contextlib.contextmanager
def workers_env(workers: int) -> Iterator[dict[str, str]]:
    """The environment that makes ``workers`` server processes share their readiness and
    their metrics, each in a temporary folder removed when the block ends."""
    from mlinfra_kit.serving.metrics import MULTIPROCESS_ENV

    with (
        tempfile.TemporaryDirectory(prefix="mlinfra-ready-") as ready,
        tempfile.TemporaryDirectory(prefix="mlinfra-metrics-") as metrics,
    ):
        yield {READY_DIR_ENV: ready, WORKERS_ENV: str(workers), MULTIPROCESS_ENV: metrics}
