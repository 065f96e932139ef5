"""Bid rules and their composition, against numbers worked out by hand.

The allocations are written by hand rather than solved (see bid_world.py for
the arithmetic behind every expected number).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from bid_world import CELLS, allocation, percents, rule, world
from pydantic import ValidationError

from optimizer.bidding import (
    PreviousBid,
    read_allocation,
    recommend_bids,
    round_percent,
)
from optimizer.bids import (
    BidInputError,
    BidRule,
    BidSettings,
    BidWarning,
)
from optimizer.cli import EXIT_INVALID_INPUT, main
from optimizer.reading import load_scenario

# --- the value-based default ----------------------------------------------------


def test_value_based_default_matches_the_hand_calculation() -> None:
    bids = recommend_bids(world(), allocation())

    google = {a.value: a for a in bids.adjustments if a.channel_id == "google"}
    assert google["eval_t1"].steps[0].multiplier == pytest.approx(1000 / 700)
    assert google["eval_t2"].steps[0].multiplier == pytest.approx(200 / 700)
    assert google["dec_cust"].steps[0].multiplier == pytest.approx(600 / 700)
    assert percents(bids, "google") == {
        "dec_cust": -14,
        "eval_t1": 43,
        "eval_t2": -71,
        "res_t3": None,
    }
    assert google["res_t3"].reason == "the plan gives it no spend: excluded"
    assert google["eval_t1"].reason == (
        "value per click 1,000.00 against the campaign's spend-weighted 700.00 "
        "(x1.4286); rounded to +43%"
    )


def test_spend_weighted_mean_of_the_defaults_is_one() -> None:
    bids = recommend_bids(world(), allocation())
    for channel_id in ("google", "bing", "dsp"):
        funded = [
            (CELLS[(channel_id, a.value)][0], a.steps[0].multiplier)
            for a in bids.adjustments
            if a.channel_id == channel_id and not a.excluded
        ]
        total = sum(spend for spend, _ in funded)
        assert sum(s * m for s, m in funded) / total == pytest.approx(1.0)


def test_without_clicks_value_per_dollar_stands_in() -> None:
    # dsp: eval_t1 100,000 / 5,000 = 20 per USD; eval_t2 150,000 / 15,000 = 10;
    # baseline (5,000 x 20 + 15,000 x 10) / 20,000 = 12.5 -> x1.6 and x0.8.
    bids = recommend_bids(world(), allocation())

    assert percents(bids, "dsp") == {"eval_t1": 60, "eval_t2": -20}
    assert bids.find("dsp", "audience", "eval_t1").reason.startswith(
        "value per USD of spend 20.00 against the campaign's spend-weighted 12.50"
    )


def test_unfunded_profile_criterion_gets_microsoft_s_floor() -> None:
    settings = BidSettings(
        profiles=[{"segment_id": "res_t3", "kind": "job_function", "profile_id": "7"}]
    )
    bids = recommend_bids(world(settings), allocation())

    floor = bids.find("bing", "job_function", "7")
    assert (floor.percent, floor.excluded, floor.segment_id) == (-90, False, "res_t3")
    assert floor.reason == (
        "the plan gives it no spend: excluded; Microsoft Advertising cannot exclude "
        "job function criteria at campaign level, so it gets the floor of -90%"
    )


# --- composition --------------------------------------------------------------


def test_rules_compose_in_the_documented_order() -> None:
    # eval_t1: 1.428571 x 1.25 (tier_1_up) x 1.10 (evaluation_up) = 1.964286,
    #          capped at 1.60 -> +60%.
    # eval_t2: 0.285714 x 1.10 = 0.314286, floored at 0.50 -> -50%.
    # dec_cust: 0.857143 x 1.25 = 1.071429, then excluded as a customer.
    settings = BidSettings(
        rules=[
            rule("google_floor", "floor", -50, when={"channel_id": "google"}),
            rule("google_cap", "cap", 60, when={"platform": "google_ads"}),
            rule("tier_1_up", "adjust", 25, when={"account_tier": "tier_1"}),
            rule("evaluation_up", "adjust", 10, when={"stage": "evaluation"}),
            rule("customers_out", "exclude", when={"lifecycle": "customer"}),
        ]
    )
    bids = recommend_bids(world(settings), allocation())

    assert percents(bids, "google") == {
        "dec_cust": None,
        "eval_t1": 60,
        "eval_t2": -50,
        "res_t3": None,
    }
    top = bids.find("google", "audience", "eval_t1")
    assert top.rules == ("google_cap", "tier_1_up", "evaluation_up")
    assert top.contributions() == (
        "default x1.4286; tier_1_up x1.2500; evaluation_up x1.1000; google_cap x0.8145"
    )
    product = math.prod(float(p.split(" x")[1]) for p in top.contributions().split(";"))
    assert product == pytest.approx(top.multiplier, abs=5e-4)
    customer = bids.find("google", "audience", "dec_cust")
    assert customer.rules == ("tier_1_up", "customers_out")
    assert customer.contributions() == (
        "default x0.8571; tier_1_up x1.2500; customers_out x0.0000"
    )


def test_the_last_set_rule_wins_and_holdout_resets_after_caps() -> None:
    # bing: value per click eval_t1 20 x 20,000 / 500 = 800, eval_t2
    # 20 x 4,000 / 400 = 200; baseline (8,000 x 800 + 2,000 x 200) / 10,000 =
    # 680, so the defaults are x1.176471 and x0.294118. The last set rule gives
    # +15%; on eval_t2 the floor lifts it to +30%, then the holdout resets it.
    settings = BidSettings(
        rules=[
            rule("first_set", "set", 50, when={"channel_id": "bing"}),
            rule("second_set", "set", 15, when={"channel_id": "bing"}),
            rule("bing_floor", "floor", 30, when={"segment_id": "eval_t2"}),
            rule("holdout", "holdout", when={"segment_id": "eval_t2"}),
        ]
    )
    bids = recommend_bids(world(settings), allocation())

    assert percents(bids, "bing") == {"eval_t1": 15, "eval_t2": 0, "res_t3": None}
    held = bids.find("bing", "audience", "eval_t2")
    assert held.rules == ("second_set", "bing_floor", "holdout")
    assert held.steps[0].multiplier == pytest.approx(200 / 680)


def test_adjustments_beyond_the_platform_are_clamped_with_a_warning() -> None:
    settings = BidSettings(
        rules=[rule("huge_up", "adjust", 900, when={"segment_id": "eval_t1"})]
    )

    with pytest.warns(BidWarning) as caught:
        bids = recommend_bids(world(settings), allocation())

    # 1.428571 x 10 = 14.2857 -> +1329% on Google; bing 1.176471 x 10 -> +1076%.
    assert [str(w.message) for w in caught] == [
        "campaign 'bing', audience eval_t1: default, huge_up give +1076%, above the "
        "Microsoft Advertising range for customer lists (-90% to +900%); clamped by "
        "-176 points to +900%. Change those rules' percents or add a cap or floor "
        "rule so bids stay within the platform's range.",
        "campaign 'dsp', audience eval_t1: default, huge_up give +1500%, above the "
        "other platforms range for audiences (-90% to +900%); clamped by -600 "
        "points to +900%. Change those rules' percents or add a cap or floor rule "
        "so bids stay within the platform's range.",
        "campaign 'google', audience eval_t1: default, huge_up give +1329%, above "
        "the Google Ads range for audiences (-90% to +900%); clamped by -429 points "
        "to +900%. Change those rules' percents or add a cap or floor rule so bids "
        "stay within the platform's range.",
    ]
    assert caught[0].filename == __file__
    clamped = bids.find("google", "audience", "eval_t1")
    assert clamped.percent == 900
    assert clamped.contributions().endswith("platform_range x0.6998")


def test_device_rules_give_the_complete_set_and_respect_google_s_gap() -> None:
    # -95% is valid on Microsoft (-100..+900) but not on Google, where a device
    # takes -100 (opt out) or -90..+900: it is clamped to -90.
    settings = BidSettings(
        rules=[
            rule(
                "mobile_down",
                "adjust",
                -95,
                applies_to="device",
                devices="mobile",
                when={"platform": ["google_ads", "microsoft_ads"]},
            ),
            rule(
                "tablet_off",
                "exclude",
                applies_to="device",
                devices=["tablet"],
                when={"channel_id": "google"},
            ),
        ]
    )
    with pytest.warns(BidWarning, match=r"^campaign 'google', device mobile: "):
        bids = recommend_bids(world(settings), allocation())

    devices = {
        (a.channel_id, a.value): (a.percent, a.excluded)
        for a in bids.adjustments
        if a.kind == "device"
    }
    assert devices == {
        ("bing", "desktop"): (0, False),
        ("bing", "mobile"): (-95, False),
        ("bing", "tablet"): (0, False),
        ("google", "desktop"): (0, False),
        ("google", "mobile"): (-90, False),
        ("google", "tablet"): (-100, True),
    }


def test_a_rule_that_matches_nothing_warns() -> None:
    settings = BidSettings(
        rules=[rule("partners", "adjust", 10, when={"lifecycle": "partner"})]
    )
    with pytest.warns(BidWarning) as caught:
        recommend_bids(world(settings), allocation())

    assert [str(w.message) for w in caught] == [
        "[[bids.rules]] 'partners' (lifecycle = partner) matches no criterion of any "
        "campaign, so it changes nothing; check its condition against the segments "
        "and channels, or remove the rule."
    ]


# --- stability ------------------------------------------------------------------


def test_stability_limits_against_the_previous_bids() -> None:
    # eval_t1: target +43 against +10 moves at most 20 points -> +30.
    # eval_t2: target -71 against -69 is a change of 2 < 5 -> stays -69.
    # dec_cust: was excluded, is re-included at once at -14.
    settings = BidSettings(min_step_percent=5, max_change_percent=20)
    previous = {
        ("google", "audience", "eval_t1"): PreviousBid(10),
        ("google", "audience", "eval_t2"): PreviousBid(-69),
        ("google", "audience", "dec_cust"): PreviousBid(None),
        ("google", "audience", "res_t3"): PreviousBid(-40),
    }
    bids = recommend_bids(world(settings), allocation(), previous=previous)

    assert percents(bids, "google") == {
        "dec_cust": -14,
        "eval_t1": 30,
        "eval_t2": -69,
        "res_t3": None,
    }
    moved = bids.find("google", "audience", "eval_t1")
    assert moved.reason.endswith(
        "moved +20 points from the previous +10% instead of +33: the maximum change "
        "per cycle"
    )
    kept = bids.find("google", "audience", "eval_t2")
    assert kept.reason.endswith(
        "kept at the previous -69%: a change of -2 points is below the minimum "
        "step of 5"
    )
    assert kept.contributions() == "default x0.2857; rounding x1.0150; min_step x1.0690"


def test_rounding_is_half_away_from_zero() -> None:
    assert [round_percent(p, True) for p in (42.5, -42.5, 0.49, -0.5)] == [
        43,
        -43,
        0,
        -1,
    ]
    assert round_percent(12.345, False) == 12.35


# --- LinkedIn --------------------------------------------------------------------


def test_linkedin_gets_one_bid_from_its_cost_per_click_and_rules() -> None:
    # cost per click 10,000 / 1,000 = 10.00. Value per click 400 and 80,
    # baseline 272: defaults x1.470588 and x0.294118 (mean 1). With tier_1_up:
    # (6,000 x 1.838235 + 4,000 x 0.294118) / 10,000 = 1.220588 -> 12.21.
    settings = BidSettings(
        linkedin_min_bid=5,
        linkedin_max_bid=12,
        rules=[rule("tier_1_up", "adjust", 25, when={"account_tier": "tier_1"})],
    )
    with pytest.warns(BidWarning) as caught:
        bids = recommend_bids(world(settings), allocation())

    (bid,) = bids.campaign_bids
    assert (bid.base_bid, bid.bid, bid.rules) == (10.0, 12.0, ("tier_1_up",))
    assert bid.multiplier == pytest.approx(1.220588, abs=1e-6)
    assert [str(w.message) for w in caught] == [
        "LinkedIn campaign 'linkedin': the bid 12.21 USD is outside the bid limits "
        "(5.00 to 12.00); clamped by -0.21 to 12.00. Check linkedin_min_bid and "
        "linkedin_max_bid against LinkedIn's bid limits for this audience."
    ]


def test_linkedin_without_clicks_and_base_bid_gets_no_amount() -> None:
    cells = {k: (s, None, c) for k, (s, _, c) in CELLS.items() if k[0] == "linkedin"}
    bids = recommend_bids(world(), allocation(cells))

    (bid,) = bids.campaign_bids
    assert (bid.base_bid, bid.bid) == (None, None)
    assert bid.reason == (
        "no bid: the plan has no clicks for this campaign (its curves give none) "
        "and [bids] sets no linkedin_base_bid; set it to get a bid; its segments' "
        "spend-weighted multiplier is x1.0000"
    )


# --- validation -------------------------------------------------------------------


def _message(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return str(error.value.errors()[0]["msg"])


def test_a_rule_percent_must_fit_its_action() -> None:
    with pytest.raises(ValidationError) as missing:
        rule("r", "adjust")
    with pytest.raises(ValidationError) as extra:
        rule("r", "exclude", 10)
    with pytest.raises(ValidationError) as too_big:
        rule("r", "set", 950)

    assert _message(missing) == (
        "Value error, in [[bids.rules]] 'r', field 'percent': action 'adjust' "
        "needs a percent (multiply the bid by 1 + percent / 100)"
    )
    assert _message(extra) == (
        "Value error, in [[bids.rules]] 'r', field 'percent': action 'exclude' "
        "takes no percent; remove it"
    )
    assert _message(too_big) == (
        "Value error, in [[bids.rules]] 'r', field 'percent': expected a percent "
        "above -100 and at most 900; use action 'exclude' to stop bidding"
    )


def test_rule_names_are_checked_with_suggestions() -> None:
    with pytest.raises(ValidationError) as action:
        rule("r", "ajdust", 5)
    with pytest.raises(ValidationError) as key:
        BidRule.model_validate(
            {"id": "r", "owner": "o", "rationale": "x", "action": "cap", "percnt": 5}
        )
    with pytest.raises(ValidationError) as stage:
        rule("r", "cap", 5, when={"stage": "evalution"})
    with pytest.raises(ValidationError) as device:
        rule("r", "cap", 5, applies_to="device", when={"account_tier": "tier_1"})

    assert _message(action) == (
        "Value error, in [[bids.rules]] 'r', field 'action': expected one of adjust, "
        "set, cap, floor, holdout, exclude (did you mean 'adjust'?)"
    )
    assert _message(key) == (
        "Value error, in [[bids.rules]] 'r': unknown field 'percnt'; expected one of "
        "id, owner, rationale, applies_to, devices, when, action, percent (did you "
        "mean 'percent'?)"
    )
    assert _message(stage) == (
        "Value error, in a [[bids.rules]] when table, field 'stage': got "
        "'evalution'; expected one of research, evaluation, decision (did you mean "
        "'evaluation'?)"
    )
    assert _message(device) == (
        "Value error, in [[bids.rules]] 'r': a device rule applies to whole "
        "campaigns, so its condition takes only channel_id and platform; remove "
        "account_tier"
    )


def test_settings_refuse_repeats_and_inverted_limits() -> None:
    with pytest.raises(ValidationError) as repeated:
        BidSettings(rules=[rule("a", "holdout"), rule("a", "exclude")])
    with pytest.raises(ValidationError) as limits:
        BidSettings(linkedin_min_bid=10, linkedin_max_bid=5)
    with pytest.raises(ValidationError) as whole:
        BidSettings(max_change_percent=12.5)

    assert _message(repeated) == (
        "Value error, [[bids.rules]] names a more than once; expected each once"
    )
    assert _message(limits) == (
        "Value error, linkedin_max_bid is below linkedin_min_bid 10; expected a "
        "maximum at least the minimum"
    )
    assert _message(whole) == (
        "Value error, max_change_percent is not a whole number, but adjustments are "
        "rounded to whole percents; use a whole number of points"
    )
    assert BidSettings(max_change_percent=12.5, round_to_whole_percent=False)


def test_unknown_channels_and_segments_in_bids_are_invalid_input() -> None:
    settings = BidSettings(
        rules=[rule("r", "adjust", 5, when={"channel_id": "gogle"})],
        profiles=[{"segment_id": "evl_t1", "kind": "industry", "profile_id": "3"}],
    )
    with pytest.raises(BidInputError) as error:
        recommend_bids(world(settings), allocation())

    assert error.value.problems == (
        "the scenario, [[bids.rules]] 'r', field 'when.channel_id': got 'gogle'; "
        "expected a channel_id of the channels table (did you mean 'google'?).",
        "the scenario, [[bids.profiles]] 'evl_t1', field 'segment_id': got "
        "'evl_t1'; expected a segment_id of the segments table (did you mean "
        "'eval_t1'?).",
    )


def test_a_bad_rule_in_the_toml_file_names_the_file_and_the_rule(
    hand_check,
) -> None:
    hand_check.edit(
        "hand_check.toml",
        "[tables]",
        '[bids]\n[[bids.rules]]\nid = "up"\nowner = "me"\nrationale = "r"\n'
        'action = "adjust"\npercent = 1000\n\n[tables]',
    )
    # reading.py locates errors one table deep, so a rule's field is reported
    # under [bids] 'rules'; the reason names the rule and its field.
    assert hand_check.problems() == (
        "hand_check.toml, [bids], field 'rules': got '1000'; expected a valid value "
        "(in [[bids.rules]] 'up', field 'percent': expected a percent above -100 "
        "and at most 900; use action 'exclude' to stop bidding).",
    )


# --- reading a written allocation --------------------------------------------------


def test_read_allocation_reports_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "allocation.csv"
    path.write_text(
        "segment_id,channel_id,month,spend,clicks,pipeline\n"
        "eval_t1,google,2027-01,12.50,1.25,100.00\n"
        "eval_t8,google,2027-01,abc,,100.00\n",
        encoding="utf-8",
    )
    with pytest.raises(BidInputError) as error:
        read_allocation(path, world())

    assert error.value.problems == (
        f"{path}, row 3, field 'segment_id': got 'eval_t8'; expected a segment_id "
        "of the segments table of the scenario.",
        f"{path}, row 3, field 'spend': got 'abc'; expected a finite number of at "
        "least 0 (empty where the plan has none).",
    )


def test_read_allocation_needs_the_objective_column(tmp_path: Path) -> None:
    path = tmp_path / "allocation.csv"
    path.write_text("segment_id,channel_id,month,spend,clicks\n", encoding="utf-8")

    with pytest.raises(BidInputError) as error:
        read_allocation(path, world())

    assert str(error.value) == (
        f"{path}, row 1: got no column 'pipeline'; expected the columns segment_id, "
        "channel_id, month, spend, clicks, pipeline of the allocation.csv of a plan "
        "that maximizes pipeline."
    )


def test_the_demo_scenario_s_rules_load(tmp_path: Path) -> None:
    scenario = load_scenario(
        Path(__file__).parent.parent / "scenarios/demo_pipeline.toml"
    )
    assert [r.id for r in scenario.bids.rules] == [
        "evaluation_tier_1_up",
        "open_opportunity_research_suppression",
        "bing_long_tail_holdout",
        "search_cap",
        "google_mobile_down",
    ]


def test_validate_refuses_a_bid_rule_on_an_unknown_channel_before_solving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[1] / "scenarios"
    shutil.copytree(root / "hand_check", tmp_path / "hand_check")
    text = (root / "hand_check.toml").read_text(encoding="utf-8")
    text += (
        '\n[[bids.rules]]\nid = "typo"\nowner = "search"\nrationale = "test"\n'
        'when = { channel_id = "gogle_search" }\naction = "adjust"\npercent = 10\n'
    )
    (tmp_path / "hand_check.toml").write_text(text, encoding="utf-8")

    code = main(["validate", str(tmp_path / "hand_check.toml")])

    assert code == EXIT_INVALID_INPUT
    assert capsys.readouterr().err == (
        f"error: invalid input:\n{tmp_path}/hand_check.toml, [[bids.rules]] 'typo', "
        "field 'when.channel_id': got 'gogle_search'; expected a channel_id of the "
        "channels table (did you mean 'google_search'?).\n"
    )
