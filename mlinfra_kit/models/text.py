"""Turning text into weighted features: word n-grams and character n-grams, with TF-IDF
weights, in a vocabulary that is saved as JSON.

Word n-grams carry the topic (``"object detection"``); character n-grams within words
carry what words share (``"segment"``, ``"segmentation"``, ``"segmenter"``) and survive
typos and names the vocabulary never saw whole. Each text becomes a bag of feature ids
with TF-IDF weights (sublinear term frequency, smoothed inverse document frequency), the
word part and the character part each scaled to unit length, as a TF-IDF vectoriser
would do for each.

Examples
--------
>>> tokenize("Object Detection with YOLO-v5, in PyTorch!")
['object', 'detection', 'with', 'yolo-v5', 'in', 'pytorch']
>>> features("fast object detection", ngrams=2)
['fast', 'object', 'detection', 'fast object', 'object detection']
>>> features("yolo", ngrams=1, char_ngrams=(3, 4))
['yolo', '# yo', '#yol', '#olo', '#lo ', '# yol', '#yolo', '#olo ']
>>> vocab = Vocabulary.build(["object detection", "object tracking"], min_freq=2)
>>> vocab.tokens
['<unk>', 'object']
>>> vocab.encode("object segmentation")  # "segmentation" and the pair are unknown
[1, 0, 0]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, ClassVar

import numpy as np

__all__ = ["CHAR_MARK", "UNKNOWN", "Vocabulary", "features", "tokenize"]

UNKNOWN = "<unk>"
#: Character n-grams start with this mark, which no word token contains, so a word and a
#: character n-gram never share an id.
CHAR_MARK = "#"
#: A word's character n-grams come from its first this many characters (the longest word
#: in the course's projects has 53).
MAX_CHAR_WORD = 64
#: The most memory a vocabulary spends remembering words' character n-gram ids.
CHAR_CACHE_BYTES = 32 * 2**20
#: What one remembered word costs beyond its characters and ids: a str's 49 bytes and a
#: tuple's 40 (sys.getsizeof on CPython 3.11) and a dict slot's share.
_ENTRY_BYTES = 200
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens; keeps hyphenated names (``yolo-v5``) and versions (``t5``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")
    return _TOKEN.findall(text.lower())


class _LogTermFrequency(dict[int, float]):
    """``1 + ln(count)`` by count, computed once per count seen."""

    def __missing__(self, count: int) -> float:
        value = self[count] = 1.0 + math.log(count)
        return value


_LOG_TF = _LogTermFrequency()


def _check_char_ngrams(char_ngrams: tuple[int, int] | None) -> tuple[int, int] | None:
    if char_ngrams is None:
        return None
    low, high = (int(n) for n in char_ngrams)
    if not 1 <= low <= high:
        raise ValueError(
            f"char_ngrams must be (low, high) with 1 <= low <= high, got {char_ngrams}"
        )
    return low, high


def _word_grams(words: list[str], ngrams: int) -> list[str]:
    grams = list(words)
    for n in range(2, ngrams + 1):
        grams += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return grams


def _char_grams(word: str, span: tuple[int, int]) -> list[str]:
    padded = f" {word[:MAX_CHAR_WORD]} "
    return [
        CHAR_MARK + padded[i : i + n]
        for n in range(span[0], span[1] + 1)
        for i in range(len(padded) - n + 1)
    ]


def features(text: str, ngrams: int = 2, char_ngrams: tuple[int, int] | None = None) -> list[str]:
    """Word n-grams up to ``ngrams`` (1 = words only), then, with ``char_ngrams=(lo, hi)``,
    the character n-grams of each word padded with a space on each side (marked with
    :data:`CHAR_MARK`)."""
    if ngrams < 1:
        raise ValueError(f"ngrams must be 1 or more, got {ngrams}")
    words = tokenize(text)
    grams = _word_grams(words, ngrams)
    span = _check_char_ngrams(char_ngrams)
    if span:
        for word in words:
            grams += _char_grams(word, span)
    return grams


class _WordCache:
    """Word -> n-gram ids, bounded to :data:`CHAR_CACHE_BYTES`: full, it starts afresh."""

    __slots__ = ("bytes", "entries")

    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, ...]] = {}
        self.bytes = 0

    def put(self, word: str, ids: tuple[int, ...]) -> None:
        size = _ENTRY_BYTES + len(word) + 8 * len(ids)
        if self.bytes + size > CHAR_CACHE_BYTES:
            self.entries.clear()
            self.bytes = 0
        self.entries[word] = ids
        self.bytes += size


@dataclass(frozen=True)
class Vocabulary:
    """Feature -> id mapping with each feature's inverse document frequency; id 0 is
    reserved for features never seen in training."""

    tokens: list[str]
    ngrams: int = 2
    char_ngrams: tuple[int, int] | None = None
    #: Inverse document frequency per id (id 0: 0.0); None weighs every feature alike.
    idf: list[float] | None = None
    # Set in __post_init__, not fields (they are derived, never saved or compared):
    _index: ClassVar[dict[str, int]]  # feature -> id (a ClassVar only to the type checker)
    _char_cache: ClassVar[_WordCache]
    _idf_array: ClassVar[np.ndarray]

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        ngrams: int = 2,
        min_freq: int = 2,
        max_size: int | None = None,
        char_ngrams: tuple[int, int] | None = None,
    ) -> Vocabulary:
        """Keep features found in at least ``min_freq`` texts, most common first (ties in
        alphabetical order, so the result is deterministic), with their smoothed IDF
        ``ln((1 + n) / (1 + df)) + 1``."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be 1 or more, got {min_freq}")
        char_ngrams = _check_char_ngrams(char_ngrams)
        df: Counter[str] = Counter()
        n = 0
        for text in texts:
            df.update(set(features(text, ngrams, char_ngrams)))
            n += 1
        kept = [f for f, c in df.items() if c >= min_freq]
        kept.sort(key=lambda f: (-df[f], f))
        if max_size is not None:
            kept = kept[: max(max_size - 1, 0)]
        idf = [0.0] + [math.log((1 + n) / (1 + df[f])) + 1 for f in kept]
        return cls([UNKNOWN, *kept], ngrams, char_ngrams, idf)

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != UNKNOWN:
            raise ValueError(f"a vocabulary's first token must be {UNKNOWN!r}")
        if self.idf is not None and len(self.idf) != len(self.tokens):
            raise ValueError(f"idf has {len(self.idf)} values for {len(self.tokens)} tokens")
        object.__setattr__(self, "char_ngrams", _check_char_ngrams(self.char_ngrams))
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})
        object.__setattr__(self, "_char_cache", _WordCache())
        idf = np.asarray(self.idf if self.idf is not None else [], dtype=np.float64)
        object.__setattr__(self, "_idf_array", idf)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Ids of the text's features; unknown ones map to 0 (never an empty list, so
        every text has a representation)."""
        ids = [self._index.get(f, 0) for f in features(text, self.ngrams, self.char_ngrams)]
        return ids or [0]

    def _feature_counts(self, text: str) -> list[Counter[int]]:
        """How often each known feature id occurs in ``text``: its word n-grams, then (with
        ``char_ngrams``) its words' character n-grams, counted in one pass each (in C)."""
        words = tokenize(text)
        parts = [Counter(filter(None, map(self._index.get, _word_grams(words, self.ngrams))))]
        if self.char_ngrams:
            parts.append(Counter(chain.from_iterable(map(self._char_ids, words))))
        return parts

    def encode_weighted(self, text: str) -> tuple[list[int], list[float]]:
        """The text's known features once each, with TF-IDF weights: ``(1 + ln tf) * idf``,
        word features and character features each scaled to unit length. A text with no
        known feature is ``([0], [1.0])``.

        Training encodes every text with it (a server encodes a batch at once, with
        :meth:`encode_batch`), so it stays in C where it can: ``1 + ln tf`` comes from a
        table, the norm from ``math.hypot``.
        """
        parts = self._feature_counts(text)
        ids: list[int] = []
        weights: list[float] = []
        idf = self.idf
        for counts in parts:
            if idf:
                part = [_LOG_TF[c] * idf[i] for i, c in counts.items()]
            else:
                part = [_LOG_TF[c] for c in counts.values()]
            norm = math.hypot(*part) or 1.0
            ids += counts
            weights += [w / norm for w in part]
        return (ids, weights) if ids else ([0], [1.0])

    def encode_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every text of a batch encoded at once, as the arrays an ``EmbeddingBag`` takes:
        ``(ids, offsets, weights)``, the ids and weights of text ``k`` starting at
        ``offsets[k]``. The same features and weights as :meth:`encode_weighted` per text
        (up to float32 rounding), in the same order; the counting stays per text (a
        ``Counter``, in C), the arithmetic runs once for the whole batch in NumPy.

        >>> vocab = Vocabulary.build(["object detection", "object tracking"], min_freq=1)
        >>> ids, offsets, weights = vocab.encode_batch(["object detection", "gan"])
        >>> ids.tolist(), offsets.tolist()
        ([1, 2, 3, 0], [0, 3])
        """
        if not texts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        keys: list[Iterable[int]] = []
        counts: list[Iterable[int]] = []
        sizes: list[int] = []  # features per part: a text's words, then its characters
        lengths: list[int] = []  # features per text
        for text in texts:
            parts = self._feature_counts(text)
            if not any(parts):  # nothing known: the unknown id, weight 1
                parts = [Counter({0: 1})]
            for part in parts:
                keys.append(part.keys())
                counts.append(part.values())
                sizes.append(len(part))
            lengths.append(sum(map(len, parts)))
        total = sum(sizes)
        ids = np.fromiter(chain.from_iterable(keys), np.int64, total)
        weights = 1.0 + np.log(np.fromiter(chain.from_iterable(counts), np.float64, total))
        if self.idf:
            weights *= self._idf_array[ids]
        per_part = np.asarray(sizes)
        starts = np.concatenate(([0], np.cumsum(per_part[:-1])))
        norms = np.ones(len(sizes))
        filled = per_part > 0
        norms[filled] = np.sqrt(np.add.reduceat(weights * weights, starts[filled]))
        norms[norms == 0] = 1.0
        weights /= np.repeat(norms, per_part)
        weights[ids == 0] = 1.0  # id 0 only stands alone, for a text with nothing known
        offsets = np.concatenate(([0], np.cumsum(lengths[:-1], dtype=np.int64)))
        return ids, offsets[: len(texts)], weights.astype(np.float32)

    def _char_ids(self, word: str) -> tuple[int, ...]:
        """The known character n-gram ids of a word, remembered (words repeat a lot, and
        this is most of the encoding's work). A word's n-grams are read from its first
        :data:`MAX_CHAR_WORD` characters, and the memory is bounded in bytes
        (:data:`CHAR_CACHE_BYTES`; full, it starts afresh): a stream of huge or unique
        words costs neither unbounded time nor unbounded memory."""
        cache = self._char_cache
        ids = cache.entries.get(word)
        if ids is None:
            index = self._index
            assert self.char_ngrams is not None  # only called when character n-grams are on
            ids = tuple(i for i in map(index.get, _char_grams(word, self.char_ngrams)) if i)
            cache.put(word, ids)
        return ids

    def char_cache_bytes(self) -> int:
        """About how many bytes the remembered words' n-gram ids take now."""
        return self._char_cache.bytes

    def unknown_rate(self, texts: Sequence[str]) -> float:
        """Share of word features not in the vocabulary, a simple input-drift signal."""
        words = [w for t in texts for w in tokenize(t)]
        return sum(w not in self._index for w in words) / len(words) if words else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": list(self.tokens),
            "ngrams": self.ngrams,
            "char_ngrams": list(self.char_ngrams) if self.char_ngrams else None,
            "idf": list(self.idf) if self.idf is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        try:
            chars = data.get("char_ngrams")
            return cls(
                list(data["tokens"]),
                int(data["ngrams"]),
                tuple(chars) if chars else None,
                list(data["idf"]) if data.get("idf") is not None else None,
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a saved vocabulary: missing {err}") from None
