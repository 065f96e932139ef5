"""Budget allocation for enterprise paid media, as a verified linear program.

The public API::

    import optimizer

    scenario = optimizer.load_scenario("scenarios/demo_pipeline.toml")
    plan = optimizer.optimize(scenario)
    plan.allocation              # one row per segment x channel x month
    plan.totals("channel")       # spend and metrics by channel
    optimizer.write_plan(plan, "out/demo")
"""

from optimizer.curves import CurveWarning
from optimizer.errors import (
    InfeasibleScenarioError,
    OptimizerError,
    ScenarioError,
    SolverError,
    VerificationError,
)
from optimizer.model import ScalingWarning
from optimizer.outputs import write_plan
from optimizer.plan import ConstraintReport, Plan
from optimizer.planner import optimize
from optimizer.reading import load_scenario
from optimizer.scenario import (
    BudgetSettings,
    Channel,
    ConstraintRule,
    CurvePoint,
    CurveSettings,
    ObjectiveSettings,
    PlanSettings,
    Response,
    SalesCycleSettings,
    Scenario,
    Seasonality,
    Segment,
    SolverSettings,
)

__all__ = [
    "BudgetSettings",
    "Channel",
    "ConstraintReport",
    "ConstraintRule",
    "CurvePoint",
    "CurveSettings",
    "CurveWarning",
    "InfeasibleScenarioError",
    "ObjectiveSettings",
    "OptimizerError",
    "Plan",
    "PlanSettings",
    "Response",
    "SalesCycleSettings",
    "ScalingWarning",
    "Scenario",
    "ScenarioError",
    "Seasonality",
    "Segment",
    "SolverError",
    "SolverSettings",
    "VerificationError",
    "load_scenario",
    "optimize",
    "write_plan",
]
