"""Minimum viable spend: a cell or segment gets nothing, or at least enough.

Every active segment costs creative, pages and measurement, so a sliver of
budget is worse than none. With ``[micro_segments]`` set, each segment x
channel cell (not each month) gets an on/off choice ``y``, and each segment
one ``z`` when segment minimums or a cap on active segments are set::

    spend(cell) <= capacity(cell) * y        spend(cell) >= min_cell_spend * y
    spend(seg)  <= capacity(seg) * z         spend(seg)  >= min_segment_spend * z
    y(cell) <= z(segment)                    sum z <= max_active_segments

The search runs in four steps, each checked on its own:

1. the linear relaxation (``y``, ``z`` between 0 and 1), solved and verified
   like any plan: its certified dual bound caps every integer plan;
2. a greedy repair of the relaxation: slivers are dropped or lifted to the
   minimum, the weakest segments dropped past the cap, and one linear
   program with those choices fixed gives a first plan;
3. HiGHS's branch and bound, started from that plan, within the time limit
   and gap tolerance;
4. the better on/off choice is fixed and solved as a linear program, which is
   verified with its duality certificate and becomes the plan.

The plan states the gap to the relaxation's bound: the true optimum lies
between the plan's objective and that bound, whatever the solver claims.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

from optimizer.diagnosis import elastic_conflicts
from optimizer.errors import InfeasibleScenarioError, SolverError
from optimizer.model import LinearProgram, RowInfo
from optimizer.scenario import MicroSegmentSettings, Scenario
from optimizer.solve import SolverRun, SolveStatus, new_highs, solve_with_highs
from optimizer.verify import check_solution, dual_bound

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class IntegerReport:
    """How the on/off choices were made, and how far from optimal they can be."""

    binaries: int
    active_cells: int
    active_segments: int
    relaxation_bound: float
    objective: float
    gap_to_bound: float
    solver_status: str
    solver_gap: float | None
    seconds: float
    source: str

    def describe(self) -> str:
        """One sentence for the console and the report."""
        return (
            f"{self.active_cells} cells in {self.active_segments} segments are "
            f"active ({self.binaries} on/off choices, chosen by {self.source}); "
            f"the plan is within {self.gap_to_bound:.3%} of the bound of the "
            "linear relaxation"
        )


@dataclass(frozen=True)
class Choice:
    """Which cells and segments are on."""

    cells: BoolArray
    segments: BoolArray


def solve_with_minimums(
    scenario: Scenario, program: LinearProgram
) -> tuple[LinearProgram, SolverRun, IntegerReport]:
    """The best on/off choice found and its program, solve and report.

    Returns the program with the choice fixed (off cells closed, minimums
    of on cells as rows), its optimal solve, and the integer report.
    """
    settings = scenario.micro_segments
    start = time.perf_counter()
    layout = _Layout(scenario, program)

    relaxed_program, relaxed = _solve_relaxation(layout)
    bound = dual_bound(relaxed_program, relaxed.row_dual)  # type: ignore[arg-type]

    greedy = _repair(layout, relaxed.x[: program.num_cols])  # type: ignore[index]
    candidates = [(greedy, "greedy repair")]
    searched = _branch_and_bound(layout, greedy, settings)
    if searched is not None:
        candidates.append((searched[0], "branch and bound"))

    best = None
    for choice, source in candidates:
        fixed = layout.fix(choice)
        run = solve_with_highs(fixed, time_limit=scenario.solver.time_limit)
        if run.status is not SolveStatus.OPTIMAL or run.objective is None:
            continue
        if best is None or run.objective > (best[2].objective or 0.0) + 1e-9:
            best = (choice, fixed, run, source)
    if best is None:
        raise SolverError(
            "no on/off choice of cells meets the minimum viable spend with the "
            "other rules; lower [micro_segments] minimums or loosen the rules."
        )
    choice, fixed, run, source = best
    verification = check_solution(fixed, run)
    if not verification.passed:
        raise SolverError(
            "the plan for the chosen cells failed its check "
            f"({verification.describe()})"
        )
    objective = float(run.objective)  # type: ignore[arg-type]
    report = IntegerReport(
        binaries=layout.num_binaries,
        active_cells=int(choice.cells.sum()),
        active_segments=int(choice.segments.sum()),
        relaxation_bound=bound * program.value_unit,
        objective=objective * program.value_unit,
        gap_to_bound=max(bound - objective, 0.0) / max(abs(objective), 1e-12),
        solver_status=searched[1] if searched else "not run",
        solver_gap=searched[2] if searched else None,
        seconds=time.perf_counter() - start,
        source=source,
    )
    logger.info("minimum viable spend: %s", report.describe())
    return fixed, run, report


class _Layout:
    """The program's cells and segments, and the extended integer program."""

    def __init__(self, scenario: Scenario, program: LinearProgram) -> None:
        self.program = program
        self.settings = scenario.micro_segments
        curves = program.curves
        months = len(curves.months)
        self.column_cell = curves.group // months
        self.cell_capacity = np.bincount(
            self.column_cell, weights=program.upper, minlength=len(curves.cells)
        )
        segment_ids = sorted({c.segment_id for c in curves.cells})
        self.segment_of_cell = np.array(
            [segment_ids.index(c.segment_id) for c in curves.cells], dtype=np.int64
        )
        self.segment_ids = segment_ids
        self.segment_capacity = np.bincount(
            self.segment_of_cell, weights=self.cell_capacity, minlength=len(segment_ids)
        )
        unit = program.money_unit
        self.min_cell = (self.settings.min_cell_spend or 0.0) / unit
        self.min_segment = (self.settings.min_segment_spend or 0.0) / unit
        self.uses_segments = (
            self.settings.min_segment_spend is not None
            or self.settings.max_active_segments is not None
        )

    @property
    def num_binaries(self) -> int:
        cells = len(self.cell_capacity)
        return cells + (len(self.segment_ids) if self.uses_segments else 0)

    def extended_lp(self, *, integer: bool) -> highspy.HighsLp:
        """The program with on/off columns and linking rows."""
        p = self.program
        n, cells, segments = p.num_cols, len(self.cell_capacity), len(self.segment_ids)
        z_count = segments if self.uses_segments else 0
        y0, z0 = n, n + cells

        rows: list[tuple[np.ndarray, np.ndarray, float, float]] = []
        for r in range(p.num_rows):
            entries = slice(p.row_start[r], p.row_start[r + 1])
            rows.append(
                (p.col_index[entries], p.coef[entries], p.row_lower[r], p.row_upper[r])
            )
        for c in range(cells):
            columns = np.flatnonzero(self.column_cell == c)
            ones = np.ones(len(columns))
            cap = self.cell_capacity[c]
            rows.append((np.r_[columns, y0 + c], np.r_[ones, -cap], -np.inf, 0.0))
            if self.min_cell > 0:
                rows.append(
                    (np.r_[columns, y0 + c], np.r_[ones, -self.min_cell], 0.0, np.inf)
                )
            if z_count:
                s = self.segment_of_cell[c]
                rows.append(
                    (np.array([y0 + c, z0 + s]), np.array([1.0, -1.0]), -np.inf, 0.0)
                )
        for s in range(z_count):
            columns = np.flatnonzero(self.segment_of_cell[self.column_cell] == s)
            ones = np.ones(len(columns))
            if self.min_segment > 0:
                rows.append(
                    (
                        np.r_[columns, z0 + s],
                        np.r_[ones, -self.min_segment],
                        0.0,
                        np.inf,
                    )
                )
        if z_count and self.settings.max_active_segments is not None:
            rows.append(
                (
                    z0 + np.arange(z_count),
                    np.ones(z_count),
                    -np.inf,
                    float(self.settings.max_active_segments),
                )
            )

        total = n + cells + z_count
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = total, len(rows)
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.col_cost_ = np.r_[p.objective, np.zeros(cells + z_count)]
        lp.col_lower_ = np.zeros(total)
        lp.col_upper_ = np.r_[p.upper, np.ones(cells + z_count)]
        lp.row_lower_ = np.array([row[2] for row in rows], dtype=float)
        lp.row_upper_ = np.array([row[3] for row in rows], dtype=float)
        counts = np.array([len(row[0]) for row in rows])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.r_[0, np.cumsum(counts)].astype(np.int32)
        lp.a_matrix_.index_ = np.concatenate([row[0] for row in rows]).astype(np.int32)
        lp.a_matrix_.value_ = np.concatenate([row[1] for row in rows]).astype(float)
        if integer:
            kinds = [highspy.HighsVarType.kContinuous] * n
            kinds += [highspy.HighsVarType.kInteger] * (cells + z_count)
            lp.integrality_ = kinds
        return lp

    def relaxation_program(self) -> LinearProgram:
        """The relaxation as a :class:`LinearProgram`, for its certificate."""
        lp = self.extended_lp(integer=False)
        p = self.program
        starts = np.array(lp.a_matrix_.start_, dtype=np.int64)
        counts = np.diff(starts)
        rows = p.rows + tuple(
            RowInfo(
                name=f"on_off_{r}",
                label="minimum viable spend link",
                bound="max",
                amount=0.0,
            )
            for r in range(lp.num_row_ - p.num_rows)
        )
        return dataclasses.replace(
            p,
            objective=np.array(lp.col_cost_),
            upper=np.array(lp.col_upper_),
            row_start=starts,
            col_index=np.array(lp.a_matrix_.index_, dtype=np.int64),
            coef=np.array(lp.a_matrix_.value_),
            row_lower=np.array(lp.row_lower_),
            row_upper=np.array(lp.row_upper_),
            rows=rows,
            entry_row=np.repeat(np.arange(lp.num_row_, dtype=np.int64), counts),
        )

    def fix(self, choice: Choice) -> LinearProgram:
        """The program with off cells closed and on cells held to their minimum."""
        p = self.program
        on_cells = choice.cells & (
            choice.segments[self.segment_of_cell] if self.uses_segments else True
        )
        upper = np.where(on_cells[self.column_cell], p.upper, 0.0)
        extra_rows = []
        if self.min_cell > 0:
            for c in np.flatnonzero(on_cells):
                extra_rows.append(
                    (
                        np.flatnonzero(self.column_cell == c),
                        self.min_cell,
                        f"cell {p.curves.cells[c].cell_id}",
                    )
                )
        if self.min_segment > 0 and self.uses_segments:
            for s in np.flatnonzero(choice.segments):
                columns = np.flatnonzero(self.segment_of_cell[self.column_cell] == s)
                extra_rows.append(
                    (columns, self.min_segment, f"segment {self.segment_ids[s]}")
                )
        return _with_minimum_rows(dataclasses.replace(p, upper=upper), extra_rows)


