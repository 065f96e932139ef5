"""From a plan and the ``[bids]`` rules to recommended bid adjustments.

A campaign is one channel; each segment the channel serves is a criterion of
it (an audience, or on Microsoft Advertising a LinkedIn profile when
``[[bids.profiles]]`` maps the segment to one), and device rules add the three
device criteria. Every criterion's multiplier is built in this order, and
each step is recorded with its source:

1. **value-based default** ``v_s / v_base``: ``v_s`` is the segment's value
   per click in the plan (the cell's objective value over its clicks, which
   is conversion rate x value per conversion) and ``v_base`` the campaign's
   spend-weighted average of ``v_s`` over the segments it funds. When a
   campaign's curves give no clicks (saturating or points curves), value per
   unit of spend stands in for value per click in that whole campaign.
   Devices start at 1: the plan has no device dimension.
2. **adjust** rules multiply, in file order: ``x (1 + percent / 100)``.
3. **set** rules replace the multiplier by ``1 + percent / 100``; the last
   matching one in the file wins.
4. **cap** rules lower it to at most, then **floor** rules raise it to at
   least, ``1 + percent / 100`` (a floor wins over a cap it contradicts).
5. **holdout** rules reset it to 1, unadjusted, to measure lift.
6. **exclude** rules, and no spend in the plan, exclude the criterion; this
   wins over everything above. Where the platform cannot exclude that kind
   of criterion it gets the platform's floor instead.

The percent ``100 (m - 1)`` is then rounded (to whole percents by default,
half away from zero), clamped to the platform's range for that kind of
criterion (a :class:`~optimizer.bids.BidWarning` names the rules and the
amount), and held to the stability limits against the previous bids: a
change smaller than ``min_step_percent`` points is not made, one larger than
``max_change_percent`` points is cut to it. Exclusions and re-inclusions are
switches and apply at once.

Why this follows the linear program: at its optimum every funded cell's
marginal return equals the budget's shadow price ``mu`` unless a rule or the
cell's volume binds. For a cell bought by the click at ``cpc_s`` that reads
``v_s / cpc_s = mu``: the plan pays up to ``v_s / mu`` for a click. A bidder
maximizing value at one target return ``mu`` bids exactly ``v_s / mu``, so
against the campaign's base bid ``v_base / mu`` the multiplier is
``v_s / v_base``. Normalizing by the spend-weighted average keeps the
campaign's average bid where it is and moves spend between segments.

LinkedIn Campaign Manager has no per-segment modifiers: a LinkedIn campaign
gets one bid, the cost per click of its cells (spend over clicks) times the
spend-weighted mean of its segments' multipliers, kept within
``linkedin_min_bid`` and ``linkedin_max_bid``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from optimizer.bids import (
    BidInputError,
    BidRule,
    BidWarning,
    CriterionKind,
    Device,
    ProfileKind,
    RuleAction,
    RuleTarget,
    suggestion,
)
from optimizer.scenario import Channel, Platform, Scenario, Segment

logger = logging.getLogger(__name__)


# --- platform ranges ------------------------------------------------------------


@dataclass(frozen=True)
class CriterionRange:
    """The adjustments, in percent, a platform accepts for one kind of criterion.

    ``opt_out`` means -100 is accepted as a value (devices), besides the range;
    ``can_exclude`` means the criterion can be excluded at campaign level.
    """

    platform: str
    kind: str
    low: float
    high: float
    opt_out: bool
    can_exclude: bool

    def clamp(self, percent: float) -> float:
        """The nearest accepted adjustment."""
        if self.opt_out and percent == -100:
            return percent
        return min(max(percent, self.low), self.high)

    def describe(self) -> str:
        """The range in words, e.g. ``-90% to +900%``."""
        low = "-100% (opt out) or " if self.opt_out else ""
        return f"{low}{self.low:+g}% to {self.high:+g}%"


# Google Ads: audiences (and locations, schedules, demographics) -90..+900,
# devices -100 (opt out) or -90..+900 (Google Ads Editor help 1052569, 30532);
# audiences are excluded by a negative campaign criterion (Google Ads API
# CampaignCriterion.negative). Microsoft Advertising bulk: customer lists
# -90..+900 with Campaign Negative Customer List Association for exclusions;
# DeviceOS -100..+900; company, industry and job function -90..+900 with no
# campaign-level exclusion. Other platforms: the common -90..+900.
RANGES: dict[tuple[Platform, CriterionKind], CriterionRange] = {
    (Platform.GOOGLE_ADS, CriterionKind.AUDIENCE): CriterionRange(
        "Google Ads", "audiences", -90, 900, opt_out=False, can_exclude=True
    ),
    (Platform.GOOGLE_ADS, CriterionKind.DEVICE): CriterionRange(
        "Google Ads", "devices", -90, 900, opt_out=True, can_exclude=True
    ),
    (Platform.MICROSOFT_ADS, CriterionKind.AUDIENCE): CriterionRange(
        "Microsoft Advertising", "customer lists", -90, 900, False, True
    ),
    (Platform.MICROSOFT_ADS, CriterionKind.DEVICE): CriterionRange(
        "Microsoft Advertising", "devices", -100, 900, False, True
    ),
    (Platform.OTHER, CriterionKind.AUDIENCE): CriterionRange(
        "other platforms", "audiences", -90, 900, opt_out=False, can_exclude=True
    ),
}
for _kind in ProfileKind:
    RANGES[(Platform.MICROSOFT_ADS, CriterionKind(_kind.value))] = CriterionRange(
        "Microsoft Advertising",
        f"{_kind.value.replace('_', ' ')} criteria",
        -90,
        900,
        opt_out=False,
        can_exclude=False,
    )

#: Platforms whose campaigns take device criteria.
DEVICE_PLATFORMS = (Platform.GOOGLE_ADS, Platform.MICROSOFT_ADS)


# --- results ---------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of a criterion's multiplier: its source and the value after it."""

    source: str
    multiplier: float
    note: str


