"""The workbook: read back, totals reconcile to the cent; same plan, same bytes."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import optimizer
from optimizer.workbook import write_workbook

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scenarios" / "demo_pipeline.toml"
USD = "[$USD] #,##0.00"


@pytest.fixture(scope="module")
def plan() -> optimizer.Plan:
    return optimizer.optimize(optimizer.load_scenario(DEMO))


def fake_comparison() -> pd.DataFrame:
    """A base and a 15% cut: totals and one channel."""
    rows = [
        ("base", "total", "all", "spend", 2_400_000.0, math.nan, math.nan),
        ("base", "total", "all", "pipeline", 34_000_000.0, math.nan, math.nan),
        ("base", "channel", "linkedin", "spend", 360_000.0, math.nan, math.nan),
        ("cut 15%", "total", "all", "spend", 2_040_000.0, -360_000.0, -15.0),
        ("cut 15%", "total", "all", "pipeline", 30_600_000.0, -3_400_000.0, -10.0),
        ("cut 15%", "channel", "linkedin", "spend", 360_000.0, 0.0, 0.0),
    ]
    return pd.DataFrame(
        rows,
        columns=["scenario", "level", "key", "metric", "value", "delta", "delta_pct"],
    )


def fake_frontier() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "budget": [2_700_000.0, 2_100_000.0, 2_400_000.0],
            "objective": [36.9e6, 31.5e6, 34.6e6],
            "marginal_roi": [3.9, 8.4, 5.35],
            "status": ["optimal"] * 3,
            "spend_stage_decision": [1_350_000.0, 1_050_000.0, 1_200_000.0],
            "spend_channel_linkedin": [360_000.0] * 3,
            "binding": ["channel linkedin: at least 360,000.00 USD"] * 3,
        }
    )


@pytest.fixture(scope="module")
def workbook(plan: optimizer.Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workbook") / "plan.xlsx"
    return write_workbook(path, plan, fake_comparison(), fake_frontier())


@pytest.fixture(scope="module")
def sheets(workbook: Path) -> dict[str, pd.DataFrame]:
    return pd.read_excel(workbook, sheet_name=None, engine="openpyxl")


def cents(values: pd.Series) -> list[int]:
    return [round(v * 100) for v in values.astype(float)]


def test_sheets_come_in_order(sheets: dict[str, pd.DataFrame]) -> None:
    assert list(sheets) == [
        "Summary",
        "Allocation",
        "Monthly phasing",
        "By stage",
        "By channel",
        "By segment",
        "Scenario comparison",
        "Frontier",
        "Assumptions",
        "Constraints",
    ]


def test_comparison_and_frontier_sheets_are_optional(
    plan: optimizer.Plan, tmp_path: Path
) -> None:
    path = write_workbook(tmp_path / "plan.xlsx", plan)
    names = openpyxl.load_workbook(path, read_only=True).sheetnames
    assert "Scenario comparison" not in names
    assert "Frontier" not in names
    assert len(names) == 8


def test_allocation_spend_is_the_plans_cents(
    plan: optimizer.Plan, sheets: dict[str, pd.DataFrame]
) -> None:
    allocation = sheets["Allocation"]

    assert len(allocation) == 86 * 12
    assert cents(allocation["spend"]) == plan.spend_cents.tolist()
    assert sum(cents(allocation["spend"])) == 2_400_000_00
    assert allocation["pipeline"].sum() == pytest.approx(plan.objective_value)


@pytest.mark.parametrize(
    ("sheet", "by", "column"),
    [
        ("By stage", "stage", "stage"),
        ("By channel", "channel", "channel_id"),
        ("By segment", "segment", "segment_id"),
    ],
)
def test_totals_sheets_reconcile_to_the_cent(
    plan: optimizer.Plan,
    sheets: dict[str, pd.DataFrame],
    sheet: str,
    by: str,
    column: str,
) -> None:
    table = sheets[sheet].set_index(column)
    expected = plan.totals(by)
    allocation = sheets["Allocation"]
    summed = (
        pd.Series(cents(allocation["spend"]), index=allocation.index)
        .groupby(allocation[column])
        .sum()
    )

    body = table.drop(index="total")
    assert sorted(body.index) == sorted(expected.index)
    for key, row in body.iterrows():
        assert round(row["spend"] * 100) == round(expected.loc[key, "spend"] * 100)
        assert round(row["spend"] * 100) == summed[key]
        for metric in ("conversions", "pipeline", "bookings_in_horizon", "roi"):
            wanted = pytest.approx(expected.loc[key, metric], nan_ok=True)
            assert row[metric] == wanted, metric
    assert round(table.loc["total", "spend"] * 100) == 2_400_000_00
    assert sum(cents(body["spend"])) == 2_400_000_00
    assert table.loc["total", "pipeline"] == pytest.approx(plan.overall()["pipeline"])


def test_monthly_phasing_reconciles_both_ways(
    plan: optimizer.Plan, sheets: dict[str, pd.DataFrame]
) -> None:
    phasing = sheets["Monthly phasing"].fillna({"channel_id": ""})
    months = [f"2027-{m:02d}" for m in range(1, 13)]
    assert list(phasing.columns) == ["segment_id", "channel_id", *months, "total"]
    body = phasing[phasing["segment_id"] != "total"]
    total = phasing[phasing["segment_id"] == "total"].iloc[0]
    by_month = plan.totals("month")

    assert len(body) == 86
    for month in months:
        column = cents(body[month])
        assert round(total[month] * 100) == sum(column)
        assert sum(column) == round(by_month.loc[month, "spend"] * 100)
    for _, row in body.iterrows():
        assert round(row["total"] * 100) == sum(round(row[m] * 100) for m in months)
    assert round(total["total"] * 100) == 2_400_000_00
    assert round(total["2027-12"] * 100) <= 120_000_00


def test_summary_states_the_objective_and_the_check(
    plan: optimizer.Plan, sheets: dict[str, pd.DataFrame]
) -> None:
    summary = sheets["Summary"].set_index("item")["value"]

    assert summary["objective"] == "maximize pipeline"
    assert float(summary["objective value"]) == pytest.approx(plan.objective_value)
    assert round(float(summary["spend"]) * 100) == 2_400_000_00
    assert round(float(summary["budget"]) * 100) == 2_400_000_00
    assert float(summary["budget shadow price"]) == pytest.approx(
        plan.budget_shadow_price
    )
    assert summary["check"] == plan.verification.describe()
    assert summary["horizon"] == "12 months, 2027-01 to 2027-12"


def test_constraints_sheet_lists_every_rule(
    plan: optimizer.Plan, sheets: dict[str, pd.DataFrame]
) -> None:
    table = sheets["Constraints"].set_index("name")
    allocation = plan.allocation

    assert list(table.index) == [c.name for c in plan.constraints]
    for report in plan.constraints:
        row = table.loc[report.name]
        assert row["shadow_price"] == pytest.approx(report.shadow_price)
        assert row["binding"] == ("yes" if report.binding else "no")
    linkedin = plan.spend_cents[(allocation["channel_id"] == "linkedin").to_numpy()]
    december = plan.spend_cents[(allocation["month"] == "2027-12").to_numpy()]
    assert round(table.loc["min_channel_linkedin", "spend_in_scope"] * 100) == int(
        linkedin.sum()
    )
    assert round(table.loc["max_month_2027_12", "spend_in_scope"] * 100) == int(
        december.sum()
    )
    assert table.loc["max_month_2027_12", "note"].startswith("Finance caps December")
    assert table.loc["max_month_2027_12", "meaning"].startswith(
        "raising this limit by one dollar is worth 1.11"
    )


def section(raw: pd.DataFrame, title: str) -> pd.DataFrame:
    """The table under a title of a sectioned sheet, up to the next blank row."""
    start = raw.index[raw[0] == title][0]
    rows = []
    for _, row in raw.iloc[start + 2 :].iterrows():
        if row.isna().all():
            break
        rows.append(row)
    header = raw.iloc[start + 1].dropna().tolist()
    return pd.DataFrame(rows).iloc[:, : len(header)].set_axis(header, axis=1)


def test_assumptions_hold_every_input(workbook: Path) -> None:
    raw = pd.read_excel(workbook, sheet_name="Assumptions", header=None)
    demo = ROOT / "scenarios" / "demo"

    def lines(name: str) -> int:
        return len((demo / name).read_text().splitlines()) - 1

    for title, file in (
        ("Segments", "segments.csv"),
        ("Channels", "channels.csv"),
        ("Responses", "responses.csv"),
        ("Points", "points.csv"),
        ("Seasonality", "seasonality.csv"),
    ):
        assert len(section(raw, title)) == lines(file), title
    settings = section(raw, "Settings").set_index("setting")["value"].to_dict()
    toml = tomllib.loads(DEMO.read_text())
    for group in ("plan", "budget", "objective", "curves", "sales_cycle"):
        for key, value in toml[group].items():
            written = settings[f"{group}.{key}"]
            if isinstance(value, bool):
                assert written == str(value).lower(), key
            else:
                assert written == value, key
    rules = section(raw, "Rules")
    assert rules["note"].tolist() == [rule["note"] for rule in toml["constraints"]]
    digests = section(raw, "Input files").set_index("file")["sha256"]
    assert len(digests) == 6
    assert (
        digests["demo/segments.csv"]
        == hashlib.sha256((demo / "segments.csv").read_bytes()).hexdigest()
    )


def test_comparison_sheet_has_the_summary_then_every_level(workbook: Path) -> None:
    raw = pd.read_excel(workbook, sheet_name="Scenario comparison", header=None)

    summary = raw.iloc[:3, :3]
    assert summary.values.tolist() == [
        ["scenario", "spend", "pipeline"],
        ["base", 2_400_000, 34_000_000],
        ["cut 15%", 2_040_000, 30_600_000],
    ]
    title = raw.index[
        raw[0] == "Every level, with the change against the base scenario"
    ]
    detail = pd.read_excel(
        workbook, sheet_name="Scenario comparison", skiprows=int(title[0]) + 1
    )
    assert len(detail) == len(fake_comparison())
    assert detail["delta_pct"].tolist()[3:] == [-15.0, -10.0, 0.0]


def test_frontier_sheet_marks_the_chosen_budget(
    sheets: dict[str, pd.DataFrame],
) -> None:
    frontier = sheets["Frontier"]
    assert frontier["budget"].tolist() == [2_100_000, 2_400_000, 2_700_000]
    assert frontier["chosen"].fillna("").tolist() == ["", "chosen budget", ""]


def test_money_has_a_currency_format_and_headers_are_frozen(workbook: Path) -> None:
    book = openpyxl.load_workbook(workbook)
    allocation = book["Allocation"]
    headers = {cell.value: cell.column_letter for cell in allocation[1]}

    for column in ("spend", "pipeline", "bookings_in_horizon", "cpa"):
        assert allocation[f"{headers[column]}2"].number_format == USD, column
    assert allocation[f"{headers['roi']}2"].number_format == "0.0000"
    assert allocation.freeze_panes == "A2"
    assert allocation.auto_filter.ref == "A1:V1033"
    assert book["Monthly phasing"].freeze_panes == "C2"
    assert book["Monthly phasing"]["O2"].number_format == USD
    assert book["By channel"].freeze_panes == "B2"
    assert book["Frontier"]["A2"].number_format == USD
    for sheet in book.worksheets:
        for cell in sheet[1]:
            if sheet.title != "Assumptions" and cell.value:
                width = sheet.column_dimensions[cell.column_letter].width
                assert width >= min(len(str(cell.value)), 60), (sheet.title, cell)


def test_the_same_plan_gives_the_same_bytes(
    plan: optimizer.Plan, workbook: Path, tmp_path: Path
) -> None:
    again = write_workbook(
        tmp_path / "plan.xlsx", plan, fake_comparison(), fake_frontier()
    )
    assert again.read_bytes() == workbook.read_bytes()

    # A fresh interpreter, another hash seed, another time zone: the same bytes.
    script = (
        "import sys, optimizer; from optimizer.workbook import workbook_bytes; "
        "plan = optimizer.optimize(optimizer.load_scenario(sys.argv[1])); "
        "sys.stdout.buffer.write(workbook_bytes(plan))"
    )
    alone = write_workbook(tmp_path / "alone.xlsx", plan)
    result = subprocess.run(
        [sys.executable, "-c", script, str(DEMO)],
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Auckland"},
    )
    assert result.stdout == alone.read_bytes()


def test_a_failed_write_leaves_the_old_file(
    plan: optimizer.Plan, tmp_path: Path
) -> None:
    path = write_workbook(tmp_path / "plan.xlsx", plan)
    before = path.read_bytes()

    with pytest.raises(KeyError):
        write_workbook(path, plan, frontier=pd.DataFrame({"objective": [1.0]}))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan.xlsx"]
