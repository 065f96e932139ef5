"""What a conversion is worth: the funnel and the sales cycle.

A primary conversion of segment ``s`` becomes ``opportunity_rate`` opportunities
worth ``deal_size`` each (pipeline), of which ``win_rate`` close (bookings).
A conversion in month ``m`` is dated to the middle of that month; its deal
closes after a lag ``L`` drawn from a triangular distribution on
``[c * (1 - w), c * (1 + w)]`` with mode ``c = sales_cycle_days`` and
``w = spread``. Bookings in the horizon count a deal only with the probability
that it closes before the horizon ends::

    pipeline(s)               = conversions * opportunity_rate * deal_size
    bookings(s)               = pipeline(s) * win_rate
    bookings_in_horizon(s, m) = bookings(s) * P(L <= days from mid-month m to end)
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date

import numpy as np
import numpy.typing as npt

from optimizer.scenario import Objective, PlanSettings, Scenario, Segment

FloatArray = npt.NDArray[np.float64]


def triangular_cdf(days: FloatArray, cycle: FloatArray, spread: float) -> FloatArray:
    """P(close lag <= days) for lags triangular on ``cycle * (1 -+ spread)``.

    With ``spread = 0`` the lag is exactly ``cycle``.
    """
    days, cycle = np.broadcast_arrays(np.asarray(days, float), np.asarray(cycle, float))
    low, high = cycle * (1 - spread), cycle * (1 + spread)
    result = (days >= cycle).astype(float)
    width = high - low
    spread_out = width > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = (days - low) ** 2 / (width * (cycle - low))
        falling = 1 - (high - days) ** 2 / (width * (high - cycle))
    triangular = np.select(
        [days <= low, days <= cycle, days < high], [0.0, rising, falling], 1.0
    )
    return np.where(spread_out, triangular, result)


def days_to_horizon_end(plan: PlanSettings) -> FloatArray:
    """Days from the middle of each month of the horizon to the horizon's end."""
    end = plan.end_date
    days = []
    for label in plan.month_labels:
        year, month = (int(part) for part in label.split("-"))
        length = calendar.monthrange(year, month)[1]
        days.append((end - date(year, month, 1)).days - length / 2)
    return np.array(days)


def close_probability(segments: Sequence[Segment], scenario: Scenario) -> FloatArray:
    """P(a conversion's deal closes within the horizon), segments x months."""
    cycle = np.array([segment.sales_cycle_days for segment in segments])
    days = days_to_horizon_end(scenario.plan)
    return triangular_cdf(days[None, :], cycle[:, None], scenario.sales_cycle.spread)


def value_per_conversion(segments: Sequence[Segment], scenario: Scenario) -> FloatArray:
    """Objective value of one primary conversion, segments x months."""
    months = scenario.plan.months
    objective = scenario.objective.maximize
    if objective is Objective.CONVERSIONS:
        return np.ones((len(segments), months))
    pipeline = np.array([segment.value_per_conversion for segment in segments])
    if objective is Objective.PIPELINE:
        return np.repeat(pipeline[:, None], months, axis=1)
    win = np.array([segment.win_rate for segment in segments])
    value: FloatArray = (pipeline * win)[:, None] * close_probability(
        segments, scenario
    )
    return value
