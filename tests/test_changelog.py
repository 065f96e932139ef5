"""The change log on scenarios whose every step is known by construction.

The hand-check optimum (scenarios/hand_check.toml) fills cells in the order
of their pipeline per dollar: A = tier_1/google_search (100, room 20,000),
C = tier_2/google_search (50, room 20,000, held at 10,000 by the 30,000
google_search cap), B = tier_1/linkedin (40, room 30,000), D =
tier_2/linkedin (10, room 40,000). The budget of 50,000 buys A 20,000,
C 10,000 and B 20,000: 3,300,000 of pipeline, and the next dollar goes to B,
the budget's shadow price of 40.
"""

from __future__ import annotations

import csv
import math
import re
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import optimizer
from optimizer.changelog import change_log, change_log_text
from optimizer.cli import EXIT_INFEASIBLE, EXIT_OK, main
from optimizer.input_changes import ChangeKind, input_changes
from optimizer.scenario import (
    ConstraintRule,
    ObjectiveSettings,
    Response,
    Seasonality,
    Segment,
    SolverSettings,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="module")
def old() -> optimizer.Scenario:
    return optimizer.load_scenario(SCENARIOS / "hand_check.toml")


def budget(total: float) -> optimizer.BudgetSettings:
    return optimizer.BudgetSettings(total=total)


def google_cap(amount: float) -> ConstraintRule:
    return ConstraintRule(scope="channel", id="google_search", max=amount)


def linkedin_cap(amount: float) -> ConstraintRule:
    return ConstraintRule(scope="channel", id="linkedin", max=amount)


def objective_deltas(log) -> list[float | None]:  # type: ignore[no-untyped-def]
    return [
        None if step.objective_delta is None else step.objective_delta / 10_000
        for step in log.steps
    ]


def test_a_budget_change_within_a_piece_is_its_shadow_price_times_the_change(
    old,
) -> None:
    plan = optimizer.optimize(old)
    log = change_log(old, old.replace(budget=budget(52_000)))

    # B has 10,000 of room left at 40 of pipeline per dollar.
    assert plan.budget_shadow_price == pytest.approx(40)
    assert objective_deltas(log) == [pytest.approx(40 * 2_000)]
    assert [step.changes[0].kind for step in log.steps] == [ChangeKind.BUDGET]
    table = log.table()
    assert table["objective_before"].tolist() == [3_300_000, 3_300_000]
    assert table["objective_after"].tolist() == [3_380_000, 3_380_000]
    assert table["spend_delta_channel_linkedin"].tolist() == [2_000, 2_000]
    assert table["spend_delta_channel_google_search"].tolist() == [0, 0]
    assert table["spend_delta_stage_evaluation"].tolist() == [2_000, 2_000]


def test_budget_and_cap_are_two_steps_that_add_up(old) -> None:
    # Budget first (old cap): B takes the 2,000, +40 x 2,000. Then the cap
    # rises to 35,000 and 5,000 moves from B to C, +(50 - 40) x 5,000. By hand,
    # the new plan is A 20,000, C 15,000, B 17,000: 3,430,000.
    new = old.replace(budget=budget(52_000), constraints=(google_cap(35_000),))
    log = change_log(old, new)

    assert objective_deltas(log) == [80_000, 50_000]
    assert [step.changes[0].kind for step in log.steps] == [
        ChangeKind.BUDGET,
        ChangeKind.RULE,
    ]
    assert log.end.objective == 3_430_000 * 10_000
    assert log.total_delta == sum(step.objective_delta for step in log.steps)
    moves = log.table()[
        ["spend_delta_channel_google_search", "spend_delta_channel_linkedin"]
    ]
    assert moves.values.tolist() == [[0, 2_000], [5_000, -5_000], [5_000, -3_000]]


