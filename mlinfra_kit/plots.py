"""Plots the notebooks share, so every notebook draws the same quantity the same way.

Each function draws on an ``ax`` you pass (or a new figure) and returns the axes, so a
notebook can lay several plots side by side. matplotlib is imported on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "confusion_matrix",
    "latency_histogram",
    "training_curves",
    "bar",
    "stacked_shares",
    "latency_vs_throughput",
    "accuracy_over_time",
    "staleness_curve",
    "paired_scores",
]


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def confusion_matrix(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str],
    ax: Any = None,
    normalize: bool = True,
    title: str = "Confusion matrix",
) -> Any:
    """Heat map of a confusion matrix (rows: true label, columns: predicted label).

    With ``normalize`` each row is divided by its total, so a cell reads as "share of
    this true class predicted as that class"; the raw count is printed beside it.
    """
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(labels):
        raise ValueError(
            f"confusion matrix must be square with one row per label; got shape "
            f"{counts.shape} for {len(labels)} labels"
        )
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    ax = _axes(ax, (5.5, 4.5))
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = shown.max() / 2 if shown.size else 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            count = int(counts[i, j])
            text = f"{shown[i, j]:.2f}\n({count})" if normalize else str(count)
            color = "white" if shown[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    return ax


def latency_histogram(
    timings_ms: Sequence[float] | Mapping[str, Sequence[float]],
    ax: Any = None,
    bins: int = 40,
    title: str = "Latency",
) -> Any:
    """Histogram of latencies in ms, with p50 and p99 marked; a dict overlays variants."""
    import numpy as np

    series = timings_ms if isinstance(timings_ms, Mapping) else {"latency": timings_ms}
    ax = _axes(ax, (6, 3.5))
    for name, timings in series.items():
        values = np.asarray(timings, dtype=float)
        if values.size == 0:
            raise ValueError(f"no timings to plot for {name!r}")
        (line,) = ax.plot([], [])  # take the next colour of the cycle
        color = line.get_color()
        ax.hist(values, bins=bins, alpha=0.5, color=color, label=name)
        for q, style in ((50, "-"), (99, "--")):
            ax.axvline(np.percentile(values, q), color=color, linestyle=style, linewidth=1)
    ax.set_xlabel("latency (ms); solid line p50, dashed p99")
    ax.set_ylabel("calls")
    ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return ax


def training_curves(
    history: Sequence[Mapping[str, float]], ax: Any = None, best_epoch: int | None = None
) -> Any:
    """Loss per epoch (train and validation) and validation macro F1 on a twin axis; with
    ``best_epoch``, a line where early stopping found the lowest validation loss."""
    if not history:
        raise ValueError("history is empty: train for at least one epoch")
    ax = _axes(ax, (6, 3.5))
    epochs = [h["epoch"] for h in history]
    marker = "o" if len(epochs) <= 40 else None
    ax.plot(epochs, [h["train_loss"] for h in history], marker=marker, label="train loss")
    if "val_loss" in history[0]:
        ax.plot(epochs, [h["val_loss"] for h in history], marker=marker, label="validation loss")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="gray", linestyle=":", label=f"best epoch ({best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if "val_macro_f1" in history[0]:
        twin = ax.twinx()
        twin.plot(
            epochs,
            [h["val_macro_f1"] for h in history],
            color="tab:green",
            marker="s" if marker else None,
            label="validation macro F1",
        )
        twin.set_ylabel("macro F1")
        twin.set_ylim(0, 1)
        twin.legend(loc="center right")
    ax.legend(loc="upper right")
    ax.set_title("Training")
    return ax


def bar(values: Mapping[str, float], ax: Any = None, ylabel: str = "", title: str = "") -> Any:
    """Bar chart of named values, each bar labelled with its value; horizontal when the
    names are long, so they stay readable at notebook width."""
    if not values:
        raise ValueError("nothing to plot: values is empty")
    names, heights = list(values), list(values.values())
    if max(len(n) for n in names) > 16:
        ax = _axes(ax, (6.5, 0.5 + 0.45 * len(names)))
        bars = ax.barh(names, heights, color="tab:blue")
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        ax.margins(x=0.18)
    else:
        ax = _axes(ax, (6, 3.5))
        bars = ax.bar(names, heights, color="tab:blue")
        ax.set_ylabel(ylabel)
        ax.margins(y=0.15)
        ax.tick_params(axis="x", rotation=20)
    ax.bar_label(bars, fmt="%.3g", padding=2)
    ax.set_title(title, fontsize=10)
    return ax


def stacked_shares(
    counts: Mapping[Any, Mapping[str, float]], ax: Any = None, title: str = "", xlabel: str = ""
) -> Any:
    """Stacked bars of each group's share per period (``{period: {group: count}}``),
    e.g. the tag mix per year: drift shows as bands that widen or narrow."""
    if not counts:
        raise ValueError("nothing to plot: counts is empty")
    periods = list(counts)
    groups = list(dict.fromkeys(g for row in counts.values() for g in row))
    totals = [sum(counts[p].values()) or 1 for p in periods]
    ax = _axes(ax, (6, 3.5))
    bottom = [0.0] * len(periods)
    labels = [str(p) for p in periods]
    for group in groups:
        shares = [counts[p].get(group, 0) / t for p, t in zip(periods, totals, strict=True)]
        ax.bar(labels, shares, bottom=bottom, label=group)
        bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
    ax.set_ylabel("share")
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return ax


def stacked_parts(
    parts: Mapping[str, Mapping[str, float]], ax: Any = None, title: str = "", xlabel: str = ""
) -> Any:
    """Horizontal stacked bars of each row's parts in absolute units
    (``{row: {part: value}}``, e.g. microseconds per request by stage): the longest
    segment is the largest cost, the bar's length the total."""
    if not parts:
        raise ValueError("nothing to plot: parts is empty")
    rows = list(parts)
    names = list(dict.fromkeys(n for row in parts.values() for n in row))
    ax = _axes(ax, (9, 0.6 * len(rows) + 1.6))
    left = [0.0] * len(rows)
    for name in names:
        widths = [parts[r].get(name, 0.0) for r in rows]
        ax.barh(rows, widths, left=left, label=name)
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return ax


