"""Regenerate the shipped synthetic datasets: ``python datasets/make_projects.py``.

Writes ``projects.csv`` (764 rows) and ``holdout.csv`` (191 rows) beside this script,
from 955 projects made by :func:`mlinfra_kit.data.generate_projects` with seed 0 and a
seeded random holdout. The output is byte-for-byte reproducible (a test checks it).
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

from mlinfra_kit.data import COLUMNS, generate_projects

HERE = Path(__file__).resolve().parent
TOTAL, HOLDOUT, SEED = 955, 191, 0


def make(out_dir: Path = HERE, seed: int = SEED) -> tuple[Path, Path]:
    rows = generate_projects(TOTAL, seed=seed)
    holdout_ids = set(random.Random(seed + 1).sample([r["id"] for r in rows], HOLDOUT))
    paths = []
    for name, part in (
        ("projects.csv", [r for r in rows if r["id"] not in holdout_ids]),
        ("holdout.csv", [r for r in rows if r["id"] in holdout_ids]),
    ):
        path = Path(out_dir) / name
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(part)
        paths.append(path)
    return paths[0], paths[1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into")
    args = parser.parse_args()
    for path in make(args.out):
        print(f"wrote {path}")
