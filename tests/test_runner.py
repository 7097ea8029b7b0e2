import json
import os
import tempfile

import pytest
from helpers import RECORD, make_notebook

from mlinfra_kit.runner import discover, parse_parameter, run_notebooks, select


def test_discover_and_select(tiny_notebooks):
    found = discover(tiny_notebooks)
    assert [nb.name for nb in found] == ["01_good", "02_broken"]
    assert found[0].title == "01_good title" and found[0].metrics == ("answer",)
    for name in ("01_good", "01", "good", "01_good.ipynb"):
        assert [nb.name for nb in select(found, [name])] == ["01_good"]
    assert select(found, []) == found
    with pytest.raises(ValueError, match="no notebook named 'zz'; choose from: 01_good, 02_broken"):
        select(found, ["zz"])


def test_kit_notebooks_are_found():
    names = [nb.name for nb in discover()]
    assert "00_quickstart" in names


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SEED=1", ("SEED", 1)),
        ("QUICK=true", ("QUICK", True)),
        ("RATE=0.05", ("RATE", 0.05)),
        ("DEVICE=cuda:0", ("DEVICE", "cuda:0")),
        ("DEVICE='cpu'", ("DEVICE", "cpu")),
        ("SIZES=[1, 64]", ("SIZES", [1, 64])),
        ("SOURCE=None", ("SOURCE", None)),
    ],
)
def test_parse_parameter(text, expected):
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("text", ["SEED", "=1", "1X=2"])
def test_parse_parameter_rejects_malformed(text):
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_parameter(text)


def test_run_records_parameters_and_reports_failures(tiny_notebooks, tmp_path):
    out = tmp_path / "out"
    outcomes = run_notebooks(discover(tiny_notebooks), out, {"SEED": 1}, quick=True)
    good, broken = outcomes
    assert good.status == "ok" and good.error is None
    doc = json.loads((out / "results" / "01_good.json").read_text())
    assert doc["parameters"] == {"QUICK": True, "SEED": 1}
    assert doc["metrics"] == {"answer": 43}
    assert (out / "01_good.ipynb").exists()
    assert broken.status == "failed"
    assert "02_broken failed in cell" in broken.error
    assert "ValueError: broken on purpose" in broken.error
    assert "starting 'x = 1'" in broken.error
    summary = json.loads((out / "run.json").read_text())
    assert [(e["notebook"], e["status"]) for e in summary["notebooks"]] == [
        ("01_good", "ok"),
        ("02_broken", "failed"),
    ]


def test_missing_promised_metric_fails_the_run(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(
        folder / "03_lazy.ipynb", RECORD.format(name="03_lazy"), metrics=("answer", "p99_ms")
    )
    (outcome,) = run_notebooks(discover(folder), tmp_path / "out")
    assert outcome.status == "failed"
    assert "did not record promised metric(s): p99_ms" in outcome.error


def test_a_notebook_whose_extra_is_missing_is_skipped_with_the_hint(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    path = make_notebook(folder / "05_needs.ipynb", RECORD.format(name="05_needs"))
    nb = json.loads(path.read_text())
    nb["metadata"]["mlinfra"]["requires"] = ["no_such_module_here", "json"]
    path.write_text(json.dumps(nb))
    (info,) = discover(folder)
    assert info.missing == ["no_such_module_here"]
    (outcome,) = run_notebooks([info], tmp_path / "out")
    assert outcome.status == "skipped" and "pip install" in outcome.error


def test_notebook_without_results_fails(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(folder / "04_silent.ipynb", "pass")
    (outcome,) = run_notebooks(discover(folder), tmp_path / "out")
    assert outcome.status == "failed" and "wrote no results file" in outcome.error


def test_unknown_and_reserved_parameters_are_refused(tiny_notebooks, tmp_path):
    nbs = discover(tiny_notebooks)
    with pytest.raises(ValueError, match="unknown parameter\\(s\\) SEDE.*take: DEVICE"):
        run_notebooks(nbs, tmp_path, {"SEDE": 1})
    with pytest.raises(ValueError, match="RESULTS_DIR is set by the runner"):
        run_notebooks(nbs, tmp_path, {"RESULTS_DIR": "x"})
    assert not (tmp_path / "run.json").exists()


def test_a_scratch_folder_goes_when_the_kernel_stops(tmp_path):
    """What a notebook writes on the side lives while its kernel runs and leaves with it."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    body = (
        "from mlinfra_kit.notebooks import scratch_folder\n"
        "scratch = scratch_folder('04_side')\n"
        "(scratch / 'store.db').write_text('rows')\n"
        f"(__import__('pathlib').Path({str(tmp_path)!r}) / 'where').write_text(str(scratch))\n"
        + RECORD.format(name="04_side")
    )
    make_notebook(folder / "04_side.ipynb", body)
    (outcome,) = run_notebooks(discover(folder), tmp_path / "out", {}, quick=True)
    assert outcome.status == "ok", outcome.error
    scratch = (tmp_path / "where").read_text()
    assert scratch.startswith(tempfile.gettempdir()) and "mlinfra-04_side-" in scratch
    assert not os.path.exists(scratch)