@dataclass(frozen=True)
class PreviousBid:
    """A criterion's adjustment in the previous bids; ``None`` when excluded."""

    percent: float | None

    @property
    def excluded(self) -> bool:
        """Whether the criterion was excluded."""
        return self.percent is None

    def describe(self) -> str:
        """The previous value as bids.csv writes it."""
        return "excluded" if self.percent is None else format_percent(self.percent)


PreviousKey = tuple[str, str, str]
"""A criterion in a previous bids file: campaign name, criterion kind, value."""


@dataclass(frozen=True)
class Adjustment:
    """The recommended adjustment of one criterion of one campaign."""

    channel_id: str
    campaign: str
    platform_id: str | None
    platform: Platform
    kind: CriterionKind
    value: str
    segment_id: str | None
    percent: float
    excluded: bool
    previous: PreviousBid | None
    steps: tuple[Step, ...]
    rules: tuple[str, ...]
    reason: str

    @property
    def multiplier(self) -> float:
        """The bid multiplier: 0 when excluded, else 1 + percent / 100."""
        return 0.0 if self.excluded else 1.0 + self.percent / 100.0

    @property
    def key(self) -> PreviousKey:
        """How the criterion is found in a previous bids file."""
        return (self.campaign, self.kind.value, self.value)

    def contributions(self) -> str:
        """Each step as the factor it applied, in order; they multiply to the bid."""
        parts, before = [], 1.0
        for step in self.steps:
            if before > 0:
                parts.append(f"{step.source} x{step.multiplier / before:.4f}")
            else:
                parts.append(f"{step.source} =x{step.multiplier:.4f}")
            before = step.multiplier
        return "; ".join(parts)


