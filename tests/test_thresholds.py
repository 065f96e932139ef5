"""Decision thresholds on the hand-check plan, whose every cell is known by hand.

The hand-check optimum (see scenarios/hand_check.toml) funds three cells over
its one month; from their curves (spend, conversions, clicks, pipeline):

    cell                             spend  conv  clicks  cpa  roi  conv. rate
    evaluation_tier_1/google_search 20,000   100   2,000  200  100  0.05
    evaluation_tier_2/google_search 10,000   125   2,500   80   50  0.05
    evaluation_tier_1/linkedin      20,000    40   2,000  500   40  0.02
    evaluation_tier_2/linkedin           0     -       -    -    -  -

The segments' opportunity rates are 0.2 (tier_1) and 0.1 (tier_2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import optimizer
from optimizer.thresholds import (
    COLUMNS,
    ThresholdRule,
    crossings,
    crossings_text,
)

ROOT = Path(__file__).resolve().parents[1]
HAND_CHECK = ROOT / "scenarios" / "hand_check.toml"

TIER_1 = "evaluation_tier_1"
TIER_2 = "evaluation_tier_2"


@pytest.fixture(scope="module")
def scenario() -> optimizer.Scenario:
    return optimizer.load_scenario(HAND_CHECK)


def rule(**fields: object) -> ThresholdRule:
    return ThresholdRule.model_validate(
        {"id": "t", "action": "review", "owner": "Planning lead", **fields}
    )


def crossed(scenario: optimizer.Scenario, *rules: ThresholdRule) -> pd.DataFrame:
    plan = optimizer.optimize(scenario.replace(thresholds=rules))
    return crossings(plan)


def rows(*records: tuple[str, str, str, float, float, str]) -> pd.DataFrame:
    """Expected crossings of threshold 't' with action 'review'."""
    return pd.DataFrame(
        [("t", *record, "review", "Planning lead") for record in records],
        columns=list(COLUMNS),
    )


def assert_crossings(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(found, expected, check_exact=False, rtol=1e-9)


def test_cpa_above_a_limit_flags_only_the_dear_cell(scenario) -> None:
    found = crossed(scenario, rule(metric="cpa", above=300))
    assert_crossings(found, rows((TIER_1, "linkedin", "cpa", 500.0, 300.0, "above")))


def test_roi_below_a_limit_flags_two_cells_in_segment_order(scenario) -> None:
    found = crossed(scenario, rule(metric="roi", below=60))
    assert_crossings(
        found,
        rows(
            (TIER_1, "linkedin", "roi", 40.0, 60.0, "below"),
            (TIER_2, "google_search", "roi", 50.0, 60.0, "below"),
        ),
    )


def test_conversion_rate_is_conversions_over_clicks_of_a_tag(scenario) -> None:
    found = crossed(
        scenario,
        rule(metric="conversion_rate", below=0.03, where={"account_tier": "tier_1"}),
    )
    assert_crossings(
        found, rows((TIER_1, "linkedin", "conversion_rate", 0.02, 0.03, "below"))
    )


def test_opportunity_rate_is_the_segments_with_no_channel(scenario) -> None:
    found = crossed(scenario, rule(metric="opportunity_rate", below=0.15))
    assert_crossings(found, rows((TIER_2, "", "opportunity_rate", 0.1, 0.15, "below")))


def test_a_band_flags_either_side(scenario) -> None:
    found = crossed(scenario, rule(metric="roi", below=45, above=90))
    assert_crossings(
        found,
        rows(
            (TIER_1, "google_search", "roi", 100.0, 90.0, "above"),
            (TIER_1, "linkedin", "roi", 40.0, 45.0, "below"),
        ),
    )


def test_a_channel_narrows_the_cells(scenario) -> None:
    # cpa above 100 holds for tier_1's google cell (200) too, but not on linkedin.
    found = crossed(scenario, rule(metric="cpa", above=100, channel="linkedin"))
    assert_crossings(found, rows((TIER_1, "linkedin", "cpa", 500.0, 100.0, "above")))


def test_unfunded_cells_are_not_judged(scenario) -> None:
    found = crossed(scenario, rule(metric="cpa", above=0))
    assert list(zip(found["segment_id"], found["channel_id"], strict=True)) == [
        (TIER_1, "google_search"),
        (TIER_1, "linkedin"),
        (TIER_2, "google_search"),
    ]


def test_a_value_on_the_limit_does_not_cross(scenario) -> None:
    # tier_1's google cell costs exactly 200 a conversion.
    found = crossed(scenario, rule(metric="cpa", above=200))
    assert list(found["channel_id"]) == ["linkedin"]


def test_stage_conditions_and_several_thresholds(scenario) -> None:
    research = rule(id="r", metric="cpa", above=0, where={"stage": "research"})
    evaluation = rule(id="e", metric="cpa", above=450, where={"stage": "evaluation"})
    found = crossed(scenario, research, evaluation)
    assert list(found["threshold"]) == ["e"]
    assert found["value"].tolist() == pytest.approx([500.0])


def test_no_thresholds_give_an_empty_table(scenario) -> None:
    found = crossings(optimizer.optimize(scenario))
    assert found.empty
    assert list(found.columns) == list(COLUMNS)


def test_the_plan_files_list_the_crossings(scenario, tmp_path: Path) -> None:
    plan = optimizer.optimize(
        scenario.replace(thresholds=(rule(metric="cpa", above=300),))
    )
    folder = optimizer.write_plan(plan, tmp_path / "plan")

    assert (folder / "thresholds.csv").read_text() == (
        "threshold,segment_id,channel_id,metric,value,threshold_value,side,action,"
        "owner\n"
        "t,evaluation_tier_1,linkedin,cpa,500.000000,300.000000,above,review,"
        "Planning lead\n"
    )
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["threshold_crossings"] == [
        {
            "threshold": "t",
            "segment_id": TIER_1,
            "channel_id": "linkedin",
            "metric": "cpa",
            "value": 500.0,
            "threshold_value": 300.0,
            "side": "above",
            "action": "review",
            "owner": "Planning lead",
        }
    ]
    assert summary["data_quality"] is None
    assert crossings_text(crossings(plan), "USD") == (
        "thresholds crossed (1):\n"
        "  t: evaluation_tier_1/linkedin cpa 500.00 USD, above 300.00 USD: review "
        "(Planning lead)\n"
    )


def test_a_plan_without_thresholds_writes_no_thresholds_file(
    scenario, tmp_path: Path
) -> None:
    folder = optimizer.write_plan(optimizer.optimize(scenario), tmp_path / "plan")
    assert not (folder / "thresholds.csv").exists()


# --- refused thresholds, read from the scenario file --------------------------


def problems_of(hand_check, entry: str) -> tuple[str, ...]:
    """The problems of the hand-check scenario with one more TOML entry."""
    toml = Path("hand_check.toml")
    hand_check.write(str(toml), toml.read_bytes() + b"\n" + entry.encode())
    return hand_check.problems()


THRESHOLD = '[[thresholds]]\nid = "t"\naction = "review"\nowner = "Planning lead"\n'
ENTRY = "hand_check.toml, [[thresholds]] entry 1"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            'metric = "ctr"\nbelow = 0.01',
            f"{ENTRY}, field 'metric': got 'ctr'; expected one of 'conversion_rate', "
            "'opportunity_rate', 'cpa', 'roi'.",
        ),
        (
            'metric = "cpa"\nabove = 900\nwhere = { acount_tier = "tier_1" }',
            f"{ENTRY}, field 'where': got 'acount_tier'; expected a valid value (the "
            "stage or a tag: one of stage, market, account_tier, audience, persona, "
            "intent, offer, lifecycle; did you mean 'account_tier'?).",
        ),
        (
            'metric = "cpa"\nabove = 900\nwhere = { stage = "reserch" }',
            f"{ENTRY}: field 'where': got stage 'reserch'; expected one of research, "
            "evaluation, decision.",
        ),
        (
            'metric = "cpa"',
            f"{ENTRY}: got neither below nor above; expected at least one.",
        ),
        (
            'metric = "roi"\nbelow = 5\nabove = 2',
            f"{ENTRY}: field 'below': got '5'; expected at most the entry's above, 2 "
            "(a value crosses when it is under below or over above).",
        ),
        (
            'metric = "opportunity_rate"\nbelow = 0.1\nchannel = "linkedin"',
            f"{ENTRY}: field 'channel': got 'linkedin'; expected no channel, as "
            "opportunity_rate is the segment's, the same in every channel.",
        ),
        (
            'metric = "cpa"\nabove = 900\ncolour = "red"',
            f"{ENTRY}: got unknown field 'colour'; expected one of id, metric, below, "
            "above, where, channel, action, owner, note.",
        ),
    ],
)
def test_an_invalid_threshold_is_refused_in_one_sentence(
    hand_check, fields: str, problem: str
) -> None:
    assert problems_of(hand_check, THRESHOLD + fields + "\n") == (problem,)
