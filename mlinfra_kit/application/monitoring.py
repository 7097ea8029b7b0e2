"""Monitoring a served model: is the input, the output or the quality drifting?

Each window of the live stream is compared with a reference (the data the model was
validated on), with one test per signal:

- **input length**: two-sample Kolmogorov-Smirnov test on the number of words per text;
- **out-of-vocabulary rate**: one-sided Mann-Whitney U test, per text, on the share of words
  the model never saw (new words mean a world the model does not know);
- **output mix**: chi-square goodness of fit of the predicted tag counts against the
  reference's predicted tag shares;
- **quality**, where labels have arrived: macro F1 against the reference's, alerting on a
  drop larger than ``max_f1_drop``.

A test alerts when its p-value is below ``alpha``. Many windows times several tests means
many chances of a false alarm, so the default ``alpha`` is small (0.001).

Examples
--------
>>> from mlinfra_kit.models.text import Vocabulary
>>> reference = ["object detection with yolo", "text classification with bert"] * 50
>>> vocab = Vocabulary.build(reference, min_freq=1)
>>> monitor = Monitor(reference, ["cv", "nlp"] * 50, vocab, tags=["cv", "nlp"])
>>> monitor.check(reference[:60], ["cv", "nlp"] * 30).alerts
()
>>> shifted = ["quantum annealing for portfolio optimisation in finance"] * 60
>>> sorted(a.check for a in monitor.check(shifted, ["cv"] * 60).alerts)
['input_length', 'oov_rate', 'output_mix']
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mlinfra_kit.models.evaluation import evaluate
from mlinfra_kit.models.text import Vocabulary, tokenize

__all__ = ["Alert", "MIN_SAMPLED", "Monitor", "WindowReport"]

#: Fewest sampled texts :meth:`Monitor.check_scraped` tests unknown words on.
MIN_SAMPLED = 5


@dataclass(frozen=True)
class Alert:
    """A significant change: which check, its statistic, and the threshold it crossed."""

    window: int
    check: str
    statistic: str
    value: float
    threshold: float

    def __str__(self) -> str:
        return (
            f"window {self.window}: {self.check} — {self.statistic} = {self.value:.3g} "
            f"(threshold {self.threshold:.3g})"
        )


@dataclass(frozen=True)
class WindowReport:
    """One monitoring window: its position, how many projects (and labels) it held, each
    test's statistic or p-value, and the alerts raised."""

    window: int
    size: int
    labelled: int
    stats: dict[str, float]
    alerts: tuple[Alert, ...] = field(default=())

    def row(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "size": self.size,
            "labelled": self.labelled,
            **self.stats,
            "alerts": ", ".join(a.check for a in self.alerts) or "none",
        }


def _oov_rates(texts: Sequence[str], vocabulary: Vocabulary) -> list[float]:
    return [vocabulary.unknown_rate([t]) for t in texts]


