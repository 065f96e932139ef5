"""The plan as one self-contained web page for a finance reviewer.

The page says in plain words what the plan does and for what objective, then
shows its totals, the allocation by stage and channel, the monthly phasing,
the budget frontier and the scenario comparison when they are given, the
rules that limit the plan with what relaxing them is worth, and how the
solver's answer was checked. It needs nothing but a browser: styles are
inline, charts are embedded PNG images, there is no script, and a content
security policy forbids loading anything from elsewhere.

Every key number sits in an element that names it, such as
``<td data-metric="spend" data-key="channel:linkedin">360,000.00</td>``, so a
script can read the page as reliably as a person. Keys are ``total``,
``stage:<stage>``, ``channel:<channel>``, ``month:<YYYY-MM>``, two of these
joined by ``/`` for a cell of a cross table, ``rule:<row name>``,
``scenario:<name>`` and ``budget:<amount>`` for a frontier point.

All text is escaped; the same inputs give the same bytes (charts are drawn
in matplotlib's default style, whatever the machine's settings).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from optimizer.charts import (
    DPI,
    FIGURE_SIZE,
    allocation_chart,
    base_scenario,
    comparison_chart,
    default_style,
    frontier_chart,
    phasing_chart,
    png_bytes,
)
from optimizer.outputs import write_file_atomically
from optimizer.plan import Plan
from optimizer.reports import STAGE_ORDER
from optimizer.scenario import Objective, SpendRule
from optimizer.workbook import (
    COMPARISON_METRICS,
    cents_pivot,
    comparison_summary,
    frontier_table,
    rules_of_rows,
)

#: What each objective means, for the opening paragraph.
OBJECTIVE_WORDS = {
    Objective.PIPELINE: (
        "pipeline: the value of the sales opportunities that the conversions create"
    ),
    Objective.BOOKINGS_IN_HORIZON: (
        "bookings in the horizon: the value of the deals expected to close "
        "before the plan's last month ends"
    ),
    Objective.CONVERSIONS: "conversions: the number of primary conversions",
}

#: Metrics of the totals tables, with their headings.
METRIC_HEADINGS = {
    "spend": "spend",
    "conversions": "conversions",
    "opportunities": "opportunities",
    "pipeline": "pipeline",
    "bookings_in_horizon": "bookings in horizon",
    "cpa": "cost per conversion",
    "roi": "return per unit spent",
    "marginal_roi": "return of the next unit",
}

MONEY_METRICS = frozenset({"spend", "pipeline", "bookings_in_horizon", "cpa"})
RATIO_METRICS = frozenset({"roi", "marginal_roi"})

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

#: Forbids every request the page could make except its own data: images.
CONTENT_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, sans-serif; color: #1f2328; margin: 2rem auto;
  max-width: 72rem; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de;
  padding-bottom: 0.2rem; }
p.lead { font-size: 1.05rem; }
.muted { color: #57606a; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #d8dee4; padding: 0.25rem 0.6rem; }
th { text-align: left; background: #f6f8fa; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
td.number { white-space: nowrap; }
tr.total td, tr.total th { font-weight: 600; border-top: 2px solid #8c959f; }
tr.chosen td, tr.chosen th { background: #fff8c5; font-weight: 600; }
.scroll { overflow-x: auto; }
img { max-width: 100%; height: auto; display: block; margin: 0.8rem 0; }
@media print { h2 { break-after: avoid; } img, table { break-inside: avoid; } }
""".strip()

#: Rendered charts by name, PNG bytes.
Images = Mapping[str, bytes]


def write_html_report(
    path: str | Path,
    plan: Plan,
    comparison: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    *,
    chosen_budget: float | None = None,
    images: Images | None = None,
    changelog: pd.DataFrame | None = None,
) -> Path:
    """Write the plan's report page to ``path``, all or nothing.

    Parameters
    ----------
    path
        The ``.html`` file to write; it is replaced only once complete.
    plan
        The plan to report.
    comparison
        The long scenario comparison (``scenario, level, key, metric, value,
        delta, delta_pct``); its section is left out when omitted.
    frontier
        The budget frontier (``budget, objective, marginal_roi, status``,
        ``spend_*`` columns, ``binding``); its section is left out when
        omitted.
    chosen_budget
        The frontier budget to mark; by default the plan's budget.
    images
        Charts already rendered as PNG by :func:`optimizer.charts.chart_figures`
        name, to embed instead of drawing them again.

    Returns
    -------
    Path
        The file written.
    """
    page = html_report(
        plan,
        comparison=comparison,
        frontier=frontier,
        chosen_budget=chosen_budget,
        images=images,
        changelog=changelog,
    )
    path = Path(path)
    write_file_atomically(path, page.encode("utf-8"))
    return path


