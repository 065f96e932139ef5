"""Writing a plan to files a spreadsheet or a script can read.

* ``allocation.csv``: one row per segment x channel x month.
* ``constraints.csv``: every rule of the program with its activity and
  shadow price.
* ``summary.json``: status, objective, totals, shadow prices, the check,
  solver and package versions, and the SHA-256 of every input file.

The same inputs give the same bytes: no timestamps or timings are written,
numbers have fixed formats and keys a fixed order. Files are written into a
temporary folder beside the destination, which replaces the destination only
once everything is written, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.comparison import Comparison
from optimizer.plan import Plan, Scorecard
from optimizer.quality import Finding
from optimizer.thresholds import crossings

PACKAGES = ("paid-media-optimizer", "pulp", "highspy", "numpy", "pandas", "pydantic")

#: Decimal places per allocation column; other columns are written as text.
DECIMALS = {
    "spend": 2,
    "clicks": 2,
    "conversions": 4,
    "opportunities": 4,
    "pipeline": 2,
    "bookings_in_horizon": 2,
    "cpa": 2,
    "roi": 4,
    "marginal_roi": 4,
}


@contextmanager
def staged_folder(destination: Path) -> Iterator[Path]:
    """A temporary folder that replaces ``destination`` when the block succeeds.

    On an exception the temporary folder is removed and ``destination`` is
    left as it was.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent)
    )
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _replace(staging, destination)


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write one file into a folder beside ``path``, then move it into place.

    A reader never sees half a file, and a failed write leaves the old one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (staging / path.name).write_bytes(data)
        os.replace(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(staging: Path, destination: Path) -> None:
    if not destination.exists():
        os.replace(staging, destination)
        return
    retired = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent)
    )
    os.replace(destination, retired / destination.name)
    os.replace(staging, destination)
    shutil.rmtree(retired, ignore_errors=True)


def write_plan(
    plan: Plan,
    destination: str | Path,
    *,
    data_quality: Sequence[Finding] | None = None,
) -> Path:
    """Write a plan's files into ``destination`` (a folder), all or nothing.

    ``data_quality`` are the findings of the checks run before solving, for
    summary.json (null there when no checks were run).
    """
    destination = Path(destination)
    with staged_folder(destination) as folder:
        write_plan_files(plan, folder, data_quality=data_quality)
    return destination


def write_plan_files(
    plan: Plan, folder: Path, *, data_quality: Sequence[Finding] | None = None
) -> None:
    """A plan's three files, into an existing folder.

    A scenario with decision thresholds also gets ``thresholds.csv``, every
    crossing of them.
    """
    write_csv(allocation_frame(plan), folder / "allocation.csv")
    write_csv(constraints_frame(plan), folder / "constraints.csv")
    write_json(summary_record(plan, data_quality=data_quality), folder / "summary.json")
    if plan.scenario.thresholds:
        write_csv(crossings(plan), folder / "thresholds.csv", decimals=6)


def write_comparison(comparison: Comparison, destination: str | Path) -> Path:
    """Write a comparison's tables and each scenario's plan, all or nothing.

    ``comparison.csv`` (long form), ``comparison_summary.csv`` (one row per
    scenario), ``binding_constraints.csv``, and ``scenarios/<name>/`` with the
    files of every plan (an evaluated allocation gets its allocation only).
    """
    destination = Path(destination)
    with staged_folder(destination) as folder:
        write_csv(comparison.long, folder / "comparison.csv", decimals=4)
        write_csv(comparison.summary, folder / "comparison_summary.csv", decimals=4)
        write_csv(comparison.bindings, folder / "binding_constraints.csv", decimals=6)
        if comparison.base.plan is not None:
            write_finance_files(
                comparison.base.plan, folder, comparison=comparison.long
            )
        for outcome in comparison.outcomes:
            if outcome.result is None:
                continue
            plan_folder = folder / "scenarios" / slug(outcome.name)
            plan_folder.mkdir(parents=True)
            if outcome.plan is not None:
                write_plan_files(outcome.plan, plan_folder)
            else:
                write_csv(
                    allocation_frame(outcome.result), plan_folder / "allocation.csv"
                )
    return destination


