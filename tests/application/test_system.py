"""The application against real servers: a full quick run, a rehearsed failed candidate,
bad inputs counted, and the registry."""

import dataclasses
import json
from datetime import datetime

import matplotlib.pyplot as plt
import pytest

from mlinfra_kit.application import (
    AppConfig,
    ModelRegistry,
    run_application,
    timeline,
    train,
)
from mlinfra_kit.data import TAGS
from mlinfra_kit.optimization import compare_variants, pick

CUT = datetime(2021, 1, 1)


@pytest.fixture(scope="module")
def setting(projects, tmp_path_factory):
    ordered = projects.sorted_by_time().rows
    train_rows = [p for p in ordered if p.created_on < CUT]
    stream = [p for p in ordered if p.created_on >= CUT]
    v1 = train(train_rows, epochs=60)
    return train_rows, stream, v1


def registry_with(v1, root):
    registry = ModelRegistry(root)
    registry.promote(registry.register(v1.model, v1.evaluation.metrics()))
    return registry


def test_registry_versions_and_production(setting, tmp_path):
    _, _, v1 = setting
    registry = registry_with(v1, tmp_path)
    assert registry.production == "v1" and list(registry.versions()) == ["v1"]
    assert registry.register(v1.model, {"macro_f1": 0.5}, notes="again") == "v2"
    assert registry.production == "v1"  # registering is not deploying
    registry.promote("v2")
    assert json.loads((tmp_path / "registry.json").read_text())["production"] == "v2"
    with pytest.raises(ValueError, match="unknown version"):
        registry.promote("v9")


@pytest.mark.slow
def test_the_whole_system_runs_and_reports(setting, tmp_path):
    train_rows, stream, v1 = setting
    registry = registry_with(v1, tmp_path)
    run = run_application(registry, v1, train_rows, stream, AppConfig(epochs=60), progress=False)
    assert len(run.served) == len(stream) and run.failed_requests == 0
    assert len(run.windows) >= len(stream) // 50 - 1
    # The outcome is the one the event log shows (whichever it is on this machine).
    kinds = [e.kind for e in run.events]
    shown = (
        "no_retrain" if run.retrain_at is None
        else "promoted" if "promote" in kinds
        else "rolled_back" if "rollback" in kinds
        else "undecided"
    )  # fmt: skip
    assert run.outcome == shown, (run.outcome, kinds)
    if run.outcome == "promoted":
        promoted = next(e.detail for e in run.events if e.kind == "promote")
        assert "swapped" in promoted and registry.production == run.candidate
    if run.retrain_at is not None:
        kinds = [e.kind for e in run.events]
        assert kinds.index("alert") <= kinds.index("retrain") < kinds.index("shadow")
        assert "v2" in registry.versions()
    assert run.served_p99_ms > 0
    fig = timeline(run, alpha=0.001, window=50)
    assert len(fig.axes) == 3
    plt.close(fig)


@pytest.mark.slow
def test_without_an_alert_the_schedule_retrains(setting, tmp_path):
    train_rows, stream, v1 = setting
    registry = registry_with(v1, tmp_path)
    quiet = AppConfig(epochs=60, alpha=1e-300, max_f1_drop=1.0, retrain_after=100)  # no alerts
    run = run_application(registry, v1, train_rows, stream[:260], quiet, progress=False)
    assert not [e for e in run.events if e.kind == "alert"]
    assert run.retrain_reason == "the schedule" and 99 <= run.retrain_at < 150
    assert "on the schedule" in next(e.detail for e in run.events if e.kind == "retrain")
    with pytest.raises(ValueError, match="retrain_after"):
        AppConfig(retrain_after=0)


def mislabelled(rows):
    """A candidate from a buggy pipeline: every tag mapped to the next one in TAGS."""
    shift = {t: TAGS[(i + 1) % len(TAGS)] for i, t in enumerate(TAGS)}
    return train([dataclasses.replace(r, tag=shift[r.tag]) for r in rows], epochs=30)


@pytest.mark.slow
def test_a_failed_candidate_is_rolled_back_and_v1_keeps_serving(setting, tmp_path):
    train_rows, stream, v1 = setting
    registry = registry_with(v1, tmp_path)
    bad_inputs = [
        dataclasses.replace(stream[5], id=10**6, title="  ", description=""),
        dataclasses.replace(stream[6], id=10**6 + 1, tag="astrology"),
    ]
    stream = [*stream[:40], *bad_inputs, *stream[40:240]]
    # alpha=0.5: the first window alerts, so the rollout starts early in a short stream.
    config = AppConfig(
        window=20, label_delay=5, shadow_requests=10, canary_min_requests=15, alpha=0.5, epochs=3
    )
    run = run_application(
        registry, v1, train_rows, stream, config, retrain=mislabelled, progress=False
    )
    assert run.outcome == "rolled_back" and registry.production == "v1"
    # Every tag shifted: the shadow sees it disagree with production before any user does.
    assert "below the shadow gate" in next(e.detail for e in run.events if e.kind == "rollback")
    assert run.canary is None and run.shadow.agreement < 0.5
    assert run.failed_requests == 0 and run.rejected_requests == 1 and run.rejected_labels == 1
    after = [
        s for s in run.served if s.index > max(e.index for e in run.events if e.kind == "rollback")
    ]
    assert after and all(s.version == "v1" for s in after)


