"""Scenario sets: a base scenario and named variants that override parts of it.

A set file is TOML::

    [set]
    name = "FY2027 what-ifs"
    base = "demo_pipeline.toml"          # relative to the set file

    [[variants]]
    name = "Budget cut 15%"
    budget_multiplier = 0.85

    [[variants]]
    name = "LinkedIn costs 20% more"
    adjust = [{ channel_id = "linkedin", cost = 1.2 }]

Each variant is one of these kinds:

* ``fixed_budget`` (the default): maximize the objective at a budget;
* ``target_efficiency``: the largest budget whose ``marginal_roi`` or
  ``average_roi`` stays at or above, or whose ``cpa`` stays at or below, the
  ``target``;
* ``minimum_budget``: the smallest budget whose plan reaches a ``target`` of
  ``pipeline``, ``bookings_in_horizon`` or ``conversions``;
* ``evaluate``: score a given ``allocation`` (a CSV shaped like
  ``allocation.csv``) on the same curves and values, without optimizing;
* ``loosened_bounds``: every rule's minimum divided and maximum multiplied by
  ``factor``, to show what the rules cost.

Overrides available to every kind: ``budget`` or ``budget_multiplier``,
``spend``, ``objective``, ``adjust`` (cost and volume multipliers on a
channel, segment or month), ``add_constraints`` and ``remove_constraints``
(by the rule's subject, such as ``"channel linkedin"`` or ``"total spend"``).
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from optimizer.errors import ScenarioError
from optimizer.reading import _describe, load_scenario
from optimizer.scenario import (
    Adjustment,
    BudgetSettings,
    ConstraintRule,
    Frozen,
    Objective,
    ObjectiveSettings,
    Scenario,
    SpendRule,
)


class VariantKind(StrEnum):
    """What a variant asks."""

    FIXED_BUDGET = "fixed_budget"
    TARGET_EFFICIENCY = "target_efficiency"
    MINIMUM_BUDGET = "minimum_budget"
    EVALUATE = "evaluate"
    LOOSENED_BOUNDS = "loosened_bounds"


TARGETS = {
    VariantKind.TARGET_EFFICIENCY: ("marginal_roi", "average_roi", "cpa"),
    VariantKind.MINIMUM_BUDGET: ("pipeline", "bookings_in_horizon", "conversions"),
}


class SetSettings(Frozen):
    """The ``[set]`` table."""

    name: str = Field(default="", description="a free-text name for the set")
    base: str = Field(description="a path to the base scenario's TOML file")


class Variant(Frozen):
    """One named what-if on the base scenario."""

    name: str = Field(min_length=1, description="a name for the variant")
    kind: VariantKind = Field(
        default=VariantKind.FIXED_BUDGET,
        description="one of " + ", ".join(f"'{k}'" for k in VariantKind),
    )
    budget: float | None = Field(default=None, gt=0, description="a budget > 0")
    budget_multiplier: float | None = Field(
        default=None, gt=0, description="a multiplier of the base budget, > 0"
    )
    spend: SpendRule | None = Field(default=None, description="'exact' or 'up_to'")
    objective: Objective | None = Field(
        default=None,
        description="one of 'pipeline', 'bookings_in_horizon', 'conversions'",
    )
    adjust: tuple[Adjustment, ...] = ()
    add_constraints: tuple[ConstraintRule, ...] = ()
    remove_constraints: tuple[str, ...] = Field(
        default=(), description="rule subjects such as 'channel linkedin'"
    )
    target: dict[str, float] | None = Field(
        default=None, description="one metric and its target, e.g. { pipeline = 4e7 }"
    )
    allocation: str | None = Field(
        default=None, description="a path to an allocation CSV, for 'evaluate'"
    )
    factor: float | None = Field(
        default=None, gt=1, description="a widening factor > 1, for 'loosened_bounds'"
    )
    note: str = Field(default="", description="why the variant is asked")

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        if self.budget is not None and self.budget_multiplier is not None:
            raise ValueError("give budget or budget_multiplier, not both")
        needs = {
            VariantKind.EVALUATE: ("allocation", self.allocation),
            VariantKind.LOOSENED_BOUNDS: ("factor", self.factor),
        }
        if self.kind in needs and needs[self.kind][1] is None:
            raise ValueError(f"a '{self.kind}' variant needs {needs[self.kind][0]}")
        if self.kind in TARGETS:
            allowed = TARGETS[self.kind]
            if self.target is None or len(self.target) != 1:
                raise ValueError(
                    f"a '{self.kind}' variant needs target = {{ <metric> = <value> }} "
                    f"with one of {', '.join(allowed)}"
                )
            metric = next(iter(self.target))
            if metric not in allowed:
                raise ValueError(
                    f"target {metric!r} does not fit a '{self.kind}' variant; "
                    f"expected one of {', '.join(allowed)}"
                )
        return self


class SetFile(Frozen):
    """A scenario-set file's top level."""

    set: SetSettings
    variants: tuple[Variant, ...] = Field(min_length=1)


