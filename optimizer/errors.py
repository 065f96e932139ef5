"""The exceptions a caller of the optimizer can handle.

::

    OptimizerError
    ├── ScenarioError (also ValueError)    the input is wrong: file, row, field, value
    ├── InfeasibleScenarioError            the rules cannot all hold at once
    └── SolverError                        the solver gave no verified optimum
        └── VerificationError              a returned point broke a constraint

Every message is complete on its own: it names where the problem is, the value
found, what was expected and, where there is one, the fix.
"""

from __future__ import annotations

from collections.abc import Sequence


class OptimizerError(Exception):
    """Base of every error the optimizer raises on purpose."""


class ScenarioError(OptimizerError, ValueError):
    """The scenario's files or values are invalid.

    ``problems`` holds one complete message per problem found; the exception's
    own message joins them, one per line.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


class InfeasibleScenarioError(OptimizerError):
    """No allocation satisfies every rule of the scenario.

    ``reasons`` are the conflicts in business words, with the amounts.
    """

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        lines = ["The scenario is infeasible: no allocation satisfies every rule."]
        lines += [f"- {reason}" for reason in self.reasons]
        super().__init__("\n".join(lines))


class SolverError(OptimizerError):
    """The solver stopped without a proven optimum, so there is no plan."""


class VerificationError(SolverError):
    """The solver's answer failed the independent check of its constraints."""
