"""Data quality and drift: what to look at before a plan goes live.

:func:`check_quality` reads a scenario (and, given one, its previous version)
and returns :class:`Finding` values; it never prints or warns. An ``error``
stops a run, a ``warning`` is reported with the plan. The checks:

* ``thresholds``: errors when a threshold names a channel the scenario does
  not have, tests a tag value outside the declared values, or watches no
  segment; a warning when it watches conversion_rate in cells without clicks.
* ``tag_values`` (warnings): a declared tag value (``[segmentation] values``)
  that no segment uses. Segments whose tags are not among the declared values
  are refused when the scenario is read.
* ``missing_values`` (warnings): an optional column of the segments or
  channels table that some rows fill and others leave empty, with the count
  and the rows. A column empty in every row is a tag the scenario does not
  use, and is not reported.
* ``volume`` (warnings): a segment whose reachable monthly clicks or monthly
  spend at saturation falls outside its stage's range in ``[quality]``
  ``volume_range`` / ``spend_range`` (no defaults: sizes depend on the
  market), or that can reach no volume at all.
* ``rates`` (warnings): a conversion_rate, opportunity_rate or win_rate far
  from its stage's typical range, ``[quality] rate_ranges``; the defaults in
  :data:`DEFAULT_RATE_RANGES` are wide, to catch a rate entered ten times too
  high or too low rather than to judge performance.
* ``drift`` (warnings), given a previous version: every input that moved by
  more than ``max_drift`` of its old value (value-model fields, response
  parameters, points curves, seasonality multipliers (a missing row counts
  as 1), the budget), every rule added, removed or changed, every segment,
  channel or response added or removed, and any change that is not a number's
  (a stage, a tag, a curve kind, the objective, the spend rule, the horizon).
  From a previous run folder only what its ``summary.json`` records can be
  compared: the budget, the objective and the SHA-256 of each input file.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
from pydantic import AfterValidator, Field, field_validator

from optimizer.errors import ScenarioError
from optimizer.thresholds import (
    GovernanceModel,
    ThresholdMetric,
    stage_names,
    where_fields,
)

if TYPE_CHECKING:
    from optimizer.input_changes import InputChange
    from optimizer.scenario import Scenario

#: Typical ranges of each rate by stage, as (low, high) shares.
DEFAULT_RATE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "conversion_rate": {
        "research": (0.001, 0.03),
        "evaluation": (0.005, 0.06),
        "decision": (0.01, 0.12),
    },
    "opportunity_rate": {
        "research": (0.01, 0.15),
        "evaluation": (0.05, 0.35),
        "decision": (0.1, 0.6),
    },
    "win_rate": {
        "research": (0.05, 0.45),
        "evaluation": (0.08, 0.5),
        "decision": (0.1, 0.6),
    },
}

#: The default share an input may move before drift is flagged.
DEFAULT_MAX_DRIFT = 0.25

#: At most this many row numbers are listed in one finding.
MAX_ROWS_SHOWN = 8


class Level(StrEnum):
    """How serious a finding is."""

    ERROR = "error"
    WARNING = "warning"


class DataQualityWarning(UserWarning):
    """A data-quality finding that does not stop a plan; it names the fix."""


class RateName(StrEnum):
    """The rates with a typical range per stage."""

    CONVERSION_RATE = "conversion_rate"
    OPPORTUNITY_RATE = "opportunity_rate"
    WIN_RATE = "win_rate"


def _stage(name: str) -> str:
    stages = stage_names()
    if name not in stages:
        raise ValueError(f"a stage: one of {', '.join(stages)}")
    return name


def _ordered(bounds: tuple[float, float]) -> tuple[float, float]:
    low, high = bounds
    if low > high:
        raise ValueError(
            f"a range [low, high] with low at most high, not {low:g} > {high:g}"
        )
    return bounds


StageName = Annotated[str, AfterValidator(_stage)]
Range = Annotated[tuple[float, float], AfterValidator(_ordered)]


class QualitySettings(GovernanceModel):
    """The ``[quality]`` table: ranges that inputs are expected to fall in."""

    volume_range: dict[StageName, Range] = Field(
        default_factory=dict,
        description=(
            "reachable clicks per month of one segment, by stage, e.g. "
            "{ research = [100, 50000] }"
        ),
    )
    spend_range: dict[StageName, Range] = Field(
        default_factory=dict,
        description=(
            "monthly spend at which one segment's curves saturate, by stage, "
            "e.g. { decision = [500, 200000] }"
        ),
    )
    rate_ranges: dict[RateName, dict[StageName, Range]] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_RANGES),
        validate_default=True,
        description=(
            "typical ranges of conversion_rate, opportunity_rate and win_rate by "
            "stage, e.g. { conversion_rate = { research = [0.001, 0.03] } }; a "
            "rate given here replaces its defaults"
        ),
    )
    max_drift: float = Field(
        default=DEFAULT_MAX_DRIFT,
        gt=0,
        description="the share an input may move from its previous value, > 0",
    )

    @field_validator("rate_ranges", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {**DEFAULT_RATE_RANGES, **value}


@dataclass(frozen=True)
class Finding:
    """One thing a planner should look at before the plan goes live."""

    level: Level
    check: str
    where: str
    message: str

    def describe(self) -> str:
        """The finding as one sentence, located."""
        return f"{self.where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        """The finding, JSON-ready."""
        return {
            "level": self.level.value,
            "check": self.check,
            "where": self.where,
            "message": self.message,
        }


@dataclass(frozen=True)
class PreviousRun:
    """What a run folder's ``summary.json`` records about its inputs."""

    folder: Path
    scenario_file: str | None
    inputs: dict[str, str]
    budget: float | None
    spend_rule: str | None
    objective: str | None


