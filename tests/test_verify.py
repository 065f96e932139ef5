"""The independent check: feasibility measured, and the weak-duality certificate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from builders import (
    Drawn,
    cell_months,
    channel,
    fast,
    feasible_scenarios,
    linear,
    scenario,
    segment,
)
from hypothesis import given
from hypothesis import strategies as st

from optimizer import load_scenario, optimize
from optimizer.curves import build_curves
from optimizer.model import build_program
from optimizer.scenario import SolverName
from optimizer.solve import solve_program
from optimizer.verify import (
    OPTIMALITY_TOLERANCE,
    check_solution,
    dual_bound,
    polished_duals,
)

HAND_CHECK = Path(__file__).resolve().parents[1] / "scenarios" / "hand_check.toml"

# Pipeline per dollar and capacity of the hand-check cells (see its comment).
A = "evaluation_tier_1/google_search"  # 100 per dollar, 20,000
B = "evaluation_tier_1/linkedin"  # 40 per dollar, 30,000
C = "evaluation_tier_2/google_search"  # 50 per dollar, 20,000
D = "evaluation_tier_2/linkedin"  # 10 per dollar, 40,000


@pytest.fixture(scope="module")
def hand():
    scenario = load_scenario(HAND_CHECK)
    program = build_program(scenario, build_curves(scenario))
    run = solve_program(program, solver=SolverName.HIGHS)
    column = {
        cell.cell_id: int(np.flatnonzero(program.curves.group == i)[0])
        for i, cell in enumerate(program.curves.cells)
    }
    return program, run, column


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_a_correct_solve_passes(solver):
    scenario = load_scenario(HAND_CHECK)
    program = build_program(scenario, build_curves(scenario))
    run = solve_program(program, solver=SolverName(solver))
    check = check_solution(program, run)
    assert check.passed
    assert check.max_bound_violation <= check.tolerance
    assert check.max_row_violation <= check.tolerance
    assert check.relative_gap <= OPTIMALITY_TOLERANCE
    # The objective is in units of budget / 1000 = 50: 3,300,000 / 50.
    assert check.objective_recomputed == pytest.approx(66_000, rel=1e-9)
    assert check.dual_bound == pytest.approx(66_000, rel=1e-9)
    assert check.tolerance == pytest.approx(1e-7 * 50_000)


def test_a_row_broken_by_100_dollars_is_measured(hand):
    program, run, column = hand
    x = run.x.copy()
    x[column[D]] += 100 / program.money_unit
    check = check_solution(program, replace(run, x=x))
    assert not check.passed
    assert check.worst_row == "budget"
    assert check.max_row_violation == pytest.approx(100.0, rel=1e-9)
    assert check.max_bound_violation == 0.0


def test_a_column_past_its_room_is_measured(hand):
    program, run, column = hand
    x = run.x.copy()
    # 50 dollars more for A than its 20,000 of room, taken from C: the budget
    # and the google_search maximum still hold.
    x[column[A]] += 50 / program.money_unit
    x[column[C]] -= 50 / program.money_unit
    check = check_solution(program, replace(run, x=x))
    assert not check.passed
    assert check.max_bound_violation == pytest.approx(50.0, rel=1e-9)
    assert check.max_row_violation == pytest.approx(0.0, abs=1e-9)


def test_zero_duals_leave_a_large_gap(hand):
    program, run, _ = hand
    # With no row prices, the bound is every cell filled to its room:
    # 2,000,000 + 1,200,000 + 1,000,000 + 400,000 = 4,600,000 of pipeline,
    # 39% above the optimum of 3,300,000.
    zero = np.zeros(program.num_rows)
    assert dual_bound(program, zero) == pytest.approx(4_600_000 / 50, rel=1e-12)
    assert dual_bound(program, run.row_dual) == pytest.approx(66_000, rel=1e-9)
    # Whatever prices the check settles on, its bound is a true upper bound
    # and its gap is measured from it.
    check = check_solution(program, replace(run, row_dual=zero))
    assert check.dual_bound >= 66_000 * (1 - 1e-12)
    assert check.relative_gap == pytest.approx(
        (check.dual_bound - 66_000) / 66_000, abs=1e-12
    )


def test_the_certificate_fails_on_a_feasible_plan_that_is_not_optimal(hand):
    program, run, column = hand
    x = run.x.copy()
    # Move 5,000 from A (100 per dollar) to D (10 per dollar): still feasible,
    # 450,000 of pipeline worse.
    x[column[A]] -= 5000 / program.money_unit
    x[column[D]] += 5000 / program.money_unit
    objective = float(program.objective @ x)
    check = check_solution(program, replace(run, x=x, objective=objective))
    assert check.max_bound_violation == 0.0
    assert check.max_row_violation == pytest.approx(0.0, abs=1e-9)
    assert check.objective_recomputed * 50 == pytest.approx(2_850_000, rel=1e-12)
    assert check.relative_gap == pytest.approx(450_000 / 2_850_000, rel=1e-9)
    assert check.relative_gap > OPTIMALITY_TOLERANCE
    assert not check.passed


def test_a_misreported_objective_fails(hand):
    program, run, _ = hand
    check = check_solution(program, replace(run, objective=run.objective * 1.001))
    assert not check.passed


def feasible_x(drawn: Drawn, program) -> np.ndarray:
    """The drawn allocation as columns of the program, pieces filled in order."""
    curves = program.curves
    spend = np.array(
        [drawn.cents[key] / 100 for key in cell_months(drawn.scenario)]
    ).reshape(curves.shape)
    return curves.fill(spend) / program.money_unit


@fast(120)
@given(feasible_scenarios(), st.data())
def test_dual_bound_is_above_every_feasible_objective_for_any_prices(drawn, data):
    scenario = drawn.scenario
    program = build_program(scenario, build_curves(scenario))
    run = solve_program(program)
    assert run.has_optimum
    optimum = float(program.objective @ run.x)
    known = float(program.objective @ feasible_x(drawn, program))
    assert known <= optimum * (1 + 1e-9) + 1e-9

    size = max(1.0, float(np.abs(program.objective).max()))
    noise = data.draw(
        st.lists(
            st.floats(-3 * size, 3 * size),
            min_size=program.num_rows,
            max_size=program.num_rows,
        )
    )
    weight = data.draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))
    for y in (np.array(noise), run.row_dual * weight + np.array(noise) * 1e-3):
        bound = dual_bound(program, y)
        assert bound >= optimum - 1e-9 * max(1.0, abs(optimum))
        assert bound >= known - 1e-9 * max(1.0, abs(known))
    # The check of a feasible plan that falls short of the optimum never
    # passes: its bound is at least the optimum, whatever prices it uses.
    x = feasible_x(drawn, program)
    check = check_solution(
        program, replace(run, x=x, objective=float(program.objective @ x))
    )
    assert check.dual_bound >= optimum - 1e-9 * max(1.0, abs(optimum))
    if optimum - known > 2 * OPTIMALITY_TOLERANCE * max(1.0, abs(optimum)):
        assert not check.passed
    # At the solver's prices the bound closes on the optimum (strong duality).
    assert dual_bound(program, run.row_dual) == pytest.approx(
        optimum, rel=1e-7, abs=1e-9
    )


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_a_correct_solve_certifies_when_volume_dwarfs_the_budget(solver):
    # One linear cell worth 0.07 / 3 * 0.3 * 7,001.37164 = 49.00960148 of
    # pipeline per dollar, with 300,000 of volume a month against a budget of
    # 1,000: every plan spending the 1,000 is optimal. The budget's price has
    # ten significant digits; a price rounded down in its last digits leaves
    # a positive reduced cost on 900,000 of room, so the certificate must not
    # depend on digits a solver does not report.
    sc = scenario(
        segments=[segment("s", opportunity_rate=0.3, deal_size=7001.37164)],
        channels=[channel("c")],
        responses=[
            linear("s", "c", cpc=3, conversion_rate=0.07, monthly_clicks=100_000)
        ],
        months=3,
        budget=1000,
    )
    plan = optimize(sc, solver=solver)
    assert plan.verification.passed
    assert plan.objective_value == pytest.approx(49_009.60148, rel=1e-12)
    assert plan.budget_shadow_price == pytest.approx(49.00960148, rel=1e-7)


def test_polished_duals_recover_the_hand_computed_prices(hand):
    program, run, _ = hand
    # The prices by hand, per dollar (here also per unit of the program):
    # 40 for the budget, 10 for the google_search maximum. Start from prices
    # cut to five significant digits, as a solver's file might print them.
    rounded = np.array([float(f"{value:.5g}") for value in run.row_dual]) + 1e-4
    polished = polished_duals(program, run.x, rounded)
    np.testing.assert_allclose(polished, [40.0, 10.0], rtol=1e-12)
    assert dual_bound(program, polished) == pytest.approx(66_000, rel=1e-12)
