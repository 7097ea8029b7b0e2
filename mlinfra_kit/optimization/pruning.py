"""Pruning: remove weights (unstructured) or whole neurons (structured).

Unstructured pruning zeroes the smallest weights wherever they are. The tensor keeps its
shape, so a dense kernel does exactly the same work: the model gets no faster unless it is
stored and multiplied in a sparse format, which pays only at high sparsity.
Structured pruning removes whole neurons, and :func:`prune_neurons` rebuilds the smaller
dense layers, so the speed-up is real on any hardware.

Examples
--------
>>> from mlinfra_kit.optimization.models import mlp
>>> net = mlp((16, 64, 4))
>>> round(sparsity(prune_unstructured(net, 0.75)), 2)
0.75
>>> [m.out_features for m in prune_neurons(mlp((16, 64, 4)), 0.5) if hasattr(m, "out_features")]
[32, 4]
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import prune

__all__ = ["prune_neurons", "prune_unstructured", "sparse_vs_dense", "sparsity"]


def _check_amount(amount: float) -> None:
    if not 0 <= amount < 1:
        raise ValueError(f"the share to prune must be in [0, 1), got {amount}")


def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


def sparsity(model: nn.Module) -> float:
    """Share of zeros among the weights of the linear and convolution layers."""
    weights = [getattr(m, name) for m, name in _prunable(model)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


def prune_unstructured(
    model: nn.Module, amount: float, retrain: Callable[[nn.Module], object] | None = None
) -> nn.Module:
    """A copy of ``model`` with the ``amount`` smallest weights (by magnitude, across all
    layers at once: global L1) set to zero, the pruning made permanent.

    ``retrain(model)`` fine-tunes while the pruning masks are still attached, so the
    zeroed weights stay zero and the others make up for them.
    """
    _check_amount(amount)
    model = copy.deepcopy(model)
    params = _prunable(model)
    if not params:
        raise ValueError("the model has no Linear or Conv2d layer to prune")
    if amount > 0:
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
        if retrain is not None:
            retrain(model)
        for module, name in params:
            prune.remove(module, name)
    return model.eval()


def prune_neurons(model: nn.Sequential, amount: float) -> nn.Sequential:
    """A smaller dense copy of an MLP (``nn.Sequential`` of Linear and activations) whose
    hidden layers keep the ``1 - amount`` neurons with the largest weight norms; the next
    layer keeps the matching inputs. Input and output widths do not change."""
    _check_amount(amount)
    if not isinstance(model, nn.Sequential):
        raise TypeError("prune_neurons takes an nn.Sequential MLP")
    layers = [copy.deepcopy(m) for m in model]
    linear = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    if len(linear) < 2:
        raise ValueError("an MLP needs at least two Linear layers to have hidden neurons")
    if any(not isinstance(m, nn.Linear | nn.ReLU | nn.GELU | nn.Tanh | nn.Dropout) for m in layers):
        raise ValueError("prune_neurons handles Linear layers and elementwise activations only")
    for i, j in zip(linear[:-1], linear[1:], strict=True):
        layer, following = layers[i], layers[j]
        keep_n = max(1, round(layer.out_features * (1 - amount)))
        keep = layer.weight.norm(dim=1).topk(keep_n).indices.sort().values
        smaller = nn.Linear(layer.in_features, keep_n, bias=layer.bias is not None)
        narrower = nn.Linear(keep_n, following.out_features, bias=following.bias is not None)
        with torch.no_grad():
            smaller.weight.copy_(layer.weight[keep])
            if layer.bias is not None:
                smaller.bias.copy_(layer.bias[keep])
            narrower.weight.copy_(following.weight[:, keep])
            if following.bias is not None:
                narrower.bias.copy_(following.bias)
        layers[i], layers[j] = smaller, narrower
    return nn.Sequential(*layers).eval()


def sparse_vs_dense(
    size: int = 2048,
    sparsities: tuple[float, ...] = (0.5, 0.9, 0.99),
    batch: int = 64,
    repeat: int = 20,
    seed: int = 0,
) -> list[dict]:
    """Time ``x @ W.T`` with ``W`` (size x size) at each sparsity: dense, and in CSR.

    Dense kernels do not skip zeros, so their time stays flat; CSR skips them but pays for
    indexing, so it wins only above some sparsity. Returns one row per sparsity.
    """
    from mlinfra_kit import measure

    for s in sparsities:
        _check_amount(s)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, size, generator=generator)
    rows = []
    for s in sparsities:
        weight = torch.randn(size, size, generator=generator)
        weight[torch.rand(size, size, generator=generator) < s] = 0.0
        with warnings.catch_warnings():  # "sparse CSR support is in beta": known, shown once
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = weight.to_sparse_csr()
        dense_t = measure.latency_stats(
            measure.time_calls(lambda w=weight: x @ w.T, repeat=repeat, warmup=2)
        )
        sparse_t = measure.latency_stats(
            measure.time_calls(lambda c=csr: torch.sparse.mm(c, x.T), repeat=repeat, warmup=2)
        )
        rows.append(
            {
                "sparsity": s,
                "dense_p50_ms": dense_t.p50_ms,
                "csr_p50_ms": sparse_t.p50_ms,
                "csr_speedup": dense_t.p50_ms / sparse_t.p50_ms,
            }
        )
    return rows
