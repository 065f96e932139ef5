"""The program as a PuLP problem: the one module that speaks PuLP.

The problem is built from the program's arrays in batches (one call for all
columns, one Rust-side batch per row), never term by term. Column names say
what a column buys, ``spend_<segment>__<channel>__<YYYY_MM>__p<k>``; row names
are the program's rule names. CBC runs through PuLP's ``COIN_CMD``; the same
problem can be written as an LP or MPS file for any other solver.
"""

from __future__ import annotations

import re
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pulp

from optimizer.model import LinearProgram
from optimizer.solve import SolverInfo, SolverRun, SolveStatus

_PULP_STATUS = {
    pulp.LpSolveStatus.Optimal: SolveStatus.OPTIMAL,
    pulp.LpSolveStatus.Infeasible: SolveStatus.INFEASIBLE,
    pulp.LpSolveStatus.Unbounded: SolveStatus.UNBOUNDED,
    pulp.LpSolveStatus.TimeLimit: SolveStatus.TIME_LIMIT,
    pulp.LpSolveStatus.IterationLimit: SolveStatus.ITERATION_LIMIT,
    pulp.LpSolveStatus.NotSolved: SolveStatus.NOT_SOLVED,
}


def column_names(program: LinearProgram) -> list[str]:
    """A readable, unique, LP-file-safe name for every column."""
    curves = program.curves
    months = len(curves.months)
    group = curves.group
    first = np.r_[True, group[1:] != group[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(group)), 0))
    piece = np.arange(len(group)) - start
    cell_names = [
        _safe(f"{cell.segment_id}__{cell.channel_id}") for cell in curves.cells
    ]
    month_names = [label.replace("-", "_") for label in curves.months]
    return [
        f"spend_{cell_names[g // months]}__{month_names[g % months]}__p{k}"
        for g, k in zip(group.tolist(), piece.tolist(), strict=True)
    ]


def to_pulp(program: LinearProgram) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    """The program as a PuLP maximization problem and its columns in order."""
    problem = pulp.LpProblem("budget_allocation", pulp.LpMaximize)
    columns = problem.add_variable_matrix(
        "%s", column_names(program), lowBound=0, upBound=None
    )
    for column, upper in zip(columns, program.upper.tolist(), strict=True):
        column.upBound = upper

    problem.setObjective(
        pulp.lpSum_vars_coefs(zip(columns, program.objective.tolist(), strict=True))
    )
    for r, row in enumerate(program.rows):
        entries = slice(program.row_start[r], program.row_start[r + 1])
        terms = zip(
            [columns[j] for j in program.col_index[entries].tolist()],
            program.coef[entries].tolist(),
            strict=True,
        )
        expression = pulp.lpSum_vars_coefs(terms)
        lower, upper = program.row_lower[r], program.row_upper[r]
        if lower == upper:
            problem.addConstraint(expression == lower, row.name)
        elif np.isfinite(lower):
            problem.addConstraint(expression >= lower, row.name)
        else:
            problem.addConstraint(expression <= upper, row.name)
    return problem, columns


def write_model(program: LinearProgram, path: Path) -> None:
    """Write the program as an LP file (``.lp``) or an MPS file (``.mps``)."""
    problem, _ = to_pulp(program)
    if path.suffix.lower() == ".mps":
        problem.writeMPS(str(path))
    else:
        problem.writeLP(str(path))


def solve_with_cbc(program: LinearProgram, *, time_limit: float = 300.0) -> SolverRun:
    """Solve with CBC through PuLP's ``COIN_CMD``."""
    start = time.perf_counter()
    problem, columns = to_pulp(program)
    options = {"timeLimit": time_limit, "threads": 1}
    with tempfile.TemporaryDirectory(prefix="optimizer-cbc-") as workdir:
        solver = pulp.COIN_CMD(  # type: ignore[no-untyped-call]  # PuLP is untyped
            msg=False, keepFiles=False, timeLimit=time_limit, threads=1
        )
        solver.tmpDir = workdir
        stats = problem.solve(solver)

    info = SolverInfo(
        "cbc", f"pulp {version('pulp')}, cbcbox {_cbcbox_version()}", options
    )
    status = _PULP_STATUS.get(stats.status, SolveStatus.ERROR)
    returned = "returned" if stats.has_solution else "missing"
    detail = f"PuLP status {stats.status.name}, solution {returned}"
    seconds = time.perf_counter() - start
    if status is SolveStatus.OPTIMAL and not stats.has_solution:
        status = SolveStatus.NO_SOLUTION
    if status is not SolveStatus.OPTIMAL:
        return SolverRun(status, info, detail, seconds=seconds)

    x = np.array([column.value() or 0.0 for column in columns])
    # COIN_CMD hands CBC the negated objective, so its duals come back negated.
    duals = np.array([-(row.pi or 0.0) for row in problem.constraints()])
    return SolverRun(
        status,
        info,
        detail,
        x=x,
        row_dual=duals,
        objective=float(program.objective @ x),
        seconds=seconds,
    )


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _cbcbox_version() -> str:
    try:
        return version("cbcbox")
    except Exception:
        return "not installed"
