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

:func:`gpu_linear_sweep` times each on one large linear layer, side by side.

Examples
--------
>>> import torch
>>> w = torch.tensor([[0.1, -3.0, 2.0, 0.5, 4.0, 0.0, -1.0, 0.2]])
>>> mask_2to4(w).int().tolist()
[[0, 1, 1, 0, 1, 0, 1, 0]]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune

from mlinfra_kit import device as _device
from mlinfra_kit import measure

__all__ = [
    "Float8Linear",
    "GPU_FORMATS",
    "Int8Linear",
    "LowerPrecision",
    "gpu_linear_sweep",
    "is_2to4",
    "low_bit_linears",
    "mask_2to4",
    "prune_2to4",
    "require_cuda",
    "gpu_variants",
    "semi_structured",
    "semi_structured_state",
    "to_dtype",
]

FLOAT8 = torch.float8_e4m3fn
_FLOAT8_MAX = float(torch.finfo(FLOAT8).max)
# Weight shapes every 2:4 backend of torch accepts (rows, columns): multiples of these.
_SEMI_STRUCTURED_MULTIPLE = (32, 64)


def require_cuda(dev: Any) -> torch.device:
    """``dev`` as a CUDA ``torch.device``, or a ``ValueError`` that says what to use."""
    if not _device.is_cuda(dev):
        raise ValueError(
            f"this measurement needs a CUDA device, got {dev!r}: run it on a "
            "machine with an NVIDIA GPU (DEVICE='cuda'), or skip it"
        )
    return _device.pick(str(dev))


class LowerPrecision(nn.Module):
    """``model`` run in ``dtype``: inputs cast on the way in, outputs back to float32, so
    the variant is a drop-in replacement for the fp32 model (same inputs, same outputs)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype)).float()


def to_dtype(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> LowerPrecision:
    """A copy of ``model`` with weights and computation in ``dtype`` (bf16 or fp16)."""
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be torch.bfloat16 or torch.float16, got {dtype}")
    return LowerPrecision(copy.deepcopy(model).to(dtype).eval(), dtype)


def mask_2to4(weight: torch.Tensor) -> torch.Tensor:
    """Boolean mask keeping the two largest-magnitude weights of every four consecutive
    ones along a row (the input dimension), the pattern sparse tensor cores skip."""
    rows, cols = weight.shape
    if cols % 4:
        raise ValueError(f"2:4 sparsity needs a multiple of 4 input features, got {cols}")
    groups = weight.detach().abs().reshape(rows, cols // 4, 4)
    keep = groups.topk(2, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
    return mask.reshape(rows, cols)


def is_2to4(weight: torch.Tensor) -> bool:
    """Whether every four consecutive weights along a row hold at most two non-zeros."""
    rows, cols = weight.shape
    return cols % 4 == 0 and bool((weight.reshape(rows, cols // 4, 4) != 0).sum(-1).le(2).all())


def _eligible(module: nn.Module) -> bool:
    rows, cols = _SEMI_STRUCTURED_MULTIPLE
    return (
        isinstance(module, nn.Linear)
        and module.out_features % rows == 0
        and module.in_features % cols == 0
    )


def prune_2to4(model: nn.Module, retrain: Callable[[nn.Module], object] | None = None) -> nn.Module:
    """A copy of ``model`` whose linear layers of a 2:4-compatible shape (rows a multiple
    of 32, columns of 64) keep two weights in every four; others are left dense.

    ``retrain(model)`` fine-tunes while the masks are attached, as in
    :func:`~mlinfra_kit.optimization.prune_unstructured`. Runs on any device; the speed-up
    needs :func:`semi_structured` on a GPU.
    """
    model = copy.deepcopy(model)
    layers = [m for m in model.modules() if _eligible(m)]
    if not layers:
        raise ValueError(
            "no Linear layer has a 2:4-compatible shape (out_features a "
            "multiple of 32, in_features a multiple of 64)"
        )
    for layer in layers:
        prune.custom_from_mask(layer, "weight", mask_2to4(layer.weight))
    if retrain is not None:
        retrain(model)
    for layer in layers:
        prune.remove(layer, "weight")
    return model.eval()


def semi_structured(
    model: nn.Module, dtype: torch.dtype = torch.float16, backend: str | None = None
) -> LowerPrecision:
    """A copy of a 2:4-pruned ``model`` on its GPU in ``dtype``, each eligible weight
    stored compressed (values + metadata) so matrix products skip the zeros.

    ``backend``: ``"cusparselt"`` or ``"cutlass"`` (torch ships kernels from both; its
    CUTLASS ones run on compute capability 8.x only), or None for torch's choice
    (cuSPARSELt where it is available).
    """
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    if backend not in (None, "cusparselt", "cutlass"):
        raise ValueError(f"backend must be 'cusparselt', 'cutlass' or None, got {backend!r}")
    dev = require_cuda(next(model.parameters()).device)
    capability = torch.cuda.get_device_capability(dev)
    if backend == "cutlass" and capability[0] != 8:
        raise ValueError(
            f"torch's CUTLASS 2:4 kernels run on compute capability 8.x only; this "
            f"GPU is {capability[0]}.{capability[1]}: use backend='cusparselt'"
        )
    if backend == "cusparselt" and not torch.backends.cusparselt.is_available():
        raise ValueError("this torch build has no cuSPARSELt: use backend='cutlass' or None")
    converted = to_dtype(model, dtype).to(dev)
    layers = [m for m in converted.modules() if _eligible(m)]
    if not layers:
        raise ValueError("no Linear layer has a 2:4-compatible shape")
    if not all(is_2to4(layer.weight) for layer in layers):
        raise ValueError("the weights are not 2:4 sparse: run prune_2to4 first")
    forced = SparseSemiStructuredTensor._FORCE_CUTLASS
    if backend is not None:  # the class-wide switch torch reads when it converts
        SparseSemiStructuredTensor._FORCE_CUTLASS = backend == "cutlass"
    try:
        for layer in layers:
            layer.weight = nn.Parameter(
                to_sparse_semi_structured(layer.weight.detach()), requires_grad=False
            )
    finally:
        SparseSemiStructuredTensor._FORCE_CUTLASS = forced
    return converted


def semi_structured_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state a :func:`semi_structured` model ships: each compressed weight as its
    stored values and metadata (``torch.save`` cannot write the sparse subclass itself).
    Pass it to :func:`~mlinfra_kit.measure.model_size_bytes` for the model's size."""
    from torch.sparse import SparseSemiStructuredTensor

    state = {}
    for name, tensor in model.state_dict().items():
        if isinstance(tensor, SparseSemiStructuredTensor):
            for part in ("packed", "meta"):
                stored = getattr(tensor, part, None)
                if stored is not None:
                    state[f"{name}.{part}"] = stored.detach().cpu()
        else:
            state[name] = tensor.detach().cpu()
    return state


