"""The ``[bids]`` table: bid rules and settings, as frozen and validated values.

A scenario's ``[bids]`` table holds the stability settings (minimum step,
maximum change per cycle, rounding, the previous bids file), the LinkedIn bid
limits, optional campaign names and Microsoft profile criteria, and the
planner's ``[[bids.rules]]``. Each rule has an id, an owner and a rationale, a
condition on segment attributes and channels (``when``) and an action:

* ``adjust``: multiply the bid by ``1 + percent / 100``;
* ``set``: make the adjustment ``percent``;
* ``cap`` / ``floor``: allow at most / at least ``percent``;
* ``holdout``: leave the criterion unadjusted, to measure lift;
* ``exclude``: stop bidding on it (a suppression rule).

How rules compose into an adjustment is in :mod:`optimizer.bidding`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from optimizer.errors import ScenarioError
from optimizer.fields import Frozen, Identifier

if TYPE_CHECKING:
    from optimizer.scenario import Channel, Segment

# optimizer.scenario imports this module for its ``bids`` field, so the stage
# and platform names are checked against scenario.py's enums when validated.


class BidModel(Frozen):
    """Base of the bid models."""


class BidWarning(UserWarning):
    """A bid was changed to fit a platform or a rule did nothing; says how."""


class BidInputError(ScenarioError):
    """Bid rules, a plan's allocation or a previous bids file are invalid."""


# --- the rules' vocabulary ----------------------------------------------------


class RuleAction(StrEnum):
    """What a rule does to the criteria it matches."""

    ADJUST = "adjust"
    SET = "set"
    CAP = "cap"
    FLOOR = "floor"
    HOLDOUT = "holdout"
    EXCLUDE = "exclude"


class CriterionKind(StrEnum):
    """The kind of a campaign criterion; it decides the platform's range."""

    AUDIENCE = "audience"
    DEVICE = "device"
    COMPANY_NAME = "company_name"
    INDUSTRY = "industry"
    JOB_FUNCTION = "job_function"


class Device(StrEnum):
    """The device criteria Google Ads and Microsoft Advertising both offer."""

    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"


class ProfileKind(StrEnum):
    """LinkedIn profile criteria that Microsoft Advertising offers for B2B."""

    COMPANY_NAME = "company_name"
    INDUSTRY = "industry"
    JOB_FUNCTION = "job_function"


class RuleTarget(StrEnum):
    """Which criteria a rule reaches: the segments' or the devices'."""

    AUDIENCE = "audience"
    DEVICE = "device"


#: Actions that need a percent, and the percent's meaning for each.
PERCENT_ACTIONS = {
    RuleAction.ADJUST: "multiply the bid by 1 + percent / 100",
    RuleAction.SET: "set the adjustment to percent",
    RuleAction.CAP: "allow at most percent",
    RuleAction.FLOOR: "allow at least percent",
}
#: Percents a rule may name: above -100 (a bid of zero is an exclusion) and
#: at most +900, the largest adjustment any of the platforms accepts.
PERCENT_RANGE = (-100.0, 900.0)


def _as_tuple(value: object) -> object:
    return (value,) if isinstance(value, str) else value


Values = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]

CHANNEL_KEYS = ("channel_id", "platform")


