"""Replay: a model's committed change events after a sequence number."""

from __future__ import annotations

from typing import Any

from contracts.commands import EventsAfter
from contracts.events import ChangeEvent
from handlers import lookup
from handlers.outcome import Outcome

_EVENTS_AFTER = """
SELECT event_id, model_uuid, seq, namespace, kind, key, payload, command_id, created_at
FROM change_event
WHERE model_uuid = $1 AND seq > $2
  AND ($3::text IS NULL OR namespace = $3)
  AND ($4::bigint IS NULL OR (key ->> 'relation_id')::bigint = $4)
ORDER BY seq
LIMIT $5
"""


async def events_after(conn: Any, cmd: EventsAfter) -> Outcome:
    """Events with ``seq > after`` in sequence order, at most ``limit``. Raises ModelNotFound."""
    model = await lookup.model(conn, cmd.model, lock=False)
    rows = await conn.fetch(
        _EVENTS_AFTER, model["uuid"], cmd.after, cmd.namespace, cmd.relation_id, cmd.limit
    )
    return Outcome([ChangeEvent(**dict(r)) for r in rows])
