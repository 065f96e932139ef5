"""The linear program, as arrays: one column per cell x month x curve piece.

::

    maximize    sum_j value_j * slope_j * x_j
    subject to  0 <= x_j <= width_j                    (a piece's room)
                sum_j x_j  = budget   (or <= budget)   (the budget row)
                lower_r <= sum_{j in r} a_rj x_j <= upper_r   (one row per rule bound)

Spend is held in units of ``budget / 1000`` and money-valued objectives in the
same unit, so the budget row reads 1000 and objective coefficients are return
multiples whatever the currency or the size of the plan. Every row carries its
rule, the bound it enforces and a sentence that says it in business words.

The model is solver-neutral; :mod:`optimizer.solve` hands it to HiGHS directly
and :mod:`optimizer.pulp_model` turns it into a PuLP problem.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from optimizer.curves import CellCurves
from optimizer.scenario import ConstraintRule, Objective, Scenario, SpendRule
from optimizer.value import value_per_conversion

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: The budget is this many internal money units.
BUDGET_UNITS = 1000.0

#: Coefficient ranges wider than this are warned about.
WIDE_RANGE = 1e9

SHARE_BOUNDS = ("min_share", "max_share")
MONEY_BOUNDS = ("min", "max", "fixed")


class ScalingWarning(UserWarning):
    """The program's numbers span a range that solvers handle badly."""


@dataclass(frozen=True)
class RowInfo:
    """What one row of the program enforces."""

    name: str
    label: str
    bound: str
    amount: float
    rule: int | None = None
    budget_share: float | None = None
    """When set, the row's finite bounds are this share of the budget."""
    unit: str = "money"
    """What the row's activity counts: ``money`` or ``clicks``."""

    @property
    def is_budget(self) -> bool:
        """Whether this is the budget row."""
        return self.name == "budget"


@dataclass(frozen=True)
class LinearProgram:
    """A maximization over boxed columns, with rows in CSR form.

    ``entry_row`` repeats each row index once per non-zero, so that ``A @ x``
    and ``A.T @ y`` are single ``bincount`` calls.
    """

    objective: FloatArray
    upper: FloatArray
    row_start: IntArray
    col_index: IntArray
    coef: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray
    rows: tuple[RowInfo, ...]
    curves: CellCurves
    money_unit: float
    value_unit: float
    currency: str
    entry_row: IntArray = field(repr=False)

    @property
    def num_cols(self) -> int:
        """Number of columns (curve pieces)."""
        return len(self.objective)

    @property
    def num_rows(self) -> int:
        """Number of rows (the budget and one per rule bound)."""
        return len(self.rows)

    def activity(self, x: FloatArray) -> FloatArray:
        """Row activities ``A @ x``."""
        weights = self.coef * x[self.col_index]
        return np.bincount(self.entry_row, weights=weights, minlength=self.num_rows)

    def transpose_times(self, y: FloatArray) -> FloatArray:
        """``A.T @ y``, one value per column."""
        weights = self.coef * y[self.entry_row]
        return np.bincount(self.col_index, weights=weights, minlength=self.num_cols)

    def spend(self, x: FloatArray) -> FloatArray:
        """Money spent in each cell and month (cells x months) by a solution."""
        return self.curves.per_cell_month(x * self.money_unit)

    def dollar_value(self, dual: float) -> float:
        """A row dual as objective value per unit of money."""
        return dual * self.value_unit / self.money_unit

    @property
    def budget(self) -> float:
        """The budget the program's rows are set for, in money."""
        return float(self.row_upper[0]) * self.money_unit

    def budget_rows(self) -> IntArray:
        """Rows whose bounds move with the budget."""
        return np.array(
            [r for r, row in enumerate(self.rows) if row.budget_share is not None],
            dtype=np.int64,
        )

    def with_budget(self, budget: float) -> LinearProgram:
        """The same program for another budget; only budget-bound rows change.

        Money keeps the unit of the original budget, so the columns, the
        objective and every other row are shared with this program.
        """
        lower, upper = self.row_lower.copy(), self.row_upper.copy()
        for r in self.budget_rows():
            level = float(self.rows[r].budget_share or 0.0) * budget / self.money_unit
            lower[r] = level if np.isfinite(lower[r]) else lower[r]
            upper[r] = level if np.isfinite(upper[r]) else upper[r]
        first = self.rows[0]
        budget_row = dataclasses.replace(
            first,
            amount=budget,
            label=_budget_label(np.isfinite(lower[0]), budget, self.currency),
        )
        return dataclasses.replace(
            self,
            row_lower=lower,
            row_upper=upper,
            rows=(budget_row, *self.rows[1:]),
        )


