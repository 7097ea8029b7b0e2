"""Where a request's time goes: the stages, measured in process."""

import pytest

from mlinfra_kit.serving.breakdown import STAGES, where_time_goes


def test_the_stages_sum_to_the_whole_and_each_is_measured(artifact, projects):
    bodies = [{"title": p.title, "description": p.description} for p in projects[:64]]
    lone, batched = where_time_goes(artifact, bodies, batch_sizes=(1, 16), rounds=3)
    for b in (lone, batched):
        assert list(b.parts_us) == list(STAGES)
        assert all(v >= 0 for v in b.parts_us.values())
        assert b.whole_us > 0
        # the rest is what the whole costs beyond the stages timed one by one
        assert sum(b.parts_us.values()) == pytest.approx(max(b.whole_us, b.measured_us))
        # sanity: the stages are a large share of the request (timed apart from the whole,
        # so a busy machine moves the two apart: 0.42 was seen with another test beside it)
        assert b.measured_us > 0.25 * b.whole_us
        assert all(lo <= hi for lo, hi in b.ranges_us.values())
        assert b.row()["largest"] in STAGES
    assert (lone.batch_size, batched.batch_size) == (1, 16)
    # a batch shares the model's fixed cost: far less per request than one by one
    assert batched.parts_us["model"] < lone.parts_us["model"]
    # with the fast route (the default), FastAPI's routing is measured beside it
    assert lone.routed_us > 0 and batched.routed_us > 0


def test_without_the_fast_route_the_framework_is_fastapis_routing(artifact):
    from mlinfra_kit.serving.config import ServerConfig

    config = ServerConfig.of(artifact, fast_route=False)
    (only,) = where_time_goes(config, [{"title": "YOLO on a webcam"}] * 8, (1,), rounds=1)
    assert only.routed_us is None and only.parts_us["framework"] > 0


def test_bad_arguments_are_refused(artifact):
    with pytest.raises(ValueError, match="empty"):
        where_time_goes(artifact, [])
    with pytest.raises(ValueError, match="at least 1"):
        where_time_goes(artifact, [{"title": "x"}], batch_sizes=(0,))


def test_it_runs_where_an_event_loop_already_runs(artifact):
    """As in a notebook, whose kernel runs a loop: it measures on a thread of its own."""
    import asyncio

    async def from_a_loop():
        return where_time_goes(artifact, [{"title": "YOLO on a webcam"}] * 4, (1,), rounds=1)

    (only,) = asyncio.run(from_a_loop())
    assert only.whole_us > 0
