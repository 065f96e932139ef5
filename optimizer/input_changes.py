"""What changed between two versions of a scenario, input by input.

:func:`input_changes` compares an old and a new scenario and returns one
:class:`InputChange` per changed setting, rule or table row, with every field
that moved and its old and new value. Rows are matched by their ids: segments
by ``segment_id``, channels by ``channel_id``, responses by their cell (a
cell's points travel with it), seasonality rows by month, channel and
segment. Rules are matched by their subject (``channel linkedin``), in file
order when one subject has several.

Changes come in the order the change log applies them (the reasons are in
:mod:`optimizer.changelog`); within a kind, removals come first, then changes,
then additions:

1. the horizon (``[plan]`` start and months);
2. the budget;
3. the objective;
4. the ``[curves]`` and ``[sales_cycle]`` settings;
5. the rules (``[[constraints]]``);
6. the other planning rules: every further field of the scenario, such as
   segmentation, overlap groups, holdouts, suppressions, minimum viable
   spend and what-if adjustments, one change per field;
7. channels;
8. segments: value model, stage and tags;
9. responses with their points;
10. seasonality rows;
11. what cannot move the allocation, listed but never applied: the plan's
    name and currency, ``[solver]``, ``[bids]``, thresholds and ``[quality]``.

:func:`apply_changes` builds the scenario with some of the changes applied,
validated like any scenario.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from optimizer.scenario import (
    ConstraintRule,
    CurvePoint,
    Response,
    Row,
    Scenario,
    Seasonality,
)

#: Scenario fields that never change the allocation.
REPORTING_FIELDS = ("solver", "bids", "thresholds", "quality")

#: Scenario fields with a comparison of their own (the rest are compared whole).
_OWN_COMPARISON = (
    "plan",
    "budget",
    "objective",
    "curves",
    "sales_cycle",
    "constraints",
    "channels",
    "segments",
    "responses",
    "points",
    "seasonality",
    *REPORTING_FIELDS,
)
_NOT_INPUTS = ("source", "input_hashes")
_HORIZON_FIELDS = ("start", "months")

#: Longest rendering of a compound value (a list of rules, a table).
MAX_SHOWN = 120


class ChangeKind(StrEnum):
    """What part of the scenario changed, in the order changes are applied."""

    HORIZON = "horizon"
    BUDGET = "budget"
    OBJECTIVE = "objective"
    SETTINGS = "settings"
    RULE = "rule"
    PLANNING_RULES = "planning rules"
    CHANNEL = "channel"
    SEGMENT = "segment"
    RESPONSE = "response"
    SEASONALITY = "seasonality"
    REPORTING = "reporting"


class Action(StrEnum):
    """Whether an input is new, gone or different."""

    REMOVED = "removed"
    CHANGED = "changed"
    ADDED = "added"


@dataclass(frozen=True)
class FieldChange:
    """One field's old and new value (None where the input does not exist).

    ``relative`` is how far a number moved as a share of its old value
    (infinite from zero); None for a change that is not a number's.
    """

    name: str
    old: Any
    new: Any
    relative: float | None = None

    def describe(self) -> str:
        """``cpc 22.09 -> 24.3 (+10%)``; ``max 120,000`` for a new value alone."""
        if self.old is None:
            return f"{self.name} {shown(self.new)}"
        if self.new is None:
            return f"{self.name} {shown(self.old)} -> (none)"
        move = ""
        if self.relative is not None and math.isfinite(self.relative):
            if _is_number(self.old) and _is_number(self.new):
                sign = "+" if self.new >= self.old else "-"
                move = f" ({sign}{self.relative:.0%})"
            else:
                move = f" (moved {self.relative:.0%})"
        return f"{self.name} {shown(self.old)} -> {shown(self.new)}{move}"


@dataclass(frozen=True)
class Update:
    """How a change rewrites one field of a scenario.

    With a ``key``, the items of the field whose key equals ``match`` are
    replaced by ``new`` (a tuple of items, put where the first one was);
    without, ``new`` replaces the whole field.
    """

    field: str
    new: Any
    key: Callable[[Any], Hashable] | None = None
    match: Hashable = None

    def apply(self, current: Any) -> Any:
        """The field's new value, given its current one."""
        if self.key is None:
            return self.new
        kept: list[Any] = []
        position: int | None = None
        for item in current:
            if self.key(item) == self.match:
                position = len(kept) if position is None else position
            else:
                kept.append(item)
        at = len(kept) if position is None else position
        return (*kept[:at], *self.new, *kept[at:])


