"""Compression on a GPU: lower precision, 2:4 sparsity, and float8 / int8 matrix products.

A CPU gains from int8 kernels and smaller dense layers (the other modules of this
package). A recent NVIDIA GPU offers different wins, all in its tensor cores:

- **bf16 / fp16** run many times faster than fp32 (:func:`to_dtype`; TF32 is the
  in-between that keeps fp32 storage);
- **2:4 semi-structured sparsity**: two of every four consecutive weights zero, a pattern
  the hardware skips (:func:`prune_2to4` makes it on any device, :func:`semi_structured`
  stores it compressed on a GPU);
- **float8 and int8 matrix products** (:class:`Float8Linear`, :class:`Int8Linear`:
  weights stored in 8 bits with a scale per output row, activations scaled per row on
  the fly). They run on a CPU too (slowly: for checking), and fast on a GPU of compute
  capability 8.9 or more (float8) or 8.0 (int8).

:func:`gpu_linear_sweep` times each on one large linear layer, side by side, and
:func:`gpu_variants` builds them all for one model. The transforms themselves live in
:mod:`mlinfra_kit.optimization.formats` (re-exported here).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mlinfra_kit import measure
from mlinfra_kit.optimization.formats import (
    Float8Linear,
    Int8Linear,
    LowerPrecision,
    is_2to4,
    low_bit_linears,
    mask_2to4,
    prune_2to4,
    require_cuda,
    semi_structured,
    semi_structured_state,
    to_dtype,
)

__all__ = [
    "Float8Linear",
    "GPU_FORMATS",
    "Int8Linear",
    "LowerPrecision",
    "gpu_linear_sweep",
    "gpu_variants",
    "is_2to4",
    "low_bit_linears",
    "mask_2to4",
    "prune_2to4",
    "require_cuda",
    "semi_structured",
    "semi_structured_state",
    "to_dtype",
]


def gpu_variants(
    model: nn.Module, retrain: Callable[[nn.Module], object] | None = None
) -> dict[str, tuple[nn.Module, Any]]:
    """Every GPU variant of a trained fp32 ``model`` (already on its GPU), as
    ``{name: (variant, what to size)}``: fp32, bf16, fp16, float8, int8 and fp16 2:4
    (pruned 2:4, fine-tuned by ``retrain`` if given, stored compressed). Each takes and
    returns float32, so one benchmark and one accuracy function serve them all. A
    variant this GPU cannot run is left out, with a warning that says why.
    """
    import warnings

    require_cuda(next(model.parameters()).device)
    builders: dict[str, Callable[[], nn.Module]] = {
        "fp32": lambda: model,
        "bf16": lambda: to_dtype(model, torch.bfloat16),
        "fp16": lambda: to_dtype(model, torch.float16),
        "float8": lambda: low_bit_linears(model, "float8"),
        "int8": lambda: low_bit_linears(model, "int8"),
        "fp16 2:4": lambda: semi_structured(prune_2to4(model, retrain), torch.float16),
    }
    variants: dict[str, tuple[nn.Module, Any]] = {}
    first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        raise ValueError("gpu_variants compresses linear layers; the model has none")
    sample = torch.zeros(32, first.in_features, device=first.weight.device)
    for name, build in builders.items():
        try:
            variant = build()
            with torch.no_grad():
                variant(sample)  # fails here, not in the benchmark, if unsupported
        except (RuntimeError, NotImplementedError) as err:
            warnings.warn(
                f"{name} is not available on this GPU: {str(err).splitlines()[0]}", stacklevel=2
            )
            continue
        sized = semi_structured_state(variant) if name.endswith("2:4") else variant
        variants[name] = (variant, sized)
    return variants


GPU_FORMATS = (
    "fp32",
    "tf32",
    "bf16 autocast",
    "bf16",
    "fp16",
    "float8",
    "float8 matmul only",
    "float8 compiled",
    "int8",
    "int8 matmul only",
    "int8 compiled",
    "fp16 dense, 2:4 weights",
    "fp16 2:4",
    "fp16 2:4 (CUTLASS)",
    "bf16 dense, 2:4 weights",
    "bf16 2:4",
)
"""The variants :func:`gpu_linear_sweep` times, in its order."""


def _timed(fn: Callable[[], Any], dev: torch.device, repeat: int, warmup: int) -> float:
    with torch.no_grad():
        return measure.latency_stats(
            measure.time_calls(fn, repeat=repeat, warmup=warmup, device=dev)
        ).p50_ms


def gpu_linear_sweep(
    dev: Any = "cuda",
    size: int = 8192,
    batch: int = 8192,
    repeat: int = 20,
    warmup: int = 3,
    seed: int = 0,
    formats: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Time one ``size x size`` linear layer on ``batch`` rows in every GPU number format.

    One row per variant: ``p50_ms``, ``tflops`` (the dense layer's multiply-adds per second,
    so 2:4 rows show effective throughput), ``speedup_vs_fp32``,
    ``rel_error`` (against float64 on the same weights and inputs, first 256 rows) and,
    where a variant cannot run on this GPU, ``error`` instead of timings. The 2:4 rows
    (``fp16 2:4``, ``bf16 2:4``) compare against the dense layer with the *same pruned
    weights*: a GPU runs zeros a little faster than random values, so this isolates
    what the sparse kernel skips. The "matmul only" rows time the 8-bit product on inputs
    quantized beforehand: the gap to the full row is the cost of quantizing activations
    in separate (unfused) kernels, which the "compiled" rows (``torch.compile``) fuse.
    ``formats`` picks a subset of :data:`GPU_FORMATS`; fp32, the baseline of every
    speed-up, is measured (and listed first) whether chosen or not.
    """
    dev = require_cuda(dev)
    if size % 64 or batch < 1:
        raise ValueError(f"size must be a multiple of 64 and batch positive (got {size}, {batch})")
    unknown = sorted(set(formats or ()) - set(GPU_FORMATS))
    if unknown:
        raise ValueError(f"unknown formats {unknown}: choose from {list(GPU_FORMATS)}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    dense = nn.Linear(size, size).requires_grad_(False)
    with torch.no_grad():
        dense.weight.copy_(torch.randn(size, size, generator=generator) / size**0.5)
    pruned = prune_2to4(dense)
    x = torch.randn(batch, size, generator=generator).to(dev)
    check = x[:256].double()
    previous_precision = torch.get_float32_matmul_precision()

    def fp32(precision: str) -> Callable[[], Any]:
        layer = copy.deepcopy(dense).to(dev)

        def run() -> torch.Tensor:
            torch.set_float32_matmul_precision(precision)
            try:
                return layer(x)
            finally:
                torch.set_float32_matmul_precision(previous_precision)

        return run

    def autocast() -> Callable[[], Any]:
        layer = copy.deepcopy(dense).to(dev)

        def run() -> torch.Tensor:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return layer(x)

        return run

    bf16, fp16 = torch.bfloat16, torch.float16

    def inner(model: LowerPrecision, dtype: torch.dtype) -> Callable[[], Any]:
        # Inputs already in the layer's format: the table compares formats, not casts.
        layer, inputs = model.model, x.to(dtype)
        return lambda: layer(inputs)

    def compiled(kind: str) -> Callable[[], Any]:
        # Inductor fuses the activation scaling into one or two kernels around the product.
        layer, inputs = torch.compile(low_bit_linears(dense, kind).to(dev).model), x.to(bf16)
        return lambda: layer(inputs)

    def matmul_only(kind: str) -> Callable[[], Any]:
        layer = low_bit_linears(dense, kind).to(dev).model
        quantized = layer.quantize_input(x.to(bf16))
        return lambda: layer.matmul(*quantized)

    builders: dict[str, tuple[nn.Module, Callable[[], Callable[[], Any]]]] = {
        "fp32": (dense, lambda: fp32("highest")),
        "tf32": (dense, lambda: fp32("high")),
        "bf16 autocast": (dense, autocast),
        "bf16": (dense, lambda: inner(to_dtype(dense, bf16).to(dev), bf16)),
        "fp16": (dense, lambda: inner(to_dtype(dense, fp16).to(dev), fp16)),
        "float8": (dense, lambda: inner(low_bit_linears(dense, "float8").to(dev), bf16)),
        "float8 matmul only": (dense, lambda: matmul_only("float8")),
        "float8 compiled": (dense, lambda: compiled("float8")),
        "int8": (dense, lambda: inner(low_bit_linears(dense, "int8").to(dev), bf16)),
        "int8 matmul only": (dense, lambda: matmul_only("int8")),
        "int8 compiled": (dense, lambda: compiled("int8")),
        "fp16 dense, 2:4 weights": (pruned, lambda: inner(to_dtype(pruned, fp16).to(dev), fp16)),
        "fp16 2:4": (pruned, lambda: inner(semi_structured(pruned.to(dev), fp16), fp16)),
        "fp16 2:4 (CUTLASS)": (
            pruned,
            lambda: inner(semi_structured(pruned.to(dev), fp16, backend="cutlass"), fp16),
        ),
        "bf16 dense, 2:4 weights": (pruned, lambda: inner(to_dtype(pruned, bf16).to(dev), bf16)),
        "bf16 2:4": (pruned, lambda: inner(semi_structured(pruned.to(dev), bf16), bf16)),
    }
    if tuple(builders) != GPU_FORMATS:  # a format added to one list and not the other
        raise RuntimeError("gpu_linear_sweep's builders and GPU_FORMATS disagree")
    # fp32 is always measured, first: every speed-up is relative to it.
    chosen = ["fp32", *(f for f in (formats or GPU_FORMATS) if f != "fp32")]
    variants = [(name, *builders[name]) for name in chosen]
    rows: list[dict[str, Any]] = []
    flop = 2 * batch * size * size
    for name, weights, build in variants:
        row: dict[str, Any] = {"variant": name, "size": size, "batch": batch}
        try:
            run = build()
            with torch.no_grad():
                out = run()[: len(check)].double()
                reference = F.linear(
                    check, weights.weight.to(dev).double(), weights.bias.to(dev).double()
                )
            row["p50_ms"] = _timed(run, dev, repeat, warmup)
            row["tflops"] = flop / row["p50_ms"] / 1e9
            row["rel_error"] = float((out - reference).norm() / reference.norm())
        except (RuntimeError, NotImplementedError, ValueError, AssertionError) as err:
            row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
        rows.append(row)
        torch.cuda.empty_cache()
    base = rows[0].get("p50_ms")  # the fp32 row
    for row in rows:
        if base and "p50_ms" in row:
            row["speedup_vs_fp32"] = base / row["p50_ms"]
    return rows
