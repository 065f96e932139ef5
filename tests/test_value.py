"""Value per conversion: the triangular close lag, the horizon, the funnel."""

from __future__ import annotations

import numpy as np
import pytest
from builders import channel, linear, scenario, segment
from scipy import stats

from optimizer import PlanSettings
from optimizer.value import (
    close_probability,
    days_to_horizon_end,
    triangular_cdf,
    value_per_conversion,
)


@pytest.mark.parametrize("cycle", [10.0, 90.0, 365.0])
@pytest.mark.parametrize("spread", [0.05, 0.3, 0.5, 1.0])
def test_triangular_cdf_matches_scipy(cycle, spread):
    low, high = cycle * (1 - spread), cycle * (1 + spread)
    days = np.linspace(-10.0, 2.2 * cycle, 2001)
    expected = stats.triang.cdf(
        days, c=(cycle - low) / (high - low), loc=low, scale=high - low
    )
    got = triangular_cdf(days, np.full_like(days, cycle), spread)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert triangular_cdf(np.array(cycle), np.array(cycle), spread) == pytest.approx(
        0.5
    )


def test_triangular_cdf_broadcasts_days_against_cycles():
    days = np.array([[30.0, 60.0]])
    cycles = np.array([[20.0], [60.0]])
    got = triangular_cdf(days, cycles, 0.5)
    expected = [
        [stats.triang.cdf(d, c=0.5, loc=c / 2, scale=c) for d in (30.0, 60.0)]
        for c in (20.0, 60.0)
    ]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_spread_zero_is_a_step_at_the_cycle():
    days = np.array([0.0, 29.0, 29.999, 30.0, 30.001, 100.0])
    got = triangular_cdf(days, np.full_like(days, 30.0), 0.0)
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 1, 1])


def test_a_zero_cycle_always_closes():
    days = np.array([0.0, 1.0, 50.0])
    for spread in (0.0, 0.5, 1.0):
        got = triangular_cdf(days, np.zeros(3), spread)
        np.testing.assert_array_equal(got, [1, 1, 1])


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Jan 2027: 59 days to 1 March, less half of 31; Feb: 28 - 14.
        ("2027-01", [59 - 15.5, 28 - 14.0]),
        # A leap February: 60 - 15.5 and 29 - 14.5.
        ("2028-01", [60 - 15.5, 29 - 14.5]),
        # Across the year end: 62 days to 1 February 2027, then 31 - 15.5.
        ("2026-12", [62 - 15.5, 31 - 15.5]),
        # April has 30 days: 61 - 15, then May 31 - 15.5.
        ("2027-04", [61 - 15.0, 31 - 15.5]),
    ],
)
def test_days_to_horizon_end_for_a_two_month_horizon(start, expected):
    got = days_to_horizon_end(PlanSettings(start=start, months=2))
    np.testing.assert_allclose(got, expected, rtol=0, atol=0)


def two_month(maximize: str, spread: float = 0.5):
    return scenario(
        segments=[
            segment(
                "fast",
                opportunity_rate=0.2,
                deal_size=50_000,
                win_rate=0.25,
                sales_cycle_days=30,
            ),
            segment(
                "slow",
                opportunity_rate=0.1,
                deal_size=80_000,
                win_rate=0.5,
                sales_cycle_days=120,
            ),
        ],
        channels=[channel("c")],
        responses=[
            linear("fast", "c", cpc=1, conversion_rate=0.1, monthly_clicks=10),
            linear("slow", "c", cpc=1, conversion_rate=0.1, monthly_clicks=10),
        ],
        budget=10.0,
        months=2,
        maximize=maximize,
        spread=spread,
    )


def test_close_probability_by_hand():
    sc = two_month("bookings_in_horizon")
    got = close_probability(sc.segments, sc)
    # fast: lag triangular on [15, 45], mode 30; 43.5 days left in January,
    # 14 in February. slow: lag on [60, 180], never within 43.5 days.
    jan = 1 - (45 - 43.5) ** 2 / (30 * 15)
    np.testing.assert_allclose(got, [[jan, 0.0], [0.0, 0.0]], atol=1e-15)


def test_value_per_conversion_for_each_objective():
    pipeline = [[0.2 * 50_000] * 2, [0.1 * 80_000] * 2]
    np.testing.assert_allclose(
        value_per_conversion(two_month("pipeline").segments, two_month("pipeline")),
        pipeline,
    )
    conversions = two_month("conversions")
    np.testing.assert_array_equal(
        value_per_conversion(conversions.segments, conversions), np.ones((2, 2))
    )
    bookings = two_month("bookings_in_horizon", spread=0.0)
    # With no spread, fast deals (30 days) close from January (43.5 days left)
    # but not from February (14); slow ones (120 days) never.
    np.testing.assert_allclose(
        value_per_conversion(bookings.segments, bookings),
        [[0.2 * 50_000 * 0.25, 0.0], [0.0, 0.0]],
    )
