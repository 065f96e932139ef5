"""Charts of a plan, a scenario comparison and a budget frontier.

Each chart is a pure function of what it shows: it draws on the ``ax`` it is
given, or on a new figure, and returns the figure; nothing is shown. Figures
are made with :class:`matplotlib.figure.Figure` itself rather than through
``pyplot``, so this module never selects a backend, never keeps figures in
pyplot's registry and works in a server, a notebook or a test alike. Saving
renders with Agg.

Saved PNGs repeat byte for byte: they are drawn in matplotlib's default
style (not the machine's matplotlibrc) with its bundled fonts, at a fixed
resolution and without the ``Software`` text chunk.

Money is plotted in currency units, so a bar's height is the amount in the
tables; spend comes from the plan's cents.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from optimizer.curves import build_curves, seasonal_multipliers
from optimizer.outputs import staged_folder
from optimizer.plan import Plan
from optimizer.reports import STAGE_ORDER
from optimizer.scenario import CurveKind, CurvePoint, Objective, Response

#: Resolution of saved charts, in dots per inch.
DPI = 100

#: Size of a new figure, in inches.
FIGURE_SIZE = (8.0, 4.5)

#: Objectives measured in money rather than in conversions.
MONEY_OBJECTIVES = frozenset({Objective.PIPELINE, Objective.BOOKINGS_IN_HORIZON})

#: Points on a drawn response curve.
CURVE_SAMPLES = 400


def allocation_chart(plan: Plan, *, ax: Axes | None = None) -> Figure:
    """Spend by funnel stage, stacked by channel.

    Parameters
    ----------
    plan
        The plan to draw.
    ax
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    Figure
        The figure that holds the chart.
    """
    cents = _cents_table(plan, "stage", "channel_id")
    stages = [s for s in STAGE_ORDER if s in cents.index]
    figure, ax = _figure_and_axes(ax)

    _stacked_bars(ax, cents.reindex(stages) / 100, _channel_colors(plan))
    ax.set_title("Spend by funnel stage and channel")
    ax.set_xlabel("funnel stage")
    _money_axis(ax, f"spend ({plan.scenario.plan.currency})")
    return figure


def phasing_chart(plan: Plan, *, ax: Axes | None = None) -> Figure:
    """Spend by month, stacked by channel.

    Parameters
    ----------
    plan
        The plan to draw.
    ax
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    Figure
        The figure that holds the chart.
    """
    cents = _cents_table(plan, "month", "channel_id")
    months = list(plan.scenario.plan.month_labels)
    figure, ax = _figure_and_axes(ax)

    _stacked_bars(ax, cents.reindex(months, fill_value=0) / 100, _channel_colors(plan))
    ax.set_title("Monthly phasing of spend by channel")
    ax.set_xlabel("month")
    ax.tick_params(axis="x", labelrotation=45)
    _money_axis(ax, f"spend ({plan.scenario.plan.currency})")
    return figure


def frontier_chart(
    frontier: pd.DataFrame,
    *,
    chosen_budget: float | None = None,
    objective: Objective | str = "objective",
    currency: str = "USD",
    ax: Axes | None = None,
) -> Figure:
    """The best objective at each budget, with its marginal ROI on a second axis.

    Only points whose ``status`` is ``optimal`` are drawn as the frontier;
    others are marked along the budget axis, since they have no objective.

    Parameters
    ----------
    frontier
        One row per budget with ``budget``, ``objective``, ``marginal_roi``
        and ``status``.
    chosen_budget
        A budget to mark with a vertical line, usually the plan's.
    objective
        What the objective measures, for the axis label.
    currency
        The plan's currency code, for the axis labels.
    ax
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    Figure
        The figure that holds the chart.
    """
    frame = frontier.sort_values("budget", kind="stable")
    solved = frame[frame["status"].astype(str) == "optimal"]
    unsolved = frame[frame["status"].astype(str) != "optimal"]
    figure, ax = _figure_and_axes(ax)
    what = _objective_words(objective)

    ax.plot(solved["budget"], solved["objective"], marker="o", color="C0", label=what)
    if len(unsolved):
        ax.plot(
            unsolved["budget"],
            np.zeros(len(unsolved)),
            linestyle="none",
            marker="x",
            color="C3",
            label="no plan at this budget",
        )
    roi_axis = ax.twinx()
    roi_axis.plot(
        solved["budget"],
        solved["marginal_roi"],
        marker="s",
        linestyle="--",
        color="C1",
        label="marginal ROI",
    )
    roi_axis.set_ylabel(f"{what} per extra {currency}")
    roi_axis.set_ylim(bottom=0)
    if chosen_budget is not None:
        ax.axvline(
            chosen_budget,
            color="0.3",
            linestyle=":",
            label=f"chosen budget {_money_text(chosen_budget, currency)}",
        )

    ax.set_title(f"Budget frontier: best {what} at each budget")
    _money_axis(ax, _objective_label(objective, currency))
    ax.xaxis.set_major_formatter(FuncFormatter(_short_money))
    ax.set_xlabel(f"budget ({currency})")
    handles = ax.get_legend_handles_labels()
    roi_handles = roi_axis.get_legend_handles_labels()
    ax.legend(
        handles[0] + roi_handles[0],
        handles[1] + roi_handles[1],
        loc="upper left",
        bbox_to_anchor=(1.12, 1.0),
        frameon=False,
    )
    return figure


def response_curve_chart(
    plan: Plan, cell: str, *, month: str | None = None, ax: Axes | None = None
) -> Figure:
    """One cell's monthly response curve, true and as the program saw it.

    The true curve comes from the scenario's parameters (the straight line to
    the reachable clicks, the saturating exponential, or the measured points)
    with the month's seasonality and any what-if adjustment; the program's
    curve is the piecewise-linear approximation it optimized. The plan's spend
    in that month is marked.

    Parameters
    ----------
    plan
        The plan whose scenario defines the curve.
    cell
        The cell as ``segment_id/channel_id``.
    month
        The month as ``YYYY-MM``; by default the month the cell spends most.
    ax
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    Figure
        The figure that holds the chart.

    Raises
    ------
    ValueError
        When the cell or the month is not in the plan.
    """
    scenario = plan.scenario
    curves = build_curves(scenario)
    cell_ids = [c.cell_id for c in curves.cells]
    if cell not in cell_ids:
        raise ValueError(
            f"cell={cell!r} is not in the plan; expected a 'segment_id/channel_id' "
            f"such as {cell_ids[0]!r}"
        )
    index = cell_ids.index(cell)
    allocation = plan.allocation
    in_cell = allocation["cell"] == cell
    if month is None:
        cents = np.where(in_cell, plan.spend_cents, -1)
        month = str(allocation["month"].iloc[int(np.argmax(cents))])
    if month not in curves.months:
        raise ValueError(
            f"month={month!r} is not in the plan; expected one of "
            f"{curves.months[0]} to {curves.months[-1]}"
        )
    m = curves.months.index(month)
    row = int(np.flatnonzero(in_cell & (allocation["month"] == month))[0])
    response = curves.cells[index]

    group = curves.group == index * len(curves.months) + m
    piece_spend = np.r_[0.0, np.cumsum(curves.width[group])]
    piece_conversions = np.r_[0.0, np.cumsum(curves.width[group] * curves.slope[group])]
    spend = int(plan.spend_cents[row]) / 100
    conversions = float(allocation["conversions"].iloc[row])
    volumes, costs = seasonal_multipliers(
        curves.cells, curves.months, (*scenario.seasonality, *scenario.adjustments)
    )
    volume, cost = float(volumes[index, m]), float(costs[index, m])
    points = [
        p
        for p in scenario.points
        if (p.segment_id, p.channel_id) == (response.segment_id, response.channel_id)
    ]
    top = max(piece_spend[-1], spend) * 1.2 or 1.0
    grid = np.linspace(0.0, top, CURVE_SAMPLES)
    true = true_response(response, points, grid, volume=volume, cost=cost)

    figure, ax = _figure_and_axes(ax)
    ax.plot(grid, true, color="C0", label=f"true {response.curve.value} curve")
    ax.plot(
        piece_spend,
        piece_conversions,
        color="C1",
        linestyle="--",
        marker=".",
        label="program's pieces",
    )
    if response.curve is CurveKind.POINTS:
        ax.plot(
            [p.spend * cost * volume for p in points],
            [p.conversions * volume for p in points],
            linestyle="none",
            marker="o",
            color="C0",
            label="measured points",
        )
    currency = scenario.plan.currency
    ax.axvline(spend, color="0.3", linestyle=":")
    ax.plot(
        [spend],
        [conversions],
        marker="D",
        color="C3",
        linestyle="none",
        label=f"plan: {_money_text(spend, currency)}",
    )

    ax.set_title(f"Response of {cell} in {month}")
    ax.set_xlabel(f"monthly spend ({currency})")
    ax.xaxis.set_major_formatter(FuncFormatter(_short_money))
    ax.set_ylabel("conversions per month")
    ax.set_xlim(0, top)
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right", frameon=False)
    return figure


def true_response(
    response: Response,
    points: Sequence[CurvePoint],
    spend: np.ndarray,
    *,
    volume: float = 1.0,
    cost: float = 1.0,
) -> np.ndarray:
    """Monthly conversions of a cell at each spend, from its parameters.

    Seasonality applies as ``volume * f(spend / (cost * volume))``; the curve
    is not cut at saturation, and a points curve is flat past its last point.
    """
    if volume == 0:
        return np.zeros_like(spend)
    base = spend / (cost * volume)
    if response.curve is CurveKind.LINEAR:
        assert response.cpc is not None and response.monthly_clicks is not None
        assert response.conversion_rate is not None
        clicks = np.minimum(base / response.cpc, response.monthly_clicks)
        return volume * clicks * response.conversion_rate
    if response.curve is CurveKind.SATURATING:
        assert response.max_conversions is not None and response.scale is not None
        return volume * response.max_conversions * -np.expm1(-base / response.scale)
    ordered = sorted(points, key=lambda p: p.spend)
    x = [0.0, *(p.spend for p in ordered)]
    y = [0.0, *(p.conversions for p in ordered)]
    return volume * np.interp(base, x, y)


def comparison_chart(
    comparison: pd.DataFrame,
    *,
    objective: Objective | str,
    currency: str = "USD",
    ax: Axes | None = None,
) -> Figure:
    """Spend and the objective of each scenario, side by side.

    Spend is read on the left axis and the objective on the right; each
    objective bar carries its change against the base scenario, the one
    whose ``delta`` is empty.

    Parameters
    ----------
    comparison
        The long comparison table: ``scenario, level, key, metric, value,
        delta, delta_pct``.
    objective
        The metric the plans maximize.
    currency
        The plans' currency code, for the axis labels.
    ax
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    Figure
        The figure that holds the chart.
    """
    metric = Objective(objective).value
    totals = comparison[comparison["level"] == "total"]
    scenarios = list(dict.fromkeys(totals["scenario"]))
    values = totals.pivot_table(
        index="scenario", columns="metric", values="value", aggfunc="first"
    ).reindex(scenarios)
    base = base_scenario(comparison)
    base_value = float(values.loc[base, metric]) if base is not None else math.nan

    figure, ax = _figure_and_axes(ax)
    x = np.arange(len(scenarios))
    ax.bar(x - 0.2, values["spend"], width=0.4, color="C0", label="spend")
    value_axis = ax.twinx()
    bars = value_axis.bar(
        x + 0.2,
        values[metric],
        width=0.4,
        color="C2",
        label=_objective_words(objective),
    )
    for bar, scenario in zip(bars, scenarios, strict=True):
        value = float(values.loc[scenario, metric])
        change = (value - base_value) / base_value if base_value else math.nan
        if scenario == base or math.isfinite(change):
            value_axis.annotate(
                "base" if scenario == base else f"{change:+.1%}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize="small",
            )

    ax.set_xticks(x, scenarios, rotation=20, ha="right")
    ax.set_title(f"Scenarios: spend and {_objective_words(objective)}")
    _money_axis(ax, f"spend ({currency})")
    _money_axis(value_axis, _objective_label(objective, currency))
    value_axis.grid(False)
    handles = ax.get_legend_handles_labels()
    value_handles = value_axis.get_legend_handles_labels()
    ax.legend(
        handles[0] + value_handles[0],
        handles[1] + value_handles[1],
        loc="upper left",
        bbox_to_anchor=(1.1, 1.0),
        frameon=False,
    )
    return figure


def base_scenario(comparison: pd.DataFrame) -> str | None:
    """The scenario the others are compared with: its ``delta`` is empty."""
    totals = comparison[comparison["level"] == "total"]
    base = totals.loc[totals["delta"].isna(), "scenario"]
    return str(base.iloc[0]) if len(base) else None


def chart_figures(
    plan: Plan,
    *,
    comparison: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    chosen_budget: float | None = None,
) -> dict[str, Figure]:
    """Every chart of a plan by file stem, in a fixed order.

    The response curve is drawn for the cell that spends most of each curve
    kind. The frontier marks ``chosen_budget``, by default the plan's budget.
    """
    scenario = plan.scenario
    objective = scenario.objective.maximize
    currency = scenario.plan.currency
    figures = {
        "allocation": allocation_chart(plan),
        "phasing": phasing_chart(plan),
    }
    for kind, cell in largest_cells(plan).items():
        figures[f"response_{kind}"] = response_curve_chart(plan, cell)
    if frontier is not None:
        figures["frontier"] = frontier_chart(
            frontier,
            chosen_budget=(
                scenario.budget.total if chosen_budget is None else chosen_budget
            ),
            objective=objective,
            currency=currency,
        )
    if comparison is not None:
        figures["comparison"] = comparison_chart(
            comparison, objective=objective, currency=currency
        )
    return figures


def largest_cells(plan: Plan) -> dict[str, str]:
    """The cell that spends most over the horizon, for each curve kind present."""
    frame = plan.allocation[["cell", "curve"]].assign(cents=plan.spend_cents)
    spend = frame.groupby(["curve", "cell"], sort=True)["cents"].sum()
    found = {}
    for kind in CurveKind:
        if kind.value in spend.index.get_level_values("curve"):
            cells = spend.loc[kind.value]
            found[kind.value] = str(cells.index[np.argmax(cells.to_numpy())])
    return found


@contextmanager
def default_style() -> Iterator[None]:
    """Draw with matplotlib's default settings, whatever a matplotlibrc says.

    Saved charts are drawn and rendered inside it, so that their bytes do not
    depend on the machine's style settings.
    """
    with matplotlib.style.context("default"):
        yield


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG at :data:`DPI`, the same bytes every time."""
    buffer = io.BytesIO()
    # Light compression: the files are small either way, and the default
    # level costs a third of each chart's time.
    figure.savefig(
        buffer,
        format="png",
        dpi=DPI,
        metadata={"Software": None},
        pil_kwargs={"compress_level": 1},
    )
    return buffer.getvalue()


