import functools
import hashlib
import http.server
import threading

import pytest

from mlinfra_kit.data import KNOWN_SOURCES, REMOTE, fetch, load_holdout, load_projects
from mlinfra_kit.data.sources import SHIPPED, cache_dir, sha256_of, shipped_path
from mlinfra_kit.services import LOOPBACK, free_port

ROWS = "id,created_on,title,description,tag\n1,2020-01-01,t,d,mlops\n"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLINFRA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def remote_file(tmp_path):
    """A CSV served over HTTP by a real server on loopback: (its path, its URL, sha256)."""
    folder = tmp_path / "remote"
    folder.mkdir()
    path = folder / "dataset.csv"
    path.write_text(ROWS)
    quiet = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": print})
    handler = functools.partial(quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer((LOOPBACK, free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://{LOOPBACK}:{server.server_address[1]}/dataset.csv"
        yield path, url, hashlib.sha256(ROWS.encode()).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


def test_remote_sources_are_pinned():
    for named in REMOTE.values():
        for remote in named.values():
            assert "/66e8e437115029422db1a80ff93c308cfcd82648/" in remote.url
            assert len(remote.sha256) == 64
    assert REMOTE["made-with-ml"]["projects"].rows == 764
    assert REMOTE["made-with-ml"]["holdout"].rows == 191


def test_fetch_downloads_once_verifies_and_caches(remote_file, tmp_path):
    path, url, digest = remote_file
    local = fetch(url, digest)
    assert local.read_text() == ROWS and str(local).startswith(str(cache_dir()))
    path.unlink()  # the second load must come from the cache, not the source
    projects = load_projects(url, sha256=digest)
    assert len(projects) == 1 and projects.source == url


def test_hash_mismatch_is_refused_and_not_kept(remote_file):
    _, url, _ = remote_file
    with pytest.raises(ValueError, match="hash mismatch.*not kept"):
        fetch(url, "0" * 64)
    assert not list(cache_dir().rglob("*.csv"))


def test_corrupted_cache_is_detected(remote_file):
    _, url, digest = remote_file
    local = fetch(url, digest)
    local.write_text(ROWS + "2,2020-01-02,x,y,other\n")
    with pytest.raises(ValueError, match="hash mismatch"):
        fetch(url, digest)
    assert not local.exists()


def test_a_file_url_is_read_in_place_not_cached(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(ROWS)
    assert fetch(path.as_uri()) == path
    path.write_text(ROWS + "2,2020-01-02,x,y,other\n")  # changed: the next load sees it
    assert len(load_projects(path.as_uri())) == 2
    assert not cache_dir().exists() or not list(cache_dir().rglob("*.csv"))


def test_an_unreachable_url_names_the_url_and_where_to_put_the_file():
    url = f"http://{LOOPBACK}:{free_port()}/dataset.csv"  # nothing listens there
    with pytest.raises(ConnectionError, match="could not download") as err:
        fetch(url, "a" * 64)
    assert url in str(err.value) and str(cache_dir()) in str(err.value)
    assert "a" * 64 in str(err.value)


def test_the_real_course_data_ships_with_its_pinned_hashes():
    for which, (name, digest) in SHIPPED["made-with-ml"].items():
        assert sha256_of(shipped_path(name)) == digest == REMOTE["made-with-ml"][which].sha256
    projects, holdout = load_projects("made-with-ml"), load_holdout("made-with-ml")
    assert (len(projects), len(holdout)) == (764, 191)
    assert "made-with-ml" in projects.source and "real" in projects.source
    licence = shipped_path("made-with-ml/dataset.csv").parent / "LICENSE"
    assert licence.read_text().startswith("MIT License")


def test_a_mistyped_source_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown data source 'madewithml'.*made-with-ml"):
        load_projects("madewithml")
    with pytest.raises(ValueError, match="is a folder"):
        load_projects(tmp_path)
    assert set(KNOWN_SOURCES) == {"made-with-ml", "synthetic"}


def test_unsupported_scheme():
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        fetch("ftp://example.org/data.csv")


def test_shipped_path_and_unknown_file():
    assert shipped_path("projects.csv").is_file()
    with pytest.raises(FileNotFoundError, match="not found"):
        shipped_path("nope.csv")
