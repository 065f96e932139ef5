"""The scenario: every input of a plan, as frozen and validated values.

A scenario is built by :func:`optimizer.reading.load_scenario` from a TOML file
and the CSV tables beside it, or directly in Python. Each model refuses unknown
fields, NaN and infinity, and values outside their documented range, so an
invalid scenario cannot be built. The ``description`` of a field says what it
expects; error messages quote it.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from optimizer.bids import BidSettings
from optimizer.fields import (
    IDENTIFIER_PATTERN,
    MONTH_PATTERN,
    Frozen,
    Identifier,
    Month,
)
from optimizer.quality import QualitySettings
from optimizer.thresholds import ThresholdRule

__all__ = ["IDENTIFIER_PATTERN", "MONTH_PATTERN", "Frozen", "Identifier", "Month"]


class Stage(StrEnum):
    """Where in the buying journey a segment sits."""

    RESEARCH = "research"
    EVALUATION = "evaluation"
    DECISION = "decision"


class Platform(StrEnum):
    """The ad platform a channel is bought on; it decides the bid conventions."""

    GOOGLE_ADS = "google_ads"
    MICROSOFT_ADS = "microsoft_ads"
    LINKEDIN = "linkedin"
    OTHER = "other"


class CurveKind(StrEnum):
    """How a cell's conversions respond to its monthly spend."""

    LINEAR = "linear"
    SATURATING = "saturating"
    POINTS = "points"


class Objective(StrEnum):
    """The one quantity a plan maximizes."""

    PIPELINE = "pipeline"
    BOOKINGS_IN_HORIZON = "bookings_in_horizon"
    CONVERSIONS = "conversions"


class SpendRule(StrEnum):
    """Whether the whole budget must be spent."""

    EXACT = "exact"
    UP_TO = "up_to"


class Scope(StrEnum):
    """What a constraint applies to."""

    CHANNEL = "channel"
    SEGMENT = "segment"
    STAGE = "stage"
    CELL = "cell"
    MONTH = "month"
    TOTAL = "total"
    MARKET = "market"
    ACCOUNT_TIER = "account_tier"
    AUDIENCE = "audience"
    PERSONA = "persona"
    INTENT = "intent"
    OFFER = "offer"
    LIFECYCLE = "lifecycle"
    SEGMENTS = "segments"
    """Segments matching every condition of the rule's ``where`` table."""


#: The segment hierarchy, from the widest level to the narrowest.
PATH_LEVELS = ("market", "account_tier", "audience", "persona", "intent", "offer")

#: Segment attributes a ``where`` condition may test.
WHERE_FIELDS = ("stage", *PATH_LEVELS, "lifecycle")

#: Scopes that name a tag value in their ``id``.
TAG_SCOPES = frozenset(Scope(name) for name in (*PATH_LEVELS, "lifecycle"))


# --- settings from the scenario's TOML file ---------------------------------


class PlanSettings(Frozen):
    """The planning horizon."""

    name: str = Field(default="", description="a free-text name for the plan")
    start: Month = Field(description="the first month of the horizon, as YYYY-MM")
    months: int = Field(ge=1, le=36, description="a whole number of months, 1 to 36")
    currency: str = Field(
        default="USD",
        pattern=r"^[A-Z]{3}$",
        description="a three-letter ISO 4217 currency code such as USD",
    )

    @property
    def month_labels(self) -> tuple[str, ...]:
        """The horizon's months as ``YYYY-MM``, in order."""
        year, month = (int(part) for part in self.start.split("-"))
        labels = []
        for offset in range(self.months):
            y, m = divmod(month - 1 + offset, 12)
            labels.append(f"{year + y:04d}-{m + 1:02d}")
        return tuple(labels)

    @property
    def end_date(self) -> date:
        """The first day after the horizon."""
        year, month = (int(part) for part in self.month_labels[-1].split("-"))
        return date(year + month // 12, month % 12 + 1, 1)


class BudgetSettings(Frozen):
    """How much may be spent over the horizon."""

    total: float = Field(gt=0, description="a budget greater than 0")
    spend: SpendRule = Field(
        default=SpendRule.EXACT,
        description="'exact' (spend all of it) or 'up_to' (spend at most this)",
    )


class ObjectiveSettings(Frozen):
    """The one objective of the plan."""

    maximize: Objective = Field(
        description="one of 'pipeline', 'bookings_in_horizon', 'conversions'"
    )


class CurveSettings(Frozen):
    """How response curves become pieces of the linear program."""

    pieces: int = Field(
        default=8,
        ge=1,
        le=64,
        description="the number of linear pieces for a saturating curve, 1 to 64",
    )
    saturation: float = Field(
        default=0.99,
        gt=0,
        lt=1,
        description=(
            "the share of max_conversions at which a saturating curve stops, "
            "strictly between 0 and 1"
        ),
    )
    concave_hull: bool = Field(
        default=False,
        description="true to replace non-concave points curves by their concave hull",
    )


class SalesCycleSettings(Frozen):
    """How closed deals spread around a segment's sales-cycle length."""

    spread: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description=(
            "the half-width of the close-lag distribution as a share of the "
            "sales cycle, 0 to 1"
        ),
    )


