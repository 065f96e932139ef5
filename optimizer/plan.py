"""The plan: a verified optimum turned into money, metrics and reasons.

Spend is rounded to cents by the largest-remainder method, so that the cents
of the cells add up exactly to the spend total (the budget, when it must be
spent exactly); every total by month, channel, segment and stage is a sum of
those cents and reconciles by construction. All metrics are computed from the
rounded spend on the same piecewise curves the program used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from optimizer.checks import rule_range
from optimizer.curves import Approximation
from optimizer.errors import VerificationError
from optimizer.model import LinearProgram

if TYPE_CHECKING:
    from optimizer.micro import IntegerReport
from optimizer.rounding import CentLimit, breaks, round_to_cents
from optimizer.scenario import (
    TAG_FIELDS,
    ConstraintRule,
    Objective,
    Scenario,
    Scope,
    SpendRule,
)
from optimizer.solve import SolverInfo, SolverRun
from optimizer.value import close_probability, value_per_conversion
from optimizer.verify import Verification

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Row duals smaller than this (objective per unit of money) count as zero.
DUAL_TOLERANCE = 1e-9

METRICS = (
    "spend",
    "clicks",
    "conversions",
    "opportunities",
    "pipeline",
    "bookings_in_horizon",
)
#: The allocation column each scope names; tag scopes name their own tag.
SCOPE_COLUMNS = {
    Scope.CHANNEL: "channel_id",
    Scope.SEGMENT: "segment_id",
    Scope.STAGE: "stage",
    Scope.CELL: "cell",
    Scope.MONTH: "month",
}

GROUPINGS = {
    "stage": "stage",
    "channel": "channel_id",
    "segment": "segment_id",
    "month": "month",
    "cell": "cell",
    "conversion_path": "conversion_path",
    **{tag: tag for tag in TAG_FIELDS},
}


@dataclass(frozen=True)
class ConstraintReport:
    """One row of the program after the solve, in business terms."""

    name: str
    label: str
    bound: str
    amount: float
    activity: float
    shadow_price: float
    unit: str = "money"

    @property
    def binding(self) -> bool:
        """Whether relaxing this row would change the objective."""
        return abs(self.shadow_price) > DUAL_TOLERANCE

    def explain(self, objective: Objective) -> str:
        """The shadow price in words."""
        worth = f"{abs(self.shadow_price):,.4g} of {objective.value.replace('_', ' ')}"
        step = "one click" if self.unit == "clicks" else "one dollar"
        if self.name == "budget":
            return f"one more dollar of budget is worth {worth}"
        if self.shadow_price > 0:
            return f"raising this limit by {step} is worth {worth}"
        return f"lowering this requirement by {step} is worth {worth}"


@dataclass(frozen=True)
class SegmentReport:
    """How the plan treated segments: holdouts, suppressions, overlap."""

    overlap: str
    holdouts: tuple[dict[str, object], ...] = ()
    suppressions: tuple[dict[str, object], ...] = ()
    overlap_groups: tuple[dict[str, object], ...] = ()


def segment_report(scenario: Scenario, program: LinearProgram) -> SegmentReport:
    """Holdout volume left unbought, cells suppressed, and overlap in use."""
    curves = program.curves
    capacity = curves.capacity.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        withheld = np.where(
            curves.held_out < 1, capacity * curves.held_out / (1 - curves.held_out), 0.0
        )
    holdouts: list[dict[str, object]] = []
    for holdout in scenario.holdouts:
        segments = sorted(
            {s.segment_id for s in curves.segments if s.matches(holdout.where)}
        )
        cells = [i for i, s in enumerate(curves.segments) if s.segment_id in segments]
        holdouts.append(
            {
                "where": dict(holdout.where),
                "share": holdout.share,
                "segments": segments,
                "reachable_spend_held_out": round(float(withheld[cells].sum()), 2),
                "note": holdout.note,
            }
        )
    by_rule: dict[str, list[str]] = {}
    for cell, rule in curves.suppressed:
        by_rule.setdefault(rule, []).append(cell)
    suppressions: list[dict[str, object]] = [
        {
            "id": rule.id,
            "where": dict(rule.where),
            "channels": list(rule.channels) or "all",
            "cells": by_rule.get(rule.id, []),
            "owner": rule.owner,
            "rationale": rule.rationale,
        }
        for rule in scenario.suppressions
    ]
    groups: list[dict[str, object]] = [
        {"id": g.id, "segments": list(g.segments), "monthly_reach": g.monthly_reach}
        for g in scenario.overlap_groups
    ]
    return SegmentReport(
        scenario.segmentation.overlap.value,
        tuple(holdouts),
        tuple(suppressions),
        tuple(groups),
    )


@dataclass(frozen=True)
class Scorecard:
    """An allocation scored on a scenario's curves and values.

    ``allocation`` has one row per cell and month, ordered by segment,
    channel and month; ``spend_cents`` is its spend as whole cents. A
    scorecard need not be optimal: a planner's current allocation is scored
    the same way, so that it can be compared with an optimized plan.
    """

    scenario: Scenario
    allocation: pd.DataFrame
    spend_cents: IntArray

    @property
    def objective_value(self) -> float:
        """The scenario's objective, summed over the allocation."""
        return float(self.allocation[self._value].sum())

    @property
    def total_spend(self) -> float:
        """All spend of the allocation, from its cents."""
        return int(self.spend_cents.sum()) / 100

    def in_scope(self, rule: ConstraintRule) -> BoolArray:
        """Which allocation rows a rule's scope covers."""
        allocation = self.allocation
        if rule.scope is Scope.TOTAL:
            return np.ones(len(allocation), dtype=bool)
        if rule.scope is Scope.SEGMENTS:
            inside = np.ones(len(allocation), dtype=bool)
            for key, value in (rule.where or {}).items():
                inside &= (allocation[key] == value).to_numpy()
            return inside
        column = SCOPE_COLUMNS.get(rule.scope, str(rule.scope))
        matches: BoolArray = (allocation[column] == rule.id).to_numpy(dtype=bool)
        return matches

    def totals(self, by: str | Sequence[str]) -> pd.DataFrame:
        """Metrics summed by one grouping or several, such as a path prefix.

        ``by`` is ``stage``, ``channel``, ``segment``, ``month``, ``cell`` or a
        tag (``market``, ``account_tier``, ... ``lifecycle``), or a list of
        them: ``["market", "account_tier"]`` rolls up the hierarchy's first two
        levels. Spend is summed in cents, so totals reconcile exactly.
        """
        names = [by] if isinstance(by, str) else list(by)
        unknown = [name for name in names if name not in GROUPINGS]
        if unknown or not names:
            raise ValueError(
                f"by={by!r}; expected one or more of {', '.join(GROUPINGS)}"
            )
        keys = [GROUPINGS[name] for name in names]
        key = keys[0] if isinstance(by, str) else keys
        return summarize(self.allocation, self.spend_cents, key, self._value)

    def overall(self) -> dict[str, float]:
        """The plan's totals in one record."""
        table = summarize(
            self.allocation.assign(all="all"), self.spend_cents, "all", self._value
        )
        return {key: float(value) for key, value in table.iloc[0].items()}

    @property
    def _value(self) -> str:
        return self.scenario.objective.maximize.value


