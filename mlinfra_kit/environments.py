"""Virtual environments for the systems the kit runs beside its own code.

Serving systems and stream engines pin packages older than the kit's (MLServer's FastAPI,
PyTriton's and PyFlink's NumPy), so each runs in **an environment of its own**, made once
under :func:`environments_home`, that installs only its own packages and reads everything
else (torch, the kit) from the environment the kit runs in through a ``.pth`` line: a few
hundred megabytes per system instead of a second copy of torch. Its own packages come first,
so they shadow the kit's versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = ["InstallFailed", "environment_python", "environments_home"]


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
    ``packages`` installed, made once (remade when the packages change), that reads every
    other package from the kit's environment; returns its Python. A failed install raises
    :class:`InstallFailed` with pip's reason."""
    folder = (home or environments_home()) / name
    python = folder / "bin" / "python"
    stamp = folder / "mlinfra-packages.json"
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == list(packages):
        _write_commands(commands, python)
        return str(python)
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
    stamp.write_text(json.dumps(list(packages)))
    _write_commands(commands, python)
    return str(python)


def _write_commands(commands: tuple[str, ...], python: Path) -> None:
    for name in commands:
        script = python.parent / name
        if not script.exists():
            script.write_text(
                f"#!{python}\nimport runpy\nrunpy.run_module({name!r}, run_name='__main__')\n"
            )
            script.chmod(0o755)
