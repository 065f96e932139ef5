"""The command line through its real entry points, exit codes included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pulp
import pytest

from optimizer.cli import (
    EXIT_INFEASIBLE,
    EXIT_INVALID_INPUT,
    EXIT_OK,
    EXIT_SOLVER_FAILURE,
    main,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def run_module(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m optimizer`` in a child process, as a planner runs it."""
    return subprocess.run(
        [sys.executable, "-m", "optimizer", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def test_run_writes_the_plan_and_prints_the_summary(tmp_path: Path) -> None:
    result = run_module(
        "run", str(SCENARIOS / "hand_check.toml"), "--out", "plan", cwd=tmp_path
    )

    assert result.returncode == EXIT_OK, result.stderr
    assert result.stderr == ""
    assert sorted(p.name for p in (tmp_path / "plan").iterdir()) == [
        "allocation.csv",
        "bids",
        "bids.csv",
        "charts",
        "constraints.csv",
        "frontier.csv",
        "plan.xlsx",
        "report.html",
        "summary.json",
    ]
    assert sorted(p.name for p in (tmp_path / "plan" / "charts").iterdir()) == [
        "allocation.png",
        "frontier.png",
        "phasing.png",
        "response_linear.png",
    ]
    assert "maximize pipeline: 3,300,000.00" in result.stdout
    assert (
        "wrote plan/allocation.csv, constraints.csv, summary.json, bids.csv, bids/, "
        "frontier.csv, plan.xlsx, report.html, charts/" in result.stdout
    )


def test_console_script_is_installed() -> None:
    script = shutil.which("optimizer", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run(
        [script, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == EXIT_OK
    assert "exit codes:" in result.stdout


def test_quiet_run_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", str(SCENARIOS / "hand_check.toml"), "--out", str(tmp_path / "p"), "-q"]
    )
    assert code == EXIT_OK
    assert capsys.readouterr().out == ""


def test_infeasible_scenario_exits_4_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    code = main(["run", str(SCENARIOS / "infeasible.toml"), "--out", str(out)])

    assert code == EXIT_INFEASIBLE
    assert capsys.readouterr().err == (
        "error: The scenario is infeasible: no allocation satisfies every rule.\n"
        "- the channel minimums add up to 330,000.00 USD, more than the budget "
        "of 306,000.00 USD.\n"
    )
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_invalid_input_exits_3_and_keeps_the_previous_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    assert (
        main(["run", str(SCENARIOS / "hand_check.toml"), "--out", str(out), "-q"]) == 0
    )
    before = (out / "summary.json").read_bytes()
    broken = tmp_path / "broken.toml"
    broken.write_text('[plan]\nstart = "2027-01"\nmonths = \n', encoding="utf-8")

    code = main(["run", str(broken), "--out", str(out)])

    assert code == EXIT_INVALID_INPUT
    err = capsys.readouterr().err
    assert err == (
        f"error: invalid input:\n{broken}, line 3, column 10: got 'months ='; "
        "expected valid TOML (invalid value).\n"
    )
    assert (out / "summary.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.toml", "plan"]


def test_solver_failure_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            str(SCENARIOS / "demo_pipeline.toml"),
            "--out",
            str(tmp_path / "plan"),
            "--time-limit",
            "1e-9",
        ]
    )
    assert code == EXIT_SOLVER_FAILURE
    err = capsys.readouterr().err
    assert err.startswith(
        "error: solver failure: highs stopped without a proven optimum"
    )
    assert not (tmp_path / "plan").exists()


def test_validate_reports_size_without_solving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["validate", str(SCENARIOS / "demo_pipeline.toml")])
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert out.endswith(
        "valid; 24 segments, 6 channels, 86 cells, 12 months, 6 rules; "
        "the program has 4176 columns and 8 rows.\n"
    )


def test_validate_finds_infeasible_arithmetic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(SCENARIOS / "infeasible.toml")]) == EXIT_INFEASIBLE
    assert "the channel minimums add up to 330,000.00 USD" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", ["run", "validate", "compare", "sweep", "bids", "check", "diff"]
)
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example:\n  optimizer " + command in out
    assert "exit codes:" in out


def test_write_model_writes_an_lp_file_pulp_reads_back(tmp_path: Path) -> None:
    model = tmp_path / "model.mps"
    code = main(
        [
            "run",
            str(SCENARIOS / "hand_check.toml"),
            "--out",
            str(tmp_path / "plan"),
            "--write-model",
            str(model),
            "-q",
        ]
    )
    assert code == EXIT_OK
    _, problem = pulp.LpProblem.fromMPS(str(model), sense=pulp.LpMaximize)
    problem.solve(pulp.COIN_CMD(msg=False))
    summary = json.loads((tmp_path / "plan" / "summary.json").read_text())
    # The MPS holds the program in internal units: 1000 units of budget.
    unit = 50_000 / 1000
    assert pulp.value(problem.objective) * unit == pytest.approx(
        summary["objective"]["value"], rel=1e-9
    )
