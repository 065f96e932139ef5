"""The change log between two versions of a plan: which change moved which number.

:func:`change_log` lists every input change between an old and a new scenario
(:mod:`optimizer.input_changes`) and applies the plan-moving ones to the old
scenario one at a time, re-solving after each. Each step's effect is the
change in the objective and in spend by stage and channel since the plan
before it, so the steps form a waterfall from the old plan to the new one.

The order, always the same so that two runs of the same diff agree:

1. the horizon: when the start or length differs, months of one version do
   not exist in the other, so all changes are applied in a single step;
2. the budget, first, so that its step is measured on the old rules and
   inputs, where it equals the old plan's budget shadow price times the
   change as long as the change stays within one piece of the curves, a
   number finance already has;
3. the objective, so that every later step is measured in the new one;
4. curve and sales-cycle settings;
5. the rules: removed, then changed, then added, then the other planning
   rules (segmentation, overlap groups, holdouts, suppressions, minimum
   viable spend, adjustments). These are the planners' decisions; applying
   them before the data shows what the decisions did with the world held
   fixed;
6. then the measurements, from the broadest to the most detailed: channels,
   segments' value model and tags, responses with their points, seasonality.

Where changes interact, the interaction falls to the later step; the order
says who gets it. Plan name, currency, solver, bids, thresholds and quality
settings do not move the allocation: they are listed, not applied.

A change that cannot stand alone (a rule on a segment that a later change
adds, a segment removed while its cells remain) is postponed until the scenario
with it is valid, and the step says so. A step after which no plan exists
(infeasible, or no verified optimum) is reported, and the plan moves on: the
next plan is measured from the last one that existed, so the steps that have
plans still add up to the whole change.

Objectives are measured in the new scenario's objective (a plan that
maximizes pipeline is scored on bookings if the new one maximizes bookings)
and held as whole units of 1e-4, spend as whole cents, so the deltas add up
to the total exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from optimizer.errors import InfeasibleScenarioError, SolverError
from optimizer.input_changes import (
    ChangeKind,
    InputChange,
    apply_changes,
    input_changes,
    shown,
)
from optimizer.outputs import staged_folder, write_csv
from optimizer.plan import Plan
from optimizer.planner import optimize
from optimizer.scenario import Objective, Scenario, SolverName, Stage

logger = logging.getLogger(__name__)

#: Objective values are held in whole units of ``1 / OBJECTIVE_SCALE``.
OBJECTIVE_SCALE = 10_000

#: Changes applied together, the scenario after them, and a note on why.
_Group = tuple[tuple[InputChange, ...], Scenario, str]


@dataclass(frozen=True)
class Outcome:
    """What solving one scenario of the waterfall gave.

    ``objective`` is in units of ``1 / OBJECTIVE_SCALE`` of the new
    scenario's objective, and ``spend`` whole cents by ``stage:<stage>`` and
    ``channel:<channel_id>``; both are None when there is no plan.
    """

    status: str
    message: str
    objective: int | None
    spend: dict[str, int] | None

    @property
    def has_plan(self) -> bool:
        """Whether the scenario has a verified plan."""
        return self.objective is not None


@dataclass(frozen=True)
class Step:
    """One or more changes applied together, and the plan after them."""

    number: int
    changes: tuple[InputChange, ...]
    outcome: Outcome
    baseline: Outcome
    note: str

    @property
    def objective_delta(self) -> int | None:
        """The change since the last plan, in objective units; None without."""
        if self.outcome.objective is None or self.baseline.objective is None:
            return None
        return self.outcome.objective - self.baseline.objective


@dataclass(frozen=True)
class ChangeLog:
    """Every input change between two scenarios, and what each step moved."""

    old: Scenario
    new: Scenario
    changes: tuple[InputChange, ...]
    steps: tuple[Step, ...]
    start: Outcome
    end: Outcome

    @property
    def objective(self) -> Objective:
        """The objective every plan is measured in: the new scenario's."""
        return self.new.objective.maximize

    @property
    def total_delta(self) -> int | None:
        """The whole change, in objective units; None unless both have plans."""
        if self.start.objective is None or self.end.objective is None:
            return None
        return self.end.objective - self.start.objective

    @property
    def spend_keys(self) -> tuple[str, ...]:
        """The stage and channel columns of the waterfall."""
        channels = {c.channel_id for c in (*self.old.channels, *self.new.channels)}
        return (
            *(f"stage:{stage.value}" for stage in Stage),
            *(f"channel:{channel}" for channel in sorted(channels)),
        )

    def table(self) -> pd.DataFrame:
        """The waterfall: one row per step, then a ``total`` row.

        Objective columns are in the new objective; spend deltas in money,
        ``spend_delta_stage_<stage>`` and ``spend_delta_channel_<channel>``.
        Deltas are empty for a step without a plan.
        """
        rows = [self._row(step) for step in self.steps]
        rows.append(self._total_row())
        return pd.DataFrame(rows)

    def _row(self, step: Step) -> dict[str, object]:
        return {
            "step": str(step.number),
            "change": "; ".join(change.describe() for change in step.changes),
            "kind": ", ".join(dict.fromkeys(c.kind.value for c in step.changes)),
            "status": step.outcome.status,
            "objective_before": _objective(step.baseline.objective),
            "objective_after": _objective(step.outcome.objective),
            "objective_delta": _objective(step.objective_delta),
            **self._spend_deltas(step.baseline, step.outcome),
            "note": step.note,
        }

    def _total_row(self) -> dict[str, object]:
        return {
            "step": "total",
            "change": f"{_name(self.old)} -> {_name(self.new)}",
            "kind": "",
            "status": self.end.status,
            "objective_before": _objective(self.start.objective),
            "objective_after": _objective(self.end.objective),
            "objective_delta": _objective(self.total_delta),
            **self._spend_deltas(self.start, self.end),
            "note": "",
        }

    def _spend_deltas(self, before: Outcome, after: Outcome) -> dict[str, object]:
        deltas: dict[str, object] = {}
        for key in self.spend_keys:
            column = "spend_delta_" + key.replace(":", "_")
            if before.spend is None or after.spend is None:
                deltas[column] = float("nan")
            else:
                cents = after.spend.get(key, 0) - before.spend.get(key, 0)
                deltas[column] = cents / 100
        return deltas

    def changes_table(self) -> pd.DataFrame:
        """Every input change, one row per field, with the step that applied it."""
        step_of = {
            id(change): str(step.number)
            for step in self.steps
            for change in step.changes
        }
        rows = [
            {
                "step": step_of.get(id(change), ""),
                "kind": change.kind.value,
                "subject": change.subject,
                "action": change.action.value,
                "field": field.name,
                "old": "" if field.old is None else shown(field.old),
                "new": "" if field.new is None else shown(field.new),
                "where": change.where,
            }
            for change in self.changes
            for field in change.fields
        ]
        columns = ["step", "kind", "subject", "action", "field", "old", "new", "where"]
        return pd.DataFrame(rows, columns=columns)