#: A short stream whose first window alerts (alpha=0.5) and whose candidate skips the shadow's
#: gate, so a broken candidate reaches the canary.
UNGATED = AppConfig(
    window=20,
    label_delay=5,
    shadow_requests=10,
    canary_min_requests=15,
    alpha=0.5,
    epochs=3,
    min_shadow_agreement=0.0,
)


@pytest.mark.slow
def test_without_the_shadow_gate_the_canarys_quality_guardrail_rolls_back(setting, tmp_path):
    train_rows, stream, v1 = setting
    registry = registry_with(v1, tmp_path)
    run = run_application(
        registry, v1, train_rows, stream[:240], UNGATED, retrain=mislabelled, progress=False
    )
    assert run.outcome == "rolled_back" and registry.production == "v1"
    assert "quality" in next(e.detail for e in run.events if e.kind == "rollback")
    with pytest.raises(ValueError, match="min_shadow_agreement"):
        AppConfig(min_shadow_agreement=1.5)


@pytest.mark.slow
def test_read_from_prometheus_the_canary_and_the_monitor_decide_as_in_process(setting, tmp_path):
    from helpers import skip_unless_ci

    from mlinfra_kit.services import prometheus_available, prometheus_server

    if not prometheus_available():
        skip_unless_ci("prometheus is not installed (apt-get install prometheus)")
    train_rows, stream, v1 = setting
    registry = registry_with(v1, tmp_path)
    with prometheus_server([], scrape_interval_s=0.5) as prom:
        run = run_application(
            registry,
            v1,
            train_rows,
            stream[:240],
            UNGATED,
            retrain=mislabelled,
            progress=False,
            prometheus=prom,
        )
    assert run.outcome == "rolled_back"
    decided = run.prometheus_decisions
    assert decided and all(d.agree for d in decided), [d.row() for d in decided]
    assert decided[-1].prometheus == "rollback" and 0 <= decided[-1].delay_s < 30
    assert "from Prometheus: rollback" in [e for e in run.events if e.kind == "canary"][-1].detail
    # Windows production answered alone: the same counts, so the same output-mix test.
    by_window = {w.window: w for w in run.windows}
    assert len(run.scraped_windows) >= 2
    for scraped in run.scraped_windows:
        inside = by_window[scraped.window]
        assert scraped.size == inside.size
        assert scraped.stats["output_mix_p"] == pytest.approx(inside.stats["output_mix_p"])
        assert scraped.stats["oov_sampled"] <= inside.size


def test_variant_choice_uses_measured_numbers(setting, tmp_path):
    _, stream, v1 = setting
    registry = registry_with(v1, tmp_path)
    texts, tags = [p.text for p in stream[:100]], [p.tag for p in stream[:100]]
    rows = compare_variants(registry.path("v1"), texts, tags, batch_sizes=(1,))
    assert [r["variant"] for r in rows] == ["fp32", "int8"]
    # The n-gram embedding holds nearly all the weights and int8 converts linear layers
    # only: the size barely moves.
    assert abs(rows[1]["size_mb"] - rows[0]["size_mb"]) < 0.05 * rows[0]["size_mb"]
    # With no binding budget the most accurate variant wins (the faster one on a tie).
    best = max(rows, key=lambda r: (r["accuracy"], -r["p50_ms_b1"]))
    assert pick(rows, max_latency_ms=1e6) is best
    # A budget only the faster one meets picks it, whatever its accuracy.
    fast, slow = sorted(rows, key=lambda r: r["p50_ms_b1"])
    between = (fast["p50_ms_b1"] + slow["p50_ms_b1"]) / 2
    if fast["p50_ms_b1"] < slow["p50_ms_b1"]:
        assert pick(rows, max_latency_ms=between) is fast
    with pytest.raises(ValueError, match="budget"):
        pick(rows, max_latency_ms=1e-6)


def test_bad_configuration_and_missing_production(setting, tmp_path):
    train_rows, stream, v1 = setting
    with pytest.raises(ValueError, match="window"):
        AppConfig(window=2)
    with pytest.raises(ValueError, match="production"):
        run_application(ModelRegistry(tmp_path), v1, train_rows, stream, progress=False)
    with pytest.raises(ValueError, match="at least 20"):
        train(train_rows[:5])


def test_projects_travel_through_a_redis_stream(setting, tmp_path, redis_url):
    train_rows, stream, v1 = setting
    registry = registry_with(v1, tmp_path)
    short = stream[:120]
    run = run_application(
        registry,
        v1,
        train_rows,
        short,
        AppConfig(window=40, epochs=3),
        redis_url=redis_url,
        progress=False,
    )
    assert [s.project_id for s in run.served] == [p.id for p in short]
    assert run.failed_requests == 0


def test_redis_entries_round_trip_and_bad_entries_are_clear(setting, redis_url):
    from mlinfra_kit.application.sources import ProjectCodec, redis_project_stream

    _, stream, _ = setting
    assert list(redis_project_stream(redis_url, stream[:7], stream="t-projects")) == stream[:7]
    with pytest.raises(ValueError, match="lacks"):
        ProjectCodec().decode({b"other": b"{}"})
