"""The ``optimizer`` command.

::

    optimizer run SCENARIO --out DIR       solve, verify and write the plan
    optimizer validate SCENARIO            check a scenario without solving it
    optimizer check SCENARIO [--previous OLD]
                                           data quality and drift, before solving
    optimizer diff OLD NEW [--out DIR]     the change log between two versions
    optimizer compare SET --out DIR        solve and compare a scenario set
    optimizer sweep SCENARIO --out DIR     the budget frontier
    optimizer bids PLAN_DIR --scenario SCENARIO --out DIR
                                           bid adjustments from a written plan

Exit codes: 0 success, 1 unexpected error, 2 wrong command-line usage,
3 invalid input, 4 infeasible scenario, 5 solver failure (no verified
optimum). This module is the only one that prints.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pandas as pd
from tqdm import tqdm

from optimizer.bidding import check_references as check_bid_references
from optimizer.bidding import read_allocation, recommend_bids
from optimizer.changelog import ChangeLog, change_log, change_log_text, write_change_log
from optimizer.comparison import compare
from optimizer.curves import build_curves
from optimizer.diagnosis import arithmetic_conflicts
from optimizer.errors import InfeasibleScenarioError, ScenarioError, SolverError
from optimizer.frontier import budget_grid, sweep
from optimizer.model import build_program
from optimizer.outputs import (
    staged_folder,
    write_comparison,
    write_csv,
    write_finance_files,
    write_frontier,
    write_plan_files,
)
from optimizer.planner import optimize
from optimizer.platforms import previous_bids, write_bid_files, write_plan_bids
from optimizer.quality import (
    Finding,
    Level,
    PreviousRun,
    check_quality,
    findings_text,
    read_previous_run,
    warn_about,
)
from optimizer.reading import load_scenario
from optimizer.reports import comparison_text, console_summary, frontier_text
from optimizer.scenario import Scenario
from optimizer.scenario_sets import load_scenario_set
from optimizer.thresholds import crossings, crossings_text

if TYPE_CHECKING:
    #: The subcommand registry of the top-level parser.
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INVALID_INPUT = 3
EXIT_INFEASIBLE = 4
EXIT_SOLVER_FAILURE = 5

EXIT_CODES_HELP = """exit codes:
  0  success
  1  unexpected error (a bug: please report it)
  2  wrong command-line usage
  3  invalid input: the message names the file, row, field and value
  4  infeasible scenario: the message says which rules conflict
  5  solver failure: no verified optimum, so no plan was written
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    _configure_output(verbose=arguments.verbose)
    try:
        return int(arguments.handler(arguments, sys.stdout))
    except ScenarioError as error:
        _fail(f"invalid input:\n{error}")
        return EXIT_INVALID_INPUT
    except InfeasibleScenarioError as error:
        _fail(str(error))
        return EXIT_INFEASIBLE
    except SolverError as error:
        _fail(f"solver failure: {error}")
        return EXIT_SOLVER_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimizer",
        description="Budget allocation for enterprise paid media, solved as a "
        "linear program and verified independently of the solver.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="solve a scenario and write its plan",
        description="Solve a scenario, verify the optimum and write "
        "allocation.csv, constraints.csv and summary.json into --out.",
        epilog="example:\n"
        "  optimizer run scenarios/demo_pipeline.toml --out out/demo\n\n"
        + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", type=Path, help="the scenario's TOML file")
    run.add_argument(
        "--out", type=Path, required=True, help="folder for the plan's files"
    )
    run.add_argument(
        "--solver", choices=["highs", "cbc"], help="override [solver] name"
    )
    run.add_argument(
        "--time-limit", type=float, help="override [solver] time_limit (s)"
    )
    run.add_argument(
        "--write-model", type=Path, help="also write the program as an .lp or .mps file"
    )
    run.add_argument(
        "--frontier-steps",
        type=int,
        default=11,
        help="budgets from 0.5x to 1.5x for the report's frontier (0: none)",
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on success"
    )
    _add_drift_options(run)
    run.set_defaults(handler=_run)

    validate = commands.add_parser(
        "validate",
        help="check a scenario without solving it",
        description="Read and check a scenario: every field, the references "
        "between tables, and the arithmetic of its rules against the budget.",
        epilog="example:\n  optimizer validate scenarios/demo_pipeline.toml\n\n"
        + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("scenario", type=Path, help="the scenario's TOML file")
    validate.set_defaults(handler=_validate)
    _add_compare(commands)
    _add_sweep(commands)
    _add_bids(commands)
    _add_check(commands)
    _add_diff(commands)
    return parser


def _command(
    commands: Commands,
    name: str,
    *,
    help: str,
    description: str,
    example: str,
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"example:\n  {example}\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_compare(commands: Commands) -> None:
    compare = _command(
        commands,
        "compare",
        help="solve a scenario set and compare its variants",
        description="Solve the base scenario and every variant of a scenario-set "
        "file and write comparison.csv, comparison_summary.csv, "
        "binding_constraints.csv and each scenario's plan into --out. A variant "
        "that is infeasible or fails is reported; the others are compared.",
        example="optimizer compare scenarios/demo_whatifs.toml --out out/whatifs",
    )
    compare.add_argument("scenario_set", type=Path, help="the scenario-set TOML file")
    compare.add_argument("--out", type=Path, required=True, help="output folder")
    compare.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    compare.set_defaults(handler=_compare)


def _add_sweep(commands: Commands) -> None:
    sweep = _command(
        commands,
        "sweep",
        help="solve a scenario at many budgets: the budget frontier",
        description="Solve the scenario at budgets from --from to --to (multiples "
        "of its budget, or amounts with --absolute) with one warm-started model, "
        "and write frontier.csv: budget, objective, marginal ROI, spend by stage "
        "and channel, and the rules that bind.",
        example="optimizer sweep scenarios/demo_pipeline.toml --from 0.5 --to 1.1 "
        "--steps 30 --out out/frontier",
    )
    sweep.add_argument("scenario", type=Path, help="the scenario's TOML file")
    sweep.add_argument("--from", dest="start", type=float, default=0.5)
    sweep.add_argument("--to", dest="stop", type=float, default=1.5)
    sweep.add_argument("--steps", type=int, default=21, help="number of budgets")
    sweep.add_argument(
        "--absolute", action="store_true", help="--from and --to are amounts"
    )
    sweep.add_argument("--out", type=Path, required=True, help="output folder")
    sweep.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=_sweep)


def _add_bids(commands: Commands) -> None:
    bids = _command(
        commands,
        "bids",
        help="recompute bid adjustments from a written plan",
        description="Read a plan's allocation.csv back, apply the scenario's "
        "[bids] rules without solving again, and write bids.csv and the "
        "platform files under bids/ into --out. --previous (else [bids] "
        "previous) gives last cycle's bids for the stability limits: bids.csv, "
        "a Google Ads Editor CSV or a Microsoft Advertising bulk CSV.",
        example="optimizer bids out/demo --scenario scenarios/demo_pipeline.toml "
        "--previous out/last/bids.csv --out out/bids",
    )
    bids.add_argument("plan", type=Path, help="the folder of a written plan")
    bids.add_argument(
        "--scenario", type=Path, required=True, help="the plan's scenario TOML file"
    )
    bids.add_argument("--previous", type=Path, help="last cycle's bids file")
    bids.add_argument("--out", type=Path, required=True, help="output folder")
    bids.set_defaults(handler=_bids)


def _bids(arguments: argparse.Namespace, out: TextIO) -> int:
    if arguments.out.resolve() == arguments.plan.resolve():
        _fail(
            f"--out {arguments.out} is the plan's folder, which the bids would "
            "replace; choose another folder."
        )
        return EXIT_USAGE
    scenario = load_scenario(arguments.scenario)
    allocation = read_allocation(arguments.plan / "allocation.csv", scenario)
    previous = previous_bids(scenario, arguments.previous)
    bids = recommend_bids(scenario, allocation, previous=previous)
    with staged_folder(arguments.out) as folder:
        written = write_bid_files(bids, folder)
    names = ", ".join(str(path.relative_to(folder)) for path in written)
    out.write(
        f"{len(bids.adjustments)} bid adjustments and {len(bids.campaign_bids)} "
        f"campaign bids; wrote {names} into {arguments.out}\n"
    )
    return EXIT_OK


def _progress(quiet: bool, description: str):  # type: ignore[no-untyped-def]
    """A progress bar on a terminal; nothing when quiet or not a terminal."""

    def wrap(items):  # type: ignore[no-untyped-def]
        items = list(items)
        disabled = quiet or not sys.stderr.isatty()
        return tqdm(items, desc=description, disable=disabled, file=sys.stderr)

    return wrap


def _compare(arguments: argparse.Namespace, out: TextIO) -> int:
    scenario_set = load_scenario_set(arguments.scenario_set)
    comparison = compare(scenario_set, progress=_progress(arguments.quiet, "variants"))
    folder = write_comparison(comparison, arguments.out)
    if not arguments.quiet:
        out.write(comparison_text(comparison))
        out.write(f"\nwrote {folder}/comparison.csv, comparison_summary.csv, ...\n")
    return EXIT_OK


def _sweep(arguments: argparse.Namespace, out: TextIO) -> int:
    if arguments.steps < 2 or arguments.start <= 0 or arguments.stop <= arguments.start:
        raise ScenarioError(
            f"--from {arguments.start:g} --to {arguments.stop:g} --steps "
            f"{arguments.steps}: expected 0 < --from < --to and at least 2 steps."
        )
    scenario = load_scenario(arguments.scenario)
    budgets = budget_grid(
        scenario,
        arguments.start,
        arguments.stop,
        arguments.steps,
        absolute=arguments.absolute,
    )
    table, _ = sweep(scenario, budgets, progress=_progress(arguments.quiet, "budgets"))
    folder = write_frontier(table, optimize(scenario), arguments.out)
    if not arguments.quiet:
        out.write(frontier_text(table, scenario))
        out.write(f"\nwrote {folder}/frontier.csv, plan.xlsx, report.html, charts/\n")
    return EXIT_OK


def _run(arguments: argparse.Namespace, out: TextIO) -> int:
    scenario = load_scenario(arguments.scenario)
    check_bid_references(scenario)
    findings = _quality_before_solving(scenario, arguments)
    plan = optimize(scenario, solver=arguments.solver, time_limit=arguments.time_limit)
    frontier = _report_frontier(scenario, arguments.frontier_steps)
    with staged_folder(arguments.out) as staging:
        write_plan_files(plan, staging, data_quality=findings)
        write_plan_bids(plan, staging)
        if frontier is not None:
            write_csv(frontier, staging / "frontier.csv", decimals=4)
        write_finance_files(plan, staging, frontier=frontier)
    folder = arguments.out
    if arguments.write_model is not None:
        _write_model(scenario, arguments.write_model)
    if not arguments.quiet:
        out.write(console_summary(plan))
        crossed = crossings_text(crossings(plan), scenario.plan.currency)
        out.write(f"\n{crossed}" if crossed else "")
        extra = ", thresholds.csv" if scenario.thresholds else ""
        out.write(
            f"\nwrote {folder}/allocation.csv, constraints.csv, summary.json{extra}, "
            "bids.csv, bids/, frontier.csv, plan.xlsx, report.html, charts/\n"
        )
    return EXIT_OK


def _report_frontier(scenario: Scenario, steps: int) -> pd.DataFrame | None:
    """The budget frontier around the plan, for the report; None when skipped.

    A scenario with minimum viable spend has no linear frontier to sweep.
    """
    if steps < 2 or scenario.micro_segments.active:
        return None
    budgets = budget_grid(scenario, 0.5, 1.5, steps, absolute=False)
    table, _ = sweep(scenario, budgets)
    return table


def _write_model(scenario: Scenario, path: Path) -> None:
    # PuLP takes 0.2 s to import; only this option needs it.
    from optimizer.pulp_model import write_model  # noqa: PLC0415

    write_model(build_program(scenario, build_curves(scenario)), path)


def _validate(arguments: argparse.Namespace, out: TextIO) -> int:
    scenario = load_scenario(arguments.scenario)
    check_bid_references(scenario)
    program = build_program(scenario, build_curves(scenario))
    conflicts = arithmetic_conflicts(scenario, program)
    if conflicts:
        raise InfeasibleScenarioError(conflicts)
    out.write(
        f"{arguments.scenario}: valid; {len(scenario.segments)} segments, "
        f"{len(scenario.channels)} channels, {len(scenario.responses)} cells, "
        f"{scenario.plan.months} months, {len(scenario.constraints)} rules; "
        f"the program has {program.num_cols} columns and {program.num_rows} rows.\n"
    )
    return EXIT_OK


# --- data quality and the change log ----------------------------------------------


def _add_drift_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--previous",
        type=Path,
        help="the previous version, to flag drift: its scenario TOML file, or "
        "the folder of a run of it",
    )
    parser.add_argument(
        "--max-drift",
        type=_share,
        help="the share an input may move before it is flagged (default: "
        "[quality] max_drift, 0.25)",
    )


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"got {text!r}; expected a share greater than 0, such as 0.25"
        )
    return value