@dataclass(frozen=True)
class CampaignBid:
    """A LinkedIn campaign's bid: one amount, within the given limits."""

    channel_id: str
    campaign: str
    base_bid: float | None
    multiplier: float
    bid: float | None
    min_bid: float | None
    max_bid: float | None
    currency: str
    rules: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class BidPlan:
    """Every recommended adjustment and campaign bid, in a fixed order."""

    adjustments: tuple[Adjustment, ...]
    campaign_bids: tuple[CampaignBid, ...]
    currency: str

    def on(self, platform: Platform) -> tuple[Adjustment, ...]:
        """The adjustments of campaigns on one platform."""
        return tuple(a for a in self.adjustments if a.platform is platform)

    def find(self, channel_id: str, kind: str, value: str) -> Adjustment:
        """One adjustment by channel, criterion kind and value."""
        for adjustment in self.adjustments:
            if (adjustment.channel_id, adjustment.kind.value, adjustment.value) == (
                channel_id,
                kind,
                value,
            ):
                return adjustment
        raise KeyError(f"no adjustment for {channel_id} {kind} {value}")


# --- reading a plan's allocation back -------------------------------------------

ALLOCATION_COLUMNS = ("segment_id", "channel_id", "month", "spend", "clicks")


def read_allocation(path: str | Path, scenario: Scenario) -> pd.DataFrame:
    """Read a written plan's ``allocation.csv`` for recomputing its bids.

    Parameters
    ----------
    path
        The ``allocation.csv`` that ``optimizer run`` wrote.
    scenario
        The scenario the plan was solved for; its segments and channels must
        name every row's segment and channel.

    Returns
    -------
    pandas.DataFrame
        ``segment_id``, ``channel_id``, ``month``, ``spend``, ``clicks`` and the
        scenario's objective column, as numbers where they are numbers.

    Raises
    ------
    BidInputError
        When the file is missing, a column is missing, or a value is not a
        number or names an unknown segment or channel.
    """
    path = Path(path)
    objective = scenario.objective.maximize.value
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BidInputError(
            f"{path}: no such file; expected the allocation.csv of a plan written "
            "by 'optimizer run'."
        ) from None
    table = list(csv.reader(io.StringIO(text, newline="")))
    header = [cell.strip() for cell in table[0]] if table else []
    columns = (*ALLOCATION_COLUMNS, objective)
    missing = [column for column in columns if column not in header]
    if missing:
        raise BidInputError(
            f"{path}, row 1: got no column {', '.join(repr(c) for c in missing)}; "
            f"expected the columns {', '.join(columns)} of the allocation.csv of a "
            f"plan that maximizes {objective}."
        )
    rows = [dict(zip(header, values, strict=False)) for values in table[1:] if values]

    segments = {segment.segment_id for segment in scenario.segments}
    channels = {channel.channel_id for channel in scenario.channels}
    source = scenario.source or "the scenario"
    problems: list[str] = []
    records = []
    for number, row in enumerate(rows, start=2):
        record: dict[str, object] = {key: row[key] for key in columns[:3]}
        if row["segment_id"] not in segments:
            problems.append(
                f"{path}, row {number}, field 'segment_id': got {row['segment_id']!r}; "
                f"expected a segment_id of the segments table of {source}."
            )
        if row["channel_id"] not in channels:
            problems.append(
                f"{path}, row {number}, field 'channel_id': got {row['channel_id']!r}; "
                f"expected a channel_id of the channels table of {source}."
            )
        for column in ("spend", "clicks", objective):
            record[column] = _number(row[column], path, number, column, problems)
        records.append(record)
    if problems:
        raise BidInputError(problems[:25])
    return pd.DataFrame.from_records(records, columns=list(columns))


def _number(text: str, path: Path, row: int, column: str, problems: list[str]) -> float:
    if text.strip() == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (column == "spend" and value < 0):
        problems.append(
            f"{path}, row {row}, field '{column}': got {text!r}; expected a finite "
            "number of at least 0 (empty where the plan has none)."
        )
    return value


# --- the recommendation ---------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    """One segment x channel cell of the plan, summed over the horizon."""

    segment: Segment
    spend: float
    clicks: float | None
    value: float


