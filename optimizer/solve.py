"""Running a solver on the program, and what came back.

Two solvers, chosen by name:

* ``highs`` (the default): HiGHS through ``highspy``, fed the program's arrays
  in one call. Its interior-point method with crossover and without presolve
  was the fastest exact option on this model's shape (many boxed columns, few
  rows); see ``benchmarks/``.
* ``cbc``: CBC through PuLP (:mod:`optimizer.pulp_model`).

Whatever a solver reports is mapped to one :class:`SolveStatus`; only
``OPTIMAL`` with a primal and a dual solution can become a plan, and even then
only after :mod:`optimizer.verify` has checked it.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import version
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt

from optimizer.model import LinearProgram
from optimizer.scenario import SolverName

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: HiGHS options chosen by measurement; see the module docstring.
HIGHS_OPTIONS: dict[str, Any] = {
    "solver": "ipm",
    "presolve": "off",
    "run_crossover": "on",
    "random_seed": 0,
}


class SolveStatus(StrEnum):
    """How a solve ended, whatever the solver."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    NOT_SOLVED = "not_solved"
    NO_SOLUTION = "no_solution"
    ERROR = "error"


@dataclass(frozen=True)
class SolverInfo:
    """Which solver ran, its version and the options it ran with."""

    name: str
    version: str
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "name": self.name,
            "version": self.version,
            "options": dict(self.options),
        }


@dataclass(frozen=True)
class SolverRun:
    """What a solver returned, before any check.

    ``row_dual`` follows the maximization convention: a positive dual means
    raising the row's upper bound would raise the objective.
    """

    status: SolveStatus
    solver: SolverInfo
    detail: str
    x: FloatArray | None = None
    row_dual: FloatArray | None = None
    objective: float | None = None
    seconds: float = 0.0

    @property
    def has_optimum(self) -> bool:
        """Whether this is an optimum with both primal and dual values."""
        return (
            self.status is SolveStatus.OPTIMAL
            and self.x is not None
            and self.row_dual is not None
        )


def solve_program(
    program: LinearProgram,
    *,
    solver: SolverName = SolverName.HIGHS,
    time_limit: float = 300.0,
) -> SolverRun:
    """Solve the program with the named solver."""
    if solver is SolverName.CBC:
        # PuLP costs 0.2 s to import; a HiGHS run does without it.
        from optimizer.pulp_model import solve_with_cbc  # noqa: PLC0415

        run = solve_with_cbc(program, time_limit=time_limit)
    else:
        run = solve_with_highs(program, time_limit=time_limit)
    logger.info(
        "%s finished: %s in %.3f s (%s)",
        run.solver.name,
        run.status,
        run.seconds,
        run.detail,
    )
    return run


def highs_lp(program: LinearProgram) -> Any:
    """The program as a ``highspy.HighsLp``, built from its arrays."""
    lp = highspy.HighsLp()
    lp.num_col_ = program.num_cols
    lp.num_row_ = program.num_rows
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = program.objective
    lp.col_lower_ = np.zeros(program.num_cols)
    lp.col_upper_ = program.upper
    lp.row_lower_ = program.row_lower
    lp.row_upper_ = program.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = program.row_start.astype(np.int32)
    lp.a_matrix_.index_ = program.col_index.astype(np.int32)
    lp.a_matrix_.value_ = program.coef
    return lp


def new_highs(options: dict[str, Any], time_limit: float) -> Any:
    """A silent HiGHS instance with the given options.

    ``highspy.Highs()`` registers a callback in its constructor, and HiGHS
    prints its banner on the first call while ``output_flag`` is still on
    (ERGO-Code/HiGHS#1702). The extension's base class has no such
    constructor, so the flag can be turned off before anything is printed.
    """
    base = getattr(getattr(highspy, "_core", None), "_Highs", highspy.Highs)
    highs = base()
    highs.setOptionValue("output_flag", False)
    for key, value in {**options, "time_limit": float(time_limit)}.items():
        highs.setOptionValue(key, value)
    return highs


def solve_with_highs(
    program: LinearProgram,
    *,
    time_limit: float = 300.0,
    options: dict[str, Any] | None = None,
) -> SolverRun:
    """Solve with HiGHS through highspy, from the program's arrays."""
    options = dict(HIGHS_OPTIONS if options is None else options)
    start = time.perf_counter()
    highs = new_highs(options, time_limit)
    highs.passModel(highs_lp(program))
    highs.run()
    return read_highs_run(highs, options, time.perf_counter() - start)


def read_highs_run(highs: Any, options: dict[str, Any], seconds: float) -> SolverRun:
    """Map a finished HiGHS run into a :class:`SolverRun`."""
    info = SolverInfo("highs", _highspy_version(), options)
    model_status = highs.getModelStatus()
    solver_info = highs.getInfo()
    status = _HIGHS_STATUS.get(model_status.name, SolveStatus.ERROR)
    primal_ok = solver_info.primal_solution_status == highspy.kSolutionStatusFeasible
    dual_ok = solver_info.dual_solution_status == highspy.kSolutionStatusFeasible
    detail = (
        f"model status {model_status.name}, primal "
        f"{'feasible' if primal_ok else 'not feasible'}, dual "
        f"{'feasible' if dual_ok else 'not feasible'}"
    )
    if status is SolveStatus.OPTIMAL and not (primal_ok and dual_ok):
        status = SolveStatus.NO_SOLUTION
    if status is not SolveStatus.OPTIMAL:
        return SolverRun(status, info, detail, seconds=seconds)

    solution = highs.getSolution()
    return SolverRun(
        status,
        info,
        detail,
        x=np.array(solution.col_value),
        row_dual=np.array(solution.row_dual),
        objective=float(solver_info.objective_function_value),
        seconds=seconds,
    )


@functools.cache
def _highspy_version() -> str:
    return version("highspy")


_HIGHS_STATUS = {
    "kOptimal": SolveStatus.OPTIMAL,
    "kInfeasible": SolveStatus.INFEASIBLE,
    "kUnbounded": SolveStatus.UNBOUNDED,
    "kUnboundedOrInfeasible": SolveStatus.INFEASIBLE,
    "kTimeLimit": SolveStatus.TIME_LIMIT,
    "kIterationLimit": SolveStatus.ITERATION_LIMIT,
    "kNotset": SolveStatus.NOT_SOLVED,
    "kModelEmpty": SolveStatus.NOT_SOLVED,
}
