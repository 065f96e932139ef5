"""Data quality and drift on copies of the hand-check scenario.

Its numbers, from scenarios/hand_check/ (segments.csv rows 2-3, responses.csv
rows 2-5), give every expected value below by hand. Cells as cpc, conversion
rate and monthly clicks, with their responses.csv row:

    segment             google_search             linkedin
    evaluation_tier_1   10, 0.05, 2,000 (row 2)   10, 0.02, 3,000 (row 3)
    evaluation_tier_2    4, 0.05, 5,000 (row 4)    8, 0.02, 5,000 (row 5)

so tier_1 reaches 5,000 clicks for 50,000 a month and tier_2 10,000 clicks
for 60,000. Both segments are at the evaluation stage, with opportunity rates
0.2 and 0.1 and win rates 0.25.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import optimizer
from optimizer.cli import EXIT_INVALID_INPUT, EXIT_OK, EXIT_USAGE, main
from optimizer.errors import ScenarioError
from optimizer.quality import (
    DataQualityWarning,
    Finding,
    Level,
    QualitySettings,
    check_quality,
    missing_values,
    read_previous_run,
    segment_volumes,
    warn_about,
)

ROOT = Path(__file__).resolve().parents[1]
TOML = "hand_check.toml"
SEGMENTS = "hand_check/segments.csv"
RESPONSES = "hand_check/responses.csv"


def warning(check: str, where: str, message: str) -> Finding:
    return Finding(Level.WARNING, check, where, message)


def error(check: str, where: str, message: str) -> Finding:
    return Finding(Level.ERROR, check, where, message)


def append(hand_check, text: str) -> None:  # type: ignore[no-untyped-def]
    """Add TOML at the end of the hand-check scenario file."""
    hand_check.write(TOML, Path(TOML).read_bytes() + b"\n" + text.encode())


def test_the_library_can_emit_warnings_as_data_quality_warnings() -> None:
    found = [warning("volume", "here", "a finding."), error("rates", "there", "bad.")]
    with pytest.warns(DataQualityWarning) as caught:
        warn_about(found)
    assert [str(w.message) for w in caught] == ["here: a finding."]


def findings(**options: object) -> list[Finding]:
    return check_quality(optimizer.load_scenario(TOML), **options)  # type: ignore[arg-type]


def test_the_hand_check_scenario_is_clean(hand_check) -> None:
    assert findings() == []


def test_segment_volumes_are_reach_and_spend_at_saturation(hand_check) -> None:
    volumes = segment_volumes(optimizer.load_scenario(TOML))
    assert volumes == {
        "evaluation_tier_1": (pytest.approx(5_000), pytest.approx(50_000)),
        "evaluation_tier_2": (pytest.approx(10_000), pytest.approx(60_000)),
    }


# --- missing values ----------------------------------------------------------


def test_a_partly_empty_column_is_counted_and_its_rows_named(hand_check) -> None:
    hand_check.edit(SEGMENTS, "evaluation,tier_2,", "evaluation,,")

    assert findings() == [
        warning(
            "missing_values",
            f"{SEGMENTS}, column 'account_tier'",
            "1 of 2 segments have no account_tier (row 3); fill them in, so that "
            "the rules, thresholds and reports that use account_tier see every row.",
        )
    ]
    table = missing_values(optimizer.load_scenario(TOML)).set_index("column")
    assert table.loc["account_tier", "missing"] == 1
    assert table.loc["account_tier", "missing_rows"] == (3,)
    # No segment has a market: a tag the scenario does not use, not reported.
    assert table.loc["market", "missing"] == 2


# --- volume and rates --------------------------------------------------------


def test_volumes_outside_the_stage_range_are_flagged(hand_check) -> None:
    append(
        hand_check,
        "[quality]\nvolume_range = { evaluation = [6000, 9000] }\n"
        "spend_range = { evaluation = [55000, 70000] }\n",
    )
    remedy = "; check its responses, or change the range if the segment really is "
    assert findings() == [
        warning(
            "volume",
            f"{SEGMENTS}, row 2",
            "segment evaluation_tier_1 can reach 5,000 clicks a month, below the "
            f"evaluation range of 6,000 to 9,000 in [quality] volume_range{remedy}"
            "this size.",
        ),
        warning(
            "volume",
            f"{SEGMENTS}, row 2",
            "segment evaluation_tier_1 can reach 50,000.00 USD a month, below the "
            "evaluation range of 55,000.00 to 70,000.00 in [quality] spend_range"
            f"{remedy}this size.",
        ),
        warning(
            "volume",
            f"{SEGMENTS}, row 3",
            "segment evaluation_tier_2 can reach 10,000 clicks a month, above the "
            f"evaluation range of 6,000 to 9,000 in [quality] volume_range{remedy}"
            "this size.",
        ),
    ]


def test_a_range_includes_its_ends(hand_check) -> None:
    append(hand_check, "[quality]\nvolume_range = { evaluation = [5000, 10000] }\n")
    assert findings() == []


def test_a_segment_without_volume_is_flagged(hand_check) -> None:
    hand_check.edit(RESPONSES, "4,0.05,5000", "4,0.05,0")
    hand_check.edit(RESPONSES, "8,0.02,5000", "8,0.02,0")
    assert findings() == [
        warning(
            "volume",
            f"{SEGMENTS}, row 3",
            "segment evaluation_tier_2 can reach no volume (no responses, or none "
            "with room to spend); give it a response row, or remove the segment.",
        )
    ]


def test_a_rate_far_from_its_stage_range_is_flagged(hand_check) -> None:
    hand_check.edit(RESPONSES, "10,0.05,2000", "10,0.5,2000")
    hand_check.edit(SEGMENTS, "tier_1,evaluation,0.2,", "tier_1,evaluation,0.9,")
    assert findings() == [
        warning(
            "rates",
            f"{SEGMENTS}, row 2",
            "field 'opportunity_rate': got 0.9 (90%), outside the typical "
            "evaluation-stage range of 5% to 35% ([quality] rate_ranges); check the "
            "value, or declare the range this segment really has.",
        ),
        warning(
            "rates",
            f"{RESPONSES}, row 2",
            "field 'conversion_rate': got 0.5 (50%), outside the typical "
            "evaluation-stage range of 0.5% to 6% ([quality] rate_ranges); check "
            "the value, or declare the range this segment really has.",
        ),
    ]


def test_declared_rate_ranges_replace_that_rates_defaults(hand_check) -> None:
    append(
        hand_check,
        "[quality]\n"
        "rate_ranges = { conversion_rate = { evaluation = [0.03, 0.04] } }\n",
    )
    found = findings()
    # Every cell is outside [3%, 4%]: 5% (rows 2 and 4) and 2% (rows 3 and 5).
    assert [f.where for f in found] == [
        f"{RESPONSES}, row {row}" for row in (2, 3, 4, 5)
    ]
    settings = optimizer.load_scenario(TOML).quality
    assert settings.rate_ranges["win_rate"] == {
        "research": (0.05, 0.45),
        "evaluation": (0.08, 0.5),
        "decision": (0.1, 0.6),
    }


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            "volume_range = { evaluaton = [1, 2] }",
            f"{TOML}, [quality], field 'volume_range': got 'evaluaton'; expected a "
            "valid value (a stage: one of research, evaluation, decision).",
        ),
        (
            "rate_ranges = { win_rate = { decision = [0.6, 0.1] } }",
            f"{TOML}, [quality], field 'rate_ranges': got '[0.6, 0.1]'; expected a "
            "valid value (a range [low, high] with low at most high, not 0.6 > 0.1).",
        ),
        (
            "max_drift = 0",
            f"{TOML}, [quality], field 'max_drift': got '0'; expected the share an "
            "input may move from its previous value, > 0.",
        ),
    ],
)
def test_invalid_quality_settings_are_refused(hand_check, table, problem) -> None:
    append(hand_check, f"[quality]\n{table}\n")
    assert hand_check.problems() == (problem,)


def test_default_settings() -> None:
    settings = QualitySettings()
    assert settings.max_drift == 0.25
    assert settings.volume_range == {} and settings.spend_range == {}
    assert settings.rate_ranges["conversion_rate"]["research"] == (0.001, 0.03)


# --- thresholds and declared values ------------------------------------------

THRESHOLD = '[[thresholds]]\nid = "t"\naction = "review"\nowner = "Planning lead"\n'
ENTRY = f"{TOML}, [[thresholds]] entry 1"


def test_a_threshold_on_an_unknown_channel_is_an_error(hand_check) -> None:
    append(hand_check, THRESHOLD + 'metric = "cpa"\nabove = 1\nchannel = "linkdin"\n')
    assert findings() == [
        error(
            "thresholds",
            ENTRY,
            "field 'channel': got 'linkdin'; expected a channel_id of the channels "
            "table (did you mean 'linkedin'?).",
        )
    ]


def test_a_threshold_that_watches_no_segment_is_an_error(hand_check) -> None:
    append(
        hand_check,
        THRESHOLD + 'metric = "cpa"\nabove = 1\nwhere = { account_tier = "tier_3" }\n',
    )
    assert findings() == [
        error(
            "thresholds",
            ENTRY,
            "field 'where': got { account_tier = 'tier_3' }; expected conditions "
            "that at least one segment meets.",
        )
    ]


def test_declared_tag_values_are_checked_both_ways(hand_check) -> None:
    append(
        hand_check,
        '[segmentation]\nvalues = { account_tier = ["tier_1", "tier_2", "tier_3"] }\n'
        + THRESHOLD
        + 'metric = "cpa"\nabove = 1\nwhere = { account_tier = "tier_9" }\n',
    )
    found = findings()
    assert found == [
        error(
            "thresholds",
            ENTRY,
            "field 'where': got account_tier 'tier_9'; expected one of the declared "
            "values tier_1, tier_2, tier_3 (did you mean 'tier_3'?).",
        ),
        error(
            "thresholds",
            ENTRY,
            "field 'where': got { account_tier = 'tier_9' }; expected conditions "
            "that at least one segment meets.",
        ),
        warning(
            "tag_values",
            f"{TOML}, [segmentation] values",
            "the declared account_tier values tier_3 are used by no segment; remove "
            "them, or add the segments they stand for.",
        ),
    ]


def test_errors_come_before_warnings(hand_check) -> None:
    hand_check.edit(SEGMENTS, "evaluation,tier_2,", "evaluation,,")
    append(hand_check, THRESHOLD + 'metric = "cpa"\nabove = 1\nchannel = "tv"\n')
    assert [f.level for f in findings()] == [Level.ERROR, Level.WARNING]


# --- drift -------------------------------------------------------------------


def drifted(hand_check) -> optimizer.Scenario:  # type: ignore[no-untyped-def]
    """The previous version; the files then move: cpc +30% on row 2, +10% on
    row 4, the budget +40% and a new LinkedIn cap."""
    previous = optimizer.load_scenario(TOML)
    hand_check.edit(RESPONSES, "10,0.05,2000", "13,0.05,2000")
    hand_check.edit(RESPONSES, "4,0.05,5000", "4.4,0.05,5000")
    hand_check.edit(TOML, "total = 50000", "total = 70000")
    append(
        hand_check, '[[constraints]]\nscope = "channel"\nid = "linkedin"\nmax = 45000\n'
    )
    return previous


def test_drift_flags_what_moved_more_than_the_limit(hand_check) -> None:
    previous = drifted(hand_check)
    confirm = "; confirm the new value before the plan goes live."
    assert findings(previous=previous) == [
        warning(
            "drift",
            f"{TOML}, [budget]",
            "[budget] changed since the previous version: total 50,000 -> 70,000 "
            f"(+40%), more than the 25% drift limit{confirm}",
        ),
        warning(
            "drift",
            f"{TOML}, [[constraints]] entry 2",
            "rule channel linkedin added: max 45,000, since the previous version; "
            "check it before the plan goes live.",
        ),
        warning(
            "drift",
            f"{RESPONSES}, row 2",
            "response evaluation_tier_1/google_search changed since the previous "
            f"version: cpc 10 -> 13 (+30%), more than the 25% drift limit{confirm}",
        ),
    ]


def test_a_move_equal_to_the_limit_is_not_drift(hand_check) -> None:
    previous = drifted(hand_check)
    found = findings(previous=previous, max_drift=0.3)
    assert [f.where for f in found] == [
        f"{TOML}, [budget]",
        f"{TOML}, [[constraints]] entry 2",
    ]
    # Rules are decisions: any change is listed, whatever the limit.
    found = findings(previous=previous, max_drift=0.5)
    assert [f.where for f in found] == [f"{TOML}, [[constraints]] entry 2"]


def test_drift_against_a_run_folder_compares_what_it_recorded(hand_check) -> None:
    optimizer.write_plan(optimizer.optimize(optimizer.load_scenario(TOML)), "run")
    drifted(hand_check)
    since = "since the run in run"
    file_remedy = (
        "; pass the previous scenario's TOML file as --previous to see which "
        "values moved."
    )
    assert findings(previous=read_previous_run("run")) == [
        warning(
            "drift",
            f"{TOML}, [budget]",
            f"[budget] total moved from 50,000.00 to 70,000.00 (40%) {since}, more "
            "than the 25% drift limit; confirm the new budget before the plan goes "
            "live.",
        ),
        warning(
            "drift",
            TOML,
            f"the input file changed (its SHA-256 differs) {since}{file_remedy}",
        ),
        warning(
            "drift",
            RESPONSES,
            f"the input file changed (its SHA-256 differs) {since}{file_remedy}",
        ),
    ]


def test_a_folder_without_a_summary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as excinfo:
        read_previous_run(tmp_path)
    assert excinfo.value.problems == (
        f"{tmp_path / 'summary.json'}: got no file at this path; expected the "
        "summary.json of a previous run (a folder written by optimizer run), or "
        "pass the previous scenario's TOML file.",
    )


def test_the_demo_has_moved_twice_since_its_first_version() -> None:
    old = optimizer.load_scenario(ROOT / "scenarios" / "demo_pipeline_v1.toml")
    new = optimizer.load_scenario(ROOT / "scenarios" / "demo_pipeline.toml")
    assert check_quality(old) == [] and check_quality(new) == []

    found = check_quality(new, old)

    # The budget (+9%) and the Google CPCs (+10%) stay within the 25% limit.
    assert [(f.check, f.message.split(":")[0]) for f in found] == [
        ("drift", "rule month 2027-12 added"),
        (
            "drift",
            "segment evaluation_open_opportunity_tier_1 changed since the previous "
            "version",
        ),
    ]
    assert "win_rate 0.2 -> 0.26 (+30%)" in found[1].message


# --- the command line --------------------------------------------------------


def test_check_lists_warnings_and_exits_0(hand_check, capsys) -> None:
    shutil.copytree("hand_check", "previous")
    text = Path(TOML).read_text().replace('"hand_check/', '"previous/')
    Path("previous.toml").write_text(text)
    drifted(hand_check)

    assert main(["check", TOML, "--previous", "previous.toml"]) == EXIT_OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == (
        f"{TOML}: no errors, 3 warnings, against previous.toml (drift limit 25%)"
    )
    assert lines[1].startswith(f"warning [drift] {TOML}, [budget]: [budget] changed")
    assert len(lines) == 4


def test_check_exits_3_on_an_error(hand_check, capsys) -> None:
    append(hand_check, THRESHOLD + 'metric = "cpa"\nabove = 1\nchannel = "tv"\n')

    assert main(["check", TOML]) == EXIT_INVALID_INPUT
    captured = capsys.readouterr()
    assert captured.out == f"{TOML}: 1 error, no warnings\n"
    assert captured.err == (
        f"error: invalid input:\n{ENTRY}: field 'channel': got 'tv'; expected a "
        "channel_id of the channels table.\n"
    )


def test_run_stops_on_an_error_and_writes_nothing(hand_check, capsys) -> None:
    append(hand_check, THRESHOLD + 'metric = "cpa"\nabove = 1\nchannel = "tv"\n')
    assert main(["run", TOML, "--out", "plan"]) == EXIT_INVALID_INPUT
    assert "field 'channel': got 'tv'" in capsys.readouterr().err
    assert not Path("plan").exists()


# The command line shows each DataQualityWarning as a "warning:" line.
@pytest.mark.filterwarnings("always::optimizer.quality.DataQualityWarning")
def test_run_warns_and_records_the_findings(hand_check, capsys) -> None:
    hand_check.edit(SEGMENTS, "evaluation,tier_2,", "evaluation,,")

    assert main(["run", TOML, "--out", "plan", "-q"]) == EXIT_OK

    message = (
        "1 of 2 segments have no account_tier (row 3); fill them in, so that the "
        "rules, thresholds and reports that use account_tier see every row."
    )
    where = f"{SEGMENTS}, column 'account_tier'"
    assert capsys.readouterr().err == f"warning: {where}: {message}\n"
    summary = json.loads(Path("plan/summary.json").read_text())
    assert summary["data_quality"] == [
        {
            "level": "warning",
            "check": "missing_values",
            "where": where,
            "message": message,
        }
    ]


def test_a_clean_run_records_an_empty_list(hand_check) -> None:
    assert main(["run", TOML, "--out", "plan", "-q"]) == EXIT_OK
    assert json.loads(Path("plan/summary.json").read_text())["data_quality"] == []


@pytest.mark.parametrize("value", ["0", "-0.1", "lots"])
def test_max_drift_must_be_a_positive_share(hand_check, value, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", TOML, "--max-drift", value])
    assert exit_info.value.code == EXIT_USAGE
    assert (
        f"argument --max-drift: got {value!r}; expected a share greater than 0, "
        "such as 0.25" in capsys.readouterr().err
    )


def test_check_has_help_with_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example:\n  optimizer check scenarios/demo_pipeline.toml --previous" in out
    assert "exit codes:" in out
