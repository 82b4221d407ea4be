"""Several write commands, one transaction: lock their models, claim their ids, run their handlers
one after the other, write every event, outbox row and reply set-wise, commit once.

The models are locked first, in one statement, in UUID order with SKIP LOCKED: a model another
transaction holds defers its commands to a later batch (``None`` in the result) instead of
blocking the others, and two batches never wait on each other's model locks. As in the
one-command path (daemon/applier.py), a refused command costs no savepoint on the common path:
the attempt is rolled back and the batch applied again with a savepoint per command, which keeps
the others' work and stores the refusal. The settings bags the handlers write are stored with the
events, set-wise, or before a later command of the same model, which reads them.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from contracts.errors import RelationdError
from contracts.events import Namespace
from contracts.names import is_uuid
from daemon.applier import Applied, _stored, check_one_model, error_reply, finish_all, ok_reply
from daemon.disposition import Disposition
from handlers import Actor, Change, Context, access, lookup, read_ahead, run, settings_bag
from handlers.context import DEFAULT_LIMITS, Limits

# The opening of a batch, in one round trip. Its models are locked in one fixed order (those
# another transaction holds are skipped, not waited for: "busy"), each with the levels the
# batch's users ($3) have on it, a row per model and user; then every command id is claimed in
# sorted order (two batches claiming overlapping ids take them in the same order), but for the
# commands of a busy model, which wait for a later batch with nothing written. A model that does
# not exist is not busy: its commands run and are refused as usual. Rows: a locked model (with a
# user's level), a busy model, or a claimed command id.
_OPEN = """
WITH m AS (
    SELECT uuid, name FROM model WHERE uuid = ANY($1::uuid[]) OR name = ANY($2::text[])
    ORDER BY uuid FOR NO KEY UPDATE SKIP LOCKED
), busy AS (
    SELECT uuid, name FROM model
    WHERE (uuid = ANY($1::uuid[]) OR name = ANY($2::text[])) AND uuid NOT IN (SELECT uuid FROM m)
), claim AS (
    INSERT INTO processed_command (command_id, command_type, body_sha256, sender)
    SELECT c.id, c.type, c.digest, c.sender
    FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
         AS c(id, type, digest, sender, model)
    WHERE NOT EXISTS (SELECT FROM busy WHERE busy.uuid::text = c.model OR busy.name = c.model)
    ORDER BY c.id
    ON CONFLICT (command_id) DO NOTHING
    RETURNING command_id
)
SELECT m.uuid, m.name, a.user_name, a.level_id, false AS busy, NULL::text AS claimed
FROM m LEFT JOIN model_access a ON a.model_uuid = m.uuid AND a.user_name = ANY($3::text[])
UNION ALL
SELECT uuid, name, NULL, NULL, true, NULL FROM busy
UNION ALL
SELECT NULL, NULL, NULL, NULL, false, command_id FROM claim
"""
# What changes a model's row or its users' levels; after a command of the batch made such a
# change, the model's later commands read them again.
_MODEL_NAMESPACES = frozenset({Namespace.model, Namespace.model_access})
# A command refused its access leaves nothing stored, as in the one-command path.
_UNCLAIM = "DELETE FROM processed_command WHERE command_id = $1"


@dataclass(slots=True)
class Item:
    """One validated write command waiting for its batch."""

    command_id: str
    digest: str
    cmd: Any
    actor: Actor
    key: str = field(init=False)  # the model reference as model_key gives it

    def __post_init__(self) -> None:
        self.key = model_key(self.cmd.model)


@dataclass(slots=True)
class _Writes:
    events: list[tuple[str, Change]] = field(default_factory=list)  # (command id, change)
    replies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stores: list[settings_bag.Store] = field(default_factory=list)  # settings bags written

    async def store_before(self, conn: Any, model: str | None) -> None:
        """Store the bags written so far if ``model`` (a UUID; None: not known) has one among
        them: its next command reads what the earlier ones wrote."""
        if any(model is None or str(s.model_uuid) == model for s in self.stores):
            await settings_bag.store(conn, self.stores)
            self.stores.clear()


class _Refused(Exception):
    """Leaves a batch without savepoints in which a handler raised a domain error."""


def batchable(cmd: Any) -> bool:
    """A write that names its model: it can share a transaction under that model's lock."""
    return not cmd.read_only and isinstance(getattr(cmd, "model", None), str)


def model_key(ref: str) -> str:
    """The model reference as the lock statement compares it (a UUID in canonical form)."""
    return str(uuid.UUID(ref)) if is_uuid(ref) else ref


async def apply_batch(conn: Any, items: list[Item], limits: Limits = DEFAULT_LIMITS) -> list[Applied | None]:
    """Apply ``items`` (each a :func:`batchable` command, no command id twice) in one transaction.

    Returns each item's outcome in order, None for an item whose model another transaction holds
    (nothing of it was written: send it again). Transient database errors propagate; the caller
    retries the whole call.
    """
    try:
        return await _attempt(conn, items, limits, savepoints=False)
    except _Refused:
        return await _attempt(conn, items, limits, savepoints=True)


