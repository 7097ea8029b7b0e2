"""One benchmark harness for every variant: latency at several batch sizes, size, accuracy.

Every variant of every technique goes through :func:`benchmark`, so the rows of the final
table are comparable: same warm-up, same repetitions, same thread count (recorded), CUDA
synchronised before each clock read on a GPU.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from mlinfra_kit import measure
from mlinfra_kit.comparison import Comparison, compare

__all__ = ["benchmark", "compare_speed", "compare_variants", "pick", "speedup"]


def benchmark(
    name: str,
    model: Any,
    make_input: Callable[[int], Any],
    batch_sizes: Sequence[int] = (1, 64),
    repeat: int = 50,
    warmup: int = 5,
    accuracy: float | None = None,
    device: Any = None,
    size_of: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """A result row for ``model``: ``p50_ms_b{N}``/``p99_ms_b{N}`` per batch size,
    ``size_mb`` (serialized weights of ``size_of`` or the model), ``threads``,
    ``accuracy`` and anything in ``extra``.

    ``make_input(batch)`` returns the input of one call (a tensor or a tuple of them).
    """
    import torch

    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ValueError(f"batch_sizes must be positive, got {list(batch_sizes)}")
    row: dict[str, Any] = {"variant": name, **extra}
    with torch.no_grad():  # not inference_mode: compiled (Inductor) graphs misbehave in it
        for b in batch_sizes:
            inputs = make_input(b)
            args = inputs if isinstance(inputs, tuple) else (inputs,)
            stats = measure.latency_stats(
                measure.time_calls(
                    lambda a=args: model(*a), repeat=repeat, warmup=warmup, device=device
                )
            )
            row[f"p50_ms_b{b}"] = stats.p50_ms
            row[f"p99_ms_b{b}"] = stats.p99_ms
    row["size_mb"] = measure.model_size_bytes(size_of if size_of is not None else model) / 1e6
    row["threads"] = torch.get_num_threads()
    row["accuracy"] = accuracy
    return row


def speedup(base: dict[str, Any], other: dict[str, Any], batch: int = 64) -> float:
    """How many times faster ``other`` is than ``base`` at ``batch`` (p50 ratio)."""
    key = f"p50_ms_b{batch}"
    if key not in base or key not in other:
        raise ValueError(f"both rows need {key}; benchmark them with batch size {batch}")
    return base[key] / other[key]


def compare_speed(
    base: Any,
    other: Any,
    make_input: Callable[[int], Any],
    batch: int = 64,
    calls: int = 15,
    names: tuple[str, str] = ("base", "other"),
    device: Any = None,
    **engine: Any,
) -> Comparison:
    """How many times faster ``other`` runs than ``base`` on one batch of ``batch`` rows,
    measured in turns (:func:`~mlinfra_kit.comparison.compare`): each round times
    ``calls`` calls of each model and keeps their median, so a drift of the machine hits
    both alike. ``engine`` goes to ``compare`` (``max_rounds``, ``budget_s``,
    ``at_least`` or ``within`` to stop once the claim is settled).

    >>> import torch
    >>> wide, narrow = torch.nn.Linear(256, 256), torch.nn.Linear(256, 8)
    >>> c = compare_speed(wide, narrow, lambda b: torch.randn(b, 256), calls=5, max_rounds=3)
    >>> c.kind, c.repeats, c.estimate > 0
    ('ratio', 3, True)
    """
    import torch

    inputs = make_input(batch)
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    def p50_seconds(model: Any) -> Callable[[], float]:
        def once() -> float:
            with torch.no_grad():
                seconds = measure.time_calls(
                    lambda: model(*args), repeat=calls, warmup=1, device=device
                )
            return statistics.median(seconds)

        return once

    return compare(
        p50_seconds(base), p50_seconds(other), names=names, lower_is_better=True, **engine
    )


def pick(
    rows: Sequence[dict[str, Any]],
    max_latency_ms: float | None = None,
    max_size_mb: float | None = None,
    latency_key: str = "p50_ms_b1",
) -> dict[str, Any]:
    """The most accurate variant within a latency and size budget.

    >>> rows = [{"variant": "fp32", "accuracy": 0.9, "p50_ms_b1": 2.0, "size_mb": 4.0},
    ...         {"variant": "int8", "accuracy": 0.89, "p50_ms_b1": 0.8, "size_mb": 1.0}]
    >>> pick(rows, max_latency_ms=1.0)["variant"]
    'int8'
    """
    if not rows:
        raise ValueError("no variants to pick from")
    fits = [
        r
        for r in rows
        if r.get("accuracy") is not None
        and (max_latency_ms is None or r[latency_key] <= max_latency_ms)
        and (max_size_mb is None or r["size_mb"] <= max_size_mb)
    ]
    if not fits:
        raise ValueError(
            f"no variant fits the budget (latency <= {max_latency_ms} ms, "
            f"size <= {max_size_mb} MB); loosen it or add a smaller variant"
        )
    return max(fits, key=lambda r: (r["accuracy"], -r[latency_key]))


def compare_variants(
    path: Any, texts: Sequence[str], tags: Sequence[str], batch_sizes: Sequence[int] = (1, 32)
) -> list[dict[str, Any]]:
    """Benchmark the tag-classifier artifact at ``path`` in every way a server can load it
    (fp32, and each of :data:`~mlinfra_kit.artifacts.QUANTIZE_MODES`): latency per call,
    size, accuracy on ``texts``; rows ready for :func:`pick`."""
    from mlinfra_kit.artifacts import QUANTIZE_MODES
    from mlinfra_kit.models import TagClassifier

    rows = []
    for name, quantize in (("fp32", None), *((mode, mode) for mode in QUANTIZE_MODES)):
        model = TagClassifier.load(path, quantize=quantize)
        predicted = [p.tag for p in model.predict(list(texts))]
        accuracy = sum(p == t for p, t in zip(predicted, tags, strict=True)) / len(tags)
        rows.append(
            benchmark(
                name,
                model.predict,
                lambda b: list(texts[:b]),
                batch_sizes,
                repeat=30,
                accuracy=accuracy,
                size_of=model.net_,
                quantize=quantize,
            )
        )
    return rows
