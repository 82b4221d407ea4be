"""Who may do what: per-model access levels (read < write < admin), after Juju's model access.

The acting user is the broker user RabbitMQ vouched for (the AMQP ``user_id``); the daemon turns
it into an :class:`Actor`. Every command needs a level on its model; refusals change nothing.
"""

from __future__ import annotations

from typing import Any

from contracts import errors
from contracts.commands import AccessLevel, AnyCommand, Grant, ListAccess, ListModels, RemoveModel, Revoke
from contracts.events import Namespace
from contracts.replies import AccessInfo, ModelInfo
from handlers import lookup
from handlers.context import Actor, Context
from handlers.db import Connection
from handlers.outcome import Change, Outcome
from handlers.registry import handles
from handlers.rows import Row
from handlers.values import AccessLevelId

_LEVEL_OF = """
SELECT level_id FROM model_access WHERE model_uuid = $1 AND user_name = $2
"""
_GRANT = """
INSERT INTO model_access (model_uuid, user_name, level_id) VALUES ($1, $2, $3)
ON CONFLICT (model_uuid, user_name) DO UPDATE SET level_id = EXCLUDED.level_id, granted_at = now()
WHERE model_access.level_id < EXCLUDED.level_id
RETURNING level_id
"""
_SET_LEVEL = "UPDATE model_access SET level_id = $3 WHERE model_uuid = $1 AND user_name = $2"
_DELETE_ACCESS = "DELETE FROM model_access WHERE model_uuid = $1 AND user_name = $2"
_MODEL_ACCESS = """
SELECT m.name AS model, a.user_name, a.level_id FROM model_access a
JOIN model m ON m.uuid = a.model_uuid
WHERE a.model_uuid = $1 ORDER BY a.user_name
"""
_ADMINISTERED_ACCESS = f"""
SELECT m.name AS model, a.user_name, a.level_id FROM model_access a
JOIN model m ON m.uuid = a.model_uuid
WHERE $1::text IS NULL OR a.model_uuid IN (
    SELECT model_uuid FROM model_access WHERE user_name = $1 AND level_id = {AccessLevelId.admin:d})
ORDER BY m.name, a.user_name
"""
_VISIBLE_MODELS = """
SELECT uuid, name FROM model
WHERE $1::text IS NULL OR uuid IN (SELECT model_uuid FROM model_access WHERE user_name = $1)
ORDER BY name
"""
# Children first: units and relations reference applications without cascading.
_REMOVE_MODEL = (
    "DELETE FROM relation WHERE model_uuid = $1",
    "DELETE FROM application_leader WHERE model_uuid = $1",
    "UPDATE unit SET principal_uuid = NULL WHERE model_uuid = $1 AND principal_uuid IS NOT NULL",
    "DELETE FROM unit WHERE model_uuid = $1",
    "DELETE FROM application_endpoint WHERE model_uuid = $1",
    "DELETE FROM application WHERE model_uuid = $1",
    "DELETE FROM charm WHERE model_uuid = $1",
    "DELETE FROM model WHERE uuid = $1",
)


def level_to_check(actor: Actor, cmd: AnyCommand) -> AccessLevel | None:
    """The level ``actor`` needs on ``cmd``'s model; None when nothing is to be checked."""
    needed = cmd.access
    if isinstance(cmd, ListAccess) and cmd.model is not None:
        needed = AccessLevel.admin
    return None if actor.superuser else needed


def check(actor: Actor, cmd: Any, needed: AccessLevel, model: Row, level_id: int | None) -> None:
    """Raises PermissionDenied, naming user, model and level, unless ``level_id`` suffices.

    ``model`` is the row the access check read (the daemon's claim row, or model_and_level's).
    """
    if level_id is None or level_id < AccessLevelId.of(needed):
        has = "no access" if level_id is None else f"{AccessLevelId(level_id).label} access"
        raise errors.PermissionDenied(
            f"user {actor.user!r} needs {needed.value} access to model {model['name']!r} for "
            f"{cmd.type} (has {has})",
            user=actor.user,
            model=model["name"],
            needed=needed.value,
        )


