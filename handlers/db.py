"""The database connection handlers use, and its set-up shared by the daemon, tests and tools:
how values cross the driver."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from asyncpg import Record


class Connection(Protocol):
    """What handlers ask of an asyncpg connection (a pooled one is a proxy, not a Connection
    subclass, and asyncpg ships no type information: this is the part they rely on)."""

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str: ...

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None: ...

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Record]: ...

    # The row or None; typed Any as asyncpg gives it, for the queries that always return one.
    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any: ...

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any: ...


async def init_connection(conn: Any) -> None:
    """UUIDs as strings and JSON(B) as Python objects, on every pooled connection."""
    await conn.set_type_codec("uuid", encoder=str, decoder=str, schema="pg_catalog")
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
