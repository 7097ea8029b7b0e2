"""Virtual environments for the systems the kit runs beside its own code.

Serving systems and stream engines pin packages older than the kit's (MLServer's FastAPI,
PyTriton's and PyFlink's NumPy), so each runs in **an environment of its own**, made once
under :func:`environments_home`, that installs only its own packages and reads everything
else (torch, the kit) from the environment the kit runs in through a ``.pth`` line: a few
hundred megabytes per system instead of a second copy of torch. Its own packages come first,
so they shadow the kit's versions.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "InstallFailed",
    "built_environments",
    "environment_python",
    "environments_home",
    "environment_size_mb",
    "remove_environment",
]


class InstallFailed(RuntimeError):
    """pip could not install an environment's packages; the message has pip's reason."""


def environments_home() -> Path:
    """Where the environments live: ``MLINFRA_PEERS_HOME``, else a cache folder."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlinfra-kit"
    return Path(os.environ.get("MLINFRA_PEERS_HOME", default / "peers"))


def environment_python(
    name: str,
    packages: tuple[str, ...],
    home: Path | None = None,
    timeout_s: float = 900,
    commands: tuple[str, ...] = (),
) -> str:
    """A virtual environment ``name`` under ``home`` (:func:`environments_home`) with
    ``packages`` installed, made once (remade when the packages, the commands or the kit's
    environment change, or a command is gone), that reads every other package from the
    kit's environment; returns its Python.

    Each of ``commands`` (console scripts the system is started with, ``mlflow``) gets a
    script run by this environment's Python, whichever environment provides the package:
    pip writes none for a requirement the kit's environment already satisfies. The
    environment counts as built only once every command answers ``--help``. A failed
    install or check raises :class:`InstallFailed` with the reason.

    Two processes asking for the same environment at once (two notebooks, two test
    workers) take turns: the second waits for the first's build, then finds it built."""
    folder = (home or environments_home()) / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _one_at_a_time(folder.parent / f".{name}.lock"):
        return _built(name, folder, packages, timeout_s, commands)


@contextlib.contextmanager
def _one_at_a_time(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (``flock``: released by the system if
    the holder dies, so a killed build never blocks the next)."""
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _built(
    name: str, folder: Path, packages: tuple[str, ...], timeout_s: float, commands: tuple[str, ...]
) -> str:
    python = folder / "bin" / "python"
    stamp = folder / "mlinfra-packages.json"
    wanted = {"packages": list(packages), "commands": list(commands), "kit": sys.prefix}
    commands_there = all((python.parent / command).exists() for command in commands)
    if python.exists() and _read_stamp(stamp) == wanted and commands_there:
        return str(python)
    stamp.unlink(missing_ok=True)  # built again below; counted as built once checked
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The kit's environment after the environment's own: its packages shadow the kit's.
    shared = sysconfig.get_paths()["purelib"]
    Path(site, "mlinfra-kit-environment.pth").write_text(
        f"import site; site.addsitedir({shared!r})\n", encoding="utf-8"
    )
    if packages:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            + list(packages),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise InstallFailed(
                f"{name}: pip could not install {' '.join(packages)}: "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )
    _write_commands(name, commands, python)
    _check_commands(name, commands, python)
    stamp.write_text(json.dumps(wanted))
    return str(python)


def _read_stamp(stamp: Path) -> object:
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None


# Finds each console script's entry point as this environment sees it (its own packages
# first, then the kit's): the target a pip-written script would call.
_ENTRY_POINTS = """\
import json, sys
from importlib.metadata import entry_points
found = {}
for name in sys.argv[1:]:
    for point in entry_points(group="console_scripts", name=name):
        found.setdefault(name, point.value)
print(json.dumps(found))
"""


def _write_commands(name: str, commands: tuple[str, ...], python: Path) -> None:
    """A script beside ``python`` for each command pip did not write, calling the entry
    point the environment resolves, as pip's own scripts do."""
    missing = [command for command in commands if not (python.parent / command).exists()]
    if not missing:
        return
    done = subprocess.run(
        [str(python), "-c", _ENTRY_POINTS, *missing], capture_output=True, text=True
    )
    found = json.loads(done.stdout) if done.returncode == 0 else {}
    for command in missing:
        if command not in found:
            raise InstallFailed(
                f"{name}: no package in its environment provides the command {command!r}: "
                f"{done.stderr.strip()[-400:]}"
            )
        module, _, attribute = found[command].partition(":")
        call = attribute or "main"
        script = python.parent / command
        script.write_text(
            f"#!{python}\nimport sys\nfrom {module} import {call.split('.')[0]}\n"
            f"sys.exit({call}())\n"
        )
        script.chmod(0o755)


def _check_commands(name: str, commands: tuple[str, ...], python: Path) -> None:
    """Each command must run (``--help`` answers 0), or the environment is not built."""
    for command in commands:
        try:
            done = subprocess.run(
                [str(python.parent / command), "--help"],
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise InstallFailed(f"{name}: `{command} --help` did not run: {err}") from None
        if done.returncode != 0:
            raise InstallFailed(
                f"{name}: `{command} --help` failed: {(done.stderr or done.stdout).strip()[-400:]}"
            )


def built_environments(home: Path | None = None) -> dict[str, dict[str, object]]:
    """The environments built under ``home`` (:func:`environments_home`): for each, its
    packages, its commands, its size in MB and when it was built (seconds since the epoch)."""
    root = home or environments_home()
    found: dict[str, dict[str, object]] = {}
    for stamp in sorted(root.glob("*/mlinfra-packages.json")):
        wanted = _read_stamp(stamp)
        if not isinstance(wanted, dict):
            continue
        folder = stamp.parent
        found[folder.name] = {
            "packages": wanted.get("packages", []),
            "commands": wanted.get("commands", []),
            "size_mb": environment_size_mb(folder),
            "built_at": stamp.stat().st_mtime,
            "current": wanted.get("kit") == sys.prefix,
        }
    return found


def environment_size_mb(folder: Path) -> float:
    """What an environment's own files take on disk, in MB (links not followed)."""
    files = (f for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
    return sum(f.stat().st_size for f in files) / 1e6


def remove_environment(name: str, home: Path | None = None) -> bool:
    """Delete the environment ``name`` under ``home``; False when there was none."""
    import shutil

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"not an environment name: {name!r}")
    folder = (home or environments_home()) / name
    if not folder.is_dir():
        return False
    shutil.rmtree(folder)
    return True
