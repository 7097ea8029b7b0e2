"""Bandits: shift traffic to the better variant while the test is still running.

An A/B test keeps sending half the users to the worse variant until it ends; a bandit
learns as it goes. The price of either is *regret*: the conversions lost against always
showing the best variant.

Examples
--------
>>> run = simulate_bandit(ThompsonSampling(["a", "b"], seed=0), {"a": 0.05, "b": 0.10},
...                       n=5000, seed=0)
>>> run.share_to_worse < 0.3
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BanditRun",
    "EpsilonGreedy",
    "FixedSplit",
    "Policy",
    "ThompsonSampling",
    "UCB1",
    "simulate_bandit",
]


class Policy:
    """Chooses an arm per user (``choose``) and learns from the reward (``update``)."""

    name = "policy"

    def __init__(self, arms: Sequence[str], seed: int = 0):
        if len(arms) < 2 or len(set(arms)) != len(arms):
            raise ValueError(f"need at least two distinct arms, got {list(arms)}")
        self.arms = list(arms)
        self.pulls = {a: 0 for a in self.arms}
        self.rewards = {a: 0.0 for a in self.arms}
        self.rng = np.random.default_rng(seed)

    def mean(self, arm: str) -> float:
        return self.rewards[arm] / self.pulls[arm] if self.pulls[arm] else 0.0

    def choose(self) -> str:
        raise NotImplementedError

    def update(self, arm: str, reward: float) -> None:
        if arm not in self.pulls:
            raise ValueError(f"unknown arm {arm!r}; arms are {self.arms}")
        self.pulls[arm] += 1
        self.rewards[arm] += reward


class FixedSplit(Policy):
    """The A/B test: a fixed random split, whatever the results."""

    name = "A/B 50/50"

    def choose(self) -> str:
        return self.arms[int(self.rng.integers(len(self.arms)))]


class EpsilonGreedy(Policy):
    """Explore a random arm with probability ``epsilon``, else exploit the best mean."""

    name = "epsilon-greedy"

    def __init__(self, arms: Sequence[str], epsilon: float = 0.1, seed: int = 0):
        super().__init__(arms, seed)
        if not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = epsilon

    def choose(self) -> str:
        if self.rng.random() < self.epsilon:
            return self.arms[int(self.rng.integers(len(self.arms)))]
        return max(self.arms, key=self.mean)


class UCB1(Policy):
    """Optimism under uncertainty: the best upper confidence bound wins."""

    name = "UCB1"

    def choose(self) -> str:
        for arm in self.arms:
            if self.pulls[arm] == 0:
                return arm
        total = sum(self.pulls.values())
        return max(
            self.arms, key=lambda a: self.mean(a) + math.sqrt(2 * math.log(total) / self.pulls[a])
        )


class ThompsonSampling(Policy):
    """Draw each arm's rate from its Beta posterior; play the best draw."""

    name = "Thompson sampling"

    def choose(self) -> str:
        draws = [
            self.rng.beta(1 + self.rewards[a], 1 + self.pulls[a] - self.rewards[a])
            for a in self.arms
        ]
        return self.arms[int(np.argmax(draws))]


@dataclass(frozen=True)
class BanditRun:
    """One policy's run over simulated users: cumulative regret after each user, the share
    sent to a worse arm, conversions."""

    name: str
    regret: np.ndarray = field(repr=False)  # cumulative expected regret after each user
    share_to_worse: float  # of users sent to a suboptimal arm
    conversions: int

    @property
    def total_regret(self) -> float:
        return float(self.regret[-1])


def simulate_bandit(policy: Policy, rates: Mapping[str, float], n: int, seed: int = 0) -> BanditRun:
    """``n`` users, each shown ``policy.choose()`` and converting with that arm's rate."""
    if set(rates) != set(policy.arms):
        raise ValueError(f"rates have arms {sorted(rates)}, the policy {sorted(policy.arms)}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    best = max(rates.values())
    regret = np.empty(n)
    lost, worse, conversions = 0.0, 0, 0
    for i in range(n):
        arm = policy.choose()
        reward = float(rng.random() < rates[arm])
        policy.update(arm, reward)
        lost += best - rates[arm]
        worse += rates[arm] < best
        conversions += int(reward)
        regret[i] = lost
    return BanditRun(policy.name, regret, worse / n, conversions)
