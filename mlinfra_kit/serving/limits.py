"""What the server repeats of a client's input, and how deep a body may nest.

A hostile client controls every byte it sends: its field names, its ids, its header
parameters, the nesting of its JSON. The server never repeats more than a short excerpt of
any of them (an error about a 900 KB name is not a 900 KB error), never writes a string
JSON cannot encode (a lone surrogate), never recurses as deep as a body nests, and never
shows a credential from its own configuration.

Examples
--------
>>> excerpt("x" * 1000)[-3:], len(excerpt("x" * 1000))
('xx…', 80)
>>> json_depth({"a": [[1], [2, [3]]]})
4
>>> redact_url("redis://:s3cret@127.0.0.1:6379/0")
'redis://:***@127.0.0.1:6379/0'
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "EXCERPT_CHARS",
    "MAX_JSON_DEPTH",
    "NON_BLANK",
    "cut",
    "encodable",
    "excerpt",
    "json_depth",
    "loads_bounded",
    "redact_url",
    "safe_text",
]

#: Whitespace as every engine that reads the schema understands it (Python's str.strip,
#: pydantic's Rust regex, the JSON Schema validators' ECMAScript regex): a title made only
#: of these is blank. The pattern requires one character outside the set.
_BLANK = (
    "\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
)
NON_BLANK = f"[^{_BLANK}]"
#: Longest excerpt of a rejected input an error message repeats.
EXCERPT_CHARS = 80
#: Deepest nesting a request body may have (the kit's own bodies nest 4 deep).
MAX_JSON_DEPTH = 32


def cut(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def excerpt(value: Any) -> str:
    """A short, always-encodable rendering of a rejected input: ``repr`` with non-ASCII
    escaped (lone surrogates, NaN and huge numbers included), cut to EXCERPT_CHARS."""
    return cut(ascii(value))


def encodable(text: str) -> bool:
    """Whether UTF-8 can encode ``text`` (it cannot encode a lone surrogate).

    >>> encodable("naïve"), encodable("\\ud800")
    (True, False)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_text(value: Any) -> str:
    """``str(value)`` cut to EXCERPT_CHARS, escaped only if UTF-8 cannot encode it."""
    text = str(value)
    return cut(text if encodable(text) else ascii(text))


def json_depth(value: Any) -> int:
    """How deep ``value`` nests (a scalar is 0, ``[]`` is 1), counted without recursion, so
    any depth can be measured."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        todo.extend((child, depth + 1) for child in children)
    return deepest


def loads_bounded(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads``, refusing a document nested deeper than ``max_depth`` with a
    ``ValueError`` (a ``json.JSONDecodeError`` for text that is not JSON). A document
    too deep for the parser's recursion is refused the same way, never a ``RecursionError``.

    >>> loads_bounded("[" * 40 + "]" * 40)
    Traceback (most recent call last):
    ...
    ValueError: the body nests deeper than 32 levels; a request body is a shallow JSON object
    """
    too_deep = ValueError(
        f"the body nests deeper than {max_depth} levels; a request body is a shallow JSON object"
    )
    try:
        value = json.loads(raw)
    except RecursionError:
        raise too_deep from None
    if json_depth(value) > max_depth:
        raise too_deep
    return value


def redact_url(url: str | None) -> str | None:
    """``url`` with its password (and a bare user token) replaced by ``***``: what a
    configuration may show of a store's address."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    user, colon, _password = credentials.partition(":")
    hidden = f"{user}:***" if colon else "***"
    return urlunsplit(parts._replace(netloc=f"{hidden}@{host}"))
