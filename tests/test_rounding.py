"""Rounding to cents: totals, floor-or-ceiling per cell, limits kept by repair."""

from __future__ import annotations

import itertools
import math

import highspy
import numpy as np
import pytest
from builders import fast
from hypothesis import given
from hypothesis import strategies as st

from optimizer.rounding import CentLimit, round_to_cents


@pytest.fixture(autouse=True)
def _fresh_highs_scheduler():
    # The rounding may fall back on a HiGHS integer program with the default
    # thread count. HiGHS keeps one thread scheduler per process, and a later
    # solve with threads = 1 then fails (see test_planner's
    # test_optimize_after_other_highspy_use). Reset it so that other test
    # files do not inherit the state of these ones.
    yield
    highspy.Highs.resetGlobalScheduler(True)


def floor_or_ceiling(cents, exact_cents) -> bool:
    return bool(
        np.all(
            (cents == np.floor(exact_cents + 1e-6))
            | (cents == np.ceil(exact_cents - 1e-6))
        )
    )


def held(cents, limit: CentLimit) -> int:
    return int(cents.reshape(-1)[limit.inside].sum())


def kept(cents, limit: CentLimit) -> bool:
    value = held(cents, limit)
    return value >= limit.low and (limit.high is None or value <= limit.high)


def some_rounding(exact_cents, target, limits):
    """Any floor-or-ceiling rounding adding to target and keeping the limits."""
    floors = np.floor(exact_cents + 1e-6).astype(int)
    ceilings = np.maximum(np.ceil(exact_cents - 1e-6).astype(int), floors)
    options = [sorted({f, c}) for f, c in zip(floors, ceilings, strict=True)]
    for combo in itertools.product(*options):
        cents = np.array(combo)
        if cents.sum() == target and all(kept(cents, limit) for limit in limits):
            return cents
    return None


# Spend in cents: whole cents plus a remainder in hundredths of a cent.
@st.composite
def exact_spend(draw, min_size=1, max_size=12):
    n = draw(st.integers(min_size, max_size))
    whole = draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))
    part = draw(st.lists(st.integers(0, 99), min_size=n, max_size=n))
    return np.array(whole) + np.array(part) / 100


@fast(500)
@given(exact_spend(), st.sampled_from([(-1,), (2, 2), (3, 1, 2)]))
def test_cents_add_up_and_each_cell_is_its_floor_or_ceiling(exact_cents, shape):
    spend = exact_cents / 100
    if len(shape) > 1 and math.prod(shape) == len(spend):
        spend = spend.reshape(shape)
    target = round(float(exact_cents.sum()))
    cents = round_to_cents(spend, target)
    assert cents.shape == spend.shape
    assert cents.dtype.kind == "i"
    assert int(cents.sum()) == target
    assert floor_or_ceiling(cents.reshape(-1), exact_cents)


def test_negative_noise_counts_as_zero():
    cents = round_to_cents(np.array([-1e-12, 12.344, 7.656]), 2000)
    np.testing.assert_array_equal(cents, [0, 1234, 766])


@st.composite
def repairable(draw, max_limits=3):
    """Spend and limits that the exact spend keeps, in whole cents."""
    exact_cents = draw(exact_spend(min_size=2, max_size=8))
    limits = []
    for _ in range(draw(st.integers(1, max_limits))):
        inside = np.array(
            draw(
                st.lists(
                    st.booleans(), min_size=len(exact_cents), max_size=len(exact_cents)
                )
            )
        )
        amount = float(exact_cents[inside].sum())
        kind = draw(st.sampled_from(["min", "max", "both"]))
        low = math.floor(amount + 1e-9) - draw(st.integers(0, 1))
        high = math.ceil(amount - 1e-9) + draw(st.integers(0, 1))
        limits.append(
            CentLimit(
                inside=inside,
                low=max(low, 0) if kind != "max" else 0,
                high=high if kind != "min" else None,
            )
        )
    return exact_cents, limits


@fast(500)
@given(repairable())
def test_limits_the_exact_spend_keeps_are_kept_after_rounding(case):
    exact_cents, limits = case
    target = round(float(exact_cents.sum()))
    assert some_rounding(exact_cents, target, limits) is not None
    cents = round_to_cents(exact_cents / 100, target, limits)
    assert int(cents.sum()) == target
    assert floor_or_ceiling(cents, exact_cents)
    for limit in limits:
        assert kept(cents, limit), (held(cents, limit), limit.low, limit.high)


@fast(500)
@given(exact_spend(min_size=2, max_size=9), st.data())
def test_one_limit_above_the_exact_spend_is_met_when_it_can_be(exact_cents, data):
    # A minimum with a fraction of a cent (a share of the budget, say) asks
    # for more than the exact spend inside: the inside must round up.
    n = len(exact_cents)
    inside = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    amount = float(exact_cents[inside].sum())
    limit = CentLimit(inside=inside, low=math.ceil(amount - 1e-9), high=None)
    target = round(float(exact_cents.sum()))
    cents = round_to_cents(exact_cents / 100, target, [limit])
    assert int(cents.sum()) == target
    if some_rounding(exact_cents, target, [limit]) is not None:
        assert floor_or_ceiling(cents, exact_cents)
        assert kept(cents, limit)
    else:
        # No rounding to a neighbouring cent keeps the limit: the cents may
        # move further, never more than five, and the limit holds whenever
        # the total leaves room for it.
        assert np.all(np.abs(cents - exact_cents) <= 5 + 1e-9)
        if limit.low <= target:
            assert kept(cents, limit)


