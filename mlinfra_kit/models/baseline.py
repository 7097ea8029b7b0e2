"""A reference to beat: TF-IDF n-grams and logistic regression, with scikit-learn.

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
from typing import Any

from mlinfra_kit.data.projects import TAGS
from mlinfra_kit.models.evaluation import Evaluation, evaluate

__all__ = ["C_GRID", "TfidfLogReg"]


#: The regularisation strengths ``C="cv"`` chooses from.
C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)


class TfidfLogReg:
    """TF-IDF word n-grams + logistic regression. ``fit`` / ``predict`` / ``evaluate``
    like :class:`~mlinfra_kit.models.TagClassifier`; ``train_seconds_`` after a fit.

    ``char_ngrams=(2, 5)`` adds the character n-grams inside each word (scikit-learn's
    ``char_wb``), the features the kit's model reads too: the fair reference for it.
    ``C="cv"`` chooses the regularisation from :data:`C_GRID` by 5-fold stratified
    cross-validation on the training data only (``C_`` after a fit); ``class_weight`` is
    passed to scikit-learn (``"balanced"`` weighs the small classes up)."""

    def __init__(
        self,
        ngrams: int = 2,
        C: float | str = 10.0,  # noqa: N803
        tags: Sequence[str] = TAGS,
        char_ngrams: tuple[int, int] | None = None,
        class_weight: str | None = None,
    ):
        self.ngrams = ngrams
        self.C = C
        self.tags = tags
        self.char_ngrams = char_ngrams
        self.class_weight = class_weight

    def fit(self, texts: Sequence[str], tags: Sequence[str]) -> TfidfLogReg:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(texts) != len(tags) or not len(texts):
            raise ValueError(f"need as many tags as texts, and some: got {len(texts)}, {len(tags)}")
        unknown = sorted(set(tags) - set(self.tags))
        if unknown:
            raise ValueError(f"unknown tags {unknown}; expected some of {list(self.tags)}")
        if self.C != "cv" and not (isinstance(self.C, int | float) and self.C > 0):
            raise ValueError(f"C must be a positive number or 'cv', got {self.C!r}")
        words = TfidfVectorizer(ngram_range=(1, self.ngrams), sublinear_tf=True)
        features = words
        if self.char_ngrams is not None:
            from sklearn.pipeline import make_union

            low, high = self.char_ngrams
            if not 1 <= low <= high:
                raise ValueError(
                    f"char_ngrams must be (low, high) with 1 <= low <= high, got {self.char_ngrams}"
                )
            chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(low, high), sublinear_tf=True)
            features = make_union(words, chars)
        start = time.perf_counter()
        c = self._chosen_c(features, list(texts), list(tags)) if self.C == "cv" else float(self.C)
        classifier = LogisticRegression(C=c, max_iter=2000, class_weight=self.class_weight)
        self.pipeline_ = make_pipeline(features, classifier)
        self.pipeline_.fit(list(texts), list(tags))
        self.C_ = c
        self.train_seconds_ = time.perf_counter() - start
        return self

    def _chosen_c(self, features: Any, texts: list[str], tags: list[str]) -> float:
        """The C of :data:`C_GRID` with the best mean weighted F1 over 5 stratified folds of
        the training data (the features, label-free, are fitted on all of it once)."""
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        matrix = clone(features).fit_transform(texts)
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        scores = {
            c: cross_val_score(
                LogisticRegression(C=c, max_iter=2000, class_weight=self.class_weight),
                matrix,
                tags,
                cv=folds,
                scoring="f1_weighted",
            ).mean()
            for c in C_GRID
        }
        return max(scores, key=lambda c: scores[c])

    def predict(self, texts: Sequence[str]) -> list[str]:
        if not hasattr(self, "pipeline_"):
            raise ValueError("this TfidfLogReg is not trained yet: call fit()")
        return [str(t) for t in self.pipeline_.predict(list(texts))]

    def evaluate(self, texts: Sequence[str], tags: Sequence[str]) -> Evaluation:
        return evaluate(list(tags), self.predict(texts), list(self.tags))