async def authorize(ctx: Context, cmd: AnyCommand) -> None:
    """Raises PermissionDenied (naming user, model and level) unless the actor may send cmd.

    Also ModelNotFound, and for list_access on one model, admin is required. The model row read
    (locked, for a write) is kept in ``ctx`` for the handler.
    """
    needed = level_to_check(ctx.actor, cmd)
    if needed is None:
        return
    # The daemon checks writes in its opening statement (daemon/applier.py) and calls this for reads.
    ref: str = cmd.model  # type: ignore[attr-defined]  # a command needing access names its model
    lock = not cmd.read_only
    model, level_id = await lookup.model_and_level(ctx.conn, ref, ctx.actor.user, lock=lock)
    ctx.knows_model(ref, model, locked=lock)
    check(ctx.actor, cmd, needed, model, level_id)


async def grant_creator(conn: Connection, actor: Actor, model_uuid: str) -> None:
    """The user who creates a model is its admin."""
    if actor.user is not None:
        await conn.execute(_GRANT, model_uuid, actor.user, AccessLevelId.admin)


def _level(level_id: int) -> AccessLevel:
    return AccessLevel(AccessLevelId(level_id).label)


def _change(model_uuid: str, kind: str, user: str, level: AccessLevel | None) -> Change:
    return Change(
        model_uuid,
        Namespace.model_access,
        kind,
        {"user": user},
        {"level": level.value if level else None},
    )


@handles(Grant)
async def grant(ctx: Context, cmd: Grant) -> Outcome:
    """Raise a user's access to ``level``; a lower grant than the user has changes nothing."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    changed = await conn.fetchval(_GRANT, model.uuid, cmd.user, AccessLevelId.of(cmd.level))
    level_id = await conn.fetchval(_LEVEL_OF, model.uuid, cmd.user)
    level = _level(level_id)
    out = [_change(model.uuid, "granted", cmd.user, level)] if changed is not None else []
    return Outcome(AccessInfo(model=model.name, user=cmd.user, level=level.value), out)


@handles(Revoke)
async def revoke(ctx: Context, cmd: Revoke) -> Outcome:
    """Lower a user's access to below ``level`` (revoking read removes all access)."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    current = await conn.fetchval(_LEVEL_OF, m, cmd.user)
    target = AccessLevelId.of(cmd.level) - 1
    out: list[Change] = []
    if current is not None and current > target:
        if target < 0:
            await conn.execute(_DELETE_ACCESS, m, cmd.user)
        else:
            await conn.execute(_SET_LEVEL, m, cmd.user, target)
        left = _level(target) if target >= 0 else None
        out.append(_change(m, "revoked", cmd.user, left))
        current = target if target >= 0 else None
    level = _level(current).value if current is not None else None
    return Outcome(AccessInfo(model=model.name, user=cmd.user, level=level), out)


@handles(ListAccess)
async def list_access(ctx: Context, cmd: ListAccess) -> Outcome:
    """Access on one model, or on every model the actor administers (all, for superusers)."""
    conn = ctx.conn
    actor = ctx.actor
    if cmd.model is not None:
        model = await ctx.model(cmd.model, lock=False)
        rows = await conn.fetch(_MODEL_ACCESS, model.uuid)
    else:
        rows = await conn.fetch(_ADMINISTERED_ACCESS, None if actor.superuser else actor.user)
    return Outcome(
        [AccessInfo(model=r["model"], user=r["user_name"], level=_level(r["level_id"]).value) for r in rows]
    )


@handles(ListModels)
async def list_models(ctx: Context, cmd: ListModels) -> Outcome:
    """The models the actor has any access to (every model, for superusers)."""
    conn = ctx.conn
    actor = ctx.actor
    rows = await conn.fetch(_VISIBLE_MODELS, None if actor.superuser else actor.user)
    return Outcome([ModelInfo(uuid=r["uuid"], name=r["name"]) for r in rows])


@handles(RemoveModel)
async def remove_model(ctx: Context, cmd: RemoveModel) -> Outcome:
    """Remove a model and all it holds. Its change log stays, ending with ``model removed``."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    for statement in _REMOVE_MODEL:
        await conn.execute(statement, model.uuid)
    change = Change(model.uuid, Namespace.model, "removed", {"model": model.name})
    return Outcome(ModelInfo(uuid=model.uuid, name=model.name), [change])
