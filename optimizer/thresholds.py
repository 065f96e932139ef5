"""Decision thresholds: written-down limits on a plan's metrics, and who acts.

A scenario's ``[[thresholds]]`` entries each name a metric, a limit ``below``
and/or ``above`` which it should not go, the segments they watch (``where``:
conditions on the stage or any tag; empty watches every segment), optionally
one channel, and the action its owner takes when a plan crosses it::

    [[thresholds]]
    id = "research_cpa"
    metric = "cpa"
    above = 900
    where = { stage = "research" }
    action = "channel-mix change"
    owner = "Paid social lead"

The metrics, each over the plan's whole horizon:

* ``conversion_rate``: conversions / clicks of a segment x channel cell, for
  the cells the plan buys clicks in (cells whose curve reports clicks);
* ``cpa``: spend / conversions of a cell the plan funds;
* ``roi``: the plan's objective / spend of a cell the plan funds;
* ``opportunity_rate``: the segment's own rate from the segments table, one
  value per segment (a channel does not apply).

A value crosses ``below`` when it is less than the limit and ``above`` when it
is more; a value equal to the limit up to a relative 1e-9 does not cross.
:func:`crossings` lists every crossing of a plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Self

import numpy as np
import pandas as pd
from pydantic import AfterValidator, Field, model_validator

from optimizer.fields import Frozen

if TYPE_CHECKING:
    from optimizer.plan import Scorecard
    from optimizer.scenario import Scenario

#: A value within this share of a limit counts as on it, not across it.
RELATIVE_TOLERANCE = 1e-9

#: The columns of :func:`crossings`.
COLUMNS = (
    "threshold",
    "segment_id",
    "channel_id",
    "metric",
    "value",
    "threshold_value",
    "side",
    "action",
    "owner",
)


class ThresholdMetric(StrEnum):
    """What a threshold watches."""

    CONVERSION_RATE = "conversion_rate"
    OPPORTUNITY_RATE = "opportunity_rate"
    CPA = "cpa"
    ROI = "roi"


class Side(StrEnum):
    """Which limit a value crossed."""

    BELOW = "below"
    ABOVE = "above"


class GovernanceModel(Frozen):
    """Base of the threshold and quality models."""


def _segment_attribute(name: str) -> str:
    allowed = where_fields()
    if name not in allowed:
        # checks.py imports optimizer.scenario: imported when first needed.
        from optimizer.checks import did_you_mean  # noqa: PLC0415

        hint = did_you_mean(name, allowed).strip().removeprefix("(").rstrip(")")
        raise ValueError(
            f"the stage or a tag: one of {', '.join(allowed)}"
            + (f"; {hint}" if hint else "")
        )
    return name


SegmentAttribute = Annotated[str, AfterValidator(_segment_attribute)]


class ThresholdRule(GovernanceModel):
    """A limit on one metric for some segments, and the action when crossed."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="an identifier of letters, digits, '_', '.' or '-'",
    )
    metric: ThresholdMetric = Field(
        description="one of " + ", ".join(f"'{m}'" for m in ThresholdMetric)
    )
    below: float | None = Field(
        default=None,
        ge=0,
        description="a limit of at least 0; a value under it crosses the threshold",
    )
    above: float | None = Field(
        default=None,
        ge=0,
        description="a limit of at least 0; a value over it crosses the threshold",
    )
    where: dict[SegmentAttribute, str] = Field(
        default_factory=dict,
        description=(
            "conditions on the stage or tags, e.g. { stage = 'research' }; "
            "empty for every segment"
        ),
    )
    channel: str | None = Field(
        default=None, description="a channel_id, or none for every channel"
    )
    action: str = Field(
        min_length=1,
        description="what is done when it is crossed, e.g. 'creative iteration'",
    )
    owner: str = Field(min_length=1, description="who takes the action")
    note: str = Field(default="", description="why the threshold exists")

    @model_validator(mode="after")
    def _fits_together(self) -> Self:
        if self.below is None and self.above is None:
            raise ValueError("got neither below nor above; expected at least one")
        below, above = self.below, self.above
        if below is not None and above is not None and below > above:
            raise ValueError(
                f"field 'below': got '{below:g}'; expected at most the "
                f"entry's above, {above:g} (a value crosses when it is under "
                "below or over above)"
            )
        if self.metric is ThresholdMetric.OPPORTUNITY_RATE and self.channel:
            raise ValueError(
                f"field 'channel': got {self.channel!r}; expected no channel, as "
                "opportunity_rate is the segment's, the same in every channel"
            )
        stages = stage_names()
        stage = self.where.get("stage")
        if stage is not None and stage not in stages:
            raise ValueError(
                f"field 'where': got stage {stage!r}; expected one of "
                f"{', '.join(stages)}"
            )
        return self

    @property
    def limits(self) -> tuple[tuple[Side, float], ...]:
        """The limits it sets, ``below`` first."""
        sides = ((Side.BELOW, self.below), (Side.ABOVE, self.above))
        return tuple((side, limit) for side, limit in sides if limit is not None)

    def crossed(self, value: float) -> tuple[Side, float] | None:
        """The limit a value crosses, or None."""
        for side, limit in self.limits:
            margin = RELATIVE_TOLERANCE * abs(limit)
            if side is Side.BELOW and value < limit - margin:
                return side, limit
            if side is Side.ABOVE and value > limit + margin:
                return side, limit
        return None

    def watches(self, attributes: Mapping[str, object]) -> bool:
        """Whether a segment's (or cell's) stage and tags meet every condition."""
        return all(attributes.get(key) == value for key, value in self.where.items())


