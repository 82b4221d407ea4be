"""Change events: one per committed change, numbered gaplessly per model, replayable with filters."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.events import KINDS, Namespace
from tests.domain import CommandFailed, Domain


async def refused(awaitable: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


async def events_after(domain: Domain, **filters: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await domain.run({"type": "events_after", **filters})
    return result


@pytest.fixture
async def busy(domain: Domain) -> dict[str, Any]:
    """A model that has seen most kinds of change."""
    await domain.deploy("wordpress", units=2)
    await domain.deploy("mysql", units=1)
    await domain.deploy("telegraf")
    db = await domain.integrate("wordpress", "mysql", mysql={"database": "wp"})
    info = await domain.integrate("telegraf", "wordpress")
    await domain.run(
        {"type": "enter_scope", "relation": db["id"], "unit": "wordpress/0", "settings": {"a": "1"}}
    )
    await domain.run({"type": "enter_scope", "relation": db["id"], "unit": "mysql/0"})
    await domain.run({"type": "enter_scope", "relation": info["id"], "unit": "wordpress/1"})
    await domain.run(
        {"type": "set_unit_settings", "relation": db["id"], "unit": "mysql/0", "settings": {"h": "x"}}
    )
    await domain.run(
        {"type": "set_relation_status", "relation": db["id"], "unit": "mysql/0", "status": "joined"}
    )
    await domain.run({"type": "set_leader", "unit": "wordpress/1"})
    await domain.run({"type": "leave_scope", "relation": db["id"], "unit": "wordpress/0"})
    await domain.run({"type": "remove_relation", "relation": db["id"]})
    await domain.run({"type": "remove_unit", "unit": "wordpress/0"})
    return {"db": db, "info": info}


async def test_sequence_numbers_are_gapless_from_one_per_model(domain: Domain, busy: dict[str, Any]) -> None:
    events = await domain.events()

    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["model_uuid"] == domain.model_uuid for e in events)
    ids = [e["event_id"] for e in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


async def test_every_event_is_a_documented_namespace_and_kind(domain: Domain, busy: dict[str, Any]) -> None:
    events = await domain.events()

    seen = {(e["namespace"], e["kind"]) for e in events}
    for namespace, kind in seen:
        assert kind in KINDS[Namespace(namespace)], (namespace, kind)
    assert {ns for ns, _ in seen} == {
        "model",
        "application",
        "unit",
        "application_endpoint",
        "relation",
        "relation_status",
        "relation_unit",
        "relation_unit_setting",
        "relation_application_setting",
    }


async def test_a_refused_command_leaves_no_gap(domain: Domain, busy: dict[str, Any]) -> None:
    before = await domain.last_seq()

    await refused(domain.integrate("wordpress", "ghost"))
    await domain.run({"type": "add_units", "application": "wordpress"})

    assert [e["seq"] for e in await domain.events(before)] == [before + 1]


async def test_events_carry_the_command_id_that_caused_them(domain: Domain) -> None:
    seq = await domain.last_seq()

    await domain.run(
        {"type": "deploy", "application": "mysql", "charm": {"name": "mysql"}}, command_id="cmd-42"
    )

    events = await domain.events(seq)
    assert events
    assert {e["command_id"] for e in events} == {"cmd-42"}


async def test_events_after_filters_by_namespace(domain: Domain, busy: dict[str, Any]) -> None:
    status = await events_after(domain, namespace="relation_status")

    assert status
    assert {e["namespace"] for e in status} == {"relation_status"}
    everything = await domain.events()
    assert [e["seq"] for e in status] == [e["seq"] for e in everything if e["namespace"] == "relation_status"]


async def test_events_after_filters_by_relation_id(domain: Domain, busy: dict[str, Any]) -> None:
    db = busy["db"]["id"]

    events = await events_after(domain, relation_id=db)

    assert [(e["namespace"], e["kind"]) for e in events] == [
        ("relation", "created"),
        ("relation_application_setting", "changed"),
        ("relation_unit", "entered"),
        ("relation_status", "changed"),
        ("relation_unit_setting", "changed"),
        ("relation_unit", "entered"),
        ("relation_unit_setting", "changed"),
        ("relation_unit", "left"),
        ("relation", "life"),
        ("relation_status", "changed"),
    ]
    assert {e["key"]["relation_id"] for e in events} == {db}
    assert {e["key"]["relation_uuid"] for e in events} == {busy["db"]["uuid"]}


async def test_events_after_combines_namespace_and_relation_filters(
    domain: Domain, busy: dict[str, Any]
) -> None:
    events = await events_after(domain, namespace="relation_unit", relation_id=busy["info"]["id"])

    assert [(e["kind"], e["key"]["unit"]) for e in events] == [("entered", "wordpress/1")]


async def test_events_after_pages_with_after_and_limit(domain: Domain, busy: dict[str, Any]) -> None:
    everything = await domain.events()

    first = await events_after(domain, after=0, limit=3)
    second = await events_after(domain, after=first[-1]["seq"], limit=3)

    assert [e["seq"] for e in first] == [1, 2, 3]
    assert [e["seq"] for e in second] == [4, 5, 6]
    assert first + second == everything[:6]
    assert await events_after(domain, after=everything[-1]["seq"]) == []


async def test_events_of_one_model_are_not_seen_in_another(domain: Domain, pool: Any) -> None:
    other = Domain(pool)
    await other.new_model()
    await domain.deploy("mysql", units=1)

    assert await other.events_since(0) == [("model", "created")]


async def test_relation_events_carry_the_relation_key(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=1)
    seq = await domain.last_seq()

    rel = await domain.integrate("wordpress", "mysql")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})

    created, entered, joined = await domain.events(seq)
    assert created["key"] == {
        "relation_uuid": rel["uuid"],
        "relation_id": rel["id"],
        "key": "wordpress:db mysql:db",
    }
    assert created["payload"] == {"life": "alive", "status": "joining", "scope": "global"}
    assert entered["key"] == created["key"] | {"unit": "wordpress/0", "application": "wordpress"}
    assert joined["payload"] == {"status": "joined", "message": ""}


async def test_events_after_on_an_unknown_model_is_refused(domain: Domain) -> None:
    err = await refused(domain.run({"type": "events_after", "model": "nowhere"}))

    assert err.code == "ModelNotFound"
