"""The running example: tag prediction for ML projects from their title and description.

``load_projects()`` and ``load_holdout()`` read the shipped synthetic dataset (offline);
``load_projects("made-with-ml")`` reads the public course dataset, pinned and hash-checked.
"""

from mlinfra_kit.data.projects import (
    COLUMNS,
    TAGS,
    Project,
    Projects,
    load_holdout,
    load_projects,
    project_text,
    read_projects_csv,
    train_val_split,
)
from mlinfra_kit.data.sources import REMOTE, RemoteFile, cache_dir, fetch
from mlinfra_kit.data.synthetic import generate_projects

__all__ = [
    "COLUMNS",
    "TAGS",
    "Project",
    "Projects",
    "load_holdout",
    "load_projects",
    "project_text",
    "read_projects_csv",
    "train_val_split",
    "REMOTE",
    "RemoteFile",
    "cache_dir",
    "fetch",
    "generate_projects",
]
