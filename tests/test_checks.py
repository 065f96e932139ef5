"""Checks across tables, and the arithmetic of infeasibility.

Each test copies a valid scenario, changes one thing and checks the whole
message, which names the file, the row (or the TOML table), the field, the
value found and what was expected.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.checks import feasibility_problems
from optimizer.cli import EXIT_INFEASIBLE, main
from optimizer.curves import CurveWarning, build_curves
from optimizer.reading import load_scenario
from optimizer.scenario import Scope

SEGMENTS = "hand_check/segments.csv"
RESPONSES = "hand_check/responses.csv"
TOML = "hand_check.toml"
POINTS = "infeasible/points.csv"
ABM = "decision_tier_1/abm_platform"
ABM_ROW = "decision_tier_1,abm_platform"  # the cell as it starts a CSV row


# --- ids that must be unique or known ---------------------------------------------


def test_a_duplicate_segment_names_both_rows(hand_check):
    hand_check.edit(
        SEGMENTS,
        "0.1,40000,0.25,90\n",
        "0.1,40000,0.25,90\n"
        "evaluation_tier_1,decision,tier_1,decision,0.3,100000,0.25,150\n",
    )

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 4, field 'segment_id': got 'evaluation_tier_1' again "
        f"(first defined at {SEGMENTS}, row 2); expected each segment once.",
    )


def test_a_duplicate_cell_names_both_rows(hand_check):
    hand_check.edit(
        RESPONSES, "evaluation_tier_2,linkedin,", "evaluation_tier_2,google_search,"
    )

    assert hand_check.problems() == (
        f"{RESPONSES}, row 5, fields 'segment_id', 'channel_id': got "
        f"'evaluation_tier_2/google_search' again (first defined at {RESPONSES}, "
        "row 4); expected each cell once.",
    )


def test_a_response_for_an_unknown_segment(hand_check):
    hand_check.edit(
        RESPONSES, "evaluation_tier_2,linkedin,", "decision_tier_2,linkedin,"
    )

    assert hand_check.problems() == (
        f"{RESPONSES}, row 5, field 'segment_id': got 'decision_tier_2'; expected "
        "a segment_id defined in the segments table.",
    )


def test_a_response_for_an_unknown_channel_suggests_the_near_one(hand_check):
    hand_check.edit(
        RESPONSES, "evaluation_tier_2,linkedin,", "evaluation_tier_2,linkdin,"
    )

    assert hand_check.problems() == (
        f"{RESPONSES}, row 5, field 'channel_id': got 'linkdin'; expected a "
        "channel_id defined in the channels table (did you mean 'linkedin'?).",
    )


# --- [[constraints]] ---------------------------------------------------------------


def test_a_constraint_with_min_above_max(hand_check):
    hand_check.edit(TOML, "max = 30000\n", "max = 30000\nmin = 40000\n")

    assert hand_check.problems() == (
        f"{TOML}, [[constraints]] entry 1, field 'min': got '40000'; expected at "
        "most the entry's max, 30000.",
    )


def test_a_constraint_on_an_unknown_channel(hand_check):
    hand_check.edit(TOML, 'id = "google_search"', 'id = "google_serch"')

    assert hand_check.problems() == (
        f"{TOML}, [[constraints]] entry 1, field 'id': got 'google_serch'; expected "
        "a channel of the scenario: google_search, linkedin (did you mean "
        "'google_search'?).",
    )


def test_a_constraint_on_a_month_outside_the_horizon(hand_check):
    hand_check.edit(
        TOML,
        'scope = "channel"\nid = "google_search"',
        'scope = "month"\nid = "2027-02"',
    )

    assert hand_check.problems() == (
        f"{TOML}, [[constraints]] entry 1, field 'id': got '2027-02'; expected a "
        "month of the scenario: 2027-01.",
    )


# --- points curves ---------------------------------------------------------------


def test_points_that_are_not_concave_name_the_cell_and_the_breakpoint(
    copy_scenario,
):
    infeasible = copy_scenario("infeasible")
    infeasible.edit(POINTS, f"{ABM_ROW},10000,3.5", f"{ABM_ROW},10000,2.5")

    assert infeasible.problems() == (
        f"{POINTS}, row 3, field 'conversions': got '2.5' at spend 10000, where the "
        f"curve of cell {ABM} is not concave: the slope rises from 0.0001 before "
        "this breakpoint to 0.0003 conversions per unit of spend after it (to "
        "spend 20000); expected a concave curve, whose slope never rises: fix the "
        "points, or set [curves] concave_hull = true to use their concave hull.",
    )


def test_points_that_are_not_concave_become_their_hull_when_asked(copy_scenario):
    infeasible = copy_scenario("infeasible")
    infeasible.edit(POINTS, f"{ABM_ROW},10000,3.5", f"{ABM_ROW},10000,2.5")
    infeasible.edit(
        "infeasible.toml", "pieces = 8\n", "pieces = 8\nconcave_hull = true\n"
    )
    scenario = load_scenario(infeasible.toml)

    with pytest.warns(CurveWarning) as record:
        curves = build_curves(scenario)

    assert [str(warning.message) for warning in record] == [
        f"cell {ABM}: the concave hull adds 0.6667 conversions per month (26.7%) "
        "at spend 10000; fix the points to keep the curve as measured."
    ]
    # The hull goes straight from (5000, 2) to (20000, 5.5): the point at
    # 10000 is lifted onto that chord, to 2 + 5000 * 3.5 / 15000.
    first_month = curves.group == 0
    assert curves.cells[0].cell_id == ABM
    np.testing.assert_allclose(curves.width[first_month], [5000, 5000, 10000, 10000])
    np.testing.assert_allclose(
        np.cumsum(curves.width[first_month] * curves.slope[first_month]),
        [2, 2 + 3.5 / 3, 5.5, 6.5],
    )


def test_points_whose_conversions_fall(copy_scenario):
    infeasible = copy_scenario("infeasible")
    infeasible.edit(POINTS, f"{ABM_ROW},20000,5.5", f"{ABM_ROW},20000,3")

    assert infeasible.problems() == (
        f"{POINTS}, row 4, field 'conversions': got '3' at spend 20000, below the "
        f"3.5 at spend 10000 ({POINTS}, row 3) for cell {ABM}; expected "
        "conversions that never fall as spend rises.",
    )


def test_a_spend_given_twice_for_a_cell(copy_scenario):
    infeasible = copy_scenario("infeasible")
    infeasible.edit(POINTS, f"{ABM_ROW},20000,5.5", f"{ABM_ROW},10000,5.5")

    assert infeasible.problems() == (
        f"{POINTS}, row 4, field 'spend': got '10000' again for cell {ABM} "
        f"({POINTS}, row 3); expected each spend once per cell.",
    )


def test_a_point_for_a_cell_whose_curve_is_not_points(copy_scenario):
    infeasible = copy_scenario("infeasible")
    infeasible.edit(
        POINTS, f"{ABM_ROW},30000,6.5", "decision_tier_1,google_search,30000,6.5"
    )

    assert infeasible.problems() == (
        f"{POINTS}, row 5, fields 'segment_id', 'channel_id': got "
        "'decision_tier_1/google_search', a cell with a 'linear' curve; expected a "
        "cell whose curve is 'points' in the responses table.",
    )


def test_a_points_curve_without_points(copy_scenario):
    infeasible = copy_scenario("infeasible")
    infeasible.edit(
        "infeasible/responses.csv",
        "evaluation_tier_1,google_search,linear,15,0.02,1500,,",
        "evaluation_tier_1,google_search,points,,,,,",
    )

    assert infeasible.problems() == (
        "infeasible/responses.csv, row 4, field 'curve': got 'points', but the "
        "points table has no rows for cell evaluation_tier_1/google_search; "
        "expected at least one spend, conversions row for the cell in the points "
        "table.",
    )


# --- seasonality -----------------------------------------------------------------


def test_a_seasonality_month_outside_the_horizon(copy_scenario):
    demo = copy_scenario("demo_pipeline", "demo")
    demo.edit("demo/seasonality.csv", "2027-01,,,0.95,1.0", "2028-01,,,0.95,1.0")

    assert demo.problems() == (
        "demo/seasonality.csv, row 2, field 'month': got '2028-01'; expected a "
        "month of the horizon, 2027-01 to 2027-12.",
    )


# --- feasibility arithmetic ---------------------------------------------------------


def test_a_floor_above_the_budget_and_volume_that_cannot_absorb_it(hand_check):
    hand_check.edit(TOML, "max = 30000", "min = 60000")
    scenario = load_scenario(hand_check.toml)

    def capacity(scope: Scope, id_: str | None) -> float:
        return 40000.0

    assert feasibility_problems(scenario, capacity) == [
        "channel google_search must get at least 60,000.00 USD, more than the "
        "whole budget of 50,000.00 USD.",
        "the channel minimums add up to 60,000.00 USD, more than the budget of "
        "50,000.00 USD.",
        "the exact budget of 50,000.00 USD cannot all be spent: the reachable "
        "volume absorbs at most 40,000.00 USD.",
    ]


def test_validate_exits_4_on_the_infeasible_example(copy_scenario, capsys):
    copy_scenario("infeasible")

    code = main(["validate", "infeasible.toml"])

    assert code == EXIT_INFEASIBLE == 4
    assert capsys.readouterr().err == (
        "error: The scenario is infeasible: no allocation satisfies every rule.\n"
        "- the channel minimums add up to 330,000.00 USD, more than the budget of "
        "306,000.00 USD.\n"
    )
