"""Environments for the systems beside the kit: built from nothing in a scratch folder, each
command there even when the kit's environment already holds its package (pip then writes no
script), counted as built only once every command runs, rebuilt when a command is gone."""

import subprocess
import sys
from pathlib import Path

import pytest

from mlinfra_kit.environments import InstallFailed, environment_python

# tqdm is in the kit's environment and has a console script: asking for it by package makes
# pip install nothing, as with MLflow in the kit's `dev` install.
PACKAGES = ("tqdm",)


@pytest.mark.slow
def test_a_command_from_the_kits_environment_gets_a_script_run_by_its_own_python(tmp_path):
    python = environment_python("demo", PACKAGES, home=tmp_path, commands=("tqdm",))
    script = Path(python).parent / "tqdm"
    assert script.read_text().startswith(f"#!{python}\n")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip()
    which = subprocess.run(
        [python, "-c", "import sys, tqdm; print(sys.prefix); print(tqdm.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert which[0] == str(tmp_path / "demo") and which[1].startswith(sys.prefix)


@pytest.mark.slow
def test_a_built_environment_is_reused_and_rebuilt_when_a_command_is_gone(tmp_path):
    python = environment_python("demo", PACKAGES, home=tmp_path, commands=("tqdm",))
    stamp = tmp_path / "demo" / "mlinfra-packages.json"
    built = stamp.stat().st_mtime_ns
    assert environment_python("demo", PACKAGES, home=tmp_path, commands=("tqdm",)) == python
    assert stamp.stat().st_mtime_ns == built  # reused, not rebuilt
    (Path(python).parent / "tqdm").unlink()
    environment_python("demo", PACKAGES, home=tmp_path, commands=("tqdm",))
    assert (Path(python).parent / "tqdm").exists()


def test_a_command_no_package_provides_is_an_install_failure_and_leaves_no_stamp(tmp_path):
    with pytest.raises(InstallFailed, match="no-such-command"):
        environment_python("demo", (), home=tmp_path, commands=("no-such-command",))
    assert not (tmp_path / "demo" / "mlinfra-packages.json").exists()


def test_two_builds_of_one_environment_at_once_take_turns(tmp_path, monkeypatch):
    """Two workers asking for the same environment at once: one builds it, the other waits
    for that build and reuses it (without the lock, both ran ``venv --clear`` on one folder)."""
    import threading

    from mlinfra_kit import environments

    created, run = [], subprocess.run

    def counting(args, *rest, **options):
        if "venv" in args:
            created.append(args)
        return run(args, *rest, **options)

    monkeypatch.setattr(environments.subprocess, "run", counting)
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(environment_python("demo", (), home=tmp_path)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 2 and found[0] == found[1] and Path(found[0]).exists()
    assert len(created) == 1
