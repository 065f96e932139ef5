"""Shared fixtures: a private copy of an example scenario, to break in one place."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from optimizer.errors import ScenarioError
from optimizer.reading import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


class ScenarioCopy:
    """``scenarios/<name>.toml`` and its folder, copied into the working directory.

    The working directory is the test's tmp_path, so paths stay relative and
    messages name files as they would for a planner: ``hand_check/segments.csv``.
    """

    def __init__(self, name: str) -> None:
        self.toml = Path(f"{name}.toml")

    def edit(self, file: str, old: str | bytes, new: str | bytes) -> None:
        """Replace the one occurrence of ``old`` in ``file``."""
        path = Path(file)
        data = path.read_bytes()
        old_bytes = old.encode() if isinstance(old, str) else old
        new_bytes = new.encode() if isinstance(new, str) else new
        assert data.count(old_bytes) == 1, f"{old!r} is not in {file} exactly once"
        path.write_bytes(data.replace(old_bytes, new_bytes))

    def write(self, file: str, data: bytes) -> None:
        """Replace the whole content of ``file``."""
        Path(file).write_bytes(data)

    def problems(self) -> tuple[str, ...]:
        """The problems loading the scenario reports; fails if it loads."""
        with pytest.raises(ScenarioError) as excinfo:
            load_scenario(self.toml)
        return excinfo.value.problems


@pytest.fixture
def copy_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], ScenarioCopy]:
    """A function that copies an example scenario into tmp_path, the new cwd.

    ``copy("hand_check")`` copies hand_check.toml and the hand_check folder;
    ``copy("demo_pipeline", "demo")`` names a folder of another name.
    """
    monkeypatch.chdir(tmp_path)

    def copy(name: str, folder: str | None = None) -> ScenarioCopy:
        shutil.copytree(SCENARIOS / (folder or name), tmp_path / (folder or name))
        shutil.copy(SCENARIOS / f"{name}.toml", tmp_path)
        return ScenarioCopy(name)

    return copy


@pytest.fixture
def hand_check(copy_scenario: Callable[[str], ScenarioCopy]) -> ScenarioCopy:
    """A copy of the hand-check scenario: 2 segments, 2 channels, linear curves."""
    return copy_scenario("hand_check")