async def _attempt(conn: Any, items: list[Item], limits: Limits, *, savepoints: bool) -> list[Applied | None]:
    results: list[Applied | None] = [None] * len(items)
    async with conn.transaction():
        keys = [item.key for item in items]
        uuids = sorted({k for k in keys if is_uuid(k)})
        names = sorted({k for k in keys if not is_uuid(k)})
        users = sorted({item.actor.user for item in items if item.actor.user is not None})
        locked: dict[str, Any] = {}
        levels: dict[tuple[str, str], int] = {}
        busy: set[str] = set()
        claimed: set[str] = set()
        rows = await conn.fetch(
            _OPEN,
            uuids,
            names,
            users,
            [item.command_id for item in items],
            [item.cmd.type for item in items],
            [item.digest for item in items],
            [item.actor.user for item in items],
            keys,
        )
        for row in rows:
            if row["claimed"] is not None:
                claimed.add(row["claimed"])
            elif row["busy"]:
                busy.update((str(row["uuid"]), row["name"]))
            else:
                locked[str(row["uuid"])] = locked[row["name"]] = row
                if row["user_name"] is not None:
                    levels[str(row["uuid"]), row["user_name"]] = row["level_id"]
        # A model that does not exist is not busy: its commands run and are refused as usual.
        todo = [i for i, k in enumerate(keys) if k not in busy]
        if not todo:
            return results
        # Each model's first command that will run (claimed) reads what its handler starts with
        # together with the others': nothing of its model has changed before it.
        firsts: dict[str, int] = {}
        for i in todo:
            row = locked.get(keys[i])
            if row is not None and items[i].command_id in claimed:
                firsts.setdefault(str(row["uuid"]), i)
        ahead = dict(
            zip(
                firsts.values(),
                await read_ahead.read(conn, [(m, items[i].cmd) for m, i in firsts.items()]),
                strict=True,
            )
        )
        writes = _Writes()
        stale: set[str] = set()
        for i in todo:
            item, key = items[i], keys[i]
            row = locked.get(key)
            await writes.store_before(conn, None if row is None else str(row["uuid"]))
            known: tuple[Any, int | None] | None = None
            if row is not None and str(row["uuid"]) not in stale:
                known = row, levels.get((str(row["uuid"]), item.actor.user or ""))
            changes = len(writes.events)
            results[i] = await _one(
                conn, item, limits, known, item.command_id in claimed, writes, savepoints, ahead.get(i, {})
            )
            stale.update(
                str(c.model_uuid) for _, c in writes.events[changes:] if c.namespace in _MODEL_NAMESPACES
            )
        await _finish(conn, writes)
    return results


async def _one(
    conn: Any,
    item: Item,
    limits: Limits,
    known: tuple[Any, int | None] | None,
    claimed: bool,
    writes: _Writes,
    savepoints: bool,
    ahead: dict[Hashable, Any],
) -> Applied:
    cmd, actor, command_id = item.cmd, item.actor, item.command_id
    ctx = Context(conn, actor, limits, read_ahead=ahead)
    refusal: RelationdError | None = None
    needed = access.level_to_check(actor, cmd)
    if needed is not None:
        try:
            if known is None:
                row, level_id = await lookup.model_and_level(conn, cmd.model, actor.user, lock=False)
            else:
                row, level_id = known
        except RelationdError as err:
            refusal = err
        else:
            ctx.knows_model(cmd.model, row, locked=known is not None)
            try:
                access.check(actor, cmd, needed, row, level_id)
            except RelationdError as err:
                refusal = err
    elif known is not None:
        ctx.knows_model(cmd.model, known[0], locked=True)
    if not claimed:
        return await _stored(conn, command_id, item.digest, cmd, actor, refusal)
    if refusal is not None:
        await conn.execute(_UNCLAIM, command_id)
        return Applied(error_reply(command_id, cmd.type, refusal), Disposition.denied)
    scope: AbstractAsyncContextManager[Any] = conn.transaction() if savepoints else nullcontext()
    try:
        async with scope:
            outcome = await run(ctx, cmd)
    except RelationdError as err:
        if not savepoints:
            raise _Refused from None
        reply = error_reply(command_id, cmd.type, err)
        writes.replies.append((command_id, reply))
        return Applied(reply, Disposition.refused)
    check_one_model(outcome.changes)
    reply = ok_reply(command_id, cmd.type, outcome.result)
    writes.replies.append((command_id, reply))
    writes.events.extend((command_id, c) for c in outcome.changes)
    writes.stores.extend(ctx.bag_stores)
    return Applied(reply, Disposition.applied, len(outcome.changes))


async def _finish(conn: Any, writes: _Writes) -> None:
    if writes.replies:
        await finish_all(conn, writes.events, writes.replies, writes.stores)
