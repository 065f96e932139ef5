"""The plan as an Excel workbook that finance can review and reconcile.

Sheets, in order:

* ``Summary``: the scenario, the objective, the budget, the plan's totals and
  the solver's check.
* ``Allocation``: one row per segment x channel x month, as ``allocation.csv``.
* ``Monthly phasing``: spend per segment and channel by month, with row and
  column totals.
* ``By stage``, ``By channel``, ``By segment``: every metric summed, with a
  total row.
* ``Scenario comparison``: when a comparison is given, its totals by scenario
  and then every level with its change against the base scenario.
* ``Frontier``: when a frontier is given, one row per budget, the chosen one
  marked.
* ``Assumptions``: every input of the plan: settings, segments, channels,
  responses, points, seasonality, rules and the input files' SHA-256.
* ``Constraints``: every row of the program with its activity, the plan's
  spend in its scope, its shadow price and what that means.

Cells hold numbers, not formulas or text, so they can be summed and charted
as they are. Money is written from the plan's cents and every total is a sum
of cents, so the sheets reconcile with each other and with the plan exactly;
money columns carry a currency number format.

The writer is XlsxWriter rather than openpyxl. It only writes, which is all a
report needs; its number formats, column widths and frozen panes are one call
each; and its output can be made the same bytes for the same plan: with
``in_memory`` every part of the zip archive is stamped 1980-01-01, and the
document's created date, which it would otherwise take from the clock, is
set to that same fixed date. openpyxl reads and writes, but stamps its zip
entries and document properties with the current time.
"""

from __future__ import annotations

import io
import json
import math
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from pydantic import BaseModel
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from optimizer.model import MONEY_BOUNDS, SHARE_BOUNDS
from optimizer.outputs import write_file_atomically
from optimizer.plan import METRICS, ConstraintReport, Plan
from optimizer.reports import STAGE_ORDER
from optimizer.scenario import ConstraintRule, Objective, Scope

#: The document's created and modified date: fixed, so that bytes repeat.
DOCUMENT_DATE = datetime(1980, 1, 1)

#: Metrics of the totals tables, in order.
TOTAL_COLUMNS = (*METRICS, "cpa", "roi")

#: Metrics of a scenario comparison, in the order they are shown.
COMPARISON_METRICS = (
    "spend",
    "conversions",
    "opportunities",
    "pipeline",
    "bookings_in_horizon",
    "cpa",
    "roi",
    "marginal_roi",
)

#: Columns and inputs measured in money.
MONEY_NAMES = frozenset(
    {
        "spend",
        "pipeline",
        "bookings_in_horizon",
        "cpa",
        "budget",
        "total",
        "deal_size",
        "cpc",
        "scale",
        *MONEY_BOUNDS,
    }
)

#: Inputs that are shares from 0 to 1.
SHARE_NAMES = frozenset(
    {
        "opportunity_rate",
        "win_rate",
        "conversion_rate",
        "saturation",
        "spread",
        *SHARE_BOUNDS,
    }
)

#: Return multiples: objective per unit of spend.
RATIO_NAMES = frozenset({"roi", "marginal_roi", "shadow_price"})

#: Counts of people and events.
COUNT_NAMES = frozenset({"clicks", "conversions", "opportunities"})

#: Number formats by column or input name.
KINDS_BY_NAME = (
    ("money", MONEY_NAMES),
    ("share", SHARE_NAMES),
    ("ratio", RATIO_NAMES),
    ("count", COUNT_NAMES),
    ("points", frozenset({"delta_pct"})),
)

#: Column widths, in characters.
MIN_WIDTH, MAX_WIDTH = 8, 60


def write_workbook(
    path: str | Path,
    plan: Plan,
    comparison: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    *,
    chosen_budget: float | None = None,
) -> Path:
    """Write the plan's workbook to ``path``, all or nothing.

    Parameters
    ----------
    path
        The ``.xlsx`` file to write; it is replaced only once complete.
    plan
        The plan to report.
    comparison
        The long scenario comparison (``scenario, level, key, metric, value,
        delta, delta_pct``); its sheet is left out when omitted.
    frontier
        The budget frontier (``budget, objective, marginal_roi, status``,
        ``spend_stage_*``, ``spend_channel_*``, ``binding``); its sheet is
        left out when omitted.
    chosen_budget
        The frontier budget to mark; by default the plan's budget.

    Returns
    -------
    Path
        The file written.
    """
    data = workbook_bytes(
        plan, comparison=comparison, frontier=frontier, chosen_budget=chosen_budget
    )
    path = Path(path)
    write_file_atomically(path, data)
    return path


