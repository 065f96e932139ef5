"""The benchmark harness: the project's path against the fastest direct routes.

::

    python benchmarks/run.py                                  # everything, 3-5 min
    python benchmarks/run.py --sizes 1k,10k --repeats 3 --skip mip,demo
    python benchmarks/run.py --out benchmarks/results.json

Sections (``--skip`` takes a comma-separated list of their names):

``lp``
    For each size up to 100k columns, in this process: the project's path
    (``build_curves`` + ``build_program``, ``solve_program`` with the default
    solver, ``check_solution``) against the direct routes of
    :mod:`benchmarks.direct` on the same LP, the project's path through CBC
    (PuLP), and water-filling against the project's path on the budget-only
    variant. Every repeat runs every route once, in an order rotated from
    repeat to repeat; ratios are medians of the per-repeat ratios. Besides the
    path, each project repeat times the two steps :func:`optimizer.optimize`
    adds (the arithmetic pre-check ``arithmetic_conflicts`` and ``build_plan``).
``1m``
    At 1M columns, each route in a child process of its own, so that its peak
    resident memory (``VmHWM``, see :func:`peak_rss_mb`) is its own: the
    project's path twice (then ``build_plan``), the direct routes and the
    budget-only pair once.
``sweep``
    A 50-level budget sweep (0.5x to 1.5x) of the 10k scenario against one
    ``optimize()`` of it.
``demo``
    ``optimizer run scenarios/demo_pipeline.toml`` as a subprocess, against
    ``python -c "import optimizer"`` and ``python -c pass``.
``mip``
    Minimum viable spend with 100, 1,000 and 10,000 on/off choices (cells),
    ``min_cell_spend`` set so that a quarter of the LP's funded cells are
    slivers; the 10,000 case plans a quarter (3 months) to stay under ~60 s.

Nothing here asserts a time: objectives are checked (to 1e-7 relative), times
are reported. The JSON written to ``--out`` holds every raw time.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import optimizer  # noqa: E402
from benchmarks import direct  # noqa: E402
from benchmarks.scenarios import (  # noqa: E402
    SIZES,
    budget_only,
    columns_of,
    scenario_with_cells,
    sized,
    with_min_cell_spend,
)
from optimizer.curves import build_curves  # noqa: E402
from optimizer.diagnosis import arithmetic_conflicts  # noqa: E402
from optimizer.frontier import budget_grid, sweep  # noqa: E402
from optimizer.micro import solve_with_minimums  # noqa: E402
from optimizer.model import LinearProgram, build_program  # noqa: E402
from optimizer.plan import build_plan  # noqa: E402
from optimizer.scenario import Scenario, SolverName  # noqa: E402
from optimizer.solve import HIGHS_OPTIONS, solve_program  # noqa: E402
from optimizer.verify import check_solution  # noqa: E402

OBJECTIVE_TOLERANCE = 1e-7
SECTIONS = ("lp", "1m", "sweep", "demo", "mip")
DIRECT_ROUTES = ("highs_best", "highs_shifted", "cbc_mps")
#: The project's path through CBC runs only up to this many columns.
CBC_MAX_COLUMNS = 200_000
SWEEP_LEVELS = 50
MIP_CELLS = (100, 1_000, 10_000)
#: Months of the minimum-viable-spend scenarios, by cells; see README.md.
MIP_MONTHS = {100: 12, 1_000: 12, 10_000: 3}
MIP_TIME_LIMIT = 30.0
DEMO = ROOT / "scenarios" / "demo_pipeline.toml"


# --- measuring -----------------------------------------------------------------


@dataclass
class PathResult:
    """One run of the project's path, its phases and what it found."""

    build: float
    solve: float
    verify: float
    objective: float
    reported: float
    passed: bool
    gap: float
    program: LinearProgram
    run: Any
    verification: Any

    @property
    def path(self) -> float:
        return self.build + self.solve + self.verify


def project_path(
    scenario: Scenario, solver: SolverName = SolverName.HIGHS
) -> PathResult:
    """build_curves + build_program, solve_program, check_solution, each timed."""
    t0 = time.perf_counter()
    program = build_program(scenario, build_curves(scenario))
    t1 = time.perf_counter()
    run = solve_program(program, solver=solver, time_limit=scenario.solver.time_limit)
    t2 = time.perf_counter()
    if not run.has_optimum:
        raise RuntimeError(f"{run.solver.name}: {run.status} ({run.detail})")
    verification = check_solution(program, run)
    t3 = time.perf_counter()
    return PathResult(
        build=t1 - t0,
        solve=t2 - t1,
        verify=t3 - t2,
        objective=float(program.objective @ run.x),
        reported=float(run.objective),
        passed=bool(verification.passed),
        gap=float(verification.relative_gap),
        program=program,
        run=run,
        verification=verification,
    )


