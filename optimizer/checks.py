"""Checks across tables, and the arithmetic of infeasibility before solving.

:func:`structure_problems` finds what a single row cannot know: duplicate ids,
references to unknown segments or channels, points curves that are not
concave, rules that contradict themselves. :class:`~optimizer.scenario.Scenario`
runs it on construction, so a scenario that exists has passed it.

:func:`feasibility_problems` does the sums planners get wrong (minimums above
the budget, fixed amounts above what volume allows, an exact budget the
maximums cannot absorb) and says them in business words with the amounts.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from optimizer.scenario import TAG_SCOPES, CurveKind, Scope, SpendRule, Stage

if TYPE_CHECKING:
    from optimizer.scenario import (
        ConstraintRule,
        CurvePoint,
        Holdout,
        Row,
        Scenario,
        Suppression,
    )

FloatArray = npt.NDArray[np.float64]

#: Relative slack allowed when comparing slopes of measured points.
SLOPE_TOLERANCE = 1e-9


def where(row: Row, fallback: str) -> str:
    """A row's file and row number, or a description when built in Python."""
    return str(row.origin) if row.origin is not None else fallback


def structure_problems(scenario: Scenario) -> list[str]:
    """Every cross-table problem of a scenario, one sentence each."""
    problems: list[str] = []
    problems += _duplicates(
        scenario.segments, lambda s: s.segment_id, "field 'segment_id'", "segment"
    )
    problems += _duplicates(
        scenario.channels, lambda c: c.channel_id, "field 'channel_id'", "channel"
    )
    problems += _duplicates(
        scenario.responses,
        lambda r: r.cell_id,
        "fields 'segment_id', 'channel_id'",
        "cell",
    )
    problems += _references(scenario)
    problems += _points(scenario)
    problems += _seasonality(scenario)
    problems += _adjustments(scenario)
    for index, rule in enumerate(scenario.constraints):
        problems += _rule(scenario, index, rule)
    problems += _hierarchy(scenario)
    problems += _governance(scenario)
    return problems


def _hierarchy(scenario: Scenario) -> list[str]:
    """Declared tag values are used as declared; no path is defined twice.

    A segment's path runs market, account tier, audience, persona, intent,
    offer. Lifecycle is a segment type of its own, so two segments may share
    a path when their lifecycle differs.
    """
    problems = []
    declared = scenario.segmentation.values
    for segment in scenario.segments:
        for tag, allowed in declared.items():
            value = getattr(segment, tag)
            if value is not None and value not in allowed:
                problems.append(
                    f"{where(segment, f'segment {segment.segment_id}')}, field "
                    f"'{tag}': got {value!r}; expected one of the declared values "
                    f"{', '.join(allowed)}{did_you_mean(value, allowed)}."
                )
    seen: dict[tuple[str | None, ...], Row] = {}
    for segment in scenario.segments:
        if not any(segment.path):
            continue
        key = (*segment.path, segment.lifecycle)
        if key in seen:
            path = "/".join(value or "-" for value in segment.path)
            problems.append(
                f"{where(segment, f'segment {segment.segment_id}')}: the path "
                f"{path} (lifecycle {segment.lifecycle or '-'}) is already defined "
                f"by {where(seen[key], 'another segment')}; expected each path once."
            )
        seen[key] = segment
    return problems


def _governance(scenario: Scenario) -> list[str]:
    """Overlap groups, holdouts and suppressions name what the scenario has."""
    segments = {s.segment_id: s for s in scenario.segments}
    channels = {c.channel_id for c in scenario.channels}
    problems = []
    if scenario.overlap_groups and scenario.segmentation.overlap == "exclusive":
        problems.append(
            "[[overlap_groups]]: got overlap groups in a scenario whose segments "
            "are declared exclusive; expected [segmentation] overlap = "
            "'overlapping'."
        )
    for group in scenario.overlap_groups:
        at = f"[[overlap_groups]] {group.id}"
        for segment_id in group.segments:
            if segment_id not in segments:
                problems.append(
                    f"{at}, field 'segments': got {segment_id!r}; expected a "
                    f"segment_id{did_you_mean(segment_id, segments)}."
                )
        for response in scenario.responses:
            if response.segment_id in group.segments and response.cpc is None:
                problems.append(
                    f"{at}: cell {response.cell_id} has no cpc, so its clicks are "
                    "unknown; expected a cpc in the responses table for every "
                    "cell of an overlap group."
                )
    treatments: tuple[tuple[str, Sequence[Holdout | Suppression]], ...] = (
        ("holdouts", scenario.holdouts),
        ("suppressions", scenario.suppressions),
    )
    for kind, rules in treatments:
        for index, rule in enumerate(rules):
            at = f"[[{kind}]] entry {index + 1}"
            matched = [s for s in scenario.segments if s.matches(rule.where)]
            if not matched:
                problems.append(
                    f"{at}, field 'where': got {rule.where}; expected conditions "
                    "that at least one segment meets."
                )
            for channel in getattr(rule, "channels", ()):
                if channel not in channels:
                    problems.append(
                        f"{at}, field 'channels': got {channel!r}; expected a "
                        f"channel_id{did_you_mean(channel, channels)}."
                    )
    return problems


