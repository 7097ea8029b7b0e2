"""The application's story in one figure: traffic, drift statistics, quality, decisions."""

from __future__ import annotations

import math
from typing import Any

from mlinfra_kit.application.system import ApplicationRun

__all__ = ["timeline"]

_MARKS = {
    "retrain": ("black", "-"),
    "shadow": ("gray", "--"),
    "canary": ("tab:blue", ":"),
    "promote": ("tab:green", "-"),
    "rollback": ("tab:red", "-"),
}


def timeline(run: ApplicationRun, alpha: float, window: int, quality_window: int = 30) -> Any:
    """Three panels over the stream: the candidate's share of traffic, each window's
    drift p-values (log scale) against ``alpha``, and the rolling accuracy of what users
    were served; retrain, shadow, canary steps and the outcome as vertical lines."""
    import matplotlib.pyplot as plt

    if not run.served:
        raise ValueError("nothing to plot: the run served nothing")
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive number, got {alpha}")
    fig, (traffic, drift, quality) = plt.subplots(
        3, 1, figsize=(10, 8), sharex=True, layout="constrained"
    )
    candidate = run.candidate
    bins = range(0, len(run.served), 10)
    share = [
        sum(s.version == candidate for s in run.served[b : b + 10]) / len(run.served[b : b + 10])
        for b in bins
    ]
    traffic.step(list(bins), share, where="post", label=f"share served by {candidate or '-'}")
    traffic.set(ylabel="candidate share", ylim=(-0.05, 1.05), title="Traffic")
    for check, marker in (("input_length", "o"), ("oov_rate", "s"), ("output_mix", "^")):
        points = [
            ((w.window + 1) * window, w.stats[f"{check}_p"])
            for w in run.windows
            if f"{check}_p" in w.stats
        ]
        if points:
            drift.plot([x for x, _ in points], [p for _, p in points], marker=marker, label=check)
    drift.axhline(alpha, color="tab:red", linestyle="--", label=f"alpha = {alpha:g}")
    drift.set(yscale="log", ylabel="p-value (log)", title="Drift tests per window")
    scored = [s for s in run.served if s.status == 200]
    for version in dict.fromkeys(s.version for s in scored):
        xs, ys = [], []
        for i in range(quality_window, len(scored) + 1):
            part = [s for s in scored[i - quality_window : i] if s.version == version]
            if len(part) >= quality_window // 3:
                xs.append(scored[i - 1].index)
                ys.append(sum(s.predicted == s.tag for s in part) / len(part))
        quality.plot(xs, ys, label=f"{version}, rolling accuracy")
    quality.set(
        ylim=(0, 1.02),
        xlabel="stream position (projects in created_on order)",
        ylabel="accuracy",
        title=f"Quality served (last {quality_window} labelled)",
    )
    for event in run.events:
        if event.kind in _MARKS:
            color, style = _MARKS[event.kind]
            for ax in (traffic, drift, quality):
                ax.axvline(event.index, color=color, linestyle=style, linewidth=1, alpha=0.7)
    for event in run.events:
        if event.kind in ("retrain", "promote", "rollback"):
            traffic.annotate(
                event.kind,
                (event.index, 1.0),
                fontsize=8,
                rotation=90,
                textcoords="offset points",
                xytext=(2, -40),
            )
    for ax in (traffic, drift, quality):
        ax.legend(fontsize=8, loc="lower left")
    return fig