def read_previous_run(folder: str | Path) -> PreviousRun:
    """The inputs recorded in a run folder, from its ``summary.json``.

    Raises
    ------
    ScenarioError
        When the folder has no readable ``summary.json``.
    """
    path = Path(folder) / "summary.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(
            f"{path}: got no file at this path; expected the summary.json of a "
            "previous run (a folder written by optimizer run), or pass the "
            "previous scenario's TOML file."
        ) from None
    except (OSError, ValueError) as error:
        raise ScenarioError(
            f"{path}: got a file that is not readable JSON ({error}); expected the "
            "summary.json of a previous run."
        ) from None
    budget = record.get("budget") or {}
    return PreviousRun(
        folder=Path(folder),
        scenario_file=(record.get("scenario") or {}).get("file"),
        inputs=dict(record.get("inputs") or {}),
        budget=budget.get("total"),
        spend_rule=budget.get("spend_rule"),
        objective=(record.get("objective") or {}).get("maximize"),
    )


def check_quality(
    scenario: Scenario,
    previous: Scenario | PreviousRun | None = None,
    *,
    max_drift: float | None = None,
) -> list[Finding]:
    """Every data-quality finding of a scenario, errors first.

    Parameters
    ----------
    scenario
        The scenario to check.
    previous
        Its previous version, as a scenario or a run folder's record; drift
        is checked only when given.
    max_drift
        The share of its old value an input may move before it is flagged;
        defaults to ``[quality] max_drift``.

    Returns
    -------
    list of Finding
        Errors first, then warnings, each in the order of the checks.
    """
    limit = scenario.quality.max_drift if max_drift is None else max_drift
    if not limit > 0:
        raise ValueError(f"max_drift={limit!r}; expected a share greater than 0")
    findings = [
        *_threshold_findings(scenario),
        *_tag_value_findings(scenario),
        *_missing_value_findings(scenario),
        *_volume_findings(scenario),
        *_rate_findings(scenario),
    ]
    if isinstance(previous, PreviousRun):
        findings += _run_drift(scenario, previous, limit)
    elif previous is not None:
        findings += _drift(scenario, previous, limit)
    return sorted(findings, key=lambda f: f.level is not Level.ERROR)


def warn_about(findings: Iterable[Finding], *, stacklevel: int = 2) -> None:
    """Emit each warning finding as a :class:`DataQualityWarning`."""
    for finding in findings:
        if finding.level is Level.WARNING:
            warnings.warn(
                finding.describe(), DataQualityWarning, stacklevel=stacklevel + 1
            )


def findings_text(findings: Sequence[Finding]) -> str:
    """Findings for a console, one line each."""
    return "".join(
        f"{finding.level} [{finding.check}] {finding.describe()}\n"
        for finding in findings
    )


# --- thresholds and declared tag values --------------------------------------


