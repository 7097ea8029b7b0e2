"""The baseline tag classifier: bag of word n-grams -> EmbeddingBag -> small MLP.

Small and fast on purpose (it trains in seconds on 2 CPU cores), yet a real PyTorch
model: the serving, optimization and deployment notebooks measure it as they would a
bigger one.

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
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mlinfra_kit import __version__
from mlinfra_kit import device as _device
from mlinfra_kit.artifacts import METADATA_FILE, WEIGHTS_FILE, check_quantize, is_artifact
from mlinfra_kit.data.projects import TAGS
from mlinfra_kit.models.evaluation import Evaluation, evaluate
from mlinfra_kit.models.text import Vocabulary

__all__ = ["TagClassifier", "TextClassifierNet", "Prediction", "ARTIFACT_FORMAT"]

ARTIFACT_FORMAT = "mlinfra-kit.tag-classifier"


class TextClassifierNet(nn.Module):
    """Mean of the n-gram embeddings, then a one-hidden-layer MLP to class logits."""

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        embed_dim: int = 64,
        hidden_dim: int = 64,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean")
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(embed_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, n_classes),
        )

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(ids, offsets))


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


def _batch(encoded: Sequence[list[int]], dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate id lists into the (ids, offsets) pair EmbeddingBag takes."""
    lengths = [len(e) for e in encoded]
    ids = torch.tensor([i for e in encoded for i in e], dtype=torch.long)
    offsets = torch.tensor([0, *np.cumsum(lengths[:-1]).tolist()], dtype=torch.long)
    return ids.to(dev), offsets.to(dev)


