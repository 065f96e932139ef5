"""From a scenario to a verified plan: the whole path in one call."""

from __future__ import annotations

import logging

from optimizer.curves import build_curves
from optimizer.diagnosis import arithmetic_conflicts, elastic_conflicts
from optimizer.errors import InfeasibleScenarioError, SolverError, VerificationError
from optimizer.micro import solve_with_minimums
from optimizer.model import build_program
from optimizer.plan import Plan, build_plan
from optimizer.scenario import Scenario, SolverName
from optimizer.solve import SolveStatus, solve_program
from optimizer.verify import check_solution

logger = logging.getLogger(__name__)


def optimize(
    scenario: Scenario,
    *,
    solver: SolverName | str | None = None,
    time_limit: float | None = None,
) -> Plan:
    """Allocate the scenario's budget optimally and verify the result.

    Parameters
    ----------
    scenario
        A validated scenario, from :func:`optimizer.load_scenario` or built
        in Python.
    solver
        ``"highs"`` or ``"cbc"``; defaults to the scenario's ``[solver]``.
    time_limit
        Seconds the solver may take; defaults to the scenario's ``[solver]``.

    Returns
    -------
    Plan
        The rounded allocation, its metrics, shadow prices and the check.

    Raises
    ------
    InfeasibleScenarioError
        When no allocation satisfies every rule; ``reasons`` say which.
    SolverError
        When the solver does not prove an optimum, or its answer fails the
        independent check (:class:`~optimizer.errors.VerificationError`).
    """
    settings = scenario.solver
    name = SolverName(solver) if solver is not None else settings.name
    limit = time_limit if time_limit is not None else settings.time_limit

    program = build_program(scenario, build_curves(scenario))
    conflicts = arithmetic_conflicts(scenario, program)
    if conflicts:
        raise InfeasibleScenarioError(conflicts)

    if scenario.micro_segments.active:
        program, run, integer = solve_with_minimums(scenario, program)
        return build_plan(
            scenario, program, run, check_solution(program, run), integer=integer
        )

    run = solve_program(program, solver=name, time_limit=limit)
    if run.status is SolveStatus.INFEASIBLE:
        raise InfeasibleScenarioError(
            elastic_conflicts(program, scenario.plan.currency)
        )
    if not run.has_optimum:
        raise SolverError(
            f"{run.solver.name} stopped without a proven optimum: {run.status} "
            f"({run.detail}); no plan is reported. Raise [solver] time_limit or "
            "try the other solver."
        )

    verification = check_solution(program, run)
    if not verification.passed:
        raise VerificationError(
            f"the {run.solver.name} answer failed the independent check "
            f"({verification.describe()}; worst row {verification.worst_row}); "
            "no plan is reported. Try the other solver."
        )
    return build_plan(scenario, program, run, verification)
