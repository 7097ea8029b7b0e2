"""Turning text into token ids: a tokenizer and a vocabulary that can be saved as JSON.

Examples
--------
>>> tokenize("Object Detection with YOLO-v5, in PyTorch!")
['object', 'detection', 'with', 'yolo-v5', 'in', 'pytorch']
>>> features("fast object detection", ngrams=2)
['fast', 'object', 'detection', 'fast object', 'object detection']
>>> vocab = Vocabulary.build(["object detection", "object tracking"], min_freq=2)
>>> vocab.tokens
['<unk>', 'object']
>>> vocab.encode("object segmentation")  # "segmentation" and the pair are unknown
[1, 0, 0]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["tokenize", "features", "Vocabulary", "UNKNOWN"]

UNKNOWN = "<unk>"
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens; keeps hyphenated names (``yolo-v5``) and versions (``t5``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")
    return _TOKEN.findall(text.lower())


def features(text: str, ngrams: int = 2) -> list[str]:
    """Word n-grams up to ``ngrams`` (1 = words only): ``"object detection"`` is more
    telling than ``"object"`` and ``"detection"`` apart."""
    if ngrams < 1:
        raise ValueError(f"ngrams must be 1 or more, got {ngrams}")
    words = tokenize(text)
    grams = list(words)
    for n in range(2, ngrams + 1):
        grams += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return grams


@dataclass(frozen=True)
class Vocabulary:
    """Feature -> id mapping; id 0 is reserved for features never seen in training."""

    tokens: list[str]
    ngrams: int = 2

    @classmethod
    def build(
        cls, texts: Iterable[str], ngrams: int = 2, min_freq: int = 2, max_size: int | None = None
    ) -> Vocabulary:
        """Keep features seen at least ``min_freq`` times, most frequent first (ties in
        alphabetical order, so the result is deterministic)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be 1 or more, got {min_freq}")
        counts = Counter(f for text in texts for f in features(text, ngrams))
        kept = [f for f, c in counts.items() if c >= min_freq]
        kept.sort(key=lambda f: (-counts[f], f))
        if max_size is not None:
            kept = kept[: max(max_size - 1, 0)]
        return cls([UNKNOWN, *kept], ngrams)

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != UNKNOWN:
            raise ValueError(f"a vocabulary's first token must be {UNKNOWN!r}")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Ids of the text's features; unknown ones map to 0 (never an empty list, so
        every text has a representation)."""
        ids = [self._index.get(f, 0) for f in features(text, self.ngrams)]
        return ids or [0]

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def unknown_rate(self, texts: Sequence[str]) -> float:
        """Share of word features not in the vocabulary, a simple input-drift signal."""
        words = [w for t in texts for w in tokenize(t)]
        return sum(w not in self._index for w in words) / len(words) if words else 0.0

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens), "ngrams": self.ngrams}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        try:
            return cls(list(data["tokens"]), int(data["ngrams"]))
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a saved vocabulary: missing {err}") from None