class TagClassifier:
    """Predicts one tag per text. Configure in ``__init__``, learn with :meth:`fit`.

    Learned state ends in ``_``: ``vocab_``, ``net_``, ``history_`` (one dict per epoch),
    ``best_epoch_``, ``train_seconds_`` (the epochs' wall time). Training is
    deterministic for a given ``seed`` on a given machine, and leaves the global random
    state untouched.
    """

    def __init__(
        self,
        tags: Sequence[str] = TAGS,
        embed_dim: int = 64,
        hidden_dim: int = 64,
        dropout: float = 0.3,
        ngrams: int = 2,
        min_freq: int = 2,
        max_vocab: int = 20_000,
        epochs: int = 30,
        batch_size: int = 32,
        lr: float = 5e-3,
        weight_decay: float = 1e-4,
        patience: int = 4,
        class_weight: str | None = "balanced",
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ):
        self.tags = tags
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.ngrams = ngrams
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.class_weight = class_weight
        self.seed = seed
        self.device = device
        self.progress = progress

    _PARAMS = (
        "tags",
        "embed_dim",
        "hidden_dim",
        "dropout",
        "ngrams",
        "min_freq",
        "max_vocab",
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "patience",
        "class_weight",
        "seed",
    )

    def get_params(self) -> dict[str, Any]:
        """The configuration that, with the data and seed, determines the trained model."""
        params = {name: getattr(self, name) for name in self._PARAMS}
        params["tags"] = list(params["tags"])
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

    def fit(
        self,
        texts: Sequence[str],
        tags: Sequence[str],
        val_texts: Sequence[str] | None = None,
        val_tags: Sequence[str] | None = None,
    ) -> TagClassifier:
        """Train from scratch. With a validation set, stop after ``patience`` epochs
        without a lower validation loss and keep the best epoch's weights."""
        texts = self._validate_labels(texts, tags, "")
        if not texts:
            raise ValueError("cannot fit on zero texts")
        has_val = val_texts is not None and val_tags is not None
        if has_val:
            val_texts = self._validate_labels(val_texts, val_tags, "val_")
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be 1 or more, got {getattr(self, name)}")

        self.tags = list(self.tags)
        self.device_ = _device.pick(self.device)
        index = {t: i for i, t in enumerate(self.tags)}
        self.vocab_ = Vocabulary.build(texts, self.ngrams, self.min_freq, self.max_vocab)
        encoded = self.vocab_.encode_many(texts)
        y = torch.tensor([index[t] for t in tags])

        forked = [self.device_] if _device.is_cuda(self.device_) else []
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(self.seed)
            self.net_ = TextClassifierNet(
                len(self.vocab_), len(self.tags), self.embed_dim, self.hidden_dim, self.dropout
            ).to(self.device_)
            # Built before the clock starts: the first optimizer imports torch._dynamo
            # (seconds), a one-off cost that is not training.
            optimizer = torch.optim.AdamW(
                self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
            start = time.perf_counter()
            self._train(optimizer, encoded, y, val_texts if has_val else None, val_tags)
            self.train_seconds_ = time.perf_counter() - start
        return self

    def _train(self, optimizer, encoded, y, val_texts, val_tags) -> None:
        weights = self._class_weights(y)
        loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(self.device_))
        shuffle = torch.Generator().manual_seed(self.seed)
        self.history_: list[dict[str, float]] = []
        best_loss, best_state, waited = math.inf, None, 0
        self.best_epoch_ = self.epochs
        bar = tqdm(
            range(1, self.epochs + 1), desc="training", unit="epoch", disable=not self.progress
        )
        for epoch in bar:
            tic = time.perf_counter()
            self.net_.train()
            order = torch.randperm(len(encoded), generator=shuffle).tolist()
            total = 0.0
            for i in range(0, len(order), self.batch_size):
                chunk = order[i : i + self.batch_size]
                ids, offsets = _batch([encoded[j] for j in chunk], self.device_)
                loss = loss_fn(self.net_(ids, offsets), y[chunk].to(self.device_))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(chunk)
            row = {"epoch": epoch, "train_loss": total / len(order)}
            if val_texts is not None:
                row.update(self._validation(val_texts, val_tags, loss_fn))
            row["seconds"] = time.perf_counter() - tic
            self.history_.append(row)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
            if val_texts is None:
                continue
            if row["val_loss"] < best_loss - 1e-4:
                best_loss, waited, self.best_epoch_ = row["val_loss"], 0, epoch
                best_state = copy.deepcopy(self.net_.state_dict())
            else:
                waited += 1
                if waited >= self.patience:
                    break
        bar.close()
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()

    def _validation(self, texts, tags, loss_fn) -> dict[str, float]:
        proba = self.predict_proba(texts)
        target = torch.tensor([self.tags.index(t) for t in tags], device=self.device_)
        with torch.inference_mode():
            loss = nn.functional.nll_loss(
                torch.log(torch.as_tensor(proba, device=self.device_).clamp(min=1e-12)),
                target,
                weight=loss_fn.weight,
            ).item()
        ev = evaluate(list(tags), [self.tags[i] for i in proba.argmax(1)], self.tags)
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
        self.net_.eval()
        parts = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                ids, offsets = _batch(
                    self.vocab_.encode_many(texts[i : i + batch_size]), self.device_
                )
                parts.append(torch.softmax(self.net_(ids, offsets), dim=1).cpu().numpy())
        self.net_.train(was_training)
        if not parts:
            return np.zeros((0, len(self.tags)), dtype=np.float32)
        return np.concatenate(parts)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """The most likely tag of each text, with every tag's probability."""
        proba = self.predict_proba(texts)
        return [
            Prediction(
                self.tags[int(row.argmax())],
                {t: float(p) for t, p in zip(self.tags, row, strict=True)},
            )
            for row in proba
        ]

    def evaluate(self, texts: Sequence[str], tags: Sequence[str]) -> Evaluation:
        predicted = [p.tag for p in self.predict(texts)]
        return evaluate(list(tags), predicted, self.tags)

    # -- artifacts --------------------------------------------------------------------
    def save(
        self,
        path: str | os.PathLike,
        version: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> Path:
        """Write the artifact folder ``path`` (``weights.pt`` + ``metadata.json``).

        ``version`` defaults to a short hash of the weights, so two identical models get
        the same version. The folder is written beside and renamed into place: a crash
        never leaves a half-written artifact.
        """
        self._check_fitted()
        buffer = io.BytesIO()
        torch.save({k: v.cpu() for k, v in self.net_.state_dict().items()}, buffer)
        weights = buffer.getvalue()
        meta = {
            "format": ARTIFACT_FORMAT,
            "format_version": 1,
            "version": str(version)
            if version is not None
            else hashlib.sha256(weights).hexdigest()[:12],
            "tags": list(self.tags),
            "params": self.get_params(),
            "vocabulary": self.vocab_.to_dict(),
            "metrics": dict(metrics or {}),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "mlinfra_kit": __version__,
            "torch": torch.__version__,
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            (staging / WEIGHTS_FILE).write_bytes(weights)
            (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                target.rename(old)
                staging.rename(target)
                shutil.rmtree(old)
            else:
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.metadata_ = meta
        return target

    @classmethod
    def load(
        cls, path: str | os.PathLike, device: str = "cpu", quantize: str | None = None
    ) -> TagClassifier:
        """Load an artifact written by :meth:`save`. Weights are read with
        ``weights_only=True``: no code from the file is ever run. ``quantize="int8"``
        turns the linear layers into dynamic int8 ones after loading (CPU only)."""
        check_quantize(quantize)
        if quantize and _device.pick(device).type != "cpu":
            raise ValueError("quantize='int8' runs on the CPU only: pass device='cpu'")
        path = Path(path)
        meta_path = path / METADATA_FILE
        if not is_artifact(path):
            raise FileNotFoundError(
                f"{path} is not a model artifact: expected {METADATA_FILE} and "
                f"{WEIGHTS_FILE} inside"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{meta_path} is not valid JSON: {err}") from None
        if meta.get("format") != ARTIFACT_FORMAT or meta.get("format_version") != 1:
            raise ValueError(
                f"{path} is not a {ARTIFACT_FORMAT} artifact of format_version 1 "
                f"(found format={meta.get('format')!r}, version={meta.get('format_version')!r})"
            )
        model = cls(**meta["params"], device=device, progress=False)
        model.tags = list(meta["tags"])
        model.device_ = _device.pick(device)
        model.vocab_ = Vocabulary.from_dict(meta["vocabulary"])
        model.net_ = TextClassifierNet(
            len(model.vocab_), len(model.tags), model.embed_dim, model.hidden_dim, model.dropout
        )
        state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
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
