"""Small scenarios built in Python, and an independent reading of them.

The helpers build :class:`optimizer.Scenario` objects without files. The
``capacity`` and ``value`` helpers recompute, from the scenario's own numbers
and the formulas of the documentation, what the optimizer should find, so the
tests can compare against something the code under test did not produce.

``feasible_scenarios`` draws small random scenarios together with a known
feasible allocation in whole cents, and derives every rule from that
allocation, so each drawn scenario has at least one plan.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from scipy import stats

from optimizer import (
    BudgetSettings,
    Channel,
    ConstraintRule,
    CurvePoint,
    CurveSettings,
    ObjectiveSettings,
    PlanSettings,
    Response,
    SalesCycleSettings,
    Scenario,
    Seasonality,
    Segment,
    SolverSettings,
)

START = "2027-01"


def fast(max_examples: int) -> settings:
    """Deterministic hypothesis settings for solver-backed properties."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# --- rows -------------------------------------------------------------------


def segment(
    segment_id: str,
    *,
    stage: str = "evaluation",
    opportunity_rate: float = 0.2,
    deal_size: float = 10_000.0,
    win_rate: float = 0.25,
    sales_cycle_days: float = 90.0,
) -> Segment:
    return Segment(
        segment_id=segment_id,
        stage=stage,
        opportunity_rate=opportunity_rate,
        deal_size=deal_size,
        win_rate=win_rate,
        sales_cycle_days=sales_cycle_days,
    )


def channel(channel_id: str, platform: str = "other") -> Channel:
    return Channel(channel_id=channel_id, platform=platform)


def linear(
    segment_id: str,
    channel_id: str,
    *,
    cpc: float,
    conversion_rate: float,
    monthly_clicks: float,
) -> Response:
    return Response(
        segment_id=segment_id,
        channel_id=channel_id,
        curve="linear",
        cpc=cpc,
        conversion_rate=conversion_rate,
        monthly_clicks=monthly_clicks,
    )


def saturating(
    segment_id: str, channel_id: str, *, max_conversions: float, scale: float
) -> Response:
    return Response(
        segment_id=segment_id,
        channel_id=channel_id,
        curve="saturating",
        max_conversions=max_conversions,
        scale=scale,
    )


def points_curve(segment_id: str, channel_id: str) -> Response:
    return Response(segment_id=segment_id, channel_id=channel_id, curve="points")


def point(
    segment_id: str, channel_id: str, spend: float, conversions: float
) -> CurvePoint:
    return CurvePoint(
        segment_id=segment_id,
        channel_id=channel_id,
        spend=spend,
        conversions=conversions,
    )


def season(
    month: str,
    *,
    volume: float = 1.0,
    cost: float = 1.0,
    channel_id: str | None = None,
    segment_id: str | None = None,
) -> Seasonality:
    return Seasonality(
        month=month,
        volume=volume,
        cost=cost,
        channel_id=channel_id,
        segment_id=segment_id,
    )


def rule(scope: str, id_: str | None = None, **bounds: float) -> ConstraintRule:
    return ConstraintRule(scope=scope, id=id_, **bounds)


def month_labels(start: str, months: int) -> list[str]:
    """The horizon's months, computed here rather than by the code under test."""
    year, month = (int(part) for part in start.split("-"))
    labels = []
    for offset in range(months):
        y, m = divmod(month - 1 + offset, 12)
        labels.append(f"{year + y:04d}-{m + 1:02d}")
    return labels


def scenario(
    *,
    segments: Sequence[Segment],
    channels: Sequence[Channel],
    responses: Sequence[Response],
    budget: float,
    spend: str = "exact",
    maximize: str = "pipeline",
    months: int = 1,
    start: str = START,
    points: Sequence[CurvePoint] = (),
    seasonality: Sequence[Seasonality] = (),
    constraints: Sequence[ConstraintRule] = (),
    pieces: int = 8,
    saturation: float = 0.99,
    concave_hull: bool = False,
    spread: float = 0.5,
    solver: str = "highs",
) -> Scenario:
    return Scenario(
        plan=PlanSettings(start=start, months=months),
        budget=BudgetSettings(total=budget, spend=spend),
        objective=ObjectiveSettings(maximize=maximize),
        curves=CurveSettings(
            pieces=pieces, saturation=saturation, concave_hull=concave_hull
        ),
        sales_cycle=SalesCycleSettings(spread=spread),
        solver=SolverSettings(name=solver),
        constraints=tuple(constraints),
        segments=tuple(segments),
        channels=tuple(channels),
        responses=tuple(responses),
        points=tuple(points),
        seasonality=tuple(seasonality),
    )