def save_charts(
    plan: Plan,
    folder: str | Path,
    comparison: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    *,
    chosen_budget: float | None = None,
) -> list[Path]:
    """Write every chart of :func:`chart_figures` as a PNG into ``folder``.

    Charts are drawn in :func:`default_style`. Like
    :func:`optimizer.write_plan`, the folder is written beside its destination
    and replaces it only once every chart is written.

    Returns
    -------
    list of Path
        The files written, in the order of :func:`chart_figures`.
    """
    folder = Path(folder)
    with default_style():
        figures = chart_figures(
            plan, comparison=comparison, frontier=frontier, chosen_budget=chosen_budget
        )
        images = {stem: png_bytes(figure) for stem, figure in figures.items()}
    with staged_folder(folder) as staging:
        for stem, data in images.items():
            (staging / f"{stem}.png").write_bytes(data)
    return [folder / f"{stem}.png" for stem in images]


def _figure_and_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        # A subfigure's axes belong to a root figure, the one that saves.
        owner = ax.get_figure()
        while owner is not None and not isinstance(owner, Figure):
            owner = owner.get_figure()
        if owner is None:
            raise ValueError("ax is not part of a figure; pass axes from a Figure")
        return owner, ax
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    return figure, figure.add_subplot()


def _cents_table(plan: Plan, index: str, columns: str) -> pd.DataFrame:
    frame = plan.allocation[[index, columns]].assign(cents=plan.spend_cents)
    return frame.pivot_table(
        index=index, columns=columns, values="cents", aggfunc="sum", fill_value=0
    )