def change_log(
    old: Scenario,
    new: Scenario,
    *,
    solver: SolverName | str | None = None,
    time_limit: float | None = None,
) -> ChangeLog:
    """Explain the difference between two scenarios' plans, change by change.

    Parameters
    ----------
    old, new
        The previous and the current version of a scenario.
    solver, time_limit
        For every solve; default to the new scenario's ``[solver]``.

    Returns
    -------
    ChangeLog
        The changes, the steps that applied them and each step's plan.
    """
    settings = new.solver
    solve = _Solver(
        objective=new.objective.maximize,
        solver=SolverName(solver) if solver is not None else settings.name,
        time_limit=time_limit if time_limit is not None else settings.time_limit,
    )
    changes = input_changes(old, new)
    moving = [change for change in changes if change.affects_plan]
    start = solve(old)
    plans = _sequence(old, new, moving)
    steps = []
    baseline = start
    for number, (group, scenario, why) in enumerate(plans, 1):
        outcome = solve(scenario)
        note = why if outcome.has_plan else _join(why, f"no plan: {outcome.message}")
        steps.append(Step(number, group, outcome, baseline, note))
        baseline = outcome if outcome.has_plan else baseline
    end = steps[-1].outcome if steps else solve(new)
    logger.info("change log: %d changes in %d steps", len(changes), len(steps))
    return ChangeLog(old, new, changes, tuple(steps), start, end)


