"""GPU number formats as drop-in layers: lower precision, 2:4 sparsity, and 8-bit
matrix products. Each transform takes a float32 model and returns a copy that takes and
returns float32; :mod:`mlinfra_kit.optimization.gpu` measures them.

- :func:`to_dtype`: bf16 / fp16 (:class:`LowerPrecision`);
- :func:`prune_2to4` (any device) and :func:`semi_structured` (compressed, on a GPU);
- :func:`low_bit_linears`: :class:`Float8Linear` / :class:`Int8Linear`, weights in 8 bits
  with a scale per output row, activations scaled per row on the fly.

Examples
--------
>>> import torch
>>> w = torch.tensor([[0.1, -3.0, 2.0, 0.5, 4.0, 0.0, -1.0, 0.2]])
>>> mask_2to4(w).int().tolist()
[[0, 1, 1, 0, 1, 0, 1, 0]]
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune

from mlinfra_kit import device as _device

__all__ = [
    "FLOAT8",
    "Float8Linear",
    "Int8Linear",
    "LowerPrecision",
    "is_2to4",
    "low_bit_linears",
    "mask_2to4",
    "prune_2to4",
    "require_cuda",
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantize the input's rows, multiply, drop any padding rows, restore the shape
        and the input's dtype."""
        flat = x.reshape(-1, x.shape[-1])
        out = self.matmul(*self.quantize_input(flat))[: len(flat)]
        return out.to(x.dtype).reshape(*x.shape[:-1], out.shape[-1])


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