def _threshold_findings(scenario: Scenario) -> list[Finding]:
    # checks.py imports optimizer.scenario, which imports this module.
    from optimizer.checks import did_you_mean  # noqa: PLC0415

    channels = sorted(c.channel_id for c in scenario.channels)
    declared = _declared_values(scenario)
    findings = []
    for index, rule in enumerate(scenario.thresholds):
        where = _toml_at(scenario, f"[[thresholds]] entry {index + 1}")
        if rule.channel is not None and rule.channel not in channels:
            findings.append(
                _error(
                    "thresholds",
                    where,
                    f"field 'channel': got {rule.channel!r}; expected a channel_id "
                    f"of the channels table{did_you_mean(rule.channel, channels)}.",
                )
            )
        for tag, value in rule.where.items():
            allowed = declared.get(tag)
            if allowed is not None and value not in allowed:
                findings.append(
                    _error(
                        "thresholds",
                        where,
                        f"field 'where': got {tag} {value!r}; expected one of the "
                        f"declared values {', '.join(allowed)}"
                        f"{did_you_mean(value, allowed)}.",
                    )
                )
        if not any(rule.watches(_attributes(s)) for s in scenario.segments):
            findings.append(
                _error(
                    "thresholds",
                    where,
                    f"field 'where': got {_conditions(rule.where)}; expected "
                    "conditions that at least one segment meets.",
                )
            )
        elif rule.metric is ThresholdMetric.CONVERSION_RATE and not _has_clicks(
            scenario, rule.channel
        ):
            findings.append(
                _warning(
                    "thresholds",
                    where,
                    f"threshold {rule.id!r} watches conversion_rate, but no cell "
                    f"{'of channel ' + rule.channel + ' ' if rule.channel else ''}"
                    "has clicks (only linear curves, or curves with a cpc, do); "
                    "give those cells a cpc or watch cpa instead.",
                )
            )
    return findings