class SolverName(StrEnum):
    """The solvers a scenario can ask for."""

    HIGHS = "highs"
    CBC = "cbc"


class SolverSettings(Frozen):
    """Which solver runs the program, and for how long at most."""

    name: SolverName = Field(default=SolverName.HIGHS, description="'highs' or 'cbc'")
    time_limit: float = Field(
        default=300.0, gt=0, description="seconds, greater than 0"
    )


class TableFiles(Frozen):
    """Where the scenario's CSV tables are, relative to the scenario file."""

    segments: str = Field(description="a path to the segments CSV")
    channels: str = Field(description="a path to the channels CSV")
    responses: str = Field(description="a path to the responses CSV")
    points: str | None = Field(default=None, description="a path to the points CSV")
    seasonality: str | None = Field(
        default=None, description="a path to the seasonality CSV"
    )


class ConstraintRule(Frozen):
    """A planner's rule on the spend of one scope: a channel, a month, ..."""

    scope: Scope = Field(
        description="one of " + ", ".join(f"'{scope}'" for scope in Scope)
    )
    id: str | None = Field(
        default=None,
        description=(
            "the channel, segment, stage, 'segment_id/channel_id' cell, YYYY-MM "
            "month or tag value the rule applies to (none for 'total' and "
            "'segments')"
        ),
    )
    where: dict[str, str] | None = Field(
        default=None,
        description=(
            "conditions on segment attributes for scope 'segments', e.g. "
            "{ intent = 'evaluation', market = 'north_america' }"
        ),
    )
    min: float | None = Field(default=None, ge=0, description="an amount of at least 0")
    max: float | None = Field(default=None, ge=0, description="an amount of at least 0")
    fixed: float | None = Field(
        default=None, ge=0, description="an amount of at least 0"
    )
    min_share: float | None = Field(
        default=None, ge=0, le=1, description="a share of total spend from 0 to 1"
    )
    max_share: float | None = Field(
        default=None, ge=0, le=1, description="a share of total spend from 0 to 1"
    )
    note: str = Field(default="", description="why the rule exists")

    @model_validator(mode="after")
    def _has_a_bound(self) -> Self:
        bounds = (self.min, self.max, self.fixed, self.min_share, self.max_share)
        if all(bound is None for bound in bounds):
            raise ValueError(
                "a constraint needs at least one of min, max, fixed, min_share, "
                "max_share"
            )
        without_id = (Scope.TOTAL, Scope.SEGMENTS)
        if self.scope in without_id and self.id is not None:
            raise ValueError(f"a '{self.scope}' constraint takes no id; remove the id")
        if self.scope not in without_id and self.id is None:
            raise ValueError(f"a '{self.scope}' constraint needs an id")
        if self.scope is Scope.SEGMENTS:
            if not self.where:
                raise ValueError(
                    "a 'segments' constraint needs where = { <attribute> = <value> }"
                )
            unknown = sorted(set(self.where) - set(WHERE_FIELDS))
            if unknown:
                raise ValueError(
                    f"where: got attribute {unknown[0]!r}; expected one of "
                    f"{', '.join(WHERE_FIELDS)}"
                )
        elif self.where is not None:
            raise ValueError(f"a '{self.scope}' constraint takes no where table")
        return self

    @property
    def scope_id(self) -> str | None:
        """The subject's id within its scope; a packed ``where`` for 'segments'."""
        if self.scope is Scope.SEGMENTS:
            return pack_where(self.where or {})
        return self.id

    @property
    def label(self) -> str:
        """The rule's subject in words, e.g. ``channel linkedin``."""
        if self.scope is Scope.TOTAL:
            return "total spend"
        if self.scope is Scope.SEGMENTS:
            return "segments with " + describe_where(self.where or {})
        return f"{self.scope} {self.id}"