def html_report(
    plan: Plan,
    *,
    comparison: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    chosen_budget: float | None = None,
    images: Images | None = None,
    changelog: pd.DataFrame | None = None,
) -> str:
    """The report page as text, the same for the same inputs.

    ``changelog`` is :meth:`optimizer.changelog.ChangeLog.table`, for a
    section on what changed since the previous version.
    """
    images = images or {}
    scenario = plan.scenario
    title = scenario.plan.name or "Paid media plan"
    budget = scenario.budget.total if chosen_budget is None else chosen_budget
    with default_style():
        sections = [
            _opening(plan),
            _totals_section(plan),
            _allocation_section(plan, images),
            _phasing_section(plan, images),
        ]
        if frontier is not None:
            sections.append(_frontier_section(plan, frontier, budget, images))
        if comparison is not None:
            sections.append(_comparison_section(plan, comparison, images))
    if changelog is not None:
        sections.append(_changelog_section(plan, changelog))
    sections += [_rules_section(plan), _check_section(plan)]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title)}</title>\n<style>\n{STYLE}\n</style>\n"
        "</head>\n<body>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )


# --- sections -----------------------------------------------------------------


def _opening(plan: Plan) -> str:
    scenario = plan.scenario
    settings = scenario.plan
    currency = settings.currency
    objective = scenario.objective.maximize
    months = settings.month_labels
    overall = plan.overall()
    rule = (
        "which must be spent in full"
        if scenario.budget.spend is SpendRule.EXACT
        else "which is an upper limit"
    )
    source = f"Scenario file {scenario.source.name}. " if scenario.source else ""
    lead = (
        f"This plan spends {_cents(int(plan.spend_cents.sum()))} {currency} of an "
        "approved "
        f"budget of {_money(scenario.budget.total)} {currency}, {rule}, over "
        f"{settings.months} months from {_month_words(months[0])} to "
        f"{_month_words(months[-1])}. It splits the budget across "
        f"{len(scenario.segments)} segments and {len(scenario.channels)} channels "
        f"to get the most {OBJECTIVE_WORDS[objective]}."
    )
    promise = (
        f"It is expected to bring {overall['conversions']:,.1f} conversions, "
        f"{overall['opportunities']:,.1f} opportunities, "
        f"{_money(overall['pipeline'])} {currency} of pipeline and "
        f"{_money(overall['bookings_in_horizon'])} {currency} of bookings that "
        f"close within the horizon. One more {currency} of budget would be worth "
        f"{plan.budget_shadow_price:,.4g} of {_words(objective.value)}."
    )
    return (
        f"<header>\n<h1>{_text(settings.name or 'Paid media plan')}</h1>\n"
        f'<p class="muted">{_text(source)}Amounts in {_text(currency)}; '
        "spend is rounded to cents and every total is a sum of those cents.</p>\n"
        f'<p class="lead">{_text(lead)}</p>\n<p>{_text(promise)}</p>\n</header>'
    )


def _totals_section(plan: Plan) -> str:
    overall = plan.overall()
    currency = plan.scenario.plan.currency
    spend = _td(
        _cents(int(plan.spend_cents.sum())), metric="spend", key="total", number=True
    )
    rows = [
        _row(
            [
                _th(METRIC_HEADINGS[metric]),
                spend
                if metric == "spend"
                else _metric_td(metric, overall[metric], "total"),
                _td(_unit(metric, currency), muted=True),
            ]
        )
        for metric in ("spend", *_outcomes(), "cpa", "roi")
    ]
    return _section(
        "Totals",
        _table("The plan's totals", ["", "value", "unit"], rows, numeric={1}),
    )


def _allocation_section(plan: Plan, images: Images) -> str:
    cents = cents_pivot(plan, ["stage"], "channel_id")
    matrix = _cents_matrix(cents, "stage", "channel", corner="stage \\ channel")
    by_stage = _metrics_table(plan, "stage", "Every metric by funnel stage")
    by_channel = _metrics_table(plan, "channel", "Every metric by channel")
    return _section(
        "Allocation by stage and channel",
        "<p>Spend of each funnel stage on each channel, in "
        f"{_text(plan.scenario.plan.currency)}.</p>",
        matrix,
        _image(
            "allocation",
            lambda: allocation_chart(plan),
            "Spend by funnel stage, stacked by channel",
            images,
        ),
        by_stage,
        by_channel,
    )


