"""Where project data comes from: the shipped files, or a pinned download cached once.

Remote files are pinned to a commit and a SHA-256, downloaded once into the user's cache
(``$MLINFRA_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlinfra-kit``, else
``~/.cache/mlinfra-kit``) and verified on every load, so a run never silently uses
changed data. Nothing here touches the network unless a URL is asked for.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RemoteFile", "REMOTE", "shipped_path", "cache_dir", "fetch", "sha256_of"]

_MWML = (
    "https://raw.githubusercontent.com/GokuMohandas/Made-With-ML/"
    "66e8e437115029422db1a80ff93c308cfcd82648/datasets/"
)


@dataclass(frozen=True)
class RemoteFile:
    """A file at a fixed URL with the SHA-256 it must have."""

    url: str
    sha256: str
    rows: int


#: Named remote sources: ``load_projects("made-with-ml")`` / ``load_holdout("made-with-ml")``.
REMOTE = {
    "made-with-ml": {
        "projects": RemoteFile(
            _MWML + "dataset.csv",
            "479e0f3813cc0583717b86512d112b0a397f717ac33652504afdf763c1f3aff1",
            764,
        ),
        "holdout": RemoteFile(
            _MWML + "holdout.csv",
            "05dd130ff16cbf0cdb05871547f869be096b757052cbc46f8c1e981089a6a474",
            191,
        ),
    }
}


def shipped_path(name: str) -> Path:
    """Path of a shipped dataset file (``projects.csv`` or ``holdout.csv``).

    A source checkout (or editable install) reads ``datasets/`` at the repository root;
    an installed wheel carries the same files inside the package.
    """
    package = Path(__file__).resolve().parents[1]
    for folder in (package.parent / "datasets", package / "_shipped" / "datasets"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"shipped dataset {name!r} not found next to the package; reinstall mlinfra-kit "
        "or pass the path of a CSV file"
    )


def cache_dir() -> Path:
    """The folder where downloads are kept (created on first download, not on import)."""
    if os.environ.get("MLINFRA_CACHE_DIR"):
        return Path(os.environ["MLINFRA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlinfra-kit"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` into the cache once and return the local path.

    With ``sha256`` the file is verified after download and on every later call; a
    mismatch raises ``ValueError`` and the bad file is not kept.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https", "file"):
        raise ValueError(f"unsupported URL scheme in {url!r}: use http(s):// or file://")
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    target = cache_dir() / key / (Path(parsed.path).name or "download.csv")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as src:
                shutil.copyfileobj(src, out)
            _verify(Path(tmp), sha256, url)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:
        try:
            _verify(target, sha256, url)
        except ValueError:
            target.unlink()
            raise
    return target


def _verify(path: Path, sha256: str | None, url: str) -> None:
    if sha256 is None:
        return
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise ValueError(
            f"hash mismatch for {url}: expected sha256 {sha256}, got {actual}. The file "
            "changed or the download was corrupted; it was not kept, so retry or check the URL"
        )
