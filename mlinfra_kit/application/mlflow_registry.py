"""The application's model versions in MLflow's model registry, read as the kit's own.

:class:`MLflowRegistry` has :class:`~mlinfra_kit.application.registry.ModelRegistry`'s
interface (``register``, ``versions``, ``production``, ``promote``, ``path``), so a notebook
reads the same with either, while the versions live in MLflow:

- each version is an MLflow model of the ``pyfunc`` flavour (:class:`TagModel`, wrapping the
  kit's artifact, with a signature and an input example), registered under one name
  (``tag-classifier``), its metrics and notes on the version;
- which version serves is the alias ``champion``; the newest registered candidate carries
  ``challenger``; :meth:`~MLflowRegistry.promote` moves ``champion``;
- the kit's server loads a version by URI: ``mlinfra serve --model
  models:/tag-classifier@champion`` (:func:`resolve_model` downloads it once).

Versions are named ``v<N>`` after MLflow's version number ``N``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlflow.pyfunc import PythonModel

from mlinfra_kit.tracking import _quiet, ensure_experiment

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MLflowRegistry",
    "TagModel",
    "is_model_uri",
    "model_cache",
    "resolve_model",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Where a pyfunc version keeps the kit's artifact, inside its MLflow model folder.
_ARTIFACT = "tag-classifier"
#: The file MLflow logs as the model's code (it defines the model with ``set_model``).
_MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")


def _requirements() -> list[str]:
    """What a deployment of a version installs: the kit and the torch and MLflow it ran."""
    import mlflow
    import torch

    from mlinfra_kit import __version__

    return [
        f"mlinfra-kit=={__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"mlflow=={mlflow.__version__}",
    ]


def is_model_uri(model: Any) -> bool:
    """Whether ``model`` names a registered MLflow model (``models:/name@alias`` or
    ``models:/name/3``) rather than a folder."""
    return isinstance(model, str) and model.startswith("models:/")


# MLflow warns at class creation that `predict` has no type hints, under a warnings filter
# of its own (so no filter here can hold it): the registered signature is explicit instead.
with contextlib.redirect_stderr(io.StringIO()):

    class TagModel(PythonModel):
        """The ``pyfunc`` wrapper of the kit's artifact: one tag per row of a frame with
        ``title`` and ``description`` columns (the registered signature says so)."""

        def load_context(self, context):
            from mlinfra_kit.models import TagClassifier

            self.model = TagClassifier.load(context.artifacts[_ARTIFACT])

        def predict(self, context, model_input, params=None):
            from mlinfra_kit.data import project_text

            texts = [
                project_text(t, d)
                for t, d in zip(model_input["title"], model_input["description"], strict=True)
            ]
            return [p.tag for p in self.model.predict(texts)]


@contextlib.contextmanager
def _at(uri: str) -> Iterator[Any]:
    """A client for ``uri``, with MLflow's global tracking and registry URIs pointed at it
    for the block (``mlflow.pyfunc`` reads those), and its notices quiet."""
    import mlflow
    from mlflow.tracking import MlflowClient
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")  # set_*_uri export these too
    with _quiet():
        # MLflow has no public way back to "not set": keep its own (pinned) module values.
        before = tracking._tracking_uri, registry._registry_uri
        environ = {name: os.environ.get(name) for name in names}
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield MlflowClient(tracking_uri=uri, registry_uri=uri)
        finally:
            tracking._tracking_uri, registry._registry_uri = before
            for name, value in environ.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class MLflowRegistry:
    """Versions of one model in MLflow's registry at ``uri`` (a ``sqlite:///`` file, a
    tracking server), with local copies of their artifacts under ``cache`` for the
    servers to load.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> registry = MLflowRegistry(f"sqlite:///{folder}/mlflow.db", f"{folder}/models")
    >>> registry.production is None, registry.versions()
    (True, {})
    """

    def __init__(self, uri: str, cache: str | os.PathLike, name: str = "tag-classifier") -> None:
        self.uri = uri
        self.cache = Path(cache)
        self.name = name

    def _versions(self, client) -> list[Any]:
        from mlflow.exceptions import MlflowException

        try:
            found = client.search_model_versions(f"name='{self.name}'")
        except MlflowException:
            return []
        return sorted(found, key=lambda v: int(v.version))

    def versions(self) -> dict[str, dict[str, Any]]:
        """Every registered version with its metrics, notes, registration time and
        aliases."""
        with _at(self.uri) as client:
            found = self._versions(client)
            aliases = client.get_registered_model(self.name).aliases if found else {}
            return {
                f"v{v.version}": {
                    "metrics": json.loads(v.tags.get("metrics", "{}")),
                    "notes": v.description or "",
                    "registered_at": v.creation_timestamp / 1000,
                    "aliases": sorted(a for a, n in aliases.items() if str(n) == str(v.version)),
                }
                for v in found
            }

    @property
    def production(self) -> str | None:
        """The version the ``champion`` alias points at."""
        from mlflow.exceptions import MlflowException

        with _at(self.uri) as client:
            try:
                return f"v{client.get_model_version_by_alias(self.name, CHAMPION).version}"
            except MlflowException:
                return None

    def register(self, model: Any, metrics: dict[str, float], notes: str = "") -> str:
        """Log ``model`` as an MLflow pyfunc model (signature and input example included),
        register it as the next version with the ``challenger`` alias, and return its name
        (``v<N>``). Serving does not change until :meth:`promote`."""
        import mlflow
        import pandas as pd
        from mlflow.models import infer_signature

        example = pd.DataFrame([{"title": "YOLO on a webcam", "description": ""}])
        with (
            tempfile.TemporaryDirectory() as folder,
            _at(self.uri) as client,
            contextlib.redirect_stderr(io.StringIO()),  # its "Successfully registered" notes
        ):
            upcoming = f"v{len(self._versions(client)) + 1}"  # MLflow numbers them in order
            artifact = model.save(Path(folder) / _ARTIFACT, version=upcoming, metrics=metrics)
            signature = infer_signature(example, ["computer-vision"])
            experiment_id = ensure_experiment(client, self.uri, "mlinfra-kit/registry")
            with mlflow.start_run(experiment_id=experiment_id, run_name=self.name):
                mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(_MODEL_CODE),  # models from code: nothing pickled
                    artifacts={_ARTIFACT: str(artifact)},
                    signature=signature,
                    input_example=example,
                    registered_model_name=self.name,
                    pip_requirements=_requirements(),  # stated, not inferred (seconds saved)
                )
            number = info.registered_model_version
            client.set_model_version_tag(self.name, number, "metrics", json.dumps(metrics))
            if notes:
                client.update_model_version(self.name, number, description=notes)
            client.set_registered_model_alias(self.name, CHALLENGER, number)
        return f"v{number}"

    def _number(self, version: str) -> str:
        known = self.versions()
        if version not in known:
            raise ValueError(f"unknown version {version!r}; registered: {list(known)}")
        return version.removeprefix("v")

    def promote(self, version: str) -> None:
        """Point ``champion`` at ``version`` (the challenger alias leaves it)."""
        number = self._number(version)
        with _at(self.uri) as client:
            client.set_registered_model_alias(self.name, CHAMPION, number)
            aliases = client.get_registered_model(self.name).aliases
            if str(aliases.get(CHALLENGER)) == number:  # the challenger has won
                client.delete_registered_model_alias(self.name, CHALLENGER)

    def path(self, version: str) -> Path:
        """A local folder holding ``version``'s kit artifact (downloaded once)."""
        return resolve_model(f"models:/{self.name}/{self._number(version)}", self.uri, self.cache)


