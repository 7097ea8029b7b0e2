"""Where project data comes from: the shipped files, a local file, or a download.

Two datasets ship with the kit and load offline: ``"made-with-ml"`` (the course's real
projects, MIT-licensed, with their SHA-256 checked on every load) and ``"synthetic"``
(generated, with controlled drift). A URL is downloaded once into the user's cache
(``$MLINFRA_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlinfra-kit``, else
``~/.cache/mlinfra-kit``) and verified against its SHA-256 where one is known; a
``file://`` URL is read in place, never cached. Nothing here touches the network unless a
URL is asked for.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KNOWN_SOURCES",
    "REMOTE",
    "SHIPPED",
    "RemoteFile",
    "cache_dir",
    "fetch",
    "sha256_of",
    "shipped_path",
]

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


#: The datasets that ship with the kit: ``{source: {"projects"|"holdout": (file, sha256)}}``
#: (paths under ``datasets/``; a sha256 of None is not checked).
SHIPPED: dict[str, dict[str, tuple[str, str | None]]] = {
    "made-with-ml": {
        which: (f"made-with-ml/{Path(remote.url).name}", remote.sha256)
        for which, remote in REMOTE["made-with-ml"].items()
    },
    "synthetic": {"projects": ("projects.csv", None), "holdout": ("holdout.csv", None)},
}
#: Names ``load_projects`` / ``load_holdout`` accept besides a path or a URL.
KNOWN_SOURCES = tuple(SHIPPED)


def shipped_path(name: str) -> Path:
    """Path of a shipped dataset file (``projects.csv``, ``made-with-ml/holdout.csv``...).

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


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` into the cache once and return the local path.

    With ``sha256`` the file is verified after download and on every later call; a
    mismatch raises ``ValueError`` and the bad file is not kept. A ``file://`` URL is the
    local file itself (verified, not copied, so a changed file is read as it is now). A
    download that fails raises ``ConnectionError`` naming the URL and where to put the
    file by hand.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https", "file"):
        raise ValueError(f"unsupported URL scheme in {url!r}: use http(s):// or file://")
    if parsed.scheme == "file":
        local = Path(urllib.request.url2pathname(parsed.path))
        if not local.is_file():
            raise FileNotFoundError(f"no file at {local} (from {url})")
        _verify(local, sha256, url)
        return local
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
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            Path(tmp).unlink(missing_ok=True)
            reason = getattr(err, "reason", err)
            check = f" (its sha256 must be {sha256})" if sha256 else ""
            raise ConnectionError(
                f"could not download {url}: {reason}. Offline? Download the file elsewhere "
                f"and place it at {target}{check}, or pass its local path instead"
            ) from None
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
