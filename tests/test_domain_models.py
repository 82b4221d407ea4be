"""Models: the tenants. Every command names one; names are unique; each has its own sequences."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.domain import CommandFailed, Domain


async def refused(awaitable: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


async def test_create_model_returns_its_uuid_and_emits_model_created(pool: Any) -> None:
    d = Domain(pool)
    name = f"m-{uuid.uuid4().hex[:10]}"

    result = await d.run({"type": "create_model", "name": name})

    d.model, d.model_uuid = name, result["uuid"]
    assert result["name"] == name
    assert uuid.UUID(result["uuid"])
    assert await d.events_since(0) == [("model", "created")]


async def test_a_model_name_is_taken_only_once(domain: Domain) -> None:
    err = await refused(domain.run({"type": "create_model", "name": domain.model}))

    assert err.code == "ModelAlreadyExists"
    assert domain.model in err.message


async def test_list_models_includes_a_new_model(domain: Domain) -> None:
    models = await domain.run({"type": "list_models"})

    assert {"uuid": domain.model_uuid, "name": domain.model} in models


async def test_a_model_is_addressed_by_name_or_uuid(domain: Domain) -> None:
    await domain.deploy("mysql")

    by_name = await domain.run({"type": "list_applications", "model": domain.model})
    by_uuid = await domain.run({"type": "list_applications", "model": domain.model_uuid})

    assert by_name == by_uuid
    assert [a["name"] for a in by_uuid] == ["mysql"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "deploy", "application": "mysql", "charm": {"name": "mysql"}},
        {"type": "add_units", "application": "mysql"},
        {"type": "integrate", "endpoints": ["wordpress", "mysql"]},
        {"type": "enter_scope", "relation": 0, "unit": "mysql/0"},
        {"type": "list_relations"},
        {"type": "events_after"},
    ],
    ids=lambda b: b["type"],
)
@pytest.mark.parametrize("model", ["no-such-model", "00000000-0000-4000-8000-000000000000"])
async def test_commands_on_an_unknown_model_are_refused(
    domain: Domain, body: dict[str, Any], model: str
) -> None:
    err = await refused(domain.run({**body, "model": model}))

    assert err.code == "ModelNotFound"
    assert model in err.message


async def test_models_are_isolated_from_each_other(domain: Domain, pool: Any) -> None:
    other = Domain(pool)
    await other.new_model()
    await domain.deploy("mysql", units=1)

    err = await refused(other.run({"type": "add_units", "application": "mysql"}))

    assert err.code == "ApplicationNotFound"
    assert await other.run({"type": "list_applications"}) == []
    await other.deploy("mysql", units=2)
    assert (await domain.run({"type": "list_applications"}))[0]["units"] == ["mysql/0"]


async def test_a_refused_command_emits_nothing(domain: Domain) -> None:
    seq = await domain.last_seq()

    await refused(domain.run({"type": "add_units", "application": "ghost"}))

    assert await domain.events_since(seq) == []


async def test_a_relation_of_one_model_cannot_be_named_from_another(domain: Domain, pool: Any) -> None:
    other = Domain(pool)
    await other.new_model()
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql")
    rel = await domain.integrate("wordpress", "mysql")
    await other.deploy("wordpress", units=1)

    by_uuid = await refused(other.run({"type": "get_relation", "relation": rel["uuid"]}))
    entering = await refused(
        other.run({"type": "enter_scope", "relation": rel["uuid"], "unit": "wordpress/0"})
    )

    assert by_uuid.code == entering.code == "RelationNotFound"