def model_cache(uri: str) -> Path:
    """Where versions from the registry at ``uri`` are downloaded to by default: beside a
    SQLite store (``models/``), else a temporary folder of that registry's own."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent / "models"
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "mlinfra-models" / digest


def resolve_model(
    model: str | os.PathLike, uri: str | None = None, cache: str | os.PathLike | None = None
) -> Path:
    """The local kit artifact for ``model``: a folder as it is, or a registered model
    (``models:/tag-classifier@champion``, ``models:/tag-classifier/2``) from the MLflow
    registry at ``uri`` (default: ``MLFLOW_TRACKING_URI``), downloaded under ``cache``
    (default: ``MLINFRA_MODEL_CACHE``, else :func:`model_cache`) by version, so an alias
    that moves later gets the new version's copy. A ``ValueError`` says what is missing."""
    if not is_model_uri(model):
        return Path(model)
    from mlflow.exceptions import MlflowException

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ValueError(f"{model} is a registered model: set MLFLOW_TRACKING_URI to its registry")
    name, _, ref = str(model).removeprefix("models:/").partition("@")
    with _at(uri) as client:
        try:
            if ref:  # an alias
                number = client.get_model_version_by_alias(name, ref).version
            else:
                name, _, number = name.partition("/")
                client.get_model_version(name, number)
        except MlflowException as err:
            raise ValueError(f"{model} is not in the registry at {uri}: {err.message}") from None
        root = Path(cache or os.environ.get("MLINFRA_MODEL_CACHE") or model_cache(uri))
        local = root / f"{name}-v{number}"
        if not local.is_dir():
            import mlflow

            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=root))  # renamed into place when complete
            mlflow.artifacts.download_artifacts(f"models:/{name}/{number}", dst_path=str(staging))
            shutil.rmtree(local, ignore_errors=True)
            os.replace(staging, local)
    return _find_artifact(local)


def _find_artifact(folder: Path) -> Path:
    """The kit artifact inside a downloaded pyfunc model (``artifacts/tag-classifier``)."""
    for candidate in folder.rglob(_ARTIFACT):
        if (candidate / "metadata.json").is_file():
            return candidate
    raise ValueError(f"{folder} holds no kit artifact: was it registered by MLflowRegistry?")
