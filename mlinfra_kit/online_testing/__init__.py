"""Online testing: A/B tests with sound statistics, canary rollouts, shadow tests, bandits.

- :class:`Router`: sticky, deterministic assignment by a salted hash;
- statistics (SciPy): :func:`sample_size_proportions`, :func:`power_proportions`,
  :func:`mde_proportions`, :func:`sample_size_means`, :func:`z_test_proportions`,
  :func:`welch_t_test`, :func:`srm_check`, :func:`msprt_p_values` (sequential);
- simulation: :func:`simulate_users`, :func:`peeking_simulation` (also checked after
  every user), :func:`interval_coverage`;
- :class:`Canary` with :class:`Guardrails` (one-sided tests with a false-rollback budget)
  and :func:`run_canary`, :func:`http_sender` its real traffic; :func:`canary_simulation`
  measures them;
- :func:`run_shadow`: mirror requests to a candidate server;
- bandits: :class:`EpsilonGreedy`, :class:`UCB1`, :class:`ThompsonSampling`,
  :class:`FixedSplit`, :func:`simulate_bandit`.
"""

from mlinfra_kit.online_testing.bandits import (
    UCB1,
    BanditRun,
    EpsilonGreedy,
    FixedSplit,
    ThompsonSampling,
    simulate_bandit,
)
from mlinfra_kit.online_testing.canary import (
    Canary,
    CanaryDecision,
    GuardrailCheck,
    Guardrails,
    Observation,
    guardrail_checks,
    run_canary,
)
from mlinfra_kit.online_testing.router import Router, bucket, check_weights
from mlinfra_kit.online_testing.shadow import ShadowReport, run_shadow
from mlinfra_kit.online_testing.simulate import (
    canary_simulation,
    canary_sweep,
    interval_coverage,
    peeking_simulation,
    simulate_users,
)
from mlinfra_kit.online_testing.stats import (
    SRMResult,
    TestResult,
    mde_proportions,
    msprt_p_values,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
    srm_check,
    welch_t_test,
    z_test_proportions,
)
from mlinfra_kit.online_testing.traffic import http_sender, predict_timed

__all__ = [
    "BanditRun",
    "Canary",
    "CanaryDecision",
    "GuardrailCheck",
    "canary_simulation",
    "canary_sweep",
    "guardrail_checks",
    "http_sender",
    "predict_timed",
    "interval_coverage",
    "EpsilonGreedy",
    "FixedSplit",
    "Guardrails",
    "Observation",
    "Router",
    "SRMResult",
    "ShadowReport",
    "TestResult",
    "ThompsonSampling",
    "UCB1",
    "bucket",
    "check_weights",
    "mde_proportions",
    "msprt_p_values",
    "peeking_simulation",
    "power_proportions",
    "run_canary",
    "run_shadow",
    "sample_size_means",
    "sample_size_proportions",
    "simulate_bandit",
    "simulate_users",
    "srm_check",
    "welch_t_test",
    "z_test_proportions",
]