def _add_check(commands: Commands) -> None:
    check = _command(
        commands,
        "check",
        help="check a scenario's data quality, and its drift from a previous version",
        description="Before solving: empty optional fields, segment volumes and "
        "rates outside their stage's range ([quality]), thresholds that watch "
        "nothing, and, with --previous, every input that moved more than "
        "--max-drift since that version. Warnings are listed; any error exits "
        "with code 3, as optimizer run would.",
        example="optimizer check scenarios/demo_pipeline.toml "
        "--previous scenarios/demo_pipeline_v1.toml",
    )
    check.add_argument("scenario", type=Path, help="the scenario's TOML file")
    _add_drift_options(check)
    check.set_defaults(handler=_check)


def _add_diff(commands: Commands) -> None:
    diff = _command(
        commands,
        "diff",
        help="explain what changed between two versions of a scenario",
        description="List every input and rule that differs between OLD and NEW, "
        "then apply the changes to OLD one at a time (budget, objective, "
        "settings, rules, channels, segments, responses, seasonality), "
        "re-solving after each: how much of the change in the objective and in "
        "spend by stage and channel each accounts for. With --out, write "
        "changelog.csv and changes.csv. Exits with 4 (infeasible) or 5 (solver "
        "failure) when OLD or NEW has no plan; a step in between without one is "
        "reported.",
        example="optimizer diff scenarios/demo_pipeline_v1.toml "
        "scenarios/demo_pipeline.toml --out out/changelog",
    )
    diff.add_argument("old", type=Path, help="the previous version's TOML file")
    diff.add_argument("new", type=Path, help="the current version's TOML file")
    diff.add_argument("--out", type=Path, help="folder for changelog.csv, changes.csv")
    diff.add_argument(
        "--solver", choices=["highs", "cbc"], help="override NEW's [solver] name"
    )
    diff.set_defaults(handler=_diff)


