import importlib.util
from pathlib import Path

import pytest

from mlinfra_kit.data import generate_projects, load_projects

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_files_are_exactly_what_the_script_makes(tmp_path):
    script = ROOT / "datasets" / "make_projects.py"
    spec = importlib.util.spec_from_file_location("make_projects", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.make(tmp_path)
    for path in made:
        assert path.read_bytes() == (ROOT / "datasets" / path.name).read_bytes(), path.name
    size = sum((ROOT / "datasets" / p.name).stat().st_size for p in made)
    assert size < 1_000_000


def test_generator_is_seeded():
    assert generate_projects(50, seed=1) == generate_projects(50, seed=1)
    assert generate_projects(50, seed=1) != generate_projects(50, seed=2)
    with pytest.raises(ValueError, match="positive integer"):
        generate_projects(0)


def test_topic_mix_and_vocabulary_drift():
    projects = load_projects().sorted_by_time()
    half = len(projects) // 2
    early, late = projects[:half], projects[half:]
    share = lambda part, tag: part.tag_counts()[tag] / len(part)  # noqa: E731
    assert share(late, "mlops") > share(early, "mlops")
    assert share(late, "computer-vision") < share(early, "computer-vision")
    text_of = lambda part: " ".join(part.texts).lower()  # noqa: E731
    assert "large language models" in text_of(late)
    assert "large language models" not in text_of(early)
