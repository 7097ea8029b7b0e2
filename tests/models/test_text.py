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