def rebuild(base: Scenario, **changes: Any) -> Scenario:
    """A validated copy of a scenario with some fields replaced."""
    fields = {name: getattr(base, name) for name in type(base).model_fields}
    fields.update(changes)
    return Scenario(**fields)


def shuffled(base: Scenario, rng: np.random.Generator) -> Scenario:
    """The same scenario with every table's rows in another order."""

    def permute(rows: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(rows[i] for i in rng.permutation(len(rows)))

    return rebuild(
        base,
        segments=permute(base.segments),
        channels=permute(base.channels),
        responses=permute(base.responses),
        points=permute(base.points),
        seasonality=permute(base.seasonality),
    )


def scaled(base: Scenario, k: float) -> Scenario:
    """The same scenario with every amount of money multiplied by ``k``."""

    def money(value: float | None) -> float | None:
        return None if value is None else value * k

    return rebuild(
        base,
        budget=base.budget.model_copy(update={"total": base.budget.total * k}),
        constraints=tuple(
            r.model_copy(
                update={b: money(getattr(r, b)) for b in ("min", "max", "fixed")}
            )
            for r in base.constraints
        ),
        segments=tuple(
            s.model_copy(update={"deal_size": s.deal_size * k}) for s in base.segments
        ),
        responses=tuple(
            r.model_copy(update={"cpc": money(r.cpc), "scale": money(r.scale)})
            for r in base.responses
        ),
        points=tuple(p.model_copy(update={"spend": p.spend * k}) for p in base.points),
    )


# --- an independent reading of a scenario ------------------------------------


def multipliers(sc: Scenario, cell: Response, month: str) -> tuple[float, float]:
    """Volume and cost multipliers of one cell-month, from the seasonality rows."""
    volume = cost = 1.0
    for row in sc.seasonality:
        if row.month != month:
            continue
        if row.segment_id not in (None, cell.segment_id):
            continue
        if row.channel_id not in (None, cell.channel_id):
            continue
        volume *= row.volume
        cost *= row.cost
    return volume, cost


def base_capacity(sc: Scenario, cell: Response) -> float:
    """Monthly spend at which a cell's curve ends, before seasonality."""
    if cell.curve == "linear":
        assert cell.cpc is not None and cell.monthly_clicks is not None
        return cell.cpc * cell.monthly_clicks
    if cell.curve == "saturating":
        assert cell.scale is not None
        return -cell.scale * math.log(1 - sc.curves.saturation)
    spends = [
        p.spend
        for p in sc.points
        if (p.segment_id, p.channel_id) == (cell.segment_id, cell.channel_id)
    ]
    return max(spends)


def capacity(sc: Scenario) -> dict[tuple[str, str], float]:
    """Capacity of every (cell_id, month): ``k * v`` times the base capacity."""
    result = {}
    for cell in sc.responses:
        for month in month_labels(sc.plan.start, sc.plan.months):
            volume, cost = multipliers(sc, cell, month)
            result[cell.cell_id, month] = base_capacity(sc, cell) * volume * cost
    return result


def days_left(start: str, months: int) -> list[float]:
    """Days from the middle of each month to the end of the horizon."""
    labels = month_labels(start, months)
    firsts = [date(int(m[:4]), int(m[5:]), 1) for m in labels]
    last = firsts[-1]
    end = date(last.year + last.month // 12, last.month % 12 + 1, 1)
    return [
        (end - first).days - calendar.monthrange(first.year, first.month)[1] / 2
        for first in firsts
    ]


def close_share(cycle: float, spread: float, days: float) -> float:
    """P(lag <= days) for the triangular lag, from scipy."""
    if cycle == 0 or spread == 0:
        return float(days >= cycle)
    low, high = cycle * (1 - spread), cycle * (1 + spread)
    return float(
        stats.triang.cdf(
            days, c=(cycle - low) / (high - low), loc=low, scale=high - low
        )
    )


def value(sc: Scenario, segment_id: str, month: str) -> float:
    """Objective value of one conversion of a segment in a month."""
    seg = next(s for s in sc.segments if s.segment_id == segment_id)
    maximize = sc.objective.maximize
    if maximize == "conversions":
        return 1.0
    pipeline = seg.opportunity_rate * seg.deal_size
    if maximize == "pipeline":
        return pipeline
    labels = month_labels(sc.plan.start, sc.plan.months)
    days = days_left(sc.plan.start, sc.plan.months)[labels.index(month)]
    return (
        pipeline
        * seg.win_rate
        * close_share(seg.sales_cycle_days, sc.sales_cycle.spread, days)
    )


def scope_cells(sc: Scenario, scope: str, id_: str | None) -> set[tuple[str, str]]:
    """The (cell_id, month) pairs a rule's scope covers."""
    stages = {s.segment_id: str(s.stage) for s in sc.segments}
    keys = {
        "channel": lambda c, m: c.channel_id,
        "segment": lambda c, m: c.segment_id,
        "stage": lambda c, m: stages[c.segment_id],
        "cell": lambda c, m: c.cell_id,
        "month": lambda c, m: m,
        "total": lambda c, m: None,
    }
    key = keys[str(scope)]
    return {
        (c.cell_id, m)
        for c in sc.responses
        for m in month_labels(sc.plan.start, sc.plan.months)
        if key(c, m) == id_
    }


def bounds_in_money(r: ConstraintRule, total: float) -> tuple[float, float]:
    """A rule's least and most, in money, with shares taken of ``total``."""
    low, high = 0.0, math.inf
    for amount in (r.min, r.fixed):
        if amount is not None:
            low = max(low, amount)
    for amount in (r.max, r.fixed):
        if amount is not None:
            high = min(high, amount)
    if r.min_share is not None:
        low = max(low, r.min_share * total)
    if r.max_share is not None:
        high = min(high, r.max_share * total)
    return low, high


def spend_by_cell_month(plan: Any) -> dict[tuple[str, str], int]:
    """A plan's spend in cents per (cell_id, month)."""
    table = plan.allocation
    return {
        (cell, month): int(cents)
        for cell, month, cents in zip(
            table["cell"], table["month"], plan.spend_cents, strict=True
        )
    }


# --- random feasible scenarios ------------------------------------------------


@dataclass(frozen=True)
class Drawn:
    """A scenario and an allocation, in cents, that keeps all of its rules."""

    scenario: Scenario
    cents: dict[tuple[str, str], int] = field(default_factory=dict)


# Distinct, irrational-looking factors keep drawn cells from tying exactly.
def _jitter(index: int) -> float:
    return 1.0 + 0.0137 * math.sqrt(index + 2)


money_floats = st.floats(min_value=0.0, max_value=1.0)


@st.composite
def _curve(draw: st.DrawFn, seg: str, ch: str, index: int) -> tuple[Response, list]:
    kind = draw(st.sampled_from(["linear", "saturating", "points"]))
    j = _jitter(index)
    if kind == "linear":
        response = linear(
            seg,
            ch,
            cpc=draw(st.floats(0.5, 20.0)) * j,
            conversion_rate=draw(st.floats(0.005, 0.2)) / j,
            monthly_clicks=draw(st.floats(50.0, 3000.0)),
        )
        return response, []
    if kind == "saturating":
        response = saturating(
            seg,
            ch,
            max_conversions=draw(st.floats(1.0, 200.0)) / j,
            scale=draw(st.floats(200.0, 20_000.0)) * j,
        )
        return response, []
    count = draw(st.integers(1, 3))
    spend, conversions, slope = 0.0, 0.0, draw(st.floats(0.001, 0.05)) / j
    rows = []
    for _ in range(count):
        spend += draw(st.floats(100.0, 5000.0)) * j
        conversions += slope * (spend - (rows[-1].spend if rows else 0.0))
        rows.append(point(seg, ch, spend, conversions))
        slope *= draw(st.floats(0.2, 0.95))
    return points_curve(seg, ch), rows


def _scopes(sc: Scenario) -> list[tuple[str, str]]:
    """Every (scope, id) a rule of the scenario could name."""
    months = month_labels(sc.plan.start, sc.plan.months)
    ids = {
        "channel": sorted({r.channel_id for r in sc.responses}),
        "segment": sorted({s.segment_id for s in sc.segments}),
        "stage": sorted({str(s.stage) for s in sc.segments}),
        "cell": sorted(r.cell_id for r in sc.responses),
        "month": months,
    }
    return [(scope, id_) for scope, names in ids.items() for id_ in names]


@st.composite
def _rule(
    draw: st.DrawFn,
    sc: Scenario,
    *,
    scope: str,
    id_: str,
    cents: dict[tuple[str, str], int],
    total: int,
) -> ConstraintRule:
    held = sum(cents[key] for key in scope_cells(sc, scope, id_))
    kind = draw(
        st.sampled_from(["min", "max", "fixed", "min_share", "max_share", "range"])
    )
    below = draw(st.floats(0.0, 0.999))
    above = draw(st.floats(0.001, 1.0))
    low = math.floor(held * below) / 100
    high = math.ceil(held * (1 + above)) / 100
    # Shares as a planner writes them: four decimals, rounded the safe way.
    min_share = math.floor(held / total * below * 1e4) / 1e4
    max_share = min(1.0, math.ceil(held / total * (1 + above) * 1e4) / 1e4)
    if kind == "min":
        return rule(scope, id_, min=low)
    if kind == "max":
        return rule(scope, id_, max=high)
    if kind == "fixed":
        return rule(scope, id_, fixed=held / 100)
    if kind == "min_share":
        return rule(scope, id_, min_share=min_share)
    if kind == "max_share":
        return rule(scope, id_, max_share=max_share)
    return rule(scope, id_, min=low, max=high)


@st.composite
def feasible_scenarios(
    draw: st.DrawFn,
    *,
    max_rules: int = 3,
    spend: str | None = None,
    maximize: str | None = None,
    seasonality: bool = True,
    max_months: int = 3,
) -> Drawn:
    """A small random scenario with a known feasible allocation."""
    num_segments = draw(st.integers(1, 2))
    num_channels = draw(st.integers(1, 2))
    months = draw(st.integers(1, max_months))
    labels = month_labels(START, months)
    stages = ["research", "evaluation", "decision"]
    segments = [
        segment(
            f"seg{i}",
            stage=draw(st.sampled_from(stages)),
            opportunity_rate=draw(st.floats(0.05, 0.5)),
            deal_size=draw(st.floats(1000.0, 100_000.0)) * _jitter(i + 7),
            win_rate=draw(st.floats(0.1, 0.5)),
            sales_cycle_days=draw(st.sampled_from([0.0, 20.0, 45.0, 75.0])),
        )
        for i in range(num_segments)
    ]
    channels = [channel(f"ch{j}") for j in range(num_channels)]
    pairs = [(s.segment_id, c.channel_id) for s in segments for c in channels]
    chosen = draw(
        st.lists(st.sampled_from(pairs), min_size=1, max_size=len(pairs), unique=True)
    )
    responses, points = [], []
    for index, (seg, ch) in enumerate(sorted(chosen)):
        response, rows = draw(_curve(seg, ch, index))
        responses.append(response)
        points += rows

    rows = []
    if seasonality:
        for m, month in enumerate(labels):
            for ch, seg in [
                (None, None),
                ("ch0", None),
                (None, "seg0"),
                ("ch0", "seg0"),
            ]:
                if draw(st.booleans()):
                    rows.append(
                        season(
                            month,
                            volume=draw(
                                st.one_of(st.just(0.0), st.floats(0.5, 2.0))
                                if ch is not None
                                else st.floats(0.5, 2.0)
                            ),
                            cost=draw(st.floats(0.5, 2.0)) * _jitter(m + 11),
                            channel_id=ch,
                            segment_id=seg,
                        )
                    )

    objective = maximize or draw(
        st.sampled_from(["pipeline", "conversions", "bookings_in_horizon"])
    )
    rule_spend = spend or draw(st.sampled_from(["exact", "up_to"]))
    probe = scenario(
        segments=segments,
        channels=channels,
        responses=responses,
        points=points,
        seasonality=rows,
        budget=1.0,
        months=months,
        maximize=objective,
        spend=rule_spend,
    )

    cents = {}
    for key, cap in sorted(capacity(probe).items()):
        cents[key] = math.floor(draw(money_floats) * cap * 100)
    total = sum(cents.values())
    assume(total > 0)

    budget = total / 100
    if rule_spend == "up_to":
        budget = math.ceil(total * (1 + draw(st.floats(0.0, 1.0)))) / 100
    scopes = _scopes(probe)
    named = draw(
        st.lists(
            st.sampled_from(scopes),
            max_size=min(max_rules, len(scopes)),
            unique=True,
        )
    )
    constraints = [
        draw(_rule(probe, scope=scope, id_=id_, cents=cents, total=total))
        for scope, id_ in named
    ]
    return Drawn(
        rebuild(
            probe,
            budget=BudgetSettings(total=budget, spend=rule_spend),
            constraints=tuple(constraints),
        ),
        cents,
    )


def pieces_value(sc: Scenario, curves: Any) -> np.ndarray:
    """Objective value per unit of spend of every curve piece."""
    months = list(curves.months)
    per_group = [
        value(sc, cell.segment_id, month) for cell in curves.cells for month in months
    ]
    return np.array(per_group)[curves.group] * curves.slope


def cell_months(sc: Scenario) -> Iterable[tuple[str, str]]:
    for cell in sorted(sc.responses, key=lambda r: (r.segment_id, r.channel_id)):
        for month in month_labels(sc.plan.start, sc.plan.months):
            yield cell.cell_id, month
