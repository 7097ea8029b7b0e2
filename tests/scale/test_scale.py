"""Ray jobs give the kit's answers; Ray Serve answers the kit's API; the RayCluster validates.

Ray tests share one local cluster (2 CPUs) per module to keep their time small. Without
the ``scale`` extra they skip, except in CI, where a skip would hide a broken extra.
"""

import httpx
import pytest
from helpers import skip_unless_ci

from mlinfra_kit.processing import batch_features, simulate_events
from mlinfra_kit.scale import raycluster_manifest, validate_raycluster
from mlinfra_kit.scale.cluster import INSTALL_HINT, ray_available
from mlinfra_kit.serving.store import SQLiteStore


@pytest.fixture(scope="module")
def cluster():
    if not ray_available():
        skip_unless_ci(INSTALL_HINT)
    from mlinfra_kit.scale import ray_cluster

    with ray_cluster(num_cpus=2) as info:
        yield info


@pytest.mark.slow
def test_ray_batch_predictions_equal_the_single_process_ones(
    cluster, artifact, trained, projects, tmp_path
):
    from mlinfra_kit.scale import ray_predict_into_store

    assert cluster.cpus == 2 and cluster.startup_s > 0
    texts, ids = projects.texts[:150], projects.ids[:150]
    with SQLiteStore(tmp_path / "p.db") as store:
        report = ray_predict_into_store(str(artifact), ids, texts, store, workers=2, batch_size=40)
        assert report.written == 150 and report.batches >= 4
        expected = [p.tag for p in trained.predict(texts)]
        assert [store.get(str(i)).tag for i in ids] == expected


@pytest.mark.slow
def test_a_warm_pool_gives_the_same_answers_job_after_job(
    cluster, artifact, trained, projects, tmp_path
):
    from mlinfra_kit.scale import RayPredictorPool

    texts, ids = projects.texts[:120], projects.ids[:120]
    expected = [p.tag for p in trained.predict(texts)]
    with RayPredictorPool(str(artifact), workers=2) as pool:
        assert pool.startup_s > 0 and pool.version
        for job, actors in enumerate((None, 1)):  # the second job reuses one of the actors
            with SQLiteStore(tmp_path / f"w{job}.db") as store:
                report = pool.predict_into_store(ids, texts, store, batch_size=25, actors=actors)
                assert report.written == 120 and report.batches == 5
                assert report.model_version == pool.version
                assert [store.get(str(i)).tag for i in ids] == expected
        with pytest.raises(ValueError, match="between 1 and the pool's 2"):
            pool.predict_into_store(ids, texts, store, actors=3)
    with pytest.raises(RuntimeError, match="closed"), SQLiteStore(tmp_path / "x.db") as store:
        pool.predict_into_store(ids, texts, store)


@pytest.mark.slow
def test_ray_batch_features_equal_the_single_process_ones(cluster):
    from mlinfra_kit.scale import ray_batch_features

    log = simulate_events(n_users=6, duration_s=3600, seed=3)
    at = log.events[-1].event_time
    assert ray_batch_features(log.events, at) == batch_features(log.events, at)
    assert ray_batch_features(log.events, -1.0) == {}


@pytest.mark.slow
def test_ray_serve_answers_the_kits_api(cluster, artifact, trained):
    from mlinfra_kit.scale.serve import ray_serve

    with ray_serve(str(artifact), replicas=1) as url:
        answer = httpx.post(
            url + "/predict",
            json={"title": "YOLO object detection", "description": "boxes"},
            timeout=30,
        )
        assert answer.status_code == 200
        assert answer.json()["tag"] == trained.predict(["YOLO object detection boxes"])[0].tag
        for bad in ({"title": "  "}, {"title": "x", "colour": "red"}, {"description": "x"}):
            response = httpx.post(url + "/predict", json=bad, timeout=30)
            assert response.status_code == 422, bad


def test_ray_jobs_reject_bad_inputs(cluster, artifact, tmp_path):
    from mlinfra_kit.scale import ray_predict_into_store

    with SQLiteStore(tmp_path / "p.db") as store, pytest.raises(ValueError, match="length"):
        ray_predict_into_store(str(artifact), [1, 2], ["only one"], store)


def test_raycluster_manifest_validates_and_errors_are_caught():
    doc = raycluster_manifest("mlinfra", "registry.local/mlinfra:1", workers=2)
    assert validate_raycluster(doc) == []
    worker = doc["spec"]["workerGroupSpecs"][0]
    worker["replica"] = worker.pop("replicas")
    worker["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    errors = validate_raycluster(doc)
    assert any("unknown field 'replica'" in e for e in errors)
    assert any("imagePullPolicyy" in e for e in errors)
    assert "expected apiVersion" in validate_raycluster({"kind": "Pod"})[0]
    with pytest.raises(ValueError, match="max_workers"):
        raycluster_manifest("mlinfra", "img", workers=5, max_workers=4)


def test_rayjob_manifest_runs_a_sweep_on_a_cluster_with_a_shared_folder():
    from mlinfra_kit.scale import rayjob_manifest, validate_rayjob

    command = "mlinfra sweep 03 --quick --seeds 0-9 --ray auto --out /runs/03"
    doc = rayjob_manifest("sweep-03", "registry.local/mlinfra:1", command, workers=3)
    assert validate_rayjob(doc) == []
    cluster = doc["spec"]["rayClusterSpec"]
    assert cluster["workerGroupSpecs"][0]["replicas"] == 3
    for template in [
        cluster["headGroupSpec"]["template"],
        cluster["workerGroupSpecs"][0]["template"],
    ]:
        (volume,) = template["spec"]["volumes"]
        assert volume["persistentVolumeClaim"] == {"claimName": "mlinfra-runs"}
        assert template["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == "/runs"
    doc["spec"]["entrypoint"] = " "
    doc["spec"]["submissionMode"] = "Batch"
    doc["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["volumes"][0]["pvc"] = {}
    errors = validate_rayjob(doc)
    assert any("entrypoint is required" in e for e in errors)
    assert any("unknown mode 'Batch'" in e for e in errors)
    assert any("spec.rayClusterSpec.headGroupSpec.template" in e and "pvc" in e for e in errors)
    assert "kind RayJob" in validate_rayjob(raycluster_manifest("c", "img"))[0]
    with pytest.raises(ValueError, match="needs an entrypoint"):
        rayjob_manifest("sweep-03", "img", "")