def array_lp(program: LinearProgram) -> direct.ArrayLP:
    """The program's own arrays as a :class:`direct.ArrayLP` (no copy)."""
    return direct.ArrayLP(
        c=program.objective,
        upper=program.upper,
        row_start=program.row_start,
        col_index=program.col_index,
        coef=program.coef,
        row_lower=program.row_lower,
        row_upper=program.row_upper,
    )


def exact_budget_row(lp: direct.ArrayLP) -> tuple[bool, str]:
    """Whether row 0 is ``sum(x) == B`` over every column (highs_shifted needs it)."""
    try:
        direct._budget_row(lp)
    except ValueError as error:
        return False, str(error)
    return True, "row 0 is sum(x) == budget over every column"


def water_fill_route(lp: direct.ArrayLP) -> tuple[float, float]:
    """Seconds and objective of water-filling the budget-only LP."""
    exact = bool(lp.row_lower[0] == lp.row_upper[0])
    start = time.perf_counter()
    objective, _ = direct.water_fill(lp.c, lp.upper, float(lp.row_upper[0]), exact)
    return time.perf_counter() - start, objective


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def peak_rss_mb() -> float:
    """This process's own peak resident memory so far, in MiB.

    Linux's ``VmHWM`` belongs to the process image, so it starts afresh at
    ``exec``. ``ru_maxrss`` does not: a child started by ``subprocess``
    (fork or vfork, then exec) inherits the parent's high-water mark, so
    ``RUSAGE_SELF`` in the child and ``RUSAGE_CHILDREN`` in the parent both
    report at least the parent's peak. ``ru_maxrss`` is the fallback
    elsewhere.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- section lp: sizes up to 100k, in process ----------------------------------


def bench_size(  # noqa: PLR0915 - one closure per route reads best in one place
    name: str, repeats: int, seed: int, workdir: Path
) -> dict[str, Any]:
    scenario = sized(name, seed=seed)
    floor = budget_only(scenario)
    reference = project_path(scenario)
    floor_reference = project_path(floor)
    lp = array_lp(reference.program)
    floor_lp = array_lp(floor_reference.program)
    shift_ok, shift_reason = exact_budget_row(lp)
    objective = reference.objective
    floor_objective = floor_reference.objective
    cbc_dir = workdir / f"cbc_{name}"
    cbc_dir.mkdir(exist_ok=True)

    times: dict[str, list[float]] = {}
    phases: dict[str, list[float]] = {
        k: [] for k in ("build", "solve", "verify", "conflicts", "plan")
    }
    floor_phases: dict[str, list[float]] = {k: [] for k in ("build", "solve", "verify")}
    cbc_phases: dict[str, list[float]] = {k: [] for k in ("build", "solve", "verify")}
    worst: dict[str, float] = {}
    failures: list[str] = []

    def note(route: str, seconds: float, found: float, against: float) -> None:
        times.setdefault(route, []).append(seconds)
        error = relative(found, against)
        worst[route] = max(worst.get(route, 0.0), error)
        if error > OBJECTIVE_TOLERANCE:
            failures.append(
                f"{route}: objective {found!r} vs {against!r} ({error:.1e})"
            )

    def same_program(program: LinearProgram) -> None:
        if not (
            np.array_equal(program.objective, lp.c)
            and np.array_equal(program.upper, lp.upper)
            and np.array_equal(program.col_index, lp.col_index)
        ):
            failures.append("the project built a different program on a repeat")

    def run_project() -> None:
        result = project_path(scenario)
        same_program(result.program)
        t0 = time.perf_counter()
        conflicts = arithmetic_conflicts(scenario, result.program)
        t1 = time.perf_counter()
        build_plan(scenario, result.program, result.run, result.verification)
        t2 = time.perf_counter()
        if conflicts or not result.passed:
            failures.append(f"project: conflicts {conflicts}, passed {result.passed}")
        for key, value in (
            ("build", result.build),
            ("solve", result.solve),
            ("verify", result.verify),
            ("conflicts", t1 - t0),
            ("plan", t2 - t1),
        ):
            phases[key].append(value)
        note("project", result.path, result.objective, objective)

    def run_project_cbc() -> None:
        result = project_path(scenario, SolverName.CBC)
        if not result.passed:
            failures.append(f"project_cbc: not verified, gap {result.gap:.1e}")
        for key, values in cbc_phases.items():
            values.append(getattr(result, key))
        note("project_cbc", result.path, result.objective, objective)

    def run_floor() -> None:
        result = project_path(floor)
        for key, values in floor_phases.items():
            values.append(getattr(result, key))
        note("floor_project", result.path, result.objective, floor_objective)

    def run_direct(route: Callable[[], direct.DirectResult], label: str) -> None:
        found = route()
        note(label, found.seconds, found.objective, objective)

    def run_water() -> None:
        seconds, found = water_fill_route(floor_lp)
        note("water_fill", seconds, found, floor_objective)

    routes: list[tuple[str, Callable[[], None]]] = [
        ("project", run_project),
        ("highs_best", lambda: run_direct(lambda: direct.highs_best(lp), "highs_best")),
    ]
    if shift_ok:
        routes.append(
            (
                "highs_shifted",
                lambda: run_direct(lambda: direct.highs_shifted(lp), "highs_shifted"),
            )
        )
    routes.append(
        ("cbc_mps", lambda: run_direct(lambda: direct.cbc_mps(lp, cbc_dir), "cbc_mps"))
    )
    if lp.num_cols <= CBC_MAX_COLUMNS:
        routes.append(("project_cbc", run_project_cbc))
    routes += [("floor_project", run_floor), ("water_fill", run_water)]

    for repeat in range(repeats):
        shift = repeat % len(routes)
        for label, route in routes[shift:] + routes[:shift]:
            try:
                route()
            except Exception as error:  # a route failing is a result, not a crash
                failures.append(f"{label}: {type(error).__name__}: {error}")
    return summarize_size(
        name=name,
        scenario=scenario,
        lp=lp,
        floor_lp=floor_lp,
        shift_ok=shift_ok,
        shift_reason=shift_reason,
        times=times,
        phases=phases,
        floor_phases=floor_phases,
        cbc_phases=cbc_phases,
        worst=worst,
        failures=failures,
        objective=objective,
        reference=reference,
    )


def summarize_size(
    *,
    name: str,
    scenario: Scenario,
    lp: direct.ArrayLP,
    floor_lp: direct.ArrayLP,
    shift_ok: bool,
    shift_reason: str,
    times: dict[str, list[float]],
    phases: dict[str, list[float]],
    floor_phases: dict[str, list[float]],
    cbc_phases: dict[str, list[float]],
    worst: dict[str, float],
    failures: list[str],
    objective: float,
    reference: PathResult,
) -> dict[str, Any]:
    """Medians, paired ratios and checks of one size's repeats."""
    direct_medians = {r: median(times[r]) for r in DIRECT_ROUTES if r in times}
    fastest = min(direct_medians, key=direct_medians.get) if direct_medians else None

    def paired(numerator: list[float], denominator: list[float]) -> float:
        pairs = [a / b for a, b in zip(numerator, denominator, strict=False) if b > 0]
        return median(pairs)

    ratios: dict[str, float] = {}
    if fastest:
        ratios["path_vs_fastest_direct"] = paired(times["project"], times[fastest])
        ratios["solve_vs_fastest_direct"] = paired(phases["solve"], times[fastest])
        for route in direct_medians:
            ratios[f"path_vs_{route}"] = paired(times["project"], times[route])
        optimize_like = [
            sum(values) for values in zip(*(phases[k] for k in phases), strict=True)
        ]
        ratios["optimize_steps_vs_fastest_direct"] = paired(
            optimize_like, times[fastest]
        )
    if "project_cbc" in times:
        ratios["project_cbc_vs_cbc_mps"] = paired(
            times["project_cbc"], times["cbc_mps"]
        )
        if fastest:
            ratios["project_cbc_vs_fastest_direct"] = paired(
                times["project_cbc"], times[fastest]
            )
    if "water_fill" in times and "floor_project" in times:
        ratios["floor_path_vs_water_fill"] = paired(
            times["floor_project"], times["water_fill"]
        )
    return {
        "size": name,
        "columns": lp.num_cols,
        "columns_expected": columns_of(scenario),
        "rows": lp.num_rows,
        "nonzeros": int(lp.coef.shape[0]),
        "cells": len(scenario.responses),
        "segments": len(scenario.segments),
        "budget": scenario.budget.total,
        "floor_rows": floor_lp.num_rows,
        "objective": objective,
        "objective_money": objective * reference.program.value_unit,
        "binding_rows": [
            row.name
            for row, dual in zip(
                reference.program.rows, reference.run.row_dual, strict=True
            )
            if abs(dual) > 1e-9
        ],
        "duality_gap": reference.gap,
        "project_solver": reference.run.solver.as_dict(),
        "highs_shifted_valid": shift_ok,
        "highs_shifted_reason": shift_reason,
        "times": times,
        "phases": phases,
        "floor_phases": floor_phases,
        "cbc_phases": cbc_phases,
        "medians": {route: median(values) for route, values in times.items()},
        "phase_medians": {k: median(v) for k, v in phases.items()},
        "floor_phase_medians": {k: median(v) for k, v in floor_phases.items()},
        "cbc_phase_medians": {k: median(v) for k, v in cbc_phases.items()},
        "fastest_direct": fastest,
        "ratios": ratios,
        "max_relative_objective_error": worst,
        "objectives_agree": not failures
        and all(e <= OBJECTIVE_TOLERANCE for e in worst.values()),
        "failures": failures,
    }


