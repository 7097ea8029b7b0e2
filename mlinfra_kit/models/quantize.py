"""Dynamic int8 for any model's linear layers: the one compression a server needs at load.

It lives in the core so the server (``ServerConfig(quantize="int8")``) and the
optimization study share it; :mod:`mlinfra_kit.optimization.quantization` measures it
against the other methods. ``torch.ao.quantization`` is deprecated in torch 2.14 (still
working, and on a small x86 CPU the fastest path); its notices are silenced here only.

Examples
--------
>>> from torch import nn
>>> small = dynamic_int8(nn.Sequential(nn.Linear(4, 2)))
>>> type(small[0]).__name__
'Linear'
>>> small[0].weight().dtype
torch.qint8
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator
from typing import cast

import torch
from torch import nn

__all__ = ["dynamic_int8", "quiet_deprecations"]


@contextlib.contextmanager
def quiet_deprecations() -> Iterator[None]:
    """Silence the known deprecation notices of torch.ao.quantization, in this block only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
        warnings.filterwarnings("ignore", message=".*torch.quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message="Please use quant_min and quant_max")
        yield


def dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy with every ``nn.Linear`` replaced by a dynamically quantized int8 one
    (weights int8, activations quantized on the fly; CPU only)."""
    with quiet_deprecations():
        from torch.ao.quantization import quantize_dynamic

        quantize = cast(Callable[..., nn.Module], quantize_dynamic)  # torch leaves it untyped
        return quantize(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
