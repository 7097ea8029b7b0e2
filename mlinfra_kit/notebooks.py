"""The kit's notebooks as files: where they are, what each promises, and the names its
``parameters`` cell assigns.

Below both the recorder (:mod:`mlinfra_kit.results`) and the executor
(:mod:`mlinfra_kit.runner`): reading a notebook's metadata needs neither papermill's
execution nor a results file.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NotebookInfo",
    "discover",
    "notebook_parameters",
    "notebooks_dir",
    "parameter_names",
    "scratch_folder",
    "select",
]

_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")


@dataclass(frozen=True)
class NotebookInfo:
    """A notebook of the kit: its path, title, the metrics it promises and the optional
    modules it needs."""

    path: Path
    title: str
    metrics: tuple[str, ...]
    #: Modules of an optional extra the notebook needs (``metadata.mlinfra.requires``).
    requires: tuple[str, ...] = ()
    #: The extra that installs them (``metadata.mlinfra.extra``).
    extra: str | None = None
    #: The cores one run needs to itself (``metadata.mlinfra.cores``); None (the default,
    #: or ``"all"``): the whole machine, as a notebook whose verdicts rest on timings does.
    cores: int | None = None

    def runs_at_once(self, cpu_count: int | None = None) -> int:
        """How many runs of it fit this machine side by side: ``cpu_count // cores``, or 1
        for a notebook that needs the whole machine.

        >>> NotebookInfo(Path("03_x.ipynb"), "x", (), cores=1).runs_at_once(4)
        4
        >>> NotebookInfo(Path("01_x.ipynb"), "x", ()).runs_at_once(4)
        1
        """
        cpus = cpu_count or os.cpu_count() or 1
        return max(1, cpus // self.cores) if self.cores else 1

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def missing(self) -> list[str]:
        """The required modules that are not installed here."""
        import importlib.util

        return [m for m in self.requires if importlib.util.find_spec(m) is None]


def notebooks_dir() -> Path:
    """The kit's notebooks: ``./notebooks`` of a checkout, else the copy in the package."""
    package = Path(__file__).resolve().parent
    for folder in (package.parent / "notebooks", package / "_shipped" / "notebooks"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError("the kit's notebooks were not found; pass --notebooks DIR")


def _info(path: Path) -> NotebookInfo:
    nb = json.loads(path.read_text(encoding="utf-8"))
    title = path.stem
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            first = "".join(cell.get("source", "")).strip().splitlines()
            if first and first[0].startswith("#"):
                title = first[0].lstrip("#").strip()
                break
    meta = nb.get("metadata", {}).get("mlinfra", {})
    cores = meta.get("cores", "all")
    if cores != "all" and not (isinstance(cores, int) and cores >= 1):
        raise ValueError(f"{path.name}: metadata mlinfra.cores must be a number of cores or 'all'")
    return NotebookInfo(
        path,
        title,
        tuple(meta.get("metrics", ())),
        tuple(meta.get("requires", ())),
        meta.get("extra"),
        None if cores == "all" else cores,
    )


def discover(folder: str | os.PathLike | None = None) -> list[NotebookInfo]:
    """The numbered notebooks (``NN_topic.ipynb``) of ``folder``, in order."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {folder}")
    return [_info(p) for p in sorted(folder.glob("*.ipynb")) if _NAME.match(p.stem)]


def select(available: Sequence[NotebookInfo], names: Sequence[str]) -> list[NotebookInfo]:
    """Pick notebooks by full name (``00_quickstart``), number (``00``) or topic
    (``quickstart``); no names means all of them."""
    if not names:
        return list(available)
    chosen = []
    for name in names:
        key = Path(name).stem
        matches = [nb for nb in available if key in (nb.name, nb.name[:2], nb.name[3:])]
        if not matches:
            known = ", ".join(nb.name for nb in available)
            raise ValueError(f"no notebook named {name!r}; choose from: {known}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def notebook_parameters(path: str | os.PathLike) -> list[str]:
    """The names the ``parameters`` cell of the notebook at ``path`` assigns, in order."""
    import papermill

    return list(papermill.inspect_notebook(str(path)))


def parameter_names(notebook: str) -> list[str]:
    """The names the ``parameters`` cell of the kit's notebook ``notebook`` assigns, in
    order (``parameter_names("00_quickstart")[:2] == ["QUICK", "SEED"]``)."""
    path = notebooks_dir() / f"{notebook}.ipynb"
    if not path.is_file():
        raise ValueError(f"no notebook {notebook!r} in {path.parent}; give its file stem")
    return notebook_parameters(path)


def scratch_folder(notebook: str) -> Path:
    """A new folder for what a notebook's run writes on the side (stores, registries,
    sweep points), removed when the process ends: a notebook's kernel stopping (papermill's
    end, JupyterLab's shut down) takes its files with it, so runs do not pile up in the
    temporary folder. Each call is a folder of its own, so two runs at once never share one.

    >>> folder = scratch_folder("00_demo")
    >>> folder.name.startswith("mlinfra-00_demo-"), folder.is_dir()
    (True, True)
    """
    folder = Path(tempfile.mkdtemp(prefix=f"mlinfra-{notebook}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