def _phasing_section(plan: Plan, images: Images) -> str:
    cents = cents_pivot(plan, ["month"], "channel_id")
    return _section(
        "Monthly phasing",
        "<p>Spend of each month on each channel, in "
        f"{_text(plan.scenario.plan.currency)}.</p>",
        _cents_matrix(cents, "month", "channel", corner="month \\ channel"),
        _image(
            "phasing",
            lambda: phasing_chart(plan),
            "Spend by month, stacked by channel",
            images,
        ),
    )


def _frontier_section(
    plan: Plan, frontier: pd.DataFrame, budget: float, images: Images
) -> str:
    scenario = plan.scenario
    objective = scenario.objective.maximize
    currency = scenario.plan.currency
    table = frontier_table(frontier, chosen_budget=budget)
    money = objective is not Objective.CONVERSIONS
    rows = []
    for record in table.to_dict("records"):
        key = f"budget:{_money(record['budget']).replace(',', '')}"
        chosen = bool(record["chosen"])
        rows.append(
            _row(
                [
                    _metric_td("budget", record["budget"], key, money=True),
                    _metric_td("objective", record["objective"], key, money=money),
                    _metric_td("marginal_roi", record["marginal_roi"], key),
                    _td(str(record["status"])),
                    _td(_binding_words(record.get("binding"))),
                    _td("chosen budget" if chosen else ""),
                ],
                css="chosen" if chosen else None,
            )
        )
    what = _words(objective.value)
    return _section(
        "Budget frontier",
        f"<p>The best {_text(what)} the rules allow at each budget, and what the "
        f"next {_text(currency)} would add there (marginal return). The chosen "
        f"budget of {_money(budget)} {_text(currency)} is marked.</p>",
        _image(
            "frontier",
            lambda: frontier_chart(
                frontier, chosen_budget=budget, objective=objective, currency=currency
            ),
            f"Best {what} by budget, with the marginal return and the chosen budget",
            images,
        ),
        _table(
            "One point per budget",
            [
                f"budget ({currency})",
                what,
                "marginal return",
                "status",
                "rules that bind, or why there is no plan",
                "",
            ],
            rows,
            numeric={0, 1, 2},
        ),
    )


def _comparison_section(plan: Plan, comparison: pd.DataFrame, images: Images) -> str:
    objective = plan.scenario.objective.maximize.value
    summary = comparison_summary(comparison)
    base = base_scenario(comparison)
    totals = comparison[
        (comparison["level"] == "total") & (comparison["metric"] == objective)
    ].set_index("scenario")
    metrics = [m for m in COMPARISON_METRICS if m in summary.columns]
    rows = []
    for record in summary.to_dict("records"):
        name = str(record["scenario"])
        key = f"scenario:{name}"
        change = totals["delta_pct"].get(name, math.nan)
        rows.append(
            _row(
                [
                    _th(name),
                    *(_metric_td(m, record[m], key) for m in metrics),
                    _td(
                        "base" if name == base else _points(change),
                        metric=f"{objective}_delta_pct",
                        key=key,
                        number=True,
                    ),
                ]
            )
        )
    headings = [METRIC_HEADINGS[m] for m in metrics]
    return _section(
        "Scenario comparison",
        f"<p>Totals of each scenario; the last column is the change in "
        f"{_text(_words(objective))} against the base scenario.</p>",
        '<div class="scroll">'
        + _table(
            "Totals by scenario",
            ["scenario", *headings, f"change in {_words(objective)}"],
            rows,
            numeric=set(range(1, len(metrics) + 2)),
        )
        + "</div>",
        _image(
            "comparison",
            lambda: comparison_chart(
                comparison,
                objective=objective,
                currency=plan.scenario.plan.currency,
            ),
            f"Spend and {_words(objective)} by scenario",
            images,
        ),
    )