def pack_where(where: dict[str, str]) -> str:
    """A ``where`` table as one hashable scope id: ``intent=evaluation&...``."""
    return "&".join(f"{key}={value}" for key, value in sorted(where.items()))


def unpack_where(key: str | None) -> dict[str, str]:
    """The ``where`` table that :func:`pack_where` packed."""
    if not key:
        return {}
    return dict(part.split("=", 1) for part in key.split("&"))


def describe_where(where: dict[str, str]) -> str:
    """Conditions in words: ``intent evaluation and market north_america``."""
    return " and ".join(f"{key} {value}" for key, value in sorted(where.items()))


# --- segment governance -------------------------------------------------------


class Overlap(StrEnum):
    """Whether one person can belong to several segments of the plan."""

    EXCLUSIVE = "exclusive"
    OVERLAPPING = "overlapping"


class SegmentationSettings(Frozen):
    """How the scenario's segments are organized."""

    overlap: Overlap = Field(
        default=Overlap.EXCLUSIVE,
        description="'exclusive' (each person in one segment) or 'overlapping'",
    )
    values: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="the allowed values of each tag, e.g. account_tier = ['tier_1']",
    )

    @model_validator(mode="after")
    def _known_tags(self) -> Self:
        unknown = sorted(set(self.values) - set(TAG_FIELDS))
        if unknown:
            raise ValueError(
                f"values: got tag {unknown[0]!r}; expected one of "
                f"{', '.join(TAG_FIELDS)}"
            )
        return self


class OverlapGroup(Frozen):
    """Segments that share one pool of reachable people."""

    id: str = Field(min_length=1, description="a name for the group")
    segments: tuple[str, ...] = Field(
        min_length=2, description="two or more segment ids that overlap"
    )
    monthly_reach: float = Field(
        gt=0, description="clicks per month the segments share, greater than 0"
    )
    note: str = Field(default="", description="where the reach figure comes from")


class Holdout(Frozen):
    """A share of some segments' reachable volume kept unexposed to measure lift."""

    where: dict[str, str] = Field(
        description=(
            "segment conditions, e.g. { segment_id = 'x' } or "
            "{ account_tier = 'tier_1' }"
        )
    )
    share: float = Field(gt=0, lt=1, description="a share strictly between 0 and 1")
    note: str = Field(default="", description="what the holdout measures")

    @model_validator(mode="after")
    def _known_fields(self) -> Self:
        _check_where(self.where, extra=("segment_id",))
        return self


class Suppression(Frozen):
    """Segments kept out of some channels before the plan is solved."""

    id: str = Field(min_length=1, description="a name for the rule")
    where: dict[str, str] = Field(
        description="segment conditions, e.g. { lifecycle = 'customer' }"
    )
    channels: tuple[str, ...] = Field(
        default=(), description="channel ids to keep them out of (empty: all)"
    )
    owner: str = Field(default="", description="who owns the rule")
    rationale: str = Field(default="", description="why the rule exists")

    @model_validator(mode="after")
    def _known_fields(self) -> Self:
        _check_where(self.where, extra=("segment_id",))
        return self


class MicroSegmentSettings(Frozen):
    """Minimum viable spend: a cell or segment gets nothing or at least this.

    Setting any of these makes the program a mixed-integer one with an on/off
    choice per segment x channel cell (not per month).
    """

    min_cell_spend: float | None = Field(
        default=None, gt=0, description="least horizon spend of an active cell, > 0"
    )
    min_segment_spend: float | None = Field(
        default=None, gt=0, description="least horizon spend of an active segment, > 0"
    )
    max_active_segments: int | None = Field(
        default=None, ge=1, description="most segments with any spend, at least 1"
    )
    time_limit: float = Field(
        default=60.0, gt=0, description="seconds for the integer search, > 0"
    )
    gap: float = Field(
        default=0.001,
        ge=0,
        lt=1,
        description="the largest relative gap to the bound accepted, from 0 to 1",
    )

    @property
    def active(self) -> bool:
        """Whether any minimum or maximum is set."""
        return any(
            value is not None
            for value in (
                self.min_cell_spend,
                self.min_segment_spend,
                self.max_active_segments,
            )
        )


def _check_where(where: dict[str, str], *, extra: tuple[str, ...] = ()) -> None:
    allowed = (*extra, *WHERE_FIELDS)
    unknown = sorted(set(where) - set(allowed))
    if unknown:
        raise ValueError(
            f"where: got attribute {unknown[0]!r}; expected one of {', '.join(allowed)}"
        )
    if not where:
        raise ValueError("where: got no condition; expected at least one")


