"""Charts: what they draw equals the plan, and saved PNGs repeat byte for byte."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

import optimizer
from optimizer import charts

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scenarios" / "demo_pipeline.toml"


@pytest.fixture(scope="module")
def plan() -> optimizer.Plan:
    return optimizer.optimize(optimizer.load_scenario(DEMO))


def fake_frontier() -> pd.DataFrame:
    """Five budgets; the largest has no plan."""
    budgets = [1_800_000.0, 2_100_000.0, 2_400_000.0, 2_700_000.0, 3_000_000.0]
    return pd.DataFrame(
        {
            "budget": budgets,
            "objective": [27.9e6, 31.5e6, 34.6e6, 36.9e6, math.nan],
            "marginal_roi": [12.1, 8.4, 5.35, 3.9, math.nan],
            "status": ["optimal"] * 4 + ["infeasible"],
            "spend_stage_decision": [b / 2 for b in budgets[:4]] + [math.nan],
            "spend_channel_linkedin": [360_000.0] * 4 + [math.nan],
            "binding": ["channel linkedin: at least 360,000.00 USD"] * 4
            + ["the channel minimums add up to more than the budget"],
        }
    )


def fake_comparison() -> pd.DataFrame:
    """A base and two variants, totals only."""
    rows = []
    for scenario, spend, pipeline in (
        ("base", 2_400_000.0, 34_000_000.0),
        ("cut 15%", 2_040_000.0, 30_600_000.0),
        ("linkedin +20%", 2_400_000.0, 35_700_000.0),
    ):
        for metric, value, base in (
            ("spend", spend, 2_400_000.0),
            ("pipeline", pipeline, 34_000_000.0),
        ):
            delta = math.nan if scenario == "base" else value - base
            rows.append(
                (scenario, "total", "all", metric, value, delta, 100 * delta / base)
            )
    return pd.DataFrame(
        rows,
        columns=["scenario", "level", "key", "metric", "value", "delta", "delta_pct"],
    )


def stacked(ax: object) -> dict[str, list[float]]:
    """Bar heights by legend label, in the order of the bars."""
    return {
        str(container.get_label()): [bar.get_height() for bar in container]
        for container in ax.containers  # type: ignore[attr-defined]
        if isinstance(container, BarContainer)
    }


def line(ax: object, label: str) -> Line2D:
    found = [
        item
        for item in ax.get_lines()  # type: ignore[attr-defined]
        if item.get_label() == label
    ]
    assert len(found) == 1, label
    return found[0]


def cents_by(plan: optimizer.Plan, rows: str, columns: str) -> pd.DataFrame:
    frame = plan.allocation[[rows, columns]].assign(cents=plan.spend_cents)
    return frame.groupby([rows, columns])["cents"].sum().unstack(fill_value=0)


def test_allocation_chart_stacks_each_stage_to_its_spend(plan: optimizer.Plan) -> None:
    figure = charts.allocation_chart(plan)
    ax = figure.axes[0]
    expected = cents_by(plan, "stage", "channel_id")

    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == ["research", "evaluation", "decision"]
    heights = stacked(ax)
    assert sorted(heights) == sorted(c.channel_id for c in plan.scenario.channels)
    for channel, bars in heights.items():
        wanted = [expected.loc[stage, channel] / 100 for stage in labels]
        assert bars == pytest.approx(wanted, abs=1e-9), channel
    tops = np.sum(list(heights.values()), axis=0)
    assert tops.sum() == pytest.approx(2_400_000.00, abs=1e-6)
    assert tops[2] == pytest.approx(1_200_000.00, abs=1e-6)  # half on decision


def test_phasing_chart_stacks_each_month_to_its_spend(plan: optimizer.Plan) -> None:
    figure = charts.phasing_chart(plan)
    ax = figure.axes[0]
    expected = cents_by(plan, "month", "channel_id").sum(axis=1) / 100

    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == [f"2027-{m:02d}" for m in range(1, 13)]
    tops = np.sum(list(stacked(ax).values()), axis=0)
    assert tops == pytest.approx(expected.reindex(labels).to_numpy(), abs=1e-9)
    assert tops[-1] <= 120_000.00  # the December cap


def test_charts_draw_on_the_given_axes_and_return_the_root_figure(
    plan: optimizer.Plan,
) -> None:
    figure = Figure()
    left, right = figure.subfigures(1, 2)
    ax = right.add_subplot()

    assert charts.phasing_chart(plan, ax=ax) is figure
    assert len(stacked(ax)) == 6
    assert left.axes == []


def test_new_figures_need_no_backend(plan: optimizer.Plan) -> None:
    figure = charts.allocation_chart(plan)
    assert type(figure.canvas) is FigureCanvasBase


def test_linear_response_curve_is_exact_to_the_clicks(plan: optimizer.Plan) -> None:
    # bing_search for the long tail: cpc 15.97, 4.18% to demo, 150 clicks a
    # month; February has no seasonality, so the curve is 15.97 * 150 wide.
    cell = "decision_new_lead_long_tail/bing_search"
    ax = charts.response_curve_chart(plan, cell, month="2027-02").axes[0]

    pieces = line(ax, "program's pieces")
    assert pieces.get_xdata() == pytest.approx([0.0, 2395.5])
    assert pieces.get_ydata() == pytest.approx([0.0, 6.27])
    true = line(ax, "true linear curve")
    spend = np.asarray(true.get_xdata())
    wanted = np.minimum(spend / 15.97, 150) * 0.0418
    assert true.get_ydata() == pytest.approx(wanted)
    chosen = line(ax, "plan: 2,395.50 USD")
    assert chosen.get_xdata() == pytest.approx([2395.50])
    assert chosen.get_ydata() == pytest.approx([6.27])


def test_saturating_response_curve_follows_seasonality(plan: optimizer.Plan) -> None:
    # linkedin for the long tail: 2.29 conversions at most, scale 1,500;
    # January's volume is 0.95 for every cell, its cost 1.
    cell = "evaluation_new_lead_long_tail/linkedin"
    ax = charts.response_curve_chart(plan, cell, month="2027-01").axes[0]

    def true(spend: np.ndarray) -> np.ndarray:
        return 0.95 * 2.29 * (1 - np.exp(-spend / (0.95 * 1500)))

    drawn = line(ax, "true saturating curve")
    assert drawn.get_ydata() == pytest.approx(true(np.asarray(drawn.get_xdata())))
    pieces = line(ax, "program's pieces")
    x, y = np.asarray(pieces.get_xdata()), np.asarray(pieces.get_ydata())
    assert len(x) == 9  # 8 pieces
    assert x[-1] == pytest.approx(-0.95 * 1500 * math.log(0.01))
    assert y == pytest.approx(true(x))  # breakpoints lie on the curve
    row = plan.allocation[
        (plan.allocation["cell"] == cell) & (plan.allocation["month"] == "2027-01")
    ].index[0]
    spend = int(plan.spend_cents[row]) / 100
    chosen = line(ax, f"plan: {spend:,.2f} USD")
    assert chosen.get_ydata()[0] == pytest.approx(np.interp(spend, x, y))


def test_points_response_curve_shows_the_measured_points(plan: optimizer.Plan) -> None:
    cell = "decision_new_lead_long_tail/retargeting"
    with (ROOT / "scenarios" / "demo" / "points.csv").open() as file:
        measured = [
            (float(row["spend"]), float(row["conversions"]))
            for row in csv.DictReader(file)
            if f"{row['segment_id']}/{row['channel_id']}" == cell
        ]
    ax = charts.response_curve_chart(plan, cell, month="2027-02").axes[0]

    points = line(ax, "measured points")
    assert list(points.get_xdata()) == pytest.approx([s for s, _ in measured])
    assert list(points.get_ydata()) == pytest.approx([c for _, c in measured])
    pieces = line(ax, "program's pieces")
    assert list(pieces.get_xdata()[1:]) == pytest.approx([s for s, _ in measured])
    assert list(pieces.get_ydata()[1:]) == pytest.approx([c for _, c in measured])


def test_response_curve_refuses_an_unknown_cell(plan: optimizer.Plan) -> None:
    with pytest.raises(ValueError) as excinfo:
        charts.response_curve_chart(plan, "nobody/linkedin")
    assert str(excinfo.value) == (
        "cell='nobody/linkedin' is not in the plan; expected a "
        "'segment_id/channel_id' such as 'decision_new_lead_long_tail/bing_search'"
    )


def test_frontier_chart_marks_the_chosen_budget() -> None:
    figure = charts.frontier_chart(
        fake_frontier(), chosen_budget=2_400_000.0, objective="pipeline"
    )
    ax, roi_axis = figure.axes

    objective = line(ax, "pipeline")
    assert list(objective.get_xdata()) == [1.8e6, 2.1e6, 2.4e6, 2.7e6]
    assert list(objective.get_ydata()) == [27.9e6, 31.5e6, 34.6e6, 36.9e6]
    assert list(line(roi_axis, "marginal ROI").get_ydata()) == [12.1, 8.4, 5.35, 3.9]
    assert list(line(ax, "no plan at this budget").get_xdata()) == [3.0e6]
    chosen = line(ax, "chosen budget 2,400,000.00 USD")
    assert list(chosen.get_xdata()) == [2.4e6, 2.4e6]
    assert ax.get_ylabel() == "pipeline (USD)"


def test_comparison_chart_shows_spend_and_objective_by_scenario() -> None:
    figure = charts.comparison_chart(fake_comparison(), objective="pipeline")
    ax, value_axis = figure.axes

    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == ["base", "cut 15%", "linkedin +20%"]
    assert stacked(ax)["spend"] == [2.4e6, 2.04e6, 2.4e6]
    assert stacked(value_axis)["pipeline"] == [34.0e6, 30.6e6, 35.7e6]
    notes = [text.get_text() for text in value_axis.texts]
    assert notes == ["base", "-10.0%", "+5.0%"]


def test_saved_charts_repeat_byte_for_byte(
    plan: optimizer.Plan, tmp_path: Path
) -> None:
    first = charts.save_charts(plan, tmp_path / "a", fake_comparison(), fake_frontier())
    # A user's style settings do not reach the saved files.
    with matplotlib.rc_context({"font.size": 20, "axes.facecolor": "black"}):
        second = charts.save_charts(
            plan, tmp_path / "b", fake_comparison(), fake_frontier()
        )

    names = [path.name for path in first]
    assert names == [
        "allocation.png",
        "phasing.png",
        "response_linear.png",
        "response_saturating.png",
        "response_points.png",
        "frontier.png",
        "comparison.png",
    ]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(names)
    for a, b in zip(first, second, strict=True):
        data = a.read_bytes()
        assert data == b.read_bytes(), a.name
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert b"Software" not in data
        with Image.open(a) as image:
            assert image.size == (800, 450)


def test_save_charts_without_comparison_or_frontier(
    plan: optimizer.Plan, tmp_path: Path
) -> None:
    written = charts.save_charts(plan, tmp_path / "charts")
    assert [p.stem for p in written] == [
        "allocation",
        "phasing",
        "response_linear",
        "response_saturating",
        "response_points",
    ]
