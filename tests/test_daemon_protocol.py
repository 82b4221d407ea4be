"""The daemon through the real broker and database: replies, errors, dedupe, dead letters, events."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
import asyncpg
import pytest

from contracts import errors
from contracts.commands import COMMAND_TYPES
from contracts.errors import ErrorCode
from contracts.topology import DEAD_LETTER_CODE_HEADER, DEAD_LETTER_QUEUE, DEAD_LETTER_REASON_HEADER
from tests.domain import charm
from tests.harness import EventTap


def name(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def wordpress_mysql(client: Any) -> dict[str, Any]:
    model = name()
    created = await client.call({"type": "create_model", "name": model})
    for app, units in (("mysql", 2), ("wordpress", 2)):
        await client.call(
            {"type": "deploy", "model": model, "application": app, "charm": charm(app), "units": units}
        )
    await client.call(
        {"type": "deploy", "model": model, "application": "telegraf", "charm": charm("telegraf")}
    )
    rel = await client.call({"type": "integrate", "model": model, "endpoints": ["wordpress", "mysql"]})
    return {"model": model, "uuid": created["uuid"], "rel": rel}


async def test_every_command_type_round_trips(client: Any) -> None:
    seen: set[str] = set()

    async def call(body: dict[str, Any]) -> Any:
        seen.add(body["type"])
        return await client.call(body)

    model = name()
    m = {"model": model}
    assert (await call({"type": "create_model", "name": model}))["name"] == model
    assert model in [x["name"] for x in await call({"type": "list_models"})]
    dep = await call({"type": "deploy", **m, "application": "mysql", "charm": charm("mysql"), "units": 1})
    assert dep["units"] == ["mysql/0"] and dep["peer_relations"] == [{"id": 0, "key": "mysql:cluster"}]
    await call({"type": "deploy", **m, "application": "wordpress", "charm": charm("wordpress")})
    await call({"type": "deploy", **m, "application": "telegraf", "charm": charm("telegraf")})
    assert (await call({"type": "add_units", **m, "application": "wordpress", "count": 2}))["units"] == [
        "wordpress/0",
        "wordpress/1",
    ]
    assert (await call({"type": "set_leader", **m, "unit": "wordpress/1"}))["leader"] == "wordpress/1"
    rel = await call({"type": "integrate", **m, "endpoints": ["wordpress", "mysql"]})
    assert rel["key"] == "wordpress:db mysql:db" and rel["id"] == 2
    sub = await call({"type": "integrate", **m, "endpoints": ["telegraf:juju-info", "wordpress"]})
    entered = await call({"type": "enter_scope", **m, "relation": sub["id"], "unit": "wordpress/0"})
    assert entered["created_units"] == ["telegraf/0"]
    await call(
        {"type": "enter_scope", **m, "relation": rel["id"], "unit": "wordpress/1", "settings": {"a": "1"}}
    )
    await call({"type": "enter_scope", **m, "relation": rel["id"], "unit": "mysql/0"})
    assert (
        await call(
            {
                "type": "set_unit_settings",
                **m,
                "relation": rel["id"],
                "unit": "mysql/0",
                "settings": {"host": "db"},
            }
        )
    )["changed"]
    assert (
        await call(
            {
                "type": "set_application_settings",
                **m,
                "relation": rel["id"],
                "unit": "mysql/0",
                "settings": {"user": "wp"},
            }
        )
    )["changed"]
    status = await call(
        {
            "type": "set_relation_status",
            **m,
            "relation": rel["id"],
            "unit": "wordpress/1",
            "status": "suspending",
            "message": "maintenance",
        }
    )
    assert status["status"] == "suspending"
    assert (await call({"type": "list_applications", **m}))[0]["name"] == "mysql"
    got = await call({"type": "get_relation", **m, "relation": rel["uuid"]})
    assert got["id"] == rel["id"] and got["units_in_scope"] == ["wordpress/1", "mysql/0"]
    assert len(await call({"type": "list_relations", **m, "application": "wordpress"})) == 3
    assert "db" in [
        e["name"] for e in await call({"type": "application_endpoints", **m, "application": "mysql"})
    ]
    assert await call({"type": "relation_ids", **m, "endpoint": "mysql:db"}) == [rel["id"]]
    assert await call({"type": "relation_units", **m, "relation": rel["id"], "application": "mysql"}) == [
        "mysql/0"
    ]
    assert await call(
        {"type": "get_unit_settings", **m, "relation": rel["id"], "unit": "mysql/0", "as_unit": "wordpress/1"}
    ) == {"host": "db"}
    assert await call(
        {
            "type": "get_application_settings",
            **m,
            "relation": rel["id"],
            "application": "mysql",
            "as_unit": "wordpress/0",
        }
    ) == {"user": "wp"}
    ep = await call({"type": "relation_endpoint_uuid", **m, "relation": rel["id"], "application": "mysql"})
    assert ep == got["endpoints"][1]["relation_endpoint_uuid"]
    mine = await call({"type": "unit_relations", **m, "unit": "wordpress/1"})
    assert [(r["id"], r["in_scope"]) for r in mine] == [(1, False), (2, True), (3, False)]
    await call({"type": "leave_scope", **m, "relation": rel["id"], "unit": "wordpress/1"})
    assert (await call({"type": "remove_relation", **m, "relation": rel["id"]}))["life"] == "dying"
    await call({"type": "leave_scope", **m, "relation": rel["id"], "unit": "mysql/0"})
    assert (await call({"type": "remove_unit", **m, "unit": "wordpress/1"}))["life"] == "dead"
    assert (await call({"type": "remove_application", **m, "application": "mysql"}))["life"] == "dead"
    events = await call({"type": "events_after", **m, "after": 0})
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    snap = await call({"type": "snapshot", **m})
    assert snap["seq"] == events[-1]["seq"]
    granted = await call({"type": "grant", **m, "user": "bob", "level": "write"})
    assert granted == {"model": model, "user": "bob", "level": "write"}
    assert {"model": model, "user": "guest", "level": "admin"} in await call({"type": "list_access", **m})
    assert (await call({"type": "revoke", **m, "user": "bob", "level": "write"}))["level"] == "read"
    assert (await call({"type": "remove_model", **m}))["name"] == model
    assert model not in [x["name"] for x in await call({"type": "list_models"})]
    assert seen == set(COMMAND_TYPES)


# (code, commands to run first, the failing command); {m} is the model name.
ERROR_CASES: list[tuple[ErrorCode, dict[str, Any]]] = [
    (ErrorCode.ModelNotFound, {"type": "list_applications", "model": "no-such-model"}),
    (ErrorCode.ModelAlreadyExists, {"type": "create_model", "name": "{m}"}),
    (ErrorCode.ApplicationNotFound, {"type": "integrate", "endpoints": ["nope", "mysql"]}),
    (ErrorCode.ApplicationAlreadyExists, {"type": "deploy", "application": "mysql", "charm": {}}),
    (ErrorCode.UnitNotFound, {"type": "set_leader", "unit": "mysql/9"}),
    (ErrorCode.RelationNotFound, {"type": "get_relation", "relation": 99}),
    (ErrorCode.RelationEndpointNotFound, {"type": "relation_ids", "endpoint": "mysql:nope"}),
    (
        ErrorCode.RelationUnitNotFound,
        {"type": "set_unit_settings", "relation": 2, "unit": "mysql/0", "settings": {"a": "b"}},
    ),
    (
        ErrorCode.ApplicationNotFoundForRelation,
        {"type": "relation_units", "relation": 2, "application": "telegraf"},
    ),
    (ErrorCode.UnitNotInRelation, {"type": "enter_scope", "relation": 0, "unit": "wordpress/0"}),
    (ErrorCode.CompatibleEndpointsNotFound, {"type": "integrate", "endpoints": ["wordpress:cache", "mysql"]}),
    (ErrorCode.AmbiguousRelation, {"type": "integrate", "endpoints": ["mysql", "replica"]}),
    (ErrorCode.RelationAlreadyExists, {"type": "integrate", "endpoints": ["wordpress:db", "mysql:db"]}),
    (
        ErrorCode.ContainerScopeRequiresSubordinate,
        {"type": "integrate", "endpoints": ["mysql:ha", "hacluster"]},
    ),
    (
        ErrorCode.NotLeader,
        {"type": "set_application_settings", "relation": 2, "unit": "mysql/1", "settings": {"a": "b"}},
    ),
    (
        ErrorCode.RelationStatusTransitionNotValid,
        {"type": "set_relation_status", "relation": 2, "unit": "mysql/0", "status": "error"},
    ),
    (ErrorCode.CannotRemovePeerRelation, {"type": "remove_relation", "relation": 0}),
    (ErrorCode.SubordinateUnitsNotAddable, {"type": "add_units", "application": "telegraf"}),
    (ErrorCode.InvalidCommand, {"type": "add_units", "application": "mysql", "count": "2"}),
    (ErrorCode.UnknownCommand, {"type": "destroy_everything"}),
]


@pytest.mark.parametrize(("code", "body"), ERROR_CASES, ids=[c.value for c, _ in ERROR_CASES])
async def test_error_code_reaches_the_caller(client: Any, code: ErrorCode, body: dict[str, Any]) -> None:
    setup = await wordpress_mysql(client)
    extra = {
        # master/slave both ways: two candidate pairs.
        "replica": charm("mysql"),
        # A principal providing hacluster, for mysql's container-scoped `ha`.
        "hacluster": {"provides": {"ha": {"interface": "hacluster"}}},
    }
    for app, meta in extra.items():
        if app in body.get("endpoints", []):
            await client.call({"type": "deploy", "model": setup["model"], "application": app, "charm": meta})
    body = {k: (v.replace("{m}", setup["model"]) if isinstance(v, str) else v) for k, v in body.items()}
    if body["type"] not in ("create_model", "list_models") and "model" not in body:
        body["model"] = setup["model"]
    with pytest.raises(errors.ERROR_CLASSES[code]) as caught:
        await client.call(body)
    assert caught.value.code == code
    assert caught.value.message


async def test_domain_errors_of_every_state_are_covered_elsewhere() -> None:
    """The codes that need a longer set-up are proven through the broker in other tests here
    or through the applier in the domain suite; this keeps the list honest."""
    covered = {c for c, _ in ERROR_CASES} | {
        ErrorCode.PayloadTooLarge,  # test_oversize_body_is_refused
        ErrorCode.Internal,  # tests/test_fault_internal.py
        ErrorCode.EndpointQuotaLimitExceeded,  # test_limit_and_life_errors_through_the_broker
        ErrorCode.CannotEnterScopeNotAlive,
        ErrorCode.CannotEnterScopeSubordinateNotAlive,
        ErrorCode.PotentialRelationUnitNotValid,
        ErrorCode.ApplicationNotAlive,
    }
    covered |= {ErrorCode.Unauthorized, ErrorCode.PermissionDenied}  # tests/test_access.py
    covered |= {ErrorCode.RateLimited}  # tests/test_fairness.py
    covered |= {ErrorCode.EventsExpired}  # tests/test_retention.py
    pending = {ErrorCode.RelationNotAlive}
    assert set(ErrorCode) - covered == pending


async def test_limit_and_life_errors_through_the_broker(client: Any) -> None:
    s = await wordpress_mysql(client)
    m = {"model": s["model"]}
    limited = {"name": "db-one", "requires": {"db": {"interface": "mysql", "limit": 1}}}
    await client.call({"type": "deploy", **m, "application": "app", "charm": limited, "units": 1})
    await client.call({"type": "integrate", **m, "endpoints": ["app", "mysql"]})
    await client.call({"type": "deploy", **m, "application": "other", "charm": charm("mysql")})
    with pytest.raises(errors.EndpointQuotaLimitExceeded, match="app:db allows 1 relation"):
        await client.call({"type": "integrate", **m, "endpoints": ["app", "other:db"]})
    # A subordinate unit whose principal is not of the other application.
    sub = await client.call({"type": "integrate", **m, "endpoints": ["telegraf:juju-info", "wordpress"]})
    await client.call({"type": "enter_scope", **m, "relation": sub["id"], "unit": "wordpress/0"})
    mysql_sub = await client.call({"type": "integrate", **m, "endpoints": ["telegraf:juju-info", "mysql"]})
    with pytest.raises(errors.PotentialRelationUnitNotValid):
        await client.call({"type": "enter_scope", **m, "relation": mysql_sub["id"], "unit": "telegraf/0"})
    # In scope, the dying subordinate stays until it leaves.
    await client.call({"type": "enter_scope", **m, "relation": sub["id"], "unit": "telegraf/0"})
    assert (await client.call({"type": "remove_unit", **m, "unit": "telegraf/0"}))["life"] == "dying"
    with pytest.raises(errors.CannotEnterScopeSubordinateNotAlive):
        await client.call({"type": "enter_scope", **m, "relation": sub["id"], "unit": "wordpress/0"})
    await client.call({"type": "enter_scope", **m, "relation": s["rel"]["id"], "unit": "wordpress/1"})
    assert (await client.call({"type": "remove_unit", **m, "unit": "wordpress/1"}))["life"] == "dying"
    with pytest.raises(errors.CannotEnterScopeNotAlive, match="the unit is dying"):
        await client.call({"type": "enter_scope", **m, "relation": sub["id"], "unit": "wordpress/1"})
    await client.call({"type": "remove_application", **m, "application": "wordpress"})
    with pytest.raises(errors.ApplicationNotAlive):
        await client.call({"type": "add_units", **m, "application": "wordpress"})


async def test_same_command_id_is_applied_once_and_answered_twice_identically(
    client: Any, database_url: str
) -> None:
    model = name()
    command_id = str(uuid.uuid4())
    body = {"type": "create_model", "name": model}
    first = await client.send(body, command_id=command_id)
    second = await client.send(body, command_id=command_id)
    assert first == second and first is not None and first["ok"]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM model WHERE name = $1", model) == 1
        events = await conn.fetchval("SELECT count(*) FROM change_event WHERE command_id = $1", command_id)
        assert events == 1
    finally:
        await conn.close()
    refused = await client.send({"type": "create_model", "name": name()}, command_id=command_id)
    assert refused is not None and refused["error"]["code"] == "InvalidCommand"
    assert "already used" in refused["error"]["message"]


async def test_refusal_is_stored_and_repeated_for_the_same_command_id(client: Any) -> None:
    command_id = str(uuid.uuid4())
    first = await client.send(
        {"type": "add_units", "model": "absent-model", "application": "x"}, command_id=command_id
    )
    again = await client.send(
        {"type": "add_units", "model": "absent-model", "application": "x"}, command_id=command_id
    )
    assert first == again and first is not None and first["error"]["code"] == "ModelNotFound"


async def _dead_letters(amqp_url: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(amqp_url)
    out = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(DEAD_LETTER_QUEUE)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            out.append(message)
    return out


async def test_malformed_messages_are_answered_and_dead_lettered_between_valid_ones(
    client: Any, amqp_url: str
) -> None:
    await _dead_letters(amqp_url)  # start from an empty dead-letter queue
    model = name()
    bad: list[tuple[bytes | dict[str, Any], str]] = [
        (b"\xff\xfe not json", "InvalidCommand"),
        (b"[]", "InvalidCommand"),
        ({"type": "deploy", "model": model}, "InvalidCommand"),
        ({"type": "create_model", "name": "Bad Name!"}, "InvalidCommand"),
        ({"type": "create_model", "name": "ok", "extra": 1}, "InvalidCommand"),
        ({"type": "frobnicate"}, "UnknownCommand"),
    ]
    await client.call({"type": "create_model", "name": model})
    ids = []
    for body, code in bad:
        command_id = str(uuid.uuid4())
        ids.append((command_id, code))
        reply = await client.send(body, command_id=command_id)
        assert reply is not None and reply["ok"] is False and reply["error"]["code"] == code, reply
        apps = await client.call({"type": "list_applications", "model": model})
        assert apps == []
    # Without reply_to, a malformed message is still dead-lettered and the daemon goes on.
    silent = str(uuid.uuid4())
    await client.send(b"{", command_id=silent, want_reply=False)
    ids.append((silent, "InvalidCommand"))
    assert await client.call({"type": "list_models"})
    await asyncio.sleep(0.3)
    letters = {m.message_id: m for m in await _dead_letters(amqp_url)}
    for command_id, code in ids:
        letter = letters[command_id]
        assert letter.headers[DEAD_LETTER_CODE_HEADER] == code
        assert letter.headers[DEAD_LETTER_REASON_HEADER]


MODEL_UUID = "6f1c0f7e-5f0e-4a51-9d3c-0a7d2b1f9e11"
# Input the contracts once let through to PostgreSQL, which refused it: an Internal reply. Each is
# InvalidCommand naming the field now (body, the field named).
STORABLE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("uuid-newline-write", {"type": "add_units", "model": MODEL_UUID + "\n", "application": "mysql"}, "model"),
    ("uuid-newline-read", {"type": "list_applications", "model": MODEL_UUID + "\n"}, "model"),
    ("name-newline", {"type": "list_applications", "model": "{m}\n"}, "model"),
    ("after-2**63", {"type": "events_after", "model": "{m}", "after": 2**63}, "after"),
    ("relation_id-2**63", {"type": "events_after", "model": "{m}", "relation_id": 2**63}, "relation_id"),
    ("namespace-nul", {"type": "events_after", "model": "{m}", "namespace": "rel\x00ation"}, "namespace"),
    (
        "limit-2**31",
        {"type": "deploy", "model": "{m}", "application": "big",
         "charm": {"provides": {"db": {"interface": "mysql", "limit": 2**31}}}},
        "charm.provides.db.limit",
    ),
    (
        "charm-name-nul",
        {"type": "deploy", "model": "{m}", "application": "nul", "charm": {"name": "my\x00sql"}},
        "charm.name",
    ),
    ("endpoint-newline", {"type": "relation_ids", "model": "{m}", "endpoint": "mysql:db\n"}, "endpoint"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"), [c[1:] for c in STORABLE_CASES], ids=[c[0] for c in STORABLE_CASES]
)
async def test_input_postgresql_cannot_hold_is_invalid_command_naming_the_field(
    client: Any, body: dict[str, Any], field: str
) -> None:
    model = name()
    await client.call({"type": "create_model", "name": model})
    body = {k: (v.replace("{m}", model) if isinstance(v, str) else v) for k, v in body.items()}
    reply = await client.send(body)
    assert reply is not None and reply["ok"] is False, reply
    assert reply["error"]["code"] == "InvalidCommand", reply
    assert reply["error"]["details"] == {"field": field}, reply


async def test_a_message_id_with_nul_is_invalid_command(client: Any) -> None:
    command_id = f"nul\x00{uuid.uuid4()}"  # a write: its id is stored, in a text column
    reply = await client.send({"type": "create_model", "name": name()}, command_id=command_id)
    assert reply is not None and reply["ok"] is False, reply
    assert reply["error"]["code"] == "InvalidCommand", reply
    assert reply["error"]["details"] == {"field": "message_id"}, reply


async def test_the_largest_integers_the_columns_hold_are_accepted(client: Any) -> None:
    model = name()
    await client.call({"type": "create_model", "name": model})
    events = await client.call(
        {"type": "events_after", "model": model, "after": 2**63 - 1, "relation_id": 2**63 - 1}
    )
    assert events == []
    meta = {"provides": {"db": {"interface": "mysql", "limit": 2**31 - 1}}}
    await client.call({"type": "deploy", "model": model, "application": "big", "charm": meta})
    endpoints = await client.call({"type": "application_endpoints", "model": model, "application": "big"})
    assert {e["name"]: e["limit"] for e in endpoints}["db"] == 2**31 - 1


# A field path holds the sender's map keys: a 1 MB key once made a 1 MB reply and log line.
HUGE_KEY_CASES: list[tuple[str, dict[str, Any]]] = [
    ("settings-key", {"type": "set_unit_settings", "model": "m", "relation": 0, "unit": "a/0",
                      "settings": {"k" * 1_000_000: "v"}}),
    ("extra-field", {"type": "list_models", "x" * 1_000_000: 1}),
    ("endpoint-name", {"type": "deploy", "model": "m", "application": "a",
                       "charm": {"provides": {"E" * 1_000_000: "http"}}}),
]  # fmt: skip


@pytest.mark.parametrize("body", [c[1] for c in HUGE_KEY_CASES], ids=[c[0] for c in HUGE_KEY_CASES])
async def test_a_huge_key_makes_no_huge_reply_or_log_line(
    client: Any, daemon: Any, body: dict[str, Any]
) -> None:
    command_id = str(uuid.uuid4())
    reply = await client.send(body, command_id=command_id)
    assert reply is not None and reply["error"]["code"] == "InvalidCommand", str(reply)[:500]
    assert len(json.dumps(reply)) < 2000, len(json.dumps(reply))
    assert "more]" in reply["error"]["details"]["field"]  # says that it was cut
    await asyncio.sleep(0.3)
    lines = [line for line in daemon.log().splitlines() if command_id in line]
    assert lines, "the refusal is logged"
    assert max(len(line) for line in lines) < 8000, [len(line) for line in lines]


async def test_oversize_body_is_refused(client: Any) -> None:
    huge = {"type": "create_model", "name": "x" * (2 * 1024 * 1024)}
    reply = await client.send(huge)
    assert reply is not None and reply["error"]["code"] == "PayloadTooLarge"


async def test_wrong_content_type_is_refused(client: Any) -> None:
    reply = await client.send({"type": "list_models"}, properties={"content_type": "text/plain"})
    assert reply is not None and reply["error"]["code"] == "InvalidCommand"


async def test_events_arrive_in_model_order_with_documented_routing_keys(client: Any, daemon: Any) -> None:
    connection = await aio_pika.connect(daemon.env["RELATIOND_AMQP_URL"])
    async with connection:
        everything = await EventTap.open(connection, "#")
        s = await wordpress_mysql(client)
        model_uuid = s["uuid"]
        rel_id = s["rel"]["id"]
        by_model = await EventTap.open(connection, f"{model_uuid}.#")
        by_ns = await EventTap.open(connection, "*.relation_unit.*")
        by_rel = await EventTap.open(connection, f"{model_uuid}.*.{rel_id}")
        m = {"model": s["model"]}
        await client.call({"type": "enter_scope", **m, "relation": rel_id, "unit": "wordpress/0"})
        await client.call(
            {
                "type": "set_unit_settings",
                **m,
                "relation": rel_id,
                "unit": "wordpress/0",
                "settings": {"k": "v"},
            }
        )
        await client.call({"type": "deploy", **m, "application": "late", "charm": charm("wordpress")})
        replay = await client.call({"type": "events_after", **m, "after": 0})
        last = replay[-1]["seq"]

        mine = await everything.wait_for(
            lambda evs: any(e["model_uuid"] == model_uuid and e["seq"] == last for e in evs)
        )
        seqs = [e["seq"] for e in mine if e["model_uuid"] == model_uuid]
        assert seqs == list(range(1, last + 1))
        for key, event in everything.received:
            relation = event["key"].get("relation_id")
            expected = f"{event['model_uuid']}.{event['namespace']}.{'_' if relation is None else relation}"
            assert key == expected
        assert [e for e in mine if e["model_uuid"] == model_uuid] == replay

        late = await by_model.wait_for(lambda evs: any(e["seq"] == last for e in evs))
        assert {e["model_uuid"] for e in late} == {model_uuid}
        rel_events = await by_rel.wait_for(
            lambda evs: any(e["namespace"] == "relation_unit_setting" for e in evs)
        )
        assert {e["key"]["relation_id"] for e in rel_events} == {rel_id}
        assert [(e["namespace"], e["kind"]) for e in rel_events] == [
            ("relation_unit", "entered"),
            ("relation_status", "changed"),
            ("relation_unit_setting", "changed"),
        ]
        scoped = await by_ns.wait_for(lambda evs: any(e["model_uuid"] == model_uuid for e in evs))
        assert {e["namespace"] for e in scoped} == {"relation_unit"}


async def test_replay_returns_exactly_the_missed_events(client: Any) -> None:
    s = await wordpress_mysql(client)
    m = {"model": s["model"]}
    before = await client.call({"type": "events_after", **m, "after": 0})
    seen = before[-1]["seq"]
    await client.call({"type": "enter_scope", **m, "relation": s["rel"]["id"], "unit": "mysql/0"})
    await client.call({"type": "add_units", **m, "application": "mysql"})
    missed = await client.call({"type": "events_after", **m, "after": seen})
    assert [e["seq"] for e in missed] == list(range(seen + 1, seen + 1 + len(missed)))
    assert [(e["namespace"], e["kind"]) for e in missed] == [
        ("relation_unit", "entered"),
        ("relation_status", "changed"),
        ("unit", "added"),
    ]
    paged = await client.call({"type": "events_after", **m, "after": 0, "limit": 2})
    assert [e["seq"] for e in paged] == [1, 2]
    only = await client.call({"type": "events_after", **m, "after": 0, "namespace": "unit"})
    assert {e["namespace"] for e in only} == {"unit"}