def recommend_bids(
    scenario: Scenario,
    allocation: pd.DataFrame,
    *,
    previous: Mapping[PreviousKey, PreviousBid] | None = None,
) -> BidPlan:
    """Bid adjustments for every campaign of a plan, by the scenario's rules.

    Parameters
    ----------
    scenario
        The scenario, with its ``[bids]`` settings and rules.
    allocation
        One row per segment x channel x month with ``spend``, ``clicks`` (empty
        for curves without clicks) and the objective's column, as
        :func:`read_allocation` returns it or ``plan.allocation`` holds it.
    previous
        The previous cycle's adjustments, for the stability limits.

    Returns
    -------
    BidPlan
        One adjustment per criterion of every Google Ads, Microsoft Advertising
        and other campaign, and one bid per LinkedIn campaign.

    Raises
    ------
    BidInputError
        When a rule, campaign name or profile names an unknown segment or
        channel, or a LinkedIn campaign needs ``linkedin_base_bid``.
    """
    check_references(scenario)
    settings = scenario.bids
    cells = _cells(scenario, allocation)
    previous = previous or {}
    fired: set[str] = set()

    adjustments: list[Adjustment] = []
    campaign_bids: list[CampaignBid] = []
    for channel in sorted(scenario.channels, key=lambda c: c.channel_id):
        served = cells.get(channel.channel_id, [])
        if channel.platform is Platform.LINKEDIN:
            campaign_bids.append(_linkedin_bid(scenario, channel, served, fired=fired))
            continue
        context = _Campaign(scenario, channel, previous, fired)
        adjustments += context.segment_adjustments(served)
        adjustments += context.device_adjustments()

    for rule in settings.rules:
        if rule.id not in fired:
            warnings.warn(
                f"[[bids.rules]] '{rule.id}' ({rule.when.describe()}) matches no "
                "criterion of any campaign, so it changes nothing; check its "
                "condition against the segments and channels, or remove the rule.",
                BidWarning,
                stacklevel=2,
            )
    logger.info(
        "recommended %d bid adjustments and %d campaign bids",
        len(adjustments),
        len(campaign_bids),
    )
    return BidPlan(tuple(adjustments), tuple(campaign_bids), scenario.plan.currency)


def _cells(scenario: Scenario, allocation: pd.DataFrame) -> dict[str, list[_Cell]]:
    """The plan's cells by channel, in segment order, summed over months."""
    objective = scenario.objective.maximize.value
    segments = {segment.segment_id: segment for segment in scenario.segments}
    grouped = allocation.groupby(["channel_id", "segment_id"], sort=True)
    sums = grouped[["spend", objective]].sum()
    clicks = grouped["clicks"].sum(min_count=1)
    clicks_missing = grouped["clicks"].apply(lambda values: values.isna().any())

    result: dict[str, list[_Cell]] = {}
    for (channel_id, segment_id), row in sums.iterrows():
        has_clicks = not clicks_missing[(channel_id, segment_id)]
        result.setdefault(str(channel_id), []).append(
            _Cell(
                segment=segments[str(segment_id)],
                spend=float(row["spend"]),
                clicks=float(clicks[(channel_id, segment_id)]) if has_clicks else None,
                value=float(row[objective]),
            )
        )
    return result