def _sequence(
    old: Scenario, new: Scenario, changes: Sequence[InputChange]
) -> list[_Group]:
    """The groups of changes to apply, each with its scenario and a note.

    The last group's scenario is the new scenario itself, so that the
    waterfall ends exactly at the new plan.
    """
    if not changes:
        return []
    if any(change.kind is ChangeKind.HORIZON for change in changes):
        note = (
            "the horizons differ, so the months of one version do not exist in "
            "the other: all changes are applied at once"
        )
        return [(tuple(changes), new, note)]

    groups: list[_Group] = []
    applied: list[InputChange] = []
    pending: list[tuple[InputChange, str]] = []
    for change in changes:
        scenario, problem = _try(old, [*applied, change])
        if scenario is None:
            pending.append((change, problem))
            continue
        applied.append(change)
        groups.append(((change,), scenario, ""))
        groups += _retry(old, applied, pending, after=change)
    if pending:
        rest = tuple(change for change, _ in pending)
        groups.append((rest, new, "applied together: none of these stands alone"))
    last_group, _, last_note = groups[-1]
    groups[-1] = (last_group, new, last_note)
    return groups


def _retry(
    old: Scenario,
    applied: list[InputChange],
    pending: list[tuple[InputChange, str]],
    *,
    after: InputChange,
) -> list[_Group]:
    """Postponed changes that the changes applied so far let stand."""
    groups: list[_Group] = []
    progress = True
    while progress:
        progress = False
        for item in list(pending):
            change, problem = item
            scenario, _ = _try(old, [*applied, change])
            if scenario is None:
                continue
            pending.remove(item)
            applied.append(change)
            note = (
                f"postponed until after {after.subject}; alone it was invalid: "
                f"{problem.rstrip('.')}"
            )
            groups.append(((change,), scenario, note))
            progress = True
    return groups


def _try(
    old: Scenario, changes: Sequence[InputChange]
) -> tuple[Scenario, str] | tuple[None, str]:
    try:
        return apply_changes(old, changes), ""
    except ValidationError as error:
        first = str(error.errors()[0]["msg"]).splitlines()[0]
        return None, first.removeprefix("Value error, ")


@dataclass(frozen=True)
class _Solver:
    objective: Objective
    solver: SolverName
    time_limit: float

    def __call__(self, scenario: Scenario) -> Outcome:
        try:
            plan = optimize(scenario, solver=self.solver, time_limit=self.time_limit)
        except InfeasibleScenarioError as error:
            reason = error.reasons[0] if error.reasons else str(error)
            return Outcome("infeasible", reason, None, None)
        except SolverError as error:
            return Outcome("solver failure", str(error), None, None)
        value = float(plan.allocation[self.objective.value].sum())
        frame = plan.allocation[["stage", "channel_id"]].assign(cents=plan.spend_cents)
        spend = {
            f"stage:{stage}": int(cents)
            for stage, cents in frame.groupby("stage")["cents"].sum().items()
        }
        spend |= {
            f"channel:{channel}": int(cents)
            for channel, cents in frame.groupby("channel_id")["cents"].sum().items()
        }
        return Outcome("optimal", "", round(value * OBJECTIVE_SCALE), spend)


def _objective(units: int | None) -> float:
    return float("nan") if units is None else units / OBJECTIVE_SCALE


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