def write_frontier(frontier: pd.DataFrame, plan: Plan, destination: str | Path) -> Path:
    """Write a budget frontier, all or nothing.

    ``frontier.csv``, and the finance files of the plan at the scenario's
    own budget with the frontier in them (the chosen budget marked).
    """
    destination = Path(destination)
    with staged_folder(destination) as folder:
        write_csv(frontier, folder / "frontier.csv", decimals=4)
        write_finance_files(plan, folder, frontier=frontier)
    return destination


def write_finance_files(
    plan: Plan,
    folder: Path,
    *,
    comparison: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
) -> None:
    """``plan.xlsx``, ``report.html`` and ``charts/*.png`` for finance.

    Each chart is drawn once: the PNG files and the page share the images.
    """
    # matplotlib takes 0.3 s to import; only these files need it.
    from optimizer import charts  # noqa: PLC0415
    from optimizer.html_report import write_html_report  # noqa: PLC0415
    from optimizer.workbook import write_workbook  # noqa: PLC0415

    budget = plan.scenario.budget.total
    with charts.default_style():
        figures = charts.chart_figures(
            plan, comparison=comparison, frontier=frontier, chosen_budget=budget
        )
        images = {name: charts.png_bytes(figure) for name, figure in figures.items()}
    (folder / "charts").mkdir()
    for name, data in images.items():
        (folder / "charts" / f"{name}.png").write_bytes(data)
    write_workbook(
        folder / "plan.xlsx", plan, comparison, frontier, chosen_budget=budget
    )
    write_html_report(
        folder / "report.html",
        plan,
        comparison,
        frontier,
        chosen_budget=budget,
        images=images,
    )


