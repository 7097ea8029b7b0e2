"""What a model artifact is, without importing torch: its file names, the check that a
folder holds one, and the compressions a model can be served in.

:meth:`mlinfra_kit.models.TagClassifier.save` writes an artifact; everything that takes
an artifact path (the server, the worker pool, the Lambda handler, the container build)
checks it with :func:`require_artifact` first, so a wrong path fails with the same clear
message everywhere.

Examples
--------
>>> is_artifact("/nonexistent"), is_artifact("x" * 5000), is_artifact("a" + chr(0) + "b")
(False, False, False)
>>> check_quantize("int8"), check_quantize(None)
('int8', None)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "METADATA_FILE",
    "QUANTIZE_MODES",
    "WEIGHTS_FILE",
    "check_quantize",
    "is_artifact",
    "require_artifact",
]

#: The weights (a ``state_dict``, read with ``torch.load(weights_only=True)``).
WEIGHTS_FILE = "weights.pt"
#: Vocabulary, tags, version, hyper-parameters and metrics, as JSON.
METADATA_FILE = "metadata.json"
#: How a saved fp32 model may be served: ``"int8"`` converts its linear layers to dynamic
#: int8 ones at load (CPU only). ``None`` (not listed) serves it as saved.
QUANTIZE_MODES = ("int8",)


def is_artifact(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a model artifact's two files (False for a
    path the system cannot even look up: too long, or with a NUL byte)."""
    try:
        path = Path(path)
        return (path / METADATA_FILE).is_file() and (path / WEIGHTS_FILE).is_file()
    except (OSError, ValueError):
        return False


def require_artifact(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it holds an artifact, else a ``ValueError`` that says how
    to make one."""
    if not is_artifact(path):
        raise ValueError(
            f"{path} is not a model artifact: expected {METADATA_FILE} and "
            f"{WEIGHTS_FILE} inside; save one with TagClassifier.save() or run "
            "the 00_quickstart notebook"
        )
    return Path(path)


def check_quantize(mode: str | None) -> str | None:
    """``mode`` if it is ``None`` or one of :data:`QUANTIZE_MODES`, else a ``ValueError``."""
    if mode is not None and mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be None or one of {list(QUANTIZE_MODES)}, got {mode!r}")
    return mode
