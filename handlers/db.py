"""Connection set-up shared by the daemon, tests and tools: how values cross the driver."""

from __future__ import annotations

import json
from typing import Any


async def init_connection(conn: Any) -> None:
    """UUIDs as strings and JSON(B) as Python objects, on every pooled connection."""
    await conn.set_type_codec("uuid", encoder=str, decoder=str, schema="pg_catalog")
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