def _with_minimum_rows(
    program: LinearProgram, rows: list[tuple[IntArray, float, str]]
) -> LinearProgram:
    if not rows:
        return program
    unit = program.money_unit
    # A cent per cell-month above the minimum: rounding moves each cell-month
    # by less than a cent, so the rounded plan still meets the minimum.
    months = program.curves.group
    padding = [len(np.unique(months[r[0]])) * 0.01 / unit for r in rows]
    columns = [program.col_index] + [r[0] for r in rows]
    counts = [np.diff(program.row_start)] + [np.array([len(r[0])]) for r in rows]
    infos = tuple(
        RowInfo(
            name=f"minimum_viable_spend_{i}",
            label=(
                f"{label}: at least {minimum * unit:,.2f} {program.currency} "
                "once active"
            ),
            bound="min",
            amount=minimum * unit,
        )
        for i, (_, minimum, label) in enumerate(rows)
    )
    count = np.concatenate(counts)
    return dataclasses.replace(
        program,
        row_start=np.r_[0, np.cumsum(count)].astype(np.int64),
        col_index=np.concatenate(columns).astype(np.int64),
        coef=np.concatenate([program.coef] + [np.ones(len(r[0])) for r in rows]),
        row_lower=np.r_[
            program.row_lower,
            [r[1] + pad for r, pad in zip(rows, padding, strict=True)],
        ],
        row_upper=np.r_[program.row_upper, np.full(len(rows), np.inf)],
        rows=program.rows + infos,
        entry_row=np.repeat(np.arange(len(count), dtype=np.int64), count),
    )