class _Campaign:
    """The adjustments of one campaign (a channel on a platform with modifiers)."""

    def __init__(
        self,
        scenario: Scenario,
        channel: Channel,
        previous: Mapping[PreviousKey, PreviousBid],
        fired: set[str],
    ) -> None:
        self.settings = scenario.bids
        self.channel = channel
        self.name = self.settings.campaign_name(channel.channel_id)
        self.previous = previous
        self.fired = fired
        self.currency = scenario.plan.currency

    def segment_adjustments(self, cells: Sequence[_Cell]) -> list[Adjustment]:
        """One adjustment per segment the channel serves."""
        defaults = _value_defaults(cells, self.currency)
        profiles = {p.segment_id: p for p in self.settings.profiles}
        adjustments = []
        for cell in cells:
            segment = cell.segment
            kind, value = CriterionKind.AUDIENCE, segment.segment_id
            profile = profiles.get(segment.segment_id)
            if profile is not None and self.channel.platform is Platform.MICROSOFT_ADS:
                kind, value = CriterionKind(profile.kind.value), profile.profile_id
            rules = [
                rule
                for rule in self.settings.rules
                if rule.applies_to is RuleTarget.AUDIENCE
                and rule.when.matches_channel(self.channel)
                and rule.when.matches_segment(segment)
            ]
            adjustments.append(
                self._adjust(
                    kind,
                    value,
                    segment.segment_id,
                    defaults[cell.segment.segment_id],
                    rules,
                )
            )
        return adjustments

    def device_adjustments(self) -> list[Adjustment]:
        """The three device criteria, when any device rule reaches the campaign."""
        if self.channel.platform not in DEVICE_PLATFORMS:
            return []
        device_rules = [
            rule
            for rule in self.settings.rules
            if rule.applies_to is RuleTarget.DEVICE
            and rule.when.matches_channel(self.channel)
        ]
        if not device_rules:
            return []
        default = Step(
            "default", 1.0, "the plan has no device dimension, so devices start at 0%"
        )
        return [
            self._adjust(
                CriterionKind.DEVICE,
                device.value,
                None,
                (default, False),
                [r for r in device_rules if not r.devices or device in r.devices],
            )
            for device in Device
        ]

    def _adjust(
        self,
        kind: CriterionKind,
        value: str,
        segment_id: str | None,
        default: tuple[Step, bool],
        rules: Sequence[BidRule],
    ) -> Adjustment:
        first, unfunded = default
        steps = [first]
        if unfunded:
            fired = [r for r in rules if r.action is RuleAction.EXCLUDE]
            excluded = True
        else:
            steps += _rule_steps(steps[0].multiplier, rules)
            fired = [
                rule
                for rule in rules
                if rule.id in {step.source for step in steps}
                or rule.action is RuleAction.EXCLUDE
            ]
            excluded = any(r.action is RuleAction.EXCLUDE for r in rules)
            if excluded:
                names = ", ".join(r.id for r in rules if r.action is RuleAction.EXCLUDE)
                steps.append(Step(names, 0.0, f"excluded by {names}"))
        self.fired.update(rule.id for rule in rules)

        limits = RANGES[(self.channel.platform, kind)]
        key = (self.name, kind.value, value)
        percent, excluded = self._finish(steps, limits, excluded, key, fired)
        return Adjustment(
            channel_id=self.channel.channel_id,
            campaign=self.name,
            platform_id=self.settings.platform_id(self.channel.channel_id),
            platform=self.channel.platform,
            kind=kind,
            value=value,
            segment_id=segment_id,
            percent=percent,
            excluded=excluded,
            previous=self.previous.get(key),
            steps=tuple(steps),
            rules=tuple(rule.id for rule in fired),
            reason="; ".join(step.note for step in steps),
        )

    def _finish(
        self,
        steps: list[Step],
        limits: CriterionRange,
        excluded: bool,
        key: PreviousKey,
        fired: Sequence[BidRule],
    ) -> tuple[float, bool]:
        """Round, clamp to the platform and apply the stability limits."""
        if excluded and limits.can_exclude:
            return -100.0, True
        if excluded:
            steps.append(
                Step(
                    "platform_floor",
                    1.0 + limits.low / 100.0,
                    f"{limits.platform} cannot exclude {limits.kind} at campaign "
                    f"level, so it gets the floor of {limits.low:+g}%",
                )
            )
            return limits.low, False

        percent = round_percent(
            100.0 * (steps[-1].multiplier - 1.0), self.settings.round_to_whole_percent
        )
        _record(steps, percent, "rounding", f"rounded to {signed_percent(percent)}")
        percent = self._clamp(percent, limits, key, fired, steps)

        before = self.previous.get(key)
        if before is None or before.percent is None:
            return percent, False
        change = percent - before.percent
        settings = self.settings
        if 0 < abs(change) < settings.min_step_percent:
            percent = before.percent
            _record(
                steps,
                percent,
                "min_step",
                f"kept at the previous {signed_percent(percent)}: a change of "
                f"{change:+g} points is below the minimum step of "
                f"{settings.min_step_percent:g}",
            )
        limit = settings.max_change_percent
        if limit is not None and abs(change) > limit:
            percent = before.percent + math.copysign(limit, change)
            _record(
                steps,
                percent,
                "max_change",
                f"moved {math.copysign(limit, change):+g} points from the previous "
                f"{signed_percent(before.percent)} instead of {change:+g}: the "
                "maximum change per cycle",
            )
        return self._clamp(percent, limits, key, fired, steps), False

    def _clamp(
        self,
        percent: float,
        limits: CriterionRange,
        key: PreviousKey,
        fired: Sequence[BidRule],
        steps: list[Step],
    ) -> float:
        clamped = limits.clamp(percent)
        if clamped == percent:
            return percent
        sources = ", ".join(["default", *(rule.id for rule in fired)])
        direction = "above" if percent > clamped else "below"
        warnings.warn(
            f"campaign '{key[0]}', {key[1]} {key[2]}: {sources} give "
            f"{signed_percent(percent)}, {direction} the {limits.platform} range "
            f"for {limits.kind} ({limits.describe()}); clamped by "
            f"{clamped - percent:+g} points to {signed_percent(clamped)}. Change "
            "those rules' percents or add a cap or floor rule so bids stay within "
            "the platform's range.",
            BidWarning,
            stacklevel=6,
        )
        _record(
            steps,
            clamped,
            "platform_range",
            f"clamped to {signed_percent(clamped)}, the {limits.platform} limit "
            f"for {limits.kind}",
        )
        return clamped


