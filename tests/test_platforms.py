"""Platform exports against golden files, their range checks, and reading back.

The golden files under tests/golden/bids/ were written by hand from the
arithmetic in bid_world.py, with these rules:

* tier_1_up +25% on tier 1: Google eval_t1 1.428571 x 1.25 = 1.785714 (+79%),
  Bing eval_t1 (a job function profile there) 1.176471 x 1.25 = 1.470588
  (+47%), LinkedIn (6,000 x 1.838235 + 4,000 x 0.294118) / 10,000 =
  1.220588, so 10.00 x 1.220588 = 12.21;
* customers_out excludes dec_cust; res_t3 has no spend and is excluded too;
* mobile_down -30% on both search campaigns, tablet_off on Google (-100%).

Only bids.csv was written by the code and checked line by line, as its
reasons are long.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bid_world import allocation, rule, world

from optimizer.bidding import Adjustment, BidPlan, recommend_bids
from optimizer.bids import BidInputError, BidSettings, BidWarning, CriterionKind
from optimizer.cli import EXIT_INVALID_INPUT, EXIT_OK, EXIT_USAGE, main
from optimizer.platforms import (
    PlatformRangeError,
    google_api_criteria,
    google_editor_rows,
    linkedin_rows,
    microsoft_rows,
    read_previous,
    write_bid_files,
)
from optimizer.scenario import Platform

GOLDEN = Path(__file__).parent / "golden" / "bids"
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
FILES = (
    "bids.csv",
    "bids/google_ads_editor.csv",
    "bids/google_ads_api.json",
    "bids/microsoft_ads_bulk.csv",
    "bids/linkedin_campaign_bids.csv",
)


def golden_settings() -> BidSettings:
    return BidSettings(
        linkedin_min_bid=5,
        linkedin_max_bid=30,
        campaigns=[
            {"channel_id": "google", "name": "Google - Demo requests"},
            {
                "channel_id": "bing",
                "name": "Bing - Demo requests",
                "platform_id": "123456789",
            },
            {"channel_id": "linkedin", "name": "LinkedIn - Named accounts"},
        ],
        profiles=[
            {"segment_id": "eval_t1", "kind": "job_function", "profile_id": "807"}
        ],
        rules=[
            rule("tier_1_up", "adjust", 25, when={"account_tier": "tier_1"}),
            rule("customers_out", "exclude", when={"lifecycle": "customer"}),
            rule(
                "mobile_down",
                "adjust",
                -30,
                applies_to="device",
                devices="mobile",
                when={"channel_id": ["google", "bing"]},
            ),
            rule(
                "tablet_off",
                "exclude",
                applies_to="device",
                devices="tablet",
                when={"channel_id": "google"},
            ),
        ],
    )


def golden_bids() -> BidPlan:
    return recommend_bids(world(golden_settings()), allocation())


# --- golden files ---------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_export_matches_its_golden_file(tmp_path: Path, name: str) -> None:
    write_bid_files(golden_bids(), tmp_path)

    assert (tmp_path / name).read_text(encoding="utf-8") == (GOLDEN / name).read_text(
        encoding="utf-8"
    )


def test_only_the_platforms_in_use_get_files(tmp_path: Path) -> None:
    written = write_bid_files(golden_bids(), tmp_path)

    assert [p.relative_to(tmp_path).as_posix() for p in written] == list(FILES)
    assert sorted(p.name for p in (tmp_path / "bids").iterdir()) == [
        "google_ads_api.json",
        "google_ads_editor.csv",
        "linkedin_campaign_bids.csv",
        "microsoft_ads_bulk.csv",
    ]


def test_bids_csv_says_which_rules_produced_each_adjustment() -> None:
    rows = (GOLDEN / "bids.csv").read_text(encoding="utf-8").splitlines()

    assert rows[0] == (
        "channel_id,campaign,platform,criterion_type,criterion_value,segment_id,"
        "status,adjustment_percent,multiplier,previous_percent,rules,contributions,"
        "reason"
    )
    assert (
        "bing,Bing - Demo requests,microsoft_ads,job_function,807,eval_t1,adjusted,"
        "47,1.4700,,tier_1_up,default x1.1765; tier_1_up x1.2500; rounding x0.9996,"
    ) in "\n".join(rows)


# --- range checks ----------------------------------------------------------------


def _one(bids: BidPlan, channel_id: str, value: str) -> Adjustment:
    return next(
        a for a in bids.adjustments if (a.channel_id, a.value) == (channel_id, value)
    )


def test_google_editor_refuses_an_audience_outside_minus_90_to_900() -> None:
    bids = golden_bids()
    outside = dataclasses.replace(_one(bids, "google", "eval_t1"), percent=-95)

    with pytest.raises(PlatformRangeError) as error:
        google_editor_rows([outside])

    assert str(error.value) == (
        "google_ads_editor.csv: campaign 'Google - Demo requests', audience eval_t1: "
        "got -95%; expected -90% to +900%, the Google Ads range for audiences. "
        "Recompute the bids with recommend_bids, which clamps them to the range."
    )


def test_google_api_refuses_a_modifier_outside_0_1_to_10() -> None:
    bids = golden_bids()
    outside = dataclasses.replace(_one(bids, "google", "mobile"), percent=950)

    with pytest.raises(PlatformRangeError) as error:
        google_api_criteria([outside])

    assert str(error.value) == (
        "google_ads_api.json: campaign 'Google - Demo requests', device mobile: got "
        "bid_modifier 10.5; expected 0.1 to 10 or 0 (opt out), the Google Ads API "
        "range. Recompute the bids with recommend_bids, which clamps them to the "
        "range."
    )


def test_microsoft_refuses_a_profile_exclusion_and_a_device_below_minus_100() -> None:
    bids = golden_bids()
    profile = dataclasses.replace(_one(bids, "bing", "807"), excluded=True)
    device = dataclasses.replace(_one(bids, "bing", "tablet"), percent=-120)

    with pytest.raises(PlatformRangeError) as excluded:
        microsoft_rows([profile])
    with pytest.raises(PlatformRangeError) as low:
        microsoft_rows([device])

    assert str(excluded.value) == (
        "microsoft_ads_bulk.csv: campaign 'Bing - Demo requests', job_function 807: "
        "got an exclusion; expected -90% to +900%, the Microsoft Advertising range "
        "for job function criteria. Recompute the bids with recommend_bids, which "
        "clamps them to the range."
    )
    assert str(low.value) == (
        "microsoft_ads_bulk.csv: campaign 'Bing - Demo requests', device tablet: got "
        "-120%; expected -100% to +900%, the Microsoft Advertising range for "
        "devices. Recompute the bids with recommend_bids, which clamps them to the "
        "range."
    )


def test_linkedin_refuses_a_bid_outside_its_limits() -> None:
    bids = golden_bids()
    above = dataclasses.replace(bids.campaign_bids[0], bid=31.0)

    with pytest.raises(PlatformRangeError) as error:
        linkedin_rows(dataclasses.replace(bids, campaign_bids=(above,)))

    assert str(error.value) == (
        "linkedin_campaign_bids.csv: campaign 'LinkedIn - Named accounts': got a bid "
        "of 31; expected more than 0 and within linkedin_min_bid to "
        "linkedin_max_bid. Recompute the bids with recommend_bids."
    )


def test_microsoft_criteria_without_a_campaign_id_warn(tmp_path: Path) -> None:
    settings = BidSettings(
        rules=[
            rule(
                "mobile_down",
                "adjust",
                -30,
                applies_to="device",
                devices="mobile",
                when={"channel_id": "bing"},
            )
        ]
    )
    bids = recommend_bids(world(settings), allocation())

    with pytest.warns(BidWarning) as caught:
        write_bid_files(bids, tmp_path)

    assert [str(w.message) for w in caught] == [
        "microsoft_ads_bulk.csv: campaign 'bing' has device or profile criterion "
        "rows, which Microsoft Advertising adds only with the campaign's id in "
        "Parent Id, and the scenario gives none; set platform_id in the "
        "[[bids.campaigns]] entry of 'bing'."
    ]


# --- reading exports back ------------------------------------------------------


def test_round_trip_through_every_export(tmp_path: Path) -> None:
    bids = golden_bids()
    write_bid_files(bids, tmp_path)

    def read(name: str) -> dict[tuple[str, str, str], float | None]:
        return {k: v.percent for k, v in read_previous(tmp_path / name).items()}

    def written(platform: Platform | None) -> dict[tuple[str, str, str], object]:
        return {
            a.key: None if a.excluded else a.percent
            for a in bids.adjustments
            if platform is None or a.platform is platform
        }

    assert read("bids.csv") == written(None)
    assert read("bids/microsoft_ads_bulk.csv") == written(Platform.MICROSOFT_ADS)
    # Editor gets bid adjustments only: excluded audiences are exclusions, and
    # an opted-out device reads back as its -100%.
    assert read("bids/google_ads_editor.csv") == {
        a.key: a.percent
        for a in bids.on(Platform.GOOGLE_ADS)
        if not (a.excluded and a.kind is CriterionKind.AUDIENCE)
    }


def test_previous_exports_hold_the_bids_still(tmp_path: Path) -> None:
    bids = golden_bids()
    write_bid_files(bids, tmp_path)
    previous = read_previous(tmp_path / "bids.csv")
    settings = golden_settings().model_copy(update={"max_change_percent": 1.0})

    again = recommend_bids(world(settings), allocation(), previous=previous)

    assert [(a.key, a.percent, a.excluded) for a in again.adjustments] == [
        (a.key, a.percent, a.excluded) for a in bids.adjustments
    ]
    assert again.find("google", "audience", "eval_t1").previous.describe() == "79"


def test_editor_headers_match_ignoring_case_and_spaces(tmp_path: Path) -> None:
    path = tmp_path / "editor.csv"
    path.write_text(
        "CAMPAIGN,ad_group,audience,BID MODIFIER,mobile bid modifier\n"
        "Google - Demo requests,,eval_t1,+35%,\n"
        "Google - Demo requests,,,,-20\n",
        encoding="utf-8",
    )

    previous = {k: v.percent for k, v in read_previous(path).items()}

    assert previous == {
        ("Google - Demo requests", "audience", "eval_t1"): 35,
        ("Google - Demo requests", "device", "mobile"): -20,
    }


def test_an_unknown_previous_file_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("name,value\na,1\n", encoding="utf-8")

    with pytest.raises(BidInputError) as error:
        read_previous(path)

    assert str(error.value) == (
        f"{path}, row 1: got the columns name, value; expected bids.csv, a Google "
        "Ads Editor CSV or a Microsoft Advertising bulk CSV."
    )


def test_a_bad_number_in_a_previous_file_names_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "editor.csv"
    path.write_text(
        "Campaign,Audience,Bid Modifier\nGoogle - Demo requests,eval_t1,lots\n",
        encoding="utf-8",
    )

    with pytest.raises(BidInputError) as error:
        read_previous(path)

    assert str(error.value) == (
        f"{path}, row 2, field 'Bid Modifier': got 'lots'; expected an adjustment in "
        "percent such as 25 or -40."
    )


# --- the command line ---------------------------------------------------------------


@pytest.fixture
def hand_check_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """hand_check copied into tmp_path (the cwd) and solved into plan/."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SCENARIOS / "hand_check", tmp_path / "hand_check")
    shutil.copy(SCENARIOS / "hand_check.toml", tmp_path)
    assert main(["run", "hand_check.toml", "--out", "plan", "-q"]) == EXIT_OK
    return Path("hand_check.toml"), Path("plan")