def _name(scenario: Scenario) -> str:
    return str(scenario.source) if scenario.source else scenario.plan.name or "scenario"


# --- files and text -----------------------------------------------------------------


def write_change_log(
    log: ChangeLog, destination: str | Path, *, plan: Plan | None = None
) -> Path:
    """Write ``changelog.csv`` (the waterfall) and ``changes.csv``, all or nothing.

    Given the new version's plan, ``report.html`` reports it with the change
    log as a section.
    """
    destination = Path(destination)
    with staged_folder(destination) as folder:
        write_csv(changelog_frame(log), folder / "changelog.csv")
        write_csv(log.changes_table(), folder / "changes.csv")
        if plan is not None:
            # matplotlib takes 0.3 s to import; only the page needs it.
            from optimizer.html_report import write_html_report  # noqa: PLC0415

            write_html_report(folder / "report.html", plan, changelog=log.table())
    return destination


def changelog_frame(log: ChangeLog) -> pd.DataFrame:
    """The waterfall with every number as fixed text: 4 decimals, spend 2."""
    table = log.table()
    for column in table.columns:
        if column.startswith("objective_"):
            table[column] = [_fixed(value, 4) for value in table[column]]
        elif column.startswith("spend_delta_"):
            table[column] = [_fixed(value, 2) for value in table[column]]
    return table


def _fixed(value: float, places: int) -> str:
    if pd.isna(value):
        return ""
    return f"{round(value, places) + 0.0:.{places}f}"


def change_log_text(log: ChangeLog) -> str:
    """The change log for a console: the changes, the steps and the total."""
    objective = log.objective.value.replace("_", " ")
    lines = [
        f"change log: {_name(log.old)} -> {_name(log.new)}",
        f"{_count(len(log.changes), 'input change')}; each plan is measured in "
        f"{objective}",
        f"old plan: {_outcome_text(log.start)}",
    ]
    if log.steps:
        lines.append("changes applied one at a time:")
    for step in log.steps:
        lines += _step_text(log, step)
    lines.append(f"new plan: {_outcome_text(log.end)}")
    if log.total_delta is not None:
        lines.append(
            f"total change: {_signed(log.total_delta / OBJECTIVE_SCALE)} of {objective}"
        )
    reporting = [change for change in log.changes if not change.affects_plan]
    if reporting:
        lines.append("not applied (they do not move the allocation):")
        lines += [f"  {change.describe()}" for change in reporting]
    return "\n".join(lines) + "\n"


def _step_text(log: ChangeLog, step: Step) -> list[str]:
    objective = log.objective.value.replace("_", " ")
    delta = step.objective_delta
    effect = (
        f"{_signed(delta / OBJECTIVE_SCALE)} of {objective}"
        if delta is not None
        else step.outcome.status
    )
    lines = [f"  {step.number}. {step.changes[0].describe()}: {effect}"]
    lines += [f"     with {change.describe()}" for change in step.changes[1:]]
    moves = _largest_moves(step)
    if moves:
        lines.append(f"     spend: {moves}")
    if step.note:
        lines.append(f"     ({step.note})")
    return lines


def _largest_moves(step: Step, count: int = 3) -> str:
    before, after = step.baseline.spend, step.outcome.spend
    if before is None or after is None:
        return ""
    moves = [
        (key.removeprefix("channel:"), after.get(key, 0) - before.get(key, 0))
        for key in sorted({*before, *after})
        if key.startswith("channel:")
    ]
    moves = [move for move in moves if move[1] != 0]
    moves.sort(key=lambda move: (-abs(move[1]), move[0]))
    return ", ".join(f"{name} {_signed(cents / 100)}" for name, cents in moves[:count])


def _outcome_text(outcome: Outcome) -> str:
    if outcome.objective is None:
        return f"{outcome.status}: {outcome.message}"
    return f"{outcome.objective / OBJECTIVE_SCALE:,.2f}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _signed(value: float) -> str:
    return f"{value:+,.2f}"