def _value_defaults(
    cells: Sequence[_Cell], currency: str
) -> dict[str, tuple[Step, bool]]:
    """The value-based default of every segment of one campaign.

    Returns the first step of each segment and whether the plan leaves it
    unfunded (to be excluded).
    """
    funded = [cell for cell in cells if cell.spend > 0]
    per_click = bool(funded) and all(
        cell.clicks is not None and cell.clicks > 0 for cell in funded
    )
    unit = "click" if per_click else f"{currency} of spend"

    def worth(cell: _Cell) -> float:
        base = cell.clicks if per_click else cell.spend
        return cell.value / base if base else 0.0

    spend = sum(cell.spend for cell in funded)
    baseline = sum(cell.spend * worth(cell) for cell in funded) / spend if spend else 0
    result = {}
    for cell in cells:
        if cell.spend <= 0:
            result[cell.segment.segment_id] = (
                Step("default", 0.0, "the plan gives it no spend: excluded"),
                True,
            )
            continue
        value = worth(cell)
        multiplier = value / baseline if baseline > 0 else 1.0
        result[cell.segment.segment_id] = (
            Step(
                "default",
                multiplier,
                f"value per {unit} {value:,.2f} against the campaign's "
                f"spend-weighted {baseline:,.2f} (x{multiplier:.4f})",
            ),
            False,
        )
    return result


