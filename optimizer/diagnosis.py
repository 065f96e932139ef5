"""Why a scenario is infeasible, in business words.

First the arithmetic of :func:`optimizer.checks.feasibility_problems`, with
the reachable volume of every scope taken from the program. If that finds
nothing and the solver still reports infeasibility, an elastic copy of the
program is solved: every row gets named slack columns that let it bend, and
the least total bending shows which rules conflict and by how much.
"""

from __future__ import annotations

import highspy
import numpy as np
import numpy.typing as npt
import pandas as pd

from optimizer.checks import feasibility_problems
from optimizer.curves import CellCurves
from optimizer.model import LinearProgram
from optimizer.scenario import Scenario, Scope
from optimizer.solve import SolveStatus, new_highs, read_highs_run

FloatArray = npt.NDArray[np.float64]

#: Slack below this share of the budget is solver noise, not a conflict.
SLACK_TOLERANCE = 1e-7


def arithmetic_conflicts(scenario: Scenario, program: LinearProgram) -> list[str]:
    """Conflicts found by adding up minimums, maximums and reachable volume."""
    return feasibility_problems(scenario, ScopeCapacity(program.curves))


class ScopeCapacity:
    """What each scope can spend over the horizon before its volume runs out.

    The scopes that split the cells (channels, segments, stages, cells,
    months) are summed once per kind with one ``bincount``; tag and
    condition scopes, which only rules name, fall back to their masks.
    """

    def __init__(self, curves: CellCurves) -> None:
        self.curves = curves
        self.by_cell_month = curves.capacity
        self.sums: dict[Scope, dict[str, float]] = {}

    def __call__(self, scope: Scope, id_: str | None) -> float:
        if scope is Scope.TOTAL:
            return float(self.by_cell_month.sum())
        if scope in self.sums:
            return float(self.sums[scope].get(str(id_), 0.0))
        keys = self._keys(scope)
        if keys is None:
            mask = self.curves.cell_months_in(scope, id_)
            return float(self.by_cell_month.reshape(-1)[mask].sum())
        if scope not in self.sums:
            codes, names = pd.factorize(np.asarray(keys), sort=True)
            totals = np.bincount(codes, weights=_per_key(scope, self.by_cell_month))
            self.sums[scope] = dict(zip(names.tolist(), totals.tolist(), strict=True))
        return float(self.sums[scope].get(str(id_), 0.0))

    def _keys(self, scope: Scope) -> list[str] | None:
        curves = self.curves
        if scope is Scope.MONTH:
            return list(curves.months)
        per_cell = {
            Scope.CHANNEL: [c.channel_id for c in curves.cells],
            Scope.SEGMENT: [c.segment_id for c in curves.cells],
            Scope.CELL: [c.cell_id for c in curves.cells],
            Scope.STAGE: [s.stage.value for s in curves.segments],
        }
        return per_cell.get(scope)


def _per_key(scope: Scope, by_cell_month: FloatArray) -> FloatArray:
    """Capacity per key position: per month, or per cell."""
    axis = 0 if scope is Scope.MONTH else 1
    return by_cell_month.sum(axis=axis)


def elastic_conflicts(program: LinearProgram, currency: str) -> list[str]:
    """The rules that must bend for any plan to exist, and by how much."""
    highs = new_highs({"presolve": "on"}, time_limit=300.0)
    lp = _elastic_lp(program)
    highs.passModel(lp)
    highs.run()
    run = read_highs_run(highs, {}, 0.0)
    if run.status is not SolveStatus.OPTIMAL or run.x is None:
        return [f"the elastic diagnosis did not solve ({run.detail})"]

    slack = run.x[program.num_cols :] * program.money_unit
    below, above = slack[0::2], slack[1::2]
    tolerance = SLACK_TOLERANCE * program.money_unit * 1000
    reasons = []
    for row, short, over in zip(program.rows, below, above, strict=True):
        if short > tolerance:
            reasons.append(f"{row.label}: short by {short:,.2f} {currency}")
        if over > tolerance:
            reasons.append(f"{row.label}: over by {over:,.2f} {currency}")
    return reasons


def _elastic_lp(program: LinearProgram) -> highspy.HighsLp:
    """Minimize total slack; two slack columns per row, below and above."""
    n, m = program.num_cols, program.num_rows
    rows = np.repeat(np.arange(m), 2)
    signs = np.tile([1.0, -1.0], m)
    finite = np.where(
        signs > 0,
        np.isfinite(program.row_lower[rows]),
        np.isfinite(program.row_upper[rows]),
    )

    lp = highspy.HighsLp()
    lp.num_col_ = n + 2 * m
    lp.num_row_ = m
    lp.sense_ = highspy.ObjSense.kMinimize
    lp.col_cost_ = np.r_[np.zeros(n), np.ones(2 * m)]
    lp.col_lower_ = np.zeros(n + 2 * m)
    lp.col_upper_ = np.r_[program.upper, np.where(finite, np.inf, 0.0)]
    lp.row_lower_ = program.row_lower
    lp.row_upper_ = program.row_upper

    row_of_entry = np.r_[program.entry_row, rows]
    col_of_entry = np.r_[program.col_index, n + np.arange(2 * m)]
    values = np.r_[program.coef, signs]
    order = np.argsort(row_of_entry, kind="stable")
    counts = np.bincount(row_of_entry, minlength=m)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.r_[0, np.cumsum(counts)].astype(np.int32)
    lp.a_matrix_.index_ = col_of_entry[order].astype(np.int32)
    lp.a_matrix_.value_ = values[order]
    return lp
