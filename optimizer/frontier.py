"""The budget frontier: one model re-solved at many budgets, and searches on it.

A sweep builds the program and the HiGHS model once. The first solve is the
one :func:`optimizer.solve.solve_with_highs` would run; every later budget
changes only the bounds of the budget row and of the share rules that scale
with it, and the dual simplex restarts from the previous optimal basis,
which is still dual feasible. PuLP has no such warm start: its re-solve
exports the whole model again. Every level is verified like any plan before
it is reported, and its full plan is built only when asked for.

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

import functools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from optimizer.curves import build_curves
from optimizer.diagnosis import arithmetic_conflicts
from optimizer.model import LinearProgram, build_program
from optimizer.plan import DUAL_TOLERANCE, Plan, build_plan, round_plan_spend
from optimizer.scenario import (
    BudgetSettings,
    Objective,
    ObjectiveSettings,
    Scenario,
    SpendRule,
)
from optimizer.solve import (
    HIGHS_OPTIONS,
    SHIFTED_OPTIONS,
    SolverRun,
    SolveStatus,
    new_highs,
    pass_program,
    read_highs_run,
    unshift,
    water_level,
)
from optimizer.value import value_per_conversion
from optimizer.verify import Verification, check_solution

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Options for the re-solves after the first one.
WARM_OPTIONS = {"solver": "simplex", "simplex_strategy": 1}

#: Bisection stops when the bracket is narrower than this, in money.
BUDGET_RESOLUTION = 0.01


@dataclass(frozen=True)
class Level:
    """One budget of a sweep: a verified solve, or why there is none.

    The frontier needs only a few numbers of each level, computed from the
    solve and its cents; the full :class:`Plan` is built when asked for.
    """

    budget: float
    status: SolveStatus
    message: str = ""
    scenario: Scenario | None = None
    program: LinearProgram | None = None
    run: SolverRun | None = None
    verification: Verification | None = None
    value: FloatArray | None = field(default=None, repr=False)
    """Objective value per conversion, cells x months (shared by a sweep)."""

    @functools.cached_property
    def plan(self) -> Plan | None:
        """The plan at this budget, if there is one."""
        if self.scenario is None or self.program is None or self.run is None:
            return None
        assert self.verification is not None
        return build_plan(self.scenario, self.program, self.run, self.verification)

    @functools.cached_property
    def cents(self) -> IntArray | None:
        """Spend per cell-month in cents, rounded as the plan rounds it."""
        if self.scenario is None or self.program is None or self.run is None:
            return None
        assert self.run.x is not None
        spend = self.program.spend(self.run.x)
        return round_plan_spend(self.scenario, self.program, spend).reshape(-1)

    @property
    def objective(self) -> float:
        """The objective of the rounded plan, as the plan reports it."""
        if self.cents is None or self.program is None or self.scenario is None:
            return math.nan
        curves = self.program.curves
        spend = (self.cents / 100).reshape(curves.shape)
        value = self.value
        if value is None:
            value = value_per_conversion(curves.segments, self.scenario)
        return float((curves.conversions(spend) * value).sum())

    @property
    def conversions(self) -> float:
        """Primary conversions of the rounded plan."""
        if self.cents is None or self.program is None:
            return math.nan
        curves = self.program.curves
        return float(curves.conversions((self.cents / 100).reshape(curves.shape)).sum())

    @property
    def marginal_roi(self) -> float:
        """The budget's shadow price: objective value of one more dollar."""
        if self.run is None or self.run.row_dual is None or self.program is None:
            return math.nan
        return self.program.dollar_value(float(self.run.row_dual[0]))

    @property
    def binding(self) -> list[str]:
        """The rules, other than the budget, whose shadow price is not zero."""
        if self.run is None or self.run.row_dual is None or self.program is None:
            return []
        prices = [self.program.dollar_value(float(y)) for y in self.run.row_dual]
        return [
            row.label
            for row, price in zip(self.program.rows, prices, strict=True)
            if not row.is_budget and abs(price) > DUAL_TOLERANCE
        ]


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
        # With an exact budget the objective is shifted once, by the first
        # budget's water level: on plans spending any exact budget that is
        # still a constant, so every level's optimum is the program's.
        self._shift = water_level(self.program)
        first = SHIFTED_OPTIONS if self._shift is not None else HIGHS_OPTIONS
        self._highs = new_highs(first, self.scenario.solver.time_limit)
        pass_program(
            self._highs, self.program, self.program.objective - (self._shift or 0.0)
        )
        self._options = {**first, "objective_shift": self._shift}
        self._value = value_per_conversion(self.program.curves.segments, self.scenario)
        self.solves = 0

    def solve_at(self, budget: float) -> Level:
        """The verified plan at ``budget``, or the reason there is none."""
        program = self.program.with_budget(budget)
        rows = self._rows
        self._highs.changeRowsBounds(
            len(rows), rows, program.row_lower[rows], program.row_upper[rows]
        )
        self._highs.run()
        run = unshift(
            read_highs_run(self._highs, self._options, 0.0), program, self._shift
        )
        self._warm_from_now_on()

        # Only the validated budget changes, which no cross-table check reads,
        # so the copy skips re-validating the tables.
        budget_settings = BudgetSettings(total=budget, spend=self.scenario.budget.spend)
        scenario = self.scenario.model_copy(update={"budget": budget_settings})
        if run.status is SolveStatus.INFEASIBLE:
            reasons = arithmetic_conflicts(scenario, program)
            why = reasons[0] if reasons else "the rules cannot all hold at this budget"
            return Level(budget, run.status, why)
        if run.status is not SolveStatus.OPTIMAL:
            return Level(budget, run.status, run.detail)
        verification = check_solution(program, run)
        if not verification.passed:
            return Level(budget, SolveStatus.ERROR, verification.describe())
        return Level(
            budget, run.status, "", scenario, program, run, verification, self._value
        )

    def _warm_from_now_on(self) -> None:
        self.solves += 1
        if self.solves == 1:
            for key, value in WARM_OPTIONS.items():
                self._highs.setOptionValue(key, value)
            self._options = {**self._options, "resolves": "dual simplex, warm basis"}


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
    solved = next((level.program for level in levels if level.program), None)
    groups = _spend_groups(solved) if solved is not None else {}
    records = [_frontier_record(level, groups) for level in levels]
    return pd.DataFrame.from_records(records)