def _previous(path: Path | None) -> Scenario | PreviousRun | None:
    if path is None:
        return None
    return read_previous_run(path) if path.is_dir() else load_scenario(path)


def _quality_before_solving(
    scenario: Scenario, arguments: argparse.Namespace
) -> list[Finding]:
    """The findings of a scenario; errors stop the run as invalid input."""
    previous = _previous(arguments.previous)
    findings = check_quality(scenario, previous, max_drift=arguments.max_drift)
    errors = [f.describe() for f in findings if f.level is Level.ERROR]
    if errors:
        raise ScenarioError(errors)
    warn_about(findings)
    return findings


def _check(arguments: argparse.Namespace, out: TextIO) -> int:
    scenario = load_scenario(arguments.scenario)
    previous = _previous(arguments.previous)
    findings = check_quality(scenario, previous, max_drift=arguments.max_drift)
    errors = [f for f in findings if f.level is Level.ERROR]
    found = [f for f in findings if f.level is Level.WARNING]
    against = ""
    if previous is not None:
        limit = arguments.max_drift or scenario.quality.max_drift
        against = f", against {arguments.previous} (drift limit {limit:.0%})"
    out.write(
        f"{arguments.scenario}: {_count(len(errors), 'error')}, "
        f"{_count(len(found), 'warning')}{against}\n"
    )
    out.write(findings_text(found))
    if errors:
        raise ScenarioError([f.describe() for f in errors])
    return EXIT_OK


