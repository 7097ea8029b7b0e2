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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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
#: What one remembered word costs beyond its characters and ids: a str's 49 bytes and an
#: array's 112 (sys.getsizeof on CPython 3.11, NumPy 2) and a dict slot's share.
_ENTRY_BYTES = 280
_NO_IDS = np.zeros(0, np.int64)
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens; keeps hyphenated names (``yolo-v5``) and versions (``t5``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")
    return _TOKEN.findall(text.lower())


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
    for n in range(2, ngrams + 1):  # each run of n words: zip the list with itself shifted
        grams += map(" ".join, zip(*(words[i:] for i in range(n)), strict=False))
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


class _WordCache(dict[str, np.ndarray]):
    """Word -> its known character n-gram ids, computed the first time the word is looked
    up (``ids_of``), bounded to :data:`CHAR_CACHE_BYTES`: full, it starts afresh. A word
    seen before costs one dictionary lookup in C."""

    def __init__(self, ids_of: Callable[[str], np.ndarray]) -> None:
        super().__init__()
        self.bytes = 0
        self._ids_of = ids_of

    def __missing__(self, word: str) -> np.ndarray:
        ids = self._ids_of(word)
        size = _ENTRY_BYTES + len(word) + 8 * len(ids)
        if self.bytes + size > CHAR_CACHE_BYTES:
            self.clear()
            self.bytes = 0
        self[word] = ids
        self.bytes += size
        return ids


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
        object.__setattr__(self, "_char_cache", _WordCache(self._char_ids))
        idf = np.asarray(self.idf if self.idf is not None else [], dtype=np.float64)
        object.__setattr__(self, "_idf_array", idf)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Ids of the text's features; unknown ones map to 0 (never an empty list, so
        every text has a representation)."""
        ids = [self._index.get(f, 0) for f in features(text, self.ngrams, self.char_ngrams)]
        return ids or [0]

    def encode_weighted(self, text: str) -> tuple[list[int], list[float]]:
        """The text's known features once each, with TF-IDF weights: ``(1 + ln tf) * idf``,
        word features and character features each scaled to unit length. A text with no
        known feature is ``([0], [1.0])``. One text's :meth:`encode_batch`, as lists.

        >>> vocab = Vocabulary.build(["a b", "a c"], ngrams=1, min_freq=1)
        >>> ids, weights = vocab.encode_weighted("b b b")
        >>> ids, [round(w, 3) for w in weights]
        ([2], [1.0])
        """
        ids, _, weights = self.encode_batch([text])
        return ids.tolist(), weights.tolist()

    def encode_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every text of a batch encoded at once, as the arrays an ``EmbeddingBag`` takes:
        ``(ids, offsets, weights)``, the ids and weights of text ``k`` starting at
        ``offsets[k]``. The same features and weights as :meth:`encode_weighted` per text
        (up to float32 rounding); within a text, its word features come first, then its
        character features, each part in the order of its ids.

        Only the lookups run per text in Python; the counting and the arithmetic run once
        for the whole batch in NumPy. Each feature becomes a key ``part * len(vocab) + id``
        (a part is a text's words or its characters), so one sort of the batch's keys
        groups every part's features together, in order, and counts each feature's
        repeats: its term frequency.

        >>> vocab = Vocabulary.build(["object detection", "object tracking"], min_freq=1)
        >>> ids, offsets, weights = vocab.encode_batch(["object detection", "gan"])
        >>> ids.tolist(), offsets.tolist()
        ([1, 2, 3, 0], [0, 3])
        """
        if not texts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        if len(texts) == 1:  # a lone request: the same arithmetic with fewer NumPy calls
            return self._encode_one(texts[0])
        size = len(self.tokens)
        per_text = 2 if self.char_ngrams else 1  # parts per text
        parts: list[np.ndarray] = []
        for words in map(tokenize, texts):
            parts.append(self._word_ids(words))
            if self.char_ngrams:
                parts.append(self._char_array(words))
        sizes = np.fromiter(map(len, parts), np.int64, len(parts))
        part_keys = np.arange(len(parts), dtype=np.int64) * size
        keys = np.repeat(part_keys, sizes) + np.concatenate(parts)
        # A text with nothing known: the unknown id alone, as its first part.
        blank = np.flatnonzero(sizes.reshape(-1, per_text).sum(axis=1) == 0)
        if blank.size:  # rare: no copy of the batch's keys otherwise
            keys = np.concatenate((keys, part_keys[blank * per_text]))
        keys, counts = np.unique(keys, return_counts=True)
        starts = np.searchsorted(keys, part_keys)  # each part's first feature
        distinct = np.diff(starts, append=len(keys))  # each part's distinct features
        ids = keys - np.repeat(part_keys, distinct)
        weights = 1.0 + np.log(counts)
        if self.idf:
            weights *= self._idf_array[ids]
        filled = distinct > 0
        norms = np.sqrt(np.add.reduceat(weights * weights, starts[filled]))
        norms[norms == 0] = 1.0
        weights /= np.repeat(norms, distinct[filled])
        weights[ids == 0] = 1.0  # id 0 only stands alone, for a text with nothing known
        offsets = starts[::per_text]
        return ids, offsets, weights.astype(np.float32)

    def _encode_one(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`encode_batch` of one text. A batch's fixed NumPy work (a key per part,
        each part's start found by a search, norms by ``reduceat``) is most of a lone text's
        cost; here the two parts' keys are the word ids and the character ids shifted past
        the vocabulary, one sort counts both, and each part's norm is one dot product."""
        size = len(self.tokens)
        words = tokenize(text)
        keys = self._word_ids(words)
        if self.char_ngrams:
            keys = np.concatenate((keys, self._char_array(words) + size))
        if not keys.size:  # nothing known: the unknown id alone
            return np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.float32)
        ids, counts = np.unique(keys, return_counts=True)
        chars = int(np.searchsorted(ids, size))  # where the character part starts
        ids[chars:] -= size
        weights = np.log(counts) + 1.0
        if self.idf:
            weights *= self._idf_array[ids]
        for part in (weights[:chars], weights[chars:]):
            norm = math.sqrt(part @ part)
            if norm:
                part /= norm
        return ids, np.zeros(1, np.int64), weights.astype(np.float32)

    def _word_ids(self, words: list[str]) -> np.ndarray:
        """The known ids of a text's word n-grams, in the text's order (repeats kept)."""
        return np.fromiter(
            filter(None, map(self._index.get, _word_grams(words, self.ngrams))), np.int64
        )

    def _char_array(self, words: list[str]) -> np.ndarray:
        """The known character n-gram ids of every word, in one array (repeats kept). Words
        repeat a lot, so each word's ids are remembered (most of the encoding's work), in
        a memory bounded in bytes (:data:`CHAR_CACHE_BYTES`): a stream of huge or unique
        words costs neither unbounded time nor unbounded memory."""
        return np.concatenate(list(map(self._char_cache.__getitem__, words))) if words else _NO_IDS

    def _char_ids(self, word: str) -> np.ndarray:
        """The known character n-gram ids of a word, read from its first
        :data:`MAX_CHAR_WORD` characters."""
        assert self.char_ngrams is not None  # only called when character n-grams are on
        grams = _char_grams(word, self.char_ngrams)
        return np.fromiter(filter(None, map(self._index.get, grams)), np.int64)

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
