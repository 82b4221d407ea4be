"""Bring a database to the current schema: schema.sql when empty, else the numbered migrations.

One transaction under one advisory lock, safe on every start and upgrade: a fresh database gets
schema.sql and is stamped at SCHEMA_VERSION; one at an earlier version gets each later file of
migrations/ (``0002_model_access.sql``...) in order, each recorded in schema_version; one at the
current version, or a newer one (another instance was upgraded first), is left alone.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 4
_LOCK = 0x72656C6D  # "relm": one migrator at a time across every instance
_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


@dataclass(frozen=True)
class Migration:
    """One numbered upgrade: the SQL that takes a database from version - 1 to version."""

    version: int
    path: Path


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


def migrations(schema: Path | None = None) -> list[Migration]:
    """The migrations beside schema.sql (its sibling migrations/), in order, checked gapless up to
    SCHEMA_VERSION so that a missing or stray file stops the upgrade before it starts."""
    directory = (schema or schema_path()).parent / "migrations"
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.fullmatch(path.name)
        if match is None:
            raise ValueError(f"{path}: a migration is named NNNN_what.sql")
        found.append(Migration(int(match.group(1)), path))
    expected = list(range(2, SCHEMA_VERSION + 1))
    if [m.version for m in found] != expected:
        raise ValueError(
            f"{directory}: migrations {[m.version for m in found]} do not run gapless from 2 to "
            f"schema version {SCHEMA_VERSION}"
        )
    return found


async def apply_schema(conn: Any, path: Path | None = None) -> int:
    """Create or upgrade the schema; returns the version the database now records."""
    schema = path or schema_path()
    upgrades = migrations(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        await conn.execute("SET LOCAL client_min_messages = warning")
        current = await schema_version(conn)
        if current is None:
            await conn.execute(schema.read_text())
            await _record(conn, SCHEMA_VERSION)
        else:
            for migration in upgrades:
                if migration.version > current:
                    await conn.execute(migration.path.read_text())
                    await _record(conn, migration.version)
    version: int = await conn.fetchval("SELECT max(version) FROM schema_version")
    return version


async def _record(conn: Any, version: int) -> None:
    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)


async def schema_version(conn: Any) -> int | None:
    """The version recorded in the database, or None when the schema was never applied."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return None
    version: int | None = await conn.fetchval("SELECT max(version) FROM schema_version")
    return version