def workbook_bytes(
    plan: Plan,
    *,
    comparison: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    chosen_budget: float | None = None,
) -> bytes:
    """The plan's workbook as ``.xlsx`` bytes, the same for the same inputs."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.set_properties(
        {
            "title": plan.scenario.plan.name or "Paid media plan",
            "subject": "budget allocation by segment, channel and month",
            "created": DOCUMENT_DATE,
        }
    )
    writer = _Writer(book, plan.scenario.plan.currency)
    objective = plan.scenario.objective.maximize

    summary = {"value": [kind for _, _, kind in _summary_rows(plan)]}
    writer.sheet("Summary", [_Block(summary_table(plan), kinds=summary)])
    writer.sheet("Allocation", [_Block(allocation_table(plan))], filter_rows=True)
    phasing = phasing_table(plan)
    money = {str(column): "money" for column in phasing.columns[2:]}
    writer.sheet("Monthly phasing", [_Block(phasing, kinds=money)], freeze_columns=2)
    for by in ("stage", "channel", "segment"):
        writer.sheet(f"By {by}", [_Block(totals_table(plan, by))], freeze_columns=1)
    if comparison is not None:
        writer.sheet("Scenario comparison", _comparison_blocks(comparison))
    if frontier is not None:
        budget = plan.scenario.budget.total if chosen_budget is None else chosen_budget
        table = frontier_table(frontier, chosen_budget=budget)
        kinds = {"objective": "money" if _is_money(objective) else "number"}
        writer.sheet("Frontier", [_Block(table, kinds=kinds)])
    writer.sheet("Assumptions", _assumption_blocks(plan), freeze=False)
    table = constraints_table(plan)
    writer.sheet("Constraints", [_Block(table, kinds={"amount": _amount_kinds(table)})])

    book.close()
    return buffer.getvalue()


# --- the tables -------------------------------------------------------------


def summary_table(plan: Plan) -> pd.DataFrame:
    """The plan in a few lines: what, how much, what it buys, the check."""
    return pd.DataFrame(
        [(item, value) for item, value, _ in _summary_rows(plan)],
        columns=["item", "value"],
    )


def _summary_rows(plan: Plan) -> list[tuple[str, Any, str]]:
    """Items of the summary with their values and number formats."""
    scenario = plan.scenario
    settings = scenario.plan
    objective = scenario.objective.maximize
    overall = plan.overall()
    months = settings.month_labels
    value_kind = "money" if _is_money(objective) else "count"
    return [
        ("plan", settings.name, "text"),
        ("scenario file", scenario.source.name if scenario.source else "", "text"),
        (
            "horizon",
            f"{settings.months} months, {months[0]} to {months[-1]}",
            "text",
        ),
        ("currency", settings.currency, "text"),
        ("objective", f"maximize {_words(objective.value)}", "text"),
        ("objective value", plan.objective_value, value_kind),
        ("budget", scenario.budget.total, "money"),
        ("spend rule", scenario.budget.spend.value, "text"),
        ("spend", int(plan.spend_cents.sum()) / 100, "money"),
        ("budget shadow price", plan.budget_shadow_price, "ratio"),
        ("budget shadow price meaning", plan.constraints[0].explain(objective), "text"),
        *(
            (_words(metric), overall[metric], _kind(metric))
            for metric in TOTAL_COLUMNS[1:]
        ),
        ("check", plan.verification.describe(), "text"),
        ("solver", f"{plan.solver.name} {plan.solver.version}", "text"),
        ("curves", plan.approximation.describe(), "text"),
    ]


def allocation_table(plan: Plan) -> pd.DataFrame:
    """The allocation with spend from the plan's cents."""
    table = plan.allocation.drop(columns=["cell"]).copy()
    table["spend"] = plan.spend_cents / 100
    return table