@dataclass(frozen=True)
class InputChange:
    """One setting, rule or row that differs between two scenarios."""

    kind: ChangeKind
    subject: str
    action: Action
    fields: tuple[FieldChange, ...]
    where: str
    updates: tuple[Update, ...] = field(repr=False, compare=False)

    @property
    def affects_plan(self) -> bool:
        """Whether applying it can move the allocation."""
        return self.kind is not ChangeKind.REPORTING

    def describe(self, *, max_fields: int = 4) -> str:
        """``segment x changed: win_rate 0.2 -> 0.26 (+30%)``.

        An added or removed input lists its values.
        """
        shown_fields = [_value_text(f, self.action) for f in self.fields[:max_fields]]
        hidden = len(self.fields) - max_fields
        if hidden > 0:
            shown_fields.append(f"{hidden} more")
        details = f": {', '.join(shown_fields)}" if shown_fields else ""
        return f"{self.subject} {self.action}{details}"


def _value_text(change: FieldChange, action: Action) -> str:
    if action is Action.REMOVED:
        return f"{change.name} {shown(change.old)}"
    return change.describe()


def input_changes(old: Scenario, new: Scenario) -> tuple[InputChange, ...]:
    """Every difference between two scenarios, in the order of application.

    Parameters
    ----------
    old, new
        Two versions of a scenario.

    Returns
    -------
    tuple of InputChange
        One change per setting, rule or row that differs; empty when the
        scenarios hold the same inputs.
    """
    changes = [*_horizon(old, new)]
    changes += _section(old, new, "budget", ChangeKind.BUDGET)
    changes += _section(old, new, "objective", ChangeKind.OBJECTIVE)
    changes += _section(old, new, "curves", ChangeKind.SETTINGS)
    changes += _section(old, new, "sales_cycle", ChangeKind.SETTINGS)
    changes += _rules(old, new)
    changes += [
        change
        for name in _other_fields()
        for change in _section(old, new, name, ChangeKind.PLANNING_RULES)
    ]
    changes += _rows(
        old.channels,
        new.channels,
        key=_channel_key,
        kind=ChangeKind.CHANNEL,
        table="channels",
        identity=("channel_id",),
    )
    changes += _rows(
        old.segments,
        new.segments,
        key=_segment_key,
        kind=ChangeKind.SEGMENT,
        table="segments",
        identity=("segment_id",),
    )
    changes += _cells(old, new)
    changes += _seasonality(old, new)
    changes += _reporting(old, new)
    return tuple(changes)


def apply_changes(scenario: Scenario, changes: Iterable[InputChange]) -> Scenario:
    """The scenario with the changes applied, in order, and validated.

    Raises
    ------
    pydantic.ValidationError
        When the result is not a valid scenario, for example a rule that
        names a segment another change has yet to add.
    """
    values: dict[str, Any] = {}
    for change in changes:
        for update in change.updates:
            current = values.get(update.field, getattr(scenario, update.field))
            values[update.field] = update.apply(current)
    return scenario.replace(**values)


# --- settings -------------------------------------------------------------------


def _horizon(old: Scenario, new: Scenario) -> list[InputChange]:
    before, after = old.plan.model_dump(), new.plan.model_dump()
    fields = _field_changes(before, after)
    if not fields:
        return []
    moved = any(name in _HORIZON_FIELDS for name in (f.name for f in fields))
    kind = ChangeKind.HORIZON if moved else ChangeKind.REPORTING
    update = Update("plan", new.plan)
    return [
        InputChange(
            kind, "[plan]", Action.CHANGED, fields, _at(new, "[plan]"), (update,)
        )
    ]


def _section(
    old: Scenario, new: Scenario, name: str, kind: ChangeKind
) -> list[InputChange]:
    before, after = _dump(getattr(old, name)), _dump(getattr(new, name))
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        fields = _field_changes(before, after)
        subject = f"[{name}]"
    else:
        fields = (FieldChange(name, _compact(before), _compact(after)),)
        subject = f"[[{name}]]" if isinstance(after, list) else f"[{name}]"
    update = Update(name, getattr(new, name))
    return [
        InputChange(kind, subject, Action.CHANGED, fields, _at(new, subject), (update,))
    ]


def _other_fields() -> list[str]:
    return [
        name
        for name in Scenario.model_fields
        if name not in _OWN_COMPARISON and name not in _NOT_INPUTS
    ]


def _reporting(old: Scenario, new: Scenario) -> list[InputChange]:
    return [
        change
        for name in REPORTING_FIELDS
        if name in Scenario.model_fields
        for change in _section(old, new, name, ChangeKind.REPORTING)
    ]


# --- rules ------------------------------------------------------------------------


def _rules(old: Scenario, new: Scenario) -> list[InputChange]:
    """Rules paired by subject, in file order within a subject."""
    before, after = _by_subject(old.constraints), _by_subject(new.constraints)
    changes = []
    for subject in [*after, *(s for s in before if s not in after)]:
        old_rules, new_rules = before.get(subject, []), after.get(subject, [])
        for index in range(max(len(old_rules), len(new_rules))):
            change = _rule_change(
                old,
                new,
                old_rules[index] if index < len(old_rules) else None,
                new_rules[index] if index < len(new_rules) else None,
            )
            if change is not None:
                changes.append(change)
    return _removed_changed_added(changes)


