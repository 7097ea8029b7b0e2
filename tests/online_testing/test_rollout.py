"""Canary rollback and completion, shadow mirroring against real servers, bandits."""

import pytest

from mlinfra_kit.online_testing import (
    UCB1,
    Canary,
    EpsilonGreedy,
    FixedSplit,
    Guardrails,
    Observation,
    ThompsonSampling,
    run_canary,
    run_shadow,
    simulate_bandit,
)
from mlinfra_kit.serving import run_server


def simulated(quality, latency, error=False):
    """A send() for run_canary: baseline right 85 % of the time, the candidate as given."""
    import random

    rng = random.Random(0)

    def send(variant, user):
        q = 0.85 if variant == "baseline" else quality
        ms = 10.0 if variant == "baseline" else latency
        return Observation(
            variant, rng.gauss(ms, 1), error and variant == "candidate", float(rng.random() < q)
        )

    return send


def users(n=100_000):
    return (f"user-{i}" for i in range(n))


def test_good_candidate_completes_every_step():
    canary = run_canary(Canary(min_requests=200), users(), simulated(0.85, 10.0))
    assert canary.status == "completed"
    assert [d.decision for d in canary.decisions][-1] == "complete"
    assert [s for _, s in canary.shares] == [0.01, 0.05, 0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize(
    "send, guardrail",
    [
        (simulated(0.5, 10.0), "quality"),
        (simulated(0.85, 30.0), "latency"),
        (simulated(0.85, 10.0, error=True), "error_rate"),
    ],
)
def test_bad_candidate_is_rolled_back_at_the_first_step(send, guardrail):
    canary = run_canary(Canary(min_requests=200), users(), send)
    assert canary.status == "rolled_back" and canary.reason.startswith(guardrail)
    last = canary.decisions[-1]
    assert last.share == 0.01 and canary.share == 0.0 and last.fired.name == guardrail
    assert last.fired.p_value < last.fired.threshold == canary.threshold
    assert "p = " in canary.reason and "200 candidate requests" in canary.reason
    assert len(canary.users_exposed) == 200
    assert {"error_rate_p", "latency_p", "quality_p", "threshold"} <= set(last.row())


def test_an_identical_candidate_is_promoted_and_a_worse_one_caught_in_simulation():
    """The guardrails' false-rollback rate and power, by a seeded simulation (sanity bounds;
    04_online_testing measures them at full size)."""
    from mlinfra_kit.online_testing import canary_simulation

    same = canary_simulation(rollouts=200, seed=3)
    assert same["promoted"] >= 0.95
    assert canary_simulation(rollouts=60, error_rate=(0.02, 0.04), seed=3)["rolled_back"] >= 0.9
    worse = canary_simulation(rollouts=60, quality=(0.87, 0.82), seed=3)
    assert worse["rolled_back"] >= 0.9 and worse["fired"]["quality"] > 0.8


def test_canary_bad_settings():
    with pytest.raises(ValueError, match="end at 1.0"):
        Canary(steps=(0.1, 0.5))
    with pytest.raises(ValueError, match="min_requests"):
        Canary(min_requests=0)
    with pytest.raises(ValueError, match="false_rollback"):
        Guardrails(false_rollback=1.0)
    with pytest.raises(ValueError, match="latency_quantile"):
        Guardrails(latency_quantile=1.0)
    with pytest.raises(ValueError, match="unknown variant"):
        Canary().observe("u", Observation("other", 1.0, False))


PROJECTS = [{"title": f"project {i} about object detection and segmentation"} for i in range(40)]


@pytest.fixture(scope="module")
def two_servers(artifact):
    with run_server(artifact) as primary, run_server(artifact) as candidate:
        yield primary, candidate


def test_shadow_mirrors_without_changing_answers(two_servers):
    primary, candidate = two_servers
    plain = run_shadow(primary.url, PROJECTS)
    shadowed = run_shadow(primary.url, PROJECTS, candidate_url=candidate.url)
    assert shadowed.responses == plain.responses
    assert shadowed.mirrored == len(PROJECTS) and shadowed.compared == len(PROJECTS)
    assert shadowed.agreement == 1.0 and shadowed.candidate_errors == 0
    assert len(shadowed.candidate_latencies_ms) == len(PROJECTS)


def test_shadow_survives_a_dead_candidate(two_servers):
    primary, _ = two_servers
    report = run_shadow(primary.url, PROJECTS[:10], candidate_url="http://127.0.0.1:9", timeout_s=5)
    assert len(report.responses) == 10 and report.candidate_errors == 10
    assert all("tag" in r for r in report.responses)
    with pytest.raises(ValueError, match="empty"):
        run_shadow(primary.url, [])


@pytest.mark.parametrize("policy", [ThompsonSampling, UCB1, EpsilonGreedy])
def test_bandits_converge_on_a_clear_winner(policy):
    rates = {"a": 0.05, "b": 0.15}
    bandit = simulate_bandit(policy(["a", "b"], seed=1), rates, n=4000, seed=1)
    ab = simulate_bandit(FixedSplit(["a", "b"], seed=1), rates, n=4000, seed=1)
    assert bandit.share_to_worse < 0.25 < ab.share_to_worse
    assert bandit.total_regret < ab.total_regret


def test_bandit_bad_inputs():
    with pytest.raises(ValueError, match="two distinct arms"):
        UCB1(["a"])
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonGreedy(["a", "b"], epsilon=2)
    with pytest.raises(ValueError, match="unknown arm"):
        UCB1(["a", "b"]).update("c", 1.0)
    with pytest.raises(ValueError, match="arms"):
        simulate_bandit(UCB1(["a", "b"]), {"a": 0.1}, 10)
