"""The building blocks of every input model: one frozen base and shared fields.

The scenario, its bid rules and its governance settings are separate
modules that the scenario composes; they all build on these, so every input
is immutable, refuses unknown fields, NaN and infinity, and names its
identifiers the same way.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"

Identifier = Annotated[
    str,
    Field(
        pattern=IDENTIFIER_PATTERN,
        description="an identifier of letters, digits, '_', '.' or '-'",
    ),
]
Month = Annotated[str, Field(pattern=MONTH_PATTERN, description="a month as YYYY-MM")]


class Frozen(BaseModel):
    """Base of every input model: immutable, strict about names and numbers."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        str_strip_whitespace=True,
        use_enum_values=False,
    )