def phasing_table(plan: Plan) -> pd.DataFrame:
    """Spend per segment and channel (rows) by month (columns), with totals.

    The last row and the last column are totals; all are sums of cents.
    """
    cents = cents_pivot(plan, ["segment_id", "channel_id"], "month")
    return (cents / 100).reset_index()


def cents_pivot(plan: Plan, index: Sequence[str], column: str) -> pd.DataFrame:
    """Spend in cents by ``index`` (rows) and ``column``, with totals.

    Rows follow the plan's order (stages in funnel order), columns are
    sorted; a ``total`` column and a ``total`` row close the table.
    """
    index = list(index)
    frame = plan.allocation[[*index, column]].assign(cents=plan.spend_cents)
    table = frame.pivot_table(
        index=index, columns=column, values="cents", aggfunc="sum", fill_value=0
    ).astype(np.int64)
    if index == ["stage"]:
        table = table.reindex([s for s in STAGE_ORDER if s in table.index])
    table.columns = [str(c) for c in table.columns]
    table["total"] = table.sum(axis=1)
    total_key = ("total", *[""] * (len(index) - 1)) if len(index) > 1 else "total"
    table.loc[total_key, :] = table.sum(axis=0)
    return table.astype(np.int64)


def totals_table(plan: Plan, by: str) -> pd.DataFrame:
    """Every metric by ``stage``, ``channel`` or ``segment``, with a total row."""
    totals = plan.totals(by)
    if by == "stage":
        totals = totals.reindex([s for s in STAGE_ORDER if s in totals.index])
    overall = pd.DataFrame([plan.overall()], index=["total"])
    table = pd.concat([totals[list(TOTAL_COLUMNS)], overall[list(TOTAL_COLUMNS)]])
    table.index.name = totals.index.name
    return table.reset_index()


def comparison_summary(comparison: pd.DataFrame) -> pd.DataFrame:
    """Totals by scenario (rows) and metric (columns), the base scenario first."""
    totals = comparison[comparison["level"] == "total"]
    table = totals.pivot_table(
        index="scenario", columns="metric", values="value", aggfunc="first"
    )
    order = list(dict.fromkeys(totals["scenario"]))
    base = totals.loc[totals["delta"].isna(), "scenario"]
    if len(base):
        order.remove(base.iloc[0])
        order.insert(0, base.iloc[0])
    metrics = [m for m in COMPARISON_METRICS if m in table.columns]
    metrics += sorted(m for m in table.columns if m not in COMPARISON_METRICS)
    table = table.reindex(index=order, columns=metrics)
    table.columns.name = None
    return table.reset_index()


def frontier_table(frontier: pd.DataFrame, *, chosen_budget: float) -> pd.DataFrame:
    """The frontier by budget; the point at the chosen budget, if any, marked."""
    table = frontier.sort_values("budget", kind="stable").reset_index(drop=True)
    chosen = (table["budget"] * 100).round() == round(chosen_budget * 100)
    return table.assign(chosen=np.where(chosen, "chosen budget", ""))


def constraints_table(plan: Plan) -> pd.DataFrame:
    """Every row of the program in business words, with the plan's spend in scope.

    ``activity`` is the row's value at the solver's optimum (for a share
    rule on a budget that need not be spent, spend in scope minus the share
    of all spend); ``spend_in_scope`` is the rounded plan's spend, from cents.
    """
    objective = plan.scenario.objective.maximize
    rules = rules_of_rows(plan)
    return pd.DataFrame(
        {
            "name": [c.name for c in plan.constraints],
            "rule": [c.label for c in plan.constraints],
            "bound": [c.bound for c in plan.constraints],
            "amount": [c.amount for c in plan.constraints],
            "activity": [c.activity for c in plan.constraints],
            "spend_in_scope": [scope_spend(plan, rule) for rule in rules],
            "binding": ["yes" if c.binding else "no" for c in plan.constraints],
            "shadow_price": [c.shadow_price for c in plan.constraints],
            "meaning": [
                c.explain(objective) if c.binding else "" for c in plan.constraints
            ],
            "note": [rule.note if rule else "" for rule in rules],
        }
    )