@dataclass(frozen=True)
class Plan(Scorecard):
    """A verified optimum, rounded to cents, and everything reported about it."""

    solver_objective: float
    budget_shadow_price: float
    constraints: tuple[ConstraintReport, ...]
    verification: Verification
    solver: SolverInfo
    approximation: Approximation
    segments: SegmentReport
    integer: IntegerReport | None = None
    """How minimum viable spend was met, when the scenario sets one."""

    @property
    def binding_constraints(self) -> tuple[ConstraintReport, ...]:
        """Rows whose shadow price is not zero."""
        return tuple(c for c in self.constraints if c.binding)


def build_plan(
    scenario: Scenario,
    program: LinearProgram,
    run: SolverRun,
    verification: Verification,
    *,
    integer: IntegerReport | None = None,
) -> Plan:
    """Turn a verified solve into a plan."""
    assert run.x is not None and run.row_dual is not None and run.objective is not None
    exact_spend = program.spend(run.x)
    cents = round_plan_spend(scenario, program, exact_spend)
    allocation = allocation_table(scenario, program, cents, exact_spend)
    _check_rounded(scenario, program, cents)

    return Plan(
        scenario=scenario,
        allocation=allocation,
        spend_cents=cents.reshape(-1),
        solver_objective=run.objective * program.value_unit,
        budget_shadow_price=program.dollar_value(float(run.row_dual[0])),
        constraints=constraint_reports(program, run),
        verification=verification,
        solver=run.solver,
        approximation=program.curves.approximation,
        segments=segment_report(scenario, program),
        integer=integer,
    )