def latency_vs_throughput(
    rows: Sequence[Mapping[str, Any]],
    group: str = "mode",
    label: str = "concurrency",
    ax: Any = None,
    ceiling_rps: float | None = None,
    title: str = "Latency vs throughput",
) -> Any:
    """One line per ``group`` through (throughput_rps, p99_ms) points, p50 dashed, each
    point labelled with ``row[label]``: where a line turns upward, the server saturates.
    ``ceiling_rps`` draws the ceiling (the client against a server doing no work) as a
    vertical line."""
    if not rows:
        raise ValueError("nothing to plot: rows is empty")
    missing = {group, label, "throughput_rps", "p50_ms", "p99_ms"} - set(rows[0])
    if missing:
        raise ValueError(f"rows lack the column(s) {sorted(missing)}")
    ax = _axes(ax, (6.5, 4))
    for name in dict.fromkeys(r[group] for r in rows):
        points = sorted((r for r in rows if r[group] == name), key=lambda r: r[label])
        x = [r["throughput_rps"] for r in points]
        (line,) = ax.plot(x, [r["p99_ms"] for r in points], marker="o", label=f"{name} p99")
        ax.plot(
            x,
            [r["p50_ms"] for r in points],
            marker=".",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} p50",
        )
        for r in points:
            ax.annotate(
                str(r[label]),
                (r["throughput_rps"], r["p99_ms"]),
                fontsize=8,
                textcoords="offset points",
                xytext=(4, 4),
            )
    if ceiling_rps:
        ax.axvline(
            ceiling_rps,
            color="gray",
            linestyle=":",
            label="ceiling: the client against a no-work server",
        )
    ax.set_yscale("log")
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def accuracy_over_time(
    curves: Mapping[str, Sequence[float]],
    drifts: Sequence[int] = (),
    events: Mapping[str, Sequence[int]] | None = None,
    ax: Any = None,
    title: str = "Rolling accuracy",
    xlabel: str = "sample",
) -> Any:
    """One rolling-accuracy curve per strategy; known drifts as grey vertical lines, and
    each strategy's retrains (``events[name]``, sample indices) as ticks on its curve."""
    if not curves:
        raise ValueError("nothing to plot: curves is empty")
    ax = _axes(ax, (9, 4))
    for position in drifts:
        ax.axvline(position, color="gray", linewidth=1.5, alpha=0.6)
    for name, values in curves.items():
        (line,) = ax.plot(range(len(values)), values, label=name, linewidth=1.2)
        marks = [t for t in (events or {}).get(name, ()) if 0 <= t < len(values)]
        if marks:
            ax.plot(
                marks,
                [values[t] for t in marks],
                linestyle="none",
                marker="v",
                color=line.get_color(),
                markersize=6,
            )
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(
        xlabel + ("; grey lines: drifts" if drifts else "") + ("; ▼ retrains" if events else "")
    )
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    return ax


def duration_label(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def staleness_curve(
    rows: Sequence[Mapping[str, Any]],
    ceiling: float | None = None,
    ax: Any = None,
    label: str = "batch refresh",
    title: str = "Accuracy vs feature refresh interval",
) -> Any:
    """Accuracy against the batch refresh interval (log scale, fresher to the right), the
    stream (``refresh_interval_s`` 0) as the dashed limit, and an optional ``ceiling``
    (the best any model could do) dotted. Rows as from ``staleness_sweep``."""
    batch = sorted(
        (r for r in rows if r["refresh_interval_s"] > 0), key=lambda r: -r["refresh_interval_s"]
    )
    stream = [r for r in rows if r["refresh_interval_s"] == 0]
    if not batch:
        raise ValueError("nothing to plot: no row with refresh_interval_s > 0")
    ax = _axes(ax, (6.5, 4))
    x = [r["refresh_interval_s"] for r in batch]
    (line,) = ax.plot(x, [r["accuracy"] for r in batch], marker="o", label=label)
    if stream:
        ax.axhline(
            stream[0]["accuracy"],
            color=line.get_color(),
            linestyle="--",
            label=f"stream ({stream[0]['accuracy']:.3f})",
        )
    if ceiling is not None:
        ax.axhline(ceiling, color="gray", linestyle=":", label=f"ceiling ({ceiling:.3f})")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xticks(x, [duration_label(v) for v in x])
    ax.minorticks_off()
    ax.set_xlabel("refresh interval (event time; fresher →)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def paired_scores(
    rows: Sequence[Mapping[str, Any]],
    names: tuple[str, str],
    ax: Any = None,
    ylabel: str = "score",
    title: str = "",
) -> Any:
    """Two models' scores on the same splits, one line per split joining A (left) to B
    (right): a line going up is a split B won. Each row is ``{"split": name, "a": score,
    "b": score}`` (what :func:`mlinfra_kit.models.cross_validate` records per fold)."""
    if not rows:
        raise ValueError("nothing to plot: rows is empty")
    ax = _axes(ax, (4.8, 3.6))
    for row in rows:
        up = row["b"] >= row["a"]
        ax.plot([0, 1], [row["a"], row["b"]], marker="o", color="tab:green" if up else "tab:red")
        ax.annotate(
            str(row["split"]),
            (1, row["b"]),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xticks([0, 1], list(names))
    ax.set_xlim(-0.3, 1.5)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return ax
