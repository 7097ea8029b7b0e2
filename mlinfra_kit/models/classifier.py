"""The tag classifier: TF-IDF-weighted word and character n-grams -> a bag of
embeddings -> class logits, in PyTorch.

Small and fast on purpose (it trains in seconds on one CPU thread and answers in well
under a millisecond), yet a real PyTorch model that the serving, optimization and
deployment notebooks measure as they would a bigger one. With its defaults it is a
linear model over TF-IDF features in factored form (``embed_dim`` as wide as there are
tags, no hidden layer): on the course's real projects that beats both a deeper
embedding MLP and word-only TF-IDF + logistic regression (``00_quickstart`` measures it).
Training is full-batch (an epoch is one step over every text), early-stopped on the
validation loss, then refit on training and validation data for the chosen number of
epochs. The network is in :mod:`mlinfra_kit.models.network`, the artifact on disk in
:mod:`mlinfra_kit.models.saving`; this module is the estimator.

Examples
--------
>>> texts = ["object detection with yolo", "image segmentation with u-net",
...          "machine translation with bert", "sentiment analysis of tweets"] * 5
>>> tags = ["computer-vision", "computer-vision",
...         "natural-language-processing", "natural-language-processing"] * 5
>>> model = TagClassifier(epochs=20, min_freq=1, progress=False, device="cpu")
>>> model = model.fit(texts, tags)
>>> model.predict(["pose estimation with yolo"])[0].tag
'computer-vision'
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlinfra_kit import device as _device
from mlinfra_kit.artifacts import check_quantize
from mlinfra_kit.data.projects import TAGS
from mlinfra_kit.models.evaluation import Evaluation, evaluate
from mlinfra_kit.models.network import (
    Batch,
    TextClassifierNet,
    as_tensors,
    check_threads,
    pack,
    torch_threads,
)
from mlinfra_kit.models.saving import read_artifact, write_artifact
from mlinfra_kit.models.text import Vocabulary
from mlinfra_kit.progress import bar as progress_bar

__all__ = ["BRIEF_EPOCHS", "EarlyStopping", "Prediction", "TagClassifier"]

#: Epochs of a briefly trained model, for quick runs that measure serving, not accuracy.
BRIEF_EPOCHS = 30


@dataclass(frozen=True)
class Prediction:
    """A predicted tag with the probability of every tag."""

    tag: str
    probabilities: dict[str, float]


def _check_texts(texts: Sequence[str], name: str = "texts") -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list of strings (wrap a single text in a list)")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{name}[{bad[0]}] is {type(texts[bad[0]]).__name__}, not a string")
    return list(texts)


@dataclass
class EarlyStopping:
    """When to stop training on a validation loss: after ``patience`` epochs without a new
    lowest loss (lower by more than ``min_delta``), but never before ``min_epochs``. The
    floor guards against a noisy early dip: an unlucky validation split can show its
    lowest loss in the first epochs and then rise for a while before falling further, and
    a refit for that early epoch count undertrains the model.

    >>> stop = EarlyStopping(patience=2, min_epochs=6)
    >>> [stop.update(e, loss) for e, loss in enumerate([0.5, 0.9, 0.9, 0.9, 0.4, 0.3], 1)]
    [True, False, False, False, True, True]
    >>> stop.best_epoch, stop.should_stop
    (6, False)
    """

    patience: int = 30
    min_epochs: int = 50
    min_delta: float = 1e-4
    best_loss: float = math.inf
    best_epoch: int = 0
    waited: int = 0
    epoch: int = 0

    def update(self, epoch: int, loss: float) -> bool:
        """Record ``epoch``'s validation loss; True when it is the best so far."""
        self.epoch = epoch
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = loss, epoch, 0
            return True
        self.waited += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.epoch >= self.min_epochs and self.waited >= self.patience


