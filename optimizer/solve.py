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

import dataclasses
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


#: HiGHS options for an exact budget, after the objective shift.
SHIFTED_OPTIONS: dict[str, Any] = {
    "solver": "simplex",
    "presolve": "off",
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


def pass_program(highs: Any, program: LinearProgram, cost: FloatArray) -> None:
    """Hand the program's arrays to HiGHS in one call, with ``cost`` as objective.

    The array form of ``passModel`` takes numpy arrays as they are; filling a
    ``HighsLp`` converts them element by element (0.3 s at 1M columns).
    """
    highs.passModel(
        program.num_cols,
        program.num_rows,
        len(program.coef),
        highspy.MatrixFormat.kRowwise.value,
        highspy.ObjSense.kMaximize.value,
        0.0,
        np.ascontiguousarray(cost, dtype=np.float64),
        np.zeros(program.num_cols),
        program.upper,
        program.row_lower,
        program.row_upper,
        program.row_start.astype(np.int32),
        program.col_index.astype(np.int32),
        program.coef,
        # An empty integrality array is read past its end: zeros, continuous.
        np.zeros(program.num_cols, dtype=np.int32),
    )


def water_level(program: LinearProgram) -> float | None:
    """The return of the last piece the budget alone would buy, or None.

    Only defined when the budget row is an equality over every column, as
    with an exact budget: then subtracting a constant from every objective
    coefficient changes the objective by a constant on every feasible plan.
    """
    if not (program.rows and program.rows[0].is_budget):
        return None
    if program.row_lower[0] != program.row_upper[0]:
        return None
    entries = slice(program.row_start[0], program.row_start[1])
    covered = np.zeros(program.num_cols, dtype=bool)
    covered[program.col_index[entries]] = program.coef[entries] == 1.0
    if not covered.all() or entries.stop - entries.start != program.num_cols:
        return None
    order = np.argsort(-program.objective, kind="stable")
    filled = np.cumsum(program.upper[order])
    last = int(np.searchsorted(filled, program.row_upper[0]))
    return (
        float(program.objective[order[min(last, len(order) - 1)]])
        if len(order)
        else None
    )


def solve_with_highs(
    program: LinearProgram,
    *,
    time_limit: float = 300.0,
    options: dict[str, Any] | None = None,
) -> SolverRun:
    """Solve with HiGHS through highspy, from the program's arrays.

    With an exact budget the objective is first lowered by the budget's
    water level (:func:`water_level`), which leaves the optimal plans as they
    are, and the dual simplex runs from there: started with every column at
    its bound of greatest return, it otherwise spent seconds on one first
    iteration at 100k columns. The budget row's dual is shifted back.
    Otherwise the interior-point method with crossover runs
    (:data:`HIGHS_OPTIONS`).
    """
    start = time.perf_counter()
    level = water_level(program) if options is None else None
    if level is not None:
        options = {**SHIFTED_OPTIONS, "objective_shift": level}
        highs = new_highs(SHIFTED_OPTIONS, time_limit)
        pass_program(highs, program, program.objective - level)
    else:
        options = dict(HIGHS_OPTIONS if options is None else options)
        highs = new_highs(options, time_limit)
        pass_program(highs, program, program.objective)
    highs.run()
    run = read_highs_run(highs, options, time.perf_counter() - start)
    return unshift(run, program, level)


def unshift(run: SolverRun, program: LinearProgram, level: float | None) -> SolverRun:
    """A run of the shifted objective, in the program's own terms.

    The budget row's dual gains the shift back and the objective is
    recomputed with the program's coefficients.
    """
    if level is None or run.x is None or run.row_dual is None:
        return run
    duals = run.row_dual.copy()
    duals[0] += level
    return dataclasses.replace(
        run, row_dual=duals, objective=float(program.objective @ run.x)
    )


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