def _removed_changed_added(changes: list[InputChange]) -> list[InputChange]:
    order = (Action.REMOVED, Action.CHANGED, Action.ADDED)
    return sorted(changes, key=lambda change: order.index(change.action))


def _by_subject(
    rules: Sequence[ConstraintRule],
) -> dict[str, list[tuple[int, ConstraintRule]]]:
    grouped: dict[str, list[tuple[int, ConstraintRule]]] = defaultdict(list)
    for index, rule in enumerate(rules):
        grouped[rule.label].append((index, rule))
    return grouped


def _rule_change(
    old: Scenario,
    new: Scenario,
    before: tuple[int, ConstraintRule] | None,
    after: tuple[int, ConstraintRule] | None,
) -> InputChange | None:
    old_rule = before[1] if before else None
    new_rule = after[1] if after else None
    fields = _field_changes(
        _row_values(old_rule, _RULE_SUBJECT), _row_values(new_rule, _RULE_SUBJECT)
    )
    if not fields:
        return None
    located = after if after else before
    assert located is not None  # one side exists, or nothing would differ
    scenario = new if after else old
    index, rule = located
    update = Update(
        "constraints",
        (new_rule,) if new_rule else (),
        key=_rule_key,
        match=_rule_key(old_rule) if old_rule else None,
    )
    return InputChange(
        ChangeKind.RULE,
        f"rule {rule.label}",
        _action(old_rule, new_rule),
        fields,
        _at(scenario, f"[[constraints]] entry {index + 1}"),
        (update,),
    )


#: Fields that make up a rule's subject, named by the change itself.
_RULE_SUBJECT = ("scope", "id", "where")


def _rule_key(rule: ConstraintRule) -> str:
    return json.dumps(_dump(rule), sort_keys=True, default=str)


# --- table rows ---------------------------------------------------------------------


def _channel_key(row: Any) -> Hashable:
    return str(row.channel_id)


def _segment_key(row: Any) -> Hashable:
    return str(row.segment_id)


def _cell_key(row: Response | CurvePoint) -> Hashable:
    return f"{row.segment_id}/{row.channel_id}"


def _seasonality_key(row: Seasonality) -> Hashable:
    return (row.month, row.channel_id, row.segment_id)


def _rows(
    old_rows: Sequence[Row],
    new_rows: Sequence[Row],
    *,
    key: Callable[[Any], Hashable],
    kind: ChangeKind,
    table: str,
    identity: tuple[str, ...],
    subject: Callable[[Any], str] | None = None,
    neutral: float | None = None,
) -> list[InputChange]:
    """Rows matched by key; ``neutral`` stands for the numbers of a missing row."""
    before = {key(row): row for row in old_rows}
    after = {key(row): row for row in new_rows}
    changes = []
    for item in [*after, *(k for k in before if k not in after)]:
        old_row, new_row = before.get(item), after.get(item)
        fields = _field_changes(
            _row_values(old_row, identity),
            _row_values(new_row, identity),
            neutral=neutral,
        )
        if not fields:
            continue
        name = subject(item) if subject is not None else f"{kind} {item}"
        changes.append(
            InputChange(
                kind,
                name,
                _action(old_row, new_row),
                fields,
                _row_at(new_row or old_row, name),
                (Update(table, (new_row,) if new_row else (), key=key, match=item),),
            )
        )
    return _removed_changed_added(changes)


def _cells(old: Scenario, new: Scenario) -> list[InputChange]:
    """Responses, each with the points of its cell."""
    changes = _rows(
        old.responses,
        new.responses,
        key=_cell_key,
        kind=ChangeKind.RESPONSE,
        table="responses",
        identity=("segment_id", "channel_id"),
    )
    by_cell = {str(change.updates[0].match): change for change in changes}
    old_points, new_points = _points(old), _points(new)
    # A cell whose response row is the same may still have new points.
    responses = {response.cell_id: response for response in new.responses}
    for cell in [*new_points, *(c for c in old_points if c not in new_points)]:
        before, after = old_points.get(cell, ()), new_points.get(cell, ())
        if cell in by_cell or _points_text(before) == _points_text(after):
            continue
        subject = f"response {cell}"
        where = _row_at(responses.get(cell), subject)
        by_cell[cell] = InputChange(
            ChangeKind.RESPONSE, subject, Action.CHANGED, (), where, ()
        )
    return _removed_changed_added(
        [
            _with_points(change, cell, old_points, new_points)
            for cell, change in by_cell.items()
        ]
    )


