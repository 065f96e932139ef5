"""Realistic benchmark scenarios, built in Python and deterministic from a seed.

A scenario has one column per cell x month x curve piece. Cells mix the three
curve kinds the way a B2B media plan does: search channels are ``linear`` (one
piece a month), LinkedIn, display and video are ``saturating`` (``pieces`` a
month, 8 by default) and retargeting and ABM are bid-simulator ``points``
(five breakpoints, five pieces a month). Segments cycle through the three
stages and carry market and account-tier tags; every segment buys search,
the other channels with a probability each (ABM only for named-account tiers).

The rules are the ones planners write: a LinkedIn commitment (min and max), a
cap on Google search, a display share cap, a December cap and a research-stage
minimum share. The budget is 40% of what the cells can absorb over the year, so
the curves saturate in the good cells and some rules bind. A few seasonality
rows move volume (summer, December) and cost (LinkedIn in Q4, display around
Black Friday).

::

    from benchmarks.scenarios import scenario_with_columns
    scenario = scenario_with_columns(100_000, seed=0)          # about 100k columns
    floor = budget_only(scenario)                              # the same, no rules

Column counts are exact for a given scenario (:func:`columns_of`); a scenario
with ``N`` requested columns has the fewest segments giving at least ``N``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from optimizer import (
    BudgetSettings,
    Channel,
    ConstraintRule,
    CurvePoint,
    CurveSettings,
    ObjectiveSettings,
    PlanSettings,
    Response,
    Scenario,
    Seasonality,
    Segment,
)
from optimizer.scenario import MicroSegmentSettings

#: Named sizes, in columns.
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}

START = "2027-01"
POINTS_PER_CURVE = 5
SATURATION = 0.99
BUDGET_SHARE_OF_CAPACITY = 0.4

STAGES = ("research", "evaluation", "decision")
MARKETS = ("north_america", "emea", "apac")
TIERS = ("tier_1", "tier_2", "tier_3", "long_tail")

#: Conversion -> opportunity by stage, deal size by tier (as in the demo).
OPPORTUNITY_RATE = {"research": 0.06, "evaluation": 0.14, "decision": 0.28}
DEAL_SIZE = {"tier_1": 180_000, "tier_2": 80_000, "tier_3": 35_000, "long_tail": 12_000}
SALES_CYCLE = {"tier_1": 190, "tier_2": 145, "tier_3": 100, "long_tail": 65}


@dataclass(frozen=True)
class ChannelSpec:
    channel_id: str
    platform: str
    curve: str
    probability: float
    """Chance that a segment buys this channel (the first segment buys all)."""


CHANNELS = (
    ChannelSpec("google_search", "google_ads", "linear", 1.0),
    ChannelSpec("bing_search", "microsoft_ads", "linear", 0.8),
    ChannelSpec("linkedin", "linkedin", "saturating", 0.7),
    ChannelSpec("programmatic_display", "other", "saturating", 0.5),
    ChannelSpec("video", "other", "saturating", 0.35),
    ChannelSpec("retargeting", "other", "points", 0.5),
    ChannelSpec("abm_platform", "other", "points", 0.6),
)

#: (month number, channel or None, volume, cost)
SEASONALITY = (
    (1, None, 0.95, 1.0),
    (7, None, 0.88, 1.0),
    (8, None, 0.85, 1.0),
    (9, None, 1.08, 1.0),
    (11, None, 1.10, 1.0),
    (12, None, 0.68, 1.0),
    (10, "linkedin", 1.0, 1.10),
    (11, "linkedin", 1.0, 1.15),
    (12, "linkedin", 1.0, 1.20),
    (11, "programmatic_display", 1.0, 1.25),
    (12, "programmatic_display", 1.0, 1.30),
)


def month_label(index: int, start: str = START) -> str:
    """``YYYY-MM`` of month ``index`` (0-based) of the horizon."""
    year, month = (int(part) for part in start.split("-"))
    y, m = divmod(month - 1 + index, 12)
    return f"{year + y:04d}-{m + 1:02d}"


def pieces_per_month(curve: str, pieces: int) -> int:
    """Columns one cell of this curve kind has in each month."""
    return {"linear": 1, "saturating": pieces, "points": POINTS_PER_CURVE}[curve]


def scenario_with_columns(
    columns: int, *, seed: int = 0, months: int = 12, pieces: int = 8
) -> Scenario:
    """A scenario with the fewest segments giving at least ``columns`` columns."""
    return _build(seed=seed, months=months, pieces=pieces, columns=columns)


def scenario_with_cells(
    cells: int, *, seed: int = 0, months: int = 12, pieces: int = 8
) -> Scenario:
    """A scenario with exactly ``cells`` segment x channel cells."""
    return _build(seed=seed, months=months, pieces=pieces, cells=cells)


def sized(name: str, *, seed: int = 0) -> Scenario:
    """The scenario of a named size (``1k``, ``10k``, ``100k``, ``1m``)."""
    return scenario_with_columns(SIZES[name], seed=seed)


def budget_only(scenario: Scenario) -> Scenario:
    """The same scenario without rules: the budget row alone (water-filling)."""
    return scenario.replace(constraints=())


def with_min_cell_spend(
    scenario: Scenario, min_cell_spend: float, *, time_limit: float, gap: float = 0.001
) -> Scenario:
    """The scenario with ``[micro_segments] min_cell_spend`` set."""
    settings = MicroSegmentSettings(
        min_cell_spend=min_cell_spend, time_limit=time_limit, gap=gap
    )
    return scenario.replace(micro_segments=settings)


def columns_of(scenario: Scenario) -> int:
    """The program's column count, from the scenario alone (no zero-width piece)."""
    pieces = scenario.curves.pieces
    per_cell = [pieces_per_month(r.curve.value, pieces) for r in scenario.responses]
    return sum(per_cell) * scenario.plan.months


