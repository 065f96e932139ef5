"""The plan's files: byte-for-byte repeatable, reconciled, all or nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

import optimizer
from optimizer.outputs import staged_folder

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scenarios" / "demo_pipeline.toml"


@pytest.fixture(scope="module")
def demo_plan() -> optimizer.Plan:
    return optimizer.optimize(optimizer.load_scenario(DEMO))


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = optimizer.write_plan(
        optimizer.optimize(optimizer.load_scenario(DEMO)), tmp_path / "a"
    )
    second = optimizer.write_plan(
        optimizer.optimize(optimizer.load_scenario(DEMO)), tmp_path / "b"
    )
    for name in ("allocation.csv", "constraints.csv", "summary.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_allocation_reconciles_to_the_cent(
    demo_plan: optimizer.Plan, tmp_path: Path
) -> None:
    folder = optimizer.write_plan(demo_plan, tmp_path / "plan")
    allocation = pd.read_csv(folder / "allocation.csv", dtype={"spend": str})
    summary = json.loads((folder / "summary.json").read_text())
    cents = allocation["spend"].str.replace(".", "", regex=False).astype(int)

    assert int(cents.sum()) == 2_400_000_00
    assert summary["budget"]["spent"] == 2_400_000.0
    for key, column in (
        ("by_channel", "channel_id"),
        ("by_month", "month"),
        ("by_stage", "stage"),
        ("by_segment", "segment_id"),
    ):
        by_file = cents.groupby(allocation[column]).sum()
        by_summary = {
            name: round(row["spend"] * 100)
            for name, row in summary["totals"][key].items()
        }
        assert by_summary == {str(k): int(v) for k, v in by_file.items()}, key
        assert sum(by_summary.values()) == 2_400_000_00


def test_one_row_per_segment_channel_month(demo_plan: optimizer.Plan) -> None:
    allocation = demo_plan.allocation
    assert len(allocation) == 86 * 12
    assert not allocation.duplicated(["segment_id", "channel_id", "month"]).any()


def test_rules_hold_to_the_cent_after_rounding(demo_plan: optimizer.Plan) -> None:
    by_channel = demo_plan.totals("channel")["spend"]
    by_stage = demo_plan.totals("stage")["spend"]
    by_month = demo_plan.totals("month")["spend"]
    by_cell = demo_plan.totals("cell")["spend"]

    assert 360_000 <= by_channel["linkedin"] <= 600_000
    assert by_channel["abm_platform"] == 300_000
    assert by_channel["programmatic_display"] <= 0.05 * 2_400_000
    assert by_stage["decision"] >= 0.5 * 2_400_000
    assert by_month["2027-12"] <= 120_000
    assert by_cell["research_new_lead_tier_1/linkedin"] >= 84_000


def test_summary_names_solver_versions_and_input_hashes(
    demo_plan: optimizer.Plan, tmp_path: Path
) -> None:
    summary = json.loads(
        (optimizer.write_plan(demo_plan, tmp_path / "p") / "summary.json").read_text()
    )
    assert summary["status"] == "optimal"
    assert summary["solver"]["name"] == "highs"
    assert summary["solver"]["options"]["solver"] == "simplex"
    assert summary["solver"]["options"]["objective_shift"] > 0
    assert set(summary["packages"]) >= {"python", "pulp", "highspy", "numpy"}
    expected = hashlib.sha256(
        (ROOT / "scenarios" / "demo" / "points.csv").read_bytes()
    ).hexdigest()
    assert summary["inputs"]["demo/points.csv"] == expected
    assert summary["verification"]["passed"] is True


def test_failed_write_leaves_the_destination_untouched(tmp_path: Path) -> None:
    destination = tmp_path / "plan"
    destination.mkdir()
    (destination / "old.txt").write_text("previous plan")

    with (
        pytest.raises(RuntimeError, match="disk full"),
        staged_folder(destination) as staging,
    ):
        (staging / "allocation.csv").write_text("half")
        raise RuntimeError("disk full")

    assert [p.name for p in tmp_path.iterdir()] == ["plan"]
    assert [p.name for p in destination.iterdir()] == ["old.txt"]


def test_successful_write_replaces_the_whole_destination(tmp_path: Path) -> None:
    destination = tmp_path / "plan"
    destination.mkdir()
    (destination / "stale.csv").write_text("from an older run")

    with staged_folder(destination) as staging:
        (staging / "allocation.csv").write_text("new")

    assert [p.name for p in destination.iterdir()] == ["allocation.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["plan"]


def test_public_names_are_exported() -> None:
    for name in optimizer.__all__:
        assert hasattr(optimizer, name), name
