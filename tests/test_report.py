import pytest

from mlinfra_kit import results
from mlinfra_kit.report import render_report, write_report


def test_report_lists_metrics_tables_parameters_and_environment(tmp_path):
    results.record(
        "00_quickstart",
        {"SEED": 1},
        {"macro_f1": 0.8123, "predict_p50_ms": 0.25},
        tables={"per_class": [{"tag": "mlops", "f1": 0.7}]},
        results_dir=tmp_path / "results",
        environment={"cpu": "test cpu"},
        lessons=[
            results.Lesson("the model beats the baseline", "0.81 vs 0.14", True),
            results.Lesson("batching pays", "0.9x", False),
        ],
    )
    (tmp_path / "run.json").write_text(
        '{"notebooks": [{"notebook": "00_quickstart", "status": "ok", "seconds": 12.5},'
        ' {"notebook": "01_serving", "status": "failed", "seconds": 3.0, "error": "boom"},'
        ' {"notebook": "08_scale_out", "status": "skipped", "seconds": 0, "error": "needs ray"}]}'
    )
    path = write_report(tmp_path)
    text = path.read_text()
    assert path == tmp_path / "report.md"
    assert "3 notebook(s), 1 ok, 1 failed, 1 skipped, 15.500 s in all." in text
    assert "**01_serving failed**: boom" in text and "08_scale_out skipped: needs ray" in text
    assert "| macro_f1 | 0.8123 |" in text
    assert "| predict_p50_ms | 0.25 |" in text
    assert "### Table: per_class" in text and "| mlops | 0.7 |" in text
    assert "| SEED | 1 |" in text and "| cpu | test cpu |" in text
    assert "### Lessons (1 held, 1 not held, 0 inconclusive, of 2)" in text
    assert (
        "| notebook | held | not_held | inconclusive |" in text
        and "| 00_quickstart | 1 | 1 | 0 |" in text
    )
    assert "- **Did not hold in this run:** batching pays: 0.9x." in text


def test_report_without_results_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="run `mlinfra run --out"):
        render_report(tmp_path)
