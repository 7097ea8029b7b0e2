import pytest

from mlinfra_kit.models import Vocabulary, features, tokenize


def test_tokenize_keeps_names_and_versions():
    assert tokenize("GPT-2 & T5: Seq2Seq (v1.5) for don't-care") == [
        "gpt-2",
        "t5",
        "seq2seq",
        "v1.5",
        "for",
        "don't-care",
    ]
    with pytest.raises(TypeError, match="must be a string"):
        tokenize(None)


def test_features_adds_ngrams():
    assert features("a b c", ngrams=3) == ["a", "b", "c", "a b", "b c", "a b c"]
    assert features("a b", ngrams=1) == ["a", "b"]
    with pytest.raises(ValueError, match="ngrams"):
        features("a", ngrams=0)


def test_vocabulary_is_deterministic_and_bounded():
    texts = ["b a", "a b", "c a"]
    vocab = Vocabulary.build(texts, ngrams=1, min_freq=1)
    assert vocab.tokens == ["<unk>", "a", "b", "c"]  # by frequency, then alphabetically
    assert Vocabulary.build(texts, ngrams=1, min_freq=1, max_size=2).tokens == ["<unk>", "a"]
    assert vocab.encode("a z") == [1, 0]
    assert vocab.encode("") == [0]
    assert vocab.unknown_rate(["a z", "z z"]) == 0.75
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    with pytest.raises(ValueError, match="min_freq"):
        Vocabulary.build(texts, min_freq=0)
    with pytest.raises(ValueError, match="not a saved vocabulary"):
        Vocabulary.from_dict({"ngrams": 1})
    with pytest.raises(ValueError, match="first token"):
        Vocabulary(["a"])


def test_huge_and_unique_words_cost_bounded_time_and_memory(monkeypatch):
    from mlinfra_kit.models import text

    vocab = text.Vocabulary.build(
        ["object detection with yolo", "machine translation"], min_freq=1, char_ngrams=(2, 5)
    )
    long_word = "detection" * 400  # 3,600 letters
    assert vocab.encode_weighted(long_word) == vocab.encode_weighted(
        long_word[: text.MAX_CHAR_WORD]
    )
    monkeypatch.setattr(text, "CHAR_CACHE_BYTES", 200_000)
    for i in range(3_000):
        vocab.encode_weighted(f"w{i}" + "q" * 3_800)
        assert vocab.char_cache_bytes() <= 200_000
    assert vocab.encode_weighted("yolo detection") == vocab.encode_weighted("yolo detection")


def test_weights_are_sublinear_tf_idf_scaled_per_part():
    """Computed by hand: (1 + ln tf) * idf, the word part and the character part each of
    unit length, every feature once."""
    import math

    vocab = Vocabulary.build(["a b", "a c", "b"], ngrams=1, min_freq=1, char_ngrams=(3, 3))
    idf = dict(zip(vocab.tokens, vocab.idf, strict=True))
    assert idf["a"] == pytest.approx(math.log(4 / 3) + 1)
    ids, weights = vocab.encode_weighted("a a b zz")
    got = dict(zip((vocab.tokens[i] for i in ids), weights, strict=True))
    a, b = (1 + math.log(2)) * idf["a"], idf["b"]
    chars = {"# a ": (1 + math.log(2)) * idf["# a "], "# b ": idf["# b "]}
    char_norm = math.hypot(*chars.values())
    assert got == pytest.approx(
        {"a": a / math.hypot(a, b), "b": b / math.hypot(a, b)}
        | {k: v / char_norm for k, v in chars.items()},
        abs=1e-6,
    )
    assert vocab.encode_weighted("zz qq") == ([0], [1.0])


@pytest.mark.parametrize("char_ngrams", [(2, 4), None])
def test_a_batch_encodes_as_its_texts_one_by_one(projects, char_ngrams):
    """encode_batch gives encode_weighted's features and weights, text by text, in order
    (within a text, its features in the order of their ids). encode_weighted takes the
    lone text's path, so this also checks that path against the batch's."""
    vocab = Vocabulary.build([p.text for p in projects[:300]], ngrams=2, char_ngrams=char_ngrams)
    texts = [p.text for p in projects[300:360]] + ["", "zzz qqq", "object"]
    ids, offsets, weights = vocab.encode_batch(texts)
    ends = [*offsets[1:].tolist(), len(ids)]
    for text, start, end in zip(texts, offsets.tolist(), ends, strict=True):
        one = dict(zip(*vocab.encode_weighted(text), strict=True))
        assert ids[start:end].tolist() == list(one)  # the same features in the same order
        assert dict(zip(ids[start:end].tolist(), weights[start:end].tolist(), strict=True)) == (
            pytest.approx(one, abs=1e-6)
        )
    empty = vocab.encode_batch([])
    assert [len(a) for a in empty] == [0, 0, 0]