def score_allocation(
    scenario: Scenario, program: LinearProgram, spend: FloatArray
) -> Scorecard:
    """Score a given spend (cells x months, in money) without optimizing.

    Spend is rounded to cents (largest remainder, keeping its total) and
    every metric comes from the same curves and values a plan uses.
    """
    spend = np.asarray(spend, dtype=float)
    cents = round_to_cents(spend, round(float(np.maximum(spend, 0).sum()) * 100))
    allocation = allocation_table(scenario, program, cents, cents / 100)
    return Scorecard(scenario, allocation, cents.reshape(-1))


def _cent_limits(
    scenario: Scenario, program: LinearProgram, target: int
) -> list[CentLimit]:
    """Each rule's bounds in cents over the cell-months of its scope."""
    curves = program.curves
    total = target / 100
    limits = []
    for rule in scenario.constraints:
        inside = curves.cell_months_in(rule.scope, rule.scope_id)
        low, high = rule_range(rule, min_share_base=total, max_share_base=total)
        limits.append(
            CentLimit(
                inside=inside,
                low=math.ceil(round(low * 100, 6)),
                high=None if math.isinf(high) else math.floor(round(high * 100, 6)),
            )
        )
    return limits


def round_plan_spend(
    scenario: Scenario, program: LinearProgram, spend: FloatArray
) -> IntArray:
    """Cents for the plan: the budget's when exact, else the nearest total that
    lets every rule hold (a share of the spend moves with its total)."""
    budget = round(scenario.budget.total * 100)
    if scenario.budget.spend is SpendRule.EXACT:
        targets = [budget]
    else:
        nearest = round(float(np.maximum(spend, 0.0).sum()) * 100)
        steps = [0, -1, 1, -2, 2, -3, 3]
        targets = [t for t in (nearest + k for k in steps) if 0 <= t <= budget]
    for target in targets:
        limits = _cent_limits(scenario, program, target)
        cents = round_to_cents(spend, target, limits, room=program.curves.capacity)
        if not breaks(cents.reshape(-1), limits):
            return cents
    return round_to_cents(
        spend, targets[0], _cent_limits(scenario, program, targets[0])
    )


