"""Scenario sets: variants, the evaluated plan, failures kept, tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from optimizer.cli import EXIT_OK, main
from optimizer.comparison import compare
from optimizer.scenario_sets import load_scenario_set

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def write_set(folder: Path, variants: str) -> Path:
    """A set on the hand-check scenario, copied beside it."""
    shutil.copy(ROOT / "scenarios" / "hand_check.toml", folder)
    shutil.copytree(ROOT / "scenarios" / "hand_check", folder / "hand_check")
    shutil.copy(DATA / "hand_check_current.csv", folder)
    path = folder / "set.toml"
    path.write_text(
        f'[set]\nname = "hand"\nbase = "hand_check.toml"\n\n{variants}',
        encoding="utf-8",
    )
    return path


def outcome(comparison, name: str):  # type: ignore[no-untyped-def]
    return next(o for o in comparison.outcomes if o.name == name)


def test_evaluated_plan_is_scored_by_hand(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        '[[variants]]\nname = "current"\nkind = "evaluate"\n'
        'allocation = "hand_check_current.csv"\n',
    )
    comparison = compare(load_scenario_set(path))
    current = outcome(comparison, "current")

    # A 10k/200 = 50 conv x 20k, B 10k/500 = 20 x 20k, C 10k/80 = 125 x 4k,
    # D 20k/400 = 50 x 4k: 1.0M + 0.4M + 0.5M + 0.2M of pipeline.
    assert current.status == "evaluated"
    assert current.result.objective_value == pytest.approx(2_100_000)
    assert current.result.overall()["conversions"] == pytest.approx(245)
    assert current.message == "keeps every rule of the scenario"
    summary = comparison.summary.set_index("scenario")
    assert summary.loc["current", "objective_delta"] == pytest.approx(-1_200_000)
    assert summary.loc["current", "objective_delta_pct"] == pytest.approx(
        -100 * 1.2 / 3.3
    )


def test_variants_override_budget_costs_rules_and_bounds(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        '[[variants]]\nname = "cut"\nbudget = 30000\n\n'
        '[[variants]]\nname = "google dearer"\n'
        'adjust = [{ channel_id = "google_search", cost = 2.0 }]\n\n'
        '[[variants]]\nname = "no cap"\n'
        'remove_constraints = ["channel google_search"]\n\n'
        '[[variants]]\nname = "loose"\nkind = "loosened_bounds"\nfactor = 2.0\n',
    )
    comparison = compare(load_scenario_set(path))
    value = {o.name: o.result.objective_value for o in comparison.outcomes}

    # cut: A 20k (2.0M) + C 10k (0.5M); no cap or a cap of 60k: A, C full and
    # B 10k: 3.4M; google at twice the cost halves A and C per dollar (A 50,
    # C 25, B 40) and doubles their room: A takes the whole 30k google cap
    # (1.5M), B the other 20k (0.8M): 2.3M.
    assert value == pytest.approx(
        {
            "base": 3_300_000,
            "cut": 2_500_000,
            "google dearer": 2_300_000,
            "no cap": 3_400_000,
            "loose": 3_400_000,
        }
    )


def test_failed_variants_do_not_stop_the_others(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        '[[variants]]\nname = "too much"\nbudget = 200000\n\n'
        '[[variants]]\nname = "fine"\nbudget = 40000\n',
    )
    comparison = compare(load_scenario_set(path))
    too_much = outcome(comparison, "too much")

    assert too_much.status == "infeasible"
    assert (
        too_much.message
        == (
            "the exact budget of 200,000.00 USD cannot all be spent: the reachable "
            "volume absorbs at most 110,000.00 USD."
        )
        or "cannot all be spent" in too_much.message
    )
    assert outcome(comparison, "fine").status == "optimal"
    assert set(comparison.long["scenario"]) == {"base", "fine"}


def test_long_table_deltas_against_the_base(tmp_path: Path) -> None:
    path = write_set(tmp_path, '[[variants]]\nname = "cut"\nbudget = 30000\n')
    long = compare(load_scenario_set(path)).long
    spend = long[(long["metric"] == "spend") & (long["level"] == "total")]

    assert spend.set_index("scenario")["value"].to_dict() == {
        "base": 50_000,
        "cut": 30_000,
    }
    cut = spend.set_index("scenario").loc["cut"]
    assert cut["delta"] == -20_000
    assert cut["delta_pct"] == pytest.approx(-40)
    channel = long[(long["level"] == "channel") & (long["metric"] == "spend")]
    assert channel.groupby("scenario")["value"].sum().to_dict() == {
        "base": 50_000,
        "cut": 30_000,
    }


def test_unknown_rule_to_remove_is_reported(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        '[[variants]]\nname = "typo"\nremove_constraints = ["channel gogle"]\n',
    )
    typo = outcome(compare(load_scenario_set(path)), "typo")
    assert typo.status == "invalid"
    assert typo.message == (
        "variant 'typo', field 'remove_constraints': got 'channel gogle'; expected "
        "the subject of a base rule, one of channel google_search."
    )


def test_compare_command_writes_every_table(tmp_path: Path) -> None:
    out = tmp_path / "whatifs"
    code = main(
        [
            "compare",
            str(ROOT / "scenarios" / "demo_whatifs.toml"),
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == EXIT_OK
    summary = pd.read_csv(out / "comparison_summary.csv")
    assert summary["scenario"].iloc[0] == "base"
    assert "infeasible" in summary["status"].tolist()
    assert (out / "scenarios" / "base" / "summary.json").exists()
    assert (out / "scenarios" / "current-spreadsheet-plan" / "allocation.csv").exists()
    long = pd.read_csv(out / "comparison.csv")
    assert list(long.columns) == [
        "scenario",
        "level",
        "key",
        "metric",
        "value",
        "delta",
        "delta_pct",
    ]


def test_sweep_command_writes_the_frontier(tmp_path: Path) -> None:
    out = tmp_path / "frontier"
    code = main(
        [
            "sweep",
            str(ROOT / "scenarios" / "hand_check.toml"),
            "--from",
            "10000",
            "--to",
            "90000",
            "--steps",
            "9",
            "--absolute",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == EXIT_OK
    frontier = pd.read_csv(out / "frontier.csv")
    assert frontier["budget"].tolist() == [10_000 * k for k in range(1, 10)]
    assert frontier["objective"].iloc[0] == pytest.approx(1_000_000)