class RuleCondition(BidModel):
    """Which criteria a rule applies to: every key given must match.

    A key takes one value or a list of values (any of them matches). Keys on
    the segment (its id, stage and tags) leave device criteria unmatched.
    """

    segment_id: Values | None = Field(default=None, description="segment ids")
    stage: Values | None = Field(
        default=None, description="stages: 'research', 'evaluation', 'decision'"
    )
    market: Values | None = Field(default=None, description="market tags")
    account_tier: Values | None = Field(default=None, description="account tiers")
    audience: Values | None = Field(default=None, description="audience tags")
    persona: Values | None = Field(default=None, description="persona tags")
    intent: Values | None = Field(default=None, description="intent tags")
    offer: Values | None = Field(default=None, description="offer tags")
    lifecycle: Values | None = Field(default=None, description="lifecycle tags")
    channel_id: Values | None = Field(default=None, description="channel ids")
    platform: Values | None = Field(
        default=None,
        description="platforms: 'google_ads', 'microsoft_ads', 'linkedin', 'other'",
    )

    @field_validator("stage", "platform")
    @classmethod
    def _known_names(
        cls, values: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        from optimizer.scenario import Platform, Stage  # noqa: PLC0415 (see top)

        names = [
            item.value for item in (Stage if info.field_name == "stage" else Platform)
        ]
        for value in values or ():
            if value not in names:
                raise ValueError(
                    f"in a [[bids.rules]] when table, field '{info.field_name}': got "
                    f"{value!r}; expected one of {', '.join(names)}"
                    f"{suggestion(value, names)}"
                )
        return values

    def matches_channel(self, channel: Channel) -> bool:
        """Whether the channel keys (if any) match this channel."""
        return _among(self.channel_id, channel.channel_id) and _among(
            self.platform, channel.platform
        )

    def matches_segment(self, segment: Segment) -> bool:
        """Whether the segment keys (if any) match this segment."""
        return all(
            _among(getattr(self, key), getattr(segment, key)) for key in SEGMENT_KEYS
        )

    @property
    def segment_keys(self) -> tuple[str, ...]:
        """The segment keys this condition sets."""
        return tuple(key for key in SEGMENT_KEYS if getattr(self, key) is not None)

    def describe(self) -> str:
        """The condition in words, e.g. ``intent = evaluation, tier = tier_1``."""
        parts = [
            f"{key} = {' or '.join(str(value) for value in values)}"
            for key in (*SEGMENT_KEYS, *CHANNEL_KEYS)
            if (values := getattr(self, key)) is not None
        ]
        return ", ".join(parts) or "every criterion"


#: The condition's keys that look at the segment rather than the channel.
SEGMENT_KEYS = tuple(
    key for key in RuleCondition.model_fields if key not in CHANNEL_KEYS
)


def _among(allowed: tuple[Any, ...] | None, value: object) -> bool:
    return allowed is None or (value is not None and value in allowed)


class BidRule(BidModel):
    """A planner's documented rule: when it applies, what it does and why."""

    id: Identifier = Field(description="a unique rule id")
    owner: str = Field(min_length=1, description="who owns the rule")
    rationale: str = Field(min_length=1, description="why the rule exists")
    applies_to: RuleTarget = Field(
        default=RuleTarget.AUDIENCE,
        description="'audience' (the segments' criteria) or 'device'",
    )
    devices: Annotated[tuple[Device, ...], BeforeValidator(_as_tuple)] = Field(
        default=(),
        description="for device rules: 'desktop', 'mobile', 'tablet' (empty: all)",
    )
    when: RuleCondition = Field(
        default=RuleCondition(), description="the condition; empty matches all"
    )
    action: RuleAction = Field(
        description="one of 'adjust', 'set', 'cap', 'floor', 'holdout', 'exclude'"
    )
    percent: float | None = Field(
        default=None,
        validate_default=True,
        description="a percent above -100 and at most 900 (adjust, set, cap, floor)",
    )

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _refuse_unknown(data, cls, what=f"[[bids.rules]] {_rule_name(data)}")
            when = data.get("when")
            if isinstance(when, dict):
                _refuse_unknown(
                    when, RuleCondition, what=f"[[bids.rules]] {_rule_name(data)}.when"
                )
        return data

    @field_validator("action", mode="before")
    @classmethod
    def _known_action(cls, value: object, info: ValidationInfo) -> object:
        names = [action.value for action in RuleAction]
        if value not in names:
            raise ValueError(
                f"in [[bids.rules]] {_rule_name(info.data)}, field 'action': expected "
                f"one of {', '.join(names)}{suggestion(str(value), names)}"
            )
        return value

    @field_validator("percent")
    @classmethod
    def _percent_fits_action(
        cls, value: float | None, info: ValidationInfo
    ) -> float | None:
        action = info.data.get("action")
        where = f"in [[bids.rules]] {_rule_name(info.data)}, field 'percent'"
        if action is None:
            return value
        if action in PERCENT_ACTIONS and value is None:
            raise ValueError(
                f"{where}: action '{action}' needs a percent "
                f"({PERCENT_ACTIONS[action]})"
            )
        if action not in PERCENT_ACTIONS and value is not None:
            raise ValueError(f"{where}: action '{action}' takes no percent; remove it")
        low, high = PERCENT_RANGE
        if value is not None and not low < value <= high:
            raise ValueError(
                f"{where}: expected a percent above {low:g} and at most {high:g}; "
                "use action 'exclude' to stop bidding"
            )
        return value

    @model_validator(mode="after")
    def _condition_fits_target(self) -> Self:
        if self.applies_to is RuleTarget.DEVICE and self.when.segment_keys:
            raise ValueError(
                f"in [[bids.rules]] '{self.id}': a device rule applies to whole "
                f"campaigns, so its condition takes only channel_id and platform; "
                f"remove {', '.join(self.when.segment_keys)}"
            )
        if self.applies_to is RuleTarget.AUDIENCE and self.devices:
            raise ValueError(
                f"in [[bids.rules]] '{self.id}': devices are only for rules with "
                "applies_to = 'device'; remove devices or set applies_to"
            )
        return self

    @property
    def factor(self) -> float:
        """The multiplier the rule's percent stands for."""
        return 1.0 + (self.percent or 0.0) / 100.0

    def describe(self) -> str:
        """The rule in words, e.g. ``evaluation_tier_1_up (+25%)``."""
        if self.percent is None:
            return f"{self.id} ({self.action.value})"
        sign = "+" if self.percent > 0 else ""
        return f"{self.id} ({self.action.value} {sign}{self.percent:g}%)"


def _rule_name(data: Mapping[str, Any]) -> str:
    identifier = data.get("id")
    return f"'{identifier}'" if identifier else "(without an id)"


def _refuse_unknown(
    data: Mapping[str, Any], model: type[BidModel], *, what: str
) -> None:
    known = list(model.model_fields)
    for key in data:
        if key not in known:
            raise ValueError(
                f"in {what}: unknown field '{key}'; expected one of "
                f"{', '.join(known)}{suggestion(str(key), known)}"
            )


def suggestion(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class CampaignName(BidModel):
    """How a channel's campaign is named on its platform."""

    channel_id: Identifier = Field(description="a channel_id of the channels table")
    name: str = Field(min_length=1, description="the campaign's name on the platform")
    platform_id: str | None = Field(
        default=None,
        pattern=r"^\d+$",
        description="the platform's numeric campaign id (Microsoft's Parent Id)",
    )


class ProfileTarget(BidModel):
    """A segment reached on Microsoft Advertising through a LinkedIn profile."""

    segment_id: Identifier = Field(description="a segment_id of the segments table")
    kind: ProfileKind = Field(
        description="one of 'company_name', 'industry', 'job_function'"
    )
    profile_id: str = Field(
        pattern=r"^\d+$", description="Microsoft Advertising's numeric profile id"
    )


class BidSettings(BidModel):
    """The ``[bids]`` table: stability limits, platform limits and the rules."""

    round_to_whole_percent: bool = Field(
        default=True, description="true to round adjustments to whole percents"
    )
    min_step_percent: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="changes smaller than this many points are not made, 0 to 100",
    )
    max_change_percent: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="the largest change per cycle in points, above 0",
    )
    previous: str | None = Field(
        default=None,
        description="a path, relative to the scenario file, to the previous bids",
    )
    linkedin_min_bid: float | None = Field(
        default=None, gt=0, description="LinkedIn's minimum bid, above 0"
    )
    linkedin_max_bid: float | None = Field(
        default=None, gt=0, description="LinkedIn's maximum bid, above 0"
    )
    linkedin_base_bid: float | None = Field(
        default=None,
        gt=0,
        description="a LinkedIn bid for campaigns whose curves give no clicks",
    )
    campaigns: tuple[CampaignName, ...] = Field(
        default=(), description="[[bids.campaigns]] entries: channel_id and name"
    )
    profiles: tuple[ProfileTarget, ...] = Field(
        default=(),
        description="[[bids.profiles]] entries: segment_id, kind and profile_id",
    )
    rules: tuple[BidRule, ...] = Field(
        default=(),
        description=(
            "[[bids.rules]] entries, each with id, owner, rationale, action, the "
            "percent where the action needs one and an optional when table"
        ),
    )

    @field_validator("min_step_percent", "max_change_percent")
    @classmethod
    def _whole_when_rounding(
        cls, value: float | None, info: ValidationInfo
    ) -> float | None:
        whole = info.data.get("round_to_whole_percent", True)
        if whole and value is not None and value != int(value):
            raise ValueError(
                f"{info.field_name} is not a whole number, but adjustments are "
                "rounded to whole percents; use a whole number of points"
            )
        return value

    @field_validator("linkedin_max_bid")
    @classmethod
    def _limits_in_order(
        cls, value: float | None, info: ValidationInfo
    ) -> float | None:
        low = info.data.get("linkedin_min_bid")
        if value is not None and low is not None and value < low:
            raise ValueError(
                f"linkedin_max_bid is below linkedin_min_bid {low:g}; expected a "
                "maximum at least the minimum"
            )
        return value

    @field_validator("rules", "campaigns", "profiles")
    @classmethod
    def _each_once(
        cls, items: tuple[Any, ...], info: ValidationInfo
    ) -> tuple[Any, ...]:
        attribute = {"rules": "id", "campaigns": "channel_id", "profiles": "segment_id"}
        names = [getattr(item, attribute[str(info.field_name)]) for item in items]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"[[bids.{info.field_name}]] names {', '.join(repeated)} more than "
                "once; expected each once"
            )
        return items

    def campaign_name(self, channel_id: str) -> str:
        """The platform name of a channel's campaign (the channel id by default)."""
        for campaign in self.campaigns:
            if campaign.channel_id == channel_id:
                return campaign.name
        return channel_id

    def platform_id(self, channel_id: str) -> str | None:
        """The platform's campaign id of a channel, when the scenario gives it."""
        for campaign in self.campaigns:
            if campaign.channel_id == channel_id:
                return campaign.platform_id
        return None
