"""Per-model access control with identities the broker vouches for (real RabbitMQ users)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import asyncpg
import pytest

from client.rpc import RelationClient
from contracts import errors
from contracts.topology import COMMAND_QUEUE, EVENTS_EXCHANGE
from tests.conftest import AMQP_URL
from tests.domain import charm
from tests.harness import DaemonProcess, create_vhost, delete_vhost, rabbitmqctl, vhost_url

USERS = ("alice", "bob", "carol", "mallory", "ops")


@pytest.fixture(scope="module")
async def site(database_url: str, tmp_path_factory: Any) -> AsyncIterator[dict[str, Any]]:
    """A private vhost with five broker users and a daemon whose superuser is `ops`."""
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    suffix = uuid.uuid4().hex[:6]
    names = {u: f"{u}-{suffix}" for u in USERS}
    for user in names.values():
        rabbitmqctl("add_user", user, "pw-" + user)
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    daemon = DaemonProcess(
        vhost_url(AMQP_URL, vhost),
        database_url,
        tmp_path_factory.mktemp("access"),
        superusers=f'["{names["ops"]}"]',
    )
    daemon.start()
    await daemon.wait_ready()
    clients = {}
    for short, user in names.items():
        url = vhost_url(AMQP_URL.replace("guest:guest", f"{user}:pw-{user}"), vhost)
        clients[short] = await RelationClient.connect(url, timeout=15)
    yield {"vhost": vhost, "users": names, "clients": clients, "daemon": daemon}
    for c in clients.values():
        await c.close()
    daemon.terminate()
    for user in names.values():
        rabbitmqctl("delete_user", user)
    delete_vhost(vhost)


async def _model_of(site: dict[str, Any], owner: str = "alice") -> str:
    alice: RelationClient = site["clients"][owner]
    model = f"acl-{uuid.uuid4().hex[:8]}"
    await alice.call({"type": "create_model", "name": model})
    await alice.call(
        {"type": "deploy", "model": model, "application": "mysql", "charm": charm("mysql"), "units": 1}
    )
    await alice.call(
        {
            "type": "deploy",
            "model": model,
            "application": "wordpress",
            "charm": charm("wordpress"),
            "units": 1,
        }
    )
    return model


async def test_creator_is_admin_and_others_see_nothing(site: dict[str, Any]) -> None:
    model = await _model_of(site)
    alice, bob = site["clients"]["alice"], site["clients"]["bob"]
    access = await alice.call({"type": "list_access", "model": model})
    assert access == [{"model": model, "user": site["users"]["alice"], "level": "admin"}]
    assert model not in [m["name"] for m in await bob.call({"type": "list_models"})]
    with pytest.raises(
        errors.PermissionDenied, match=f"{site['users']['bob']}.*read access.*{model}.*no access"
    ):
        await bob.call({"type": "list_relations", "model": model})


async def test_read_may_read_and_watch_but_every_write_is_denied(site: dict[str, Any]) -> None:
    model = await _model_of(site)
    alice, bob = site["clients"]["alice"], site["clients"]["bob"]
    await alice.call({"type": "grant", "model": model, "user": site["users"]["bob"], "level": "read"})
    assert await bob.call({"type": "list_relations", "model": model}) != []  # the peer relations
    assert (await bob.call({"type": "events_after", "model": model}))[0]["kind"] == "created"
    assert model in [m["name"] for m in await bob.call({"type": "list_models"})]
    writes = [
        {"type": "integrate", "model": model, "endpoints": ["wordpress", "mysql"]},
        {"type": "add_units", "model": model, "application": "mysql"},
        {"type": "remove_application", "model": model, "application": "mysql"},
        {"type": "grant", "model": model, "user": site["users"]["bob"], "level": "admin"},
    ]
    for body in writes:
        with pytest.raises(errors.PermissionDenied) as caught:
            await bob.call(body)
        assert caught.value.details["needed"] in ("write", "admin")
        assert caught.value.details["user"] == site["users"]["bob"]
    assert await alice.call({"type": "list_relations", "model": model, "application": "wordpress"}) == [
        r
        for r in await alice.call({"type": "list_relations", "model": model})
        if r["key"].startswith("wordpress")
    ]
    assert len(await alice.call({"type": "list_applications", "model": model})) == 2


async def test_write_may_change_but_not_grant(site: dict[str, Any]) -> None:
    model = await _model_of(site)
    alice, carol = site["clients"]["alice"], site["clients"]["carol"]
    await alice.call({"type": "grant", "model": model, "user": site["users"]["carol"], "level": "write"})
    rel = await carol.call({"type": "integrate", "model": model, "endpoints": ["wordpress", "mysql"]})
    assert rel["key"] == "wordpress:db mysql:db"
    with pytest.raises(errors.PermissionDenied, match="needs admin access"):
        await carol.call({"type": "grant", "model": model, "user": site["users"]["mallory"], "level": "read"})
    with pytest.raises(errors.PermissionDenied):
        await carol.call({"type": "remove_model", "model": model})
    with pytest.raises(errors.PermissionDenied):
        await carol.call({"type": "list_access", "model": model})


async def test_admin_grants_and_revokes_and_a_revoked_user_is_refused_at_once(site: dict[str, Any]) -> None:
    model = await _model_of(site)
    alice, carol = site["clients"]["alice"], site["clients"]["carol"]
    carol_name = site["users"]["carol"]
    await alice.call({"type": "grant", "model": model, "user": carol_name, "level": "admin"})
    await carol.call({"type": "add_units", "model": model, "application": "mysql"})
    left = await alice.call({"type": "revoke", "model": model, "user": carol_name, "level": "write"})
    assert left["level"] == "read"
    command_id = str(uuid.uuid4())
    with pytest.raises(errors.PermissionDenied):
        await carol.call({"type": "add_units", "model": model, "application": "mysql"}, command_id=command_id)
    # A denial is not stored: after a new grant the same command id goes through.
    await alice.call({"type": "grant", "model": model, "user": carol_name, "level": "write"})
    units = await carol.call(
        {"type": "add_units", "model": model, "application": "mysql"}, command_id=command_id
    )
    assert units == {"units": ["mysql/2"]}
    gone = await alice.call({"type": "revoke", "model": model, "user": carol_name, "level": "read"})
    assert gone["level"] is None
    with pytest.raises(errors.PermissionDenied, match="no access"):
        await carol.call({"type": "list_applications", "model": model})
    kinds = [
        (e["namespace"], e["kind"], e["payload"])
        for e in await alice.call({"type": "events_after", "model": model})
        if e["namespace"] == "model_access"
    ]
    assert kinds == [
        ("model_access", "granted", {"level": "admin"}),
        ("model_access", "revoked", {"level": "read"}),
        ("model_access", "granted", {"level": "write"}),
        ("model_access", "revoked", {"level": None}),
    ]


async def test_superuser_may_do_everything(site: dict[str, Any]) -> None:
    model = await _model_of(site)
    ops = site["clients"]["ops"]
    assert model in [m["name"] for m in await ops.call({"type": "list_models"})]
    await ops.call({"type": "add_units", "model": model, "application": "wordpress"})
    await ops.call({"type": "grant", "model": model, "user": site["users"]["mallory"], "level": "read"})
    assert (await ops.call({"type": "remove_model", "model": model}))["name"] == model
    with pytest.raises(errors.ModelNotFound):
        await site["clients"]["alice"].call({"type": "list_applications", "model": model})


async def test_a_resent_command_gets_its_stored_answer_even_when_its_model_is_gone(
    site: dict[str, Any],
) -> None:
    """The claim of the command id comes before the model and access check: resending an admin's
    remove_model returns its first reply, not ModelNotFound; a command refused for a missing
    model stores nothing, so the same id works once the model exists."""
    model = await _model_of(site)
    alice: RelationClient = site["clients"]["alice"]
    remove = str(uuid.uuid4())
    first = await alice.send({"type": "remove_model", "model": model}, command_id=remove)
    again = await alice.send({"type": "remove_model", "model": model}, command_id=remove)
    assert first is not None and first["ok"] and again == first
    missing = f"acl-{uuid.uuid4().hex[:8]}"
    early = str(uuid.uuid4())
    with pytest.raises(errors.ModelNotFound):
        await alice.call({"type": "list_applications", "model": missing})
    refused = await alice.send({"type": "add_units", "model": missing, "application": "a"}, command_id=early)
    assert refused is not None and refused["error"]["code"] == "ModelNotFound"
    await alice.call({"type": "create_model", "name": missing})
    await alice.call({"type": "deploy", "model": missing, "application": "a", "charm": {"name": "a"}})
    retried = await alice.send({"type": "add_units", "model": missing, "application": "a"}, command_id=early)
    assert retried is not None and retried["ok"], retried
    assert retried["result"]["units"] == ["a/0"]


async def test_leader_rules_still_apply_under_write_access(site: dict[str, Any]) -> None:
    model = await _model_of(site)
    alice = site["clients"]["alice"]
    rel = await alice.call({"type": "integrate", "model": model, "endpoints": ["wordpress", "mysql"]})
    await alice.call({"type": "add_units", "model": model, "application": "mysql"})
    with pytest.raises(errors.NotLeader):
        await alice.call(
            {
                "type": "set_application_settings",
                "model": model,
                "relation": rel["id"],
                "unit": "mysql/1",
                "settings": {"a": "b"},
            }
        )


async def _publish_raw(url: str, body: bytes, **props: Any) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, content_type="application/json", **props), routing_key=COMMAND_QUEUE
        )


def _url_of(site: dict[str, Any], short: str) -> str:
    user = site["users"][short]
    return vhost_url(AMQP_URL.replace("guest:guest", f"{user}:pw-{user}"), site["vhost"])


async def test_message_claiming_another_user_never_reaches_the_daemon(
    site: dict[str, Any], database_url: str
) -> None:
    model = await _model_of(site)
    command_id = str(uuid.uuid4())
    body = f'{{"type": "add_units", "model": "{model}", "application": "mysql"}}'.encode()
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id"):
        await _publish_raw(
            _url_of(site, "mallory"), body, message_id=command_id, user_id=site["users"]["alice"]
        )
    await asyncio.sleep(0.5)
    conn = await asyncpg.connect(database_url)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM processed_command WHERE command_id = $1", command_id)
            == 0
        )
    finally:
        await conn.close()
    assert command_id not in site["daemon"].log()
    units = (await site["clients"]["alice"].call({"type": "list_applications", "model": model}))[0]["units"]
    assert units == ["mysql/0"]


async def test_message_without_user_id_is_unauthorized(site: dict[str, Any]) -> None:
    alice: RelationClient = site["clients"]["alice"]
    anonymous = RelationClient(alice.connection, timeout=15, user=None)
    await anonymous._open()
    reply = await anonymous.send({"type": "list_models"})
    assert reply is not None and reply["error"]["code"] == "Unauthorized"
    assert reply["error"]["details"] == {"field": "user_id"}
    await asyncio.sleep(0.2)
    logged = [line for line in site["daemon"].log_lines() if line.get("command_id") == reply["command_id"]]
    assert {line.get("outcome") for line in logged} >= {"unauthorized"}


async def test_topic_permissions_stop_binding_to_another_models_events(site: dict[str, Any]) -> None:
    mine = await _model_of(site)
    theirs = await _model_of(site)
    models = {m["name"]: m["uuid"] for m in await site["clients"]["alice"].call({"type": "list_models"})}
    bob = site["users"]["bob"]
    pattern = f"^{models[mine]}\\\\."
    rabbitmqctl("set_topic_permissions", "-p", site["vhost"], bob, EVENTS_EXCHANGE, pattern, pattern)
    try:
        connection = await aio_pika.connect(_url_of(site, "bob"))
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(EVENTS_EXCHANGE)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key=f"{models[mine]}.#")
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await queue.bind(exchange, routing_key=f"{models[theirs]}.#")
    finally:
        rabbitmqctl("clear_topic_permissions", "-p", site["vhost"], bob)


def test_deploy_ships_the_topic_permission_recipe() -> None:
    readme = (Path(__file__).resolve().parent.parent / "deploy" / "README.md").read_text()
    assert "set_topic_permissions" in readme


# ---- a duplicate command id is answered from the store only to whom it belongs ---------------


async def _stored_reply(database_url: str, command_id: str) -> tuple[Any, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT reply::text, sender FROM processed_command WHERE command_id = $1", command_id
        )
    finally:
        await conn.close()
    assert row is not None
    return row["reply"], row["sender"]


async def test_a_duplicate_command_id_answers_only_its_sender_or_a_user_with_the_access(
    site: dict[str, Any], database_url: str
) -> None:
    model = await _model_of(site)
    c, users = site["clients"], site["users"]
    await c["alice"].call({"type": "grant", "model": model, "user": users["bob"], "level": "read"})
    await c["alice"].call({"type": "grant", "model": model, "user": users["carol"], "level": "write"})
    command_id = str(uuid.uuid4())
    body = {"type": "add_units", "model": model, "application": "mysql", "count": 2}
    first = await c["alice"].send(body, command_id=command_id)
    assert first is not None and first["result"]["units"] == ["mysql/1", "mysql/2"]
    stored_before = await _stored_reply(database_url, command_id)
    assert stored_before[1] == users["alice"]

    # No access, read access: the refusal they get without the duplicate, never alice's reply.
    for who, needed_has in (("mallory", "no access"), ("bob", "read access")):
        reply = await c[who].send(body, command_id=command_id)
        assert reply is not None and reply["ok"] is False, (who, reply)
        assert reply["error"]["code"] == "PermissionDenied", (who, reply)
        assert needed_has in reply["error"]["message"] and users[who] in reply["error"]["message"]
        assert "mysql/1" not in str(reply)
    # The sender, a user with write access and a superuser get the stored reply.
    for who in ("alice", "carol", "ops"):
        assert await c[who].send(body, command_id=command_id) == first, who
    assert await _stored_reply(database_url, command_id) == stored_before
    units = (await c["alice"].call({"type": "list_applications", "model": model}))[0]["units"]
    assert units == ["mysql/0", "mysql/1", "mysql/2"]  # applied once
    logged = [line for line in site["daemon"].log_lines() if line.get("command_id") == command_id]
    outcomes = [(line.get("user"), line.get("outcome")) for line in logged if line.get("event") == "command"]
    assert (users["mallory"], "denied") in outcomes and (users["carol"], "duplicate") in outcomes


async def test_a_duplicate_command_id_of_a_removed_model_is_model_not_found_for_others(
    site: dict[str, Any],
) -> None:
    model = await _model_of(site)
    c = site["clients"]
    command_id = str(uuid.uuid4())
    body = {"type": "remove_model", "model": model}
    first = await c["alice"].send(body, command_id=command_id)
    assert first is not None and first["ok"], first
    other = await c["mallory"].send(body, command_id=command_id)
    assert other is not None and other["error"]["code"] == "ModelNotFound", other
    assert await c["alice"].send(body, command_id=command_id) == first


async def test_a_duplicate_create_model_answers_only_its_sender_and_superusers(
    site: dict[str, Any], database_url: str
) -> None:
    c, users = site["clients"], site["users"]
    command_id = str(uuid.uuid4())
    body = {"type": "create_model", "name": f"dup-{uuid.uuid4().hex[:8]}"}
    first = await c["alice"].send(body, command_id=command_id)
    assert first is not None and first["ok"], first
    other = await c["mallory"].send(body, command_id=command_id)
    assert other is not None and other["ok"] is False, other
    assert other["error"]["code"] == "InvalidCommand" and other["error"]["details"] == {"field": "message_id"}
    assert "already used by another user" in other["error"]["message"]
    assert first["result"]["uuid"] not in str(other)
    assert await c["ops"].send(body, command_id=command_id) == first
    assert await c["alice"].send(body, command_id=command_id) == first
    assert (await _stored_reply(database_url, command_id))[1] == users["alice"]


async def test_a_reply_stored_before_schema_4_has_no_sender_and_goes_by_access(
    site: dict[str, Any], database_url: str
) -> None:
    """A row from before the sender was recorded: the users with the access the command needed
    still get its reply (its sender among them, if the access is unchanged), others do not."""
    model = await _model_of(site)
    c = site["clients"]
    command_id = str(uuid.uuid4())
    body = {"type": "add_units", "model": model, "application": "wordpress"}
    first = await c["alice"].send(body, command_id=command_id)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE processed_command SET sender = NULL WHERE command_id = $1", command_id)
    finally:
        await conn.close()
    other = await c["mallory"].send(body, command_id=command_id)
    assert other is not None and other["error"]["code"] == "PermissionDenied", other
    assert await c["alice"].send(body, command_id=command_id) == first