# --- construction ------------------------------------------------------------


def _build(
    *,
    seed: int,
    months: int,
    pieces: int,
    columns: int | None = None,
    cells: int | None = None,
) -> Scenario:
    rng = np.random.default_rng(seed)
    segments: list[Segment] = []
    responses: list[Response] = []
    points: list[CurvePoint] = []
    monthly_capacity: dict[str, float] = {}  # cell -> base monthly capacity
    count_columns = 0

    for index, segment in enumerate(_segments(rng)):
        chosen = _channels_of(rng, index, segment)
        if cells is not None:
            chosen = chosen[: cells - len(responses)]
        segments.append(segment)
        for spec in chosen:
            response, cell_points, capacity = _response(rng, segment, spec, pieces)
            responses.append(response)
            points += cell_points
            monthly_capacity[response.cell_id] = capacity
            count_columns += pieces_per_month(spec.curve, pieces) * months
        done_columns = columns is not None and count_columns >= columns
        done_cells = cells is not None and len(responses) >= cells
        if done_columns or done_cells:
            break

    labels = [month_label(m) for m in range(months)]
    seasonality = tuple(
        Seasonality(month=labels[m - 1], channel_id=channel, volume=v, cost=c)
        for m, channel, v, c in SEASONALITY
        if m <= months
    )
    capacity, by_channel, by_month = _capacity(
        responses, monthly_capacity, seasonality, labels
    )
    stage_of = {s.segment_id: s.stage.value for s in segments}
    research = sum(
        monthly_capacity[r.cell_id]
        for r in responses
        if stage_of[r.segment_id] == "research"
    ) * len(labels)
    budget = float(round(BUDGET_SHARE_OF_CAPACITY * capacity, -3) or 1000.0)
    constraints = _rules(budget, by_channel, by_month, labels, research)

    return Scenario(
        plan=PlanSettings(
            name=f"benchmark {count_columns} columns, seed {seed}",
            start=START,
            months=months,
        ),
        budget=BudgetSettings(total=budget, spend="exact"),
        objective=ObjectiveSettings(maximize="pipeline"),
        curves=CurveSettings(pieces=pieces, saturation=SATURATION),
        constraints=constraints,
        segments=tuple(segments),
        channels=tuple(
            Channel(channel_id=s.channel_id, platform=s.platform) for s in CHANNELS
        ),
        responses=tuple(responses),
        points=tuple(points),
        seasonality=seasonality,
    )


