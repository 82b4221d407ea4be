"""Apply schema.sql: one transaction, one advisory lock, safe on every start and upgrade."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 4
_LOCK = 0x72656C6D  # "relm": one migrator at a time across every instance


def schema_path() -> Path:
    """RELATIOND_SCHEMA_FILE, else the checkout's schema.sql, else the installed copy."""
    explicit = os.environ.get("RELATIOND_SCHEMA_FILE")
    candidates = [Path(explicit)] if explicit else []
    candidates += [
        Path(__file__).resolve().parent.parent / "schema.sql",
        Path(sys.prefix) / "share" / "relationd" / "schema.sql",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError("schema.sql not found; set RELATIOND_SCHEMA_FILE")


async def apply_schema(conn: Any, path: Path | None = None) -> int:
    """Apply the schema; returns the version the database now records."""
    sql = (path or schema_path()).read_text()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        await conn.execute("SET LOCAL client_min_messages = warning")
        await conn.execute(sql)
    version: int = await conn.fetchval("SELECT max(version) FROM schema_version")
    return version


async def schema_version(conn: Any) -> int | None:
    """The version recorded in the database, or None when the schema was never applied."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return None
    version: int | None = await conn.fetchval("SELECT max(version) FROM schema_version")
    return version
