"""optimize() end to end, against hand calculations and independent solutions.

* the hand-check scenario, with both solvers;
* budget-only scenarios against an exact water-filling written here;
* constrained scenarios against scipy's linprog on an LP formulated here
  from the curve pieces and the rules;
* the sales cycle moving spend into the horizon;
* infeasible scenarios and the reasons given.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from builders import (
    bounds_in_money,
    channel,
    fast,
    feasible_scenarios,
    linear,
    month_labels,
    pieces_value,
    point,
    points_curve,
    rebuild,
    rule,
    saturating,
    scenario,
    scope_cells,
    season,
    segment,
    spend_by_cell_month,
)
from hypothesis import given
from scipy.optimize import linprog

from optimizer import (
    BudgetSettings,
    InfeasibleScenarioError,
    ObjectiveSettings,
    Scenario,
    load_scenario,
    optimize,
)
from optimizer.curves import build_curves

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


# --- an independent optimum ----------------------------------------------------


def water_fill(sc: Scenario) -> float:
    """The budget-only optimum: fill pieces in order of value per unit spend."""
    curves = build_curves(sc)
    rate = pieces_value(sc, curves)
    exact = sc.budget.spend == "exact"
    left, total = sc.budget.total, 0.0
    for j in np.argsort(-rate, kind="stable"):
        if left <= 0 or (not exact and rate[j] <= 0):
            break
        take = min(curves.width[j], left)
        total += take * rate[j]
        left -= take
    if exact:
        assert left <= 1e-9 * sc.budget.total, "the drawn budget must fit"
    return total


def linprog_optimum(sc: Scenario) -> float:
    """The optimum of the scenario's LP, formulated here and solved by scipy.

    One column per curve piece, value per unit spend as the objective; the
    budget row and one row per bound of every rule. Shares are of the budget
    when it must be spent exactly, otherwise of the actual spend.
    """
    curves = build_curves(sc)
    months = list(curves.months)
    per_piece = [
        (curves.cells[g // len(months)].cell_id, months[g % len(months)])
        for g in curves.group.tolist()
    ]
    n = len(per_piece)
    ones = np.ones(n)
    exact = sc.budget.spend == "exact"
    budget = sc.budget.total
    upper_rows, upper_rhs, equal_rows, equal_rhs = [], [], [], []

    def at_most(row, rhs):
        upper_rows.append(row)
        upper_rhs.append(rhs)

    if exact:
        equal_rows.append(ones)
        equal_rhs.append(budget)
    else:
        at_most(ones, budget)
    for r in sc.constraints:
        covered = scope_cells(sc, r.scope, r.id)
        inside = np.array([key in covered for key in per_piece], dtype=float)
        if r.min is not None:
            at_most(-inside, -r.min)
        if r.max is not None:
            at_most(inside, r.max)
        if r.fixed is not None:
            equal_rows.append(inside)
            equal_rhs.append(r.fixed)
        if r.min_share is not None:
            if exact:
                at_most(-inside, -r.min_share * budget)
            else:
                at_most(r.min_share * ones - inside, 0.0)
        if r.max_share is not None:
            if exact:
                at_most(inside, r.max_share * budget)
            else:
                at_most(inside - r.max_share * ones, 0.0)

    result = linprog(
        -pieces_value(sc, curves),
        A_ub=np.array(upper_rows) if upper_rows else None,
        b_ub=np.array(upper_rhs) if upper_rhs else None,
        A_eq=np.array(equal_rows) if equal_rows else None,
        b_eq=np.array(equal_rhs) if equal_rhs else None,
        bounds=np.c_[np.zeros(n), curves.width],
        method="highs",
    )
    assert result.status == 0, result.message
    return -float(result.fun)


def assert_rules_hold(sc: Scenario, plan) -> None:
    cents = spend_by_cell_month(plan)
    total = sum(cents.values())
    if sc.budget.spend == "exact":
        assert total == round(sc.budget.total * 100)
    else:
        assert total <= round(sc.budget.total * 100)
    for r in sc.constraints:
        low, high = bounds_in_money(r, total / 100)
        held = sum(cents[key] for key in scope_cells(sc, r.scope, r.id))
        assert held >= math.ceil(low * 100 - 1e-6), (r, held)
        if math.isfinite(high):
            assert held <= math.floor(high * 100 + 1e-6), (r, held)


def cell_spend(plan) -> dict[str, float]:
    return {k: float(v) for k, v in plan.totals("cell")["spend"].items()}


# --- (a) the hand check ---------------------------------------------------------


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_hand_check(solver):
    plan = optimize(load_scenario(SCENARIOS / "hand_check.toml"), solver=solver)
    assert cell_spend(plan) == {
        "evaluation_tier_1/google_search": 20_000.0,
        "evaluation_tier_1/linkedin": 20_000.0,
        "evaluation_tier_2/google_search": 10_000.0,
        "evaluation_tier_2/linkedin": 0.0,
    }
    assert plan.total_spend == 50_000.0
    assert plan.overall()["conversions"] == pytest.approx(265, rel=1e-12)
    assert plan.objective_value == pytest.approx(3_300_000, rel=1e-12)
    assert plan.solver_objective == pytest.approx(3_300_000, rel=1e-9)
    assert plan.budget_shadow_price == pytest.approx(40, rel=1e-7)
    (search,) = [c for c in plan.constraints if "google_search" in c.label]
    assert search.bound == "max"
    assert search.shadow_price == pytest.approx(10, rel=1e-7)
    assert plan.verification.passed
    assert plan.solver.name == solver


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_hand_check_side_cases(solver):
    sc = load_scenario(SCENARIOS / "hand_check.toml")
    # Without the google_search maximum: A 20,000, C 20,000, B 10,000.
    free = optimize(rebuild(sc, constraints=()), solver=solver)
    assert free.objective_value == pytest.approx(3_400_000, rel=1e-12)
    assert cell_spend(free)["evaluation_tier_2/google_search"] == 20_000.0
    assert free.budget_shadow_price == pytest.approx(40, rel=1e-7)

    # Maximizing conversions with the rule: C 20,000, A 10,000, D 20,000.
    conversions = optimize(
        rebuild(sc, objective=ObjectiveSettings(maximize="conversions")),
        solver=solver,
    )
    assert cell_spend(conversions) == {
        "evaluation_tier_1/google_search": 10_000.0,
        "evaluation_tier_1/linkedin": 0.0,
        "evaluation_tier_2/google_search": 20_000.0,
        "evaluation_tier_2/linkedin": 20_000.0,
    }
    assert conversions.objective_value == pytest.approx(350, rel=1e-12)
    assert conversions.budget_shadow_price == pytest.approx(0.0025, rel=1e-7)
    (search,) = [c for c in conversions.constraints if "google_search" in c.label]
    assert search.shadow_price == pytest.approx(0.0025, rel=1e-7)


# --- (b) budget only: water-filling ----------------------------------------------


@fast(100)
@given(feasible_scenarios(max_rules=0))
def test_budget_only_matches_water_filling(drawn):
    sc = drawn.scenario
    plan = optimize(sc)
    expected = water_fill(sc)
    assert plan.solver_objective == pytest.approx(expected, rel=1e-7, abs=1e-9)
    # Rounding to cents moves each cell-month by less than a cent.
    rate = float(pieces_value(sc, build_curves(sc)).max(initial=0.0))
    slack = 0.01 * rate * len(plan.allocation) + 1e-7 * abs(expected)
    assert abs(plan.objective_value - expected) <= slack
    assert_rules_hold(sc, plan)


def test_water_filling_by_hand_with_a_saturating_cell_and_seasonality():
    # One month at twice the cost halves the linear cell's rate; the
    # saturating cell (first chord slope below 0.01) comes after the cheap
    # linear month and before the dear one.
    sc = scenario(
        segments=[segment("s", opportunity_rate=0.5, deal_size=1000)],
        channels=[channel("lin"), channel("sat")],
        responses=[
            linear("s", "lin", cpc=1.0, conversion_rate=0.01, monthly_clicks=1000),
            saturating("s", "sat", max_conversions=5.0, scale=1000.0),
        ],
        seasonality=[season("2027-02", cost=2.0, channel_id="lin")],
        months=2,
        budget=2500.0,
        spend="up_to",
        pieces=1,
        saturation=0.5,
    )
    plan = optimize(sc)
    # sat: one chord to 1000 ln 2 = 693.15 of spend for 2.5 conversions, a
    # slope of 0.0036067 per month; lin: 0.01 in January (1,000 of room),
    # 0.005 in February (2,000 of room). Fill: January lin 1,000, then
    # February lin 1,500 (0.005 beats 0.0036); nothing left for sat.
    spend = {(c, m): v / 100 for (c, m), v in spend_by_cell_month(plan).items()}
    assert spend == {
        ("s/lin", "2027-01"): 1000.0,
        ("s/lin", "2027-02"): 1500.0,
        ("s/sat", "2027-01"): 0.0,
        ("s/sat", "2027-02"): 0.0,
    }
    assert plan.objective_value == pytest.approx((10 + 7.5) * 500, rel=1e-12)
    assert plan.budget_shadow_price == pytest.approx(0.005 * 500, rel=1e-7)


# --- (c) rules: against scipy's linprog ---------------------------------------


def media_mix(spend: str = "exact", constraints=()) -> Scenario:
    return scenario(
        segments=[
            segment("t1", stage="evaluation", opportunity_rate=0.2, deal_size=50_000),
            segment("t2", stage="decision", opportunity_rate=0.1, deal_size=30_000),
        ],
        channels=[channel("search"), channel("social")],
        responses=[
            linear("t1", "search", cpc=5, conversion_rate=0.05, monthly_clicks=1000),
            saturating("t1", "social", max_conversions=20, scale=8000),
            linear("t2", "search", cpc=4, conversion_rate=0.08, monthly_clicks=2000),
            points_curve("t2", "social"),
        ],
        points=[point("t2", "social", 2000, 30), point("t2", "social", 6000, 60)],
        seasonality=[
            season("2027-02", cost=1.1, channel_id="search"),
            season("2027-02", volume=1.3),
        ],
        months=2,
        budget=30_000,
        spend=spend,
        constraints=constraints,
    )


RULES = {
    "channel min": [rule("channel", "social", min=6000)],
    "channel max": [rule("channel", "search", max=24_000)],
    "channel min and max": [rule("channel", "social", min=4000, max=5000)],
    "min_share": [rule("channel", "social", min_share=0.25)],
    "max_share": [rule("channel", "search", max_share=0.7)],
    "month max": [rule("month", "2027-02", max=12_000)],
    "cell fixed": [rule("cell", "t2/search", fixed=10_000)],
    "stage min": [rule("stage", "evaluation", min=16_000)],
    "segment max_share": [rule("segment", "t2", max_share=0.4)],
    "several": [
        rule("channel", "social", min_share=0.2),
        rule("month", "2027-01", max=11_000),
        rule("cell", "t1/social", max=2500),
    ],
}


@pytest.mark.parametrize("spend", ["exact", "up_to"])
@pytest.mark.parametrize("case", list(RULES))
def test_rules_match_linprog(case, spend):
    sc = media_mix(spend, RULES[case])
    plan = optimize(sc)
    expected = linprog_optimum(sc)
    assert plan.solver_objective == pytest.approx(expected, rel=1e-7)
    assert_rules_hold(sc, plan)
    # Every case binds: the rules cost pipeline.
    free = linprog_optimum(media_mix(spend))
    assert expected < free * (1 - 1e-6)
    assert any(c.binding for c in plan.constraints if c.name != "budget")


def test_up_to_shares_are_of_actual_spend():
    # a is worth 20 per dollar, b 40; a must be 80% of spend, and all of a's
    # volume is in January, which may take at most 500. So a = 500 and
    # b = 125: spending more on b would break the share.
    sc = scenario(
        segments=[segment("s", opportunity_rate=0.2, deal_size=10_000)],
        channels=[channel("a"), channel("b")],
        responses=[
            linear("s", "a", cpc=1, conversion_rate=0.01, monthly_clicks=2000),
            linear("s", "b", cpc=1, conversion_rate=0.02, monthly_clicks=2000),
        ],
        seasonality=[season("2027-02", volume=0, channel_id="a")],
        months=2,
        budget=1000,
        spend="up_to",
        constraints=[
            rule("channel", "a", min_share=0.8),
            rule("month", "2027-01", max=500),
        ],
    )
    plan = optimize(sc)
    assert cell_spend(plan) == {"s/a": 500.0, "s/b": 125.0}
    assert plan.objective_value == pytest.approx(500 * 20 + 125 * 40, rel=1e-12)
    assert plan.solver_objective == pytest.approx(linprog_optimum(sc), rel=1e-9)


@fast(100)
@given(feasible_scenarios(max_rules=4))
def test_random_rules_match_linprog(drawn):
    sc = drawn.scenario
    plan = optimize(sc)
    assert plan.solver_objective == pytest.approx(
        linprog_optimum(sc), rel=1e-7, abs=1e-9
    )
    assert_rules_hold(sc, plan)


@fast(25)
@given(feasible_scenarios(max_rules=3, max_months=2))
def test_random_rules_match_linprog_with_cbc(drawn):
    sc = drawn.scenario
    plan = optimize(sc, solver="cbc")
    assert plan.solver_objective == pytest.approx(
        linprog_optimum(sc), rel=1e-7, abs=1e-9
    )
    assert_rules_hold(sc, plan)


# --- (d) the sales cycle --------------------------------------------------------


def two_months(maximize: str, january_cost: float = 1.0) -> Scenario:
    return scenario(
        segments=[
            segment(
                "s",
                opportunity_rate=0.2,
                deal_size=50_000,
                win_rate=0.25,
                sales_cycle_days=30,
            )
        ],
        channels=[channel("c")],
        responses=[
            linear("s", "c", cpc=5, conversion_rate=0.02, monthly_clicks=10_000)
        ],
        seasonality=[season("2027-01", cost=january_cost)],
        months=2,
        budget=20_000,
        maximize=maximize,
        spread=0.5,
    )


# Deals close 15 to 45 days after the conversion, most likely at 30. From
# mid-January 43.5 days remain: P = 1 - 1.5**2 / (30 * 15) = 0.995. From
# mid-February 14 days remain: no deal closes in the horizon.
JANUARY_CLOSE = 1 - 1.5**2 / (30 * 15)


def test_bookings_in_horizon_spend_everything_in_the_first_month():
    plan = optimize(two_months("bookings_in_horizon"))
    spend = plan.totals("month")["spend"].to_dict()
    assert spend == {"2027-01": 20_000.0, "2027-02": 0.0}
    # 20,000 / 5 * 0.02 = 80 conversions, worth 0.2 * 50,000 * 0.25 = 2,500
    # of bookings each if they close.
    assert plan.overall()["conversions"] == pytest.approx(80, rel=1e-12)
    assert plan.objective_value == pytest.approx(80 * 2500 * JANUARY_CLOSE, rel=1e-12)
    assert plan.budget_shadow_price == pytest.approx(
        0.02 / 5 * 2500 * JANUARY_CLOSE, rel=1e-7
    )


def test_a_long_sales_cycle_moves_spend_earlier_even_when_earlier_is_dearer():
    # January costs 25% more. Pipeline has no clock and buys February.
    pipeline = optimize(two_months("pipeline", january_cost=1.25))
    assert pipeline.totals("month")["spend"].to_dict() == {
        "2027-01": 0.0,
        "2027-02": 20_000.0,
    }
    assert pipeline.objective_value == pytest.approx(80 * 10_000, rel=1e-12)
    # Bookings in the horizon only count what closes: January, at 64
    # conversions for the money.
    bookings = optimize(two_months("bookings_in_horizon", january_cost=1.25))
    assert bookings.totals("month")["spend"].to_dict() == {
        "2027-01": 20_000.0,
        "2027-02": 0.0,
    }
    assert bookings.overall()["conversions"] == pytest.approx(64, rel=1e-12)
    assert bookings.objective_value == pytest.approx(
        64 * 2500 * JANUARY_CLOSE, rel=1e-12
    )


# --- (e) infeasible scenarios -------------------------------------------------


def two_channels(budget: float, constraints=(), spend: str = "exact") -> Scenario:
    return scenario(
        segments=[segment("s")],
        channels=[channel("a"), channel("b")],
        responses=[
            linear("s", "a", cpc=1, conversion_rate=0.01, monthly_clicks=2000),
            linear("s", "b", cpc=1, conversion_rate=0.02, monthly_clicks=2000),
        ],
        budget=budget,
        spend=spend,
        constraints=constraints,
    )


def reasons_of(sc: Scenario, solver: str = "highs") -> tuple[str, ...]:
    with pytest.raises(InfeasibleScenarioError) as caught:
        optimize(sc, solver=solver)
    assert caught.value.reasons
    for reason in caught.value.reasons:
        assert reason in str(caught.value)
    return caught.value.reasons


def says(reasons: tuple[str, ...], *parts: str) -> bool:
    """Whether one reason holds every part (words and amounts) given."""
    return any(all(part in reason for part in parts) for reason in reasons)


def test_the_infeasible_scenario_file_names_the_floors_and_the_budget():
    reasons = reasons_of(load_scenario(SCENARIOS / "infeasible.toml"))
    # 120,000 + 150,000 + 60,000 of floors against 306,000 of budget.
    assert says(reasons, "channel minimums", "330,000.00 USD", "306,000.00 USD")


@pytest.mark.parametrize(
    ("sc", "parts"),
    [
        (
            two_channels(1000, [rule("channel", "a", min=1500)]),
            ("channel a", "at least 1,500.00 USD", "budget of 1,000.00 USD"),
        ),
        (
            # a can buy 2,000 clicks at 1: 2,000 of volume.
            two_channels(3000, [rule("channel", "a", min=2500)]),
            ("channel a", "at least 2,500.00 USD", "at most 2,000.00 USD", "volume"),
        ),
        (
            two_channels(5000),
            ("exact budget of 5,000.00 USD", "volume", "at most 4,000.00 USD"),
        ),
        (
            two_channels(
                1000, [rule("channel", "a", max=100), rule("channel", "b", max=200)]
            ),
            ("exact budget of 1,000.00 USD", "channel maximums", "300.00 USD"),
        ),
    ],
)
def test_arithmetic_conflicts_in_words_with_amounts(sc, parts):
    reasons = reasons_of(sc)
    assert says(reasons, *parts), reasons


def test_min_above_max_is_refused_when_the_scenario_is_built():
    with pytest.raises(ValueError, match=r"min.*300.*max.*200\.5"):
        two_channels(1000, [rule("channel", "a", min=300, max=200.5)])


def elastic_case() -> Scenario:
    # a can only be bought in January; it must get 80% of an exact 1,000,
    # while January may take at most 500. Each rule alone fits, the budget
    # and the volume add up, yet together they are 300 apart.
    return scenario(
        segments=[segment("s")],
        channels=[channel("a"), channel("b")],
        responses=[
            linear("s", "a", cpc=1, conversion_rate=0.01, monthly_clicks=2000),
            linear("s", "b", cpc=1, conversion_rate=0.02, monthly_clicks=2000),
        ],
        seasonality=[season("2027-02", volume=0, channel_id="a")],
        months=2,
        budget=1000,
        constraints=[
            rule("channel", "a", min_share=0.8),
            rule("month", "2027-01", max=500),
        ],
    )


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_elastic_diagnosis_names_the_conflicting_rules(solver):
    reasons = reasons_of(elastic_case(), solver)
    share = "channel a: at least 80.00% of total spend: short by "
    month = "month 2027-01: at most 500.00 USD: over by "
    amounts = []
    for reason in reasons:
        assert reason.startswith((share, month)), reason
        found = re.fullmatch(r".*by ([\d,]+\.\d\d) USD", reason)
        assert found, reason
        amounts.append(float(found.group(1).replace(",", "")))
    assert sum(amounts) == pytest.approx(300.0, abs=0.01)


def test_elastic_case_passes_the_arithmetic_checks():
    # Without the month maximum (or without the share) the scenario solves,
    # so the conflict is between the two rules, not with the budget.
    sc = elastic_case()
    assert optimize(rebuild(sc, constraints=sc.constraints[:1])).verification.passed
    assert optimize(rebuild(sc, constraints=sc.constraints[1:])).verification.passed


def test_two_floors_on_one_channel_are_not_added_up():
    # Two rules on channel a: at least 600 (a contract) and at least 50% (a
    # policy). Both hold at a = 600, b = 400; the floors are on the same
    # scope, so they overlap rather than add up to 1,100 of a 1,000 budget.
    sc = two_channels(
        1000,
        [rule("channel", "a", min=600), rule("channel", "a", min_share=0.5)],
    )
    expected = linprog_optimum(sc)
    # a is worth 0.01 * 2,000 = 20 per dollar, b 40.
    assert expected == pytest.approx(600 * 20 + 400 * 40, rel=1e-9)
    plan = optimize(sc)
    assert cell_spend(plan) == {"s/a": 600.0, "s/b": 400.0}
    assert plan.objective_value == pytest.approx(expected, rel=1e-12)


def test_up_to_budget_with_no_value_left_spends_nothing_it_need_not():
    # Bookings in the horizon from a cycle longer than the horizon are worth
    # nothing; spending up to the budget, the plan is still feasible and
    # worth exactly zero.
    sc = rebuild(
        two_months("bookings_in_horizon"),
        budget=BudgetSettings(total=20_000, spend="up_to"),
        segments=(segment("s", sales_cycle_days=400),),
    )
    plan = optimize(sc)
    assert plan.objective_value == 0.0
    assert plan.total_spend <= 20_000
    assert month_labels("2027-01", 2) == list(plan.totals("month").index)


def test_optimize_after_other_highspy_use():
    # Anything that runs HiGHS first in the process with the default thread
    # count (a caller's own highspy model, or the rounding's integer
    # fallback) fixes HiGHS's global scheduler at that count; the optimizer's
    # threads = 1 then makes every later solve fail. A fresh interpreter keeps
    # this test independent of the order of the others.
    script = textwrap.dedent(
        f"""
        import highspy
        import optimizer

        own = highspy.Highs()
        own.setOptionValue("output_flag", False)
        own.maximize(own.addVariable(lb=0, ub=1))
        assert own.getModelStatus() == highspy.HighsModelStatus.kOptimal
        plan = optimizer.optimize(
            optimizer.load_scenario({str(SCENARIOS / "hand_check.toml")!r})
        )
        print(plan.objective_value)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) == pytest.approx(3_300_000)