def rules_of_rows(plan: Plan) -> list[ConstraintRule | None]:
    """The scenario rule behind each row of the program; ``None`` for the budget.

    A rule gives one row per bound it sets, matched on its label and bound.
    """
    pending = [
        (rule, bound)
        for rule in plan.scenario.constraints
        for bound in (*MONEY_BOUNDS, *SHARE_BOUNDS)
        if getattr(rule, bound) is not None
    ]
    found: list[ConstraintRule | None] = []
    for report in plan.constraints:
        match = next(
            (i for i, pair in enumerate(pending) if _rule_matches(report, *pair)),
            None,
        )
        found.append(None if match is None else pending.pop(match)[0])
    return found


def scope_spend(plan: Plan, rule: ConstraintRule | None) -> float:
    """The plan's spend in a rule's scope, from cents; all spend for the budget."""
    if rule is None or rule.scope is Scope.TOTAL:
        return int(plan.spend_cents.sum()) / 100
    return int(plan.spend_cents[plan.in_scope(rule)].sum()) / 100


def input_tables(plan: Plan) -> dict[str, pd.DataFrame]:
    """Every input of the plan as a table, by section title.

    Settings come first, one row per field of each settings group, then one
    table per input table of the scenario, then the input files' digests.
    """
    scenario = plan.scenario
    settings: list[tuple[str, Any]] = []
    tables: dict[str, pd.DataFrame] = {}
    for name, field in type(scenario).model_fields.items():
        value = getattr(scenario, name)
        if isinstance(value, BaseModel):
            settings += [
                (f"{name}.{key}", _setting(v)) for key, v in _fields(value).items()
            ]
            continue
        row_model = _row_model(field.annotation)
        if row_model is not None:
            title = "Rules" if name == "constraints" else _words(name).capitalize()
            tables[title] = _model_table(value, row_model)
    # The rules read best after the tables they name.
    tables["Rules"] = tables.pop("Rules")
    return {
        "Settings": pd.DataFrame(settings, columns=["setting", "value"]),
        **tables,
        "Input files": pd.DataFrame(
            list(scenario.input_hashes), columns=["file", "sha256"]
        ),
    }


def _rule_matches(report: ConstraintReport, rule: ConstraintRule, bound: str) -> bool:
    return report.bound == bound and report.label.startswith(f"{rule.label}: ")


def _fields(model: BaseModel) -> dict[str, Any]:
    """A model's fields as plain values, those left out of its output excepted."""
    return {
        name: _plain(getattr(model, name))
        for name, field in type(model).model_fields.items()
        if not field.exclude
    }


def _plain(value: Any) -> Any:
    """Enums as their values, models as dicts, tuples as lists, all the way down."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return _fields(value)
    if isinstance(value, set | frozenset):
        # Sorted, as a set's order changes with the hash seed.
        return sorted((_plain(item) for item in value), key=str)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(_plain(key)): _plain(item) for key, item in value.items()}
    return value


def _setting(value: Any) -> Any:
    """An input as a cell: lists and tables as compact JSON."""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(", ", ": "))
    return value


def _model_table(
    models: Iterable[BaseModel], row_model: type[BaseModel]
) -> pd.DataFrame:
    columns = [
        name for name, field in row_model.model_fields.items() if not field.exclude
    ]
    records = [
        {key: _setting(value) for key, value in _fields(model).items()}
        for model in models
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def _row_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a table field such as ``tuple[Segment, ...]``, if it is one."""
    if typing.get_origin(annotation) is not tuple:
        return None
    item = typing.get_args(annotation)[0]
    return item if isinstance(item, type) and issubclass(item, BaseModel) else None


