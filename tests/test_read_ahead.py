"""A batch reads what its commands' handlers start with in one statement (handlers/read_ahead.py,
unit_in_relation.find_many), against the real database: the same answers as the handlers' own
reads, one statement for the batch, and never for a command after another of its model."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.commands import COMMAND_ADAPTER
from contracts.errors import RelationdError
from daemon.applier import apply, body_digest
from daemon.batch import Item, apply_batch
from daemon.disposition import Disposition
from handlers import Actor, Context, settings_bag, unit_in_relation
from handlers.unit_in_relation import Wanted
from tests.domain import Domain, Recording, enter
from tests.test_batch import item

REQUIRER = {"name": "ra-app", "requires": {"db": {"interface": "ra-sql"}}}
PROVIDER = {"name": "ra-db", "provides": {"db": {"interface": "ra-sql"}}}
# The unit-in-relation lookup, single or set-wise, by the text both forms share.
LOOKUP = "WITH rel AS MATERIALIZED"
SET_WISE = "WITH ORDINALITY AS k(m, ref, unit, bag, o)"


async def related_model(pool: Any) -> tuple[Domain, int, str]:
    """A model with app/0 in the scope of a relation to db (db/0 not), settings on both sides;
    its relation's id and UUID."""
    d = Domain(pool)
    await d.new_model()
    await d.run({"type": "deploy", "application": "app", "charm": REQUIRER, "units": 1})
    await d.run({"type": "deploy", "application": "db", "charm": PROVIDER, "units": 1})
    rel = await d.integrate("app:db", "db:db")
    await enter(d, rel["id"], "app/0", {"want": "x"})
    await enter(d, rel["id"], "db/0", {"host": "h"})
    await d.run(
        {"type": "set_application_settings", "relation": rel["id"], "unit": "db/0", "settings": {"a": "1"}}
    )
    await d.run({"type": "leave_scope", "relation": rel["id"], "unit": "db/0"})
    uuid_ = await pool.fetchval(
        "SELECT uuid::text FROM relation WHERE model_uuid = $1 AND relation_id = $2", d.model_uuid, rel["id"]
    )
    return d, rel["id"], uuid_


def _comparable(answer: Any) -> Any:
    if isinstance(answer, RelationdError):
        return type(answer), str(answer), answer.to_dict()
    return answer


async def test_find_many_answers_each_ask_as_find_does(pool: Any) -> None:
    (a, rel_a, uuid_a), (b, rel_b, uuid_b) = await related_model(pool), await related_model(pool)
    asks = [
        (a.model_uuid, Wanted(rel_a, "app/0")),
        (a.model_uuid, Wanted(uuid_a, "app/0", settings_bag.UNIT_BAG)),  # by UUID
        (b.model_uuid, Wanted(rel_b, "app/0", settings_bag.UNIT_BAG)),
        (b.model_uuid, Wanted(rel_b, "db/0", settings_bag.UNIT_BAG)),  # left: no scope row
        (a.model_uuid, Wanted(rel_a, "db/0", settings_bag.APPLICATION_BAG)),
        (b.model_uuid, Wanted(rel_b + 1000, "app/0")),  # no such relation
        (a.model_uuid, Wanted(str(uuid.uuid4()), "app/0", settings_bag.UNIT_BAG)),  # no such relation
        (b.model_uuid, Wanted(rel_b, "app/7", settings_bag.APPLICATION_BAG)),  # no such unit
        (a.model_uuid, Wanted(uuid_b, "db/0")),  # b's relation, asked in a: not found
    ]
    async with pool.acquire() as conn:
        many = await unit_in_relation.find_many(conn, asks)
        one_by_one: list[Any] = []
        for model_uuid, wanted in asks:
            try:
                one_by_one.append(
                    await unit_in_relation.find(Context(conn, Actor.system()), model_uuid, wanted)
                )
            except RelationdError as err:
                one_by_one.append(err)
    assert [_comparable(x) for x in many] == [_comparable(x) for x in one_by_one]
    found = many[2]
    assert isinstance(found, unit_in_relation.UnitInRelation)
    assert {s.settings.get("want") for s in found.bags.values()} == {"x", None}  # its bag, read
    app_bag = many[4]
    assert isinstance(app_bag, unit_in_relation.UnitInRelation)
    assert any(s.settings == {"a": "1"} for s in app_bag.bags.values())
    assert [type(x).__name__ for x in many[5:]] == [
        "RelationNotFound",
        "RelationNotFound",
        "UnitNotFound",
        "RelationNotFound",
    ]


def unit_command(kind: str, d: Domain, rel: int, unit: str, settings: dict[str, str] | None = None) -> Item:
    """A command of ``kind`` by ``unit`` in relation ``rel`` of ``d``'s model."""
    body: dict[str, Any] = {"type": kind, "model": d.model, "relation": rel, "unit": unit}
    if settings is not None:
        body["settings"] = settings
    return item(body)


