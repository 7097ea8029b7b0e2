"""Simulated users, to see by experiment where naive A/B practice goes wrong.

Examples
--------
>>> fpr = peeking_simulation(0.1, n_per_arm=2000, looks=10, sims=400, seed=0)
>>> fpr["fixed_horizon_any_look"] > fpr["fixed_horizon_final"]
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from mlinfra_kit.online_testing.canary import Guardrails
from mlinfra_kit.online_testing.router import Router
from mlinfra_kit.online_testing.stats import msprt_p_values

__all__ = [
    "canary_simulation",
    "canary_sweep",
    "interval_coverage",
    "peeking_simulation",
    "simulate_users",
]


def simulate_users(
    router: Router,
    rates: Mapping[str, float],
    n_users: int,
    seed: int = 0,
    novelty: float = 0.0,
    novelty_half_life: float = 1000.0,
    novelty_variant: str | None = None,
) -> dict[str, dict[str, int]]:
    """Route ``n_users`` users and draw a conversion for each with their variant's rate.

    A novelty effect lifts ``novelty_variant``'s rate by ``novelty`` (relative) for the
    first users, fading with ``novelty_half_life`` users: early results flatter it.
    Returns ``{variant: {"users": n, "conversions": k}}``.
    """
    unknown = set(rates) ^ set(router.weights)
    if unknown:
        raise ValueError(f"rates and router variants differ: {sorted(unknown)}")
    for name, p in rates.items():
        if not 0 <= p <= 1:
            raise ValueError(f"rate of {name!r} must be in [0, 1], got {p}")
    rng = np.random.default_rng(seed)
    out = {name: {"users": 0, "conversions": 0} for name in rates}
    for i in range(n_users):
        variant = router.assign(f"user-{seed}-{i}")
        p = rates[variant]
        if variant == novelty_variant:
            p = min(1.0, p * (1 + novelty * 0.5 ** (i / novelty_half_life)))
        out[variant]["users"] += 1
        out[variant]["conversions"] += int(rng.random() < p)
    return out


def _bernoulli_paths(rng, p: float, sims: int, looks: np.ndarray) -> np.ndarray:
    """Cumulative successes at each look for ``sims`` runs (binomial increments)."""
    steps = np.diff(np.concatenate([[0], looks]))
    return np.cumsum(rng.binomial(steps, p, size=(sims, len(steps))), axis=1)


def peeking_simulation(
    p: float,
    n_per_arm: int,
    looks: int = 20,
    sims: int = 2000,
    alpha: float = 0.05,
    tau: float = 0.05,
    seed: int = 0,
    lift: float = 0.0,
) -> dict[str, object]:
    """A/B tests with rate ``p`` in A and ``p + lift`` in B, checked at ``looks`` evenly
    spaced points up to ``n_per_arm`` users per arm, ``sims`` times.

    Returns the share of runs that declared a difference: at the final look only (the
    fixed-horizon test used as designed), at any look (peeking with the same test), and
    at any look with the mSPRT; plus the any-look rate after each look, and the
    Monte-Carlo standard error of a rate near alpha.
    """
    if sims < 1 or looks < 1 or n_per_arm < looks:
        raise ValueError("need sims >= 1, looks >= 1 and n_per_arm >= looks")
    rng = np.random.default_rng(seed)
    at = np.linspace(n_per_arm / looks, n_per_arm, looks).round().astype(int)
    sa = _bernoulli_paths(rng, p, sims, at)
    sb = _bernoulli_paths(rng, p + lift, sims, at)
    pooled = (sa + sb) / (2 * at)
    se = np.sqrt(np.maximum(pooled * (1 - pooled) * 2 / at, 1e-18))
    z_p = 2 * stats.norm.sf(np.abs(sb - sa) / at / se)
    fixed_reject = z_p < alpha
    seq_reject = (
        msprt_p_values(sa, np.broadcast_to(at, sa.shape), sb, np.broadcast_to(at, sb.shape), tau)
        < alpha
    )
    return {
        "looks": at.tolist(),
        "fixed_horizon_final": float(fixed_reject[:, -1].mean()),
        "fixed_horizon_any_look": float(fixed_reject.any(axis=1).mean()),
        "sequential_any_look": float(seq_reject.any(axis=1).mean()),
        "fixed_by_look": np.maximum.accumulate(fixed_reject, axis=1).mean(axis=0).tolist(),
        "sequential_by_look": np.maximum.accumulate(seq_reject, axis=1).mean(axis=0).tolist(),
        "mc_standard_error": math.sqrt(alpha * (1 - alpha) / sims),
    }


def interval_coverage(
    p_a: float,
    p_b: float,
    n_a: int,
    n_b: int,
    sims: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """How often each interval for ``p_b - p_a`` covers the true difference, over
    ``sims`` simulated experiments: the score interval of :func:`z_test_proportions`, and
    the Wald interval (the estimate plus or minus z times its unpooled standard error)
    that textbooks print. A 95 % interval should cover 95 % of the time.

    >>> cov = interval_coverage(0.02, 0.04, 100, 1000, sims=300, seed=0)
    >>> cov["score"] > cov["wald"]
    True
    """
    from mlinfra_kit.online_testing.stats import z_test_proportions

    if sims < 1:
        raise ValueError(f"sims must be 1 or more, got {sims}")
    rng = np.random.default_rng(seed)
    sa, sb = rng.binomial(n_a, p_a, sims), rng.binomial(n_b, p_b, sims)
    truth = p_b - p_a
    z = stats.norm.ppf(1 - alpha / 2)
    pa, pb = sa / n_a, sb / n_b
    half = z * np.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    wald = np.mean((pb - pa - half <= truth) & (truth <= pb - pa + half))
    score = np.mean(
        [
            (r.ci_low <= truth <= r.ci_high)
            for r in (
                z_test_proportions(int(a), n_a, int(b), n_b, alpha)
                for a, b in zip(sa, sb, strict=True)
            )
        ]
    )
    return {
        "score": float(score),
        "wald": float(wald),
        "mc_standard_error": math.sqrt((1 - alpha) * alpha / sims),
    }


def canary_simulation(
    rollouts: int = 200,
    error_rate: tuple[float, float] = (0.02, 0.02),
    quality: tuple[float, float] = (0.87, 0.87),
    latency_scale: float = 1.0,
    steps: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
    min_requests: int = 1000,
    guardrails: Guardrails | None = None,
    seed: int = 0,
    latency_sigma: float = 0.5,
) -> dict[str, Any]:
    """Simulated canary rollouts of a candidate against a baseline: ``error_rate`` and
    ``quality`` are (baseline, candidate) rates; latencies are lognormal (``latency_sigma``:
    1.0 is a heavy tail), the candidate's scaled by ``latency_scale``. Each step draws
    ``min_requests`` candidate requests and the baseline's requests in proportion to its
    share, then applies the same
    :func:`~mlinfra_kit.online_testing.canary.guardrail_checks` as a :class:`Canary`
    (latency on the step's requests, the rest on everything so far).

    Returns the share of rollouts ``promoted`` (completed), ``rolled_back``, which guardrail
    fired how often (``fired``), and the Monte-Carlo standard error of a rate near 0.95.

    >>> same = canary_simulation(rollouts=50, seed=0)
    >>> same["promoted"] > 0.9
    True
    """
    from mlinfra_kit.online_testing.canary import ArmData, guardrail_checks, latency_window

    if rollouts < 1 or min_requests < 1:
        raise ValueError("rollouts and min_requests must be 1 or more")
    guardrails = guardrails or Guardrails()
    threshold = guardrails.false_rollback / (3 * len(steps))
    rng = np.random.default_rng(seed)
    fired: dict[str, int] = {}
    promoted = 0

    def serve(arm: ArmData, n: int, which: int, scale: float) -> np.ndarray:
        errors = rng.binomial(n, error_rate[which])
        good = rng.binomial(n - errors, quality[which])
        latencies = scale * rng.lognormal(0.0, latency_sigma, n)
        arm.extend(errors, latencies, n - errors, good, keep_latencies=False)  # tested on windows
        return latencies

    for _ in range(rollouts):
        base, cand = ArmData(), ArmData()
        outcome, previous = "promoted", np.zeros(0)
        for share in steps:
            step_cand = serve(cand, min_requests, 1, latency_scale)
            step_base = serve(base, round(min_requests * (1 - share) / share), 0, 1.0)
            window = latency_window(step_base, previous)
            checks = guardrail_checks(base, cand, guardrails, threshold, (window, step_cand))
            previous = window
            hit = next((c for c in checks if c.fired), None)
            if hit:
                fired[hit.name] = fired.get(hit.name, 0) + 1
                outcome = "rolled_back"
                break
        promoted += outcome == "promoted"
    return {
        "promoted": promoted / rollouts,
        "rolled_back": 1 - promoted / rollouts,
        "fired": {k: v / rollouts for k, v in sorted(fired.items())},
        "mc_standard_error": math.sqrt(0.05 * 0.95 / rollouts),
    }


def canary_sweep(
    base_rates: Sequence[float] = (0.0001, 0.001, 0.01, 0.1),
    traffic: Sequence[int] = (50, 200, 1000),
    rises: Sequence[float] = (0.0,),
    rollouts: int = 200,
    steps: Sequence[float] = (0.01, 0.05, 0.25, 0.5, 1.0),
    guardrails: Guardrails | None = None,
    latency_sigma: float = 1.0,
    seed: int = 0,
) -> list[dict[str, float]]:
    """:func:`canary_simulation` over a grid: each base error rate, candidate requests per
    step and rise of the candidate's error rate (0: an identical candidate, whose rollbacks
    are false alarms). One row per cell: the share ``rolled_back`` and its 95 % interval
    (Clopper-Pearson), against the budget ``false_rollback``.

    >>> rows = canary_sweep((0.01,), (100,), rollouts=40)
    >>> rows[0]["rolled_back"] <= rows[0]["rolled_back_high"]
    True
    """
    from scipy import stats

    guardrails = guardrails or Guardrails()
    rows = []
    for k, (base, n, rise) in enumerate(
        (b, n, r) for r in rises for b in base_rates for n in traffic
    ):
        if not 0 < base + rise < 1:
            raise ValueError(f"base rate + rise must be in (0, 1), got {base} + {rise}")
        result = canary_simulation(
            rollouts,
            error_rate=(base, base + rise),
            steps=steps,
            min_requests=n,
            guardrails=guardrails,
            seed=seed + k,
            latency_sigma=latency_sigma,
        )
        back = round(float(result["rolled_back"]) * rollouts)
        low, high = stats.binomtest(back, rollouts).proportion_ci(0.95)
        rows.append(
            {
                "base_error_rate": base,
                "rise": rise,
                "min_requests": n,
                "rollouts": rollouts,
                "rolled_back": back / rollouts,
                "rolled_back_low": float(low),
                "rolled_back_high": float(high),
                "budget": guardrails.false_rollback,
            }
        )
    return rows
