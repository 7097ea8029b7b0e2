import json
import math

import numpy as np
import pytest

from mlinfra_kit import results

ENV = {"python": "3.11"}


def test_record_writes_the_schema(tmp_path):
    path = results.record(
        "05_demo",
        {"QUICK": True, "SEED": np.int64(3)},
        {"p99_ms": np.float32(1.5), "count": 4},
        tables={"rows": [{"variant": "int8", "size_mb": np.float64(0.25)}]},
        results_dir=tmp_path / "nested" / "results",
        environment=ENV,
    )
    assert path == tmp_path / "nested" / "results" / "05_demo.json"
    doc = json.loads(path.read_text())
    assert list(doc) == [*results.SCHEMA_KEYS, "lessons"] and doc["lessons"] == []
    assert doc["parameters"] == {"QUICK": True, "SEED": 3}
    assert doc["metrics"] == {"p99_ms": 1.5, "count": 4}
    assert doc["tables"]["rows"] == [{"variant": "int8", "size_mb": 0.25}]
    assert results.load(path) == doc


def test_lessons_are_recorded_and_rendered(tmp_path):
    lessons = [
        results.Lesson("batching helps", "2.1x", True),
        results.Lesson("int8 is faster", "0.9x", False),
    ]
    path = results.record(
        "05_demo", {}, {"x": 1}, results_dir=tmp_path, environment=ENV, lessons=lessons
    )
    assert results.load(path)["lessons"][1] == {
        "claim": "int8 is faster",
        "observed": "0.9x",
        "holds": False,
        "id": "int8_is_faster",
        "outcome": "not_held",
        "estimate": None,
        "interval": None,
        "threshold": None,
    }
    text = results.lessons_markdown(lessons)
    assert text.splitlines() == [
        "- batching helps: 2.1x.",
        "- **Did not hold in this run:** int8 is faster: 0.9x.",
    ]
    assert [d["notebook"] for d in results.load_all(path.parent)] == ["05_demo"]
    assert not list(path.parent.glob("*.tmp"))


def test_default_environment_is_measured(tmp_path):
    doc = results.load(results.record("x", {}, {"a": 1}, results_dir=tmp_path))
    assert doc["environment"]["torch"].startswith("2.14")


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"P99": 1.0}, "not snake_case"),
        ({"p99 ms": 1.0}, "not snake_case"),
        ({"ok": "fast"}, "must be a number"),
        ({"ok": True}, "must be a number"),
        ({"ok": math.nan}, "must be finite"),
        ({"ok": math.inf}, "must be finite"),
    ],
)
def test_bad_metrics_are_refused_and_nothing_is_written(tmp_path, metrics, message):
    with pytest.raises(ValueError, match=message):
        results.record("demo", {}, metrics, results_dir=tmp_path, environment=ENV)
    assert not list(tmp_path.iterdir())


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="file stem"):
        results.record("../evil", {}, {}, results_dir=tmp_path, environment=ENV)
    with pytest.raises(TypeError, match="parameters"):
        results.record("demo", [1], {}, results_dir=tmp_path, environment=ENV)
    with pytest.raises(TypeError, match="metrics"):
        results.record("demo", {}, [1], results_dir=tmp_path, environment=ENV)
    with pytest.raises(ValueError, match="list of row dicts"):
        results.record(
            "demo", {}, {}, tables={"t": {"a": 1}}, results_dir=tmp_path, environment=ENV
        )


def test_load_rejects_files_that_are_not_results(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        results.load(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text('{"notebook": "x"}')
    with pytest.raises(ValueError, match="missing parameters"):
        results.load(tmp_path / "other.json")


def test_format_value_and_markdown_table():
    assert results.format_value(0.123456) == "0.1235"
    assert results.format_value(12.3456) == "12.346"
    assert results.format_value(1234.56) == "1234.6"
    assert results.format_value(123456.7) == "123,457"
    assert results.format_value(12345) == "12,345"
    assert results.format_value(None) == ""
    assert results.format_value("a|b") == "a\\|b"
    table = results.markdown_table([{"a": 1}, {"b": 2.5}])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 |  |", "|  | 2.500 |"]
