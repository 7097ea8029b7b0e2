"""Models of the running example, trained here from scratch.

:class:`TagClassifier` is the baseline: word n-grams -> ``nn.EmbeddingBag`` -> MLP,
with early stopping, evaluation and a safe artifact format.
"""

from mlinfra_kit.models.classifier import (
    ARTIFACT_FORMAT,
    Prediction,
    TagClassifier,
    TextClassifierNet,
)
from mlinfra_kit.models.evaluation import Evaluation, evaluate
from mlinfra_kit.models.text import Vocabulary, features, tokenize

__all__ = [
    "ARTIFACT_FORMAT",
    "Prediction",
    "TagClassifier",
    "TextClassifierNet",
    "Evaluation",
    "evaluate",
    "Vocabulary",
    "features",
    "tokenize",
]