def test_run_writes_bids_and_the_bids_command_reproduces_them(
    hand_check_plan: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    toml, plan = hand_check_plan

    code = main(["bids", str(plan), "--scenario", str(toml), "--out", "again"])

    assert code == EXIT_OK
    assert capsys.readouterr().out == (
        "2 bid adjustments and 1 campaign bids; wrote bids.csv, "
        "bids/google_ads_editor.csv, bids/google_ads_api.json, "
        "bids/linkedin_campaign_bids.csv into again\n"
    )
    for name in ("bids.csv", *(f"bids/{p.name}" for p in (plan / "bids").iterdir())):
        assert (Path("again") / name).read_bytes() == (plan / name).read_bytes()
    # The hand check by hand: value per click 0.05 x 20,000 = 1,000 and
    # 0.05 x 4,000 = 200 on google_search; baseline (20,000 x 1,000 + 10,000
    # x 200) / 30,000 = 733.33, so +36% and -73%.
    assert (plan / "bids" / "google_ads_editor.csv").read_text() == (
        "Campaign,Ad group,Audience,Bid Modifier,Desktop Bid Modifier,"
        "Mobile Bid Modifier,Tablet Bid Modifier\n"
        "google_search,,evaluation_tier_1,36,,,\n"
        "google_search,,evaluation_tier_2,-73,,,\n"
    )


def test_bids_command_reads_a_previous_export(
    hand_check_plan: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    toml, plan = hand_check_plan
    previous = Path("previous.csv")
    previous.write_text(
        "Campaign,Audience,Bid Modifier\ngoogle_search,evaluation_tier_1,10\n",
        encoding="utf-8",
    )
    Path(toml).write_text(
        Path(toml).read_text() + "\n[bids]\nmax_change_percent = 20\n",
        encoding="utf-8",
    )

    arguments = ["bids", str(plan), "--scenario", str(toml)]
    code = main([*arguments, "--previous", str(previous), "--out", "next"])

    assert code == EXIT_OK
    rows = Path("next/bids/google_ads_editor.csv").read_text().splitlines()
    assert rows[1:] == [
        "google_search,,evaluation_tier_1,30,,,",
        "google_search,,evaluation_tier_2,-73,,,",
    ]


def test_bids_command_refuses_an_invalid_rule_with_exit_3(
    hand_check_plan: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    toml, plan = hand_check_plan
    Path(toml).write_text(
        Path(toml).read_text()
        + '\n[bids]\n[[bids.rules]]\nid = "search_up"\nowner = "me"\n'
        'rationale = "test"\naction = "adjust"\npercent = 10\n'
        'when = { channel_id = "google_serch" }\n',
        encoding="utf-8",
    )
    capsys.readouterr()

    code = main(["bids", str(plan), "--scenario", str(toml), "--out", "next"])

    assert code == EXIT_INVALID_INPUT
    assert capsys.readouterr().err == (
        "error: invalid input:\nhand_check.toml, [[bids.rules]] 'search_up', field "
        "'when.channel_id': got 'google_serch'; expected a channel_id of the "
        "channels table (did you mean 'google_search'?).\n"
    )
    assert not Path("next").exists()


def test_bids_command_will_not_replace_the_plan(
    hand_check_plan: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    toml, plan = hand_check_plan
    capsys.readouterr()

    code = main(["bids", str(plan), "--scenario", str(toml), "--out", str(plan)])

    assert code == EXIT_USAGE
    assert capsys.readouterr().err == (
        "error: --out plan is the plan's folder, which the bids would replace; "
        "choose another folder.\n"
    )
    assert (plan / "allocation.csv").exists()


def test_bids_help_has_an_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "optimizer", "bids", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == EXIT_OK
    assert (
        "example:\n  optimizer bids out/demo --scenario scenarios/demo_pipeline.toml "
        "--previous out/last/bids.csv --out out/bids\n"
    ) in result.stdout


def test_demo_run_writes_every_platform_file_without_warnings(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-W", "error", "-m", "optimizer", "run"),
            *(str(SCENARIOS / "demo_pipeline.toml"), "--out", "demo", "-q"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == EXIT_OK, result.stderr
    assert result.stderr == ""
    exports = tmp_path / "demo" / "bids"
    assert sorted(p.name for p in exports.iterdir()) == [
        "google_ads_api.json",
        "google_ads_editor.csv",
        "linkedin_campaign_bids.csv",
        "microsoft_ads_bulk.csv",
    ]
    api = json.loads((exports / "google_ads_api.json").read_text())
    mobile = [c for c in api["campaign_criteria"] if c.get("device") == "MOBILE"]
    assert mobile == [
        {
            "campaign": "google_search",
            "criterion_type": "DEVICE",
            "device": "MOBILE",
            "bid_modifier": 0.7,
        }
    ]
