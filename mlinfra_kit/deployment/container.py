"""Container: a Dockerfile and build context for the served model.

The image is small and safe by construction: a pinned slim Python base, CPU-only torch
wheels (the CUDA build is gigabytes larger), a non-root user, the model artifact copied in,
a health check on ``/health`` and uvicorn as the entry point.

Examples
--------
>>> text = dockerfile("artifacts/tag-classifier")
>>> problems(text)
[]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from mlinfra_kit.artifacts import require_artifact

__all__ = [
    "BASE_IMAGE",
    "DOCKERIGNORE",
    "TORCH_CPU_INDEX",
    "build_image",
    "docker_available",
    "dockerfile",
    "problems",
    "project_root",
    "write_build_context",
]

#: A fully pinned base: the same bytes on every build (a bare "python:3.11" moves).
BASE_IMAGE = "python:3.11.11-slim-bookworm"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

DOCKERIGNORE = """\
# Only the package, its metadata and the model artifact go into the image.
.git
.venv
**/__pycache__
**/*.pyc
.pytest_cache
.ruff_cache
runs
tour
results
notebooks
tests
datasets
"""


def _health_probe(port: int) -> str:
    return (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=2)"
    )


def dockerfile(
    artifact: str | os.PathLike,
    port: int = 8080,
    workers: int = 1,
    base_image: str = BASE_IMAGE,
    torch_version: str = "2.14.1",
) -> str:
    """The Dockerfile text serving ``artifact`` (a path inside the build context)."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be in 1..65535, got {port}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    artifact = Path(artifact).as_posix()
    return f"""\
# syntax=docker/dockerfile:1
FROM {base_image}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \\
    MLINFRA_MODEL=/srv/model
WORKDIR /srv

# CPU-only torch first: the default wheel bundles CUDA and is several GB larger.
RUN pip install --index-url {TORCH_CPU_INDEX} torch=={torch_version}
COPY pyproject.toml README.md LICENSE ./
COPY mlinfra_kit ./mlinfra_kit
RUN pip install .
COPY {artifact} /srv/model

RUN useradd --create-home --uid 10001 app
USER app

EXPOSE {port}
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \\
    CMD ["python", "-c", "{_health_probe(port)}"]
CMD ["mlinfra", "serve", "--model", "/srv/model", "--host", "0.0.0.0", "--port", "{port}"]
"""


def problems(text: str) -> list[str]:
    """What a reviewer would flag in a Dockerfile: an unpinned base, running as root, no
    health check, no entry point. An empty list means none of these."""
    found = []
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    if not bases:
        found.append("no FROM line")
    for base in bases:
        tag = base.split("@")[0].rpartition(":")[2] if ":" in base else ""
        if "@sha256:" not in base and (
            not tag or tag == "latest" or not re.match(r"\d+\.\d+\.\d+", tag)
        ):
            found.append(f"base image {base!r} is not pinned to a full version or digest")
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    if not users or users[-1] in ("root", "0"):
        found.append("the container runs as root: add a USER line")
    if not re.search(r"^HEALTHCHECK\s", text, flags=re.MULTILINE):
        found.append("no HEALTHCHECK")
    if not re.search(r"^(CMD|ENTRYPOINT)\s", text, flags=re.MULTILINE):
        found.append("no CMD or ENTRYPOINT")
    return found


def project_root() -> Path:
    """The checkout this package runs from (the image installs the package from it)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise ValueError(
            "mlinfra_kit is not running from a checkout (no pyproject.toml beside "
            "it); clone the repository to build an image"
        )
    return root


def write_build_context(
    folder: str | os.PathLike,
    artifact: str | os.PathLike,
    root: str | os.PathLike | None = None,
    **options,
) -> Path:
    """Lay out a build context in ``folder``: the package (from ``root``, by default this
    checkout), the artifact, the Dockerfile and the .dockerignore. Returns the folder
    (``docker build FOLDER`` builds it)."""
    root = Path(root) if root is not None else project_root()
    artifact, folder = require_artifact(artifact), Path(folder)
    if not (root / "pyproject.toml").is_file():
        raise ValueError(f"{root} is not the project root (no pyproject.toml)")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(root / name, folder / name)
    shutil.copytree(
        root / "mlinfra_kit",
        folder / "mlinfra_kit",
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    shutil.copytree(artifact, folder / "model", dirs_exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile("model", **options))
    (folder / ".dockerignore").write_text(DOCKERIGNORE)
    return folder


def docker_available() -> bool:
    """Whether a Docker engine answers (the CLI alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def build_image(
    context: str | os.PathLike, tag: str = "mlinfra-kit-model:latest", timeout_s: int = 1800
) -> str:
    """``docker build`` the context; raises with Docker's output when it fails."""
    if not docker_available():
        raise RuntimeError("no Docker engine is available here (docker info failed)")
    done = subprocess.run(
        ["docker", "build", "-t", tag, str(context)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker build failed:\n{done.stderr[-3000:]}")
    return tag