def test_an_infeasible_step_is_reported_and_the_next_counts_from_the_last_plan(
    old,
) -> None:
    # With LinkedIn held at 30,000 the cells can absorb 30,000 + 30,000 of an
    # exact 70,000 budget; raising the cap to 45,000 makes room: A 20,000,
    # C 10,000, B 30,000, D 10,000, that is 2,000,000 + 500,000 + 1,200,000 +
    # 100,000 = 3,800,000.
    before = old.replace(constraints=(google_cap(30_000), linkedin_cap(30_000)))
    after = old.replace(
        budget=budget(70_000), constraints=(google_cap(30_000), linkedin_cap(45_000))
    )
    log = change_log(before, after)

    first, second = log.steps
    assert first.outcome.status == "infeasible"
    assert first.note == (
        "no plan: the exact budget of 70,000.00 USD cannot all be spent: the channel "
        "maximums and reachable volume absorb at most 60,000.00 USD."
    )
    assert first.objective_delta is None
    assert second.baseline is log.start
    assert objective_deltas(log) == [None, 500_000]
    assert log.total_delta == 500_000 * 10_000
    row = log.table().iloc[0]
    assert row["status"] == "infeasible"
    assert math.isnan(row["objective_delta"])


def test_a_rule_on_a_new_segment_waits_for_the_segment(old) -> None:
    # The new segment's google cell returns 0.05 / 5 x 0.1 x 20,000 = 20 of
    # pipeline per dollar; its 5,000 minimum comes out of C (50): -150,000.
    segment = Segment(
        segment_id="evaluation_tier_3",
        stage="evaluation",
        opportunity_rate=0.1,
        deal_size=20_000,
        win_rate=0.25,
        sales_cycle_days=60,
    )
    response = Response(
        segment_id="evaluation_tier_3",
        channel_id="google_search",
        curve="linear",
        cpc=5,
        conversion_rate=0.05,
        monthly_clicks=2_000,
    )
    minimum = ConstraintRule(scope="segment", id="evaluation_tier_3", min=5_000)
    new = old.replace(
        segments=(*old.segments, segment),
        responses=(*old.responses, response),
        constraints=(*old.constraints, minimum),
    )
    log = change_log(old, new)

    assert [step.changes[0].subject for step in log.steps] == [
        "segment evaluation_tier_3",
        "rule segment evaluation_tier_3",
        "response evaluation_tier_3/google_search",
    ]
    assert log.steps[1].note.startswith(
        "postponed until after segment evaluation_tier_3; alone it was invalid: "
    )
    assert log.steps[1].outcome.status == "infeasible"
    assert objective_deltas(log) == [0, None, -150_000]
    assert log.end.objective == 3_150_000 * 10_000


def test_a_new_horizon_is_one_step(old) -> None:
    new = old.replace(plan=old.plan.model_copy(update={"months": 2}))
    log = change_log(old, new)

    (step,) = log.steps
    assert step.note == (
        "the horizons differ, so the months of one version do not exist in the "
        "other: all changes are applied at once"
    )
    # Over two months A has 40,000 of room, but the 30,000 google cap holds
    # for the whole horizon: A 30,000 (3,000,000), then B 20,000 (800,000).
    assert step.changes[0].kind is ChangeKind.HORIZON
    assert objective_deltas(log) == [500_000]


def test_plans_are_measured_in_the_new_objective(old) -> None:
    # The old plan's 265 conversions (100 + 125 + 40); maximizing conversions
    # with the same rule buys C 20,000, A 10,000 and D 20,000: 350.
    new = old.replace(objective=ObjectiveSettings(maximize="conversions"))
    log = change_log(old, new)
    assert objective_deltas(log) == [85]
    assert log.start.objective == 265 * 10_000


def test_changes_that_cannot_move_the_plan_are_listed_not_applied(old) -> None:
    new = old.replace(
        solver=SolverSettings(time_limit=100),
        plan=old.plan.model_copy(update={"name": "Hand check v2"}),
    )
    log = change_log(old, new)
    assert log.steps == ()
    assert log.total_delta == 0
    assert change_log_text(log).endswith(
        "not applied (they do not move the allocation):\n"
        "  [plan] changed: name Hand check: water-filling with a channel cap -> "
        "Hand check v2\n"
        "  [solver] changed: time_limit 300 -> 100 (-67%)\n"
    )


