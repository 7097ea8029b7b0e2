"""Progress bars that follow the notebook's ``INTERACTIVE`` switch.

Every long loop in the kit shows a ``tqdm.auto`` bar through :func:`bar`. A notebook calls
``progress.enable(INTERACTIVE)`` once: a person in JupyterLab sees live widgets, while an
executed or static copy (papermill sets ``INTERACTIVE = False``) holds no frozen
"0%| 0/600" line. ``MLINFRA_PROGRESS=0`` in the environment turns bars off as well.

Examples
--------
>>> enable(False)
>>> sum(bar(range(3), desc="counting"))
3
>>> enabled()
False
>>> enable(True)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

__all__ = ["bar", "enable", "enabled"]

_enabled = True


def enable(flag: bool = True) -> None:
    """Show (True) or hide (False) every progress bar the kit draws from now on."""
    global _enabled
    _enabled = bool(flag)


def enabled() -> bool:
    """Whether bars are drawn: :func:`enable` was not turned off and ``MLINFRA_PROGRESS``
    is not ``0``."""
    return _enabled and os.environ.get("MLINFRA_PROGRESS", "1") != "0"


def bar(iterable: Iterable | None = None, *, show: bool = True, **kwargs: Any):
    """A ``tqdm.auto`` bar, disabled when ``show`` is false or bars are off."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not (show and enabled()), **kwargs)