def _duplicates(
    rows: Iterable[Row], key: Callable[[Any], str], fields: str, what: str
) -> list[str]:
    seen: dict[str, Row] = {}
    problems = []
    for row in rows:
        value = key(row)
        if value in seen:
            first = where(seen[value], f"the first {what}")
            problems.append(
                f"{where(row, f'a {what}')}, {fields}: got {value!r} again (first "
                f"defined at {first}); expected each {what} once."
            )
        else:
            seen[value] = row
    return problems


def _references(scenario: Scenario) -> list[str]:
    segments = sorted(s.segment_id for s in scenario.segments)
    channels = sorted(c.channel_id for c in scenario.channels)
    problems = []
    for response in scenario.responses:
        at = where(response, f"response {response.cell_id}")
        if response.segment_id not in segments:
            problems.append(
                f"{at}, field 'segment_id': got {response.segment_id!r}; expected a "
                "segment_id defined in the segments table"
                f"{did_you_mean(response.segment_id, segments)}."
            )
        if response.channel_id not in channels:
            problems.append(
                f"{at}, field 'channel_id': got {response.channel_id!r}; expected a "
                "channel_id defined in the channels table"
                f"{did_you_mean(response.channel_id, channels)}."
            )
    return problems


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the one close choice, or nothing.

    Case is ignored, and only a close match counts: a guess at a distant
    name would mislead more than it helps.
    """
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.75)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


def _points(scenario: Scenario) -> list[str]:
    curves = {r.cell_id: r.curve for r in scenario.responses}
    by_cell = defaultdict(list)
    problems = []
    for point in scenario.points:
        cell = f"{point.segment_id}/{point.channel_id}"
        if curves.get(cell) is not CurveKind.POINTS:
            kind = (
                "no row in the responses table"
                if cell not in curves
                else f"a '{curves[cell]}' curve"
            )
            problems.append(
                f"{where(point, f'a point of {cell}')}, fields 'segment_id', "
                f"'channel_id': got {cell!r}, a cell with {kind}; expected a cell "
                "whose curve is 'points' in the responses table."
            )
            continue
        by_cell[cell].append(point)

    for response in scenario.responses:
        if response.curve is CurveKind.POINTS and response.cell_id not in by_cell:
            table = "has no rows" if scenario.points else "is not given"
            problems.append(
                f"{where(response, f'response {response.cell_id}')}, field 'curve': "
                f"got 'points', but the points table {table} for cell "
                f"{response.cell_id}; expected at least one spend, conversions row "
                "for the cell in the points table."
            )
    for cell, points in by_cell.items():
        problems += _curve_shape(cell, points, scenario.curves.concave_hull)
    return problems


def _curve_shape(cell: str, points: list[CurvePoint], concave_hull: bool) -> list[str]:
    points = sorted(points, key=lambda p: p.spend)
    previous_slope = np.inf
    previous = None
    spend, conversions = 0.0, 0.0
    for point in points:
        at = where(point, f"a point of {cell}")
        before = "" if previous is None else f" ({where(previous, 'a point')})"
        if point.spend == spend:
            return [
                f"{at}, field 'spend': got '{point.spend:g}' again for cell {cell}"
                f"{before}; expected each spend once per cell."
            ]
        if point.conversions < conversions:
            return [
                f"{at}, field 'conversions': got '{point.conversions:g}' at spend "
                f"{point.spend:g}, below the {conversions:g} at spend {spend:g}"
                f"{before} for cell {cell}; expected conversions that never fall "
                "as spend rises."
            ]
        slope = (point.conversions - conversions) / (point.spend - spend)
        rises = slope > previous_slope * (1 + SLOPE_TOLERANCE) + 1e-15
        if rises and previous is not None and not concave_hull:
            # The curve bends up at the previous breakpoint: name that one.
            return [
                f"{where(previous, f'a point of {cell}')}, field 'conversions': got "
                f"'{previous.conversions:g}' at spend {previous.spend:g}, where the "
                f"curve of cell {cell} is not concave: the slope rises from "
                f"{previous_slope:.6g} before this breakpoint to {slope:.6g} "
                f"conversions per unit of spend after it (to spend "
                f"{point.spend:g}); expected a concave curve, whose slope never "
                "rises: fix the points, or set [curves] concave_hull = true to use "
                "their concave hull."
            ]
        previous_slope, spend, conversions = slope, point.spend, point.conversions
        previous = point
    return []


def _adjustments(scenario: Scenario) -> list[str]:
    """What-if adjustments must name ids and months of the scenario."""
    known = {
        "channel_id": {c.channel_id for c in scenario.channels},
        "segment_id": {s.segment_id for s in scenario.segments},
        "month": set(scenario.plan.month_labels),
    }
    problems = []
    for adjustment in scenario.adjustments:
        for field, ids in known.items():
            value = getattr(adjustment, field)
            if value is not None and value not in ids:
                problems.append(
                    f"adjustment of {adjustment.label}, field '{field}': got "
                    f"{value!r}; expected one of the scenario's {field} values, "
                    "or none for all."
                )
    return problems


def _seasonality(scenario: Scenario) -> list[str]:
    labels = scenario.plan.month_labels
    months = set(labels)
    segments = sorted(s.segment_id for s in scenario.segments)
    channels = sorted(c.channel_id for c in scenario.channels)
    horizon = labels[0] if len(labels) == 1 else f"{labels[0]} to {labels[-1]}"
    problems = []
    seen: dict[tuple[str, str | None, str | None], Row] = {}
    for row in scenario.seasonality:
        at = where(row, f"seasonality {row.month}")
        if row.month not in months:
            problems.append(
                f"{at}, field 'month': got {row.month!r}; expected a month of the "
                f"horizon, {horizon}."
            )
        if row.segment_id is not None and row.segment_id not in segments:
            problems.append(
                f"{at}, field 'segment_id': got {row.segment_id!r}; expected a "
                "segment_id defined in the segments table, or empty for all"
                f"{did_you_mean(row.segment_id, segments)}."
            )
        if row.channel_id is not None and row.channel_id not in channels:
            problems.append(
                f"{at}, field 'channel_id': got {row.channel_id!r}; expected a "
                "channel_id defined in the channels table, or empty for all"
                f"{did_you_mean(row.channel_id, channels)}."
            )
        key = (row.month, row.channel_id, row.segment_id)
        if key in seen:
            found = ", ".join(repr(part or "") for part in key)
            problems.append(
                f"{at}, fields 'month', 'channel_id', 'segment_id': got {found} "
                f"again (first defined at {where(seen[key], 'another row')}); "
                "expected each combination once (rows for different scopes "
                "multiply)."
            )
        else:
            seen[key] = row
    return problems


def _rule(scenario: Scenario, index: int, rule: ConstraintRule) -> list[str]:
    entry = f"[[constraints]] entry {index + 1}"
    at = entry if scenario.source is None else f"{scenario.source}, {entry}"
    problems = []
    known = _scope_ids(scenario).get(rule.scope)
    if known is not None and rule.id not in known:
        choices = sorted(known)
        sample = ", ".join(choices[:6]) + (", ..." if len(choices) > 6 else "")
        # Months are numbers: a near month is not a likely typo.
        hint = "" if rule.scope is Scope.MONTH else did_you_mean(str(rule.id), choices)
        problems.append(
            f"{at}, field 'id': got {rule.id!r}; expected a {rule.scope} of the "
            f"scenario: {sample}{hint}."
        )
    if rule.scope is Scope.SEGMENTS and not any(
        segment.matches(rule.where or {}) for segment in scenario.segments
    ):
        problems.append(
            f"{at}, field 'where': got {rule.where}; expected conditions that at "
            "least one segment meets."
        )
    pairs = [
        ("min", "max"),
        ("min_share", "max_share"),
        ("min", "fixed"),
        ("fixed", "max"),
    ]
    for low, high in pairs:
        a, b = getattr(rule, low), getattr(rule, high)
        if a is not None and b is not None and a > b:
            problems.append(
                f"{at}, field '{low}': got '{a:.10g}'; expected at most the "
                f"entry's {high}, {b:.10g}."
            )
    return problems


def _scope_ids(scenario: Scenario) -> dict[Scope, set[str]]:
    tags = {
        Scope(tag): {value for s in scenario.segments if (value := getattr(s, tag))}
        for tag in TAG_SCOPES
    }
    return {
        **tags,
        Scope.CHANNEL: {c.channel_id for c in scenario.channels},
        Scope.SEGMENT: {s.segment_id for s in scenario.segments},
        Scope.STAGE: {stage.value for stage in Stage},
        Scope.CELL: {r.cell_id for r in scenario.responses},
        Scope.MONTH: set(scenario.plan.month_labels),
    }


# --- feasibility arithmetic --------------------------------------------------


def feasibility_problems(
    scenario: Scenario, capacity: Callable[[Scope, str | None], float]
) -> list[str]:
    """Conflicts between the budget, the rules and reachable volume.

    ``capacity(scope, id)`` is the most that a scope can spend over the
    horizon before its volume runs out. Only sound arithmetic is done: every
    problem reported here is a real infeasibility.
    """
    budget = scenario.budget.total
    exact = scenario.budget.spend is SpendRule.EXACT
    money = _money(scenario.plan.currency)
    problems = []

    # Rules on the same subject combine: the tightest floor and ceiling hold.
    ranges: dict[tuple[Scope, str | None], tuple[float, float, str]] = {}
    for rule in scenario.constraints:
        low, high = _range(rule, budget, exact)
        key = (rule.scope, rule.scope_id)
        before = ranges.get(key, (0.0, np.inf, rule.label))
        ranges[key] = (max(before[0], low), min(before[1], high), rule.label)

    floors: dict[Scope, float] = defaultdict(float)
    for (scope, id_), (low, high, label) in ranges.items():
        reachable = capacity(scope, id_)
        if low > budget * (1 + 1e-9):
            problems.append(
                f"{label} must get at least {money(low)}, more than the "
                f"whole budget of {money(budget)}."
            )
        elif low > reachable * (1 + 1e-9) + 1e-9:
            problems.append(
                f"{label} must get at least {money(low)}, but its cells can "
                f"spend at most {money(reachable)} before their volume runs out."
            )
        if low > high * (1 + 1e-9):
            problems.append(
                f"{label} must get at least {money(low)} but at most {money(high)}."
            )
        if scope not in (Scope.TOTAL, Scope.SEGMENTS):
            floors[scope] += low

    for scope, total in floors.items():
        if total > budget * (1 + 1e-9):
            problems.append(
                f"the {scope} minimums add up to {money(total)}, more than the "
                f"budget of {money(budget)}."
            )
    if exact:
        problems += _absorption(scenario, capacity, money)
    return problems


def _absorption(
    scenario: Scenario,
    capacity: Callable[[Scope, str | None], float],
    money: Callable[[float], str],
) -> list[str]:
    """An exact budget must fit under what the scopes of a partition can take.

    Each scope kind (channels, months, ...) splits the cells; the most the
    plan can spend is, for each part, the smaller of its reachable volume and
    its tightest maximum, summed over the parts.
    """
    budget = scenario.budget.total
    ceilings: dict[tuple[Scope, str | None], float] = {}
    for rule in scenario.constraints:
        key = (rule.scope, rule.scope_id)
        high = _range(rule, budget, True)[1]
        ceilings[key] = min(ceilings.get(key, np.inf), high)

    problems = []
    # Only scopes that split every cell into parts bound the total; a tag
    # leaves untagged segments outside its parts.
    partitions = (Scope.CHANNEL, Scope.SEGMENT, Scope.STAGE, Scope.CELL, Scope.MONTH)
    known = _scope_ids(scenario)
    scopes: dict[Scope, list[str | None]] = {Scope.TOTAL: [None]}
    scopes.update({scope: [*sorted(known[scope])] for scope in partitions})
    for scope, ids in scopes.items():
        absorbable = sum(
            float(min(capacity(scope, id_), ceilings.get((scope, id_), np.inf)))
            for id_ in ids
        )
        if absorbable < budget * (1 - 1e-9):
            limit = (
                "reachable volume absorbs"
                if scope is Scope.TOTAL
                else f"{scope} maximums and reachable volume absorb"
            )
            problems.append(
                f"the exact budget of {money(budget)} cannot all be spent: the "
                f"{limit} at most {money(absorbable)}."
            )
            break
    return problems


def rule_range(
    rule: ConstraintRule, *, min_share_base: float, max_share_base: float
) -> tuple[float, float]:
    """The least and most a rule allows its scope, in money.

    Shares are taken of the given bases: the budget when it is spent exactly;
    otherwise the actual spend, or bounds of it that keep the check sound.
    """
    low, high = 0.0, np.inf
    if rule.min is not None:
        low = max(low, rule.min)
    if rule.max is not None:
        high = min(high, rule.max)
    if rule.fixed is not None:
        low, high = max(low, rule.fixed), min(high, rule.fixed)
    if rule.min_share is not None:
        low = max(low, rule.min_share * min_share_base)
    if rule.max_share is not None:
        high = min(high, rule.max_share * max_share_base)
    return low, high


def _range(rule: ConstraintRule, budget: float, exact: bool) -> tuple[float, float]:
    # Spending up to the budget, a min_share may be met by spending nothing,
    # and a max_share of the actual spend is at most that share of the budget.
    return rule_range(
        rule, min_share_base=budget if exact else 0.0, max_share_base=budget
    )


def _money(currency: str) -> Callable[[float], str]:
    def format_money(amount: float) -> str:
        return f"{amount:,.2f} {currency}"

    return format_money
