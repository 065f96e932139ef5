"""The budget frontier: one model re-solved at many budgets, and searches on it.

A sweep builds the program and the HiGHS model once. The first solve runs
the interior-point method with crossover; every later budget changes only the
bounds of the budget row and of the share rules that scale with it, and the
dual simplex restarts from the previous optimal basis, which is still dual
feasible. PuLP has no such warm start: its re-solve exports the whole model
again. Every level is verified like any plan before it is reported.

The value of the program is concave in the budget, so the objective rises
ever more slowly and the budget's shadow price (the marginal ROI) never
rises. The searches below rely on that: a bisection on the budget finds

* the largest budget whose marginal ROI is at least a target,
* the largest budget whose average ROI is at least a target (or CPA at most),
* the smallest budget whose objective reaches a target.

Searches spend *up to* the budget, so budgets above what volume can absorb
stay feasible; where the target binds, the budget is spent in full anyway.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.curves import build_curves
from optimizer.model import LinearProgram, build_program
from optimizer.plan import Plan, build_plan
from optimizer.scenario import (
    BudgetSettings,
    Objective,
    ObjectiveSettings,
    Scenario,
    SpendRule,
)
from optimizer.solve import (
    HIGHS_OPTIONS,
    SolveStatus,
    highs_lp,
    new_highs,
    read_highs_run,
)
from optimizer.verify import check_solution

logger = logging.getLogger(__name__)

#: Options for the re-solves after the first one.
WARM_OPTIONS = {"solver": "simplex", "simplex_strategy": 1}

#: Bisection stops when the bracket is narrower than this, in money.
BUDGET_RESOLUTION = 0.01


@dataclass(frozen=True)
class Level:
    """One budget of a sweep: a plan, or why there is none."""

    budget: float
    status: SolveStatus
    plan: Plan | None
    message: str = ""


class BudgetSweeper:
    """A scenario's program, held by HiGHS and re-solved at other budgets.

    Parameters
    ----------
    scenario
        The scenario whose budget is varied; everything else is kept.
    spend
        Override the scenario's spend rule (searches use ``up_to``).
    """

    def __init__(self, scenario: Scenario, *, spend: SpendRule | None = None) -> None:
        rule = spend or scenario.budget.spend
        self.scenario = scenario.replace(
            budget=BudgetSettings(total=scenario.budget.total, spend=rule)
        )
        self.program: LinearProgram = build_program(
            self.scenario, build_curves(self.scenario)
        )
        self._rows = self.program.budget_rows().astype(np.int32)
        self._highs = new_highs(HIGHS_OPTIONS, self.scenario.solver.time_limit)
        self._highs.passModel(highs_lp(self.program))
        self._options = dict(HIGHS_OPTIONS)
        self.solves = 0

    def solve_at(self, budget: float) -> Level:
        """The verified plan at ``budget``, or the reason there is none."""
        program = self.program.with_budget(budget)
        rows = self._rows
        self._highs.changeRowsBounds(
            len(rows), rows, program.row_lower[rows], program.row_upper[rows]
        )
        self._highs.run()
        run = read_highs_run(self._highs, self._options, 0.0)
        self._warm_from_now_on()

        if run.status is not SolveStatus.OPTIMAL:
            return Level(budget, run.status, None, run.detail)
        verification = check_solution(program, run)
        if not verification.passed:
            return Level(budget, SolveStatus.ERROR, None, verification.describe())
        # Only the validated budget changes, which no cross-table check reads,
        # so the copy skips re-validating the tables.
        budget_settings = BudgetSettings(total=budget, spend=self.scenario.budget.spend)
        scenario = self.scenario.model_copy(update={"budget": budget_settings})
        return Level(
            budget, run.status, build_plan(scenario, program, run, verification)
        )

    def _warm_from_now_on(self) -> None:
        self.solves += 1
        if self.solves == 1:
            for key, value in WARM_OPTIONS.items():
                self._highs.setOptionValue(key, value)
            self._options = {**HIGHS_OPTIONS, "resolves": "dual simplex, warm basis"}


def sweep(
    scenario: Scenario,
    budgets: Iterable[float],
    *,
    progress: Callable[[Iterable[float]], Iterable[float]] = iter,
) -> tuple[pd.DataFrame, list[Level]]:
    """Solve the scenario at each budget; the frontier table and the levels."""
    sweeper = BudgetSweeper(scenario)
    levels = [sweeper.solve_at(float(budget)) for budget in progress(list(budgets))]
    return frontier_table(levels, scenario), levels


def budget_grid(
    scenario: Scenario, start: float, stop: float, steps: int, *, absolute: bool
) -> list[float]:
    """Budgets from ``start`` to ``stop``: multipliers of the budget, or amounts."""
    scale = 1.0 if absolute else scenario.budget.total
    return [round(v * scale, 2) for v in np.linspace(start, stop, steps).tolist()]


def frontier_table(levels: list[Level], scenario: Scenario) -> pd.DataFrame:
    """One row per budget: objective, marginal ROI, spend by stage and channel."""
    records = [_frontier_record(level) for level in levels]
    return pd.DataFrame.from_records(records)


def _frontier_record(level: Level) -> dict[str, object]:
    record: dict[str, object] = {"budget": level.budget, "status": str(level.status)}
    plan = level.plan
    record["objective"] = plan.objective_value if plan else math.nan
    record["marginal_roi"] = plan.budget_shadow_price if plan else math.nan
    if plan is None:
        record["binding"] = level.message
        return record
    for column, prefix in (("stage", "spend_stage_"), ("channel_id", "spend_channel_")):
        codes, names = pd.factorize(plan.allocation[column], sort=True)
        cents = np.bincount(codes, weights=plan.spend_cents, minlength=len(names))
        for name, amount in zip(names, cents, strict=True):
            record[f"{prefix}{name}"] = round(float(amount)) / 100
    binding = [c.label for c in plan.binding_constraints if c.name != "budget"]
    record["binding"] = "; ".join(binding)
    return record


# --- searches --------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """The budget a search found, the plan there, and how it was found."""

    budget: float | None
    plan: Plan | None
    explanation: str
    solves: int


def feasible_budgets(sweeper: BudgetSweeper) -> tuple[float, float] | None:
    """The least and most budget the rules allow, spending it exactly.

    The budgets that admit a plan form an interval (the projection of a
    convex set), so each end is found by bisection from a feasible budget.
    """
    capacity = _capacity(sweeper.program)
    probes = [sweeper.scenario.budget.total, *np.linspace(capacity, 0, 17)[:-1]]
    inside = next((b for b in probes if sweeper.solve_at(b).plan is not None), None)
    if inside is None:
        return None

    def feasible(budget: float) -> bool:
        return sweeper.solve_at(budget).plan is not None

    low = BUDGET_RESOLUTION
    if not feasible(low):
        low = _bisect_first(feasible, low, inside)
    high = capacity if feasible(capacity) else _bisect_last(feasible, inside, capacity)
    return low, high


def largest_budget(
    scenario: Scenario,
    *,
    marginal_roi: float | None = None,
    average_roi: float | None = None,
    cpa: float | None = None,
) -> SearchResult:
    """The largest budget whose optimal plan still meets one efficiency target.

    Give exactly one of ``marginal_roi`` (objective value of the last
    dollar, at least), ``average_roi`` (objective per dollar, at least) or
    ``cpa`` (spend per conversion, at most). Marginal ROI never rises with
    the budget. The objective per dollar rises to one peak and then falls
    (see :func:`_best_average`), so the search starts from that peak; a CPA
    target follows the same shape exactly when conversions are the
    objective. The plan found is checked against the target in every case.
    """
    given = {"marginal_roi": marginal_roi, "average_roi": average_roi, "cpa": cpa}
    chosen = [(name, value) for name, value in given.items() if value is not None]
    if len(chosen) != 1:
        raise ValueError(
            f"give exactly one target of marginal_roi, average_roi or cpa; got {given}"
        )
    name, target = chosen[0]
    words = f"{name.replace('_', ' ')} {'at most' if name == 'cpa' else 'at least'}"

    def meets(plan: Plan) -> bool:
        if name == "marginal_roi":
            return plan.budget_shadow_price >= target
        if name == "average_roi":
            return plan.objective_value >= target * plan.total_spend
        conversions = plan.overall()["conversions"]
        return conversions > 0 and plan.total_spend <= target * conversions

    sweeper = BudgetSweeper(scenario, spend=SpendRule.EXACT)
    bounds = feasible_budgets(sweeper)
    if bounds is None:
        return _no_budget(sweeper)
    low, high = bounds

    def passes(budget: float) -> bool:
        level = sweeper.solve_at(budget)
        return level.plan is not None and meets(level.plan)

    start = low if name == "marginal_roi" else _best_average(sweeper, low, high)
    if not passes(start):
        where = "the smallest budget the rules allow" if start == low else "the best"
        return SearchResult(
            None,
            sweeper.solve_at(start).plan,
            f"no budget has {words} {_fmt(target)}: not even {where}, {_fmt(start)}",
            sweeper.solves,
        )
    found = high if passes(high) else _bisect_last(passes, start, high)
    return SearchResult(
        found,
        sweeper.solve_at(found).plan,
        f"the largest budget with {words} {_fmt(target)} is {_fmt(found)}"
        + (" (all the rules allow)" if found == high else ""),
        sweeper.solves,
    )


def _best_average(sweeper: BudgetSweeper, low: float, high: float) -> float:
    """The budget where the objective per dollar peaks.

    With a concave value ``v(B)``, ``v(B) / B`` rises while the marginal
    value ``v'(B)`` exceeds the average ``v(B) / B`` and falls after, so
    the peak is the last budget where the marginal is still above the average.
    """

    def rising(budget: float) -> bool:
        plan = sweeper.solve_at(budget).plan
        return plan is not None and (
            plan.budget_shadow_price * plan.total_spend >= plan.objective_value
        )

    if not rising(low):
        return low
    return high if rising(high) else _bisect_last(rising, low, high)


def smallest_budget(scenario: Scenario, *, metric: str, target: float) -> SearchResult:
    """The smallest budget whose optimal plan reaches ``target`` of ``metric``.

    ``metric`` is ``pipeline``, ``bookings_in_horizon`` or ``conversions``;
    the plans maximize it, so it grows with the budget while the marginal
    ROI is positive.
    """
    objective = ObjectiveSettings(maximize=Objective(metric))
    sweeper = BudgetSweeper(
        scenario.replace(objective=objective), spend=SpendRule.EXACT
    )
    bounds = feasible_budgets(sweeper)
    if bounds is None:
        return _no_budget(sweeper)
    low, high = bounds

    def growing(budget: float) -> bool:
        level = sweeper.solve_at(budget)
        return level.plan is not None and level.plan.budget_shadow_price > 0

    peak = high if growing(high) else _bisect_last(growing, low, high)

    def reaches(budget: float) -> bool:
        level = sweeper.solve_at(budget)
        return level.plan is not None and level.plan.objective_value >= target

    if not reaches(peak):
        best = sweeper.solve_at(peak).plan
        return SearchResult(
            None,
            best,
            f"{metric} {_fmt(target)} is out of reach: the most any budget the rules "
            f"allow gives is {_fmt(best.objective_value if best else math.nan)}, "
            f"at {_fmt(peak)}",
            sweeper.solves,
        )
    found = low if reaches(low) else _bisect_first(reaches, low, peak)
    return SearchResult(
        found,
        sweeper.solve_at(found).plan,
        f"the smallest budget reaching {metric} {_fmt(target)} is {_fmt(found)}",
        sweeper.solves,
    )


def _no_budget(sweeper: BudgetSweeper) -> SearchResult:
    return SearchResult(
        None, None, "no budget satisfies all the scenario's rules", sweeper.solves
    )


def _bisect_last(holds: Callable[[float], bool], low: float, high: float) -> float:
    """The largest budget, to the cent, where ``holds`` is still true.

    ``holds(low)`` is true, ``holds(high)`` false, and ``holds`` monotone.
    """
    while high - low > BUDGET_RESOLUTION * 1.5:
        middle = round((low + high) / 2, 2)
        if holds(middle):
            low = middle
        else:
            high = middle
    return low


def _bisect_first(holds: Callable[[float], bool], low: float, high: float) -> float:
    """The smallest budget, to the cent, where ``holds`` is already true.

    ``holds(low)`` is false, ``holds(high)`` true, and ``holds`` monotone.
    """
    while high - low > BUDGET_RESOLUTION * 1.5:
        middle = round((low + high) / 2, 2)
        if holds(middle):
            high = middle
        else:
            low = middle
    return high


def _capacity(program: LinearProgram) -> float:
    return math.floor(float(program.upper.sum() * program.money_unit) * 100) / 100


def _fmt(value: float) -> str:
    return f"{value:,.2f}"
