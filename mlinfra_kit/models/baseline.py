"""A reference to beat: TF-IDF word n-grams and logistic regression, with scikit-learn.

Every model of the kit is shown beside a plain, well-known baseline trained on the same
rows, so a number never stands alone. This one is the usual first try for short-text
classification: word unigrams and bigrams with sublinear TF-IDF, then a multinomial
logistic regression (``C=10``: little regularisation, as a few hundred short texts need).

Examples
--------
>>> texts = ["object detection with yolo", "image segmentation with u-net",
...          "machine translation with bert", "sentiment analysis of tweets"] * 5
>>> tags = ["computer-vision", "computer-vision",
...         "natural-language-processing", "natural-language-processing"] * 5
>>> TfidfLogReg().fit(texts, tags).predict(["pose detection with yolo"])
['computer-vision']
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from mlinfra_kit.data.projects import TAGS
from mlinfra_kit.models.evaluation import Evaluation, evaluate

__all__ = ["TfidfLogReg"]


class TfidfLogReg:
    """TF-IDF word n-grams + logistic regression. ``fit`` / ``predict`` / ``evaluate``
    like :class:`~mlinfra_kit.models.TagClassifier`; ``train_seconds_`` after a fit."""

    def __init__(self, ngrams: int = 2, C: float = 10.0, tags: Sequence[str] = TAGS):  # noqa: N803
        self.ngrams = ngrams
        self.C = C
        self.tags = tags

    def fit(self, texts: Sequence[str], tags: Sequence[str]) -> TfidfLogReg:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(texts) != len(tags) or not len(texts):
            raise ValueError(f"need as many tags as texts, and some: got {len(texts)}, {len(tags)}")
        unknown = sorted(set(tags) - set(self.tags))
        if unknown:
            raise ValueError(f"unknown tags {unknown}; expected some of {list(self.tags)}")
        self.pipeline_ = make_pipeline(
            TfidfVectorizer(ngram_range=(1, self.ngrams), sublinear_tf=True),
            LogisticRegression(C=self.C, max_iter=2000),
        )
        start = time.perf_counter()
        self.pipeline_.fit(list(texts), list(tags))
        self.train_seconds_ = time.perf_counter() - start
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        if not hasattr(self, "pipeline_"):
            raise ValueError("this TfidfLogReg is not trained yet: call fit()")
        return [str(t) for t in self.pipeline_.predict(list(texts))]

    def evaluate(self, texts: Sequence[str], tags: Sequence[str]) -> Evaluation:
        return evaluate(list(tags), self.predict(texts), list(self.tags))