async def test_a_batch_reads_ahead_for_each_models_first_command_in_one_statement(pool: Any) -> None:
    models = [await related_model(pool) for _ in range(3)]
    (a, rel_a, _), (b, rel_b, _), (c, rel_c, _) = models
    items = [
        unit_command("set_unit_settings", a, rel_a, "app/0", {"want": "y"}),
        unit_command("enter_scope", b, rel_b, "db/0"),
        # After b's enter scope in the same transaction: read by its handler, which must see it.
        unit_command("set_unit_settings", b, rel_b, "db/0", {"host": "b2"}),
        unit_command("set_application_settings", c, rel_c, "db/0", {"a": "2"}),
    ]
    async with pool.acquire() as conn:
        recording = Recording(conn)
        results = await apply_batch(recording, items)
    assert [r.disposition if r else None for r in results] == [Disposition.applied] * 4
    lookups = [q for q in recording.statements if LOOKUP in q]
    assert len(lookups) == 2 and SET_WISE in lookups[0] and SET_WISE not in lookups[1]
    assert results[2] is not None and results[2].reply["result"]["changed"] is True
    settings = {
        (d.model, unit): await d.run({"type": "get_unit_settings", "relation": rel, "unit": unit})
        for d, rel, unit in ((a, rel_a, "app/0"), (b, rel_b, "db/0"))
    }
    assert settings == {(a.model, "app/0"): {"want": "y"}, (b.model, "db/0"): {"host": "b2"}}
    app_settings = await c.run({"type": "get_application_settings", "relation": rel_c, "application": "db"})
    assert app_settings == {"a": "2"}


async def test_a_refusal_read_ahead_is_the_handlers_and_costs_the_others_nothing(pool: Any) -> None:
    (a, rel_a, _), (b, rel_b, _) = await related_model(pool), await related_model(pool)
    items = [
        # db/0 left the scope: refused with what the batch read for it.
        unit_command("set_unit_settings", a, rel_a, "db/0", {"host": "z"}),
        unit_command("set_unit_settings", b, rel_b, "app/0", {"want": "z"}),
    ]
    async with pool.acquire() as conn:
        recording = Recording(conn)
        results = await apply_batch(recording, items)
    assert [r.disposition if r else None for r in results] == [Disposition.refused, Disposition.applied]
    assert results[0] is not None and results[0].reply["error"]["code"] == "RelationUnitNotFound"
    # The refusal rolled the first attempt back; the second, with savepoints, read ahead again.
    assert sum(SET_WISE in q for q in recording.statements) == 2
    assert not any(LOOKUP in q and SET_WISE not in q for q in recording.statements)
    assert await b.run({"type": "get_unit_settings", "relation": rel_b, "unit": "app/0"}) == {"want": "z"}


# Property: a batch answers and changes exactly what the same commands applied one by one do.
_UNITS = ["app/0", "db/0", "app/9"]  # app/9 does not exist
_BAGS = st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["", "1", "2"]), max_size=2)
_STEP = st.tuples(
    st.integers(0, 1),  # which model
    st.sampled_from(["enter_scope", "leave_scope", "set_unit_settings", "set_application_settings"]),
    st.sampled_from(["app/0", "db/0", "db/0", "app/9"]),
    st.one_of(st.none(), _BAGS),
    st.booleans(),  # name the relation by UUID
)


def _body(model: Domain, rel: tuple[int, str], step: tuple[Any, ...]) -> dict[str, Any]:
    _, kind, unit, bag, by_uuid = step
    body: dict[str, Any] = {"type": kind, "model": model.model, "relation": rel[1] if by_uuid else rel[0]}
    body["unit"] = unit
    if kind.startswith("set_"):
        body["settings"] = bag or {}
    elif kind == "enter_scope" and bag is not None:
        body["settings"] = bag
    return body


def _without_uuids(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not k.endswith("uuid")}


def _answer(reply: dict[str, Any]) -> Any:
    if not reply["ok"]:
        return reply["error"]["code"], reply["error"]["message"]
    return _without_uuids(reply["result"])


async def _state(models: list[tuple[Domain, int, str]]) -> list[Any]:
    seen: list[Any] = []
    for d, rel, _ in models:
        for unit in _UNITS[:2]:
            seen.append(_answer(await d.reply({"type": "get_unit_settings", "relation": rel, "unit": unit})))
        for app in ("app", "db"):
            body = {"type": "get_application_settings", "relation": rel, "application": app}
            seen.append(_answer(await d.reply(body)))
        # Events but the model's own, without UUIDs (the two worlds' names and UUIDs differ).
        seen.append(
            [
                (e["namespace"], e["kind"], _without_uuids(e["key"]), _without_uuids(e["payload"]))
                for e in await d.events()
                if e["namespace"] != "model"
            ]
        )
    return seen


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_STEP, min_size=2, max_size=8))
async def test_a_batch_answers_and_changes_what_one_by_one_does(
    pool: Any, steps: list[tuple[Any, ...]]
) -> None:
    batched = [await related_model(pool) for _ in range(2)]
    alone = [await related_model(pool) for _ in range(2)]
    async with pool.acquire() as conn:
        items = [item(_body(batched[s[0]][0], batched[s[0]][1:], s)) for s in steps]
        results = await apply_batch(conn, items)
        expected = []
        for s in steps:
            d, *rel = alone[s[0]]
            raw = json.dumps(_body(d, (rel[0], rel[1]), s)).encode()
            one = await apply(conn, str(uuid.uuid4()), body_digest(raw), COMMAND_ADAPTER.validate_json(raw))
            expected.append(_answer(one.reply))
    assert all(r is not None for r in results)
    assert [_answer(r.reply) for r in results if r is not None] == expected
    assert await _state(batched) == await _state(alone)
