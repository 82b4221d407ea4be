"""Constrained types for values that end up in PostgreSQL columns, so that a value the database
would refuse is refused at validation, as InvalidCommand naming its field, never as Internal.

PostgreSQL's text and jsonb hold no NUL character; bigint and integer columns hold 64- and 32-bit
signed integers (asyncpg cannot even send a larger Python int).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

BIGINT_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1


def storable(value: str) -> str:
    """Text PostgreSQL can store: no NUL, no lone surrogate (invalid UTF-8 on the wire)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


# Free text stored in a text or jsonb column (add a max_length where the field needs one).
StorableText = Annotated[str, AfterValidator(storable)]
# A non-negative integer compared with or stored in a bigint column.
BigIntCount = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
# A non-negative integer stored in an integer (int4) column.
IntegerCount = Annotated[int, Field(ge=0, le=INTEGER_MAX)]