def test_input_changes_come_in_the_documented_order(old) -> None:
    segment, other = old.segments
    new = old.replace(
        seasonality=(Seasonality(month="2027-01", channel_id="linkedin", cost=1.1),),
        segments=(segment.model_copy(update={"win_rate": 0.3}), other),
        responses=(
            old.responses[0].model_copy(update={"cpc": 11.0}),
            *old.responses[1:],
        ),
        constraints=(),
        budget=budget(60_000),
    )
    described = [change.describe() for change in input_changes(old, new)]
    assert described == [
        "[budget] changed: total 50,000 -> 60,000 (+20%)",
        "rule channel google_search removed: max 30,000, note Search budget held "
        "at 30,000 while the new account structure beds in",
        "segment evaluation_tier_1 changed: win_rate 0.25 -> 0.3 (+20%)",
        "response evaluation_tier_1/google_search changed: cpc 10 -> 11 (+10%)",
        "seasonality 2027-01 (channel linkedin) added: volume 1, cost 1.1",
    ]


def test_a_points_curve_moves_with_its_cell() -> None:
    demo = optimizer.load_scenario(SCENARIOS / "demo_pipeline.toml")
    cell = "decision_new_lead_tier_1/retargeting"
    points = tuple(
        point.model_copy(update={"conversions": point.conversions * 1.5})
        if f"{point.segment_id}/{point.channel_id}" == cell
        else point
        for point in demo.points
    )
    (change,) = input_changes(demo, demo.replace(points=points))
    assert change.subject == f"response {cell}"
    assert [field.name for field in change.fields] == ["points"]
    assert change.fields[0].relative == pytest.approx(0.5)


def test_the_demo_waterfall_adds_up_to_the_cent() -> None:
    old = optimizer.load_scenario(SCENARIOS / "demo_pipeline_v1.toml")
    new = optimizer.load_scenario(SCENARIOS / "demo_pipeline.toml")
    log = change_log(old, new)

    assert [step.changes[0].kind.value for step in log.steps] == [
        "budget",
        "rule",
        "segment",
        *["response"] * 8,
    ]
    # The plan maximizes pipeline, which a win rate does not enter.
    assert log.steps[2].objective_delta == 0
    cold = optimizer.optimize(new).objective_value - optimize_value(old)
    assert log.total_delta / 10_000 == pytest.approx(cold, abs=1e-3)


def optimize_value(scenario: optimizer.Scenario) -> float:
    return optimizer.optimize(scenario).objective_value


# --- the command line --------------------------------------------------------


def test_diff_writes_the_waterfall_and_explains_it(hand_check, capsys) -> None:
    new = Path("hand_check_v2.toml")
    text = Path("hand_check.toml").read_text()
    new.write_text(
        text.replace("total = 50000", "total = 52000").replace(
            "max = 30000", "max = 35000"
        )
    )

    code = main(["diff", "hand_check.toml", str(new), "--out", "changelog"])

    assert code == EXIT_OK
    assert capsys.readouterr().out == (
        "change log: hand_check.toml -> hand_check_v2.toml\n"
        "2 input changes; each plan is measured in pipeline\n"
        "old plan: 3,300,000.00\n"
        "changes applied one at a time:\n"
        "  1. [budget] changed: total 50,000 -> 52,000 (+4%): +80,000.00 of "
        "pipeline\n"
        "     spend: linkedin +2,000.00\n"
        "  2. rule channel google_search changed: max 30,000 -> 35,000 (+17%): "
        "+50,000.00 of pipeline\n"
        "     spend: google_search +5,000.00, linkedin -5,000.00\n"
        "new plan: 3,430,000.00\n"
        "total change: +130,000.00 of pipeline\n"
        "\n"
        "wrote changelog/changelog.csv, changes.csv, report.html\n"
    )
    with open("changelog/changelog.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["objective_delta"] for row in rows] == [
        "80000.0000",
        "50000.0000",
        "130000.0000",
    ]
    assert [row["spend_delta_channel_linkedin"] for row in rows] == [
        "2000.00",
        "-5000.00",
        "-3000.00",
    ]
    assert Path("changelog/changes.csv").read_text() == (
        "step,kind,subject,action,field,old,new,where\n"
        '1,budget,[budget],changed,total,"50,000","52,000","hand_check_v2.toml, '
        '[budget]"\n'
        '2,rule,rule channel google_search,changed,max,"30,000","35,000",'
        '"hand_check_v2.toml, [[constraints]] entry 1"\n'
    )


