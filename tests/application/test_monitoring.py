"""The monitor's statistics on hand-computed cases, a stationary stream, and injected shifts."""

import math

import pytest
from scipy import stats

from mlinfra_kit.application import Monitor
from mlinfra_kit.data import TAGS, load_holdout
from mlinfra_kit.models.text import Vocabulary


@pytest.fixture(scope="module")
def setting(trained):
    holdout = load_holdout()
    texts, tags = holdout.texts, [p.tag for p in holdout.rows]
    predicted = [p.tag for p in trained.predict(texts)]
    half = len(texts) // 2
    monitor = Monitor(
        texts[:half],
        predicted[:half],
        trained.vocab_,
        TAGS,
        reference_macro_f1=0.8,
        min_window=40,
        min_labels=40,
    )
    later = (texts[half:], predicted[half:], tags[half:])
    return monitor, later


def windows(items, size=60):
    texts, predicted, labels = items
    for start in range(0, len(texts) - size + 1, size):
        yield (
            texts[start : start + size],
            predicted[start : start + size],
            labels[start : start + size],
        )


def test_no_alert_on_a_stationary_stream(setting):
    monitor, later = setting
    reports = [monitor.check(*w, window=i) for i, w in enumerate(windows(later))]
    assert reports and all(r.size == 60 for r in reports)
    assert [str(a) for r in reports for a in r.alerts if a.check != "quality"] == []


def test_injected_shifts_raise_the_right_alerts(setting):
    monitor, later = setting
    texts, predicted, labels = next(windows(later))
    longer = [t + " quantum annealing portfolio hedging derivatives volatility" * 3 for t in texts]
    alerts = {a.check for a in monitor.check(longer, predicted).alerts}
    assert {"input_length", "oov_rate"} <= alerts and "output_mix" not in alerts
    one_tag = [TAGS[0]] * len(texts)
    assert "output_mix" in {a.check for a in monitor.check(texts, one_tag).alerts}
    wrong = [next(t for t in TAGS if t != y) for y in labels]
    quality = [a for a in monitor.check(texts, predicted, wrong).alerts if a.check == "quality"]
    assert quality and quality[0].value < quality[0].threshold == pytest.approx(0.7)
    assert "macro F1" in str(quality[0])


def test_chi_square_matches_the_hand_computation():
    vocab = Vocabulary.build(["a b c"], min_freq=1)
    tags = ["w", "x", "y", "z"]
    monitor = Monitor(
        ["a b"] * 400, [t for t in tags for _ in range(100)], vocab, tags, min_window=10
    )
    # Reference shares are 1/4 each; observed 30/10/10/10 -> chi2 = (15² + 3·5²) / 15 = 20.
    report = monitor.check(["a b"] * 60, ["w"] * 30 + ["x"] * 10 + ["y"] * 10 + ["z"] * 10)
    assert report.stats["output_chi2"] == pytest.approx(20.0)
    assert report.stats["output_mix_p"] == pytest.approx(stats.chi2.sf(20.0, 3))
    assert [a.check for a in report.alerts] == ["output_mix"]  # same texts: no input alert


def test_small_windows_and_unlabelled_items_are_reported_not_tested():
    vocab = Vocabulary.build(["a b c"], min_freq=1)
    monitor = Monitor(["a b"] * 50, ["x"] * 50, vocab, ["x", "y"], reference_macro_f1=0.9)
    report = monitor.check(["a"] * 5, ["y"] * 5, [None, "x", "nope", None, "y"])
    assert report.alerts == () and "output_mix_p" not in report.stats
    assert report.labelled == 2 and report.stats["unknown_labels"] == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.check(["a"], ["x", "y"]), "same length"),
        (lambda m: m.check(["a"], ["ghost"]), "not among the tags"),
        (lambda m: Monitor([], [], m.vocabulary, ["x"]).check(["a"], ["x"]), "non-empty"),
        (
            lambda m: Monitor(["a"], ["x"], m.vocabulary, ["x"], alpha=2).check(["a"], ["x"]),
            "alpha",
        ),
    ],
)
def test_bad_inputs_get_clear_errors(call, message):
    monitor = Monitor(["a b"], ["x"], Vocabulary.build(["a b"], min_freq=1), ["x", "y"])
    with pytest.raises(ValueError, match=message):
        call(monitor)


def test_the_scraped_window_gives_the_same_output_test_and_a_bucketed_unknown_word_test(setting):
    from collections import Counter

    from mlinfra_kit.serving.metrics import UNKNOWN_SHARE_BUCKETS

    monitor, later = setting
    texts, predicted, _ = next(windows(later))
    inside = monitor.check(texts, predicted)
    edges = [*UNKNOWN_SHARE_BUCKETS, math.inf]
    rates = [monitor.vocabulary.unknown_rate([t]) for t in texts]
    buckets = [(le, sum(r <= le for r in rates)) for le in edges]  # as Prometheus holds them
    scraped = monitor.check_scraped(Counter(predicted), buckets)
    assert scraped.size == inside.size
    assert scraped.stats["output_mix_p"] == pytest.approx(inside.stats["output_mix_p"])
    assert scraped.stats["oov_sampled"] == len(texts) and not scraped.alerts
    new_words = [(le, 0 if le < 0.5 else 40) for le in edges]  # 40 texts, half unknown
    assert "oov_rate" in [a.check for a in monitor.check_scraped({}, new_words).alerts]
    few = monitor.check_scraped(Counter(predicted[:10]), [(0.0, 2), (math.inf, 3)])
    assert "output_mix_p" not in few.stats and "oov_rate_p" not in few.stats
    with pytest.raises(ValueError, match="not among the tags"):
        monitor.check_scraped({"astrology": 50}, buckets)
    with pytest.raises(ValueError, match=r"\+Inf"):
        monitor.check_scraped(Counter(predicted), buckets[:-1])
    with pytest.raises(ValueError, match="cumulative"):
        monitor.check_scraped(Counter(predicted), [(0.0, 30), (math.inf, 3)])
