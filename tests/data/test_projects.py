import csv
from datetime import datetime

import pytest

from mlinfra_kit.data import (
    TAGS,
    Projects,
    load_holdout,
    load_projects,
    read_projects_csv,
    train_val_split,
)

HEADER = "id,created_on,title,description,tag\n"


def write(tmp_path, text, name="p.csv", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_shipped_data_loads_offline_and_says_where_from():
    projects, holdout = load_projects(), load_holdout()
    assert (len(projects), len(holdout)) == (764, 191)
    assert "synthetic" in projects.source and "holdout.csv" in holdout.source
    assert "764 rows" in repr(projects)
    assert not set(projects.ids) & set(holdout.ids)
    assert set(projects.tags) == set(TAGS)
    counts = projects.tag_counts()
    assert min(counts.values()) < max(counts.values()) / 2, "classes should be imbalanced"


def test_texts_with_newlines_quotes_and_commas_survive(tmp_path):
    description = 'Line one, with a comma.\nLine two with "quotes".'
    path = tmp_path / "p.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "created_on", "title", "description", "tag", "extra"])
        writer.writerow([7, "2020-02-17 06:30:41", 'A "quoted" title', description, "mlops", "x"])
    projects = read_projects_csv(path)
    (project,) = projects
    assert project.description == description
    assert project.title == 'A "quoted" title'
    assert project.created_on == datetime(2020, 2, 17, 6, 30, 41)
    assert project.text.startswith('A "quoted" title Line one')
    assert projects.source == str(path)


def test_shipped_files_have_multiline_descriptions():
    assert any("\n" in p.description for p in load_projects())


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("id,title,tag\n1,x,mlops\n", "missing column\\(s\\) created_on, description"),
        (HEADER, "no projects"),
        (HEADER + "1,2020-01-01,t,d,robotics\n", "row 2: unknown tag 'robotics'"),
        (HEADER + "x,2020-01-01,t,d,mlops\n", "id 'x' is not an integer"),
        (HEADER + "1,yesterday,t,d,mlops\n", "created_on 'yesterday' is not a date-time"),
        (HEADER + "1,2020-01-01,t,d,mlops\n1,2020-01-02,u,e,other\n", "duplicate id 1"),
        (HEADER + "1,2020-01-01,t,d\n", "expected 5 fields"),
        (HEADER + "1,2020-01-01,t,d,mlops,surplus\n", "expected 5 fields"),
        (HEADER + "1,2020-01-01,,,mlops\n", "title and description are both empty"),
        (HEADER + '1,2020-01-01,"unterminated,d,mlops\n', "not a readable CSV"),
        (HEADER + "1,2020-01-01,t\x00,d,mlops\n", "NUL bytes"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        read_projects_csv(write(tmp_path, content))


def test_binary_file_is_unreadable(tmp_path):
    path = write(tmp_path, b"\x89PNG\r\n\x1a\n\xff\xfe\x00garbage", mode="wb")
    with pytest.raises(ValueError, match="not a readable UTF-8 CSV"):
        read_projects_csv(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no projects file"):
        load_projects("/nonexistent/projects.csv")


def test_split_is_stratified_deterministic_and_disjoint(projects):
    train, val = train_val_split(projects, 0.2, seed=3)
    again, _ = train_val_split(projects, 0.2, seed=3)
    other, _ = train_val_split(projects, 0.2, seed=4)
    assert train.ids == again.ids and train.ids != other.ids
    assert not set(train.ids) & set(val.ids) and len(train) + len(val) == len(projects)
    for tag, n in projects.tag_counts().items():
        assert val.tag_counts()[tag] == round(n * 0.2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        train_val_split(projects, 1.0)


def test_collection_helpers(projects):
    assert isinstance(projects[:3], Projects) and len(projects[:3]) == 3
    by_year = projects.tag_counts_by_year()
    assert sum(sum(c.values()) for c in by_year.values()) == len(projects)
    ordered = projects.sorted_by_time()
    times = [p.created_on for p in ordered]
    assert times == sorted(times)
    mlops = projects.where(lambda p: p.tag == "mlops")
    assert set(mlops.tags) == {"mlops"}


def _csv(tmp_path, name, rows):
    """``write`` for rows given as tuples."""
    return write(tmp_path, HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows), name)


def test_the_leak_guard_names_the_overlap(tmp_path):
    from mlinfra_kit.data import check_no_leak, load_split, overlap

    train = _csv(
        tmp_path,
        "train.csv",
        [
            (1, "2020-01-01", "YOLO", "boxes", "computer-vision"),
            (2, "2020-01-02", "BERT", "words", "natural-language-processing"),
        ],
    )
    same_id = _csv(tmp_path, "h1.csv", [(2, "2020-02-01", "Other", "text", "mlops")])
    same_text = _csv(tmp_path, "h2.csv", [(9, "2020-02-01", "yolo ", "Boxes", "computer-vision")])
    clean = _csv(
        tmp_path, "h3.csv", [(7, "2020-02-01", "YOLO", "a new detector", "computer-vision")]
    )
    with pytest.raises(
        ValueError, match="overlaps the training data in 1 project.*id 2 is in both"
    ):
        load_split(train, same_id)
    with pytest.raises(ValueError, match="holdout id 9 has the text of training id 1"):
        load_split(train, same_text)
    split = load_split(train, clean)  # the same title with another text is another project
    assert split.metrics() == {
        "train_rows": 2,
        "holdout_rows": 1,
        "holdout_overlap": 0,
        "holdout_shared_titles": 1,
    }
    assert "holdout file" in split.how
    assert (
        overlap(split.train, split.holdout) == []
        and check_no_leak(split.train, split.holdout) is None
    )


def test_one_file_is_split_and_says_how(tmp_path):
    from mlinfra_kit.data import load_projects, load_split

    path = tmp_path / "all.csv"
    path.write_text(shipped_csv_text(), encoding="utf-8")
    split = load_split(path, seed=1)
    assert split.metrics()["holdout_overlap"] == 0
    assert len(split.train) + len(split.holdout) == len(load_projects(path))
    assert "stratified by tag with seed 1" in split.how
    by_time = load_split(path, by_time=True)
    assert max(p.created_on for p in by_time.train) <= min(p.created_on for p in by_time.holdout)
    assert "newest 20%" in by_time.how
    real = load_split("made-with-ml")
    assert real.metrics()["holdout_overlap"] == 0 and len(real.train) == 764


def shipped_csv_text() -> str:
    from mlinfra_kit.data.sources import shipped_path

    return shipped_path("projects.csv").read_text(encoding="utf-8")


def test_mixed_time_zones_load_as_one_clock(tmp_path):
    path = _csv(
        tmp_path,
        "tz.csv",
        [
            (1, "2020-01-01 10:00:00+02:00", "a", "b", "mlops"),
            (2, "2020-01-01 09:00:00", "c", "d", "mlops"),
            (3, "2020-01-01T07:30:00Z", "e", "f", "other"),
        ],
    )
    projects = read_projects_csv(path)
    assert [p.created_on.hour for p in projects] == [8, 9, 7]  # aware times in UTC
    assert [p.id for p in projects.sorted_by_time()] == [3, 1, 2]