def where_fields() -> tuple[str, ...]:
    """The segment attributes a condition may test: the stage and the tags."""
    # optimizer.scenario imports this module, so it is read when first needed.
    from optimizer.scenario import WHERE_FIELDS  # noqa: PLC0415

    return tuple(WHERE_FIELDS)


def stage_names() -> tuple[str, ...]:
    """The journey stages, in funnel order."""
    from optimizer.scenario import Stage  # noqa: PLC0415

    return tuple(stage.value for stage in Stage)


def crossings(plan: Scorecard) -> pd.DataFrame:
    """Every segment or cell of a plan that crosses one of its thresholds.

    Parameters
    ----------
    plan
        A plan (or any scored allocation) whose scenario has ``thresholds``.

    Returns
    -------
    pandas.DataFrame
        One row per crossing, in the order of the thresholds and then by
        segment and channel, with the columns of :data:`COLUMNS`;
        ``channel_id`` is empty for ``opportunity_rate``, a segment's metric.
    """
    rules = plan.scenario.thresholds
    cells = cell_metrics(plan) if rules else pd.DataFrame()
    segments = segment_metrics(plan.scenario) if rules else pd.DataFrame()
    rows = []
    for rule in rules:
        per_segment = rule.metric is ThresholdMetric.OPPORTUNITY_RATE
        table = segments if per_segment else cells
        for record in table.to_dict("records"):
            value = record[rule.metric.value]
            if not rule.watches(record) or not math.isfinite(value):
                continue
            if rule.channel is not None and record["channel_id"] != rule.channel:
                continue
            crossed = rule.crossed(value)
            if crossed is None:
                continue
            rows.append(
                (
                    rule.id,
                    record["segment_id"],
                    record["channel_id"],
                    rule.metric.value,
                    float(value),
                    crossed[1],
                    crossed[0].value,
                    rule.action,
                    rule.owner,
                )
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def cell_metrics(plan: Scorecard) -> pd.DataFrame:
    """Each segment x channel cell's horizon totals and threshold metrics.

    Spend is summed in cents. A metric is NaN where it is undefined: no
    clicks (conversion_rate), no conversions (cpa) or no spend (cpa, roi).
    """
    allocation = plan.allocation
    objective = plan.scenario.objective.maximize.value
    keys = ["segment_id", "channel_id"]
    attributes = [c for c in where_fields() if c in allocation.columns]
    frame = allocation.assign(cents=plan.spend_cents)
    grouped = frame.groupby(keys, sort=True)
    sums = grouped[["clicks", "conversions", objective]].sum(min_count=1)
    table = pd.concat(
        [grouped[attributes].first(), grouped["cents"].sum(), sums], axis=1
    )
    spend = table["cents"].to_numpy() / 100
    clicks = table["clicks"].to_numpy(dtype=float)
    conversions = table["conversions"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["conversion_rate"] = np.where(clicks > 0, conversions / clicks, np.nan)
        table["cpa"] = np.where(
            (spend > 0) & (conversions > 0), spend / conversions, np.nan
        )
        table["roi"] = np.where(spend > 0, table[objective] / spend, np.nan)
    table["spend"] = spend
    return table.drop(columns="cents").reset_index()


def segment_metrics(scenario: Scenario) -> pd.DataFrame:
    """Each segment's stage, tags and opportunity_rate, one row per segment."""
    rows = []
    for segment in sorted(scenario.segments, key=lambda s: s.segment_id):
        attributes = {name: segment.attribute(name) or "" for name in where_fields()}
        rows.append(
            {
                "segment_id": segment.segment_id,
                "channel_id": "",
                **attributes,
                "opportunity_rate": segment.opportunity_rate,
            }
        )
    return pd.DataFrame(rows)


def crossings_text(table: pd.DataFrame, currency: str) -> str:
    """Crossings for a console, one line each; empty when there are none."""
    if table.empty:
        return ""
    lines = [f"thresholds crossed ({len(table)}):"]
    for row in table.itertuples(index=False):
        cell = row.segment_id + (f"/{row.channel_id}" if row.channel_id else "")
        value = format_metric(row.metric, row.value, currency)
        limit = format_metric(row.metric, row.threshold_value, currency)
        lines.append(
            f"  {row.threshold}: {cell} {row.metric} {value}, {row.side} {limit}: "
            f"{row.action} ({row.owner})"
        )
    return "\n".join(lines) + "\n"


def format_metric(metric: str, value: float, currency: str) -> str:
    """A metric's value as planners read it: rates in percent, CPA in money."""
    if metric in (ThresholdMetric.CONVERSION_RATE, ThresholdMetric.OPPORTUNITY_RATE):
        return f"{value * 100:.3g}%"
    if metric == ThresholdMetric.CPA:
        return f"{value:,.2f} {currency}"
    return f"{value:,.4g}"