# --- section 1m: children ------------------------------------------------------


def child_main(arguments: argparse.Namespace) -> int:
    """One route in this (child) process; prints one JSON line."""
    record: dict[str, Any] = {"kind": arguments.child, "rss_import_mb": peak_rss_mb()}
    if arguments.child in ("project", "floor"):
        t0 = time.perf_counter()
        scenario = sized(arguments.size, seed=arguments.seed)
        if arguments.child == "floor":
            scenario = budget_only(scenario)
        record["scenario_seconds"] = time.perf_counter() - t0
        record["rss_scenario_mb"] = peak_rss_mb()
        result = project_path(scenario)
        record["rss_path_mb"] = peak_rss_mb()
        record.update(
            build=result.build,
            solve=result.solve,
            verify=result.verify,
            path=result.path,
            objective=result.objective,
            passed=result.passed,
            gap=result.gap,
            solver=result.run.solver.as_dict(),
            columns=result.program.num_cols,
            rows=result.program.num_rows,
            nonzeros=int(result.program.coef.shape[0]),
            cells=len(scenario.responses),
        )
        if arguments.plan:
            t1 = time.perf_counter()
            build_plan(scenario, result.program, result.run, result.verification)
            record["plan"] = time.perf_counter() - t1
            record["rss_plan_mb"] = peak_rss_mb()
        if arguments.lp_file:
            lp = array_lp(result.program)
            np.savez(
                arguments.lp_file,
                c=lp.c,
                upper=lp.upper,
                row_start=lp.row_start,
                col_index=lp.col_index,
                coef=lp.coef,
                row_lower=lp.row_lower,
                row_upper=lp.row_upper,
            )
    else:
        with np.load(arguments.lp_file) as data:
            lp = direct.ArrayLP(**{key: data[key] for key in data.files})
        record["rss_lp_mb"] = peak_rss_mb()
        if arguments.child == "water_fill":
            seconds, objective = water_fill_route(lp)
        elif arguments.child == "cbc_mps":
            with tempfile.TemporaryDirectory(prefix="bench-cbc-") as workdir:
                found = direct.cbc_mps(lp, workdir)
            seconds, objective = found.seconds, found.objective
            # CBC runs as a grandchild. Its ru_maxrss is the larger of its own
            # peak and ours when it started (see peak_rss_mb); above our own
            # peak it can only be its own.
            cbc = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            record["rss_cbc_process_mb"] = cbc
            record["rss_cbc_is_its_own"] = cbc > peak_rss_mb()
        else:
            ok, reason = exact_budget_row(lp)
            record["highs_shifted_valid"] = ok
            if arguments.child == "highs_shifted" and not ok:
                raise SystemExit(f"highs_shifted is not valid here: {reason}")
            found = getattr(direct, arguments.child)(lp)
            seconds, objective = found.seconds, found.objective
        record.update(path=seconds, objective=objective)
    record["rss_end_mb"] = peak_rss_mb()
    print(json.dumps(record), flush=True)
    return 0


