"""Models of the running example, trained here from scratch.

:class:`TagClassifier` is the kit's PyTorch model: TF-IDF-weighted word and character
n-grams -> ``nn.EmbeddingBag`` -> class logits, with early stopping, a refit, evaluation and
a safe artifact format. :class:`TfidfLogReg` (scikit-learn) is the reference it is shown
beside. :func:`torch_threads` sets the thread count small models run with. The estimator
(``classifier``), its network (``network``) and its artifact on disk (``saving``) are
modules of their own.
"""

from mlinfra_kit.models.baseline import TfidfLogReg
from mlinfra_kit.models.classifier import BRIEF_EPOCHS, Prediction, TagClassifier
from mlinfra_kit.models.evaluation import Evaluation, evaluate, score_difference
from mlinfra_kit.models.network import TextClassifierNet, torch_threads
from mlinfra_kit.models.saving import ARTIFACT_FORMAT
from mlinfra_kit.models.text import Vocabulary, features, tokenize
from mlinfra_kit.models.validation import CrossValidation, cross_validate, stratified_folds

__all__ = [
    "ARTIFACT_FORMAT",
    "BRIEF_EPOCHS",
    "Prediction",
    "TagClassifier",
    "TextClassifierNet",
    "TfidfLogReg",
    "torch_threads",
    "Evaluation",
    "evaluate",
    "score_difference",
    "CrossValidation",
    "cross_validate",
    "stratified_folds",
    "Vocabulary",
    "features",
    "tokenize",
]