def test_min_rule_repaired_when_outside_cells_win_the_largest_remainders():
    # Inside a minimum of 10,001 cents: 5,000.4 + 5,000.6. Outside, four cells
    # with remainder 0.75: the largest-remainder method gives all four missing
    # cents to the outside and leaves the inside a cent short.
    exact_cents = np.array([5000.4, 5000.6, 100.75, 200.75, 300.75, 400.75])
    inside = np.array([True, True, False, False, False, False])
    target = round(float(exact_cents.sum()))
    assert target == 10001 + 1003
    plain = round_to_cents(exact_cents / 100, target)
    assert held(plain, CentLimit(inside, 10001, None)) == 10000

    limit = CentLimit(inside=inside, low=10001, high=None)
    cents = round_to_cents(exact_cents / 100, target, [limit])
    assert held(cents, limit) == 10001
    assert int(cents.sum()) == target
    assert floor_or_ceiling(cents, exact_cents)
    # The cent comes from an outside cell, and goes to the inside cell with
    # the larger remainder.
    np.testing.assert_array_equal(cents[:2], [5000, 5001])


def test_two_point_four_remainders_inside_a_min_rule():
    # Three cells inside a minimum of 3,000 cents with remainders 0.4, 0.4 and
    # 0.2; outside, two cells of remainder 0.5 take both missing cents.
    exact_cents = np.array([1000.4, 1000.4, 999.2, 10.5, 20.5])
    inside = np.array([True, True, True, False, False])
    limit = CentLimit(inside=inside, low=3000, high=None)
    target = round(float(exact_cents.sum()))
    plain = round_to_cents(exact_cents / 100, target)
    assert held(plain, limit) == 2999
    cents = round_to_cents(exact_cents / 100, target, [limit])
    assert held(cents, limit) == 3000
    assert int(cents.sum()) == target
    assert floor_or_ceiling(cents, exact_cents)


def test_max_rule_repaired_when_inside_cells_win_the_largest_remainders():
    # Inside a maximum of 4,003 cents: remainders 0.8, 0.8, 0.8, 0.6 sum to 3;
    # outside 0.5 and 0.5. Four missing cents all go inside, one too many.
    exact_cents = np.array([1000.8, 1000.8, 1000.8, 999.6, 50.5, 60.5])
    inside = np.array([True, True, True, True, False, False])
    limit = CentLimit(inside=inside, low=0, high=4002)
    target = round(float(exact_cents.sum()))
    plain = round_to_cents(exact_cents / 100, target)
    assert held(plain, limit) == 4003
    cents = round_to_cents(exact_cents / 100, target, [limit])
    assert held(cents, limit) == 4002
    assert int(cents.sum()) == target
    assert floor_or_ceiling(cents, exact_cents)


def test_repair_that_keeps_a_second_rule():
    # a, b inside a minimum of 2,001 cents (exact 1,000.4 + 1,000.6); b, d, e
    # inside a maximum of 1,032 (exact 1,031.92). d, e, f, g win the four
    # missing cents, so a + b is a cent short while b + d + e is at its
    # maximum. Swapping a cent from f or g to b would break the maximum.
    exact_cents = np.array([1000.4, 1000.6, 500.4, 10.66, 20.66, 30.64, 40.64])
    minimum = CentLimit(np.array([1, 1, 0, 0, 0, 0, 0], dtype=bool), 2001, None)
    maximum = CentLimit(np.array([0, 1, 0, 1, 1, 0, 0], dtype=bool), 0, 1032)
    target = round(float(exact_cents.sum()))
    plain = round_to_cents(exact_cents / 100, target)
    assert held(plain, minimum) == 2000
    assert held(plain, maximum) == 1032
    cents = round_to_cents(exact_cents / 100, target, [minimum, maximum])
    assert kept(cents, minimum)
    assert kept(cents, maximum)
    assert int(cents.sum()) == target
    assert floor_or_ceiling(cents, exact_cents)


def test_repair_that_needs_two_swaps():
    # a, b, c, d hold 10.6, 10.6, 10.4, 10.4 cents; 42 in all. Rules: d at
    # least 11 (a minimum with a fraction of a cent), a + c at least 21 and
    # b + c at least 21. The largest-remainder method gives 11, 11, 10, 10.
    # Raising d needs a cent from a or b, and either swap alone breaks a rule,
    # yet 10, 10, 11, 11 keeps all three.
    exact_cents = np.array([10.6, 10.6, 10.4, 10.4])
    limits = [
        CentLimit(np.array([0, 0, 0, 1], dtype=bool), 11, None),
        CentLimit(np.array([1, 0, 1, 0], dtype=bool), 21, None),
        CentLimit(np.array([0, 1, 1, 0], dtype=bool), 21, None),
    ]
    target = 42
    np.testing.assert_array_equal(
        some_rounding(exact_cents, target, limits), [10, 10, 11, 11]
    )
    cents = round_to_cents(exact_cents / 100, target, limits)
    assert int(cents.sum()) == target
    assert floor_or_ceiling(cents, exact_cents)
    assert [kept(cents, limit) for limit in limits] == [True, True, True]
