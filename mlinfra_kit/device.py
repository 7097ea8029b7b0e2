"""Choosing a compute device, and making GPU timings honest.

Every notebook takes a ``DEVICE`` parameter (``"auto"``, ``"cpu"``, ``"cuda"`` or
``"cuda:N"``) and passes it to :func:`pick`, so one notebook runs unchanged on a laptop
and on a GPU machine. CUDA kernels run asynchronously: a timer that does not call
:func:`synchronize` measures the launch, not the work.

Examples
--------
>>> from mlinfra_kit import device
>>> device.pick("cpu")
device(type='cpu')
>>> device.pick("tpu")
Traceback (most recent call last):
...
ValueError: unknown device 'tpu': use 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU index)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported lazily: importing this module stays cheap
    import torch

__all__ = ["pick", "synchronize", "is_cuda", "describe"]

_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def pick(spec: str | torch.device = "auto") -> torch.device:
    """Return the ``torch.device`` named by ``spec``, or a clear error.

    ``"auto"`` is the first GPU when CUDA is available, else the CPU. Asking for a GPU
    that this machine does not have raises ``ValueError`` rather than failing later
    inside a kernel.
    """
    import torch

    if isinstance(spec, torch.device):
        spec = str(spec)
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string such as 'auto' or 'cuda:0', not {spec!r}")
    match = _SPEC.match(spec.strip().lower())
    if match is None or (match.group(1) != "cuda" and match.group(2) is not None):
        raise ValueError(
            f"unknown device {spec!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU index)"
        )
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device {spec!r} asked for, but CUDA is not available on this machine: "
            "use DEVICE='cpu' or DEVICE='auto'"
        )
    count = torch.cuda.device_count()
    n = int(index or 0)
    if n >= count:
        raise ValueError(
            f"device {spec!r} asked for, but this machine has {count} GPU(s): "
            f"use an index from 0 to {count - 1}"
        )
    return torch.device("cuda", n)


def is_cuda(dev: object) -> bool:
    """True when ``dev`` (a ``torch.device``, a string or None) names a CUDA device."""
    if dev is None:
        return False
    return str(getattr(dev, "type", dev)).startswith("cuda")


def synchronize(dev: object = None) -> None:
    """Wait for queued GPU work on ``dev``; a no-op for the CPU or ``None``."""
    if is_cuda(dev):
        import torch

        torch.cuda.synchronize(dev)


def describe(dev: object) -> str:
    """A human label for a device: ``'cpu'`` or ``'cuda:0 (NVIDIA H100 ...)'``."""
    if not is_cuda(dev):
        return "cpu"
    import torch

    index = torch.device(dev).index or 0
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
