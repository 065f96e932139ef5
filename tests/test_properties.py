"""Properties of optimize() on small random scenarios.

Every drawn scenario comes with an allocation that keeps all of its rules
(see ``builders.feasible_scenarios``), so each one has a plan.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from builders import (
    bounds_in_money,
    capacity,
    fast,
    feasible_scenarios,
    rebuild,
    scaled,
    scope_cells,
    shuffled,
    spend_by_cell_month,
)
from hypothesis import given
from hypothesis import strategies as st

from optimizer import BudgetSettings, InfeasibleScenarioError, optimize
from optimizer.curves import build_curves
from optimizer.model import build_program
from optimizer.solve import solve_program


@fast(150)
@given(feasible_scenarios(max_rules=4))
def test_every_bound_holds_in_the_plan(drawn):
    sc = drawn.scenario
    plan = optimize(sc)
    cents = spend_by_cell_month(plan)
    room = capacity(sc)
    assert set(cents) == set(room)
    for key, spent in cents.items():
        assert spent >= 0
        # Within a cent of the cell-month's volume: rounding goes up at most
        # one cent from a spend that fits.
        assert spent <= room[key] * 100 + 1 + 1e-6, key
    total = sum(cents.values())
    if sc.budget.spend == "exact":
        assert total == round(sc.budget.total * 100)
    else:
        assert total <= round(sc.budget.total * 100)
    assert plan.total_spend * 100 == pytest.approx(total, abs=1e-6)
    for r in sc.constraints:
        low, high = bounds_in_money(r, total / 100)
        held = sum(cents[key] for key in scope_cells(sc, r.scope, r.id))
        assert held >= math.ceil(low * 100 - 1e-6), (r, held)
        if math.isfinite(high):
            assert held <= math.floor(high * 100 + 1e-6), (r, held)
    # Totals by any grouping reconcile with the cells to the cent.
    for by in ("channel", "segment", "stage", "month"):
        assert round(plan.totals(by)["spend"].sum() * 100) == total


@fast(60)
@given(
    feasible_scenarios(max_rules=3, spend="up_to"),
    st.lists(st.floats(1.0, 4.0), min_size=1, max_size=3),
)
def test_objective_never_drops_as_an_up_to_budget_grows(drawn, factors):
    # Spending up to the budget, a larger budget only adds plans: the drawn
    # budget is feasible, and so is every larger one.
    sc = drawn.scenario
    values = []
    for factor in sorted({1.0, *factors}):
        budget = math.ceil(sc.budget.total * factor * 100) / 100
        bigger = rebuild(sc, budget=BudgetSettings(total=budget, spend="up_to"))
        values.append(optimize(bigger).solver_objective)
    for small, large in itertools.pairwise(values):
        assert large >= small - 1e-9 * max(1.0, abs(small))


@fast(60)
@given(
    feasible_scenarios(max_rules=0, spend="exact"),
    st.lists(st.floats(0.05, 1.0), min_size=1, max_size=3),
)
def test_objective_never_drops_as_an_exact_budget_grows(drawn, factors):
    # Without rules an exact budget is feasible up to the volume; the drawn
    # budget fits, so every smaller one does, and no value is negative.
    sc = drawn.scenario
    values = []
    for factor in sorted({1.0, *factors}):
        budget = math.floor(sc.budget.total * factor * 100) / 100
        if budget <= 0:
            continue
        smaller = rebuild(sc, budget=BudgetSettings(total=budget, spend="exact"))
        values.append(optimize(smaller).solver_objective)
    for small, large in itertools.pairwise(values):
        assert large >= small - 1e-9 * max(1.0, abs(small))


@fast(60)
@given(feasible_scenarios(max_rules=4, spend="exact"), st.floats(1.0, 3.0))
def test_an_exact_budget_with_minimums_never_loses_value_as_it_grows(drawn, factor):
    # With minimums only, the plan for the smaller budget plus the extra
    # spent anywhere with room keeps every rule, and no value is negative.
    # (Maximums can make a larger exact budget worth less: with a + b <= 100
    # and a + c <= 100, spending 150 exactly caps the valuable a at 50.)
    sc = drawn.scenario
    minimums = tuple(
        rule.model_copy(update={"max": None, "fixed": None, "max_share": None})
        for rule in sc.constraints
        if rule.min is not None
    )
    sc = rebuild(sc, constraints=minimums)
    base = optimize(sc).solver_objective
    budget = math.ceil(sc.budget.total * factor * 100) / 100
    try:
        larger = optimize(rebuild(sc, budget=BudgetSettings(total=budget)))
    except InfeasibleScenarioError:
        assert budget > sum(capacity(sc).values()) * (1 - 1e-9)
        return
    assert larger.solver_objective >= base - 1e-9 * max(1.0, abs(base))


@fast(60)
@given(feasible_scenarios(max_rules=3), st.integers(0, 2**32 - 1))
def test_shuffled_rows_give_the_same_cents(drawn, seed):
    sc = drawn.scenario
    plan = optimize(sc)
    again = optimize(shuffled(sc, np.random.default_rng(seed)))
    np.testing.assert_array_equal(plan.spend_cents, again.spend_cents)
    assert list(plan.allocation["cell"]) == list(again.allocation["cell"])


@fast(60)
@given(feasible_scenarios(max_rules=3), st.integers(0, 2**32 - 1))
def test_shuffled_rows_give_the_identical_allocation(drawn, seed):
    sc = drawn.scenario
    plan = optimize(sc)
    again = optimize(shuffled(sc, np.random.default_rng(seed)))
    pd.testing.assert_frame_equal(plan.allocation, again.allocation, check_exact=True)


def exact_spend(sc):
    """The solver's spend before rounding (cells x months) and the curves."""
    curves = build_curves(sc)
    program = build_program(sc, curves)
    run = solve_program(program)
    assert run.has_optimum
    return program.spend(run.x), curves