def slug(name: str) -> str:
    """A file-system-safe folder name for a scenario name."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text or "scenario"


def write_csv(frame: pd.DataFrame, path: Path, *, decimals: int | None = None) -> None:
    """A CSV with Unix line ends and no index; floats to fixed decimals if given."""
    float_format = None if decimals is None else f"%.{decimals}f"
    frame.to_csv(path, index=False, lineterminator="\n", float_format=float_format)


def write_json(record: dict[str, Any], path: Path) -> None:
    """Indented JSON with a final newline."""
    path.write_text(
        json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )


def allocation_frame(plan: Scorecard) -> pd.DataFrame:
    """A plan's or any scored allocation's rows, every number as fixed text."""
    frame = plan.allocation.drop(columns=["cell"]).copy()
    cents = plan.spend_cents
    frame["spend"] = [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]
    for column, places in DECIMALS.items():
        if column != "spend":
            frame[column] = _fixed(frame[column], places)
    return frame


def constraints_frame(plan: Plan) -> pd.DataFrame:
    """Every row of the program, in business terms."""
    objective = plan.scenario.objective.maximize
    return pd.DataFrame(
        {
            "name": [c.name for c in plan.constraints],
            "rule": [c.label for c in plan.constraints],
            "activity": [f"{c.activity:.2f}" for c in plan.constraints],
            "binding": [str(c.binding).lower() for c in plan.constraints],
            "shadow_price": [f"{c.shadow_price:.6f}" for c in plan.constraints],
            "meaning": [
                c.explain(objective) if c.binding else "" for c in plan.constraints
            ],
        }
    )


def summary_record(
    plan: Plan, *, data_quality: Sequence[Finding] | None = None
) -> dict[str, Any]:
    """Everything finance and scripts read about a plan, JSON-ready."""
    scenario = plan.scenario
    objective = scenario.objective.maximize
    return {
        "scenario": {
            "name": scenario.plan.name,
            "file": scenario.source.name if scenario.source else None,
            "start": scenario.plan.start,
            "months": scenario.plan.months,
            "currency": scenario.plan.currency,
        },
        "status": "optimal",
        "objective": {
            "maximize": objective.value,
            "value": _round(plan.objective_value, 2),
            "solver_value": _round(plan.solver_objective, 2),
        },
        "budget": {
            "total": _round(scenario.budget.total, 2),
            "spend_rule": scenario.budget.spend.value,
            "spent": plan.total_spend,
            "shadow_price": _round(plan.budget_shadow_price, 6),
            "meaning": plan.constraints[0].explain(objective),
        },
        "totals": {
            "overall": _record(plan.overall()),
            "by_stage": _table(plan.totals("stage")),
            "by_channel": _table(plan.totals("channel")),
            "by_month": _table(plan.totals("month")),
            "by_segment": _table(plan.totals("segment")),
        },
        "binding_constraints": [
            {
                "name": c.name,
                "rule": c.label,
                "shadow_price": _round(c.shadow_price, 6),
                "meaning": c.explain(objective),
            }
            for c in plan.binding_constraints
            if c.name != "budget"
        ],
        "segments": {
            "overlap": plan.segments.overlap,
            "overlap_note": _overlap_note(plan),
            "holdouts": list(plan.segments.holdouts),
            "suppressions": list(plan.segments.suppressions),
            "overlap_groups": list(plan.segments.overlap_groups),
        },
        "minimum_viable_spend": None
        if plan.integer is None
        else {
            "binaries": plan.integer.binaries,
            "active_cells": plan.integer.active_cells,
            "active_segments": plan.integer.active_segments,
            "relaxation_bound": _round(plan.integer.relaxation_bound, 2),
            "gap_to_relaxation_bound": _round(plan.integer.gap_to_bound, 9),
            "solver_status": plan.integer.solver_status,
            "solver_gap": None
            if plan.integer.solver_gap is None
            else _round(plan.integer.solver_gap, 9),
            "chosen_by": plan.integer.source,
            "meaning": plan.integer.describe(),
        },
        "verification": {
            key: _round(value, 12) if isinstance(value, float) else value
            for key, value in plan.verification.as_dict().items()
        },
        "curves": {
            "approximation": plan.approximation.describe(),
            "max_error_share": _round(plan.approximation.max_error_share, 9),
        },
        "solver": plan.solver.as_dict(),
        "packages": {"python": platform.python_version(), **_versions()},
        "threshold_crossings": [
            {**row, "value": _round(row["value"], 6)}
            for row in crossings(plan).to_dict("records")
        ],
        "data_quality": None
        if data_quality is None
        else [finding.as_dict() for finding in data_quality],
        "inputs": {name: digest for name, digest in scenario.input_hashes},
    }


def _overlap_note(plan: Plan) -> str:
    if plan.segments.overlap == "exclusive":
        return "segments are mutually exclusive: totals add up without double counting"
    groups = plan.segments.overlap_groups
    names = "; ".join(
        f"{g['id']} ({', '.join(g['segments'])})"  # type: ignore[arg-type]
        for g in groups
    )
    return (
        "segments may overlap: totals by segment add up spend and conversions "
        "bought in each, and clicks bought across an overlap group never exceed "
        f"its shared reach (groups: {names or 'none declared'})"
    )


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _table(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    return {str(key): _record(row) for key, row in frame.iterrows()}


def _record(row: Any) -> dict[str, float | None]:
    places = {"spend": 2, "cpa": 2, "roi": 4}
    return {
        str(key): _round(float(value), places.get(str(key), 4))
        for key, value in dict(row).items()
    }


def _round(value: float, places: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    rounded = round(value, places)
    return 0.0 if rounded == 0 else rounded


def _fixed(values: pd.Series, places: int) -> list[str]:
    """Fixed decimals; empty for NaN; never a negative zero."""
    return [
        f"{round(v, places) + 0.0:.{places}f}" if math.isfinite(v) else ""
        for v in values.astype(float).tolist()
    ]
