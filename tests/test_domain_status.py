"""Relation status set by an application leader, through the database: SPEC.md's table and rules."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.domain import CommandFailed, Domain

STATUSES = ["joining", "joined", "broken", "suspending", "suspended", "error"]
# From SPEC.md: (current, new) pairs that are refused; every other pair is allowed.
REFUSED = {
    ("broken", "suspending"),
    ("suspended", "suspending"),
    ("broken", "joining"),
    ("joined", "joining"),
    ("broken", "joined"),
    ("broken", "suspended"),
}


async def refused(awaitable: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


async def set_status(
    domain: Domain, relation: int, unit: str, status: str, message: str | None = None
) -> Any:
    body: dict[str, Any] = {
        "type": "set_relation_status",
        "relation": relation,
        "unit": unit,
        "status": status,
    }
    if message is not None:
        body["message"] = message
    return await domain.run(body)


async def status_of(domain: Domain, relation: int) -> tuple[str, str]:
    rel = await domain.run({"type": "get_relation", "relation": relation})
    return rel["status"], rel["message"]


@pytest.fixture
async def rel(domain: Domain) -> int:
    await domain.deploy("wordpress", units=2)
    await domain.deploy("mysql", units=2)
    relation = await domain.integrate("wordpress", "mysql")
    return int(relation["id"])


@pytest.mark.parametrize(("current", "new"), list(itertools.product(STATUSES, STATUSES)))
async def test_status_transition_table(domain: Domain, rel: int, current: str, new: str) -> None:
    if current != "joining":
        await set_status(domain, rel, "mysql/0", current, "reason")
    assert (await status_of(domain, rel))[0] == current
    seq = await domain.last_seq()

    if (current, new) in REFUSED:
        err = await refused(set_status(domain, rel, "mysql/0", new, "later"))
        assert err.code == "RelationStatusTransitionNotValid"
        assert current in err.message and new in err.message
        assert await status_of(domain, rel) == (current, "reason" if current != "joining" else "")
        assert await domain.events_since(seq) == []
    else:
        result = await set_status(domain, rel, "mysql/0", new, "later")
        assert result == {"id": rel, "status": new, "message": "later"}
        assert await status_of(domain, rel) == (new, "later")
        assert await domain.events_since(seq) == [("relation_status", "changed")]


async def test_a_status_change_event_carries_status_and_message(domain: Domain, rel: int) -> None:
    seq = await domain.last_seq()

    await set_status(domain, rel, "wordpress/0", "suspending", "maintenance window")

    events = await domain.events(seq)
    assert len(events) == 1
    assert events[0]["payload"] == {"status": "suspending", "message": "maintenance window"}
    assert events[0]["key"]["relation_id"] == rel


async def test_setting_the_same_status_and_message_again_emits_nothing(domain: Domain, rel: int) -> None:
    await set_status(domain, rel, "mysql/0", "joined", "up")
    seq = await domain.last_seq()

    result = await set_status(domain, rel, "mysql/0", "joined", "up")

    assert result == {"id": rel, "status": "joined", "message": "up"}
    assert await domain.events_since(seq) == []


async def test_error_needs_a_message(domain: Domain, rel: int) -> None:
    err = await refused(set_status(domain, rel, "mysql/0", "error"))

    assert err.code == "RelationStatusTransitionNotValid"
    assert "message" in err.message
    assert await status_of(domain, rel) == ("joining", "")


async def test_error_again_without_a_message_is_accepted(domain: Domain, rel: int) -> None:
    await set_status(domain, rel, "mysql/0", "error", "disk full")

    result = await set_status(domain, rel, "mysql/0", "error")

    assert result["status"] == "error"


async def test_suspended_without_message_after_suspending_keeps_the_suspending_message(
    domain: Domain, rel: int
) -> None:
    await set_status(domain, rel, "mysql/0", "suspending", "draining connections")

    result = await set_status(domain, rel, "mysql/0", "suspended")

    assert result["message"] == "draining connections"
    assert await status_of(domain, rel) == ("suspended", "draining connections")


async def test_suspended_with_a_message_after_suspending_takes_the_new_one(domain: Domain, rel: int) -> None:
    await set_status(domain, rel, "mysql/0", "suspending", "draining connections")

    await set_status(domain, rel, "mysql/0", "suspended", "drained")

    assert await status_of(domain, rel) == ("suspended", "drained")


async def test_the_leader_of_either_side_sets_the_status(domain: Domain, rel: int) -> None:
    await set_status(domain, rel, "wordpress/0", "joined")
    await set_status(domain, rel, "mysql/0", "suspending", "x")

    assert await status_of(domain, rel) == ("suspending", "x")


async def test_a_non_leader_cannot_set_the_status(domain: Domain, rel: int) -> None:
    err = await refused(set_status(domain, rel, "mysql/1", "joined"))

    assert err.code == "NotLeader"
    assert await status_of(domain, rel) == ("joining", "")


async def test_a_unit_outside_the_relation_cannot_set_the_status(domain: Domain, rel: int) -> None:
    await domain.deploy("postgresql", units=1)

    err = await refused(set_status(domain, rel, "postgresql/0", "joined"))

    assert err.code == "UnitNotInRelation"


async def test_status_of_unknown_relation_or_unit_is_refused(domain: Domain, rel: int) -> None:
    no_relation = await refused(set_status(domain, 99, "mysql/0", "joined"))
    no_unit = await refused(set_status(domain, rel, "mysql/5", "joined"))

    assert no_relation.code == "RelationNotFound"
    assert no_unit.code == "UnitNotFound"


async def test_a_removed_relation_is_broken_and_cannot_rejoin(domain: Domain, rel: int) -> None:
    await domain.run({"type": "enter_scope", "relation": rel, "unit": "mysql/0"})
    await domain.run({"type": "remove_relation", "relation": rel})

    err = await refused(set_status(domain, rel, "mysql/0", "joined"))

    assert err.code == "RelationStatusTransitionNotValid"
    assert (await status_of(domain, rel))[0] == "broken"


async def test_unit_relations_reports_suspension(domain: Domain, rel: int) -> None:
    await set_status(domain, rel, "mysql/0", "suspended", "paused")

    relations = {r["id"]: r for r in await domain.run({"type": "unit_relations", "unit": "wordpress/1"})}

    assert relations[rel]["suspended"] is True
    await set_status(domain, rel, "mysql/0", "joined")
    relations = {r["id"]: r for r in await domain.run({"type": "unit_relations", "unit": "wordpress/1"})}
    assert relations[rel]["suspended"] is False