def _rules_section(plan: Plan) -> str:
    objective = plan.scenario.objective.maximize
    rules = rules_of_rows(plan)
    binding, slack = [], []
    for report, rule in zip(plan.constraints, rules, strict=True):
        if report.name == "budget":
            continue
        if not report.binding:
            slack.append(report.label)
            continue
        binding.append(
            _row(
                [
                    _td(report.label),
                    _td(
                        f"{report.shadow_price:,.4f}",
                        metric="shadow_price",
                        key=f"rule:{report.name}",
                        number=True,
                    ),
                    _td(report.explain(objective)),
                    _td(rule.note if rule else "", muted=True),
                ]
            )
        )
    parts = [
        "<p>A rule binds when the plan would do better without it. Its shadow "
        f"price is the {_text(_words(objective.value))} that one dollar of "
        "slack in the rule would add: a negative price belongs to a minimum "
        "(lowering it helps), a positive one to a maximum (raising it helps).</p>"
    ]
    if binding:
        parts.append(
            _table(
                "Rules that bind",
                ["rule", "shadow price", "what it means", "why the rule exists"],
                binding,
                numeric={1},
            )
        )
    else:
        parts.append("<p>No rule other than the budget binds.</p>")
    if slack:
        parts.append(
            f"<p>Rules that hold with room to spare: {_text('; '.join(slack))}.</p>"
        )
    return _section("Rules that limit the plan", *parts)


def _changelog_section(plan: Plan, changelog: pd.DataFrame) -> str:
    """What changed since the previous version, one change at a time."""
    what = _words(plan.scenario.objective.maximize.value)
    rows = []
    for record in changelog.itertuples():
        delta = record.objective_delta
        key = f"step:{record.step}"
        rows.append(
            _row(
                [
                    _td(str(record.step)),
                    _td(str(record.change)),
                    _td(str(record.status)),
                    _td(
                        "" if pd.isna(delta) else f"{delta:,.2f}",
                        metric="objective_delta",
                        key=key,
                        number=True,
                    ),
                    _td(str(record.note or ""), muted=True),
                ]
            ),
        )
    return _section(
        "What changed since the previous version",
        "<p>The changes between the two versions, applied one at a time in a "
        f"fixed order and re-solved after each: each step's change of "
        f"{_text(what)} is what that change accounts for, and the steps add up "
        "to the total.</p>",
        _table(
            "Change log",
            ["step", "change", "status", f"change of {what}", "note"],
            rows,
            numeric={3},
        ),
    )


def _check_section(plan: Plan) -> str:
    verification = plan.verification
    solver = plan.solver
    verdict = (
        "The answer was checked without trusting the solver: every rule and "
        "every curve limit holds, and a duality certificate proves that no "
        "allocation under the same rules does better."
        if verification.passed
        else "The answer did NOT pass the independent check."
    )
    items = [
        verdict,
        f"Check: {verification.describe()}.",
        f"Solver: {solver.name} {solver.version}.",
        f"Curves: {plan.approximation.describe()}.",
    ]
    inputs = [
        _row([_td(name), _td(digest, muted=True)])
        for name, digest in plan.scenario.input_hashes
    ]
    parts = [
        "<ul>\n" + "\n".join(f"<li>{_text(item)}</li>" for item in items) + "\n</ul>"
    ]
    if inputs:
        parts.append(_table("Input files", ["file", "SHA-256"], inputs))
    return _section("How the plan was checked", *parts)


# --- tables -------------------------------------------------------------------


def _cents_matrix(
    cents: pd.DataFrame, row_kind: str, column_kind: str, *, corner: str
) -> str:
    """A cross table of spend in cents, with its total row and column."""
    columns = list(cents.columns)
    rows = []
    for label, values in cents.iterrows():
        is_total = label == "total"
        row_key = "" if is_total else f"{row_kind}:{label}"
        cells = [_th(str(label))]
        for column in columns:
            if column == "total":
                key = row_key or "total"
            else:
                column_key = f"{column_kind}:{column}"
                key = f"{row_key}/{column_key}" if row_key else column_key
            cells.append(
                _td(_cents(int(values[column])), metric="spend", key=key, number=True)
            )
        rows.append(_row(cells, css="total" if is_total else None))
    return (
        '<div class="scroll">'
        + _table("", [corner, *columns], rows, numeric=set(range(1, len(columns) + 1)))
        + "</div>"
    )


def _metrics_table(plan: Plan, by: str, caption: str) -> str:
    totals = plan.totals(by)
    if by == "stage":
        totals = totals.reindex([s for s in STAGE_ORDER if s in totals.index])
    cents = (
        pd.Series(plan.spend_cents, index=plan.allocation.index)
        .groupby(plan.allocation[totals.index.name])
        .sum()
    )
    metrics = ["spend", *_outcomes(), "cpa", "roi"]
    rows = []
    for label, record in totals.iterrows():
        key = f"{by}:{label}"
        cells = [_th(str(label))]
        for metric in metrics:
            if metric == "spend":
                cells.append(
                    _td(_cents(int(cents[label])), metric="spend", key=key, number=True)
                )
            else:
                cells.append(_metric_td(metric, record[metric], key))
        rows.append(_row(cells))
    headings = [METRIC_HEADINGS[m] for m in metrics]
    return (
        '<div class="scroll">'
        + _table(
            caption, [by, *headings], rows, numeric=set(range(1, len(metrics) + 1))
        )
        + "</div>"
    )