def _count(number: int, noun: str) -> str:
    if number == 0:
        return f"no {noun}s"
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _diff(arguments: argparse.Namespace, out: TextIO) -> int:
    old = load_scenario(arguments.old)
    new = load_scenario(arguments.new)
    log = change_log(old, new, solver=arguments.solver)
    if arguments.out is not None:
        plan = optimize(new, solver=arguments.solver) if log.end.has_plan else None
        write_change_log(log, arguments.out, plan=plan)
    out.write(change_log_text(log))
    if arguments.out is not None:
        report = ", report.html" if log.end.has_plan else ""
        out.write(f"\nwrote {arguments.out}/changelog.csv, changes.csv{report}\n")
    return _ends_with_plans(log)


def _ends_with_plans(log: ChangeLog) -> int:
    """The exit code: both versions need a plan for the total to exist."""
    for name, outcome in (("old", log.start), ("new", log.end)):
        if outcome.has_plan:
            continue
        _fail(f"the {name} scenario has no plan ({outcome.status}): {outcome.message}")
        infeasible = outcome.status == "infeasible"
        return EXIT_INFEASIBLE if infeasible else EXIT_SOLVER_FAILURE
    return EXIT_OK


def _configure_output(*, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

    def show(message: Warning | str, *_: object, **__: object) -> None:
        sys.stderr.write(f"warning: {message}\n")

    warnings.showwarning = show


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
