"""Solving a scenario set and comparing its variants with the base.

Every variant is solved on its own; one that is infeasible or fails is
reported with its diagnosis and the others are still compared. Tables:

* ``long``: one row per scenario, level (total, stage, channel, month), key,
  metric, value, and the delta against the base, absolute and in percent;
* ``summary``: one row per scenario with the totals and the objective's delta;
* ``bindings``: each scenario's binding rules with their shadow prices.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from optimizer.checks import rule_range
from optimizer.curves import build_curves
from optimizer.errors import (
    InfeasibleScenarioError,
    OptimizerError,
    ScenarioError,
    SolverError,
)
from optimizer.frontier import SearchResult, largest_budget, smallest_budget
from optimizer.model import build_program
from optimizer.plan import Plan, Scorecard, score_allocation
from optimizer.planner import optimize
from optimizer.scenario import Response, Scenario
from optimizer.scenario_sets import ScenarioSet, Variant, VariantKind, apply_variant

FloatArray = npt.NDArray[np.float64]

METRICS = (
    "spend",
    "conversions",
    "opportunities",
    "pipeline",
    "bookings_in_horizon",
    "cpa",
    "roi",
)
LEVELS = {
    "stage": "stage",
    "channel": "channel",
    "month": "month",
    "conversion_path": "conversion_path",
}
BASE = "base"


@dataclass(frozen=True)
class Outcome:
    """What one scenario of a set gave: a result, or why there is none."""

    name: str
    kind: str
    status: str
    result: Scorecard | None
    budget: float | None
    message: str = ""

    @property
    def plan(self) -> Plan | None:
        """The optimized plan, if the outcome is one."""
        return self.result if isinstance(self.result, Plan) else None


@dataclass(frozen=True)
class Comparison:
    """The outcomes of a scenario set, base first."""

    name: str
    outcomes: tuple[Outcome, ...]

    @property
    def base(self) -> Outcome:
        """The base scenario's outcome."""
        return self.outcomes[0]

    @property
    def long(self) -> pd.DataFrame:
        """scenario, level, key, metric, value, delta, delta_pct."""
        records = [record for outcome in self.outcomes for record in _records(outcome)]
        frame = pd.DataFrame.from_records(
            records, columns=["scenario", "level", "key", "metric", "value"]
        )
        base = frame[frame["scenario"] == BASE].set_index(["level", "key", "metric"])
        reference = frame.join(
            base["value"].rename("base_value"), on=["level", "key", "metric"]
        )["base_value"]
        frame["delta"] = np.where(
            frame["scenario"] == BASE, np.nan, frame["value"] - reference
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            frame["delta_pct"] = np.where(
                (frame["scenario"] == BASE) | (reference == 0),
                np.nan,
                100 * frame["delta"] / reference.abs(),
            )
        return frame

    @property
    def summary(self) -> pd.DataFrame:
        """One row per scenario: status, budget, totals, objective and deltas."""
        base = self.base.result
        paths = sorted(
            {
                response.conversion_path
                for outcome in self.outcomes
                if outcome.result is not None
                for response in outcome.result.scenario.responses
            }
        )
        rows = []
        for outcome in self.outcomes:
            row: dict[str, object] = {
                "scenario": outcome.name,
                "kind": outcome.kind,
                "status": outcome.status,
                "budget": outcome.budget,
            }
            result = outcome.result
            overall = result.overall() if result else {}
            for metric in METRICS:
                row[metric] = overall.get(metric, math.nan)
            for path in paths:
                row[f"conversions_{path}"] = (
                    float(
                        result.totals("conversion_path")["conversions"].get(path, 0.0)
                    )
                    if result
                    else math.nan
                )
            row["marginal_roi"] = (
                outcome.plan.budget_shadow_price if outcome.plan else math.nan
            )
            row["objective"] = result.objective_value if result else math.nan
            same_objective = (
                result is not None
                and base is not None
                and result.scenario.objective == base.scenario.objective
            )
            if same_objective and outcome.name != BASE:
                assert result is not None and base is not None
                delta = result.objective_value - base.objective_value
                row["objective_delta"] = delta
                row["objective_delta_pct"] = (
                    100 * delta / abs(base.objective_value)
                    if base.objective_value
                    else math.nan
                )
            else:
                row["objective_delta"] = math.nan
                row["objective_delta_pct"] = math.nan
            row["message"] = outcome.message
            rows.append(row)
        return pd.DataFrame.from_records(rows)

    @property
    def bindings(self) -> pd.DataFrame:
        """Each plan's binding rules, with shadow prices in words."""
        rows = [
            {
                "scenario": outcome.name,
                "rule": report.label,
                "shadow_price": report.shadow_price,
                "meaning": report.explain(outcome.plan.scenario.objective.maximize),
            }
            for outcome in self.outcomes
            if outcome.plan is not None
            for report in outcome.plan.binding_constraints
        ]
        return pd.DataFrame.from_records(
            rows, columns=["scenario", "rule", "shadow_price", "meaning"]
        )


def compare(
    scenario_set: ScenarioSet,
    *,
    progress: Callable[[Iterable[Variant]], Iterable[Variant]] = iter,
) -> Comparison:
    """Solve the base and every variant; failures are kept as outcomes."""
    outcomes = [_solve_base(scenario_set.base)]
    outcomes += [
        run_variant(scenario_set, variant)
        for variant in progress(scenario_set.variants)
    ]
    return Comparison(scenario_set.name, tuple(outcomes))


def _solve_base(base: Scenario) -> Outcome:
    return _guarded(BASE, BASE, base.budget.total, lambda: _optimized(base))


def run_variant(scenario_set: ScenarioSet, variant: Variant) -> Outcome:
    """Solve one variant; errors become an outcome with their message."""

    def solve() -> tuple[str, Scorecard | None, float | None, str]:
        scenario = apply_variant(scenario_set.base, variant)
        if variant.kind is VariantKind.EVALUATE:
            return _evaluated(scenario, scenario_set.folder / str(variant.allocation))
        if variant.kind is VariantKind.TARGET_EFFICIENCY:
            return _searched(largest_budget(scenario, **dict(variant.target or {})))
        if variant.kind is VariantKind.MINIMUM_BUDGET:
            metric, target = next(iter((variant.target or {}).items()))
            return _searched(smallest_budget(scenario, metric=metric, target=target))
        return _optimized(scenario)

    return _guarded(variant.name, variant.kind.value, None, solve)


def _guarded(
    name: str,
    kind: str,
    budget: float | None,
    solve: Callable[[], tuple[str, Scorecard | None, float | None, str]],
) -> Outcome:
    try:
        status, result, found, message = solve()
    except InfeasibleScenarioError as error:
        return Outcome(name, kind, "infeasible", None, budget, "; ".join(error.reasons))
    except ScenarioError as error:
        return Outcome(name, kind, "invalid", None, budget, "; ".join(error.problems))
    except (SolverError, OptimizerError) as error:
        return Outcome(name, kind, "failed", None, budget, str(error))
    return Outcome(name, kind, status, result, found, message)


def _optimized(scenario: Scenario) -> tuple[str, Scorecard, float, str]:
    plan = optimize(scenario)
    return "optimal", plan, scenario.budget.total, plan.verification.describe()


def _searched(result: SearchResult) -> tuple[str, Scorecard | None, float | None, str]:
    if result.budget is None:
        return "no_answer", None, None, result.explanation
    return "optimal", result.plan, result.budget, result.explanation


def _evaluated(scenario: Scenario, path: Path) -> tuple[str, Scorecard, float, str]:
    program = build_program(scenario, build_curves(scenario))
    spend = read_allocation(path, scenario, program.curves.cells)
    scorecard = score_allocation(scenario, program, spend)
    broken = rules_broken(scorecard)
    message = (
        "breaks " + "; ".join(broken) if broken else "keeps every rule of the scenario"
    )
    return "evaluated", scorecard, scorecard.total_spend, message


def read_allocation(
    path: Path, scenario: Scenario, cells: tuple[Response, ...]
) -> FloatArray:
    """Spend per cell and month from a CSV with segment_id, channel_id, month, spend.

    Other columns (as in ``allocation.csv``) are ignored; absent rows are zero.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ScenarioError(
            f"{path}: no such file; expected an allocation CSV to evaluate."
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    needed = ("segment_id", "channel_id", "month", "spend")
    missing = [c for c in needed if c not in (reader.fieldnames or [])]
    if missing:
        raise ScenarioError(
            f"{path}, row 1: missing required column '{missing[0]}'; expected a "
            f"header with {', '.join(needed)}."
        )
    index = {cell.cell_id: i for i, cell in enumerate(cells)}
    months = {label: m for m, label in enumerate(scenario.plan.month_labels)}
    spend = np.zeros((len(cells), len(months)))
    problems = []
    for row in reader:
        where = f"{path}, row {reader.line_num}"
        cell = f"{row['segment_id']}/{row['channel_id']}"
        if cell not in index:
            problems.append(
                f"{where}, field 'channel_id': got cell {cell!r}; expected a cell "
                "of the scenario's responses table."
            )
            continue
        if row["month"] not in months:
            problems.append(
                f"{where}, field 'month': got {row['month']!r}; expected a month "
                "of the horizon."
            )
            continue
        try:
            amount = float(row["spend"])
        except ValueError:
            amount = math.nan
        if not math.isfinite(amount) or amount < 0:
            problems.append(
                f"{where}, field 'spend': got {row['spend']!r}; expected an "
                "amount of at least 0."
            )
            continue
        spend[index[cell], months[row["month"]]] += amount
    if problems:
        raise ScenarioError(problems[:25])
    return spend


def rules_broken(scorecard: Scorecard) -> list[str]:
    """The scenario's rules that a scored allocation does not keep, with amounts."""
    scenario = scorecard.scenario
    cents = scorecard.spend_cents
    total = scorecard.total_spend
    currency = scenario.plan.currency
    broken = []
    for rule in scenario.constraints:
        inside = scorecard.in_scope(rule)
        held = int(cents[inside].sum()) / 100
        low, high = rule_range(rule, min_share_base=total, max_share_base=total)
        if held < low - 0.005 or held > high + 0.005:
            broken.append(
                f"{rule.label} holds {held:,.2f} {currency}, outside "
                f"{low:,.2f} to {high:,.2f}"
            )
    budget = scenario.budget
    if total > budget.total + 0.005:
        broken.append(f"spend {total:,.2f} is above the budget of {budget.total:,.2f}")
    return broken


def _records(outcome: Outcome) -> list[tuple[str, str, str, str, float]]:
    result = outcome.result
    if result is None:
        return []
    records = []
    overall = result.overall()
    for metric in METRICS:
        records.append((outcome.name, "total", "all", metric, overall[metric]))
    marginal = outcome.plan.budget_shadow_price if outcome.plan else math.nan
    records.append((outcome.name, "total", "all", "marginal_roi", marginal))
    for level, by in LEVELS.items():
        table = result.totals(by)
        for key, row in table.iterrows():
            records += [
                (outcome.name, level, str(key), metric, float(row[metric]))
                for metric in METRICS
            ]
    return records