class Monitor:
    """Compares windows of a stream with a reference; see the module docstring.

    Parameters
    ----------
    reference_texts, reference_predictions
        What the model saw and answered when it was validated.
    vocabulary
        The model's vocabulary (its unknown words are the out-of-vocabulary signal).
    tags
        Every tag the model can answer; labels outside it are counted and ignored.
    reference_macro_f1
        The model's validated macro F1; without it, quality is reported, never alerted.
    output_reference
        Predictions whose tag mix is the output reference (e.g. the model's answers on all
        its training-period data: more of them than the validation set, so the mix is not
        itself noise); ``reference_predictions`` by default.
    """

    def __init__(
        self,
        reference_texts: Sequence[str],
        reference_predictions: Sequence[str],
        vocabulary: Vocabulary,
        tags: Sequence[str],
        reference_macro_f1: float | None = None,
        alpha: float = 0.001,
        max_f1_drop: float = 0.10,
        min_window: int = 30,
        min_labels: int = 30,
        output_reference: Sequence[str] | None = None,
    ):
        self.reference_texts = reference_texts
        self.reference_predictions = reference_predictions
        self.vocabulary = vocabulary
        self.tags = tags
        self.reference_macro_f1 = reference_macro_f1
        self.alpha = alpha
        self.max_f1_drop = max_f1_drop
        self.min_window = min_window
        self.min_labels = min_labels
        self.output_reference = output_reference

    @cached_property
    def _reference(self) -> dict[str, Any]:
        if not self.reference_texts or len(self.reference_texts) != len(self.reference_predictions):
            raise ValueError(
                "reference_texts and reference_predictions must be non-empty and of the same length"
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        mix = self.output_reference or self.reference_predictions
        counts = Counter(mix)
        total = len(mix)
        # Half a count of smoothing: a tag never predicted on the reference is rare, not
        # impossible, so the chi-square test stays defined.
        shares = {t: (counts.get(t, 0) + 0.5) / (total + 0.5 * len(self.tags)) for t in self.tags}
        return {
            "lengths": [len(tokenize(t)) for t in self.reference_texts],
            "oov": _oov_rates(self.reference_texts, self.vocabulary),
            "shares": shares,
        }

    def check(
        self,
        texts: Sequence[str],
        predictions: Sequence[str],
        labels: Sequence[str | None] | None = None,
        window: int = 0,
    ) -> WindowReport:
        """Statistics and alerts for one window. ``labels[i]`` is None while item ``i``'s
        label has not arrived."""
        from scipy import stats

        ref = self._reference
        if len(texts) != len(predictions) or (labels is not None and len(labels) != len(texts)):
            raise ValueError("texts, predictions and labels must have the same length")
        unknown_predictions = sorted(set(predictions) - set(self.tags))
        if unknown_predictions:
            raise ValueError(f"predictions {unknown_predictions} are not among the tags")
        out: dict[str, float] = {}
        alerts: list[Alert] = []

        def test(check: str, name: str, p_value: float) -> None:
            out[f"{check}_p"] = p_value
            if p_value < self.alpha:
                alerts.append(Alert(window, check, f"{name} p-value", p_value, self.alpha))

        n = len(texts)
        if n >= self.min_window:
            lengths = [len(tokenize(t)) for t in texts]
            out["mean_words"] = sum(lengths) / n
            test("input_length", "KS", float(stats.ks_2samp(ref["lengths"], lengths).pvalue))
            oov = _oov_rates(texts, self.vocabulary)
            out["oov_rate"] = sum(oov) / n
            test(
                "oov_rate",
                "Mann-Whitney U",
                float(stats.mannwhitneyu(oov, ref["oov"], alternative="greater").pvalue),
            )
            statistic, p_value = self._output_mix(Counter(predictions))
            out["output_chi2"] = statistic
            test("output_mix", "chi-square", p_value)
        pairs = [(y, p) for y, p in zip(labels or (), predictions, strict=False) if y is not None]
        known = [(y, p) for y, p in pairs if y in self.tags]
        out["unknown_labels"] = len(pairs) - len(known)
        if len(known) >= self.min_labels:
            quality = evaluate([y for y, _ in known], [p for _, p in known], list(self.tags))
            out["accuracy"], out["macro_f1"] = quality.accuracy, quality.macro_f1
            if self.reference_macro_f1 is not None:
                floor = self.reference_macro_f1 - self.max_f1_drop
                if quality.macro_f1 < floor:
                    alerts.append(Alert(window, "quality", "macro F1", quality.macro_f1, floor))
        return WindowReport(window, n, len(known), out, tuple(alerts))

    def _output_mix(self, observed: Mapping[str, int]) -> tuple[float, float]:
        """Chi-square statistic and p-value of tag counts against the reference's shares."""
        from scipy import stats

        n = sum(observed.values())
        expected = [self._reference["shares"][t] * n for t in self.tags]
        chi = stats.chisquare([observed.get(t, 0) for t in self.tags], expected)
        return float(chi.statistic), float(chi.pvalue)

    def check_scraped(
        self,
        predicted: Mapping[str, int],
        unknown: Sequence[tuple[float, int]],
        window: int = 0,
    ) -> WindowReport:
        """The output and input drift tests on what a server's metrics counted over one
        window, as a monitor reading Prometheus would: ``predicted``, its answers by tag
        (``mlinfra_predictions_total``); ``unknown``, its histogram of unknown-word shares
        (cumulative ``(le, count)`` pairs, the last at infinity;
        ``mlinfra_unknown_word_share``, a sample of the texts).

        The output mix is the same chi-square test as :meth:`check`'s, on the same counts.
        The unknown-word test is :meth:`check`'s Mann-Whitney U at bucket resolution: each
        text's share, the window's and the reference's alike, is replaced by its bucket, so
        it sees a shift across bucket edges only, on the sampled texts only.

        >>> from mlinfra_kit.models.text import Vocabulary
        >>> reference = ["object detection with yolo", "text classification with bert"] * 50
        >>> vocab = Vocabulary.build(reference, min_freq=1)
        >>> monitor = Monitor(reference, ["cv", "nlp"] * 50, vocab, tags=["cv", "nlp"])
        >>> unknown = [(0.0, 0), (0.5, 0), (1.0, 15), (math.inf, 15)]  # 15 texts, all unknown
        >>> shifted = monitor.check_scraped({"cv": 60}, unknown)
        >>> sorted(a.check for a in shifted.alerts)
        ['oov_rate', 'output_mix']
        """
        from scipy import stats

        if any(count < 0 for count in predicted.values()):
            raise ValueError(f"tag counts cannot be negative: {dict(predicted)}")
        unknown_tags = sorted(set(predicted) - set(self.tags))
        if unknown_tags:
            raise ValueError(f"predictions {unknown_tags} are not among the tags")
        edges = [le for le, _ in unknown]
        if edges and edges[-1] != math.inf:
            raise ValueError("a histogram's last bucket is +Inf: pass every bucket, in order")
        n = sum(predicted.values())
        out: dict[str, float] = {}
        alerts: list[Alert] = []
        if n >= self.min_window:
            statistic, p_value = self._output_mix(predicted)
            out["output_chi2"], out["output_mix_p"] = statistic, p_value
            if p_value < self.alpha:
                alerts.append(
                    Alert(window, "output_mix", "chi-square p-value", p_value, self.alpha)
                )
        cumulative = [c for _, c in unknown]
        counts = [c - before for c, before in zip(cumulative, [0, *cumulative[:-1]], strict=True)]
        if any(count < 0 for count in counts):
            raise ValueError(f"a histogram's counts are cumulative, never falling: {list(unknown)}")
        sampled = [level for level, count in enumerate(counts) for _ in range(count)]
        out["oov_sampled"] = len(sampled)
        if len(sampled) >= MIN_SAMPLED:
            reference = [bisect.bisect_left(edges, rate) for rate in self._reference["oov"]]
            p_value = float(stats.mannwhitneyu(sampled, reference, alternative="greater").pvalue)
            out["oov_rate_p"] = p_value
            if p_value < self.alpha:
                alerts.append(
                    Alert(
                        window, "oov_rate", "Mann-Whitney U (bucketed) p-value", p_value, self.alpha
                    )
                )
        return WindowReport(window, n, 0, out, tuple(alerts))
