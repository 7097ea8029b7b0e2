"""The management API's fences: the admin token, a loopback client, the model folder.

``POST /admin/model`` swaps the served model without a restart. Only a client holding the
admin token (compared in constant time), on this machine, may call it, and only for an
artifact inside the model folder.

Examples
--------
>>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("10.0.0.7")
(True, True, False)
"""

import os

from fastapi import HTTPException, Request

from mlinfra_kit.serving.config import ServerConfig
from mlinfra_kit.serving.limits import excerpt

__all__ = ["check_admin", "inside_root", "is_loopback", "write_admin_token"]


def write_admin_token(token: str, port: int, folder: str | os.PathLike[str] | None = None) -> str:
    """Write ``token`` to ``folder/admin-token-PORT`` (default folder: ``MLINFRA_STATE_DIR``,
    else ``~/.mlinfra``), readable by this user only, and return the file's path."""
    from pathlib import Path

    folder = folder or os.environ.get("MLINFRA_STATE_DIR")
    where = Path(folder) if folder else Path.home() / ".mlinfra"
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = where / f"admin-token-{port}"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return str(path)


def check_admin(config: ServerConfig, request: Request) -> None:
    """Two fences before the management API: the admin token (compared in constant time),
    then a loopback peer. The token is what counts: a relay on this machine (a port
    forward, a proxy) makes any client look local."""
    import secrets

    if config.admin_token is None:
        raise HTTPException(403, "the management API is off: start the server with an admin token")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.strip().encode("utf-8", "replace"), config.admin_token.encode()
    ):
        raise HTTPException(
            401,
            "send the admin token: Authorization: Bearer TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not is_loopback(request.client.host if request.client else None):
        raise HTTPException(403, "the model can be swapped from this machine only")


def inside_root(config: ServerConfig, path: str) -> str:
    """``path`` resolved (symlinks too), if it lies inside the model folder; else 403."""
    resolved = os.path.realpath(path)
    root = config.models_folder
    if os.path.commonpath([resolved, root]) != root:
        raise HTTPException(
            403, f"{excerpt(path)} is outside the model folder; artifacts must be inside {root}"
        )
    return resolved


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a client's address) is this machine's loopback (127.0.0.0/8, ::1)."""
    import ipaddress

    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
