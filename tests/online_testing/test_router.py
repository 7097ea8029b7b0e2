"""The router: sticky, independent across experiments, minimal moves (property-based)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra_kit.online_testing import Router

users = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=50, unique=True)
shares = st.floats(min_value=0.0, max_value=1.0)


@given(users, shares)
def test_assignment_is_sticky(ids, share):
    router = Router("exp", {"candidate": share, "baseline": 1 - share})
    again = Router("exp", {"candidate": share, "baseline": 1 - share})
    assert [router.assign(u) for u in ids] == [again.assign(u) for u in ids]


@settings(max_examples=50)
@given(users, shares, shares)
def test_growing_the_candidate_moves_users_one_way_only(ids, a, b):
    small, large = sorted((a, b))
    before = Router("exp", {"candidate": small, "baseline": 1 - small})
    after = before.with_weights({"candidate": large, "baseline": 1 - large})
    for u in ids:
        if before.assign(u) == "candidate":
            assert after.assign(u) == "candidate"


def test_shares_match_weights_and_experiments_are_independent():
    ids = [f"user-{i}" for i in range(20_000)]
    a = Router("exp-a", {"candidate": 0.2, "baseline": 0.8})
    b = Router("exp-b", {"candidate": 0.2, "baseline": 0.8})
    in_a = {u for u in ids if a.assign(u) == "candidate"}
    in_b = {u for u in ids if b.assign(u) == "candidate"}
    assert abs(len(in_a) / len(ids) - 0.2) < 0.015
    # Independent experiments: the overlap is about 0.2 * 0.2, not 0.2.
    assert abs(len(in_a & in_b) / len(ids) - 0.04) < 0.01


def test_zero_weight_variant_gets_nobody():
    router = Router("exp", {"candidate": 0.0, "baseline": 1.0})
    assert {router.assign(str(i)) for i in range(500)} == {"baseline"}


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"a": 0.5, "b": 0.6}, "sum to 1"),
        ({"a": -0.1, "b": 1.1}, ">= 0"),
        ({}, "non-empty"),
        ({"a": "half", "b": 0.5}, "number"),
    ],
)
def test_bad_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        Router("exp", weights)


def test_unknown_variant_in_new_weights():
    with pytest.raises(ValueError, match="unknown variant"):
        Router("exp", {"a": 0.5, "b": 0.5}).with_weights({"c": 1.0})
