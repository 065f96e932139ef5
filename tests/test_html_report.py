"""The report page: self-contained, escaped, repeatable, and its numbers are the plan's.

The numbers are checked twice: in the page's text as written, and in the DOM
that a real browser (Debian's Chromium, headless, through chromedriver)
renders from it, where the images must also decode and the console stay
free of errors.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import optimizer
from optimizer.html_report import html_report, write_html_report

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scenarios" / "demo_pipeline.toml"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

Cell = tuple[str, str, str]  # data-metric, data-key, text


@pytest.fixture(scope="module")
def plan() -> optimizer.Plan:
    return optimizer.optimize(optimizer.load_scenario(DEMO))


def fake_comparison() -> pd.DataFrame:
    """A base and two variants: totals, with the changes in percent."""
    rows = []
    for scenario, spend, pipeline in (
        ("base", 2_400_000.0, 34_000_000.0),
        ("cut 15% <draft>", 2_040_000.0, 30_600_000.0),
        ("linkedin +20%", 2_400_000.0, 35_700_000.0),
    ):
        for metric, value, base in (
            ("spend", spend, 2_400_000.0),
            ("pipeline", pipeline, 34_000_000.0),
            ("roi", pipeline / spend, 34_000_000.0 / 2_400_000.0),
        ):
            delta = math.nan if scenario == "base" else value - base
            rows.append(
                (scenario, "total", "all", metric, value, delta, 100 * delta / base)
            )
    return pd.DataFrame(
        rows,
        columns=["scenario", "level", "key", "metric", "value", "delta", "delta_pct"],
    )


def fake_frontier() -> pd.DataFrame:
    """Four budgets; the largest has no plan."""
    return pd.DataFrame(
        {
            "budget": [2_100_000.0, 2_400_000.0, 2_700_000.0, 3_000_000.0],
            "objective": [31.5e6, 34_580_236.38, 36.9e6, math.nan],
            "marginal_roi": [8.4, 5.3513, 3.9, math.nan],
            "status": ["optimal"] * 3 + ["infeasible"],
            "spend_channel_linkedin": [360_000.0] * 3 + [math.nan],
            "binding": ["channel linkedin: at least 360,000.00 USD"] * 3
            + ["the December cap leaves too little room"],
        }
    )


@pytest.fixture(scope="module")
def page(plan: optimizer.Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "plan.html"
    return write_html_report(path, plan, fake_comparison(), fake_frontier())


class DataCells(HTMLParser):
    """Collects (data-metric, data-key, text) of every element that has them."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[Cell] = []
        self.images: list[str] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found.get("src") or "")
        if "data-metric" in found:
            self._open.append([found["data-metric"] or "", found["data-key"] or "", ""])

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._open:
            metric, key, text = self._open.pop()
            self.cells.append((metric, key, text))


def parse(text: str) -> DataCells:
    parser = DataCells()
    parser.feed(text)
    return parser


def to_cents(text: str) -> int:
    """'1,112,400.97' -> 111240097, exactly."""
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*\.\d\d", text), text
    units, cents = text.replace(",", "").split(".")
    sign = -1 if units.startswith("-") else 1
    return sign * (abs(int(units)) * 100 + int(cents))


def expected_spend(plan: optimizer.Plan) -> dict[str, int]:
    """Spend in cents for every key the page can show, summed from the plan."""
    frame = plan.allocation.assign(cents=plan.spend_cents)
    found = {"total": int(frame["cents"].sum())}
    for kind, column in (("stage", "stage"), ("channel", "channel_id")):
        for key, value in frame.groupby(column)["cents"].sum().items():
            found[f"{kind}:{key}"] = int(value)
    for key, value in frame.groupby("month")["cents"].sum().items():
        found[f"month:{key}"] = int(value)
    for rows in ("stage", "month"):
        table = frame.pivot_table(
            index=rows, columns="channel_id", values="cents", aggfunc="sum"
        ).fillna(0)
        for (a, b), value in table.stack().items():
            found[f"{rows}:{a}/channel:{b}"] = int(value)
    return found


