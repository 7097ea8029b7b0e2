"""Models to compress, trained here from scratch, and the image data they learn from.

- :func:`mlp`: a linear-heavy classifier (most of its time is matrix products: what
  dynamic int8 quantization and neuron pruning speed up);
- :class:`SmallCNN`: a small convolutional net for 8x8 digits, with the quant/dequant stubs
  eager static quantization needs (identities in float mode);
- :func:`load_digits`: scikit-learn's handwritten digits (1,797 images, shipped inside the
  package: no download), split and standardised;
- :func:`train` and :func:`accuracy`: a plain, seeded training loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from mlinfra_kit.progress import bar as progress_bar

__all__ = ["ImageData", "SmallCNN", "accuracy", "load_digits", "mlp", "train"]

_Net = TypeVar("_Net", bound=nn.Module)


def mlp(sizes: Sequence[int] = (64, 1024, 1024, 10), seed: int = 0) -> nn.Sequential:
    """Linear -> ReLU -> ... -> Linear with the given layer widths."""
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"sizes needs at least an input and an output width, got {sizes}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """conv(1->c) -> ReLU -> conv(c->2c) -> ReLU -> pool -> linear, for 1x8x8 images."""

    def __init__(self, channels: int = 32, n_classes: int = 10, seed: int = 0):
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.quant = QuantStub()
            self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
            self.relu2 = nn.ReLU()
            self.pool = nn.AdaptiveAvgPool2d(2)
            self.fc = nn.Linear(2 * channels * 4, n_classes)
            self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        x = self.relu1(self.conv1(x))
        x = self.pool(self.relu2(self.conv2(x)))
        return self.dequant(self.fc(torch.flatten(x, 1)))


@dataclass(frozen=True)
class ImageData:
    """Images and labels, split into train and test tensors."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def flat(self) -> ImageData:
        """The same images as 64-feature vectors, for an MLP."""
        return ImageData(self.x_train.flatten(1), self.y_train, self.x_test.flatten(1), self.y_test)


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> ImageData:
    """scikit-learn's 8x8 digits as ``(N, 1, 8, 8)`` float tensors, standardised with the
    training split's statistics, split at random (seeded)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits as sk_digits

    digits = sk_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return ImageData(x[train], y[train], x[test], y[test])


def train(
    model: _Net,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 20,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> _Net:
    """Adam on cross-entropy; deterministic under ``seed``; returns the model in eval mode."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must be non-empty and the same length ({len(x)}, {len(y)})")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in progress_bar(range(epochs), desc=desc, show=progress):
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())