def _segments(rng: np.random.Generator) -> Iterator[Segment]:
    index = 0
    while True:
        stage = STAGES[index % 3]
        market = MARKETS[(index // 3) % 3]
        tier = TIERS[(index // 9) % 4]
        yield Segment(
            segment_id=f"{stage}_{market}_{tier}_{index:06d}",
            stage=stage,
            market=market,
            account_tier=tier,
            audience=f"audience_{index // 36:05d}",
            intent=stage,
            opportunity_rate=round(
                OPPORTUNITY_RATE[stage] * rng.lognormal(0.0, 0.15), 4
            ),
            deal_size=round(DEAL_SIZE[tier] * rng.lognormal(0.0, 0.2), -2),
            win_rate=round(float(rng.uniform(0.15, 0.35)), 3),
            sales_cycle_days=round(SALES_CYCLE[tier] * rng.uniform(0.8, 1.3)),
        )
        index += 1


def _channels_of(
    rng: np.random.Generator, index: int, segment: Segment
) -> list[ChannelSpec]:
    draws = rng.random(len(CHANNELS))
    chosen = []
    for spec, draw in zip(CHANNELS, draws, strict=True):
        if spec.channel_id == "abm_platform" and segment.account_tier == "long_tail":
            continue
        if index == 0 or draw < spec.probability:
            chosen.append(spec)
    return chosen


def _response(
    rng: np.random.Generator, segment: Segment, spec: ChannelSpec, pieces: int
) -> tuple[Response, list[CurvePoint], float]:
    """A cell's response, its points and its monthly capacity (spend)."""
    stage_rate = {"research": 0.006, "evaluation": 0.015, "decision": 0.035}
    rate = stage_rate[segment.stage.value] * rng.lognormal(0.0, 0.3)
    ids = {"segment_id": segment.segment_id, "channel_id": spec.channel_id}
    if spec.curve == "linear":
        cpc = round(float(rng.uniform(6.0, 28.0)), 2)
        if spec.channel_id == "bing_search":
            cpc = round(cpc * 0.72, 2)
        clicks = round(float(rng.lognormal(math.log(300), 0.6)))
        clicks = max(clicks, 10)
        response = Response(
            **ids,
            curve="linear",
            cpc=cpc,
            conversion_rate=round(min(rate * 2.0, 0.2), 5),
            monthly_clicks=clicks,
        )
        return response, [], cpc * clicks

    # Saturating and points curves: f(s) = m (1 - exp(-s / scale)).
    cost_per_conversion = {
        "linkedin": 1500.0,
        "programmatic_display": 1400.0,
        "video": 1600.0,
        "retargeting": 500.0,
        "abm_platform": 1200.0,
    }[spec.channel_id]
    scale = round(float(rng.lognormal(math.log(6000), 0.5)), 1)
    # The first dollar converts at max / scale per dollar.
    slope0 = 1.0 / cost_per_conversion * rng.lognormal(0.0, 0.3)
    slope0 *= stage_rate[segment.stage.value] / 0.015
    maximum = round(slope0 * scale, 4) or 0.0001
    if spec.curve == "saturating":
        response = Response(
            **ids, curve="saturating", max_conversions=maximum, scale=scale
        )
        return response, [], -scale * math.log1p(-SATURATION)

    top = scale * 3.0
    spends = top * (np.arange(1, POINTS_PER_CURVE + 1) / POINTS_PER_CURVE) ** 1.2
    spends = np.round(spends, 0)
    conversions = maximum * -np.expm1(-spends / scale)
    cell_points = [
        CurvePoint(**ids, spend=float(s), conversions=float(v))
        for s, v in zip(spends, conversions, strict=True)
    ]
    return Response(**ids, curve="points"), cell_points, float(spends[-1])


def _capacity(
    responses: list[Response],
    monthly: dict[str, float],
    seasonality: tuple[Seasonality, ...],
    labels: list[str],
) -> tuple[float, dict[str, float], list[float]]:
    """Total reachable spend over the horizon, by channel and by month."""
    by_channel: dict[str, float] = {}
    by_month = [0.0] * len(labels)
    for response in responses:
        for m, label in enumerate(labels):
            factor = 1.0
            for row in seasonality:
                if row.month == label and row.channel_id in (None, response.channel_id):
                    factor *= row.volume * row.cost
            amount = monthly[response.cell_id] * factor
            by_channel[response.channel_id] = (
                by_channel.get(response.channel_id, 0.0) + amount
            )
            by_month[m] += amount
    return sum(by_month), by_channel, by_month


def _rules(
    budget: float,
    by_channel: dict[str, float],
    by_month: list[float],
    labels: list[str],
    research_capacity: float,
) -> tuple[ConstraintRule, ...]:
    rules = []
    if "linkedin" in by_channel:
        low = round(min(0.15 * budget, 0.5 * by_channel["linkedin"]), -2)
        rules.append(
            ConstraintRule(
                scope="channel",
                id="linkedin",
                min=low,
                max=round(max(0.25 * budget, low), -2),
                note="annual LinkedIn commitment, capped",
            )
        )
    if "google_search" in by_channel:
        rules.append(
            ConstraintRule(
                scope="channel",
                id="google_search",
                max=round(0.15 * budget, -2),
                note="search capped so it cannot take everything",
            )
        )
    if "programmatic_display" in by_channel:
        rules.append(
            ConstraintRule(
                scope="channel",
                id="programmatic_display",
                max_share=0.06,
                note="display is a test budget",
            )
        )
    last = labels[-1]
    # December (or the last month) at most 4% of the budget, never below what
    # the horizon needs: the other months must absorb the rest with room.
    others = sum(by_month[:-1])
    cap = max(0.04 * budget, budget - 0.8 * others, 1000.0)
    rules.append(
        ConstraintRule(
            scope="month",
            id=last,
            max=round(cap, -2),
            note="finance caps the last month",
        )
    )
    # Research-stage demand: 20% of spend, or what half its reach allows.
    share = min(0.2, math.floor(50 * research_capacity / budget) / 100)
    if share > 0:
        rules.append(
            ConstraintRule(
                scope="stage",
                id="research",
                min_share=share,
                note="brand wants early-stage demand kept warm",
            )
        )
    return tuple(rules)
