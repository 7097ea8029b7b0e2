import hashlib

import pytest

from mlinfra_kit.data import REMOTE, fetch, load_projects
from mlinfra_kit.data.sources import cache_dir, shipped_path

ROWS = "id,created_on,title,description,tag\n1,2020-01-01,t,d,mlops\n"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLINFRA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def remote_file(tmp_path):
    path = tmp_path / "remote" / "dataset.csv"
    path.parent.mkdir()
    path.write_text(ROWS)
    return path, hashlib.sha256(ROWS.encode()).hexdigest()


def test_remote_sources_are_pinned():
    for named in REMOTE.values():
        for remote in named.values():
            assert "/66e8e437115029422db1a80ff93c308cfcd82648/" in remote.url
            assert len(remote.sha256) == 64
    assert REMOTE["made-with-ml"]["projects"].rows == 764
    assert REMOTE["made-with-ml"]["holdout"].rows == 191


def test_fetch_downloads_once_verifies_and_caches(remote_file, tmp_path):
    path, digest = remote_file
    url = path.as_uri()
    local = fetch(url, digest)
    assert local.read_text() == ROWS and str(local).startswith(str(cache_dir()))
    path.unlink()  # the second load must come from the cache, not the source
    projects = load_projects(url, sha256=digest)
    assert len(projects) == 1 and projects.source == url


def test_hash_mismatch_is_refused_and_not_kept(remote_file):
    path, _ = remote_file
    with pytest.raises(ValueError, match="hash mismatch.*not kept"):
        fetch(path.as_uri(), "0" * 64)
    assert not list(cache_dir().rglob("*.csv"))


def test_corrupted_cache_is_detected(remote_file):
    path, digest = remote_file
    local = fetch(path.as_uri(), digest)
    local.write_text(ROWS + "2,2020-01-02,x,y,other\n")
    with pytest.raises(ValueError, match="hash mismatch"):
        fetch(path.as_uri(), digest)
    assert not local.exists()


def test_unsupported_scheme():
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        fetch("ftp://example.org/data.csv")


def test_shipped_path_and_unknown_file():
    assert shipped_path("projects.csv").is_file()
    with pytest.raises(FileNotFoundError, match="not found"):
        shipped_path("nope.csv")