def _row_scale(x: torch.Tensor, top: float) -> torch.Tensor:
    """Per-row scale mapping each row's largest magnitude to ``top`` (float32, (rows, 1))."""
    return x.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / top


class _RowScaledLinear(nn.Module):
    """A linear layer whose weights are stored in 8 bits with one scale per output row;
    subclasses say how a row is quantized (:meth:`quantize_rows`, the same for weights and
    activations) and which kernel multiplies (:meth:`matmul`)."""

    bias_dtype: torch.dtype

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight, scale = self.quantize_rows(linear.weight.detach())
        self.register_buffer("weight", weight)
        self.register_buffer("weight_scale", scale.t().contiguous())  # (1, out)
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().to(self.bias_dtype))

    @staticmethod
    def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def quantize_input(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of a 2-D input in 8 bits, with their scales (the on-the-fly half)."""
        return self.quantize_rows(flat)

    def matmul(self, quantized: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Float8Linear(_RowScaledLinear):
    """A linear layer multiplying in float8 (e4m3): weights stored in 8 bits with one scale
    per output row, activations scaled per row on the fly, bf16 out (``torch._scaled_mm``).
    """

    bias_dtype = torch.bfloat16

    @staticmethod
    def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = _row_scale(x, _FLOAT8_MAX)
        return (x.float() / scale).clamp(-_FLOAT8_MAX, _FLOAT8_MAX).to(FLOAT8), scale

    def matmul(self, quantized: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The float8 product itself, bias added, bf16 out."""
        out = torch._scaled_mm(
            quantized,
            self.weight.t(),
            scale_a=scale,
            scale_b=self.weight_scale,
            out_dtype=torch.bfloat16,
        )
        return out if self.bias is None else out + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.matmul(*self.quantize_input(x.reshape(-1, x.shape[-1])))
        return out.reshape(*x.shape[:-1], out.shape[-1])


class Int8Linear(_RowScaledLinear):
    """A linear layer multiplying in int8 with int32 accumulation (``torch._int_mm``):
    weights int8 with one scale per output row, activations quantized per row on the fly.
    """

    bias_dtype = torch.float32

    @staticmethod
    def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = _row_scale(x, 127.0)
        return (x.float() / scale).round().clamp(-127, 127).to(torch.int8), scale

    def quantize_input(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As for any 8-bit layer, but the CUDA kernel wants more than 16 rows, in a
        multiple of 8: short inputs are zero-padded (:meth:`forward` drops the extra rows)."""
        rows = len(flat)
        padded_rows = max(24, -(-rows // 8) * 8)
        if padded_rows != rows:
            flat = F.pad(flat, (0, 0, 0, padded_rows - rows))
        return self.quantize_rows(flat)

    def matmul(self, quantized: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The int8 product (int32 accumulation), rescaled, bias added, float32 out."""
        out = torch._int_mm(quantized, self.weight.t()).float() * scale * self.weight_scale
        return out if self.bias is None else out + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        out = self.matmul(*self.quantize_input(flat))[: len(flat)]
        return out.to(x.dtype).reshape(*x.shape[:-1], out.shape[-1])


_LOW_BIT = {"float8": Float8Linear, "int8": Int8Linear}


def low_bit_linears(model: nn.Module, kind: str = "float8") -> LowerPrecision:
    """A bf16 copy of ``model`` whose linear layers (both widths multiples of 16) multiply
    in ``kind`` (``"float8"`` or ``"int8"``); other layers stay in bf16."""
    if kind not in _LOW_BIT:
        raise ValueError(f"unknown low-bit kind {kind!r}: use one of {sorted(_LOW_BIT)}")
    converted = to_dtype(model, torch.bfloat16)
    replaced = 0
    for parent in list(converted.modules()):
        for name, child in list(parent.named_children()):
            if (
                isinstance(child, nn.Linear)
                and child.in_features % 16 == 0
                and child.out_features % 16 == 0
            ):
                setattr(parent, name, _LOW_BIT[kind](child))
                replaced += 1
    if not replaced:
        raise ValueError("no Linear layer has both widths a multiple of 16")
    return converted


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
    ``formats`` picks a subset of :data:`GPU_FORMATS`.
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
    assert tuple(builders) == GPU_FORMATS
    variants = [(name, *builders[name]) for name in (formats or GPU_FORMATS)]
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
    base = rows[0].get("p50_ms") if rows[0]["variant"] == "fp32" else None
    for row in rows:
        if base and "p50_ms" in row:
            row["speedup_vs_fp32"] = base / row["p50_ms"]
    return rows