@fast(80)
@given(
    feasible_scenarios(max_rules=3, maximize="pipeline"),
    st.sampled_from([0.01, 0.37, 3.0, 1000.0, 12_345.678]),
)
def test_scaling_all_money_by_k_scales_spend_and_keeps_conversions(drawn, k):
    sc = drawn.scenario
    big = scaled(sc, k)
    plan, plan_k = optimize(sc), optimize(big)
    spend, curves = exact_spend(sc)
    spend_k, curves_k = exact_spend(big)

    # Before rounding: spend scales by k.
    np.testing.assert_allclose(
        spend_k, k * spend, rtol=1e-9, atol=1e-9 * k * spend.max()
    )
    # After rounding: within a cent of k times the exact spend.
    gap = np.abs(plan_k.spend_cents / 100 - k * spend.reshape(-1))
    assert gap.max() <= 0.01 + 1e-9 * k * spend.max()
    assert plan_k.total_spend == pytest.approx(k * spend.sum(), rel=1e-9, abs=0.01)

    # Conversions do not change; pipeline, in money, scales by k.
    conversions = curves.conversions(spend)
    conversions_k = curves_k.conversions(spend_k)
    np.testing.assert_allclose(
        conversions_k, conversions, rtol=1e-6, atol=1e-9 * conversions.max()
    )
    assert plan_k.solver_objective == pytest.approx(k * plan.solver_objective, rel=1e-9)
    # A shadow price is pipeline per unit of money: both scale, it does not.
    assert plan_k.budget_shadow_price == pytest.approx(
        plan.budget_shadow_price, rel=1e-6, abs=1e-9
    )


@fast(60)
@given(
    feasible_scenarios(max_rules=2, maximize="conversions"),
    st.sampled_from([0.01, 7.0, 1000.0]),
)
def test_scaling_money_leaves_a_conversions_plan_unchanged(drawn, k):
    sc = drawn.scenario
    plan, plan_k = optimize(sc), optimize(scaled(sc, k))
    assert plan_k.solver_objective == pytest.approx(plan.solver_objective, rel=1e-6)
    # A conversion costs k times as much: the budget's shadow price is 1/k.
    assert plan_k.budget_shadow_price * k == pytest.approx(
        plan.budget_shadow_price, rel=1e-6, abs=1e-12
    )