def _metric_td(
    metric: str, value: float, key: str, *, money: bool | None = None
) -> str:
    """A number cell named by its metric and key, in the metric's format."""
    if money or (money is None and metric in MONEY_METRICS):
        text = _money(value)
    elif metric in RATIO_METRICS:
        text = _ratio(value)
    else:
        text = _count(value)
    return _td(text, metric=metric, key=key, number=True)


def _outcomes() -> tuple[str, ...]:
    return ("conversions", "opportunities", "pipeline", "bookings_in_horizon")


def _binding_words(binding: object) -> str:
    """The frontier's ``binding`` text: rule labels separated by semicolons."""
    if not isinstance(binding, str):
        return ""
    return "; ".join(part.strip() for part in binding.split(";") if part.strip())


# --- html ---------------------------------------------------------------------


def _section(title: str, *parts: str) -> str:
    return f"<section>\n<h2>{_text(title)}</h2>\n" + "\n".join(parts) + "\n</section>"


def _table(
    caption: str,
    headings: Sequence[str],
    rows: Iterable[str],
    *,
    numeric: set[int] | None = None,
) -> str:
    numeric = numeric or set()
    head = "".join(
        _th(h, css="number" if i in numeric else None, scope="col")
        for i, h in enumerate(headings)
    )
    caption_html = f"<caption>{_text(caption)}</caption>\n" if caption else ""
    return (
        f"<table>\n{caption_html}<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _row(cells: Iterable[str], *, css: str | None = None) -> str:
    attribute = f' class="{_text(css)}"' if css else ""
    return f"<tr{attribute}>" + "".join(cells) + "</tr>"


def _th(text: str, *, css: str | None = None, scope: str = "row") -> str:
    attribute = f' class="{_text(css)}"' if css else ""
    return f'<th scope="{scope}"{attribute}>{_text(text)}</th>'


def _td(
    text: str,
    *,
    metric: str | None = None,
    key: str | None = None,
    number: bool = False,
    muted: bool = False,
) -> str:
    attributes = ""
    if metric is not None:
        attributes += f' data-metric="{_text(metric)}"'
    if key is not None:
        attributes += f' data-key="{_text(key)}"'
    css = [name for name, on in (("number", number), ("muted", muted)) if on]
    if css:
        attributes += f' class="{" ".join(css)}"'
    return f"<td{attributes}>{_text(text)}</td>"


def _image(
    name: str, draw: Callable[[], Figure], description: str, images: Images
) -> str:
    """An embedded chart: the PNG already rendered under ``name``, or drawn now."""
    data = base64.b64encode(images.get(name) or png_bytes(draw())).decode("ascii")
    width, height = (round(size * DPI) for size in FIGURE_SIZE)
    return (
        f'<img src="data:image/png;base64,{data}" width="{width}" '
        f'height="{height}" alt="{_text(description)}">'
    )


def _text(value: str) -> str:
    return html.escape(str(value), quote=True)


# --- numbers ------------------------------------------------------------------


def _cents(cents: int) -> str:
    """Whole cents as money text, exactly: 36000000 -> 360,000.00."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    return f"{sign}{units:,}.{rest:02d}"


def _money(value: float) -> str:
    return _missing(value) or f"{round(value, 2) + 0.0:,.2f}"


def _count(value: float) -> str:
    return _missing(value) or f"{round(value, 1) + 0.0:,.1f}"


def _ratio(value: float) -> str:
    return _missing(value) or f"{round(value, 4) + 0.0:,.4f}"


def _points(value: float) -> str:
    """A change given in percent, such as -15.0 for a 15% cut."""
    return _missing(value) or f"{round(value, 1) + 0.0:+.1f}%"


def _missing(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else ""


def _unit(metric: str, currency: str) -> str:
    if metric == "cpa":
        return f"{currency} per conversion"
    if metric == "roi":
        return f"per {currency} spent"
    return currency if metric in MONEY_METRICS else ""


def _month_words(label: str) -> str:
    year, month = label.split("-")
    return f"{MONTH_NAMES[int(month) - 1]} {year}"


def _words(name: str) -> str:
    return name.replace("_", " ")