def run_child(args: list[str], timeout: float = 900.0) -> dict[str, Any]:
    """Run this script as a child; its JSON record, wall time and peak RSS."""
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"error": f"timed out after {timeout} s", "command": args}
    wall = time.perf_counter() - start
    # Each child reports its own peak (peak_rss_mb): RUSAGE_CHILDREN here would
    # be the largest of all children so far, and at least this process's peak.
    if process.returncode != 0:
        return {"error": err.strip()[-2000:], "command": args}
    record = json.loads(out.strip().splitlines()[-1])
    record["wall_seconds"] = wall
    return record


def bench_1m(seed: int, workdir: Path, project_runs: int = 2) -> dict[str, Any]:
    size = "1m"
    lp_file = workdir / "lp_1m.npz"
    floor_file = workdir / "floor_1m.npz"
    base = ["--size", size, "--seed", str(seed)]
    runs: dict[str, list[dict[str, Any]]] = {}

    def child(kind: str, *extra: str) -> dict[str, Any]:
        log(f"  1m: {kind}")
        record = run_child(["--child", kind, *base, *extra])
        runs.setdefault(kind, []).append(record)
        return record

    # Interleaved: project, direct routes, project again, then the budget-only pair.
    child("project", "--lp-file", str(lp_file), "--plan")
    lp_ok = lp_file.exists()
    if lp_ok:
        for route in ("highs_best", "cbc_mps", "highs_shifted"):
            child(route, "--lp-file", str(lp_file))
    for _ in range(project_runs - 1):
        child("project")
    child("floor", "--lp-file", str(floor_file))
    if floor_file.exists():
        child("water_fill", "--lp-file", str(floor_file))

    project = [r for r in runs.get("project", []) if "error" not in r]
    errors = [r for rs in runs.values() for r in rs if "error" in r]
    summary: dict[str, Any] = {"runs": runs, "errors": errors}
    if not project:
        return summary
    objective = project[0]["objective"]
    path = median([r["path"] for r in project])
    direct_times = {
        route: runs[route][0]["path"]
        for route in DIRECT_ROUTES
        if route in runs and "error" not in runs[route][0]
    }
    agree = {
        route: relative(runs[route][0]["objective"], objective)
        for route in direct_times
    }
    fastest = min(direct_times, key=direct_times.get) if direct_times else None
    summary.update(
        columns=project[0]["columns"],
        rows=project[0]["rows"],
        cells=project[0]["cells"],
        project_path_median=path,
        project_phases_median={
            k: median([r[k] for r in project]) for k in ("build", "solve", "verify")
        },
        plan_seconds=project[0].get("plan"),
        peak_rss_mb={
            "after_import": project[0]["rss_import_mb"],
            "after_scenario": project[0]["rss_scenario_mb"],
            "after_path": max(r["rss_path_mb"] for r in project),
            "after_plan": project[0].get("rss_plan_mb"),
            **{route: runs[route][0]["rss_end_mb"] for route in direct_times},
        },
        direct_seconds=direct_times,
        fastest_direct=fastest,
        ratio_path_vs_fastest_direct=path / direct_times[fastest] if fastest else None,
        ratio_solve_vs_fastest_direct=(
            median([r["solve"] for r in project]) / direct_times[fastest]
            if fastest
            else None
        ),
        cbc_process_rss_mb=runs.get("cbc_mps", [{}])[0].get("rss_cbc_process_mb"),
        cbc_process_rss_is_its_own=runs.get("cbc_mps", [{}])[0].get(
            "rss_cbc_is_its_own"
        ),
        max_relative_objective_error=agree,
        objectives_agree=all(e <= OBJECTIVE_TOLERANCE for e in agree.values()),
    )
    floor = runs.get("floor", [{}])[0]
    water = runs.get("water_fill", [{}])[0]
    if "path" in floor and "path" in water:
        summary.update(
            floor_path=floor["path"],
            floor_phases={k: floor[k] for k in ("build", "solve", "verify")},
            water_fill=water["path"],
            ratio_floor_vs_water_fill=floor["path"] / water["path"],
            floor_objective_error=relative(water["objective"], floor["objective"]),
        )
    return summary


