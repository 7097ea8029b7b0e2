"""The tag model as MLflow logs it from code (``mlflow.pyfunc.log_model(python_model=<this
file>)``): MLflow runs this file to build the model when it loads a version, so nothing is
pickled. :class:`~mlinfra_kit.application.mlflow_registry.MLflowRegistry` logs it."""

from mlflow.models import set_model

from mlinfra_kit.application.mlflow_registry import TagModel

__all__: list[str] = []  # a file MLflow runs, nothing to import

set_model(TagModel())