def _points(scenario: Scenario) -> dict[str, tuple[CurvePoint, ...]]:
    grouped: dict[str, list[CurvePoint]] = defaultdict(list)
    for point in scenario.points:
        grouped[str(_cell_key(point))].append(point)
    return {
        cell: tuple(sorted(points, key=lambda p: p.spend))
        for cell, points in grouped.items()
    }


def _with_points(
    change: InputChange,
    cell: str,
    old_points: dict[str, tuple[CurvePoint, ...]],
    new_points: dict[str, tuple[CurvePoint, ...]],
) -> InputChange:
    before, after = old_points.get(cell, ()), new_points.get(cell, ())
    fields = change.fields
    if _points_text(before) != _points_text(after):
        fields = (
            *fields,
            FieldChange(
                "points",
                _points_text(before) or None,
                _points_text(after) or None,
                _curve_shift(before, after),
            ),
        )
    update = Update("points", after, key=_cell_key, match=cell)
    return InputChange(
        change.kind,
        change.subject,
        change.action,
        fields,
        change.where,
        (*change.updates, update),
    )


def _points_text(points: Sequence[CurvePoint]) -> str:
    return ", ".join(f"{shown(p.spend)}: {shown(p.conversions)}" for p in points)


def _curve_shift(
    before: Sequence[CurvePoint], after: Sequence[CurvePoint]
) -> float | None:
    """How far a points curve moved: the larger of its change in reach (the
    last spend) and in conversions at the same spend, as shares."""
    if not before or not after:
        return None
    old_spend = np.array([0.0, *(p.spend for p in before)])
    old_conv = np.array([0.0, *(p.conversions for p in before)])
    new_spend = np.array([0.0, *(p.spend for p in after)])
    new_conv = np.array([0.0, *(p.conversions for p in after)])
    reach = abs(new_spend[-1] - old_spend[-1]) / old_spend[-1]
    top = min(old_spend[-1], new_spend[-1])
    spends = np.union1d(old_spend, new_spend)
    spends = spends[(spends > 0) & (spends <= top)]
    was = np.interp(spends, old_spend, old_conv)
    now = np.interp(spends, new_spend, new_conv)
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = np.where(was > 0, np.abs(now - was) / was, np.where(now > 0, np.inf, 0))
    return float(max(reach, float(moved.max(initial=0.0))))


def _seasonality(old: Scenario, new: Scenario) -> list[InputChange]:
    """Seasonality rows; a missing row counts as multipliers of 1."""
    return _rows(
        old.seasonality,
        new.seasonality,
        key=_seasonality_key,
        kind=ChangeKind.SEASONALITY,
        table="seasonality",
        identity=("month", "channel_id", "segment_id"),
        subject=_seasonality_subject,
        neutral=1.0,
    )


def _seasonality_subject(key: tuple[str, str | None, str | None]) -> str:
    month, channel, segment = key
    scope = ", ".join(
        f"{kind} {value}"
        for kind, value in (("channel", channel), ("segment", segment))
        if value is not None
    )
    return f"seasonality {month} ({scope or 'all cells'})"


# --- values ---------------------------------------------------------------------


def _action(before: object | None, after: object | None) -> Action:
    if before is None:
        return Action.ADDED
    if after is None:
        return Action.REMOVED
    return Action.CHANGED


def _dump(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_dump(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def _row_values(row: Any, identity: tuple[str, ...]) -> dict[str, Any]:
    """A row's or rule's fields that hold a value, less those of its identity
    (which the change's subject names); none for a missing row."""
    if row is None:
        return {}
    return {
        k: v
        for k, v in _dump(row).items()
        if v is not None and v != "" and k not in identity
    }


def _field_changes(
    before: dict[str, Any], after: dict[str, Any], *, neutral: float | None = None
) -> tuple[FieldChange, ...]:
    names = [*after, *(name for name in before if name not in after)]
    changes = []
    for name in names:
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        relative = _relative(
            neutral if old is None else old, neutral if new is None else new
        )
        if isinstance(old, dict | list) or isinstance(new, dict | list):
            old, new = _compact(old), _compact(new)
        changes.append(FieldChange(name, old, new, relative))
    return tuple(changes)


def _relative(old: Any, new: Any) -> float | None:
    if not (_is_number(old) and _is_number(new)):
        return None
    if old == 0:
        return 0.0 if new == 0 else math.inf
    return float(abs(new - old) / abs(old))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """A value as a change log writes it."""
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, StrEnum):
        return value.value
    if _is_number(value):
        return f"{value:,.10g}"
    return str(value)


def _compact(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, default=str, separators=(", ", ": "))
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _at(scenario: Scenario, section: str) -> str:
    return f"{scenario.source}, {section}" if scenario.source else section


def _row_at(row: Row | None, fallback: str) -> str:
    if row is not None and row.origin is not None:
        return str(row.origin)
    return fallback
