"""Checking a solver's answer in numpy, without trusting the solver.

Three checks, all on the program's own arrays:

1. Feasibility: every column within its bounds and every row within its
   bounds, to a tolerance relative to the budget.
2. Objective: ``c @ x`` recomputed equals what the solver reported.
3. Optimality: weak duality. For *any* row prices ``y``,

   ``c @ x = y @ (A x) + d @ x  <=  sum_i max(y_i * L_i, y_i * U_i)
   + sum_j max(0, d_j) * u_j``,  with ``d = c - A.T @ y``,

   because every row activity lies in ``[L_i, U_i]`` and every column in
   ``[0, u_j]``. Evaluated at the solver's duals this is an upper bound on
   every feasible plan; a feasible ``x`` that reaches it is optimal. The
   relative gap between the two is the certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from optimizer.errors import VerificationError
from optimizer.model import BUDGET_UNITS, LinearProgram
from optimizer.solve import SolverRun

FloatArray = npt.NDArray[np.float64]

#: Largest bound or row violation accepted, as a share of the budget.
FEASIBILITY_TOLERANCE = 1e-7

#: Largest relative duality gap accepted as a proof of optimality. CBC's
#: solution file, which PuLP reads back, prints about eight significant
#: digits, so its certificates close to a few parts in 1e7.
OPTIMALITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Verification:
    """The outcome of the independent check of one solve.

    Violations are in money; the gap is relative to the objective.
    """

    max_bound_violation: float
    max_row_violation: float
    tolerance: float
    worst_row: str | None
    objective_reported: float
    objective_recomputed: float
    dual_bound: float
    relative_gap: float

    @property
    def passed(self) -> bool:
        """Whether the answer is feasible and proven optimal."""
        scale = max(1.0, abs(self.objective_recomputed))
        return (
            self.max_bound_violation <= self.tolerance
            and self.max_row_violation <= self.tolerance
            and abs(self.objective_reported - self.objective_recomputed)
            <= OPTIMALITY_TOLERANCE * scale
            and self.relative_gap <= OPTIMALITY_TOLERANCE
        )

    def as_dict(self) -> dict[str, float | str | bool | None]:
        """A JSON-ready summary."""
        return {
            "passed": self.passed,
            "max_bound_violation": self.max_bound_violation,
            "max_row_violation": self.max_row_violation,
            "worst_row": self.worst_row,
            "relative_duality_gap": self.relative_gap,
            "feasibility_tolerance": self.tolerance,
            "optimality_tolerance": OPTIMALITY_TOLERANCE,
        }

    def describe(self) -> str:
        """One sentence for the console and the report."""
        verdict = "verified optimal" if self.passed else "NOT verified"
        violation = max(self.max_bound_violation, self.max_row_violation)
        return (
            f"{verdict}: largest violation {violation:.2g} in money, "
            f"duality gap {self.relative_gap:.1e}"
        )


def check_solution(program: LinearProgram, run: SolverRun) -> Verification:
    """Check a solver's optimum against the program's constraints and duals."""
    if run.x is None or run.row_dual is None or run.objective is None:
        raise VerificationError(
            f"{run.solver.name} returned no primal and dual solution to check "
            f"({run.detail}); no plan can be made from it."
        )
    x, y = run.x, run.row_dual
    unit = program.money_unit

    bound_violation = max(
        float(np.max(-x, initial=0.0)),
        float(np.max(x - program.upper, initial=0.0)),
    )
    activity = program.activity(x)
    row_violation = np.maximum(
        program.row_lower - activity, activity - program.row_upper
    )
    row_violation = np.maximum(row_violation, 0.0)
    worst = int(np.argmax(row_violation)) if len(row_violation) else 0

    objective = float(program.objective @ x)
    bound = dual_bound(program, y)
    if bound - objective > OPTIMALITY_TOLERANCE * max(1.0, abs(objective)):
        bound = min(bound, dual_bound(program, polished_duals(program, x, y)))
    gap = (bound - objective) / max(1.0, abs(objective))

    return Verification(
        max_bound_violation=bound_violation * unit,
        max_row_violation=float(row_violation.max(initial=0.0)) * unit,
        tolerance=FEASIBILITY_TOLERANCE * BUDGET_UNITS * unit,
        worst_row=program.rows[worst].name if len(row_violation) else None,
        objective_reported=float(run.objective),
        objective_recomputed=objective,
        dual_bound=bound,
        relative_gap=abs(gap),
    )


def polished_duals(program: LinearProgram, x: FloatArray, y: FloatArray) -> FloatArray:
    """Row prices recomputed from the solution itself, to full precision.

    At an optimum, every column strictly inside its bounds has a zero
    reduced cost and every row strictly inside its bounds a zero price. The
    prices of the active rows are the least-squares solution of those
    equations. A solver that prints its duals to eight digits leaves reduced
    costs of 1e-8 that, times a large unused room, loosen the bound; these
    prices do not. Any prices give a valid bound, so the check takes the
    better of the two.
    """
    width = np.maximum(program.upper, 1e-300)
    scale = max(float(program.upper.max(initial=0.0)), 1.0)
    inside = (x > 1e-9 * scale) & (x < program.upper - 1e-9 * width)
    activity = program.activity(x)
    tolerance = 1e-9 * np.maximum(1.0, np.abs(activity))
    active = (np.abs(activity - program.row_lower) <= tolerance) | (
        np.abs(activity - program.row_upper) <= tolerance
    )
    rows, columns = np.flatnonzero(active), np.flatnonzero(inside)
    if len(rows) == 0 or len(columns) == 0:
        return y
    entries = np.isin(program.entry_row, rows) & np.isin(program.col_index, columns)
    dense = np.zeros((len(columns), len(rows)))
    row_position = np.searchsorted(rows, program.entry_row[entries])
    column_position = np.searchsorted(columns, program.col_index[entries])
    np.add.at(dense, (column_position, row_position), program.coef[entries])
    solved, *_ = np.linalg.lstsq(dense, program.objective[columns], rcond=None)
    polished = np.zeros_like(y)
    polished[rows] = solved
    return polished


def dual_bound(program: LinearProgram, y: FloatArray) -> float:
    """The weak-duality upper bound on the objective for row prices ``y``.

    Prices of the wrong sign for a one-sided row are set to zero first; the
    bound holds for any prices, so this only makes it tighter.
    """
    y = np.where(np.isfinite(program.row_upper), y, np.minimum(y, 0.0))
    y = np.where(np.isfinite(program.row_lower), y, np.maximum(y, 0.0))
    upper = np.where(np.isfinite(program.row_upper), program.row_upper, 0.0)
    lower = np.where(np.isfinite(program.row_lower), program.row_lower, 0.0)
    rows = np.where(y > 0, y * upper, y * lower)
    reduced = program.objective - program.transpose_times(y)
    return float(rows.sum() + (np.maximum(reduced, 0.0) * program.upper).sum())
