"""The client library's typed API: one method per command, typed results, typed errors, retries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, get_type_hints

import pytest

from client import DaemonUnreachable, RelationClient
from client.api import InvalidArgument, RelationCommands
from client.rpc import BrokerUnreachable
from contracts import errors
from contracts.commands import COMMAND_TYPES, declared_errors
from contracts.events import ChangeEvent
from contracts.replies import (
    AccessInfo,
    ApplicationInfo,
    DeployResult,
    EndpointInfo,
    LeaderResult,
    LifeResult,
    ModelInfo,
    RelationInfo,
    RelationLifeResult,
    ScopeResult,
    SettingsResult,
    StatusResult,
    UnitRelationInfo,
    UnitsResult,
)
from tests import client_support
from tests.client_support import UnservedQueue
from tests.domain import charm

idle_amqp = client_support.idle_amqp  # a session fixture shared with the relctl tests


class Recording(RelationClient):
    """Remembers the type of every command it actually sends."""

    sent: list[str]

    async def call(self, body: dict[str, Any], **kw: Any) -> Any:
        self.sent.append(body["type"])
        return await super().call(body, **kw)


@pytest.fixture
async def rec(daemon: Any, amqp_url: str) -> AsyncIterator[Recording]:
    c = await Recording.connect(amqp_url, timeout=15)
    assert isinstance(c, Recording)
    c.sent = []
    yield c
    await c.close()


async def test_every_command_has_a_typed_method(rec: Recording) -> None:
    m = f"api-{uuid.uuid4().hex[:10]}"
    assert isinstance(await rec.create_model(m), ModelInfo)
    assert m in [x.name for x in await rec.list_models()]
    dep = await rec.deploy(m, "mysql", charm("mysql"), units=1)
    assert isinstance(dep, DeployResult) and dep.units == ["mysql/0"]
    await rec.deploy(m, "wordpress", charm("wordpress"))
    assert await rec.add_units(m, "wordpress", 2) == UnitsResult(units=["wordpress/0", "wordpress/1"])
    assert await rec.set_leader(m, "wordpress/1") == LeaderResult(leader="wordpress/1")
    rel = await rec.integrate(m, "wordpress", "mysql")
    assert isinstance(rel, RelationInfo) and rel.key == "wordpress:db mysql:db"
    entered = await rec.enter_scope(m, rel.id, "mysql/0", {"host": "db"})
    assert isinstance(entered, ScopeResult) and entered.in_scope
    await rec.enter_scope(m, rel.uuid, "wordpress/1")
    written = await rec.set_unit_settings(m, rel.id, "mysql/0", {"port": "3306"})
    assert isinstance(written, SettingsResult) and written.changed
    assert (await rec.set_application_settings(m, rel.id, "mysql/0", {"user": "wp"})).changed
    status = await rec.set_relation_status(m, rel.id, "wordpress/1", "suspending", "maintenance")
    assert isinstance(status, StatusResult) and status.message == "maintenance"
    apps = await rec.list_applications(m)
    assert all(isinstance(a, ApplicationInfo) for a in apps) and [a.name for a in apps] == [
        "mysql",
        "wordpress",
    ]
    got = await rec.get_relation(m, rel.id)
    assert got.units_in_scope == ["wordpress/1", "mysql/0"]
    assert [r.id for r in await rec.list_relations(m, "wordpress")] == [1, rel.id]
    assert all(isinstance(e, EndpointInfo) for e in await rec.application_endpoints(m, "mysql"))
    assert await rec.relation_ids(m, "mysql:db") == [rel.id]
    assert await rec.relation_units(m, rel.id, "mysql") == ["mysql/0"]
    assert await rec.get_unit_settings(m, rel.id, "mysql/0", as_unit="wordpress/1") == {
        "host": "db",
        "port": "3306",
    }
    assert await rec.get_application_settings(m, rel.id, "mysql", as_unit="wordpress/0") == {"user": "wp"}
    assert await rec.relation_endpoint_uuid(m, rel.id, "mysql") == got.endpoints[1].relation_endpoint_uuid
    mine = await rec.unit_relations(m, "wordpress/1")
    assert all(isinstance(r, UnitRelationInfo) for r in mine)
    assert (await rec.leave_scope(m, rel.id, "wordpress/1")).in_scope is False
    assert await rec.remove_relation(m, endpoints=("wordpress", "mysql")) == RelationLifeResult(
        id=rel.id, life="dying"
    )
    assert isinstance(await rec.remove_unit(m, "wordpress/0"), LifeResult)
    assert (await rec.remove_application(m, "wordpress")).life == "dying"
    assert await rec.grant(m, "bob", "write") == AccessInfo(model=m, user="bob", level="write")
    assert (await rec.revoke(m, "bob", "write")).level == "read"
    assert AccessInfo(model=m, user="guest", level="admin") in await rec.list_access(m)
    events = await rec.events_after(m, 0, limit=5, namespace="unit")
    assert events and all(isinstance(e, ChangeEvent) and e.namespace == "unit" for e in events)
    assert (await rec.snapshot(m)).seq >= events[-1].seq
    assert (await rec.remove_model(m)).name == m
    assert set(rec.sent) == set(COMMAND_TYPES)


async def test_refusals_raise_the_exception_of_their_code(rec: Recording) -> None:
    m = f"api-{uuid.uuid4().hex[:10]}"
    with pytest.raises(errors.ModelNotFound):
        await rec.list_applications(m)
    await rec.create_model(m)
    with pytest.raises(errors.RelationNotFound) as caught:
        await rec.get_relation(m, 99)
    assert caught.value.code == errors.ErrorCode.RelationNotFound and "99" in caught.value.message
    with pytest.raises(errors.ModelAlreadyExists):
        await rec.create_model(m)


async def test_bad_arguments_are_refused_before_sending(rec: Recording) -> None:
    with pytest.raises(InvalidArgument, match="application") as caught:
        await rec.deploy("m", "Not A Name", {})
    assert isinstance(caught.value, errors.InvalidCommand)  # the same code as the daemon's
    with pytest.raises(InvalidArgument, match="status"):
        await rec.set_relation_status("m", 1, "a/0", "sleeping")
    assert rec.sent == []


async def test_the_same_command_id_is_applied_once(rec: Recording) -> None:
    m = f"api-{uuid.uuid4().hex[:10]}"
    command_id = str(uuid.uuid4())
    first = await rec.create_model(m, command_id=command_id)
    again = await rec.create_model(m, command_id=command_id)  # a retry: no ModelAlreadyExists
    assert first == again
    await rec.deploy(m, "app", {"peers": {"p": "x"}})
    add = str(uuid.uuid4())
    assert (await rec.add_units(m, "app", command_id=add)).units == ["app/0"]
    assert (await rec.add_units(m, "app", command_id=add)).units == ["app/0"]
    assert [a.units for a in await rec.list_applications(m)] == [["app/0"]]


async def test_no_daemon_raises_daemon_unreachable(idle_amqp: str) -> None:
    async with await RelationClient.connect(idle_amqp, timeout=5) as client:
        # No command queue at all: refused by the broker at once.
        with pytest.raises(DaemonUnreachable, match="no queue"):
            await client.list_models()
        # A queue nobody consumes: no reply in time.
        async with UnservedQueue(idle_amqp):
            with pytest.raises(DaemonUnreachable, match="no reply"):
                await client.list_models(timeout=0.5)
    with pytest.raises(BrokerUnreachable):
        await RelationClient.connect("amqp://guest:guest@127.0.0.1:1/", timeout=2)


async def test_call_on_a_closed_channel_raises_broker_unreachable(idle_amqp: str) -> None:
    """aiormq reports a publish on a closed channel as ChannelInvalidStateError, a RuntimeError:
    the client must still answer with its typed BrokerUnreachable, naming the command."""
    async with await RelationClient.connect(idle_amqp, timeout=5) as client:
        assert client._channel is not None
        await client._channel.close()
        command_id = str(uuid.uuid4())
        with pytest.raises(BrokerUnreachable, match=command_id):
            await client.list_models(command_id=command_id)


def test_each_command_has_one_typed_method_returning_its_declared_result() -> None:
    methods = {
        name: getattr(RelationCommands, name)
        for name in dir(RelationCommands)
        if hasattr(getattr(RelationCommands, name), "command")
    }
    assert sorted(m.command.model_fields["type"].default for m in methods.values()) == sorted(COMMAND_TYPES)
    for method in methods.values():
        assert get_type_hints(method)["return"] == method.command.result_type, method.__name__
        assert all(code in (method.__doc__ or "") for code in declared_errors(method.command))