# --- section sweep -------------------------------------------------------------


def level_objective(level: Any) -> float:
    """A sweep level's objective, without building its plan when it need not."""
    if hasattr(type(level), "objective"):
        return float(level.objective)
    plan = level.plan
    return plan.objective_value if plan is not None else math.nan


def bench_sweep(repeats: int, seed: int) -> dict[str, Any]:
    scenario = sized("10k", seed=seed)
    budgets = budget_grid(scenario, 0.5, 1.5, SWEEP_LEVELS, absolute=False)
    optimizer.optimize(scenario)  # warm
    sweep_times, optimize_times, solved = [], [], []
    objectives: list[float] = []
    for repeat in range(repeats):
        order = ("sweep", "optimize") if repeat % 2 == 0 else ("optimize", "sweep")
        for which in order:
            start = time.perf_counter()
            if which == "sweep":
                _, levels = sweep(scenario, budgets)
                sweep_times.append(time.perf_counter() - start)
                solved.append(sum(str(level.status) == "optimal" for level in levels))
                objectives = [level_objective(level) for level in levels]
            else:
                optimizer.optimize(scenario)
                optimize_times.append(time.perf_counter() - start)
    ratios = [s / o for s, o in zip(sweep_times, optimize_times, strict=True)]
    rising = all(b >= a - 1e-6 * abs(a) for a, b in itertools.pairwise(objectives))
    return {
        "columns": columns_of(scenario),
        "levels": SWEEP_LEVELS,
        "budgets": [budgets[0], budgets[-1]],
        "levels_with_plan": solved,
        "objective_never_falls": rising,
        "sweep_seconds": sweep_times,
        "optimize_seconds": optimize_times,
        "sweep_median": median(sweep_times),
        "optimize_median": median(optimize_times),
        "per_level_ms": 1000 * median(sweep_times) / SWEEP_LEVELS,
        "ratio": median(ratios),
        "goal_ratio": 5.0,
    }


# --- section demo --------------------------------------------------------------


