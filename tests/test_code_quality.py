"""The package type-checks strictly and passes its linter, as CI sees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_package_type_checks_strictly() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_linted_and_formatted() -> None:
    lint = run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout
    formatted = run("ruff", "format", "--check", ".")
    assert formatted.returncode == 0, formatted.stdout
