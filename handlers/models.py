"""Models: the tenants every other row belongs to."""

from __future__ import annotations

import uuid

from contracts import errors
from contracts.commands import CreateModel
from contracts.events import Namespace
from contracts.replies import ModelInfo
from handlers import access
from handlers.context import Context
from handlers.outcome import Change, Outcome
from handlers.registry import handles

_INSERT_MODEL = """
INSERT INTO model (uuid, name) VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING
RETURNING uuid
"""
_INSERT_SEQUENCES = """
WITH rs AS (INSERT INTO relation_sequence (model_uuid) VALUES ($1))
INSERT INTO model_event_sequence (model_uuid) VALUES ($1)
"""
_INSERT_ALPHA_SPACE = "INSERT INTO space (model_uuid, uuid, name) VALUES ($1, $2, 'alpha')"


@handles(CreateModel)
async def create_model(ctx: Context, cmd: CreateModel) -> Outcome:
    """Create a model with its relation and event sequences and the default space; the user who
    creates it is its admin.
    """
    conn = ctx.conn
    actor = ctx.actor
    model_uuid = str(uuid.uuid4())
    if await conn.fetchval(_INSERT_MODEL, model_uuid, cmd.name) is None:
        raise errors.ModelAlreadyExists(f"model {cmd.name!r} already exists", model=cmd.name)
    await conn.execute(_INSERT_SEQUENCES, model_uuid)
    await conn.execute(_INSERT_ALPHA_SPACE, model_uuid, str(uuid.uuid4()))
    await access.grant_creator(conn, actor, model_uuid)
    change = Change(model_uuid, Namespace.model, "created", {"model": cmd.name})
    return Outcome(ModelInfo(uuid=model_uuid, name=cmd.name), [change])