def bench_demo(repeats: int, workdir: Path) -> dict[str, Any]:
    script = Path(sys.executable).with_name("optimizer")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "optimizer"]
    commands = {
        "optimizer_run": command,
        "import_optimizer": [sys.executable, "-c", "import optimizer"],
        "python_pass": [sys.executable, "-c", "pass"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    failures = []
    for repeat in range(repeats):
        for name, base in commands.items():
            args = list(base)
            if name == "optimizer_run":
                out = workdir / f"demo_{repeat}"
                args += ["run", str(DEMO), "--out", str(out)]
            start = time.perf_counter()
            done = subprocess.run(
                args, capture_output=True, text=True, cwd=ROOT, check=False
            )
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                failures.append(f"{name}: exit {done.returncode}: {done.stderr[-500:]}")
    medians = {name: median(values) for name, values in times.items()}
    written = (
        sorted(p.name for p in (workdir / "demo_0").iterdir())
        if (workdir / "demo_0").exists()
        else []
    )
    return {
        "command": " ".join(
            [*command, "run", str(DEMO.relative_to(ROOT)), "--out", "TMP"]
        ),
        "times": times,
        "medians": medians,
        "beyond_import": medians["optimizer_run"] - medians["import_optimizer"],
        "goal_seconds": 2.0,
        "files_written": written,
        "failures": failures,
    }


# --- section mip ---------------------------------------------------------------


def bench_mip(cells: int, seed: int, time_limit: float) -> dict[str, Any]:
    months = MIP_MONTHS.get(cells, 12)
    scenario = scenario_with_cells(cells, seed=seed, months=months)
    lp = project_path(scenario)
    spend = lp.program.spend(lp.run.x).sum(axis=1)  # money per cell over the horizon
    active = spend[spend > 0.005]
    minimum = float(max(np.round(np.quantile(active, 0.3), -2), 100.0))
    lp_slivers = int(((spend > 0.005) & (spend < minimum)).sum())

    micro = with_min_cell_spend(scenario, minimum, time_limit=time_limit)
    start = time.perf_counter()
    program = build_program(micro, build_curves(micro))
    t_build = time.perf_counter()
    fixed, run, report = solve_with_minimums(micro, program)
    t_solve = time.perf_counter()
    verification = check_solution(fixed, run)
    plan = build_plan(micro, fixed, run, verification, integer=report)
    t_plan = time.perf_counter()

    cell_spend = plan.totals("cell")["spend"].to_numpy()
    tolerance = 0.01 * months  # a cent of rounding per cell-month
    funded = cell_spend > 0.005
    slivers = int((funded & (cell_spend < minimum - tolerance)).sum())
    under = funded & (cell_spend < minimum)
    return {
        "cells": cells,
        "months": months,
        "columns": program.num_cols,
        "binaries": report.binaries,
        "min_cell_spend": minimum,
        "lp_seconds": lp.path,
        "lp_objective_money": lp.objective * lp.program.value_unit,
        "lp_cells_funded": len(active),
        "lp_slivers": lp_slivers,
        "build_seconds": t_build - start,
        "solve_seconds": t_solve - t_build,
        "report_seconds": report.seconds,
        "verify_and_plan_seconds": t_plan - t_solve,
        "total_seconds": t_plan - start,
        "time_limit": time_limit,
        "solver_status": report.solver_status,
        "solver_gap": report.solver_gap,
        "gap_to_relaxation_bound": report.gap_to_bound,
        "source": report.source,
        "objective_money": report.objective,
        "relaxation_bound_money": report.relaxation_bound,
        "active_cells": report.active_cells,
        "verified": bool(verification.passed),
        "slivers": slivers,
        "cells_under_minimum_by_cents": int(under.sum()) - slivers,
        "largest_shortfall": float((minimum - cell_spend[under]).max(initial=0.0)),
        "mip_cost_vs_lp_objective": report.objective
        / (lp.objective * lp.program.value_unit)
        - 1,
    }


# --- output --------------------------------------------------------------------


def fmt_s(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 0.01:
        return f"{seconds * 1000:.2f}ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.2f}s"


def fmt_x(ratio: float | None) -> str:
    return "-" if ratio is None or not math.isfinite(ratio) else f"{ratio:.2f}x"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = (
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def report(results: dict[str, Any]) -> str:
    parts = [
        f"benchmarks {results['date']} on {results['machine']['cpus']} cpus, "
        f"python {results['machine']['python']}, "
        f"highspy {results['machine']['highspy']}, "
        f"repeats {results['repeats']} (medians)",
        f"HIGHS_OPTIONS {results['machine']['highs_options']}",
    ]
    for entry in results.get("lp", [])[-1:]:
        used = entry["project_solver"]
        parts.append(
            f"the project's solve as run ({entry['size']}): {used['name']} "
            f"{used['version']} {used['options']}"
        )
    sizes = results.get("lp", [])
    if sizes:
        rows = []
        for s in sizes:
            m, p = s["medians"], s["phase_medians"]
            rows.append(
                [
                    s["size"],
                    f"{s['columns']:,}",
                    str(s["rows"]),
                    fmt_s(p["build"]),
                    fmt_s(p["solve"]),
                    fmt_s(p["verify"]),
                    fmt_s(m["project"]),
                    fmt_s(m.get("highs_best")),
                    fmt_s(m.get("highs_shifted")),
                    fmt_s(m.get("cbc_mps")),
                    str(s["fastest_direct"]),
                    fmt_x(s["ratios"].get("path_vs_fastest_direct")),
                    fmt_x(s["ratios"].get("solve_vs_fastest_direct")),
                    "yes" if s["objectives_agree"] else "NO",
                ]
            )
        parts += [
            "",
            "LP: project path (build + solve + verify) vs direct routes on the same LP",
            table(
                [
                    "size",
                    "columns",
                    "rows",
                    "build",
                    "solve",
                    "verify",
                    "path",
                    "highs_best",
                    "highs_shifted",
                    "cbc_mps",
                    "fastest",
                    "path/fastest",
                    "solve/fastest",
                    "obj 1e-7",
                ],
                rows,
            ),
        ]
        rows = []
        for s in sizes:
            m, p, r = s["medians"], s["phase_medians"], s["ratios"]
            rows.append(
                [
                    s["size"],
                    fmt_s(p["conflicts"]),
                    fmt_s(p["plan"]),
                    fmt_s(sum(p.values())),
                    fmt_x(r.get("optimize_steps_vs_fastest_direct")),
                    fmt_s(m.get("project_cbc")),
                    fmt_s(s["cbc_phase_medians"].get("solve")),
                    fmt_x(r.get("project_cbc_vs_cbc_mps")),
                    fmt_s(m.get("floor_project")),
                    fmt_s(m.get("water_fill")),
                    fmt_x(r.get("floor_path_vs_water_fill")),
                ]
            )
        parts += [
            "",
            "optimize() extras, CBC through PuLP, budget-only floor",
            table(
                [
                    "size",
                    "pre-check",
                    "build_plan",
                    "path+extras",
                    "optimize steps/fastest",
                    "project cbc",
                    "cbc solve",
                    "cbc/cbc_mps",
                    "floor path",
                    "water_fill",
                    "floor/water",
                ],
                rows,
            ),
        ]
        bad = [f"{s['size']}: {f}" for s in sizes for f in s["failures"]]
        if bad:
            parts += ["", "FAILURES:", *bad]
    big = results.get("1m")
    if big and "project_path_median" in big:
        ph, rss = big["project_phases_median"], big["peak_rss_mb"]
        d = big["direct_seconds"]
        parts += [
            "",
            f"1M columns ({big['columns']:,} columns, {big['rows']} rows, "
            f"{big['cells']:,} cells), each route in its own process",
            table(
                ["route", "time", "peak RSS"],
                [
                    [
                        f"project path (median of {len(big['runs']['project'])})",
                        fmt_s(big["project_path_median"]),
                        f"{rss['after_path']:.0f} MiB",
                    ],
                    [
                        "  build / solve / verify",
                        " / ".join(fmt_s(ph[k]) for k in ("build", "solve", "verify")),
                        "",
                    ],
                    [
                        "  then build_plan",
                        fmt_s(big.get("plan_seconds")),
                        f"{rss['after_plan']:.0f} MiB"
                        if rss.get("after_plan")
                        else "-",
                    ],
                    [
                        "  (imports + scenario alone)",
                        "",
                        f"{rss['after_scenario']:.0f} MiB",
                    ],
                    *[[route, fmt_s(d[route]), f"{rss[route]:.0f} MiB"] for route in d],
                    *(
                        [
                            [
                                "  the CBC process itself",
                                "",
                                ("" if big.get("cbc_process_rss_is_its_own") else "<= ")
                                + f"{big['cbc_process_rss_mb']:.0f} MiB",
                            ]
                        ]
                        if big.get("cbc_process_rss_mb")
                        else []
                    ),
                    [
                        "path / fastest direct",
                        fmt_x(big["ratio_path_vs_fastest_direct"]),
                        "",
                    ],
                    [
                        "solve / fastest direct",
                        fmt_x(big["ratio_solve_vs_fastest_direct"]),
                        "",
                    ],
                    ["budget-only path", fmt_s(big.get("floor_path")), ""],
                    ["water_fill", fmt_s(big.get("water_fill")), ""],
                    [
                        "floor / water_fill",
                        fmt_x(big.get("ratio_floor_vs_water_fill")),
                        "",
                    ],
                ],
            ),
            f"objectives agree to 1e-7: {big['objectives_agree']}",
        ]
    if big and big.get("errors"):
        parts += ["1m errors:", *[json.dumps(e)[:500] for e in big["errors"]]]
    sw = results.get("sweep")
    if sw:
        parts += [
            "",
            f"sweep: {sw['levels']} budgets 0.5x-1.5x of the {sw['columns']:,}-column "
            f"scenario {fmt_s(sw['sweep_median'])} "
            f"({sw['per_level_ms']:.1f} ms a level, "
            f"{min(sw['levels_with_plan'])} levels with a plan) vs one optimize() "
            f"{fmt_s(sw['optimize_median'])}: ratio {fmt_x(sw['ratio'])} (goal <= 5x)",
        ]
    demo = results.get("demo")
    if demo:
        m = demo["medians"]
        parts += [
            "",
            f"demo: optimizer run {fmt_s(m['optimizer_run'])} (goal < 2 s); "
            f"python -c 'import optimizer' {fmt_s(m['import_optimizer'])}; "
            f"python -c pass {fmt_s(m['python_pass'])}; run beyond import "
            f"{fmt_s(demo['beyond_import'])}"
            + (f"; FAILURES {demo['failures']}" if demo["failures"] else ""),
        ]
    mips = results.get("mip")
    if mips:
        rows = []
        for r in mips:
            if "error" in r:
                rows.append([str(r["cells"]), "error: " + r["error"][:60]] + [""] * 9)
                continue
            rows.append(
                [
                    f"{r['cells']:,}",
                    str(r["months"]),
                    f"{r['columns']:,}",
                    f"{r['min_cell_spend']:,.0f}",
                    str(r["lp_slivers"]),
                    fmt_s(r["solve_seconds"]),
                    fmt_s(r["total_seconds"]),
                    str(r["solver_status"]),
                    "-" if r["solver_gap"] is None else f"{r['solver_gap']:.3%}",
                    f"{r['gap_to_relaxation_bound']:.3%}",
                    f"{r['slivers']} ({r['cells_under_minimum_by_cents']} by cents)",
                ]
            )
        parts += [
            "",
            "minimum viable spend (MIP)",
            table(
                [
                    "cells",
                    "months",
                    "columns",
                    "min_cell_spend",
                    "LP slivers",
                    "MIP solve",
                    "total",
                    "status",
                    "solver gap",
                    "gap to bound",
                    "slivers in plan",
                ],
                rows,
            ),
        ]
    return "\n".join(parts)


def machine() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, cwd=ROOT, check=True
            ).stdout.strip()
        except Exception:
            return ""

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "highspy": version("highspy"),
        "pulp": version("pulp"),
        "cbcbox": version("cbcbox"),
        "highs_options": dict(HIGHS_OPTIONS),
        "commit": git("rev-parse", "--short", "HEAD"),
        "optimizer_dirty": bool(git("status", "--porcelain", "--", "optimizer")),
    }


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1k,10k,100k,1m",
        help=f"comma-separated, of {', '.join(SIZES)}",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results.json"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip", default="", help=f"sections to skip: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--mip-cells", default=",".join(map(str, MIP_CELLS)))
    parser.add_argument("--mip-time-limit", type=float, default=MIP_TIME_LIMIT)
    # Child mode (internal): one route of the 1M section.
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="1m", help=argparse.SUPPRESS)
    parser.add_argument("--lp-file", help=argparse.SUPPRESS)
    parser.add_argument("--plan", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # ScalingWarning etc. are not the point here
    if arguments.child:
        return child_main(arguments)

    sizes = [s.strip().lower() for s in arguments.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    skip = {s.strip() for s in arguments.skip.split(",") if s.strip()}
    if unknown or skip - set(SECTIONS):
        parser.error(
            f"unknown sizes {unknown} or sections {sorted(skip - set(SECTIONS))}"
        )

    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "repeats": arguments.repeats,
        "seed": arguments.seed,
        "sizes": sizes,
        "section_seconds": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="optimizer-bench-"))
    try:
        # Warm-up: first calls of HiGHS, CBC and numpy pay one-off costs.
        bench_size("1k", 1, arguments.seed, workdir)
        if "lp" not in skip:
            results["lp"] = []
            for size in (s for s in sizes if s != "1m"):
                log(f"lp {size} ...")
                t = time.perf_counter()
                results["lp"].append(
                    bench_size(size, arguments.repeats, arguments.seed, workdir)
                )
                results["section_seconds"][f"lp_{size}"] = time.perf_counter() - t
        if "1m" in sizes and "1m" not in skip:
            log("1m ...")
            t = time.perf_counter()
            results["1m"] = bench_1m(arguments.seed, workdir)
            results["section_seconds"]["1m"] = time.perf_counter() - t
        for name, run in (
            ("sweep", lambda: bench_sweep(arguments.repeats, arguments.seed)),
            ("demo", lambda: bench_demo(arguments.repeats, workdir)),
        ):
            if name not in skip:
                log(f"{name} ...")
                t = time.perf_counter()
                results[name] = run()
                results["section_seconds"][name] = time.perf_counter() - t
        if "mip" not in skip:
            results["mip"] = []
            for cells in (int(c) for c in arguments.mip_cells.split(",") if c):
                log(f"mip {cells} cells ...")
                t = time.perf_counter()
                try:
                    record = bench_mip(cells, arguments.seed, arguments.mip_time_limit)
                except Exception as error:
                    record = {
                        "cells": cells,
                        "error": f"{type(error).__name__}: {error}",
                        "traceback": traceback.format_exc(),
                    }
                results["mip"].append(record)
                results["section_seconds"][f"mip_{cells}"] = time.perf_counter() - t
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["total_seconds"] = time.perf_counter() - started
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(report(results))
    print(f"\nwrote {arguments.out} in {results['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
