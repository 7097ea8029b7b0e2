"""The batch job: predictions for every entity, resumable after a crash."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mlinfra_kit.models import TagClassifier
from mlinfra_kit.services import wait_until
from mlinfra_kit.serving import SQLiteStore, open_store, predict_into_store


def test_writes_every_entity_with_version_and_time(artifact, projects, tmp_path):
    model = TagClassifier.load(artifact)
    with SQLiteStore(tmp_path / "p.db") as store:
        before = time.time()
        report = predict_into_store(
            model, projects.ids, projects.texts, store, batch_size=100, progress=False
        )
        assert (report.total, report.written, report.skipped) == (len(projects),) * 2 + (0,)
        assert report.batches == -(-len(projects) // 100)
        assert store.count("v1") == len(projects)
        stored = store.get(str(projects.ids[5]))
        assert stored.model_version == "v1" and stored.created_at >= before
        assert stored.tag == model.predict([projects.texts[5]])[0].tag
        again = predict_into_store(model, projects.ids, projects.texts, store, progress=False)
        assert (again.written, again.skipped) == (0, len(projects))


def test_redis_backend(artifact, projects, redis_url):
    model = TagClassifier.load(artifact)
    with open_store(redis_url) as store:
        store.clear()
        report = predict_into_store(
            model, projects.ids[:50], projects.texts[:50], store, progress=False
        )
        assert report.written == 50 and store.count("v1") == 50


def test_bad_input(trained, projects, tmp_path):
    with SQLiteStore(tmp_path / "p.db") as store:
        with pytest.raises(ValueError, match="differ in length"):
            predict_into_store(trained, [1, 2], ["a"], store, model_version="x")
        with pytest.raises(ValueError, match="no version"):
            predict_into_store(TagClassifier(), [1], ["a"], store)
        with pytest.raises(ValueError, match="unique"):
            predict_into_store(trained, [1, 1], ["a", "b"], store, model_version="x")
        with pytest.raises(ValueError, match="batch_size"):
            predict_into_store(trained, [1], ["a"], store, model_version="x", batch_size=0)


# The job holds once 64 predictions are stored (an event nobody sets) until it is killed.
SLOW_JOB = textwrap.dedent("""
    import sys, threading
    from mlinfra_kit.data import load_projects
    from mlinfra_kit.models import TagClassifier
    from mlinfra_kit.serving import SQLiteStore, predict_into_store

    projects = load_projects()
    model = TagClassifier.load(sys.argv[1])
    hold = threading.Event()
    with SQLiteStore(sys.argv[2]) as store:
        predict_into_store(model, projects.ids, projects.texts, store, batch_size=16,
                           progress=False, on_batch=lambda written: written >= 64 and hold.wait())
""")


def test_sigkill_midway_leaves_whole_batches_and_rerun_completes(artifact, projects, tmp_path):
    db = tmp_path / "p.db"
    job = subprocess.Popen([sys.executable, "-c", SLOW_JOB, str(artifact), str(db)])
    try:

        def stored() -> int:
            if not db.exists():
                return 0
            with SQLiteStore(db) as peek:
                return peek.count()

        wait_until(lambda: stored() >= 64, 120, "the job's first 64 predictions", job)
        os.kill(job.pid, signal.SIGKILL)
    finally:
        job.wait()
    assert job.returncode == -signal.SIGKILL
    with SQLiteStore(db) as store:
        done = store.count("v1")
        assert 64 <= done < len(projects)
        assert done % 16 == 0, "a batch is written whole or not at all"
        report = predict_into_store(
            TagClassifier.load(artifact),
            projects.ids,
            projects.texts,
            store,
            batch_size=16,
            progress=False,
        )
        assert report.skipped == done and report.written == len(projects) - done
        assert store.count("v1") == len(projects)


def test_compare_with_live_flags_changed_inputs_and_missing(trained, tmp_path):
    from mlinfra_kit.serving import compare_with_live

    texts = ["object detection with yolo", "translation with transformers"]
    with SQLiteStore(tmp_path / "p.db") as store:
        predict_into_store(trained, ["a", "b"], texts, store, model_version="v1", progress=False)
        changed = [texts[0], "kubernetes deployment monitoring pipeline"]
        rows = compare_with_live(trained, ["a", "b", "new"], [*changed, "a new project"], store)
    assert rows[0]["agrees"] and rows[0]["stored_version"] == "v1"
    assert rows[0]["stored_age_s"] >= 0
    assert rows[2]["stored_tag"] is None and not rows[2]["agrees"]
    with pytest.raises(ValueError, match="differ in length"):
        compare_with_live(trained, ["a"], [], store)
