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
import re
import tomllib
from enum import StrEnum
from pathlib import Path, PurePath
from typing import Any, get_args

from pydantic import BaseModel, Field, ValidationError

from optimizer.bids import BidSettings
from optimizer.checks import did_you_mean
from optimizer.errors import ScenarioError
from optimizer.quality import QualitySettings
from optimizer.scenario import (
    CURVE_PARAMETERS,
    OPTIONAL_PARAMETERS,
    BudgetSettings,
    Channel,
    ConstraintRule,
    CurveKind,
    CurvePoint,
    CurveSettings,
    Frozen,
    Holdout,
    MicroSegmentSettings,
    ObjectiveSettings,
    Origin,
    OverlapGroup,
    PlanSettings,
    Response,
    SalesCycleSettings,
    Scenario,
    Scope,
    Seasonality,
    Segment,
    SegmentationSettings,
    SolverSettings,
    Suppression,
    TableFiles,
)
from optimizer.thresholds import ThresholdRule

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
    bids: BidSettings = BidSettings()
    tables: TableFiles
    constraints: tuple[ConstraintRule, ...] = Field(default=())
    segmentation: SegmentationSettings = SegmentationSettings()
    overlap_groups: tuple[OverlapGroup, ...] = ()
    holdouts: tuple[Holdout, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    micro_segments: MicroSegmentSettings = MicroSegmentSettings()
    thresholds: tuple[ThresholdRule, ...] = ()
    quality: QualitySettings = QualitySettings()


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
    raw = _read_scenario_bytes(path)
    settings = _parse_settings(path, raw)
    hashes = {path.name: hashlib.sha256(raw).hexdigest()}

    tables: dict[str, tuple[Any, ...]] = {}
    for key, model in TABLES.items():
        relative = getattr(settings.tables, key)
        if relative is None:
            tables[key] = ()
            continue
        table_path = path.parent / relative
        data = _read_table_bytes(path, key, relative)
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
        return Scenario.model_validate(
            {
                **fields,
                **tables,
                "source": path,
                "input_hashes": tuple(sorted(hashes.items())),
            }
        )
    except ValidationError as error:
        # The cross-table checks arrive as one error whose message holds one
        # problem per line; report them as separate problems.
        problems = [
            line
            for issue in error.errors()
            for line in str(issue["msg"]).splitlines()
            if line.strip()
        ]
        raise ScenarioError(_at_most(problems, str(path))) from None


def _read_scenario_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(
            f"{path}: got no file at this path; expected the scenario's TOML file."
        ) from None
    except OSError as error:
        raise ScenarioError(
            f"{path}: got a path that cannot be read ({error.strerror}); expected "
            "the scenario's TOML file."
        ) from None


def _read_table_bytes(path: Path, key: str, relative: str) -> bytes:
    """The bytes of a table; a problem is reported where the path was given."""
    table_path = path.parent / relative
    at = f"{path}, [tables], field '{key}': got {relative!r}"
    expected = (
        f"expected the path of the {key} table, relative to the folder of {path.name}"
    )
    try:
        return table_path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(
            f"{at}, but there is no file {table_path}; {expected}"
            f"{_file_hint(table_path, relative)}."
        ) from None
    except OSError as error:
        raise ScenarioError(
            f"{at}, but {table_path} cannot be read ({error.strerror}); {expected}."
        ) from None


def _file_hint(table_path: Path, relative: str) -> str:
    try:
        names = sorted(p.name for p in table_path.parent.iterdir() if p.is_file())
    except OSError:
        return ""
    close = difflib.get_close_matches(table_path.name, names, n=1, cutoff=0.8)
    if not close:
        return ""
    return f" (did you mean '{PurePath(relative).parent / close[0]}'?)"


def _parse_settings(path: Path, raw: bytes) -> ScenarioFile:
    text = _decode(path, raw, table=False)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(_toml_syntax_problem(path, text, error)) from None
    try:
        return ScenarioFile.model_validate(document)
    except ValidationError as error:
        problems = [
            _describe(issue, str(path), ScenarioFile, toml=True)
            for issue in error.errors()
        ]
        raise ScenarioError(_at_most(problems, str(path))) from None


def _toml_syntax_problem(path: Path, text: str, error: Exception) -> str:
    message = str(error)
    found = re.fullmatch(r"(?s)(.*) \(at line (\d+), column (\d+)\)", message)
    if found is None:
        reason = message.removesuffix(" (at end of document)")
        return (
            f"{path}, at the end of the file: got an unfinished document; expected "
            f"valid TOML ({_lower_first(reason)})."
        )
    reason, line, column = found[1], int(found[2]), int(found[3])
    lines = text.splitlines()
    content = lines[line - 1].strip() if line <= len(lines) else ""
    return (
        f"{path}, line {line}, column {column}: got {content!r}; expected valid "
        f"TOML ({_lower_first(reason)})."
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _decode(path: Path, raw: bytes, *, table: bool = True) -> str:
    """The file as text; a file that is not UTF-8 is refused where it breaks."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        byte = raw[error.start]
        text = raw.decode("utf-8-sig", errors="surrogateescape")
        if table:
            where, shown = _bad_cell(path, text)
            save_as = "'CSV UTF-8'"
        else:
            line = raw[: error.start].count(b"\n") + 1
            where, shown = f"{path}, line {line}", text.splitlines()[line - 1]
            save_as = "UTF-8"
        raise ScenarioError(
            f"{where}: got '{_escape_bytes(shown)}'; expected UTF-8 text (byte "
            f"0x{byte:02x} is not UTF-8: save the file as {save_as})."
        ) from None


def _bad_cell(path: Path, text: str) -> tuple[str, str]:
    """The first cell of a table that holds bytes that are not UTF-8."""
    header: list[str] = []
    for row, values in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
        if row == 1:
            header = [cell.strip() for cell in values]
        for index, value in enumerate(values):
            if _escape_bytes(value) == value:
                continue
            if row > 1 and index < len(header):
                return f"{path}, row {row}, field '{header[index]}'", value.strip()
            return f"{path}, row {row}, column {index + 1}", value.strip()
    return str(path), ""


def _escape_bytes(text: str) -> str:
    """Bytes that were not UTF-8 (decoded as surrogates) written as ``\\xNN``."""
    return "".join(
        f"\\x{ord(char) - 0xDC00:02x}" if "\udc80" <= char <= "\udcff" else char
        for char in text
    )


def read_table[M: Frozen](path: Path, data: bytes, model: type[M]) -> tuple[M, ...]:
    """Validate every row of one CSV table against its row model.

    Empty cells are treated as absent, so optional fields take their defaults
    and required ones are reported as missing.
    """
    reader = csv.reader(io.StringIO(_decode(path, data), newline=""))
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        found = "an empty file" if not data.strip() else "an empty header row"
        raise ScenarioError(
            f"{path}, row 1: got {found}; expected a header row with at least the "
            f"columns {', '.join(_required(model))}, then at least one data row."
        )
    columns = [cell.strip() for cell in header]
    _check_header(path, columns, model)

    rows: list[M] = []
    problems: list[str] = []
    # Spreadsheet rows are records, not lines: a quoted cell may span lines.
    for row, values in enumerate(reader, 2):
        if not any(value.strip() for value in values):
            continue
        origin = Origin(file=str(path), row=row)
        if len(values) > len(columns):
            extra = ", ".join(repr(value.strip()) for value in values[len(columns) :])
            problems.append(
                f"{origin}: got {len(values)} values, more than the {len(columns)} "
                f"columns of the header (extra: {extra}); expected at most one "
                "value per column (quote a value that holds a comma)."
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
            problems += [
                _describe(e, str(origin), model, record=record) for e in error.errors()
            ]

    if problems:
        raise ScenarioError(_at_most(problems, str(path)))
    if not rows:
        raise ScenarioError(
            f"{path}, row 2: got no data rows under the header; expected at least "
            "one data row."
        )
    return tuple(rows)


def _at_most(problems: list[str], where: str) -> list[str]:
    """The first problems, and how many more there are."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    hidden = len(problems) - MAX_PROBLEMS
    return [
        *problems[:MAX_PROBLEMS],
        f"{where}: {hidden} more problems not shown; fix these first.",
    ]


def _required(model: type[BaseModel]) -> list[str]:
    return [
        name
        for name, field in model.model_fields.items()
        if field.is_required() and name != "origin"
    ]


def _check_header(path: Path, columns: list[str], model: type[Frozen]) -> None:
    known = [name for name in model.model_fields if name != "origin"]
    required = _required(model)
    problems = []
    for index, column in enumerate(columns):
        at = f"{path}, row 1, column {index + 1}: got '{column}'"
        if column not in known:
            problems.append(
                f"{at}; expected one of {', '.join(known)}"
                f"{did_you_mean(column, known)}."
            )
        elif column in columns[:index]:
            problems.append(
                f"{at} again (also column {columns.index(column) + 1}); expected "
                "each column once."
            )
    problems += [
        f"{path}, row 1: got no column '{name}'; expected a header with the "
        f"required columns {', '.join(required)}."
        for name in required
        if name not in columns
    ]
    if problems:
        raise ScenarioError(problems)


def _describe(
    issue: Any,
    where: str,
    model: type[BaseModel],
    *,
    toml: bool = False,
    record: dict[str, str] | None = None,
) -> str:
    """One complete sentence for one pydantic validation issue."""
    location = tuple(issue["loc"])
    if toml:
        where, location, model = _toml_location(where, location, model)
    field = str(location[0]) if location else None
    kind = issue["type"]

    if field is None:
        if model is ConstraintRule and kind == "value_error":
            return _constraint_problem(where, issue)
        return f"{where}: {_reason(issue)}."
    if kind == "extra_forbidden":
        known = [name for name in model.model_fields if name != "origin"]
        what = "table" if isinstance(issue["input"], dict) else "field"
        return (
            f"{where}: got unknown {what} '{field}'; expected one of "
            f"{', '.join(known)}{did_you_mean(field, known)}."
        )
    table = _table_model(model, field) if toml else None
    if table is not None:
        return _table_problem(where, field, table, issue)
    if model is Response and field in _ALL_PARAMETERS and kind == "value_error":
        return _parameter_problem(where, field, issue, (record or {}).get("curve"))
    empty = "no value" if toml else "an empty cell"
    return _value_problem(where, field, model, issue, empty=empty)


def _value_problem(
    where: str, field: str, model: type[BaseModel], issue: Any, *, empty: str
) -> str:
    """A field whose value is missing, of the wrong type or out of range."""
    kind = issue["type"]
    expected = _expected(model, field)
    if kind == "missing" or issue["input"] is None:
        got = empty
    else:
        got = _shown(issue["input"])
    if kind == "value_error":
        expected = f"a valid value ({_reason(issue)})"
    elif kind == "finite_number":
        expected = f"a finite number, {expected}"
    elif kind == "enum":
        expected += did_you_mean(str(issue["input"]), _choices(model, field))
    return f"{where}, field '{field}': got {got}; expected {expected}."


_ALL_PARAMETERS = {name for names in CURVE_PARAMETERS.values() for name in names}


def _parameter_problem(where: str, field: str, issue: Any, curve: str | None) -> str:
    """A curve parameter that the row's curve needs, or does not use."""
    if curve not in set(CurveKind):
        return f"{where}, field '{field}': {_reason(issue)}."
    kind = CurveKind(curve)
    *others, last = CURVE_PARAMETERS[kind] or ("",)
    uses = f"{', '.join(others)} and {last}" if others else last
    if issue["input"] is None:
        return (
            f"{where}, field '{field}': got an empty cell; expected "
            f"{_expected(Response, field)} (a {kind} curve needs {uses})."
        )
    optional = OPTIONAL_PARAMETERS[kind]
    also = f", and optionally {' and '.join(optional)}" if optional else ""
    why = (
        f"a {kind} curve uses only {uses}{also}"
        if uses
        else f"a {kind} curve takes its spend and conversions from the points "
        f"table{also}"
    )
    return (
        f"{where}, field '{field}': got {_shown(issue['input'])}; expected an empty "
        f"cell ({why})."
    )


def _constraint_problem(where: str, issue: Any) -> str:
    """A [[constraints]] entry whose fields do not fit together."""
    entry = issue["input"] if isinstance(issue["input"], dict) else {}
    bounds = ("min", "max", "fixed", "min_share", "max_share")
    scope = str(entry.get("scope", ""))
    if not any(entry.get(bound) is not None for bound in bounds):
        return (
            f"{where}: got none of {', '.join(bounds)}; expected at least one of them."
        )
    if scope == Scope.TOTAL and entry.get("id") is not None:
        return (
            f"{where}, field 'id': got {_shown(entry['id'])}; expected no id, as a "
            "'total' rule applies to the whole spend."
        )
    if scope != Scope.TOTAL and entry.get("id") is None:
        scope_kind = Scope(scope) if scope in {str(s) for s in Scope} else None
        return (
            f"{where}, field 'id': got no value; expected the {scope} the rule "
            f"applies to ({_SCOPE_IDS.get(scope_kind, 'an id')})."
        )
    return f"{where}: {_reason(issue)}."


_SCOPE_IDS: dict[Scope | None, str] = {
    Scope.CHANNEL: "a channel_id",
    Scope.SEGMENT: "a segment_id",
    Scope.STAGE: "'research', 'evaluation' or 'decision'",
    Scope.CELL: "'segment_id/channel_id'",
    Scope.MONTH: "a month of the horizon as YYYY-MM",
}


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
    entry = _entry_model(field.annotation)
    if entry is not None and rest and isinstance(rest[0], int):
        return f"{where}, [[{section}]] entry {rest[0] + 1}", rest[1:], entry
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and rest:
        return f"{where}, [{section}]", rest, annotation
    return where, location, model


def _entry_model(annotation: Any) -> type[BaseModel] | None:
    """The model of each entry of an array of tables such as [[constraints]]."""
    arguments = get_args(annotation)
    first = arguments[0] if arguments else None
    if isinstance(first, type) and issubclass(first, BaseModel):
        return first
    return None


def _table_model(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    """The model of a TOML table such as [budget], or None for a plain key."""
    info = model.model_fields.get(field)
    annotation = info.annotation if info is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _table_problem(where: str, field: str, table: type[BaseModel], issue: Any) -> str:
    """A TOML table that is missing, or is not a table."""
    keys = ", ".join(_required(table))
    wanted = f"a [{field}] table" + (f" with {keys}" if keys else "")
    if issue["type"] == "missing":
        return f"{where}, [{field}]: got no such table; expected {wanted}."
    return f"{where}, field '{field}': got {_shown(issue['input'])}; expected {wanted}."


def _expected(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    if info is None:
        return "a valid value"
    if info.description:
        return info.description
    # An optional Annotated type such as ``Identifier | None`` keeps its
    # description inside the union.
    for argument in get_args(info.annotation):
        for meta in get_args(argument)[1:]:
            description = getattr(meta, "description", None)
            if description:
                return f"{description}, or empty"
    return "a valid value"


def _choices(model: type[BaseModel], field: str) -> list[str]:
    info = model.model_fields.get(field)
    annotation = info.annotation if info is not None else None
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return [member.value for member in annotation]
    return []


def _shown(value: object) -> str:
    """A value as found, in quotes; TOML booleans as TOML writes them."""
    if isinstance(value, bool):
        return repr("true" if value else "false")
    return repr(value if isinstance(value, str) else str(value))


def _reason(issue: Any) -> str:
    message = str(issue["msg"])
    return message.removeprefix("Value error, ")
