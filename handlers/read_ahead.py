"""What a batch reads for its commands before their handlers run: the unit in a relation that
each handler declares it looks up first (``handles(reads_first=...)``), for several commands in one
statement instead of one each.

Read after the batch has locked its models, and only for a model's first command in the batch:
no earlier command of the transaction has changed that model, so the read is what the handler
itself would read.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from handlers import unit_in_relation
from handlers.db import Connection
from handlers.registry import READS_FIRST


async def read(conn: Connection, commands: list[tuple[str, Any]]) -> list[dict[Hashable, Any]]:
    """For each (model UUID, command), what its handler would read first, by what it asks
    (``Context.read_ahead``); nothing unless two or more commands declare a read, since for one
    the statement saves nothing."""
    ahead: list[dict[Hashable, Any]] = [{} for _ in commands]
    asks = [
        (i, model_uuid, READS_FIRST[type(cmd)](cmd))
        for i, (model_uuid, cmd) in enumerate(commands)
        if type(cmd) in READS_FIRST
    ]
    if len(asks) < 2:
        return ahead
    found = await unit_in_relation.find_many(conn, [(m, wanted) for _, m, wanted in asks])
    for (i, m, wanted), answer in zip(asks, found, strict=True):
        ahead[i][str(m), wanted] = answer
    return ahead
