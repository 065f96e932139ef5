"""Reading a scenario: every bad input is refused with one complete message.

Each test copies a valid scenario, changes one thing and checks the whole
message: the file, the row (the header is row 1; in TOML the table), the
field, the value found and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.cli import EXIT_INVALID_INPUT, main
from optimizer.errors import ScenarioError
from optimizer.reading import MAX_PROBLEMS, ScenarioFile, load_scenario
from optimizer.scenario import ConstraintRule, CurveKind, Segment

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SEGMENTS = "hand_check/segments.csv"
CHANNELS = "hand_check/channels.csv"
RESPONSES = "hand_check/responses.csv"
TOML = "hand_check.toml"

# The lists of known names are read from the models: a test per new field
# would only repeat the model.
SEGMENT_COLUMNS = ", ".join(name for name in Segment.model_fields if name != "origin")
TOML_TABLES = ", ".join(ScenarioFile.model_fields)
REQUIRED_SEGMENT_COLUMNS = (
    "segment_id, stage, opportunity_rate, deal_size, win_rate, sales_cycle_days"
)


# --- valid input ----------------------------------------------------------------


def test_the_demo_scenario_loads_with_all_its_rows():
    scenario = load_scenario(SCENARIOS / "demo_pipeline.toml")

    assert len(scenario.segments) == 24
    assert len(scenario.channels) == 6
    assert len(scenario.responses) == 86
    assert len(scenario.constraints) == 6


def test_the_hand_check_copy_loads_unchanged(hand_check):
    scenario = load_scenario(hand_check.toml)

    assert [s.segment_id for s in scenario.segments] == [
        "evaluation_tier_1",
        "evaluation_tier_2",
    ]
    assert scenario.responses[0].curve is CurveKind.LINEAR


def test_scenario_error_is_a_value_error(hand_check):
    hand_check.edit(SEGMENTS, "0.2,100000,", "0.2,-100000,")

    assert issubclass(ScenarioError, ValueError)
    with pytest.raises(ValueError) as excinfo:
        load_scenario(hand_check.toml)

    assert type(excinfo.value) is ScenarioError
    assert str(excinfo.value) == (
        f"{SEGMENTS}, row 2, field 'deal_size': got '-100000'; expected an amount "
        "of at least 0 per deal."
    )


def test_all_problems_of_a_table_are_reported_one_per_line(hand_check):
    hand_check.edit(SEGMENTS, "0.1,40000,0.25,90", "1.1,40000,0.25,-90")

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 3, field 'opportunity_rate': got '1.1'; expected a share "
        "from 0 to 1 of conversions that become opportunities.",
        f"{SEGMENTS}, row 3, field 'sales_cycle_days': got '-90'; expected a number "
        "of days from 0 to 3650.",
    )


def test_cross_table_problems_are_reported_one_per_line(hand_check):
    # The checks across tables arrive from pydantic as one error; each problem
    # must still be its own entry, not lines glued into one string.
    hand_check.edit(RESPONSES, "evaluation_tier_2,linkedin,", "evaluation_tier_9,bing,")

    assert hand_check.problems() == (
        f"{RESPONSES}, row 5, field 'segment_id': got 'evaluation_tier_9'; expected "
        "a segment_id defined in the segments table (did you mean "
        "'evaluation_tier_2'?).",
        f"{RESPONSES}, row 5, field 'channel_id': got 'bing'; expected a channel_id "
        "defined in the channels table.",
    )


# --- names: columns and keys ------------------------------------------------------


def test_a_misspelt_column_suggests_the_known_name(hand_check):
    hand_check.edit(SEGMENTS, ",deal_size,", ",deal_sise,")

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 1, column 6: got 'deal_sise'; expected one of "
        f"{SEGMENT_COLUMNS} (did you mean 'deal_size'?).",
        f"{SEGMENTS}, row 1: got no column 'deal_size'; expected a header with the "
        f"required columns {REQUIRED_SEGMENT_COLUMNS}.",
    )


def test_a_missing_required_column(hand_check):
    hand_check.write(
        SEGMENTS,
        b"segment_id,stage,account_tier,intent,opportunity_rate,deal_size,"
        b"sales_cycle_days\n"
        b"evaluation_tier_1,evaluation,tier_1,evaluation,0.2,100000,120\n"
        b"evaluation_tier_2,evaluation,tier_2,evaluation,0.1,40000,90\n",
    )

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 1: got no column 'win_rate'; expected a header with the "
        f"required columns {REQUIRED_SEGMENT_COLUMNS}.",
    )


def test_a_column_given_twice(hand_check):
    hand_check.edit(
        CHANNELS, "channel_id,platform,name", "channel_id,platform,platform"
    )

    assert hand_check.problems() == (
        f"{CHANNELS}, row 1, column 3: got 'platform' again (also column 2); "
        "expected each column once.",
    )


def test_an_unknown_key_in_a_toml_table(hand_check):
    hand_check.edit(TOML, "total = 50000", "totl = 50000")

    assert hand_check.problems() == (
        f"{TOML}, [budget], field 'total': got no value; expected a budget greater "
        "than 0.",
        f"{TOML}, [budget]: got unknown field 'totl'; expected one of total, spend "
        "(did you mean 'total'?).",
    )


def test_an_unknown_toml_table(hand_check):
    hand_check.edit(TOML, "[budget]", "[budgt]")

    assert hand_check.problems() == (
        f"{TOML}, [budget]: got no such table; expected a [budget] table with total.",
        f"{TOML}: got unknown table 'budgt'; expected one of {TOML_TABLES} (did "
        "you mean 'budget'?).",
    )


def test_an_unknown_key_in_a_constraints_entry(hand_check):
    hand_check.edit(TOML, "max = 30000", "maxx = 30000")

    assert hand_check.problems() == (
        f"{TOML}, [[constraints]] entry 1: got unknown field 'maxx'; expected one "
        f"of {', '.join(ConstraintRule.model_fields)} (did you mean 'max'?).",
    )


def test_a_constraints_entry_without_a_bound(hand_check):
    hand_check.edit(TOML, "max = 30000\n", "")

    assert hand_check.problems() == (
        f"{TOML}, [[constraints]] entry 1: got none of min, max, fixed, min_share, "
        "max_share; expected at least one of them.",
    )


def test_a_toml_value_out_of_range(hand_check):
    hand_check.edit(TOML, "months = 1", "months = 0")

    assert hand_check.problems() == (
        f"{TOML}, [plan], field 'months': got '0'; expected a whole number of "
        "months, 1 to 36.",
    )


def test_a_misspelt_choice_suggests_the_known_one(hand_check):
    hand_check.edit(
        SEGMENTS, "evaluation_tier_2,evaluation,", "evaluation_tier_2,evalution,"
    )

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 3, field 'stage': got 'evalution'; expected one of "
        "'research', 'evaluation', 'decision' (did you mean 'evaluation'?).",
    )


# --- values -----------------------------------------------------------------------


def test_a_negative_number(hand_check):
    hand_check.edit(SEGMENTS, "0.2,100000,", "0.2,-100000,")

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 2, field 'deal_size': got '-100000'; expected an amount "
        "of at least 0 per deal.",
    )


def test_nan(hand_check):
    hand_check.edit(SEGMENTS, "0.2,100000,", "0.2,nan,")

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 2, field 'deal_size': got 'nan'; expected a finite "
        "number, an amount of at least 0 per deal.",
    )


def test_infinity(hand_check):
    hand_check.edit(SEGMENTS, "0.2,100000,", "0.2,inf,")

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 2, field 'deal_size': got 'inf'; expected a finite "
        "number, an amount of at least 0 per deal.",
    )


def test_text_where_a_number_belongs(hand_check):
    hand_check.edit(SEGMENTS, "0.2,100000,", "0.2,100k,")

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 2, field 'deal_size': got '100k'; expected an amount of "
        "at least 0 per deal.",
    )


def test_an_empty_required_value(hand_check):
    hand_check.edit(SEGMENTS, "0.2,100000,", "0.2,,")

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 2, field 'deal_size': got an empty cell; expected an "
        "amount of at least 0 per deal.",
    )


def test_a_conversion_rate_above_one(hand_check):
    hand_check.edit(RESPONSES, "10,0.02,3000", "10,1.5,3000")

    assert hand_check.problems() == (
        f"{RESPONSES}, row 3, field 'conversion_rate': got '1.5'; expected a "
        "conversion rate from 0 to 1.",
    )


def test_a_conversion_rate_below_zero(hand_check):
    hand_check.edit(RESPONSES, "10,0.02,3000", "10,-0.02,3000")

    assert hand_check.problems() == (
        f"{RESPONSES}, row 3, field 'conversion_rate': got '-0.02'; expected a "
        "conversion rate from 0 to 1.",
    )


def test_an_identifier_with_a_space(hand_check):
    hand_check.edit(CHANNELS, "linkedin,linkedin,", "linked in,linkedin,")

    assert hand_check.problems() == (
        f"{CHANNELS}, row 3, field 'channel_id': got 'linked in'; expected an "
        "identifier of letters, digits, '_', '.' or '-'.",
    )


def test_a_linear_curve_without_cpc(hand_check):
    hand_check.edit(RESPONSES, "linkedin,linear,10,0.02", "linkedin,linear,,0.02")

    assert hand_check.problems() == (
        f"{RESPONSES}, row 3, field 'cpc': got an empty cell; expected a cost per "
        "click > 0 (a linear curve needs cpc, conversion_rate and monthly_clicks).",
    )


def test_a_saturating_curve_that_fills_a_linear_parameter(hand_check):
    hand_check.edit(
        RESPONSES,
        "evaluation_tier_2,linkedin,linear,8,0.02,5000,,",
        "evaluation_tier_2,linkedin,saturating,8,0.02,,10,8000",
    )

    assert hand_check.problems() == (
        f"{RESPONSES}, row 5, field 'conversion_rate': got '0.02'; expected an empty "
        "cell (a saturating curve uses only max_conversions and scale, and "
        "optionally cpc).",
    )


def test_a_saturating_curve_may_carry_a_cpc_for_clicks(hand_check):
    hand_check.edit(
        RESPONSES,
        "evaluation_tier_2,linkedin,linear,8,0.02,5000,,",
        "evaluation_tier_2,linkedin,saturating,8,,,10,8000",
    )

    scenario = load_scenario(TOML)
    cell = next(r for r in scenario.responses if r.cell_id.endswith("_2/linkedin"))
    assert cell.cpc == 8


def test_a_points_curve_that_fills_a_parameter(copy_scenario):
    infeasible = copy_scenario("infeasible")
    infeasible.edit(
        "infeasible/responses.csv",
        "decision_tier_1,abm_platform,points,,,,,",
        "decision_tier_1,abm_platform,points,,,,12,",
    )

    assert infeasible.problems() == (
        "infeasible/responses.csv, row 2, field 'max_conversions': got '12'; expected "
        "an empty cell (a points curve takes its spend and conversions from the "
        "points table, and optionally cpc).",
    )


# --- the shape of the files -----------------------------------------------------


def test_an_empty_table(hand_check):
    hand_check.write(SEGMENTS, b"")

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 1: got an empty file; expected a header row with at "
        f"least the columns {REQUIRED_SEGMENT_COLUMNS}, then at least one data "
        "row.",
    )


def test_a_table_with_only_a_header(hand_check):
    hand_check.write(
        SEGMENTS,
        b"segment_id,stage,account_tier,intent,opportunity_rate,deal_size,"
        b"win_rate,sales_cycle_days\n",
    )

    assert hand_check.problems() == (
        f"{SEGMENTS}, row 2: got no data rows under the header; expected at least "
        "one data row.",
    )


def test_a_row_with_more_values_than_the_header(hand_check):
    hand_check.edit(CHANNELS, "Google Ads search", "Google Ads, search")

    assert hand_check.problems() == (
        f"{CHANNELS}, row 2: got 4 values, more than the 3 columns of the header "
        "(extra: 'search'); expected at most one value per column (quote a value "
        "that holds a comma).",
    )


def test_a_quoted_cell_over_two_lines_is_still_one_row(hand_check):
    # The bad row starts on line 3 and ends on line 4; it is spreadsheet row 3.
    hand_check.edit(
        CHANNELS,
        "linkedin,linkedin,LinkedIn sponsored content",
        'linkedin,linkdin,"LinkedIn\nsponsored content"',
    )

    assert hand_check.problems() == (
        f"{CHANNELS}, row 3, field 'platform': got 'linkdin'; expected one of "
        "'google_ads', 'microsoft_ads', 'linkedin', 'other' (did you mean "
        "'linkedin'?).",
    )


def test_a_table_that_is_not_utf8(hand_check):
    hand_check.edit(CHANNELS, b"Google Ads search", b"Recherche Google (r\xe9seau)")

    assert hand_check.problems() == (
        f"{CHANNELS}, row 2, field 'name': got 'Recherche Google (r\\xe9seau)'; "
        "expected UTF-8 text (byte 0xe9 is not UTF-8: save the file as 'CSV "
        "UTF-8').",
    )


def test_a_scenario_file_that_is_not_utf8(hand_check):
    hand_check.edit(TOML, b'currency = "USD"', b'currency = "\xa3"')

    assert hand_check.problems() == (
        f"{TOML}, line 34: got 'currency = \"\\xa3\"'; expected UTF-8 text (byte "
        "0xa3 is not UTF-8: save the file as UTF-8).",
    )


def test_a_toml_syntax_error_names_the_line(hand_check):
    hand_check.edit(TOML, "total = 50000", "total = 50 000")

    assert hand_check.problems() == (
        f"{TOML}, line 37, column 12: got 'total = 50 000'; expected valid TOML "
        "(expected newline or end of document after a statement).",
    )


def test_a_missing_table_file(hand_check):
    hand_check.edit(TOML, '"hand_check/channels.csv"', '"hand_check/chanels.csv"')

    assert hand_check.problems() == (
        f"{TOML}, [tables], field 'channels': got 'hand_check/chanels.csv', but "
        "there is no file hand_check/chanels.csv; expected the path of the "
        "channels table, relative to the folder of hand_check.toml (did you mean "
        "'hand_check/channels.csv'?).",
    )


def test_a_missing_scenario_file(copy_scenario):
    copy_scenario("hand_check")

    with pytest.raises(ScenarioError) as excinfo:
        load_scenario("hand_chek.toml")

    assert str(excinfo.value) == (
        "hand_chek.toml: got no file at this path; expected the scenario's TOML file."
    )


def test_many_problems_are_cut_with_a_count(hand_check):
    rows = "".join(f"channel_{n},nowhere,\n" for n in range(MAX_PROBLEMS + 3))
    hand_check.write(CHANNELS, f"channel_id,platform,name\n{rows}".encode())

    problems = hand_check.problems()

    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[0] == (
        f"{CHANNELS}, row 2, field 'platform': got 'nowhere'; expected one of "
        "'google_ads', 'microsoft_ads', 'linkedin', 'other'."
    )
    assert problems[-1] == f"{CHANNELS}: 3 more problems not shown; fix these first."


# --- the command line -------------------------------------------------------------


def test_validate_exits_3_and_prints_the_problem_on_stderr(hand_check, capsys):
    hand_check.edit(SEGMENTS, "0.2,100000,", "0.2,-100000,")

    code = main(["validate", str(hand_check.toml)])

    captured = capsys.readouterr()
    assert code == EXIT_INVALID_INPUT == 3
    assert captured.out == ""
    assert captured.err == (
        "error: invalid input:\n"
        f"{SEGMENTS}, row 2, field 'deal_size': got '-100000'; expected an amount "
        "of at least 0 per deal.\n"
    )


def test_validate_exits_0_on_the_unchanged_copy(hand_check, capsys):
    code = main(["validate", str(hand_check.toml)])

    assert code == 0
    assert capsys.readouterr().out.startswith("hand_check.toml: valid; 2 segments")