def check_numbers(cells: list[Cell], plan: optimizer.Plan) -> None:
    """Every marked number on the page equals the plan's or the inputs'."""
    spend = expected_spend(plan)
    totals = {"total": plan.overall()}
    for by in ("stage", "channel"):
        for key, row in plan.totals(by).iterrows():
            totals[f"{by}:{key}"] = row.to_dict()
    rules = {f"rule:{c.name}": c.shadow_price for c in plan.constraints}
    frontier = fake_frontier().set_index("budget")
    comparison = fake_comparison()
    places = {
        "pipeline": 2,
        "bookings_in_horizon": 2,
        "cpa": 2,
        "conversions": 1,
        "opportunities": 1,
        "roi": 4,
    }
    checked = 0
    for metric, key, text in cells:
        value = (
            math.nan
            if text in ("n/a", "base") or text.endswith("%")
            else float(text.replace(",", ""))
        )
        if metric == "spend" and key in spend:
            assert to_cents(text) == spend[key], (key, text)
            if key in totals:  # and so do the plan's own totals
                assert round(totals[key]["spend"] * 100) == spend[key], key
        elif key in totals and metric in places:
            wanted = totals[key][metric]
            assert value == pytest.approx(wanted, abs=0.51 * 10 ** -places[metric])
        elif key in rules:
            assert metric == "shadow_price"
            assert value == pytest.approx(rules[key], abs=5e-5)
            assert value != 0
        elif key.startswith("budget:"):
            row = frontier.loc[float(key.removeprefix("budget:"))]
            wanted = row.name if metric == "budget" else row[metric]
            assert value == pytest.approx(wanted, abs=5e-3, nan_ok=True), (key, metric)
        elif key.startswith("scenario:"):
            name = key.removeprefix("scenario:")
            rows = comparison[comparison["scenario"] == name].set_index("metric")
            if metric == "pipeline_delta_pct":
                wanted = rows.loc["pipeline", "delta_pct"]
                assert text == ("base" if name == "base" else f"{wanted:+.1f}%")
            else:
                assert value == pytest.approx(rows.loc[metric, "value"], abs=5e-3)
        else:
            pytest.fail(f"unexpected number on the page: {metric} {key} {text}")
        checked += 1
    assert checked == len(cells)
    keys = {key for _, key, _ in cells}
    assert set(spend) <= keys  # every total and every cross-table cell is shown
    assert {f"rule:{c.name}" for c in plan.binding_constraints} - keys == {
        "rule:budget"
    }


def test_the_page_shows_the_plans_numbers(page: Path, plan: optimizer.Plan) -> None:
    cells = parse(page.read_text(encoding="utf-8")).cells

    check_numbers(cells, plan)
    assert ("spend", "channel:linkedin", "360,000.00") in cells
    assert ("spend", "month:2027-12", "119,999.98") in cells
    assert ("spend", "total", "2,400,000.00") in cells
    assert ("pipeline", "total", "34,580,236.38") in cells


def test_the_page_says_what_the_plan_does(page: Path) -> None:
    text = page.read_text(encoding="utf-8")

    assert (
        "This plan spends 2,400,000.00 USD of an approved budget of 2,400,000.00 "
        "USD, which must be spent in full, over 12 months from January 2027 to "
        "December 2027."
    ) in text
    assert "to get the most pipeline: the value of the sales opportunities" in text
    assert "lowering this requirement by one dollar is worth 3.058 of pipeline" in text
    assert "verified optimal: largest violation" in text
    assert '<tr class="chosen">' in text


def test_the_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    parsed = parse(text)

    assert len(parsed.images) == 4  # allocation, phasing, frontier, comparison
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert forbidden not in text, forbidden
    assert "default-src 'none'; img-src data:" in text


def test_sections_without_comparison_or_frontier_are_left_out(
    plan: optimizer.Plan,
) -> None:
    text = html_report(plan)

    assert "Budget frontier" not in text
    assert "Scenario comparison" not in text
    assert len(parse(text).images) == 2
    check_numbers(parse(text).cells, plan)


def test_all_text_is_escaped(plan: optimizer.Plan) -> None:
    named = plan.scenario.replace(
        plan=plan.scenario.plan.model_copy(
            update={"name": 'Q1 <script>alert("x")</script> & co'}
        )
    )
    text = html_report(optimizer.optimize(named), comparison=fake_comparison())

    assert "<script" not in text
    assert (
        "<title>Q1 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in text
    )
    assert "cut 15% &lt;draft&gt;" in text
    assert 'data-key="scenario:cut 15% &lt;draft&gt;"' in text


def test_the_same_inputs_give_the_same_bytes(
    plan: optimizer.Plan, page: Path, tmp_path: Path
) -> None:
    again = write_html_report(
        tmp_path / "plan.html", plan, fake_comparison(), fake_frontier()
    )
    assert again.read_bytes() == page.read_bytes()

    # A fresh interpreter with another hash seed writes the same page.
    script = (
        "import sys, optimizer; from optimizer.html_report import html_report; "
        "plan = optimizer.optimize(optimizer.load_scenario(sys.argv[1])); "
        "sys.stdout.buffer.write(html_report(plan).encode())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(DEMO)],
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert result.stdout == html_report(plan).encode()


def chromium_or_skip() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    reason = (
        f"{' and '.join(missing)} not found: install Debian's chromium and "
        "chromium-driver packages (.ci/run does) to run the browser test"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def test_the_page_renders_in_a_real_browser(
    page: Path, plan: optimizer.Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium_or_skip()
    from selenium import webdriver  # noqa: PLC0415 - only with a browser
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    # Selenium must not look for a driver or a browser on the network.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)

    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.get(page.as_uri())
        state = driver.execute_script("return document.readyState")
        title = driver.title
        images = driver.execute_script(
            "return Array.from(document.images,"
            " i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        cells = driver.execute_script(
            "return Array.from(document.querySelectorAll('[data-metric]'),"
            " e => [e.dataset.metric, e.dataset.key, e.textContent])"
        )
        console = driver.get_log("browser")
    finally:
        driver.quit()

    assert state == "complete"
    assert title == "Demo pipeline 2027"
    assert images == [[True, 800, 450]] * 4
    assert [entry for entry in console if entry["level"] != "INFO"] == []
    check_numbers([tuple(cell) for cell in cells], plan)
    assert len(cells) == len(parse(page.read_text(encoding="utf-8")).cells)
