"""The tag classifier's network and how texts reach it as tensors.

:class:`TextClassifierNet` is a bag of TF-IDF-weighted n-gram embeddings followed by class
logits; :func:`pack` and :func:`as_tensors` turn encoded texts into the ``(ids, offsets,
weights)`` triple ``nn.EmbeddingBag`` takes; :func:`torch_threads` sets the thread count
a small model runs with.

>>> import torch
>>> net = TextClassifierNet(vocab_size=10, n_classes=3)
>>> ids, offsets, weights = pack([([1, 2], [0.5, 0.5]), ([3], [1.0])], torch.device("cpu"))
>>> offsets.tolist(), net(ids, offsets, weights).shape
([0, 2], torch.Size([2, 3]))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from itertools import chain

import numpy as np
import torch
from torch import nn

__all__ = [
    "Batch",
    "TextClassifierNet",
    "as_tensors",
    "check_threads",
    "numpy_forward",
    "pack",
    "torch_threads",
]


class TextClassifierNet(nn.Module):
    """TF-IDF-weighted sum of n-gram embeddings, then class logits: directly (a linear
    model in factored form, ``hidden_dim=0``) or through one hidden ReLU layer."""

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        embed_dim: int = 4,
        hidden_dim: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="sum")
        if hidden_dim:
            self.head = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(embed_dim, hidden_dim),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden_dim, n_classes),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed_dim, n_classes))

    def forward(
        self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.embedding(ids, offsets, per_sample_weights=weights))
        return logits


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pack(encoded: Sequence[tuple[list[int], list[float]]], dev: torch.device) -> Batch:
    """Concatenate (ids, weights) pairs into the (ids, offsets, weights) EmbeddingBag takes."""
    lengths = [len(ids) for ids, _ in encoded]
    total = sum(lengths)
    # Through NumPy: building a tensor from a Python list costs several times more.
    ids = np.fromiter(chain.from_iterable(e for e, _ in encoded), dtype=np.int64, count=total)
    weights = np.fromiter(chain.from_iterable(w for _, w in encoded), np.float32, count=total)
    offsets = np.concatenate(([0], np.cumsum(lengths[:-1], dtype=np.int64)))
    return as_tensors((ids, offsets, weights), dev)


def as_tensors(arrays: tuple[np.ndarray, np.ndarray, np.ndarray], dev: torch.device) -> Batch:
    """``(ids, offsets, weights)`` arrays as tensors on ``dev``, sharing the arrays' memory."""
    ids, offsets, weights = (torch.from_numpy(a) for a in arrays)
    if dev.type == "cpu":  # already there: skip three no-op moves per batch
        return ids, offsets, weights
    return ids.to(dev), offsets.to(dev), weights.to(dev)


def numpy_forward(
    net: nn.Module,
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None:
    """The probabilities of a few encoded texts, ``forward(ids, offsets, weights) ->
    [texts, classes]`` (the arrays :func:`pack` and ``Vocabulary.encode_batch`` give),
    computed in NumPy from ``net``'s own parameters, as ``net`` computes them in evaluation
    (dropout off); None where ``net`` is not a plain float :class:`TextClassifierNet` on the
    CPU (quantized, on a GPU, or with hooks), whose forward pass only torch can run.

    Why a twin: this network is tiny (an embedding sum and one or two small matrix
    products), so for one text or a few torch's fixed cost per operator (dispatch, tensor
    wrappers, the ``inference_mode`` block) outweighs the arithmetic, and its larger code
    path is slower still on a core that was idle between requests (its caches cold). For
    larger batches torch's kernels win: callers choose the size (the server's
    ``numpy_max_batch``). The arrays are views of the parameters, not copies: weights
    changed in place are seen at once.

    >>> net = TextClassifierNet(vocab_size=10, n_classes=3, hidden_dim=5).eval()
    >>> arrays = np.array([1, 4, 2]), np.array([0, 2]), np.array([0.6, 0.8, 1.0], np.float32)
    >>> with torch.inference_mode():
    ...     expected = torch.softmax(net(*as_tensors(arrays, torch.device("cpu"))), 1).numpy()
    >>> bool(np.allclose(numpy_forward(net)(*arrays), expected, atol=1e-6))
    True
    """
    plain = (nn.Linear, nn.ReLU, nn.Dropout)
    if type(net) is not TextClassifierNet or any(
        not isinstance(m, plain) for m in net.head
    ):  # a quantized copy has other module types
        return None
    if any(m._forward_hooks or m._forward_pre_hooks for m in net.modules()) or any(
        p.device.type != "cpu" or p.dtype != torch.float32 for p in net.parameters()
    ):  # hooks (pruning's masks among them) change what the forward pass computes
        return None
    table = net.embedding.weight.detach().numpy()
    steps = [
        (m.weight.detach().numpy().T, m.bias.detach().numpy()) if isinstance(m, nn.Linear) else None
        for m in net.head
        if not isinstance(m, nn.Dropout)
    ]

    def forward(ids: np.ndarray, offsets: np.ndarray, weights: np.ndarray) -> np.ndarray:
        # EmbeddingBag(mode="sum") with per-sample weights: each text's weighted rows summed
        if len(offsets) == 1:
            x = (weights @ table[ids])[None, :]
        else:
            rows = table[ids] * weights[:, None]
            # reduceat needs every start inside the array, and sums nothing for no row:
            # a zero row after the last, and empty texts (no features) set to zero
            rows = np.concatenate((rows, np.zeros((1, rows.shape[1]), rows.dtype)))
            x = np.add.reduceat(rows, offsets, axis=0)
            x[np.diff(offsets, append=len(ids)) == 0] = 0.0
        for step in steps:
            x = np.maximum(x, 0.0) if step is None else x @ step[0] + step[1]  # ReLU or Linear
        x = np.exp(x - x.max(axis=1, keepdims=True))
        proba: np.ndarray = x / x.sum(axis=1, keepdims=True)
        return proba

    return forward


def check_threads(n: int | None) -> None:
    """Reject a thread count :func:`torch_threads` cannot set, where a model takes its
    settings (checked there once, not in the block entered per batch).

    >>> check_threads(0)
    Traceback (most recent call last):
    ...
    ValueError: threads must be 1 or more (or None: torch's), got 0
    """
    if n is not None and int(n) < 1:
        raise ValueError(f"threads must be 1 or more (or None: torch's), got {n}")


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` in this block (None: unchanged).

    Small models gain nothing from more threads: each call is too short to split, and
    idle threads spin on cores others need (an 8-epoch fit took about 1 s with one thread
    and 18-40 s with two on a busy 2-core machine)."""
    before = torch.get_num_threads()
    if n is None or n == before:  # nothing to change: no two calls per batch
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
