"""The budget frontier and the searches on it, against fresh solves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import optimizer
from optimizer.frontier import (
    BudgetSweeper,
    budget_grid,
    feasible_budgets,
    largest_budget,
    smallest_budget,
    sweep,
)
from optimizer.scenario import BudgetSettings, Objective, ObjectiveSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo() -> optimizer.Scenario:
    return optimizer.load_scenario(ROOT / "scenarios" / "demo_pipeline.toml")


@pytest.fixture(scope="module")
def hand() -> optimizer.Scenario:
    return optimizer.load_scenario(ROOT / "scenarios" / "hand_check.toml")


def at_budget(scenario: optimizer.Scenario, budget: float) -> optimizer.Plan | None:
    """A fresh, cold solve at another budget: the reference for the sweep."""
    settings = BudgetSettings(total=budget, spend=scenario.budget.spend)
    try:
        return optimizer.optimize(scenario.replace(budget=settings))
    except optimizer.InfeasibleScenarioError:
        return None


def test_frontier_is_concave_and_matches_cold_solves(demo: optimizer.Scenario) -> None:
    budgets = budget_grid(demo, 0.5, 1.05, 23, absolute=False)
    table, levels = sweep(demo, budgets)

    solved = table[table["status"] == "optimal"]
    assert len(solved) == 23
    assert np.all(np.diff(solved["objective"]) > 0)
    assert np.all(np.diff(solved["marginal_roi"]) <= 1e-9)
    for level in levels[::5]:
        cold = at_budget(demo, level.budget)
        assert cold is not None and level.plan is not None
        # The optimum before rounding is unique; rounding to cents may differ
        # where two optimal vertices tie, so compare the solver's value.
        assert level.plan.solver_objective == pytest.approx(
            cold.solver_objective, rel=1e-9
        )
        assert level.plan.budget_shadow_price == pytest.approx(
            cold.budget_shadow_price, rel=1e-6
        )


def test_frontier_spend_columns_add_up_to_the_budget(demo: optimizer.Scenario) -> None:
    table, _ = sweep(demo, [1_500_000, 2_000_000])
    stages = table.filter(like="spend_stage_").sum(axis=1)
    channels = table.filter(like="spend_channel_").sum(axis=1)
    assert stages.round(2).tolist() == [1_500_000, 2_000_000]
    assert channels.round(2).tolist() == [1_500_000, 2_000_000]


def test_frontier_reports_infeasible_budgets_without_stopping(
    demo: optimizer.Scenario,
) -> None:
    table, levels = sweep(demo, [100_000, 2_400_000, 5_000_000])
    assert table["status"].tolist() == ["infeasible", "optimal", "infeasible"]
    assert levels[1].plan is not None
    assert levels[1].plan.solver_objective == pytest.approx(
        optimizer.optimize(demo).solver_objective, rel=1e-9
    )


def test_hand_check_frontier_has_the_hand_computed_kinks(
    hand: optimizer.Scenario,
) -> None:
    # Cells in order of pipeline per dollar: A 100 (20k room), C 50 (20k, but
    # google_search <= 30k leaves it 10k after A), B 40 (30k), D 10 (40k).
    table, _ = sweep(hand, [10_000, 25_000, 35_000, 65_000, 90_000])
    assert table["objective"].round(6).tolist() == [
        1_000_000,
        2_000_000 + 5_000 * 50,
        2_000_000 + 10_000 * 50 + 5_000 * 40,
        2_000_000 + 10_000 * 50 + 30_000 * 40 + 5_000 * 10,
        2_000_000 + 10_000 * 50 + 30_000 * 40 + 30_000 * 10,
    ]
    assert table["marginal_roi"].round(9).tolist() == [100, 50, 40, 10, 10]


def bisect(holds, low: float, high: float) -> float:  # type: ignore[no-untyped-def]
    """Largest budget in [low, high] where ``holds`` is true, to about a cent."""
    assert holds(low) and not holds(high)
    while high - low > 0.01:
        middle = (low + high) / 2
        low, high = (middle, high) if holds(middle) else (low, middle)
    return low


def test_feasible_budgets_match_the_rules(hand: optimizer.Scenario) -> None:
    # Spending exactly, the cells can absorb 20k + 20k + 30k + 40k, but
    # google_search is capped at 30k: at most 30k + 30k + 40k = 100k.
    assert feasible_budgets(BudgetSweeper(hand)) == (0.01, 100_000.0)


def test_largest_budget_for_a_marginal_roi_matches_a_bisection(
    demo: optimizer.Scenario,
) -> None:
    def holds(budget: float) -> bool:
        plan = at_budget(demo, budget)
        return plan is not None and plan.budget_shadow_price >= 6.5

    expected = bisect(holds, 1_500_000, 2_400_000)
    result = largest_budget(demo, marginal_roi=6.5)

    assert result.budget == pytest.approx(expected, abs=0.02)
    assert result.plan is not None
    assert result.plan.budget_shadow_price >= 6.5


def test_largest_budget_for_an_average_roi_matches_a_bisection(
    demo: optimizer.Scenario,
) -> None:
    def holds(budget: float) -> bool:
        plan = at_budget(demo, budget)
        return plan is not None and plan.objective_value >= 15.0 * budget

    expected = bisect(holds, 1_000_000, 2_400_000)
    result = largest_budget(demo, average_roi=15.0)

    assert result.budget == pytest.approx(expected, abs=0.05)
    # Forced spend makes small budgets poor: the smallest allowed is below 15.
    smallest = at_budget(demo, 720_000)
    assert smallest is not None and smallest.objective_value < 15.0 * 720_000


def test_largest_budget_for_a_cpa_on_the_hand_check(hand: optimizer.Scenario) -> None:
    conversions = hand.replace(
        objective=ObjectiveSettings(maximize=Objective.CONVERSIONS)
    )
    # Maximizing conversions: C (80 per conversion, 20k), A (200, 10k of
    # google room left), D (400, 40k), B (500). CPA 120 is reached where
    # (20k + s) / (250 + s / 200) = 120 within A's 10k: s = 10,000 exactly at
    # CPA 30k / 300 = 100; then D: (30k + t) / (300 + t / 400) = 120 gives
    # t = 6,000 / 0.7 = 8,571.43.
    result = largest_budget(conversions, cpa=120.0)
    assert result.budget == pytest.approx(30_000 + 6_000 / 0.7, abs=0.02)


def test_smallest_budget_for_pipeline_matches_a_bisection(
    demo: optimizer.Scenario,
) -> None:
    def short(budget: float) -> bool:
        plan = at_budget(demo, budget)
        return plan is None or plan.objective_value < 30_000_000

    # The bisection brackets the answer from below: the last budget short of
    # the target, a cent or so under the first that reaches it.
    expected = bisect(short, 1_000_000, 2_400_000)
    result = smallest_budget(demo, metric="pipeline", target=30_000_000)

    assert result.budget == pytest.approx(expected, abs=0.05)
    assert result.plan is not None
    assert result.plan.objective_value >= 30_000_000


def test_smallest_budget_on_the_hand_check(hand: optimizer.Scenario) -> None:
    # 2.5M of pipeline: A's 20k gives 2.0M, then C at 50 per dollar: 10k more.
    result = smallest_budget(hand, metric="pipeline", target=2_500_000)
    assert result.budget == pytest.approx(30_000, abs=0.02)


def test_unreachable_targets_say_why(hand: optimizer.Scenario) -> None:
    result = smallest_budget(hand, metric="pipeline", target=10_000_000)
    assert result.budget is None
    assert result.explanation == (
        "pipeline 10,000,000.00 is out of reach: the most any budget the rules "
        "allow gives is 4,100,000.00, at 100,000.00"
    )
    too_high = largest_budget(hand, marginal_roi=1_000)
    assert too_high.budget is None
    assert too_high.explanation == (
        "no budget has marginal roi at least 1,000.00: not even the smallest "
        "budget the rules allow, 0.01"
    )


def test_largest_budget_needs_exactly_one_target(hand: optimizer.Scenario) -> None:
    with pytest.raises(ValueError, match="exactly one target"):
        largest_budget(hand, marginal_roi=1.0, cpa=2.0)
