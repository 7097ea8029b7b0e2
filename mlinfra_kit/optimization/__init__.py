"""Optimization: pruning, quantization and distillation, measured side by side.

- models and data: :func:`mlp`, :class:`SmallCNN`, :func:`load_digits`, :func:`train`,
  :func:`accuracy`;
- :func:`benchmark` (one row per variant), :func:`speedup`, :func:`compare_speed` (one
  variant against another in turns, with an interval), :func:`pick` (best under a
  budget), :func:`compare_variants` (a saved tag classifier as each server can load it);
- pruning: :func:`prune_unstructured`, :func:`prune_neurons`, :func:`sparsity`,
  :func:`sparse_vs_dense`;
- quantization: :func:`dynamic_int8`, :func:`static_int8` (classic eager),
  :func:`torchao_int8`, :func:`pt2e_int8` (torchao);
- distillation: :func:`distillation_loss`, :func:`distill`;
- on a GPU (:mod:`mlinfra_kit.optimization.formats`, measured by
  :mod:`mlinfra_kit.optimization.gpu`): :func:`to_dtype` (bf16/fp16),
  :func:`prune_2to4` and :func:`semi_structured` (2:4 sparsity), :func:`low_bit_linears`
  (float8 / int8 matrix products), :func:`gpu_variants`, :func:`gpu_linear_sweep`.

Importing this package imports torch (every function here needs it).
"""

from mlinfra_kit.optimization.bench import benchmark, compare_speed, compare_variants, pick, speedup
from mlinfra_kit.optimization.distillation import distill, distillation_loss
from mlinfra_kit.optimization.gpu import (
    gpu_linear_sweep,
    gpu_variants,
    low_bit_linears,
    prune_2to4,
    semi_structured,
    to_dtype,
)
from mlinfra_kit.optimization.models import (
    ImageData,
    SmallCNN,
    accuracy,
    load_digits,
    mlp,
    train,
)
from mlinfra_kit.optimization.pruning import (
    prune_neurons,
    prune_unstructured,
    sparse_vs_dense,
    sparsity,
)
from mlinfra_kit.optimization.quantization import (
    dynamic_int8,
    is_quantized,
    pt2e_int8,
    static_int8,
    torchao_int8,
)

__all__ = [
    "accuracy",
    "benchmark",
    "compare_speed",
    "compare_variants",
    "distill",
    "distillation_loss",
    "dynamic_int8",
    "gpu_linear_sweep",
    "gpu_variants",
    "ImageData",
    "is_quantized",
    "load_digits",
    "low_bit_linears",
    "mlp",
    "pick",
    "prune_2to4",
    "prune_neurons",
    "prune_unstructured",
    "pt2e_int8",
    "semi_structured",
    "SmallCNN",
    "sparse_vs_dense",
    "sparsity",
    "speedup",
    "static_int8",
    "to_dtype",
    "torchao_int8",
    "train",
]
