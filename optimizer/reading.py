"""Reading a scenario from its TOML file and the CSV tables beside it.

Every problem is reported as one sentence that names the file, the row (the
spreadsheet row: the header is row 1), the field, the value found and what was
expected. All problems of a file are collected before raising, so a planner
can fix them in one pass.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import logging
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from optimizer.errors import ScenarioError
from optimizer.scenario import (
    BudgetSettings,
    Channel,
    ConstraintRule,
    CurvePoint,
    CurveSettings,
    Frozen,
    ObjectiveSettings,
    Origin,
    PlanSettings,
    Response,
    SalesCycleSettings,
    Scenario,
    Seasonality,
    Segment,
    SolverSettings,
    TableFiles,
)

logger = logging.getLogger(__name__)

#: At most this many problems are listed for one file.
MAX_PROBLEMS = 25


class ScenarioFile(Frozen):
    """The TOML file's top level."""

    plan: PlanSettings
    budget: BudgetSettings
    objective: ObjectiveSettings
    curves: CurveSettings = CurveSettings()
    sales_cycle: SalesCycleSettings = SalesCycleSettings()
    solver: SolverSettings = SolverSettings()
    tables: TableFiles
    constraints: tuple[ConstraintRule, ...] = Field(default=())


TABLES: dict[str, type[Frozen]] = {
    "segments": Segment,
    "channels": Channel,
    "responses": Response,
    "points": CurvePoint,
    "seasonality": Seasonality,
}


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file and its tables.

    Parameters
    ----------
    path
        The scenario's TOML file; table paths in it are relative to its folder.

    Returns
    -------
    Scenario
        The validated scenario, with the SHA-256 of every file it read.

    Raises
    ------
    ScenarioError
        When a file is missing or unreadable, or any value is invalid; the
        message names the file, row, field and value.
    """
    path = Path(path)
    raw = _read_bytes(path, what="the scenario file")
    settings = _parse_settings(path, raw)
    hashes = {path.name: hashlib.sha256(raw).hexdigest()}

    tables: dict[str, tuple[Any, ...]] = {}
    for key, model in TABLES.items():
        relative = getattr(settings.tables, key)
        if relative is None:
            tables[key] = ()
            continue
        table_path = path.parent / relative
        data = _read_bytes(table_path, what=f"the {key} table named in {path}")
        hashes[relative] = hashlib.sha256(data).hexdigest()
        tables[key] = read_table(table_path, data, model)

    logger.info("read scenario %s (%d segments)", path, len(tables["segments"]))
    return _assemble(path, settings, tables, hashes)


def _assemble(
    path: Path,
    settings: ScenarioFile,
    tables: dict[str, tuple[Any, ...]],
    hashes: dict[str, str],
) -> Scenario:
    fields = {
        name: getattr(settings, name)
        for name in ScenarioFile.model_fields
        if name != "tables"
    }
    try:
        return Scenario(
            **fields,
            **tables,
            source=path,
            input_hashes=tuple(sorted(hashes.items())),
        )
    except ValidationError as error:
        raise ScenarioError([e["msg"] for e in error.errors()]) from None


def _read_bytes(path: Path, *, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(
            f"{path}: no such file; expected {what} at this path."
        ) from None
    except OSError as error:
        raise ScenarioError(
            f"{path}: cannot be read ({error.strerror}); expected {what}."
        ) from None


def _parse_settings(path: Path, raw: bytes) -> ScenarioFile:
    text = _decode(path, raw)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(
            f"{path}: TOML syntax error: {error}; expected valid TOML "
            "(see the scenario format in the README)."
        ) from None
    try:
        return ScenarioFile.model_validate(document)
    except ValidationError as error:
        problems = [
            _describe(issue, str(path), ScenarioFile, toml=True)
            for issue in error.errors()
        ]
        raise ScenarioError(problems[:MAX_PROBLEMS]) from None


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = raw[: error.start].count(b"\n") + 1
        byte = raw[error.start]
        raise ScenarioError(
            f"{path}, row {row}: not UTF-8 text (byte 0x{byte:02x} at offset "
            f"{error.start}); expected a UTF-8 file; re-save it as 'CSV UTF-8'."
        ) from None


def read_table[M: Frozen](path: Path, data: bytes, model: type[M]) -> tuple[M, ...]:
    """Validate every row of one CSV table against its row model.

    Empty cells are treated as absent, so optional fields take their defaults
    and required ones are reported as missing.
    """
    reader = csv.reader(io.StringIO(_decode(path, data), newline=""))
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise ScenarioError(
            f"{path}: the table is empty; expected a header row and at least "
            "one data row."
        )
    columns = [cell.strip() for cell in header]
    _check_header(path, columns, model)

    rows: list[M] = []
    problems: list[str] = []
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        origin = Origin(file=str(path), row=reader.line_num)
        if len(values) > len(columns):
            problems.append(
                f"{origin}: {len(values)} values but the header has "
                f"{len(columns)} columns; expected one value per column."
            )
            continue
        record = {
            column: value.strip()
            for column, value in zip(columns, values, strict=False)
            if value.strip() != ""
        }
        try:
            rows.append(model.model_validate({**record, "origin": origin}))
        except ValidationError as error:
            problems += [_describe(e, str(origin), model) for e in error.errors()]
        if len(problems) >= MAX_PROBLEMS:
            break

    if problems:
        raise ScenarioError(problems[:MAX_PROBLEMS])
    if not rows:
        raise ScenarioError(
            f"{path}: no data rows under the header; expected at least one row."
        )
    return tuple(rows)


def _check_header(path: Path, columns: list[str], model: type[Frozen]) -> None:
    known = [name for name in model.model_fields if name != "origin"]
    required = [
        name
        for name, field in model.model_fields.items()
        if field.is_required() and name != "origin"
    ]
    problems = []
    for column in columns:
        if column not in known:
            problems.append(
                f"{path}, row 1, column '{column}': unknown column; expected one "
                f"of {', '.join(known)}{_suggestion(column, known)}."
            )
        elif columns.count(column) > 1:
            problems.append(
                f"{path}, row 1, column '{column}': the column appears "
                f"{columns.count(column)} times; expected it once."
            )
    problems += [
        f"{path}, row 1: missing required column '{name}'; expected a header "
        f"with {', '.join(required)}."
        for name in required
        if name not in columns
    ]
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))


def _suggestion(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(
    issue: Any, where: str, model: type[BaseModel], *, toml: bool = False
) -> str:
    """One complete sentence for one pydantic validation issue."""
    location = tuple(issue["loc"])
    if toml:
        where, location, model = _toml_location(where, location, model)
    field = str(location[0]) if location else None
    kind = issue["type"]

    if field is None:
        return f"{where}: {_reason(issue)}."
    if kind == "extra_forbidden":
        known = [name for name in model.model_fields if name != "origin"]
        return (
            f"{where}: unknown field '{field}'; expected one of "
            f"{', '.join(known)}{_suggestion(field, known)}."
        )
    expected = _expected(model, field)
    if kind == "missing":
        return f"{where}, field '{field}': the value is missing; expected {expected}."
    got = f"got {issue['input']!r}"
    if kind == "value_error":
        return f"{where}, field '{field}': {got}; {_reason(issue)}."
    return f"{where}, field '{field}': {got}; expected {expected}."


def _toml_location(
    where: str, location: tuple[Any, ...], model: type[BaseModel]
) -> tuple[str, tuple[Any, ...], type[BaseModel]]:
    """Walk a location such as ('constraints', 2, 'max') into its table."""
    if not location:
        return where, location, model
    section, rest = str(location[0]), location[1:]
    field = model.model_fields.get(section)
    if field is None:
        return where, location, model
    if section == "constraints" and rest and isinstance(rest[0], int):
        return f"{where}, [[constraints]] entry {rest[0] + 1}", rest[1:], ConstraintRule
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and rest:
        return f"{where}, [{section}]", rest, annotation
    return where, location, model


def _expected(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    if info is None or not info.description:
        return "a valid value"
    return info.description


def _reason(issue: Any) -> str:
    message = str(issue["msg"])
    return message.removeprefix("Value error, ")