def build_program(scenario: Scenario, curves: CellCurves) -> LinearProgram:
    """Build the program of a checked scenario from its curves."""
    money_unit = scenario.budget.total / BUDGET_UNITS
    value_unit = (
        1.0 if scenario.objective.maximize is Objective.CONVERSIONS else money_unit
    )

    value = value_per_conversion(curves.segments, scenario).reshape(-1)
    objective = curves.slope * value[curves.group] * money_unit / value_unit
    upper = curves.width / money_unit

    rows = _RowBuilder(len(upper))
    _add_budget(rows, scenario)
    for index, rule in enumerate(scenario.constraints):
        _add_rule(
            rows,
            scenario=scenario,
            curves=curves,
            index=index,
            rule=rule,
            money_unit=money_unit,
        )

    _add_overlap_groups(rows, scenario, curves, money_unit)
    program = rows.finish(
        objective,
        upper,
        curves,
        money_unit=money_unit,
        value_unit=value_unit,
        currency=scenario.plan.currency,
    )
    _warn_on_wide_ranges(program)
    logger.info(
        "program has %d columns and %d rows", program.num_cols, program.num_rows
    )
    return program


class _RowBuilder:
    """Collects rows as index and coefficient arrays, then packs them."""

    def __init__(self, num_cols: int) -> None:
        self.num_cols = num_cols
        self.columns: list[IntArray] = []
        self.coefs: list[FloatArray] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.info: list[RowInfo] = []
        self.names: set[str] = set()

    def add(
        self,
        columns: IntArray,
        coefs: FloatArray,
        lower: float,
        upper: float,
        info: RowInfo,
    ) -> None:
        name = info.name
        suffix = 2
        while name in self.names:
            name, suffix = f"{info.name}_{suffix}", suffix + 1
        self.names.add(name)
        keep = coefs != 0
        self.columns.append(columns[keep])
        self.coefs.append(coefs[keep])
        self.lower.append(lower)
        self.upper.append(upper)
        self.info.append(dataclasses.replace(info, name=name))

    def finish(
        self,
        objective: FloatArray,
        upper: FloatArray,
        curves: CellCurves,
        *,
        money_unit: float,
        value_unit: float,
        currency: str,
    ) -> LinearProgram:
        counts = np.array([len(c) for c in self.columns], dtype=np.int64)
        return LinearProgram(
            objective=objective,
            upper=upper,
            row_start=np.r_[0, np.cumsum(counts)].astype(np.int64),
            col_index=np.concatenate(self.columns).astype(np.int64),
            coef=np.concatenate(self.coefs),
            row_lower=np.array(self.lower),
            row_upper=np.array(self.upper),
            rows=tuple(self.info),
            curves=curves,
            money_unit=money_unit,
            value_unit=value_unit,
            currency=currency,
            entry_row=np.repeat(np.arange(len(counts), dtype=np.int64), counts),
        )


def _add_budget(rows: _RowBuilder, scenario: Scenario) -> None:
    budget = scenario.budget
    exact = budget.spend is SpendRule.EXACT
    rows.add(
        np.arange(rows.num_cols),
        np.ones(rows.num_cols),
        BUDGET_UNITS if exact else -np.inf,
        BUDGET_UNITS,
        RowInfo(
            name="budget",
            label=_budget_label(exact, budget.total, scenario.plan.currency),
            bound="fixed" if exact else "max",
            amount=budget.total,
            budget_share=1.0,
        ),
    )


