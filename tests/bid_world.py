"""A hand-made plan for the bid tests: segments, cells and their allocation.

Segment values per conversion (pipeline = opportunity_rate x deal_size):
  eval_t1  0.2 x 100,000 = 20,000     eval_t2  0.1 x 40,000 = 4,000
  dec_cust 0.3 x  50,000 = 15,000     res_t3   0.05 x 20,000 = 1,000

Google campaign (one month), value per click = pipeline / clicks:
  eval_t1  spend 20,000  clicks 2,000  100 conversions  2,000,000  -> 1,000
  eval_t2  spend 10,000  clicks 2,500  125 conversions    500,000  ->   200
  dec_cust spend 10,000  clicks   500   20 conversions    300,000  ->   600
  res_t3   spend 0       (unfunded: excluded)
  baseline = (20,000 x 1,000 + 10,000 x 200 + 10,000 x 600) / 40,000 = 700
  defaults: 1000/700 = 1.428571 (+43%), 200/700 = 0.285714 (-71%),
            600/700 = 0.857143 (-14%)

Bing: value per click eval_t1 20 x 20,000 / 500 = 800, eval_t2
20 x 4,000 / 400 = 200; baseline (8,000 x 800 + 2,000 x 200) / 10,000 = 680;
defaults x1.176471 and x0.294118.

dsp (no clicks): value per USD eval_t1 100,000 / 5,000 = 20, eval_t2
150,000 / 15,000 = 10; baseline 12.5; defaults x1.6 and x0.8.

LinkedIn: cost per click 10,000 / 1,000 clicks = 10.00; value per click 400
and 80, baseline 272; defaults x1.470588 and x0.294118.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from builders import channel, linear, saturating
from builders import scenario as build_scenario

from optimizer.bidding import BidPlan
from optimizer.bids import BidRule, BidSettings
from optimizer.scenario import Scenario, Segment

VALUE = {"eval_t1": 20_000, "eval_t2": 4_000, "dec_cust": 15_000, "res_t3": 1_000}


def segments() -> list[Segment]:
    common = {"win_rate": 0.25, "sales_cycle_days": 90}
    return [
        Segment(
            segment_id="dec_cust",
            stage="decision",
            account_tier="tier_1",
            lifecycle="customer",
            opportunity_rate=0.3,
            deal_size=50_000,
            **common,
        ),
        Segment(
            segment_id="eval_t1",
            stage="evaluation",
            account_tier="tier_1",
            intent="evaluation",
            lifecycle="new_lead",
            opportunity_rate=0.2,
            deal_size=100_000,
            **common,
        ),
        Segment(
            segment_id="eval_t2",
            stage="evaluation",
            account_tier="tier_2",
            intent="evaluation",
            lifecycle="new_lead",
            opportunity_rate=0.1,
            deal_size=40_000,
            **common,
        ),
        Segment(
            segment_id="res_t3",
            stage="research",
            account_tier="tier_3",
            opportunity_rate=0.05,
            deal_size=20_000,
            **common,
        ),
    ]


#: (channel, segment): spend, clicks (None: no clicks), conversions.
CELLS = {
    ("google", "eval_t1"): (20_000, 2_000, 100),
    ("google", "eval_t2"): (10_000, 2_500, 125),
    ("google", "dec_cust"): (10_000, 500, 20),
    ("google", "res_t3"): (0, 0, 0),
    ("bing", "eval_t1"): (8_000, 500, 20),
    ("bing", "eval_t2"): (2_000, 400, 20),
    ("bing", "res_t3"): (0, 0, 0),
    ("dsp", "eval_t1"): (5_000, None, 5),
    ("dsp", "eval_t2"): (15_000, None, 37.5),
    ("linkedin", "eval_t1"): (6_000, 500, 10),
    ("linkedin", "eval_t2"): (4_000, 500, 10),
}
PLATFORMS = {
    "google": "google_ads",
    "bing": "microsoft_ads",
    "dsp": "other",
    "linkedin": "linkedin",
}


def world(bids: BidSettings | None = None) -> Scenario:
    """The scenario behind CELLS, with the given [bids] table."""
    responses = []
    for (channel_id, segment_id), (_, clicks, _) in CELLS.items():
        if clicks is None:
            responses.append(
                saturating(segment_id, channel_id, max_conversions=100, scale=1e4)
            )
        else:
            responses.append(
                linear(
                    segment_id,
                    channel_id,
                    cpc=10,
                    conversion_rate=0.05,
                    monthly_clicks=1e4,
                )
            )
    base = build_scenario(
        segments=segments(),
        channels=[channel(c, p) for c, p in PLATFORMS.items()],
        responses=responses,
        budget=200_000,
        spend="up_to",
    )
    return base.replace(bids=bids) if bids is not None else base


def allocation(cells: dict[tuple[str, str], tuple[Any, ...]] = CELLS) -> pd.DataFrame:
    """One month of CELLS as an allocation table (pipeline = conversions x value)."""
    rows = [
        {
            "segment_id": segment_id,
            "channel_id": channel_id,
            "month": "2027-01",
            "spend": float(spend),
            "clicks": math.nan if clicks is None else float(clicks),
            "pipeline": conversions * VALUE[segment_id],
        }
        for (channel_id, segment_id), (spend, clicks, conversions) in cells.items()
    ]
    return pd.DataFrame(rows)


def rule(id_: str, action: str, percent: float | None = None, **fields: Any) -> BidRule:
    return BidRule(
        id=id_,
        owner="test",
        rationale=f"because {id_}",
        action=action,
        percent=percent,
        **fields,
    )


def percents(bids: BidPlan, channel_id: str) -> dict[str, float | None]:
    """Adjustment per criterion value of one channel; None when excluded."""
    return {
        a.value: None if a.excluded else a.percent
        for a in bids.adjustments
        if a.channel_id == channel_id
    }
