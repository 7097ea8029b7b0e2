"""The running example: tag prediction for ML projects from their title and description.

``load_split("made-with-ml")`` gives the course's real projects and their holdout (shipped,
offline, hash-checked), checked to share nothing; ``load_split("synthetic")`` the generated
projects whose topic mix drifts; ``load_split("my.csv")`` splits one file of your own.
``load_projects`` / ``load_holdout`` read one side.
"""

from mlinfra_kit.data.projects import (
    COLUMNS,
    TAGS,
    DataSplit,
    Project,
    Projects,
    check_no_leak,
    load_holdout,
    load_projects,
    load_split,
    overlap,
    project_body,
    project_text,
    read_projects_csv,
    time_split,
    train_val_split,
)
from mlinfra_kit.data.sources import KNOWN_SOURCES, REMOTE, RemoteFile, cache_dir, fetch
from mlinfra_kit.data.synthetic import generate_projects

__all__ = [
    "COLUMNS",
    "KNOWN_SOURCES",
    "TAGS",
    "DataSplit",
    "Project",
    "Projects",
    "check_no_leak",
    "load_split",
    "overlap",
    "time_split",
    "load_holdout",
    "load_projects",
    "project_body",
    "project_text",
    "read_projects_csv",
    "train_val_split",
    "REMOTE",
    "RemoteFile",
    "cache_dir",
    "fetch",
    "generate_projects",
]
