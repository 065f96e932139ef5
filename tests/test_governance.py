"""Segment governance in the model: roll-ups, overlap, holdouts, suppressions,
minimum viable spend, declared values and paths, against hand-solved cases.

All cases build on the hand-check scenario (one month, budget 50,000 exact,
google_search at most 30,000). Its cells, in pipeline per dollar: A =
evaluation_tier_1/google_search 100 (room 20,000), C = evaluation_tier_2/
google_search 50 (20,000), B = evaluation_tier_1/linkedin 40 (30,000), D =
evaluation_tier_2/linkedin 10 (40,000). Unconstrained optimum: A 20k, C 10k,
B 20k, pipeline 3,300,000.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

import optimizer
from optimizer.cli import EXIT_INFEASIBLE, EXIT_OK, main
from optimizer.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
A = "evaluation_tier_1/google_search"
B = "evaluation_tier_1/linkedin"
C = "evaluation_tier_2/google_search"
D = "evaluation_tier_2/linkedin"


def hand_check(
    tmp_path: Path, extra: str, *, spend: str = "exact"
) -> optimizer.Scenario:
    """The hand-check scenario with TOML appended."""
    shutil.copytree(ROOT / "scenarios" / "hand_check", tmp_path / "hand_check")
    text = (ROOT / "scenarios" / "hand_check.toml").read_text(encoding="utf-8")
    text = text.replace('spend = "exact"', f'spend = "{spend}"')
    path = tmp_path / "hand_check.toml"
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return optimizer.load_scenario(path)


def cell_spend(plan: optimizer.Plan) -> dict[str, float]:
    return plan.totals("cell")["spend"].to_dict()


def test_tag_share_rule_matches_the_hand_solution(tmp_path: Path) -> None:
    # tier_1 at most half: A 20k + B 5k; google cap leaves C 10k; D takes 15k.
    scenario = hand_check(
        tmp_path,
        '[[constraints]]\nscope = "account_tier"\nid = "tier_1"\nmax_share = 0.5\n',
    )
    plan = optimizer.optimize(scenario)
    assert cell_spend(plan) == {A: 20_000, B: 5_000, C: 10_000, D: 15_000}
    assert plan.objective_value == pytest.approx(
        2_000_000 + 200_000 + 500_000 + 150_000
    )
    assert plan.totals("account_tier")["spend"].to_dict() == {
        "tier_1": 25_000,
        "tier_2": 25_000,
    }


def test_where_rule_matches_the_hand_solution(tmp_path: Path) -> None:
    # tier_2 evaluation segments (C, D) at least 35k leaves A + B at most 15k:
    # A 15k, then google's 30k cap leaves C 15k, and D the other 20k:
    # 1.5M + 0.75M + 0.2M. (A 10k with C 20k gives only 2.2M.)
    scenario = hand_check(
        tmp_path,
        '[[constraints]]\nscope = "segments"\n'
        'where = { account_tier = "tier_2", intent = "evaluation" }\nmin = 35000\n',
    )
    plan = optimizer.optimize(scenario)
    assert cell_spend(plan) == {A: 15_000, B: 0, C: 15_000, D: 20_000}
    assert plan.objective_value == pytest.approx(2_450_000)
    rule = next(c for c in plan.constraints if c.name.startswith("min_segments"))
    assert rule.label == (
        "segments with account_tier tier_2 and intent evaluation: at least "
        "35,000.00 USD"
    )


def test_overlap_group_caps_clicks_at_the_shared_reach(tmp_path: Path) -> None:
    # Per click: A 1,000 of pipeline (10 a click), B 400 (10), C 200 (4), D 80
    # (8). With 3,000 shared clicks and the budget spent up to 50k, clicks
    # bind first: A's 2,000 clicks, then 1,000 of B's: 20k + 10k spent.
    scenario = hand_check(
        tmp_path,
        '[segmentation]\noverlap = "overlapping"\n\n[[overlap_groups]]\n'
        'id = "evaluation"\nsegments = ["evaluation_tier_1", "evaluation_tier_2"]\n'
        "monthly_reach = 3000\n",
        spend="up_to",
    )
    plan = optimizer.optimize(scenario)

    assert cell_spend(plan) == {A: 20_000, B: 10_000, C: 0, D: 0}
    assert plan.objective_value == pytest.approx(2_400_000)
    assert plan.allocation["clicks"].sum() == pytest.approx(3_000)
    reach = next(c for c in plan.constraints if c.name.startswith("reach_"))
    assert reach.shadow_price == pytest.approx(400)
    assert reach.explain(scenario.objective.maximize) == (
        "raising this limit by one click is worth 400 of pipeline"
    )


def test_overlap_groups_need_an_overlapping_scenario(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as error:
        hand_check(
            tmp_path,
            '[[overlap_groups]]\nid = "g"\n'
            'segments = ["evaluation_tier_1", "evaluation_tier_2"]\n'
            "monthly_reach = 10\n",
        )
    assert error.value.problems == (
        "[[overlap_groups]]: got overlap groups in a scenario whose segments are "
        "declared exclusive; expected [segmentation] overlap = 'overlapping'.",
    )


def test_holdout_leaves_volume_unbought_and_is_reported(tmp_path: Path) -> None:
    # Half of evaluation_tier_1 held out: A room 10k, B 15k. A 10k, C 20k
    # (google 30k), B 15k, D 5k: 1.0M + 1.0M + 0.6M + 0.05M.
    scenario = hand_check(
        tmp_path,
        '[[holdouts]]\nwhere = { segment_id = "evaluation_tier_1" }\nshare = 0.5\n',
    )
    plan = optimizer.optimize(scenario)

    assert cell_spend(plan) == {A: 10_000, B: 15_000, C: 20_000, D: 5_000}
    assert plan.objective_value == pytest.approx(2_650_000)
    assert plan.segments.holdouts[0]["reachable_spend_held_out"] == 25_000
    assert plan.segments.holdouts[0]["segments"] == ["evaluation_tier_1"]


def test_suppression_drops_cells_before_solving_and_lists_them(tmp_path: Path) -> None:
    # Without B: A 20k, C 10k, D 20k = 2.0M + 0.5M + 0.2M.
    scenario = hand_check(
        tmp_path,
        '[[suppressions]]\nid = "tier-1-off-linkedin"\n'
        'where = { account_tier = "tier_1" }\nchannels = ["linkedin"]\n'
        'owner = "paid social"\nrationale = "sales covers it"\n',
    )
    plan = optimizer.optimize(scenario)

    assert cell_spend(plan) == {A: 20_000, C: 10_000, D: 20_000}
    assert plan.objective_value == pytest.approx(2_700_000)
    summary = json.loads(
        (optimizer.write_plan(plan, tmp_path / "out") / "summary.json").read_text()
    )
    assert summary["segments"]["suppressions"] == [
        {
            "id": "tier-1-off-linkedin",
            "where": {"account_tier": "tier_1"},
            "channels": ["linkedin"],
            "cells": [B],
            "owner": "paid social",
            "rationale": "sales covers it",
        }
    ]


def best_by_enumeration(tmp_path: Path, minimum: float) -> float:
    """The integer optimum: every on/off subset of cells solved as an LP."""
    cells = [A, B, C, D]
    best = -1.0
    for k, on in enumerate(itertools.product([False, True], repeat=4)):
        rules = ""
        for cell, active in zip(cells, on, strict=True):
            if active:
                rules += (
                    f'[[constraints]]\nscope = "cell"\nid = "{cell}"\nmin = {minimum}\n'
                )
            else:
                rules += f'[[constraints]]\nscope = "cell"\nid = "{cell}"\nmax = 0\n'
        folder = tmp_path / f"subset{k}"
        folder.mkdir()
        try:
            plan = optimizer.optimize(hand_check(folder, rules))
        except optimizer.InfeasibleScenarioError:
            continue
        best = max(best, plan.objective_value)
    return best


def test_minimum_viable_spend_leaves_no_sliver_and_is_optimal(tmp_path: Path) -> None:
    # With 15k per active cell, C's 10k sliver must go: A 20k + B 30k = 3.2M
    # beats A 15k + C 15k + B 20k = 3.05M.
    scenario = hand_check(tmp_path, "[micro_segments]\nmin_cell_spend = 15000\n")
    plan = optimizer.optimize(scenario)
    spend = cell_spend(plan)

    assert all(value == 0 or value >= 15_000 for value in spend.values())
    assert spend == {A: 20_000, B: 30_000, C: 0, D: 0}
    optimum = best_by_enumeration(tmp_path, 15_000)
    assert optimum == pytest.approx(3_200_000)
    assert plan.objective_value == pytest.approx(optimum)
    report = plan.integer
    assert report is not None
    # The gap is honest: the optimum lies between the plan and the bound.
    assert report.objective <= optimum * (1 + 1e-9)
    assert optimum <= report.relaxation_bound * (1 + 1e-9)
    assert report.gap_to_bound == pytest.approx(
        (report.relaxation_bound - report.objective) / report.objective
    )


def test_max_active_segments_keeps_the_best_segment(tmp_path: Path) -> None:
    # One segment only: tier_1 (A 20k + B 30k = 3.2M) beats tier_2 (C 20k +
    # D 30k = 1.0M + 0.3M, google cap allows C 20k).
    scenario = hand_check(tmp_path, "[micro_segments]\nmax_active_segments = 1\n")
    plan = optimizer.optimize(scenario)
    assert cell_spend(plan) == {A: 20_000, B: 30_000, C: 0, D: 0}
    assert plan.integer is not None and plan.integer.active_segments == 1


def test_declared_values_catch_a_typo(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as error:
        hand_check(
            tmp_path,
            '[segmentation.values]\naccount_tier = ["tier_1", "Tier2"]\n',
        )
    assert error.value.problems == (
        f"{tmp_path}/hand_check/segments.csv, row 3, field 'account_tier': got "
        "'tier_2'; expected one of the declared values tier_1, Tier2 (did you mean "
        "'Tier2'?).",
    )


def test_the_same_path_twice_names_both_rows(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "scenarios" / "hand_check", tmp_path / "hand_check")
    segments = tmp_path / "hand_check" / "segments.csv"
    segments.write_text(
        segments.read_text().replace(
            "evaluation_tier_2,evaluation,tier_2", "evaluation_tier_2,evaluation,tier_1"
        )
    )
    shutil.copy(ROOT / "scenarios" / "hand_check.toml", tmp_path)
    with pytest.raises(ScenarioError) as error:
        optimizer.load_scenario(tmp_path / "hand_check.toml")
    assert error.value.problems == (
        f"{tmp_path}/hand_check/segments.csv, row 3: the path "
        "-/tier_1/-/-/evaluation/- "
        f"(lifecycle -) is already defined by {tmp_path}/hand_check/segments.csv, "
        "row 2; expected each path once.",
    )


def test_a_run_with_every_governance_feature_writes_all_its_files(
    tmp_path: Path,
) -> None:
    # Tag and condition rules, a holdout, a suppression and minimum viable
    # spend, through the command line and every output (workbook included).
    hand_check(
        tmp_path,
        '[[constraints]]\nscope = "account_tier"\nid = "tier_1"\nmax_share = 0.7\n\n'
        '[[constraints]]\nscope = "segments"\n'
        'where = { account_tier = "tier_2" }\nmin = 10000\n\n'
        '[[holdouts]]\nwhere = { segment_id = "evaluation_tier_2" }\nshare = 0.1\n\n'
        '[[suppressions]]\nid = "no-d"\nwhere = { account_tier = "tier_2" }\n'
        'channels = ["linkedin"]\n\n'
        "[micro_segments]\nmin_cell_spend = 5000\n",
    )
    out = tmp_path / "plan"
    assert (
        main(["run", str(tmp_path / "hand_check.toml"), "--out", str(out), "-q"])
        == EXIT_OK
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["segments"]["suppressions"][0]["cells"] == [D]
    assert summary["minimum_viable_spend"]["active_cells"] == 3
    assert (out / "plan.xlsx").stat().st_size > 0
    assert not (out / "frontier.csv").exists()


def test_an_infeasible_integer_scenario_exits_as_infeasible(tmp_path: Path) -> None:
    # tier_1 at most 60% (30k) and tier_2's google cell with a 10% holdout
    # (18k), linkedin suppressed for tier_2: 48k can be spent of 50k.
    hand_check(
        tmp_path,
        '[[constraints]]\nscope = "account_tier"\nid = "tier_1"\nmax_share = 0.6\n\n'
        '[[holdouts]]\nwhere = { segment_id = "evaluation_tier_2" }\nshare = 0.1\n\n'
        '[[suppressions]]\nid = "no-d"\nwhere = { account_tier = "tier_2" }\n'
        'channels = ["linkedin"]\n\n'
        "[micro_segments]\nmin_cell_spend = 5000\n",
    )
    out = tmp_path / "plan"
    arguments = ["run", str(tmp_path / "hand_check.toml"), "--out", str(out), "-q"]
    assert main(arguments) == EXIT_INFEASIBLE
    assert not out.exists()