def test_the_demo_changelog_csv_adds_up_exactly(tmp_path: Path) -> None:
    code = main(
        [
            "diff",
            str(SCENARIOS / "demo_pipeline_v1.toml"),
            str(SCENARIOS / "demo_pipeline.toml"),
            "--out",
            str(tmp_path / "log"),
        ]
    )
    assert code == EXIT_OK
    with open(tmp_path / "log" / "changelog.csv", newline="") as file:
        *steps, total = list(csv.DictReader(file))
    assert total["step"] == "total"
    numbers = [key for key in total if key.startswith(("objective_delta", "spend_"))]
    for key in numbers:
        assert sum(Decimal(step[key]) for step in steps) == Decimal(total[key]), key


def test_diff_exits_4_when_the_new_version_is_infeasible(hand_check, capsys) -> None:
    # 200,000 exact is more than the 110,000 all four cells can take.
    text = Path("hand_check.toml").read_text()
    Path("too_big.toml").write_text(text.replace("total = 50000", "total = 200000"))

    assert main(["diff", "hand_check.toml", "too_big.toml"]) == EXIT_INFEASIBLE
    captured = capsys.readouterr()
    assert "  1. [budget] changed: total 50,000 -> 200,000 (+300%): infeasible\n" in (
        captured.out
    )
    assert captured.err.startswith("error: the new scenario has no plan (infeasible): ")


def test_diff_has_help_with_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["diff", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example:\n  optimizer diff scenarios/demo_pipeline_v1.toml" in out
    assert "exit codes:" in out


def test_the_demo_v1_folder_differs_from_demo_only_where_documented() -> None:
    differing = []
    for path in sorted((SCENARIOS / "demo_v1").iterdir()):
        current = (SCENARIOS / "demo" / path.name).read_text().splitlines()
        previous = path.read_text().splitlines()
        differing += [
            (path.name, line.split(",")[0])
            for line, other in zip(previous, current, strict=True)
            if line != other
        ]
    decision_google = [
        ("responses.csv", f"decision_{kind}_{tier}")
        for kind in ("new_lead", "open_opportunity")
        for tier in ("long_tail", "tier_1", "tier_2", "tier_3")
    ]
    assert differing == [
        *decision_google,
        ("segments.csv", "evaluation_open_opportunity_tier_1"),
    ]


def test_diff_report_shows_every_step_with_its_change(tmp_path: Path) -> None:
    out = tmp_path / "diff"
    scenarios = Path(__file__).resolve().parents[1] / "scenarios"
    code = main(
        [
            "diff",
            str(scenarios / "demo_pipeline_v1.toml"),
            str(scenarios / "demo_pipeline.toml"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    shown = dict(
        re.findall(
            r'data-metric="objective_delta" data-key="step:([^"]+)"[^>]*>([^<]*)<', page
        )
    )
    table = pd.read_csv(out / "changelog.csv", dtype={"step": str})
    deltas = zip(table["step"], table["objective_delta"], strict=True)
    expected = {str(step): f"{delta:,.2f}" for step, delta in deltas}
    assert shown == expected
    assert "What changed since the previous version" in page