def _rule_steps(start: float, rules: Sequence[BidRule]) -> list[Step]:
    """The steps the rules take, in the documented order, from ``start``."""
    steps: list[Step] = []
    multiplier = start

    def take(rule: BidRule, after: float, words: str) -> None:
        nonlocal multiplier
        multiplier = after
        steps.append(
            Step(rule.id, after, f"{rule.describe()} by {rule.owner}: {words}")
        )

    for rule in _of(rules, RuleAction.ADJUST):
        take(rule, multiplier * rule.factor, rule.rationale)
    sets = _of(rules, RuleAction.SET)
    if sets:
        take(sets[-1], sets[-1].factor, sets[-1].rationale)
    for rule in _of(rules, RuleAction.CAP):
        if multiplier > rule.factor:
            take(rule, rule.factor, rule.rationale)
    for rule in _of(rules, RuleAction.FLOOR):
        if multiplier < rule.factor:
            take(rule, rule.factor, rule.rationale)
    holdouts = _of(rules, RuleAction.HOLDOUT)
    if holdouts:
        take(holdouts[0], 1.0, f"{holdouts[0].rationale} (left unadjusted)")
    return steps


def _of(rules: Sequence[BidRule], action: RuleAction) -> list[BidRule]:
    return [rule for rule in rules if rule.action is action]


def _record(steps: list[Step], percent: float, source: str, note: str) -> None:
    multiplier = 1.0 + percent / 100.0
    if not math.isclose(multiplier, steps[-1].multiplier, rel_tol=0, abs_tol=1e-12):
        steps.append(Step(source, multiplier, note))


def _linkedin_bid(
    scenario: Scenario,
    channel: Channel,
    cells: Sequence[_Cell],
    *,
    fired: set[str],
) -> CampaignBid:
    """One bid for a LinkedIn campaign: base cost per click x its segments' mean.

    Without clicks in the plan and without ``linkedin_base_bid`` the bid is
    left empty and the reason says so; the multiplier still applies.
    """
    settings = scenario.bids
    currency = scenario.plan.currency
    campaign = settings.campaign_name(channel.channel_id)
    base, base_words = _linkedin_base(cells, settings.linkedin_base_bid, currency)
    multiplier, rule_ids = _linkedin_multiplier(scenario, channel, cells, fired)
    bid = None
    if base is None:
        reason = f"{base_words}; its segments' spend-weighted multiplier is "
        reason += f"x{multiplier:.4f}"
    else:
        reason = f"{base_words} x{multiplier:.4f}, the spend-weighted mean of "
        reason += "its segments' multipliers"
        bid = _within_limits(base * multiplier, campaign, scenario)
        if bid != round_money(base * multiplier):
            reason += f"; clamped to {bid:,.2f}, the bid limit"
    return CampaignBid(
        channel_id=channel.channel_id,
        campaign=campaign,
        base_bid=None if base is None else round_money(base),
        multiplier=multiplier,
        bid=bid,
        min_bid=settings.linkedin_min_bid,
        max_bid=settings.linkedin_max_bid,
        currency=currency,
        rules=rule_ids,
        reason=reason,
    )


def _within_limits(amount: float, campaign: str, scenario: Scenario) -> float:
    """A LinkedIn bid in cents, moved into the limits with a warning."""
    settings, currency = scenario.bids, scenario.plan.currency
    raw = round_money(amount)
    low = settings.linkedin_min_bid or 0.01
    high = settings.linkedin_max_bid or math.inf
    bid = min(max(raw, low), high)
    if bid != raw:
        warnings.warn(
            f"LinkedIn campaign '{campaign}': the bid {raw:,.2f} {currency} is "
            f"outside the bid limits ({low:,.2f} to {high:,.2f}); clamped by "
            f"{bid - raw:+,.2f} to {bid:,.2f}. Check linkedin_min_bid and "
            "linkedin_max_bid against LinkedIn's bid limits for this audience.",
            BidWarning,
            stacklevel=4,
        )
    return bid


def _linkedin_base(
    cells: Sequence[_Cell], fallback: float | None, currency: str
) -> tuple[float | None, str]:
    """The campaign's cost per click in the plan, else ``linkedin_base_bid``."""
    funded = [cell for cell in cells if cell.spend > 0]
    clicks = [cell.clicks or 0.0 for cell in funded]
    if funded and all(count > 0 for count in clicks):
        base = sum(cell.spend for cell in funded) / sum(clicks)
        return base, f"cost per click {base:,.2f} {currency} (spend over clicks)"
    if fallback is not None:
        return fallback, f"linkedin_base_bid {fallback:,.2f} {currency}"
    return None, (
        "no bid: the plan has no clicks for this campaign (its curves give none) "
        "and [bids] sets no linkedin_base_bid; set it to get a bid"
    )