def allocation_table(
    scenario: Scenario,
    program: LinearProgram,
    cents: IntArray,
    exact_spend: FloatArray,
) -> pd.DataFrame:
    """One row per cell and month with spend and every metric of the plan."""
    curves = program.curves
    cell_segments = curves.segments
    spend = cents / 100

    conversions = curves.conversions(spend)
    opportunity_rate = np.array([s.opportunity_rate for s in cell_segments])[:, None]
    deal_size = np.array([s.deal_size for s in cell_segments])[:, None]
    win_rate = np.array([s.win_rate for s in cell_segments])[:, None]
    opportunities = conversions * opportunity_rate
    pipeline = opportunities * deal_size
    bookings = pipeline * win_rate * close_probability(cell_segments, scenario)
    marginal = curves.marginal(exact_spend) * value_per_conversion(
        cell_segments, scenario
    )

    value = {
        "pipeline": pipeline,
        "bookings_in_horizon": bookings,
        "conversions": conversions,
    }
    objective = value[scenario.objective.maximize.value]
    with np.errstate(divide="ignore", invalid="ignore"):
        cpa = np.where(conversions > 0, spend / conversions, np.nan)
        roi = np.where(spend > 0, objective / spend, np.nan)

    numbers = pd.DataFrame(
        {
            "spend": spend.reshape(-1),
            "clicks": (spend * curves.clicks_per_money).reshape(-1),
            "conversions": conversions.reshape(-1),
            "opportunities": opportunities.reshape(-1),
            "pipeline": pipeline.reshape(-1),
            "bookings_in_horizon": bookings.reshape(-1),
            "cpa": cpa.reshape(-1),
            "roi": roi.reshape(-1),
            "marginal_roi": marginal.reshape(-1),
        }
    )
    return pd.concat([curves.labels, numbers], axis=1)


def summarize(
    allocation: pd.DataFrame, cents: IntArray, key: str | list[str], objective: str
) -> pd.DataFrame:
    """Metrics of an allocation summed by columns, spend summed in cents."""
    sums = allocation.groupby(key, sort=True)[list(METRICS[1:])].sum(min_count=0)
    columns = [allocation[k] for k in ([key] if isinstance(key, str) else key)]
    spend_cents = pd.Series(cents, index=allocation.index).groupby(columns).sum()
    sums.insert(0, "spend", spend_cents.reindex(sums.index).to_numpy() / 100)
    spend = sums["spend"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        sums["cpa"] = np.where(
            sums["conversions"] > 0, spend / sums["conversions"], np.nan
        )
        sums["roi"] = np.where(spend > 0, sums[objective] / spend, np.nan)
    return sums


def constraint_reports(
    program: LinearProgram, run: SolverRun
) -> tuple[ConstraintReport, ...]:
    """Every row with its activity and shadow price, per dollar or per click."""
    assert run.x is not None and run.row_dual is not None
    activity = program.activity(run.x)
    reports = []
    for r, row in enumerate(program.rows):
        dual = float(run.row_dual[r])
        if row.unit == "clicks":
            price, level = dual * program.value_unit, float(activity[r])
        else:
            price = program.dollar_value(dual)
            level = float(activity[r]) * program.money_unit
        reports.append(
            ConstraintReport(
                name=row.name,
                label=row.label,
                bound=row.bound,
                amount=row.amount,
                activity=level,
                shadow_price=price if abs(price) > DUAL_TOLERANCE else 0.0,
                unit=row.unit,
            )
        )
    return tuple(reports)


def _check_rounded(scenario: Scenario, program: LinearProgram, cents: IntArray) -> None:
    """The rounded plan must still keep every rule, give or take its cents."""
    cents = cents.reshape(-1)
    total = int(cents.sum()) / 100
    problems = []
    exact = scenario.budget.spend is SpendRule.EXACT
    if exact and int(cents.sum()) != round(scenario.budget.total * 100):
        problems.append("the rounded spend does not add up to the budget")
    for index, rule in enumerate(scenario.constraints):
        inside = program.curves.cell_months_in(rule.scope, rule.scope_id)
        held = int(cents[inside].sum()) / 100
        slack = 0.01 * int(inside.sum()) + 1e-7 * scenario.budget.total
        low, high = rule_range(rule, min_share_base=total, max_share_base=total)
        if held < low - slack or held > high + slack:
            problems.append(
                f"rule {index + 1} ({rule.label}) holds {held:,.2f} after rounding, "
                f"outside {low:,.2f} to {high:,.2f}"
            )
    if problems:
        raise VerificationError(
            "The plan failed its check after rounding to cents: " + "; ".join(problems)
        )
