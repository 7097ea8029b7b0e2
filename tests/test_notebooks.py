"""Every notebook runs headless with QUICK=True and records what it promises.

These tests execute the notebooks for real with papermill, through the same runner as
``mlinfra run``. They are what keeps "every notebook runs on a fresh machine" true.
"""

import base64
import json
import re
import struct

import pytest
from helpers import skip_unless_ci

from mlinfra_kit.comparison import OUTCOMES, ROUNDS_CAP_VARIABLE
from mlinfra_kit.results import load
from mlinfra_kit.runner import discover, notebooks_dir, run_notebooks

NOTEBOOKS = discover()
REQUIRED_PARAMETERS = ("QUICK", "SEED", "DEVICE", "RESULTS_DIR", "INTERACTIVE")


def cells(nb):
    return json.loads(nb.path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda nb: nb.name)
def test_stored_clean(nb):
    """No outputs (they belong to executed copies) and an id on every cell (without one,
    nbformat warns on every run)."""
    ids = [cell.get("id") for cell in cells(nb)]
    assert all(ids) and len(set(ids)) == len(ids), f"{nb.name}: every cell needs a unique id"
    for cell in cells(nb):
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, (
                f"{nb.name} is stored with outputs: clear them before committing"
            )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda nb: nb.name)
def test_follows_the_template(nb):
    code = [c for c in cells(nb) if c["cell_type"] == "code"]
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), (
        "the first code cell must carry the papermill tag 'parameters'"
    )
    source = "".join(first["source"])
    for name in REQUIRED_PARAMETERS:
        assert f"{name} =" in source, f"the parameters cell lacks {name}"
    assert nb.metrics, "declare promised metrics in notebook metadata: mlinfra.metrics"
    if nb.requires:
        assert nb.extra, "a notebook that requires modules names its extra: mlinfra.extra"
    assert cells(nb)[0]["cell_type"] == "markdown" and nb.title != nb.name


def test_every_notebook_file_is_numbered():
    stray = [
        p.name
        for p in notebooks_dir().glob("*.ipynb")
        if p.stem not in {nb.name for nb in NOTEBOOKS}
    ]
    assert not stray, f"notebooks must be named NN_topic.ipynb: {stray}"


@pytest.mark.notebooks
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda nb: nb.name)
def test_runs_quick_and_records_its_metrics(nb, tmp_path, monkeypatch):
    if nb.missing:
        skip_unless_ci(f"{nb.name} needs {', '.join(nb.missing)} (an optional extra)")
    given = CI_PARAMETERS.get(nb.name, {})
    monkeypatch.setenv(ROUNDS_CAP_VARIABLE, str(CI_MAX_ROUNDS))  # the kernel inherits it
    (outcome,) = run_notebooks([nb], tmp_path, given, quick=True, cell_timeout=600)
    assert outcome.status == "ok", outcome.error
    doc = load(tmp_path / "results" / f"{nb.name}.json")
    assert doc["parameters"]["QUICK"] is True
    assert doc["environment"]["max_rounds"] == CI_MAX_ROUNDS
    missing = [m for m in nb.metrics if m not in doc["metrics"]]
    assert not missing, f"{nb.name} did not record {missing}"
    problems = output_problems(outcome.output)
    allowed = STDERR_PENDING.get(nb.name)
    if allowed:
        problems = [p for p in problems if not re.search(allowed, p)]
    assert not problems, f"{nb.name}'s executed copy is not clean:\n" + "\n".join(problems)
    lessons = doc.get("lessons", [])
    assert len(lessons) >= 3, f"{nb.name} records {len(lessons)} lessons; conclusions need 3+"
    ids = [lesson["id"] for lesson in lessons]
    assert len(set(ids)) == len(ids), f"{nb.name}: lesson ids must be unique: {ids}"
    assert all(lesson["outcome"] in OUTCOMES for lesson in lessons)
    for lesson in lessons:  # a comparative lesson records its numbers, not only prose
        if lesson["interval"] is not None:
            low, high = lesson["interval"]
            assert lesson["threshold"] is not None and low <= lesson["estimate"] <= high, lesson


#: The CI profile: quick mode, every comparison capped at CI_MAX_ROUNDS rounds (these tests
#: check that a notebook runs and records its lessons, not which way its verdicts go; the
#: rounds a verdict needs are the tour's, `mlinfra run --quick`), and shorter loops where
#: the notebook repeats one code path for several items. Every step still runs: 09 starts a
#: peer in the kit's environment, one in an environment of its own and Ray Serve (each other
#: peer is started and checked by ``tests/serving/test_peers.py``).
CI_MAX_ROUNDS = 2
CI_PARAMETERS: dict[str, dict[str, object]] = {
    "09_serving_systems": {"PEERS": ["litserve", "mlflow", "ray-serve"]},
}

#: Notebooks whose executed copies still print library warnings on stderr, and the pattern
#: those match. Anything else on their stderr (a traceback, a new warning) still fails.
STDERR_PENDING: dict[str, str] = {}


#: A warning or an error-level log line printed into an output (Python warnings, logging's
#: "WARNING"/"ERROR" records, native "[... E pid tid]" lines).
LOG_NOISE = re.compile(r"\w+Warning\b|^(WARNING|ERROR)\b|\[[^\]]* [EW] \d+ \d+\]", re.M)
#: The largest figure a notebook should show, in pixels (about three notebook widths).
MAX_FIGURE_PX = (2400, 2000)


def output_problems(path) -> list[str]:
    """What a learner should not see in an executed notebook: error outputs, anything on
    stderr, raw ANSI escape codes, warnings or error-level log lines, figures of absurd
    size. Streams are merged per cell first with pytest-notebook's ``coalesce_streams``
    post-processor, the same normalisation its regression checks use."""
    import nbformat
    from pytest_notebook.post_processors import coalesce_streams

    executed, _ = coalesce_streams(nbformat.read(path, as_version=4), {})
    problems = []
    for index, cell in enumerate(executed.cells):
        for output in cell.get("outputs", []):
            where = f"cell {index}"
            if output.output_type == "error":
                problems.append(f"{where}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                problems.append(f"{where} stderr: {output.text.strip()[:300]}")
            text = output.get("text", "") or str(output.get("data", {}).get("text/plain", ""))
            if (at := text.find("\x1b[")) >= 0:
                near = text[max(at - 80, 0) : at + 160]
                problems.append(f"{where}: raw ANSI escape codes in the output: {near!r}")
            if output.output_type == "stream" and (noise := LOG_NOISE.search(text)):
                problems.append(f"{where}: a warning or log line: {noise.group(0)!r}")
            png = output.get("data", {}).get("image/png")
            if png:
                width, height = struct.unpack(">II", base64.b64decode(png)[16:24])
                if width > MAX_FIGURE_PX[0] or height > MAX_FIGURE_PX[1]:
                    problems.append(f"{where}: a figure of {width}x{height} px")
    return problems