# --- rows of the scenario's CSV tables --------------------------------------

Rate = Annotated[float, Field(ge=0, le=1)]


class Origin(Frozen):
    """Where a row came from, for error messages: file and spreadsheet row."""

    file: str
    row: int

    def __str__(self) -> str:
        return f"{self.file}, row {self.row}"


class Row(Frozen):
    """A table row; ``origin`` is left out of comparisons and output."""

    origin: Origin | None = Field(default=None, exclude=True, repr=False)


TAG_FIELDS = (
    "market",
    "account_tier",
    "audience",
    "persona",
    "intent",
    "offer",
    "lifecycle",
)


class Segment(Row):
    """A group of buyers with its own treatment and its own value model."""

    segment_id: Identifier
    stage: Stage = Field(description="one of 'research', 'evaluation', 'decision'")
    market: str | None = Field(default=None, description="a market tag")
    account_tier: str | None = Field(default=None, description="an account-tier tag")
    audience: str | None = Field(default=None, description="an audience tag")
    persona: str | None = Field(default=None, description="a persona tag")
    intent: str | None = Field(default=None, description="an intent tag")
    offer: str | None = Field(default=None, description="an offer tag")
    lifecycle: str | None = Field(default=None, description="a lifecycle tag")
    opportunity_rate: float = Field(
        ge=0,
        le=1,
        description="a share from 0 to 1 of conversions that become opportunities",
    )
    deal_size: float = Field(ge=0, description="an amount of at least 0 per deal")
    win_rate: float = Field(
        ge=0, le=1, description="a share from 0 to 1 of opportunities that are won"
    )
    sales_cycle_days: float = Field(
        ge=0, le=3650, description="a number of days from 0 to 3650"
    )
    owner: str | None = Field(default=None, description="who owns the segment")

    @property
    def path(self) -> tuple[str | None, ...]:
        """The segment's place in the hierarchy, market to offer."""
        return tuple(getattr(self, level) for level in PATH_LEVELS)

    def attribute(self, name: str) -> str | None:
        """The segment id, a tag or the stage, by name."""
        value: Stage | str | None = getattr(self, name)
        return value.value if isinstance(value, Stage) else value

    def matches(self, where: dict[str, str]) -> bool:
        """Whether every condition holds (``segment_id`` may be one of them)."""
        return all(self.attribute(key) == value for key, value in where.items())

    @property
    def value_per_conversion(self) -> float:
        """Pipeline, in money, that one primary conversion is worth."""
        return self.opportunity_rate * self.deal_size


class Channel(Row):
    """A place to buy media, on one ad platform."""

    channel_id: Identifier
    platform: Platform = Field(
        description="one of 'google_ads', 'microsoft_ads', 'linkedin', 'other'"
    )
    name: str = Field(default="", description="a display name")


CURVE_PARAMETERS: dict[CurveKind, tuple[str, ...]] = {
    CurveKind.LINEAR: ("cpc", "conversion_rate", "monthly_clicks"),
    CurveKind.SATURATING: ("max_conversions", "scale"),
    CurveKind.POINTS: (),
}

#: Parameters a curve may carry without needing them: a cost per click lets a
#: saturating or points cell report clicks and join an overlap group.
OPTIONAL_PARAMETERS: dict[CurveKind, tuple[str, ...]] = {
    CurveKind.LINEAR: (),
    CurveKind.SATURATING: ("cpc",),
    CurveKind.POINTS: ("cpc",),
}


