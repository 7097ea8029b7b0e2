"""Quantization: store weights (and compute) in int8 instead of float32.

Two generations of PyTorch APIs, both here because readers meet both:

- **classic eager mode** (``torch.ao.quantization``): :func:`dynamic_int8` (weights int8,
  activations quantized on the fly: for linear-heavy models) and :func:`static_int8`
  (weights and activations int8, scales calibrated on sample data: for CNNs). Deprecated
  in torch 2.14, still working, and on a small x86 CPU the fastest of the lot;
- **torchao**, where PyTorch's quantization now lives: :func:`torchao_int8`
  (``quantize_`` with int8 dynamic activations and int8 weights, eager or compiled) and
  :func:`pt2e_int8` (export, calibrate with the X86 Inductor quantizer, compile).

The deprecation warnings of the classic path are silenced inside these functions only.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from mlinfra_kit.models.quantize import dynamic_int8
from mlinfra_kit.models.quantize import quiet_deprecations as _quiet_deprecations
from mlinfra_kit.services import quiet_loggers

__all__ = ["dynamic_int8", "is_quantized", "pt2e_int8", "static_int8", "torchao_int8"]


def static_int8(
    model: nn.Module,
    calibration: Iterable[torch.Tensor],
    fuse: Sequence[Sequence[str]] = (),
    backend: str = "x86",
) -> nn.Module:
    """Post-training static int8 (eager mode): fuse ``fuse`` groups (e.g. conv + relu),
    observe activation ranges on ``calibration`` batches, convert. ``model`` must have
    ``QuantStub``/``DeQuantStub`` at its input and output (as ``SmallCNN`` has)."""
    if backend not in torch.backends.quantized.supported_engines:
        raise ValueError(
            f"quantized backend {backend!r} is not available here; supported: "
            f"{torch.backends.quantized.supported_engines}"
        )
    with _quiet_deprecations():
        from torch.ao import quantization as tq

        previous = torch.backends.quantized.engine
        torch.backends.quantized.engine = backend
        try:
            prepared = copy.deepcopy(model).eval()
            if fuse:
                tq.fuse_modules(prepared, [list(group) for group in fuse], inplace=True)
            prepared.qconfig = tq.get_default_qconfig(backend)
            tq.prepare(prepared, inplace=True)
            seen = 0
            with torch.inference_mode():
                for batch in calibration:
                    prepared(batch)
                    seen += 1
            if not seen:
                raise ValueError("static quantization needs at least one calibration batch")
            return tq.convert(prepared)
        finally:  # the engine is process-wide: leave it as it was
            torch.backends.quantized.engine = previous


@contextlib.contextmanager
def _quiet_torchao_import() -> Iterator[None]:
    """Importing torchao 0.18 under torch 2.14 logs a deprecation notice of torch's pytree
    registry, and Inductor's first compile on a machine without CUDA logs that it found
    none (details nothing the user can act on): keep them off the output. Inductor's C++
    helper module is imported here, once, so its notice is logged (and dropped) now rather
    than at the first compiled call."""
    names = ("torch.utils._pytree", "torch.utils.cpp_extension")
    with quiet_loggers(names, logging.ERROR), _quiet_deprecations():
        import torch.utils.cpp_extension  # noqa: F401

        yield


def torchao_int8(model: nn.Module, compile: bool = False) -> Callable[..., Any]:
    """torchao's int8 dynamic-activation / int8-weight quantization of the linear layers.

    In eager mode its quantized tensors dispatch op by op in Python, which costs more than
    it saves on small layers; ``compile=True`` lets Inductor fuse them.
    """
    with _quiet_torchao_import():
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantized = copy.deepcopy(model).eval()
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig())
    return torch.compile(quantized) if compile else quantized


class _BucketedGraphs(nn.Module):
    """Compiled PT2E graphs for two static batch sizes: 1, and the calibration batch.

    With a dynamic batch dimension, Inductor's quantized-convolution lowering in torch
    2.14 accepted only the batch sizes it was first run with (others failed a stride
    check), so each size gets its own static graph: a batch of 1 runs as is, a larger one
    in chunks of ``batch``, the last chunk zero-padded.
    """

    def __init__(self, graphs: dict[int, nn.Module], reference: nn.Module, batch: int):
        super().__init__()
        self.reference = reference  # the converted int8 graph: its state is what ships
        self._graphs = graphs  # compiled, not registered: their weights are the reference's
        self.batch = batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) == 1:
            return self._graphs[1](x)
        outputs = []
        for chunk in x.split(self.batch):
            n = len(chunk)
            if n < self.batch:
                pad = chunk.new_zeros((self.batch - n, *chunk.shape[1:]))
                chunk = torch.cat([chunk, pad])
            outputs.append(self._graphs[self.batch](chunk)[:n])
        return torch.cat(outputs)


def pt2e_int8(
    model: nn.Module, example: torch.Tensor, calibration: Sequence[torch.Tensor]
) -> nn.Module:
    """The maintained path for static int8: ``torch.export``, ``prepare_pt2e`` with the
    X86 Inductor quantizer, calibration, ``convert_pt2e``, then ``torch.compile`` with
    Inductor's freezing on (without it the quantized graph is slow). ``example`` sets the
    batch size of the larger graph (see :class:`_BucketedGraphs`)."""
    import torch._inductor.config as inductor_config

    with _quiet_torchao_import():
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401

    if not calibration:
        raise ValueError("static quantization needs at least one calibration batch")
    inductor_config.freezing = True
    graphs = {}
    for batch in sorted({1, len(example)}):
        with _quiet_deprecations():  # the observers' notices about their own options
            graphs[batch], converted = _pt2e_graph(model, example[:batch], calibration)
    return _BucketedGraphs(graphs, converted, len(example))


def _pt2e_graph(
    model: nn.Module, sample: torch.Tensor, calibration: Sequence[torch.Tensor]
) -> tuple[Callable[..., Any], nn.Module]:
    """One static graph for ``len(sample)`` rows: exported, calibrated on the calibration
    chunks of that size, converted, compiled (and run once). Returns (compiled, converted).
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    batch = len(sample)
    exported = torch.export.export(copy.deepcopy(model).eval(), (sample,)).module()
    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for data in calibration:
            for chunk in data.split(batch):
                if len(chunk) == batch:
                    prepared(chunk)
    converted = convert_pt2e(prepared)
    compiled = torch.compile(converted)
    with torch.no_grad():
        compiled(sample)  # compile now, not inside the first timed call
    return compiled, converted


def is_quantized(model: nn.Module) -> bool:
    """Whether any layer of ``model`` holds int8 weights (eager quantized modules)."""
    for module in model.modules():
        weight = getattr(module, "weight", None)
        weight = weight() if callable(weight) else weight
        if isinstance(weight, torch.Tensor) and weight.dtype in (torch.qint8, torch.quint8):
            return True
    return False