def _declared_values(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    segmentation = getattr(scenario, "segmentation", None)
    return dict(getattr(segmentation, "values", None) or {})


def _tag_value_findings(scenario: Scenario) -> list[Finding]:
    findings = []
    for tag, allowed in _declared_values(scenario).items():
        used = {getattr(segment, tag) for segment in scenario.segments}
        unused = [value for value in allowed if value not in used]
        if unused:
            findings.append(
                _warning(
                    "tag_values",
                    _toml_at(scenario, "[segmentation] values"),
                    f"the declared {tag} values {', '.join(unused)} are used by no "
                    "segment; remove them, or add the segments they stand for.",
                )
            )
    return findings


def _attributes(segment: Any) -> dict[str, Any]:
    return {name: segment.attribute(name) for name in where_fields()}


def _conditions(where: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{k} = {v!r}" for k, v in where.items()) + " }"


def _has_clicks(scenario: Scenario, channel: str | None) -> bool:
    return any(
        response.cpc is not None
        for response in scenario.responses
        if channel is None or response.channel_id == channel
    )


# --- missing values -------------------------------------------------------------


def missing_values(scenario: Scenario) -> pd.DataFrame:
    """Empty optional fields per table and column.

    Returns
    -------
    pandas.DataFrame
        One row per optional column of the segments and channels tables:
        ``table``, ``file``, ``column``, ``rows`` (data rows), ``missing``
        (rows without a value) and ``missing_rows`` (their spreadsheet rows).
    """
    records = []
    for table, rows in (
        ("segments", scenario.segments),
        ("channels", scenario.channels),
    ):
        if not rows:
            continue
        model = type(rows[0])
        origin = rows[0].origin
        for name, info in model.model_fields.items():
            if info.is_required() or name == "origin":
                continue
            empty = [row for row in rows if getattr(row, name) in (None, "")]
            records.append(
                {
                    "table": table,
                    "file": origin.file if origin is not None else f"{table} table",
                    "column": name,
                    "rows": len(rows),
                    "missing": len(empty),
                    "missing_rows": tuple(
                        row.origin.row for row in empty if row.origin is not None
                    ),
                }
            )
    columns = ["table", "file", "column", "rows", "missing", "missing_rows"]
    return pd.DataFrame(records, columns=columns)


def _missing_value_findings(scenario: Scenario) -> list[Finding]:
    findings = []
    for row in missing_values(scenario).itertuples(index=False):
        if not 0 < row.missing < row.rows:
            continue
        findings.append(
            _warning(
                "missing_values",
                f"{row.file}, column '{row.column}'",
                f"{row.missing} of {row.rows} {row.table} have no {row.column}"
                f"{_rows_text(row.missing_rows)}; fill them in, so that the rules, "
                f"thresholds and reports that use {row.column} see every row.",
            )
        )
    return findings


def _rows_text(rows: Sequence[int]) -> str:
    if not rows:
        return ""
    shown = [str(row) for row in rows[:MAX_ROWS_SHOWN]]
    more = len(rows) - len(shown)
    if more:
        return f" (rows {', '.join(shown)} and {more} more)"
    if len(shown) == 1:
        return f" (row {shown[0]})"
    return f" (rows {', '.join(shown[:-1])} and {shown[-1]})"


# --- volume and rates -------------------------------------------------------------


def segment_volumes(scenario: Scenario) -> dict[str, tuple[float | None, float]]:
    """Each segment's reachable monthly clicks and spend at saturation.

    Before seasonality: linear cells reach ``monthly_clicks`` for
    ``cpc * monthly_clicks``; saturating cells saturate at
    ``-scale * ln(1 - saturation)``; points cells at their last point. Clicks
    are summed over the cells that have a cpc, and are None for a segment
    without such cells.
    """
    last_point: dict[str, float] = defaultdict(float)
    for point in scenario.points:
        cell = f"{point.segment_id}/{point.channel_id}"
        last_point[cell] = max(last_point[cell], point.spend)
    clicks: dict[str, float | None] = {s.segment_id: None for s in scenario.segments}
    spend: dict[str, float] = {s.segment_id: 0.0 for s in scenario.segments}
    saturation = scenario.curves.saturation
    for response in scenario.responses:
        if response.monthly_clicks is not None and response.cpc is not None:
            cell_spend = response.cpc * response.monthly_clicks
        elif response.scale is not None:
            cell_spend = -response.scale * math.log1p(-saturation)
        else:
            cell_spend = last_point[response.cell_id]
        spend[response.segment_id] += cell_spend
        if response.cpc is not None:
            before = clicks[response.segment_id] or 0.0
            clicks[response.segment_id] = before + cell_spend / response.cpc
    return {segment: (clicks[segment], spend[segment]) for segment in spend}


def _volume_findings(scenario: Scenario) -> list[Finding]:
    settings = scenario.quality
    currency = scenario.plan.currency
    volumes = segment_volumes(scenario)
    findings = []
    for segment in scenario.segments:
        clicks, spend = volumes[segment.segment_id]
        where = _row_at(segment, f"segment {segment.segment_id}")
        stage = segment.stage.value
        if spend <= 0:
            findings.append(
                _warning(
                    "volume",
                    where,
                    f"segment {segment.segment_id} can reach no volume (no "
                    "responses, or none with room to spend); give it a response "
                    "row, or remove the segment.",
                )
            )
            continue
        checks = (
            (clicks, settings.volume_range.get(stage), "volume_range", "clicks", None),
            (spend, settings.spend_range.get(stage), "spend_range", currency, 2),
        )
        for amount, bounds, setting, unit, places in checks:
            if amount is None or bounds is None or bounds[0] <= amount <= bounds[1]:
                continue
            side = "below" if amount < bounds[0] else "above"
            number = _amount(amount, places)
            findings.append(
                _warning(
                    "volume",
                    where,
                    f"segment {segment.segment_id} can reach {number} {unit} a "
                    f"month, {side} the {stage} range of {_amount(bounds[0], places)}"
                    f" to {_amount(bounds[1], places)} in [quality] {setting}; check "
                    "its responses, or change the range if the segment really is "
                    "this size.",
                )
            )
    return findings


def _rate_findings(scenario: Scenario) -> list[Finding]:
    ranges = scenario.quality.rate_ranges
    stages = {s.segment_id: s.stage.value for s in scenario.segments}
    values: list[tuple[Any, str, str, float]] = [
        (s, stages[s.segment_id], name, getattr(s, name))
        for s in scenario.segments
        for name in (RateName.OPPORTUNITY_RATE, RateName.WIN_RATE)
    ]
    values += [
        (r, stages[r.segment_id], RateName.CONVERSION_RATE, r.conversion_rate)
        for r in scenario.responses
        if r.conversion_rate is not None
    ]
    findings = []
    for row, stage, name, rate in values:
        bounds = ranges.get(RateName(name), {}).get(stage)
        if bounds is None or bounds[0] <= rate <= bounds[1]:
            continue
        findings.append(
            _warning(
                "rates",
                _row_at(row, f"{name} of {getattr(row, 'segment_id', '')}"),
                f"field '{name}': got {rate:g} ({_percent(rate)}), outside the "
                f"typical {stage}-stage range of {_percent(bounds[0])} to "
                f"{_percent(bounds[1])} "
                f"([quality] rate_ranges); check the value, or declare the range "
                "this segment really has.",
            )
        )
    return findings


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


def _amount(value: float, places: int | None) -> str:
    return f"{value:,.{places}f}" if places is not None else f"{value:,.0f}"


# --- drift ----------------------------------------------------------------------


def _drift(scenario: Scenario, previous: Scenario, limit: float) -> list[Finding]:
    # input_changes reads the scenario models, and optimizer.scenario imports
    # this module: imported when first needed.
    from optimizer.input_changes import input_changes  # noqa: PLC0415

    return [
        finding
        for change in input_changes(previous, scenario)
        if change.affects_plan
        for finding in _drift_findings(change, limit)
    ]


def _drift_findings(change: InputChange, limit: float) -> list[Finding]:
    from optimizer.input_changes import Action, ChangeKind  # noqa: PLC0415

    # A seasonality row that appears or goes is a multiplier moving from or
    # to 1, and is measured like any other move.
    if (
        change.action is not Action.CHANGED
        and change.kind is not ChangeKind.SEASONALITY
    ):
        return [
            _warning(
                "drift",
                change.where,
                f"{change.describe()}, since the previous version; check it "
                "before the plan goes live.",
            )
        ]
    always = change.kind in (ChangeKind.RULE, ChangeKind.PLANNING_RULES)
    moved = [
        field
        for field in change.fields
        if always or field.relative is None or field.relative > limit * (1 + 1e-9)
    ]
    if not moved:
        return []
    details = ", ".join(field.describe() for field in moved)
    why = (
        ""
        if always or all(field.relative is None for field in moved)
        else f", more than the {limit:.0%} drift limit"
    )
    return [
        _warning(
            "drift",
            change.where,
            f"{change.subject} {change.action} since the previous version: "
            f"{details}{why}; "
            "confirm the new value before the plan goes live.",
        )
    ]


def _run_drift(
    scenario: Scenario, previous: PreviousRun, limit: float
) -> list[Finding]:
    since = f"since the run in {previous.folder}"
    findings = []
    if previous.budget is not None:
        old, new = previous.budget, scenario.budget.total
        moved = abs(new - old) / old if old else math.inf
        if moved > limit * (1 + 1e-9):
            findings.append(
                _warning(
                    "drift",
                    _toml_at(scenario, "[budget]"),
                    f"[budget] total moved from {old:,.2f} to {new:,.2f} "
                    f"({moved:.0%}) {since}, more than the {limit:.0%} drift limit; "
                    "confirm the new budget before the plan goes live.",
                )
            )
    settings = (
        ("[budget] spend", previous.spend_rule, scenario.budget.spend.value),
        ("[objective] maximize", previous.objective, scenario.objective.maximize.value),
    )
    for name, old_value, new_value in settings:
        if old_value is not None and old_value != new_value:
            findings.append(
                _warning(
                    "drift",
                    _toml_at(scenario, name.split()[0]),
                    f"{name} changed from {old_value!r} to {new_value!r} {since}; "
                    "confirm the change before the plan goes live.",
                )
            )
    return findings + _file_drift(scenario, previous, since)


def _file_drift(scenario: Scenario, previous: PreviousRun, since: str) -> list[Finding]:
    current = dict(scenario.input_hashes)
    earlier = dict(previous.inputs)
    # The scenario file is compared with the previous scenario file, whatever
    # their names.
    own = scenario.source.name if scenario.source is not None else None
    if own in current and previous.scenario_file in earlier:
        earlier[own] = earlier.pop(previous.scenario_file)
    findings = []
    for name in [*current, *(n for n in earlier if n not in current)]:
        if current.get(name) == earlier.get(name):
            continue
        state = (
            "is new"
            if name not in earlier
            else "is no longer read"
            if name not in current
            else "changed (its SHA-256 differs)"
        )
        findings.append(
            _warning(
                "drift",
                name,
                f"the input file {state} {since}; pass the previous scenario's "
                "TOML file as --previous to see which values moved.",
            )
        )
    return findings


# --- findings ---------------------------------------------------------------------


def _error(check: str, where: str, message: str) -> Finding:
    return Finding(Level.ERROR, check, where, message)


def _warning(check: str, where: str, message: str) -> Finding:
    return Finding(Level.WARNING, check, where, message)


def _toml_at(scenario: Scenario, section: str) -> str:
    return f"{scenario.source}, {section}" if scenario.source else section


def _row_at(row: Any, fallback: str) -> str:
    return str(row.origin) if getattr(row, "origin", None) is not None else fallback