class Response(Row):
    """How one segment x channel cell converts spend, per month."""

    model_config = ConfigDict(validate_default=True)

    segment_id: Identifier
    channel_id: Identifier
    curve: CurveKind = Field(description="one of 'linear', 'saturating', 'points'")
    conversion_path: Identifier = Field(
        default="primary",
        description=(
            "the conversion the curve counts, such as demo_request or "
            "trial_start; paths are reported apart, never blended"
        ),
    )
    cpc: float | None = Field(default=None, gt=0, description="a cost per click > 0")
    conversion_rate: float | None = Field(
        default=None, ge=0, le=1, description="a conversion rate from 0 to 1"
    )
    monthly_clicks: float | None = Field(
        default=None, ge=0, description="reachable clicks per month, at least 0"
    )
    max_conversions: float | None = Field(
        default=None, ge=0, description="conversions per month at saturation, >= 0"
    )
    scale: float | None = Field(
        default=None, gt=0, description="a spend scale greater than 0"
    )

    @field_validator(
        "cpc", "conversion_rate", "monthly_clicks", "max_conversions", "scale"
    )
    @classmethod
    def _parameter_fits_curve(
        cls, value: float | None, info: ValidationInfo
    ) -> float | None:
        curve = info.data.get("curve")
        if curve is None:
            return value
        wanted = info.field_name in CURVE_PARAMETERS[curve]
        if wanted and value is None:
            raise ValueError(f"a {curve} curve needs {info.field_name}")
        optional = info.field_name in OPTIONAL_PARAMETERS[curve]
        if not wanted and not optional and value is not None:
            raise ValueError(
                f"a {curve} curve does not use {info.field_name}; leave it empty"
            )
        return value

    @property
    def cell_id(self) -> str:
        """The cell as ``segment_id/channel_id``."""
        return f"{self.segment_id}/{self.channel_id}"


class CurvePoint(Row):
    """One breakpoint of a cell's spend -> conversions curve (per month)."""

    segment_id: Identifier
    channel_id: Identifier
    spend: float = Field(gt=0, description="a monthly spend greater than 0")
    conversions: float = Field(ge=0, description="monthly conversions, at least 0")


class Seasonality(Row):
    """Multipliers on one month's volume and cost, for all or some cells."""

    month: Month
    channel_id: Identifier | None = None
    segment_id: Identifier | None = None
    volume: float = Field(default=1.0, ge=0, description="a volume multiplier >= 0")
    cost: float = Field(default=1.0, gt=0, description="a cost multiplier > 0")


class Adjustment(Frozen):
    """A what-if multiplier on cost and volume: all cells, or some of them.

    Empty ids mean all; without a month it applies to every month. It
    multiplies with the seasonality.
    """

    channel_id: Identifier | None = None
    segment_id: Identifier | None = None
    month: Month | None = None
    volume: float = Field(default=1.0, ge=0, description="a volume multiplier >= 0")
    cost: float = Field(default=1.0, gt=0, description="a cost multiplier > 0")

    @property
    def label(self) -> str:
        """What it applies to, in words."""
        parts = [
            f"{kind} {value}"
            for kind, value in (
                ("channel", self.channel_id),
                ("segment", self.segment_id),
                ("month", self.month),
            )
            if value is not None
        ]
        return ", ".join(parts) or "all cells"


# --- the whole scenario -------------------------------------------------------


class Scenario(Frozen):
    """Every input of one plan.

    Cross-table rules (known ids, no duplicates, concave points) are checked
    by :func:`optimizer.checks.check_scenario`, which names the offending row.
    """

    plan: PlanSettings
    budget: BudgetSettings
    objective: ObjectiveSettings
    curves: CurveSettings = CurveSettings()
    sales_cycle: SalesCycleSettings = SalesCycleSettings()
    solver: SolverSettings = SolverSettings()
    bids: BidSettings = BidSettings()
    constraints: tuple[ConstraintRule, ...] = ()
    segments: tuple[Segment, ...]
    channels: tuple[Channel, ...]
    responses: tuple[Response, ...]
    points: tuple[CurvePoint, ...] = ()
    seasonality: tuple[Seasonality, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()
    segmentation: SegmentationSettings = SegmentationSettings()
    overlap_groups: tuple[OverlapGroup, ...] = ()
    holdouts: tuple[Holdout, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    micro_segments: MicroSegmentSettings = MicroSegmentSettings()
    thresholds: tuple[ThresholdRule, ...] = ()
    quality: QualitySettings = QualitySettings()
    source: Path | None = Field(default=None, exclude=True, repr=False)
    input_hashes: tuple[tuple[str, str], ...] = Field(
        default=(), exclude=True, repr=False
    )

    def replace(self, **changes: object) -> Scenario:
        """A validated copy with some fields replaced (``budget=...``).

        Unlike ``model_copy(update=...)``, the copy is checked like any new
        scenario, so a what-if cannot build an invalid scenario.
        """
        return type(self).model_validate({**dict(self), **changes})

    @model_validator(mode="after")
    def _tables_agree(self) -> Self:
        # checks.py reads these models, so it is imported when first needed.
        from optimizer.checks import structure_problems  # noqa: PLC0415

        problems = structure_problems(self)
        if problems:
            raise PydanticCustomError("scenario", "\n".join(problems))
        return self