def _add_rule(
    rows: _RowBuilder,
    *,
    scenario: Scenario,
    curves: CellCurves,
    index: int,
    rule: ConstraintRule,
    money_unit: float,
) -> None:
    mask = curves.columns_in(rule.scope, rule.scope_id)
    inside = np.flatnonzero(mask)
    exact = scenario.budget.spend is SpendRule.EXACT
    currency = scenario.plan.currency
    base = _machine_name(f"{rule.scope}_{rule.id or 'all'}")

    for bound in (*MONEY_BOUNDS, *SHARE_BOUNDS):
        amount = getattr(rule, bound)
        if amount is None:
            continue
        scales = bound in SHARE_BOUNDS and exact
        info = RowInfo(
            name=f"{bound}_{base}",
            label=_rule_label(rule, bound, amount, currency),
            bound=bound,
            amount=amount,
            rule=index,
            budget_share=amount if scales else None,
        )
        low_side = bound in ("min", "fixed", "min_share")
        high_side = bound in ("max", "fixed", "max_share")
        if bound in MONEY_BOUNDS or exact:
            level = (
                amount / money_unit if bound in MONEY_BOUNDS else amount * BUDGET_UNITS
            )
            columns, coefs = inside, np.ones(len(inside))
        else:
            # spend(scope) - share * spend(all) compared with zero
            level = 0.0
            columns = np.arange(rows.num_cols)
            coefs = mask.astype(float) - amount
        rows.add(
            columns,
            coefs,
            level if low_side else -np.inf,
            level if high_side else np.inf,
            info,
        )


def _add_overlap_groups(
    rows: _RowBuilder, scenario: Scenario, curves: CellCurves, money_unit: float
) -> None:
    """Clicks bought across an overlap group stay within its shared reach.

    One row per group and month: the clicks of every cell of the group's
    segments (spend times clicks per unit of money) at most ``monthly_reach``.
    """
    months = len(curves.months)
    clicks = np.nan_to_num(curves.clicks_per_money).reshape(-1)[curves.group]
    for group in scenario.overlap_groups:
        members = np.array([c.segment_id in group.segments for c in curves.cells])
        in_group = np.repeat(members, months)[curves.group]
        for m, month in enumerate(curves.months):
            columns = np.flatnonzero(in_group & (curves.group % months == m))
            rows.add(
                columns,
                clicks[columns] * money_unit,
                -np.inf,
                group.monthly_reach,
                RowInfo(
                    name=_machine_name(f"reach_{group.id}_{month}"),
                    label=f"overlap group {group.id}, {month}: at most "
                    f"{group.monthly_reach:,.0f} clicks shared by "
                    f"{', '.join(group.segments)}",
                    bound="max",
                    amount=group.monthly_reach,
                    unit="clicks",
                ),
            )


def _budget_label(exact: bool, amount: float, currency: str) -> str:
    words = "spend exactly" if exact else "spend at most"
    return f"budget: {words} {amount:,.2f} {currency}"


def _rule_label(rule: ConstraintRule, bound: str, amount: float, currency: str) -> str:
    words = {
        "min": "at least",
        "max": "at most",
        "fixed": "exactly",
        "min_share": "at least",
        "max_share": "at most",
    }[bound]
    if bound in SHARE_BOUNDS:
        return f"{rule.label}: {words} {amount:.2%} of total spend"
    return f"{rule.label}: {words} {amount:,.2f} {currency}"


def _machine_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _warn_on_wide_ranges(program: LinearProgram) -> None:
    for what, values in (
        ("objective coefficients", program.objective),
        ("column bounds", program.upper),
        ("row coefficients", program.coef),
    ):
        magnitude = np.abs(values[values != 0])
        if len(magnitude) == 0:
            continue
        spread = magnitude.max() / magnitude.min()
        if spread > WIDE_RANGE:
            warnings.warn(
                f"the program's {what} range from {magnitude.min():.3g} to "
                f"{magnitude.max():.3g} (a ratio of {spread:.2g}); solvers lose "
                "precision past about 1e9, and HiGHS drops matrix entries below "
                "1e-9. Check the curves' units, or drop cells too small to matter.",
                ScalingWarning,
                stacklevel=3,
            )