def _solve_relaxation(layout: _Layout) -> tuple[LinearProgram, SolverRun]:
    relaxed_program = layout.relaxation_program()
    run = solve_with_highs(relaxed_program)
    if run.status is SolveStatus.INFEASIBLE:
        # No on/off choice can help when even the relaxation has no plan.
        program = layout.program
        raise InfeasibleScenarioError(elastic_conflicts(program, program.currency))
    if run.status is not SolveStatus.OPTIMAL:
        raise SolverError(
            f"the linear relaxation of the minimum-viable-spend program ended "
            f"{run.status} ({run.detail}); no plan is reported."
        )
    verification = check_solution(relaxed_program, run)
    if not verification.passed:
        raise SolverError(
            f"the relaxation's solution failed its check ({verification.describe()})"
        )
    return relaxed_program, run


def _repair(layout: _Layout, x: FloatArray) -> Choice:
    """Drop slivers under half the minimum, lift the rest; cap active segments."""
    spend = np.bincount(
        layout.column_cell, weights=x, minlength=len(layout.cell_capacity)
    )
    tiny = 1e-9 * max(float(layout.program.upper.sum()), 1.0)
    on = spend > tiny
    if layout.min_cell > 0:
        on &= (spend >= layout.min_cell / 2) & (layout.cell_capacity >= layout.min_cell)
    segment_spend = np.bincount(
        layout.segment_of_cell,
        weights=np.where(on, spend, 0.0),
        minlength=len(layout.segment_ids),
    )
    segments = segment_spend > tiny
    if layout.min_segment > 0:
        segments &= (segment_spend >= layout.min_segment / 2) & (
            layout.segment_capacity >= layout.min_segment
        )
    cap = layout.settings.max_active_segments
    if cap is not None and segments.sum() > cap:
        value = np.bincount(
            layout.segment_of_cell[layout.column_cell],
            weights=x * layout.program.objective,
            minlength=len(layout.segment_ids),
        )
        order = np.argsort(-np.where(segments, value, -np.inf), kind="stable")
        segments = np.zeros_like(segments)
        segments[order[:cap]] = True
    return Choice(cells=on & segments[layout.segment_of_cell], segments=segments)