class ScenarioSet(Frozen):
    """A base scenario and its variants, with the set file's folder."""

    name: str
    base: Scenario
    variants: tuple[Variant, ...]
    folder: Path

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = ["base", *(variant.name for variant in self.variants)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"variant names must be unique and not 'base'; repeated: {repeated}"
            )
        return self


def load_scenario_set(path: str | Path) -> ScenarioSet:
    """Read a scenario-set file and its base scenario."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(
            f"{path}: no such file; expected a scenario-set TOML file."
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: not valid TOML ({error}).") from None
    try:
        settings = SetFile.model_validate(document)
    except ValidationError as error:
        problems = [_variant_problem(path, issue) for issue in error.errors()]
        raise ScenarioError(problems) from None

    base = load_scenario(path.parent / settings.set.base)
    try:
        return ScenarioSet(
            name=settings.set.name,
            base=base,
            variants=settings.variants,
            folder=path.parent,
        )
    except ValidationError as error:
        raise ScenarioError(f"{path}: {error.errors()[0]['msg']}") from None


def _variant_problem(path: Path, issue: ErrorDetails) -> str:
    location = tuple(issue["loc"])
    if location[:1] == ("variants",) and len(location) >= 2:
        where = f"{path}, [[variants]] entry {int(location[1]) + 1}"
        return _describe({**issue, "loc": location[2:]}, where, Variant)
    return _describe(issue, str(path), SetFile, toml=True)


def apply_variant(base: Scenario, variant: Variant) -> Scenario:
    """The base scenario with a variant's overrides applied and checked."""
    budget = base.budget
    total = variant.budget or budget.total * (variant.budget_multiplier or 1.0)
    changes: dict[str, object] = {
        "budget": BudgetSettings(total=total, spend=variant.spend or budget.spend),
        "adjustments": (*base.adjustments, *variant.adjust),
        "constraints": _constraints(base, variant),
    }
    if variant.objective is not None:
        changes["objective"] = ObjectiveSettings(maximize=variant.objective)
    try:
        return base.replace(**changes)
    except ValidationError as error:
        raise ScenarioError(
            [f"variant {variant.name!r}: {issue['msg']}" for issue in error.errors()]
        ) from None


def _constraints(base: Scenario, variant: Variant) -> tuple[ConstraintRule, ...]:
    subjects = {rule.label for rule in base.constraints}
    unknown = [s for s in variant.remove_constraints if s not in subjects]
    if unknown:
        raise ScenarioError(
            f"variant {variant.name!r}, field 'remove_constraints': got "
            f"{unknown[0]!r}; expected the subject of a base rule, one of "
            f"{', '.join(sorted(subjects)) or '(none)'}."
        )
    kept = [r for r in base.constraints if r.label not in variant.remove_constraints]
    rules = (*kept, *variant.add_constraints)
    if variant.kind is VariantKind.LOOSENED_BOUNDS and variant.factor is not None:
        rules = tuple(loosen(rule, variant.factor) for rule in rules)
    return rules


def loosen(rule: ConstraintRule, factor: float) -> ConstraintRule:
    """A rule with its minimums divided and maximums multiplied by ``factor``.

    A fixed amount becomes the range from ``fixed / factor`` to
    ``fixed * factor``; shares stay within 0 and 1.
    """
    low = rule.fixed if rule.fixed is not None else rule.min
    high = rule.fixed if rule.fixed is not None else rule.max
    return rule.model_copy(
        update={
            "min": None if low is None else low / factor,
            "max": None if high is None else high * factor,
            "fixed": None,
            "min_share": None if rule.min_share is None else rule.min_share / factor,
            "max_share": None
            if rule.max_share is None
            else min(1.0, rule.max_share * factor),
        }
    )
