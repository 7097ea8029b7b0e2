"""The GitHub Actions workflows are valid workflows (checked offline against the schema
check-jsonschema ships) and do what this project's CI does: the README's commands, on
Python 3.11, with redis-server installed."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def check_jsonschema() -> list[str]:
    found = shutil.which("check-jsonschema") or str(
        Path(sys.executable).parent / "check-jsonschema"
    )
    if not Path(found).exists():
        pytest.fail("check-jsonschema is missing: pip install -e '.[dev]'")
    return [found, "--builtin-schema", "vendor.github-workflows"]


def readme_command(word: str) -> str:
    """The README's first-block command that starts with `make <word>`."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return next(
        line.split("#")[0].strip() for line in block.splitlines() if line.startswith(f"make {word}")
    )


def steps(path: Path) -> list[dict]:
    workflow = yaml.safe_load(path.read_text())
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def runs(path: Path) -> str:
    return "\n".join(step.get("run", "") for step in steps(path))


@pytest.mark.parametrize("name", ["ci.yml", "tour.yml"])
def test_each_workflow_is_valid_against_the_github_workflow_schema(name):
    done = subprocess.run(
        [*check_jsonschema(), str(WORKFLOWS / name)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "name: broken\non: push\njobs:\n  test:\n    steps:\n      - run: make test\n"
    )
    done = subprocess.run([*check_jsonschema(), str(broken)], capture_output=True, text=True)
    assert done.returncode == 1 and "runs-on" in done.stdout + done.stderr


def test_ci_runs_the_readmes_test_command_on_python_311_with_redis():
    ci = WORKFLOWS / "ci.yml"
    assert readme_command("test") in runs(ci).splitlines()
    assert re.search(r"apt-get install .*redis-server", runs(ci))
    setup = next(s for s in steps(ci) if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "3.11" and setup["with"]["cache"] == "pip"
    assert yaml.safe_load(ci.read_text())["jobs"]["test"]["env"]["CI"] == "true"


def test_the_tour_runs_on_a_schedule_and_keeps_its_report():
    tour = WORKFLOWS / "tour.yml"
    workflow = yaml.safe_load(tour.read_text())
    assert workflow[True]["schedule"]  # YAML 1.1 reads the key `on` as True
    assert readme_command("tour") in runs(tour).splitlines()
    upload = next(s for s in steps(tour) if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"].rstrip("/") == "tour"
