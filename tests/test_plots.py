import matplotlib.pyplot as plt
import pytest

from mlinfra_kit import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_confusion_matrix_draws_counts_and_shares():
    ax = plots.confusion_matrix([[3, 1], [0, 4]], ["a", "b"])
    texts = [t.get_text() for t in ax.texts]
    assert "0.75\n(3)" in texts and "1.00\n(4)" in texts
    with pytest.raises(ValueError, match="square"):
        plots.confusion_matrix([[1, 2]], ["a", "b"])


def test_latency_histogram_single_and_overlaid():
    ax = plots.latency_histogram([1.0, 2.0, 3.0])
    assert len(ax.lines) >= 2  # p50 and p99 markers
    ax = plots.latency_histogram({"fp32": [1, 2], "int8": [0.5, 1]})
    assert ax.get_legend() is not None
    with pytest.raises(ValueError, match="no timings"):
        plots.latency_histogram({"x": []})


def test_training_curves_bar_and_shares():
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_macro_f1": 0.5},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.9, "val_macro_f1": 0.7},
    ]
    assert plots.training_curves(history).get_xlabel() == "epoch"
    with pytest.raises(ValueError, match="empty"):
        plots.training_curves([])
    assert len(plots.bar({"fp32": 2.0, "int8": 1.0}).patches) == 2
    ax = plots.stacked_shares({2020: {"a": 1, "b": 3}, 2021: {"a": 2, "b": 2}})
    heights = sorted(round(p.get_height(), 2) for p in ax.patches)
    assert heights == [0.25, 0.5, 0.5, 0.75]
    with pytest.raises(ValueError):
        plots.stacked_shares({})


def test_latency_vs_throughput():
    rows = [
        {"mode": m, "concurrency": c, "throughput_rps": 100.0 * c, "p50_ms": c, "p99_ms": 2.0 * c}
        for m in ("off", "on")
        for c in (1, 8)
    ]
    ax = plots.latency_vs_throughput(rows, ceiling_rps=1000)
    assert len(ax.lines) == 5 and len(ax.texts) == 4
    with pytest.raises(ValueError, match="lack"):
        plots.latency_vs_throughput([{"mode": "x"}])
    with pytest.raises(ValueError, match="empty"):
        plots.latency_vs_throughput([])


def test_accuracy_over_time():
    ax = plots.accuracy_over_time(
        {"a": [0.5, 0.6, 0.7], "b": [0.9, 0.8, 0.7]}, drifts=[1], events={"a": [2, 99]}
    )
    assert len(ax.lines) == 4  # drift line, two curves, one set of retrain markers
    with pytest.raises(ValueError, match="empty"):
        plots.accuracy_over_time({})


def test_staleness_curve():
    rows = [
        {"refresh_interval_s": 3600, "accuracy": 0.5},
        {"refresh_interval_s": 60, "accuracy": 0.7},
        {"refresh_interval_s": 0, "accuracy": 0.72},
    ]
    ax = plots.staleness_curve(rows, ceiling=0.8)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 h", "1 min"]
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.staleness_curve(rows[2:])


def test_paired_scores_draws_a_line_per_split():
    rows = [{"split": "fold 0", "a": 0.8, "b": 0.85}, {"split": "time", "a": 0.9, "b": 0.88}]
    ax = plots.paired_scores(rows, ("reference", "model"), ylabel="weighted F1")
    assert len(ax.lines) == 2 and [t.get_text() for t in ax.get_xticklabels()] == [
        "reference",
        "model",
    ]
    with pytest.raises(ValueError, match="empty"):
        plots.paired_scores([], ("a", "b"))


def test_stacked_parts_draws_one_bar_per_row_and_refuses_nothing():
    ax = plots.stacked_parts({"a": {"x": 1.0, "y": 2.0}, "b": {"x": 3.0}}, xlabel="us")
    assert len(ax.patches) == 4  # every part of every row, a missing one as width 0
    with pytest.raises(ValueError, match="empty"):
        plots.stacked_parts({})
