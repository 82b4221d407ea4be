"""Relation status: the transition rules (pure) and the leader's command to set it."""

from __future__ import annotations

from contracts import errors
from contracts.commands import RelationStatus, SetRelationStatus
from contracts.replies import StatusResult
from handlers import changes, lookup
from handlers.context import Context
from handlers.outcome import Outcome
from handlers.registry import handles
from handlers.values import RelationStatusId

S = RelationStatus

# Statuses each status may NOT be reached from (Juju's rules); broken and error from anything.
_REFUSED_FROM: dict[RelationStatus, frozenset[RelationStatus]] = {
    S.broken: frozenset(),
    S.suspending: frozenset({S.broken, S.suspended}),
    S.joining: frozenset({S.broken, S.joined}),
    S.joined: frozenset({S.broken}),
    S.suspended: frozenset({S.broken}),
    S.error: frozenset(),
}

_SET_STATUS = """
UPDATE relation_status SET status_type_id = $3, message = $4, updated_at = now()
WHERE model_uuid = $1 AND relation_uuid = $2
"""


def transition(current: RelationStatus, current_message: str, new: RelationStatus, message: str) -> str:
    """The message to store if ``current -> new`` is allowed.

    Raises RelationStatusTransitionNotValid.
    """
    if new == S.error and current != S.error and not message:
        raise errors.RelationStatusTransitionNotValid(
            "cannot set relation status error without a message", status=new.value
        )
    if new != current and current in _REFUSED_FROM[new]:
        raise errors.RelationStatusTransitionNotValid(
            f"cannot set relation status from {current.value} to {new.value}",
            current=current.value,
            status=new.value,
        )
    if new == S.suspended and current == S.suspending and not message:
        return current_message
    return message


@handles(SetRelationStatus)
async def set_relation_status(ctx: Context, cmd: SetRelationStatus) -> Outcome:
    """The leader of an application in the relation sets its status."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    rel = await lookup.relation(conn, m, cmd.relation)
    unit = await lookup.unit(conn, m, cmd.unit)
    endpoints = await lookup.relation_endpoints(conn, m, rel.uuid)
    lookup.endpoint_for_unit(endpoints, rel, cmd.unit)
    await lookup.require_leader(conn, m, unit, "set relation status")
    current = rel.status
    message = transition(current, rel.message, cmd.status, cmd.message)
    out = []
    if (current, rel.message) != (cmd.status, message):
        await conn.execute(_SET_STATUS, m, rel.uuid, RelationStatusId.of(cmd.status), message)
        out.append(changes.relation_status(m, rel, cmd.status.value, message))
    return Outcome(StatusResult(id=rel.relation_id, status=cmd.status.value, message=message), out)
