"""Replay: a model's committed change events after a sequence number, while they are kept.

Retention (daemon/retention.py) deletes the oldest events of the log, a prefix of every model's
sequence; a replay that would start before what is kept is refused with EventsExpired, never
answered with a silent gap.
"""

from __future__ import annotations

from contracts import errors
from contracts.commands import EventsAfter
from contracts.events import ChangeEvent
from handlers.context import Context
from handlers.outcome import Outcome
from handlers.registry import handles

_EVENTS_AFTER = """
SELECT event_id, model_uuid, seq, namespace, kind, key, payload, command_id, created_at
FROM change_event
WHERE model_uuid = $1 AND seq > $2
  AND ($3::text IS NULL OR namespace = $3)
  AND ($4::bigint IS NULL OR (key ->> 'relation_id')::bigint = $4)
ORDER BY seq
LIMIT $5
"""
# The first seq the log still holds for the model; when it holds none, the one after the last
# handed out (the model is up to date at its last seq).
_FIRST_KEPT = """
SELECT COALESCE((SELECT min(seq) FROM change_event WHERE model_uuid = $1),
                (SELECT value + 1 FROM model_event_sequence WHERE model_uuid = $1),
                1)
"""


@handles(EventsAfter)
async def events_after(ctx: Context, cmd: EventsAfter) -> Outcome:
    """Events with ``seq > after`` in sequence order, at most ``limit``."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    rows = await conn.fetch(_EVENTS_AFTER, model.uuid, cmd.after, cmd.namespace, cmd.relation_id, cmd.limit)
    unfiltered = cmd.namespace is None and cmd.relation_id is None
    if not (unfiltered and rows and rows[0]["seq"] == cmd.after + 1):
        first = await conn.fetchval(_FIRST_KEPT, model.uuid)
        if cmd.after < first - 1:
            raise errors.EventsExpired(
                f"events of model {model.name!r} after seq {cmd.after} are no longer kept "
                f"(the oldest kept is seq {first}); read a snapshot and follow from its seq",
                model=model.name,
                after=cmd.after,
                oldest_kept_seq=first,
            )
    return Outcome([ChangeEvent(**dict(r)) for r in rows])