# --- writing ----------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """A table with a header row, placed on a sheet below the previous one.

    ``kinds`` overrides the number format of a column, by name: one kind for
    the whole column or one per row.
    """

    table: pd.DataFrame
    title: str = ""
    kinds: Mapping[str, str | Sequence[str]] | None = None


class _Writer:
    """Writes tables into sheets with one set of formats."""

    def __init__(self, book: xlsxwriter.Workbook, currency: str) -> None:
        self.book = book
        money = f"[${currency}] #,##0.00"
        self.formats: dict[str, Format] = {
            "money": book.add_format({"num_format": money}),
            "count": book.add_format({"num_format": "#,##0.00"}),
            "ratio": book.add_format({"num_format": "0.0000"}),
            "share": book.add_format({"num_format": "0.00%"}),
            "points": book.add_format({"num_format": '+0.0"%";-0.0"%";0.0"%"'}),
            "number": book.add_format({"num_format": "#,##0.00##"}),
            "integer": book.add_format({"num_format": "0"}),
            "text": book.add_format(),
        }
        self.header = book.add_format({"bold": True, "bottom": 1})
        self.title = book.add_format({"bold": True, "font_size": 12})
        self.money_width = len(currency) + 1

    def sheet(
        self,
        name: str,
        blocks: Sequence[_Block],
        *,
        freeze: bool = True,
        freeze_columns: int = 0,
        filter_rows: bool = False,
    ) -> None:
        sheet = self.book.add_worksheet(name)
        widths: dict[int, int] = {}
        row = 0
        for block in blocks:
            if block.title:
                sheet.write_string(row, 0, block.title, self.title)
                row += 1
            end = self._table(sheet, row, block, widths)
            if filter_rows:
                sheet.autofilter(row, 0, end - 1, len(block.table.columns) - 1)
            row = end + 1
        if freeze:
            sheet.freeze_panes(1, freeze_columns)
        for column, width in sorted(widths.items()):
            sheet.set_column(column, column, min(max(width, MIN_WIDTH), MAX_WIDTH))

    def _table(
        self, sheet: Worksheet, top: int, block: _Block, widths: dict[int, int]
    ) -> int:
        """Write one table from row ``top``; returns the row after its last."""
        table = block.table
        overrides = block.kinds or {}
        for c, column in enumerate(table.columns):
            header = str(column)
            sheet.write_string(top, c, header, self.header)
            widths[c] = max(widths.get(c, 0), len(header) + 2)
            kinds = overrides.get(header, _kind(header, table[column]))
            if isinstance(kinds, str):
                kinds = [kinds] * len(table)
            for r, (value, kind) in enumerate(zip(table[column], kinds, strict=True)):
                text = self._cell(sheet, top + 1 + r, c, value, kind)
                widths[c] = max(widths[c], len(text) + 2)
        return top + 1 + len(table)

    def _cell(self, sheet: Worksheet, row: int, col: int, value: Any, kind: str) -> str:
        """Write one value; returns about how it displays, for the width."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, bool | np.bool_):
            text = "true" if value else "false"
            sheet.write_string(row, col, text)
            return text
        if isinstance(value, int | float | np.integer | np.floating):
            number = float(value)
            if not math.isfinite(number):
                sheet.write_string(row, col, str(number))
                return str(number)
            if kind == "text":
                kind = "number"
            sheet.write_number(row, col, number, self.formats[kind])
            extra = self.money_width if kind == "money" else 0
            return f"{number:,.2f}" + " " * extra
        text = str(value)
        if text:
            sheet.write_string(row, col, text, self.formats["text"])
        return text


def _kind(name: str, values: pd.Series | None = None) -> str:
    """The number format of a column or an input, from its name."""
    if name.startswith("spend_") or name.endswith("_spend"):
        return "money"
    for kind, names in KINDS_BY_NAME:
        if name in names:
            return kind
    if values is not None and pd.api.types.is_integer_dtype(values):
        return "integer"
    return "text"


def _comparison_blocks(comparison: pd.DataFrame) -> list[_Block]:
    detail = comparison[
        ["scenario", "level", "key", "metric", "value", "delta", "delta_pct"]
    ].reset_index(drop=True)
    per_row = [_kind(str(metric)) for metric in detail["metric"]]
    per_row = ["number" if kind == "text" else kind for kind in per_row]
    return [
        _Block(comparison_summary(comparison)),
        _Block(
            detail,
            title="Every level, with the change against the base scenario",
            kinds={"value": per_row, "delta": per_row},
        ),
    ]


def _assumption_blocks(plan: Plan) -> list[_Block]:
    blocks = []
    for title, table in input_tables(plan).items():
        kinds = None
        if title == "Settings":
            kinds = {"value": [_kind(name.split(".")[1]) for name in table["setting"]]}
        blocks.append(_Block(table, title=title, kinds=kinds))
    return blocks


def _amount_kinds(table: pd.DataFrame) -> list[str]:
    return ["share" if bound in SHARE_BOUNDS else "money" for bound in table["bound"]]


def _is_money(objective: Objective) -> bool:
    return objective is not Objective.CONVERSIONS


def _words(name: str) -> str:
    return name.replace("_", " ")