def _stacked_bars(ax: Axes, table: pd.DataFrame, colors: dict[str, str]) -> None:
    """One bar per row of ``table``, stacked by its columns in order."""
    x = np.arange(len(table.index))
    bottom = np.zeros(len(table.index))
    for column in table.columns:
        heights = table[column].to_numpy(dtype=float)
        ax.bar(x, heights, bottom=bottom, color=colors[column], label=str(column))
        bottom += heights
    ax.set_xticks(x, [str(label) for label in table.index])
    ax.legend(
        title="channel", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False
    )


def _channel_colors(plan: Plan) -> dict[str, str]:
    """One fixed color per channel, the same in every chart of the plan."""
    channels = sorted(c.channel_id for c in plan.scenario.channels)
    return {channel: f"C{i % 10}" for i, channel in enumerate(channels)}


def _money_axis(ax: Axes, label: str) -> None:
    ax.set_ylabel(label)
    ax.yaxis.set_major_formatter(FuncFormatter(_short_money))
    ax.grid(axis="y", color="0.9")
    ax.set_axisbelow(True)


def _short_money(value: float, _position: object = None) -> str:
    """Axis ticks as 250k or 1.2M."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:,.3g}M"
    if size >= 1e3:
        return f"{value / 1e3:,.3g}k"
    return f"{value:,.4g}"


def _money_text(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def _objective_words(objective: Objective | str) -> str:
    return str(getattr(objective, "value", objective)).replace("_", " ")


def _objective_label(objective: Objective | str, currency: str) -> str:
    words = _objective_words(objective)
    try:
        money = Objective(objective) in MONEY_OBJECTIVES
    except ValueError:
        money = False
    return f"{words} ({currency})" if money else words
