"""The server's limits on what it repeats, how deep a body may nest, and what its
configuration shows."""

import json

import pytest

from mlinfra_kit.serving.limits import (
    EXCERPT_CHARS,
    excerpt,
    json_depth,
    loads_bounded,
    redact_url,
    safe_text,
)


def test_excerpts_are_short_and_always_encodable():
    assert len(excerpt("z" * 10_000)) == EXCERPT_CHARS
    json.dumps(excerpt("\ud800")).encode("utf-8")
    assert safe_text("\udc00").startswith("'\\udc00")
    assert safe_text("fine") == "fine"


def test_depth_is_counted_without_recursion():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_001
    assert json_depth(3) == 0 and json_depth({"a": {"b": []}}) == 3


@pytest.mark.parametrize("raw", ["[" * 200_000, "[" * 40 + "]" * 40, '{"a":' * 33 + "1" + "}" * 33])
def test_too_deep_is_a_value_error_never_a_recursion_error(raw):
    with pytest.raises(ValueError, match="nests deeper than 32"):
        loads_bounded(raw)


def test_shallow_json_parses_and_bad_json_says_so():
    assert loads_bounded(b'{"inputs": [[1, 2]]}') == {"inputs": [[1, 2]]}
    with pytest.raises(json.JSONDecodeError):
        loads_bounded(b"{nope")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://admin:pw@host/1", "redis://admin:***@host/1"),
        ("redis://token@host", "redis://***@host"),
        ("sqlite:/tmp/store.db", "sqlite:/tmp/store.db"),
        (None, None),
    ],
)
def test_credentials_never_show(url, shown):
    assert redact_url(url) == shown