def _spend_groups(program: LinearProgram) -> dict[str, tuple[IntArray, list[str]]]:
    """For each spend column prefix, the cell-months' group codes and names."""
    curves = program.curves
    months = len(curves.months)
    keys = {
        "spend_stage_": [s.stage.value for s in curves.segments],
        "spend_channel_": [c.channel_id for c in curves.cells],
    }
    groups = {}
    for prefix, per_cell in keys.items():
        codes, names = pd.factorize(np.repeat(per_cell, months), sort=True)
        groups[prefix] = (codes.astype(np.int64), [str(name) for name in names])
    return groups


def _frontier_record(
    level: Level, groups: dict[str, tuple[IntArray, list[str]]]
) -> dict[str, object]:
    record: dict[str, object] = {"budget": level.budget, "status": str(level.status)}
    record["objective"] = level.objective
    record["marginal_roi"] = level.marginal_roi
    if level.cents is None or level.program is None:
        record["binding"] = level.message
        return record
    for prefix, (codes, names) in groups.items():
        cents = np.bincount(codes, weights=level.cents, minlength=len(names))
        for name, amount in zip(names, cents, strict=True):
            record[f"{prefix}{name}"] = round(float(amount)) / 100
    record["binding"] = "; ".join(level.binding)
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
    inside = next((b for b in probes if sweeper.solve_at(b).run is not None), None)
    if inside is None:
        return None

    def feasible(budget: float) -> bool:
        return sweeper.solve_at(budget).run is not None

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

    def meets(level: Level) -> bool:
        if name == "marginal_roi":
            return level.marginal_roi >= target
        if name == "average_roi":
            return level.objective >= target * level.budget
        conversions = level.conversions
        return conversions > 0 and level.budget <= target * conversions

    sweeper = BudgetSweeper(scenario, spend=SpendRule.EXACT)
    bounds = feasible_budgets(sweeper)
    if bounds is None:
        return _no_budget(sweeper)
    low, high = bounds

    def passes(budget: float) -> bool:
        level = sweeper.solve_at(budget)
        return level.run is not None and meets(level)

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
        level = sweeper.solve_at(budget)
        return level.run is not None and (
            level.marginal_roi * budget >= level.objective
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
        return level.run is not None and level.marginal_roi > 0

    peak = high if growing(high) else _bisect_last(growing, low, high)

    def reaches(budget: float) -> bool:
        level = sweeper.solve_at(budget)
        return level.run is not None and level.objective >= target

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
