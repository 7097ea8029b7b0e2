"""Both store backends against the same contract; Redis is a real redis-server."""

import itertools

import pytest

from mlinfra_kit.serving import RedisStore, SQLiteStore, StoredPrediction, open_store

_namespaces = itertools.count()


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "predictions.db")
    else:
        s = RedisStore(request.getfixturevalue("redis_url"), namespace=f"t{next(_namespaces)}")
    yield s
    s.close()


def row(entity, version="v1", tag="mlops", created_at=1000.0):
    return StoredPrediction(entity, version, tag, {tag: 0.9, "other": 0.1}, created_at)


def test_put_get_count_missing(store):
    assert store.get("1") is None and store.count() == 0
    assert store.put_many([row("1"), row("2")]) == 2
    assert store.get("1") == row("1")
    assert store.count("v1") == 2 and store.count("v2") == 0
    assert store.missing(["1", "3", "2", "4"], "v1") == ["3", "4"]
    assert store.missing(["1"], "v2") == ["1"]
    assert store.put_many([]) == 0


def test_versions_live_side_by_side_and_newest_wins(store):
    store.put_many([row("1", "v1", "mlops", created_at=1000.0)])
    store.put_many([row("1", "v2", "other", created_at=2000.0)])
    assert store.get("1").model_version == "v2"
    assert store.get("1", "v1").tag == "mlops"
    assert store.count() == 2


def test_upsert_replaces(store):
    store.put_many([row("1", tag="mlops")])
    store.put_many([row("1", tag="other", created_at=5.0)])
    assert store.get("1").tag == "other" and store.count() == 1


def test_clear(store):
    store.put_many([row("1"), row("2", "v2")])
    store.clear()
    assert store.count() == 0 and store.get("1") is None


def test_bad_rows_write_nothing(store):
    with pytest.raises(TypeError, match="StoredPrediction"):
        store.put_many([row("1"), {"entity_id": "2"}])
    with pytest.raises(ValueError, match="entity_id and a model_version"):
        store.put_many([row("1"), row("")])
    assert store.count() == 0


def test_age():
    assert row("1", created_at=100.0).age_s(now=160.0) == 60.0


def test_sqlite_survives_reopening(tmp_path):
    with SQLiteStore(tmp_path / "p.db") as s:
        s.put_many([row("1")])
    with open_store(f"sqlite:{tmp_path / 'p.db'}") as s:
        assert s.get("1") == row("1")


@pytest.mark.parametrize(
    "url, kind",
    [
        ("sqlite:{tmp}/a.db", SQLiteStore),
        ("{tmp}/b.sqlite", SQLiteStore),
        ("redis://127.0.0.1:1/0", RedisStore),
    ],
)
def test_open_store(url, kind, tmp_path):
    s = open_store(url.format(tmp=tmp_path))
    assert isinstance(s, kind)
    s.close()


@pytest.mark.parametrize("url", ["postgres://x", "predictions.csv", "sqlite:"])
def test_open_store_rejects_unknown(url):
    with pytest.raises(ValueError, match="sqlite"):
        open_store(url)
