"""Simulated users, to see by experiment where naive A/B practice goes wrong.

Examples
--------
>>> fpr = peeking_simulation(0.1, n_per_arm=2000, looks=10, sims=400, seed=0)
>>> fpr["fixed_horizon_any_look"] > fpr["fixed_horizon_final"]
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

from mlinfra_kit.online_testing.router import Router
from mlinfra_kit.online_testing.stats import msprt_p_values


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