class TagClassifier:
    """Predicts one tag per text. Configure in ``__init__``, learn with :meth:`fit`.

    Learned state ends in ``_``: ``vocab_``, ``net_``, ``history_`` (one dict per epoch of
    the run with validation), ``best_epoch_``, ``train_seconds_`` (wall time of every
    epoch, refit included). Training is deterministic for a given ``seed`` on a given
    machine, runs on ``threads`` torch threads, and leaves the global random state and
    thread count untouched.
    """

    def __init__(
        self,
        tags: Sequence[str] = TAGS,
        embed_dim: int = 4,
        hidden_dim: int = 0,
        dropout: float = 0.0,
        ngrams: int = 2,
        char_ngrams: tuple[int, int] | None = (2, 5),
        min_freq: int = 2,
        max_vocab: int = 50_000,
        epochs: int = 300,
        batch_size: int | None = None,
        lr: float = 5e-2,
        l2: float = 3e-5,
        patience: int = 30,
        min_epochs: int = 50,
        class_weight: str | None = None,
        refit: bool = True,
        threads: int | None = 1,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ):
        self.tags = tags
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.ngrams = ngrams
        self.char_ngrams = char_ngrams
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.l2 = l2
        self.patience = patience
        self.min_epochs = min_epochs
        self.class_weight = class_weight
        self.refit = refit
        self.threads = threads
        self.seed = seed
        self.device = device
        self.progress = progress

    _PARAMS = (
        "tags",
        "embed_dim",
        "hidden_dim",
        "dropout",
        "ngrams",
        "char_ngrams",
        "min_freq",
        "max_vocab",
        "epochs",
        "batch_size",
        "lr",
        "l2",
        "patience",
        "min_epochs",
        "class_weight",
        "refit",
        "threads",
        "seed",
    )

    def get_params(self) -> dict[str, Any]:
        """The configuration that, with the data and seed, determines the trained model."""
        params = {name: getattr(self, name) for name in self._PARAMS}
        params["tags"] = list(params["tags"])
        if params["char_ngrams"] is not None:
            params["char_ngrams"] = list(params["char_ngrams"])
        return params

    # -- training ---------------------------------------------------------------------
    def _validate_labels(self, texts: Sequence[str], tags: Sequence[str], name: str) -> list[str]:
        texts = _check_texts(texts, f"{name}texts")
        if len(texts) != len(tags):
            raise ValueError(f"got {len(texts)} {name}texts but {len(tags)} {name}tags")
        unknown = sorted(set(tags) - set(self.tags))
        if unknown:
            raise ValueError(f"unknown tags {unknown}; this model predicts {list(self.tags)}")
        return texts

    def _class_weights(self, y: torch.Tensor) -> torch.Tensor | None:
        if self.class_weight is None:
            return None
        if self.class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced' or None, not {self.class_weight!r}")
        counts = torch.bincount(y, minlength=len(self.tags)).float().clamp(min=1)
        return counts.sum() / (len(self.tags) * counts)

    def _check_settings(self) -> None:
        for name in ("epochs", "patience", "min_epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be 1 or more, got {getattr(self, name)}")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be 1 or more (or None: all), got {self.batch_size}")
        check_threads(self.threads)
        if self.l2 < 0 or self.lr <= 0:
            raise ValueError(f"need lr > 0 and l2 >= 0, got lr={self.lr}, l2={self.l2}")

    def fit(
        self,
        texts: Sequence[str],
        tags: Sequence[str],
        val_texts: Sequence[str] | None = None,
        val_tags: Sequence[str] | None = None,
    ) -> TagClassifier:
        """Train from scratch. With a validation set, stop after ``patience`` epochs
        without a lower validation loss (never before ``min_epochs``:
        :class:`EarlyStopping`) and remember the best epoch; then, with
        ``refit``, train again on training and validation data together for that many
        epochs (more data, same amount of training). Without ``refit`` the best epoch's
        weights are kept."""
        texts = self._validate_labels(texts, tags, "")
        if not texts:
            raise ValueError("cannot fit on zero texts")
        val: tuple[list[str], list[str]] | None = None
        if val_texts is not None and val_tags is not None:
            val = (self._validate_labels(val_texts, val_tags, "val_"), list(val_tags))
        self._check_settings()
        self.tags = list(self.tags)
        self.device_ = _device.pick(self.device)
        start = time.perf_counter()
        with torch_threads(self.threads):
            self.history_: list[dict[str, float]] = []
            self.best_epoch_ = self.epochs
            self._fit_once(texts, list(tags), self.epochs, val)
            if val is not None and self.refit:
                self._fit_once([*texts, *val[0]], [*tags, *val[1]], self.best_epoch_, None)
        self.train_seconds_ = time.perf_counter() - start
        return self

    def _fit_once(
        self,
        texts: list[str],
        tags: list[str],
        epochs: int,
        val: tuple[list[str], list[str]] | None,
    ) -> None:
        """Build the vocabulary from ``texts`` and train a fresh network on them."""
        index = {t: i for i, t in enumerate(self.tags)}
        self.vocab_ = Vocabulary.build(
            texts, self.ngrams, self.min_freq, self.max_vocab, self.char_ngrams
        )
        encoded = [self.vocab_.encode_weighted(t) for t in texts]
        y = torch.tensor([index[t] for t in tags])
        forked = [self.device_] if _device.is_cuda(self.device_) else []
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(self.seed)
            self.net_: nn.Module = TextClassifierNet(
                len(self.vocab_), len(self.tags), self.embed_dim, self.hidden_dim, self.dropout
            ).to(self.device_)
            optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
            self._train(optimizer, encoded, y, epochs, val)

    def _train(
        self,
        optimizer: torch.optim.Optimizer,
        encoded: list[tuple[list[int], list[float]]],
        y: torch.Tensor,
        epochs: int,
        val: tuple[list[str], list[str]] | None,
    ) -> None:
        weights = self._class_weights(y)
        loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(self.device_))
        shuffle = torch.Generator().manual_seed(self.seed)
        size = self.batch_size or len(encoded)
        whole = pack(encoded, self.device_) if size >= len(encoded) else None
        target = y.to(self.device_)
        val_batch = None
        if val is not None:
            val_batch = pack([self.vocab_.encode_weighted(t) for t in val[0]], self.device_)
            val_y = torch.tensor([self.tags.index(t) for t in val[1]], device=self.device_)
        stopping, best_state = EarlyStopping(self.patience, self.min_epochs), None
        bar = progress_bar(range(1, epochs + 1), desc="training", unit="epoch", show=self.progress)
        for epoch in bar:
            tic = time.perf_counter()
            self.net_.train()
            if whole is not None:
                chunks = [(whole, target)]
            else:
                order = torch.randperm(len(encoded), generator=shuffle).tolist()
                chunks = [
                    (pack([encoded[j] for j in part], self.device_), target[part])
                    for part in (order[i : i + size] for i in range(0, len(order), size))
                ]
            total = 0.0
            for inputs, labels in chunks:
                loss = loss_fn(self.net_(*inputs), labels)
                if self.l2:
                    loss = loss + self.l2 * sum((p**2).sum() for p in self.net_.parameters())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(labels)
            if val_batch is None:
                continue
            row = {"epoch": epoch, "train_loss": total / len(encoded)}
            row.update(self._validation(val_batch, val_y, loss_fn))
            row["seconds"] = time.perf_counter() - tic
            self.history_.append(row)
            if epoch % 10 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
            if stopping.update(epoch, row["val_loss"]):
                self.best_epoch_ = epoch
                best_state = copy.deepcopy(self.net_.state_dict())
            elif stopping.should_stop:
                break
        bar.close()
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()

    def _validation(
        self, inputs: Batch, target: torch.Tensor, loss_fn: nn.CrossEntropyLoss
    ) -> dict[str, float]:
        self.net_.eval()
        with torch.inference_mode():
            logits = self.net_(*inputs)
            loss = nn.functional.cross_entropy(logits, target, weight=loss_fn.weight).item()
            predicted = logits.argmax(1).tolist()
        truth = [self.tags[i] for i in target.tolist()]
        ev = evaluate(truth, [self.tags[i] for i in predicted], self.tags)
        return {"val_loss": loss, "val_accuracy": ev.accuracy, "val_macro_f1": ev.macro_f1}

    # -- inference --------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this TagClassifier is not trained yet: call fit() or load()")

    def predict_proba(self, texts: Sequence[str], batch_size: int = 512) -> np.ndarray:
        """Probabilities, one row per text and one column per tag (in ``self.tags`` order)."""
        self._check_fitted()
        texts = _check_texts(texts)
        was_training = self.net_.training
        if was_training:  # eval() walks every module: only when it changes something
            self.net_.eval()
        parts = []
        with torch.inference_mode(), torch_threads(self.threads):
            for i in range(0, len(texts), batch_size):
                arrays = self.vocab_.encode_batch(texts[i : i + batch_size])
                logits = self.net_(*as_tensors(arrays, self.device_))
                parts.append(torch.softmax(logits, dim=1).cpu().numpy())
        if was_training:
            self.net_.train()
        if not parts:
            return np.zeros((0, len(self.tags)), dtype=np.float32)
        return np.concatenate(parts)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """The most likely tag of each text, with every tag's probability."""
        proba = self.predict_proba(texts)
        tags = self.tags
        return [  # tolist(): Python floats at once, not one NumPy scalar at a time
            Prediction(tags[row.index(max(row))], dict(zip(tags, row, strict=True)))
            for row in proba.tolist()
        ]

    def evaluate(self, texts: Sequence[str], tags: Sequence[str]) -> Evaluation:
        predicted = [p.tag for p in self.predict(texts)]
        return evaluate(list(tags), predicted, self.tags)

    # -- artifacts --------------------------------------------------------------------
    def save(
        self,
        path: str | os.PathLike[str],
        version: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> Path:
        """Write the artifact folder ``path`` (``weights.pt`` + ``metadata.json``,
        :func:`~mlinfra_kit.models.saving.write_artifact`).

        ``version`` defaults to a short hash of the weights, so two identical models get
        the same version. The folder is written beside and renamed into place: a crash
        never leaves a half-written artifact.
        """
        self._check_fitted()
        self.metadata_ = write_artifact(
            path,
            self.net_.state_dict(),
            version=version,
            tags=list(self.tags),
            params=self.get_params(),
            vocabulary=self.vocab_.to_dict(),
            metrics=metrics,
        )
        return Path(path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str = "cpu", quantize: str | None = None
    ) -> TagClassifier:
        """Load an artifact written by :meth:`save`. Weights are read with
        ``weights_only=True``: no code from the file is ever run. ``quantize="int8"``
        turns the linear layers into dynamic int8 ones after loading (CPU only)."""
        check_quantize(quantize)
        if quantize and _device.pick(device).type != "cpu":
            raise ValueError("quantize='int8' runs on the CPU only: pass device='cpu'")
        meta, state = read_artifact(path)
        params = dict(meta["params"])
        if params.get("char_ngrams") is not None:
            params["char_ngrams"] = tuple(params["char_ngrams"])
        model = cls(**params, device=device, progress=False)
        model.tags = list(meta["tags"])
        model.device_ = _device.pick(device)
        model.vocab_ = Vocabulary.from_dict(meta["vocabulary"])
        model.net_ = TextClassifierNet(
            len(model.vocab_), len(model.tags), model.embed_dim, model.hidden_dim, model.dropout
        )
        model.net_.load_state_dict(state)
        model.net_.to(model.device_).eval()
        if quantize == "int8":
            from mlinfra_kit.models.quantize import dynamic_int8

            model.net_ = dynamic_int8(model.net_)
        model.metadata_ = meta
        return model

    @property
    def version(self) -> str | None:
        """The artifact version once saved or loaded, else ``None``."""
        return getattr(self, "metadata_", {}).get("version")
