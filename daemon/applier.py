"""One command, one transaction: dedupe, access and model lock, handler, outbox, reply.

The reply is stored with the command id and its sender, so a redelivered command is answered from
the store and changes nothing; command ids are not secret (events carry them), so the stored reply
goes only to the sender or to a user with the access the command needed. A domain error is stored
as the reply too, so the same command always gets the same answer: the attempt that refused is
rolled back and the command applied again with its handler in a savepoint, which the common,
successful path does not pay for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python

from contracts import errors
from contracts.errors import RelationdError
from contracts.events import routing_key
from contracts.names import is_uuid
from daemon.disposition import Disposition
from handlers import Actor, Change, Context, access, authorize, lookup, run, settings_bag
from handlers.context import DEFAULT_LIMITS, Limits

SYSTEM = Actor.system()

# The claim records the sender, to whom alone (and to users with the access the command needed)
# a duplicate is answered from the store.
_CLAIM = """
INSERT INTO processed_command (command_id, command_type, body_sha256, sender) VALUES ($1, $2, $3, $4)
ON CONFLICT (command_id) DO NOTHING
RETURNING command_id
"""
# The opening of a write that needs access to a model, in one round trip: claim the command id,
# lock the model and read the acting user's level on it (handlers/lookup.py's model-and-access
# query). Always one row; a claim taken for a command that is then refused is rolled back with
# the rest.
_CLAIM_CTE = """claim AS (
    INSERT INTO processed_command (command_id, command_type, body_sha256, sender) VALUES ($3, $4, $5, $2)
    ON CONFLICT (command_id) DO NOTHING
    RETURNING command_id
), """
_CLAIM_LOCKING_MODEL = {
    by_uuid: lookup.model_access_sql(
        by_uuid=by_uuid, lock=True, before=_CLAIM_CTE, columns="EXISTS (SELECT FROM claim) AS claimed, "
    )
    for by_uuid in (False, True)
}
_STORED = "SELECT body_sha256, reply, sender FROM processed_command WHERE command_id = $1"
_STORE_REPLY = "UPDATE processed_command SET reply = $2 WHERE command_id = $1"
# The end of one command or of a batch, in one round trip: number every event per model (gapless,
# in the given order), insert them into the log and the outbox and store every reply. A model
# removed in this transaction has no sequence row left, so its log goes on from the last seq. No
# NOTIFY here: a notifying commit holds PostgreSQL's one notify lock through its WAL flush, which
# would queue every command's commit behind the others'; the daemon wakes the relay after the
# commit instead. Built from the parts below in sixteen forms, chosen by finish_all: the end of a
# command applied alone is the one-model, one-reply form, with or without the one settings bag it writes.
_NUMBER_EACH_MODEL = """ev AS (
    SELECT t.*, row_number() OVER (PARTITION BY t.m ORDER BY t.o) AS rn
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[])
         WITH ORDINALITY AS t(m, n, k, r, kj, pj, cid, o)
), counts AS (
    SELECT m, count(*) AS c FROM ev GROUP BY m
), seq AS (
    UPDATE model_event_sequence s SET value = s.value + counts.c FROM counts
    WHERE s.model_uuid = counts.m RETURNING s.model_uuid, s.value - counts.c AS first
), base AS (
    SELECT counts.m,
           COALESCE(seq.first,
                    (SELECT COALESCE(max(e.seq), 0) FROM change_event e WHERE e.model_uuid = counts.m))
           AS first
    FROM counts LEFT JOIN seq ON seq.model_uuid = counts.m
), events AS (
    INSERT INTO change_event (model_uuid, seq, namespace, kind, routing_key, key, payload, command_id)
    SELECT ev.m, base.first + ev.rn, ev.n, ev.k, ev.r, ev.kj, ev.pj, ev.cid
    FROM ev JOIN base ON base.m = ev.m
    ORDER BY ev.o
    RETURNING event_id
)"""
# Every event of one model ($1): no window, grouping or join, whose plan costs the general form
# about 0.1 ms of the backend's CPU at every execution.
_NUMBER_ONE_MODEL = """seq AS (
    UPDATE model_event_sequence SET value = value + cardinality($2::text[])
    WHERE model_uuid = $1::uuid RETURNING value - cardinality($2::text[]) AS first
), events AS (
    INSERT INTO change_event (model_uuid, seq, namespace, kind, routing_key, key, payload, command_id)
    SELECT $1::uuid,
           COALESCE((SELECT first FROM seq),
                    (SELECT COALESCE(max(e.seq), 0) FROM change_event e WHERE e.model_uuid = $1::uuid))
           + t.o,
           t.n, t.k, t.r, t.kj, t.pj, t.cid
    FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[])
         WITH ORDINALITY AS t(n, k, r, kj, pj, cid, o)
    ORDER BY t.o
    RETURNING event_id
)"""
# One reply by its primary key: an index scan in every plan. Joined to the replies' array
# instead, the generic plan made while processed_command was small hashes a sequential scan of
# the whole table, and keeps doing so at every command as the table grows until the next analyze.
_STORE_ONE_REPLY = "UPDATE processed_command SET reply = ($9::jsonb[])[1] WHERE command_id = ($8::text[])[1]"
_STORE_EACH_REPLY = """UPDATE processed_command p SET reply = r.reply
    FROM unnest($8::text[], $9::jsonb[]) AS r(id, reply)
    WHERE p.command_id = r.id"""


def _finish_sql(numbering: str, store: str, bags: settings_bag.Bag | str | None) -> str:
    stores = "" if bags is None else f", {settings_bag.store_ctes(10, bags)}"
    return f"""