def _branch_and_bound(
    layout: _Layout, start: Choice, settings: MicroSegmentSettings
) -> tuple[Choice, str, float | None] | None:
    """HiGHS's integer search from a start; None if it found nothing."""
    highs = new_highs(
        {"presolve": "on", "mip_rel_gap": settings.gap, "random_seed": 0},
        time_limit=settings.time_limit,
    )
    highs.passModel(layout.extended_lp(integer=True))
    program = layout.program
    fixed = layout.fix(start)
    warm = solve_with_highs(fixed)
    if warm.x is not None:
        values = np.r_[
            warm.x,
            start.cells.astype(float),
            start.segments.astype(float) if layout.uses_segments else np.zeros(0),
        ]
        highs.setSolution(_solution(values))
    highs.run()
    status = highs.getModelStatus().name
    solution = np.array(highs.getSolution().col_value)
    if len(solution) < program.num_cols + len(layout.cell_capacity):
        return None
    info = highs.getInfo()
    if not np.isfinite(info.objective_function_value):
        return None
    cells = (
        solution[program.num_cols : program.num_cols + len(layout.cell_capacity)] > 0.5
    )
    if layout.uses_segments:
        segments = solution[program.num_cols + len(layout.cell_capacity) :] > 0.5
    else:
        segments = np.ones(len(layout.segment_ids), dtype=bool)
    return Choice(cells=cells, segments=segments), status, float(info.mip_gap)


def _solution(values: FloatArray) -> highspy.HighsSolution:
    solution = highspy.HighsSolution()
    solution.col_value = list(values)
    solution.value_valid = True
    return solution
