"""Showing, inside a notebook, the few lines of the kit that *are* a pattern.

A notebook teaches a mechanism (the batcher's gather loop, the mSPRT statistic, the
distillation loss) by showing the code that its experiment then runs, not a copy of it:
:func:`source` renders a function or method of the kit as a highlighted block, docstring
left out, with where it lives, so what the reader reads is what was measured.

Examples
--------
>>> print(source("mlinfra_kit.online_testing.router.bucket").data)  # doctest: +ELLIPSIS
`mlinfra_kit.online_testing.router.bucket` (mlinfra_kit/online_testing/router.py, line ...)
<BLANKLINE>
```python
def bucket(experiment: str, user_id: str, salt: str = "") -> float:
...
```
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["source"]


def _resolve(target: Any) -> Any:
    """The object a dotted path names (``package.module.Class.method``), or ``target``."""
    if not isinstance(target, str):
        return target
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                raise ValueError(f"{target!r}: {obj.__name__} has no attribute {name!r}")
            obj = getattr(obj, name)
        return obj
    raise ValueError(f"{target!r} names no importable module: give a dotted path such as "
                     "'mlinfra_kit.online_testing.router.bucket'")  # fmt: skip


def _without_docstring(code: str) -> str:
    """``code`` (one ``def`` or ``class``) without its docstring's lines."""
    tree = ast.parse(code)
    node = tree.body[0]
    body = getattr(node, "body", [])
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
        lines = code.splitlines()
        del lines[first.lineno - 1 : first.end_lineno]
        return "\n".join(lines)
    return code


def source(*targets: Any, docstring: bool = False):
    """The code of each of ``targets`` (functions, methods, classes, or dotted paths to
    them) as one Markdown block to display in a notebook, each headed by its name, file and
    line. Docstrings are left out unless ``docstring``: the lines that run are the lesson."""
    from IPython.display import Markdown

    root = Path(__file__).resolve().parent.parent
    parts = []
    for target in targets:
        obj = inspect.unwrap(_resolve(target))
        code = textwrap.dedent(inspect.getsource(obj))
        if not docstring:
            code = _without_docstring(code)
        path = Path(inspect.getsourcefile(obj)).resolve()
        where = path.relative_to(root) if path.is_relative_to(root) else path.name
        line = inspect.getsourcelines(obj)[1]
        name = f"{obj.__module__}.{obj.__qualname__}"
        parts.append(f"`{name}` ({where}, line {line})\n\n```python\n{code.rstrip()}\n```")
    return Markdown("\n\n".join(parts))
