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
import inspect
import pkgutil
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["source"]


def _resolve(target: Any) -> Any:
    """The object a dotted path names (``package.module.Class.method``), or ``target``."""
    if not isinstance(target, str):
        return target
    try:
        return pkgutil.resolve_name(target)
    except ImportError:
        raise ValueError(f"{target!r} names no importable module: give a dotted path such as "
                         "'mlinfra_kit.online_testing.router.bucket'") from None  # fmt: skip
    except AttributeError as err:
        raise ValueError(f"{target!r}: {err}") from None


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
        lines, line = inspect.getsourcelines(obj)
        code = textwrap.dedent("".join(lines))
        if not docstring:
            code = _without_docstring(code)
        path = Path(inspect.getsourcefile(obj)).resolve()
        where = path.relative_to(root) if path.is_relative_to(root) else path.name
        name = f"{obj.__module__}.{obj.__qualname__}"
        parts.append(f"`{name}` ({where}, line {line})\n\n```python\n{code.rstrip()}\n```")
    return Markdown("\n\n".join(parts))
