"""Plans as text for people: pure functions of a plan, no printing."""

from __future__ import annotations

import pandas as pd

from optimizer.comparison import Comparison
from optimizer.plan import Plan
from optimizer.scenario import Scenario

STAGE_ORDER = ("research", "evaluation", "decision")


def spend_by_stage_and_channel(plan: Plan) -> pd.DataFrame:
    """Spend in whole currency units, stages x channels, with totals.

    Summed from the plan's cents, so the totals equal the plan's.
    """
    frame = plan.allocation[["stage", "channel_id"]].assign(cents=plan.spend_cents)
    table = frame.pivot_table(
        index="stage", columns="channel_id", values="cents", aggfunc="sum", fill_value=0
    )
    table = table.reindex([s for s in STAGE_ORDER if s in table.index])
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    return table / 100


def console_summary(plan: Plan) -> str:
    """A compact summary: the objective, spend by stage and channel, the check."""
    scenario = plan.scenario
    currency = scenario.plan.currency
    objective = scenario.objective.maximize.value.replace("_", " ")
    overall = plan.overall()
    table = spend_by_stage_and_channel(plan).map(lambda v: f"{v:,.0f}")
    table.index.name = f"spend ({currency})"
    table.columns.name = None

    lines = [
        f"{scenario.plan.name or scenario.source or 'scenario'}: "
        f"{scenario.plan.months} months from {scenario.plan.start}",
        f"maximize {objective}: {plan.objective_value:,.2f}",
        f"spend {plan.total_spend:,.2f} {currency} of {scenario.budget.total:,.2f} "
        f"({scenario.budget.spend.value}); one more dollar is worth "
        f"{plan.budget_shadow_price:,.4g} of {objective}",
        f"conversions {overall['conversions']:,.1f}, opportunities "
        f"{overall['opportunities']:,.1f}, pipeline {overall['pipeline']:,.0f}, "
        f"bookings in horizon {overall['bookings_in_horizon']:,.0f} {currency}",
        "",
        table.to_string(),
        "",
    ]
    binding = [c for c in plan.binding_constraints if c.name != "budget"]
    if binding:
        lines.append("binding rules:")
        lines += [
            f"  {c.label}: {c.explain(scenario.objective.maximize)}" for c in binding
        ]
    if plan.integer is not None:
        lines.append(f"minimum viable spend: {plan.integer.describe()}")
    lines.append(f"check: {plan.verification.describe()} ({plan.solver.name})")
    return "\n".join(lines) + "\n"


def comparison_text(comparison: Comparison) -> str:
    """One line per scenario: status, budget, objective and delta, or why not."""
    summary = comparison.summary
    lines = [f"{comparison.name or 'scenario set'}: {len(summary)} scenarios"]
    for row in summary.itertuples():
        if row.status in ("optimal", "evaluated"):
            delta = (
                ""
                if pd.isna(row.objective_delta_pct)
                else f" ({row.objective_delta_pct:+.1f}% vs base)"
            )
            lines.append(
                f"  {row.scenario}: {row.status}, budget {row.budget:,.2f}, "
                f"objective {row.objective:,.2f}{delta}"
            )
        else:
            lines.append(f"  {row.scenario}: {row.status}: {row.message}")
    return "\n".join(lines) + "\n"


def frontier_text(frontier: pd.DataFrame, scenario: Scenario) -> str:
    """The frontier as a short table: budget, objective, marginal ROI."""
    objective = scenario.objective.maximize.value.replace("_", " ")
    table = frontier[["budget", "status", "objective", "marginal_roi"]].copy()
    table["budget"] = table["budget"].map(lambda v: f"{v:,.2f}")
    table["objective"] = table["objective"].map(
        lambda v: "" if pd.isna(v) else f"{v:,.0f}"
    )
    table["marginal_roi"] = table["marginal_roi"].map(
        lambda v: "" if pd.isna(v) else f"{v:,.4f}"
    )
    table = table.rename(columns={"objective": objective})
    text: str = table.to_string(index=False)
    return text + "\n"