WITH {numbering}, pending AS (
    INSERT INTO outbox (event_id) SELECT event_id FROM events
), stored AS (
    {store}
){stores}
SELECT count(*) FROM events
"""


# By (events of one model, one reply, how the settings bags are stored): the handlers' bag writes
# (settings_bag.write) are stored here too, a round trip less per settings write.
_FINISH = {
    (one_model, one_reply, bags): _finish_sql(
        _NUMBER_ONE_MODEL if one_model else _NUMBER_EACH_MODEL,
        _STORE_ONE_REPLY if one_reply else _STORE_EACH_REPLY,
        bags,
    )
    for one_model in (False, True)
    for one_reply in (False, True)
    for bags in settings_bag.FORMS
}


@dataclass(frozen=True, slots=True)
class Applied:
    reply: dict[str, Any]
    disposition: Disposition
    events: int = 0


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def ok_reply(command_id: str, cmd_type: str, result: Any) -> dict[str, Any]:
    return {
        "ok": True,
        "command_id": command_id,
        "type": cmd_type,
        "result": to_jsonable_python(result),
    }


def error_reply(command_id: str | None, cmd_type: str | None, err: RelationdError) -> dict[str, Any]:
    return {"ok": False, "command_id": command_id, "type": cmd_type, "error": err.to_dict()}


class _Denied(Exception):
    """Leaves the transaction so that a refused authorisation writes nothing, not even the claim."""

    def __init__(self, err: RelationdError) -> None:
        self.err = err


async def apply(
    conn: Any,
    command_id: str,
    digest: str,
    cmd: Any,
    actor: Actor = SYSTEM,
    limits: Limits = DEFAULT_LIMITS,
) -> Applied:
    """Apply one validated command for ``actor`` on ``conn`` in a transaction of its own, within
    the configured ``limits``.

    An authorisation refusal is not stored: after access is granted, the same command id may be
    sent again. Transient database errors propagate; the caller retries the whole call.
    """
    if cmd.read_only:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            ctx = Context(conn, actor, limits)
            try:
                await authorize(ctx, cmd)
                outcome = await run(ctx, cmd)
            except RelationdError as err:
                return Applied(error_reply(command_id, cmd.type, err), Disposition.refused)
            return Applied(ok_reply(command_id, cmd.type, outcome.result), Disposition.read)
    try:
        return await _write(conn, command_id, digest, cmd, actor, limits, savepoint=False)
    except _Refused:
        # The handler refused, perhaps after writing: that attempt rolled back. Refusals are
        # rare, so only now pay for a savepoint, which keeps the claim and the stored refusal.
        return await _write(conn, command_id, digest, cmd, actor, limits, savepoint=True)


class _Refused(Exception):
    """Leaves a transaction without a savepoint whose handler raised a domain error."""


async def _write(
    conn: Any, command_id: str, digest: str, cmd: Any, actor: Actor, limits: Limits, *, savepoint: bool
) -> Applied:
    try:
        async with conn.transaction():
            ctx = Context(conn, actor, limits)
            claimed, refusal = await _claim_and_authorize(ctx, command_id, digest, cmd)
            if not claimed:
                return await _stored(conn, command_id, digest, cmd, actor, refusal)
            if refusal is not None:
                raise _Denied(refusal)
            # With a savepoint a refusal rolls back to it and leaves only the stored reply.
            handler_scope: AbstractAsyncContextManager[Any] = (
                conn.transaction() if savepoint else nullcontext()
            )
            try:
                async with handler_scope:
                    outcome = await run(ctx, cmd)
                    reply = ok_reply(command_id, cmd.type, outcome.result)
                    await finish(conn, outcome.changes, command_id, reply, ctx.bag_stores)
            except RelationdError as err:
                if not savepoint:
                    raise _Refused from None
                reply = error_reply(command_id, cmd.type, err)
                await conn.execute(_STORE_REPLY, command_id, reply)
                return Applied(reply, Disposition.refused)
            return Applied(reply, Disposition.applied, len(outcome.changes))
    except _Denied as denied:
        return Applied(error_reply(command_id, cmd.type, denied.err), Disposition.denied)


async def _claim_and_authorize(
    ctx: Context, command_id: str, digest: str, cmd: Any
) -> tuple[bool, RelationdError | None]:
    """Claim the command id for ``actor`` and check the actor's access, in one round trip.

    Returns whether the id was claimed now (False: a duplicate) and the refusal the actor gets
    without a stored reply (ModelNotFound, PermissionDenied), None when the actor may send ``cmd``.
    """
    actor = ctx.actor
    needed = access.level_to_check(actor, cmd)
    if needed is None:
        claimed = await ctx.conn.fetchval(_CLAIM, command_id, cmd.type, digest, actor.user) is not None
        return claimed, None
    query = _CLAIM_LOCKING_MODEL[is_uuid(cmd.model)]
    row = await ctx.conn.fetchrow(query, cmd.model, actor.user, command_id, cmd.type, digest)
    if row["uuid"] is None:
        return row["claimed"], lookup.model_not_found(cmd.model)
    ctx.knows_model(cmd.model, row, locked=True)
    try:
        access.check(actor, cmd, needed, row, row["level_id"])
    except RelationdError as err:
        return row["claimed"], err
    return row["claimed"], None


async def _stored(
    conn: Any, command_id: str, digest: str, cmd: Any, actor: Actor, refusal: RelationdError | None
) -> Applied:
    """Answer a duplicate command id from the store, to its sender or to an actor with the access
    the command needed; anyone else gets the refusal they would get without the duplicate.

    A command open to every user (create_model) is answered from the store to its sender and to
    superusers only. Rows stored before schema 4 have no sender: they go to the users with the
    access the command needed. Nothing is written either way.
    """
    row = await conn.fetchrow(_STORED, command_id)
    if row["sender"] is None or row["sender"] != actor.user:
        if refusal is not None:
            return Applied(error_reply(command_id, cmd.type, refusal), Disposition.denied)
        if not actor.superuser and cmd.access is None:
            err = errors.InvalidCommand(
                f"command id {command_id!r} was already used by another user; command ids must be unique",
                field="message_id",
            )
            return Applied(error_reply(command_id, cmd.type, err), Disposition.denied)
    if row["body_sha256"] != digest:
        err = errors.InvalidCommand(
            f"command id {command_id!r} was already used for a different command; command ids must be unique",
            field="message_id",
        )
        return Applied(error_reply(command_id, cmd.type, err), Disposition.refused)
    return Applied(dict(row["reply"]), Disposition.duplicate)


async def finish(
    conn: Any,
    changes: list[Change],
    command_id: str,
    reply: dict[str, Any],
    stores: Sequence[settings_bag.Store] = (),
) -> None:
    """Write the command's change events, the settings bags its handler wrote and its reply.

    A command acts on one model (its lock serialises that model only), so all its changes share
    one model and one per-model sequence.
    """
    if not changes and not stores:
        await conn.execute(_STORE_REPLY, command_id, reply)
        return
    check_one_model(changes)
    await finish_all(conn, [(command_id, c) for c in changes], [(command_id, reply)], stores)


def check_one_model(changes: list[Change]) -> None:
    models = {c.model_uuid for c in changes}
    if len(models) > 1:
        raise RuntimeError(f"a command changed {len(models)} models; a command acts on one model")


async def finish_all(
    conn: Any,
    events: list[tuple[str, Change]],
    replies: list[tuple[str, dict[str, Any]]],
    stores: Sequence[settings_bag.Store] = (),
) -> None:
    """Write ``events`` (command id, change), numbered per model in this order, ``replies``
    (command id, reply) and the settings bags' ``stores`` (at most one per bag)."""
    models = {c.model_uuid for _, c in events}
    query = _FINISH[len(models) == 1, len(replies) == 1, settings_bag.form(stores)]
    first: Any = models.pop() if len(models) == 1 else [c.model_uuid for _, c in events]
    bags = settings_bag.store_args(stores) if stores else ()
    await conn.execute(query, first, *_finish_columns(events, replies), *bags)


def _finish_columns(
    events: list[tuple[str, Change]], replies: list[tuple[str, dict[str, Any]]]
) -> tuple[list[Any], ...]:
    """The finishing statements' arrays after the events' models: one element per event, then per reply."""
    return (
        [c.namespace.value for _, c in events],
        [c.kind for _, c in events],
        [routing_key(c.model_uuid, c.namespace, c.relation_id) for _, c in events],
        [to_jsonable_python(c.key) for _, c in events],
        [to_jsonable_python(c.payload) for _, c in events],
        [cid for cid, _ in events],
        [cid for cid, _ in replies],
        [r for _, r in replies],
    )