def _linkedin_multiplier(
    scenario: Scenario,
    channel: Channel,
    cells: Sequence[_Cell],
    fired: set[str],
) -> tuple[float, tuple[str, ...]]:
    """Spend-weighted mean of the funded, not excluded segments' multipliers."""
    settings = scenario.bids
    defaults = _value_defaults(cells, scenario.plan.currency)
    weighted, spend = 0.0, 0.0
    used: set[str] = set()
    for cell in cells:
        if cell.spend <= 0:
            continue
        rules = [
            rule
            for rule in settings.rules
            if rule.applies_to is RuleTarget.AUDIENCE
            and rule.when.matches_channel(channel)
            and rule.when.matches_segment(cell.segment)
        ]
        fired.update(rule.id for rule in rules)
        if any(rule.action is RuleAction.EXCLUDE for rule in rules):
            continue
        start = defaults[cell.segment.segment_id][0].multiplier
        steps = _rule_steps(start, rules)
        used.update(step.source for step in steps)
        weighted += cell.spend * (steps[-1].multiplier if steps else start)
        spend += cell.spend
    multiplier = weighted / spend if spend > 0 else 1.0
    return multiplier, tuple(rule.id for rule in settings.rules if rule.id in used)


def check_references(scenario: Scenario) -> None:
    """Every segment and channel the ``[bids]`` table names must exist."""
    settings = scenario.bids
    where = f"{scenario.source or 'the scenario'}"
    segments = sorted(segment.segment_id for segment in scenario.segments)
    channels = sorted(channel.channel_id for channel in scenario.channels)
    problems = []

    def check(entry: str, field: str, value: str, known: list[str], table: str) -> None:
        if value not in known:
            problems.append(
                f"{where}, {entry}, field '{field}': got {value!r}; expected a "
                f"{field.rsplit('.', 1)[-1]} of the {table} table"
                f"{suggestion(value, known)}."
            )

    for rule in settings.rules:
        entry = f"[[bids.rules]] '{rule.id}'"
        for value in rule.when.segment_id or ():
            check(entry, "when.segment_id", value, segments, "segments")
        for value in rule.when.channel_id or ():
            check(entry, "when.channel_id", value, channels, "channels")
    for campaign in settings.campaigns:
        entry = f"[[bids.campaigns]] '{campaign.channel_id}'"
        check(entry, "channel_id", campaign.channel_id, channels, "channels")
    for profile in settings.profiles:
        entry = f"[[bids.profiles]] '{profile.segment_id}'"
        check(entry, "segment_id", profile.segment_id, segments, "segments")
    if problems:
        raise BidInputError(problems)


# --- numbers as the platforms write them ------------------------------------------


def round_percent(percent: float, whole: bool) -> float:
    """Round half away from zero, to whole percents or to hundredths."""
    step = Decimal(1) if whole else Decimal("0.01")
    rounded = float(Decimal(repr(percent)).quantize(step, rounding=ROUND_HALF_UP))
    return rounded + 0.0


def round_money(amount: float) -> float:
    """Round half away from zero to cents."""
    return float(Decimal(repr(amount)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def signed_percent(percent: float) -> str:
    """A percent with its sign and unit, as notes write it: ``+25%``, ``0%``."""
    return f"{'+' if percent > 0 else ''}{format_percent(percent)}%"


def format_percent(percent: float) -> str:
    """A percent as a plain number: ``25``, ``-90``, ``12.5``; never ``-0``."""
    percent = round(percent, 2) + 0.0
    if percent == int(percent):
        return str(int(percent))
    return f"{percent:.2f}".rstrip("0")
