"""Several commands in one transaction (daemon/batch.py) and batches formed without waiting
(daemon/batcher.py), against the real database."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from contracts.commands import COMMAND_ADAPTER
from daemon.applier import Applied, apply, body_digest
from daemon.batch import Item, apply_batch
from daemon.batcher import Batcher
from daemon.disposition import Disposition
from handlers import Actor
from tests.domain import Domain

APP = {"name": "bench-app", "requires": {"db": {"interface": "bench-sql"}}}


def item(body: dict[str, Any], actor: Actor = Actor.system(), command_id: str | None = None) -> Item:
    raw = json.dumps(body).encode()
    command_id = str(uuid.uuid4()) if command_id is None else command_id
    return Item(command_id, body_digest(raw), COMMAND_ADAPTER.validate_json(raw), actor)


def deploy(model: str, app: str) -> dict[str, Any]:
    return {"type": "deploy", "model": model, "application": app, "charm": APP, "units": 1}


async def new_model(pool: Any) -> Domain:
    d = Domain(pool)
    await d.new_model()
    return d


async def seqs(pool: Any, model_uuid: str) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT seq, command_id FROM change_event WHERE model_uuid = $1 ORDER BY seq", model_uuid
    )
    return [(r["seq"], r["command_id"]) for r in rows]


async def test_a_batch_over_models_numbers_each_models_events_gapless_and_keeps_a_refusal(pool: Any) -> None:
    a, b = await new_model(pool), await new_model(pool)
    before_a = await a.last_seq()
    items = [
        item(deploy(a.model, "x")),
        item(deploy(b.model, "x")),
        item(deploy(a.model, "x")),  # already deployed by the first: refused
        item(deploy(a.model, "y")),
    ]
    async with pool.acquire() as conn:
        results = await apply_batch(conn, items)
    assert [r.disposition if r else None for r in results] == [
        Disposition.applied,
        Disposition.applied,
        Disposition.refused,
        Disposition.applied,
    ]
    refused = results[2]
    assert refused is not None and refused.reply["error"]["code"] == "ApplicationAlreadyExists"
    log_a = await seqs(pool, a.model_uuid)
    assert [s for s, _ in log_a] == list(range(1, len(log_a) + 1))
    after = [cid for s, cid in log_a if s > before_a]
    assert set(after) == {items[0].command_id, items[3].command_id}
    assert after.index(items[3].command_id) > after.index(items[0].command_id)  # batch order kept
    log_b = await seqs(pool, b.model_uuid)
    assert [s for s, _ in log_b] == list(range(1, len(log_b) + 1))
    outbox = await pool.fetchval(
        "SELECT count(*) FROM outbox o JOIN change_event e USING (event_id) WHERE e.command_id = ANY($1)",
        [i.command_id for i in items],
    )
    assert outbox == results[0].events + results[1].events + results[3].events  # type: ignore[union-attr]
    # The refusal was stored: the same command again is answered from the store, unchanged.
    async with pool.acquire() as conn:
        again = await apply(conn, items[2].command_id, items[2].digest, items[2].cmd)
    assert again.disposition is Disposition.duplicate
    assert again.reply == refused.reply


async def test_a_model_held_elsewhere_defers_only_its_commands(pool: Any) -> None:
    a, b = await new_model(pool), await new_model(pool)
    items = [item(deploy(a.model, "x")), item(deploy(b.model, "x"))]
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT FROM model WHERE uuid = $1::uuid FOR NO KEY UPDATE", b.model_uuid)
        async with pool.acquire() as conn:
            results = await asyncio.wait_for(apply_batch(conn, items), 10)
    assert results[0] is not None and results[0].disposition is Disposition.applied
    assert results[1] is None
    stored = await pool.fetchval(
        "SELECT count(*) FROM processed_command WHERE command_id = $1", items[1].command_id
    )
    assert stored == 0
    async with pool.acquire() as conn:
        (later,) = await apply_batch(conn, [items[1]])
    assert later is not None and later.disposition is Disposition.applied


async def test_a_denied_command_stores_nothing_and_costs_the_others_nothing(pool: Any) -> None:
    a = await new_model(pool)
    stranger = Actor("stranger-" + uuid.uuid4().hex[:6])
    items = [item(deploy(a.model, "x")), item(deploy(a.model, "y"), stranger), item(deploy(a.model, "z"))]
    async with pool.acquire() as conn:
        results = await apply_batch(conn, items)
    assert [r.disposition if r else None for r in results] == [
        Disposition.applied,
        Disposition.denied,
        Disposition.applied,
    ]
    assert results[1] is not None and results[1].reply["error"]["code"] == "PermissionDenied"
    claimed = await pool.fetch(
        "SELECT command_id FROM processed_command WHERE command_id = ANY($1)", [i.command_id for i in items]
    )
    assert {r["command_id"] for r in claimed} == {items[0].command_id, items[2].command_id}


async def test_a_duplicate_in_a_batch_is_answered_from_the_store(pool: Any) -> None:
    a = await new_model(pool)
    first = item(deploy(a.model, "x"))
    async with pool.acquire() as conn:
        (done,) = await apply_batch(conn, [first])
        again = await apply_batch(conn, [first, item(deploy(a.model, "y"))])
    assert done is not None and again[0] is not None
    assert again[0].disposition is Disposition.duplicate and again[0].reply == done.reply
    assert again[1] is not None and again[1].disposition is Disposition.applied


async def test_batches_form_from_what_waits_and_keep_each_models_order(pool: Any) -> None:
    models = [await new_model(pool) for _ in range(3)]
    sizes: list[int] = []

    async def run(batch: list[Item]) -> list[Applied | Exception | None]:
        sizes.append(len(batch))
        async with pool.acquire() as conn:
            return list(await apply_batch(conn, batch))

    batcher = Batcher(run, batch_max=4, workers=1)
    # Alone, a command is a batch of one at once: nothing waits to fill a batch.
    alone = await asyncio.wait_for(batcher.submit(item(deploy(models[0].model, "solo"))), 10)
    assert alone.disposition is Disposition.applied and sizes == [1]
    sent = [item(deploy(m.model, f"a{i}")) for i in range(6) for m in models]
    results = await asyncio.gather(*(batcher.submit(i) for i in sent))
    assert all(r.disposition is Disposition.applied for r in results)
    assert max(sizes[1:]) == 4 and sum(sizes) == 1 + len(sent)
    for m in models:
        mine = [i.command_id for i in sent if i.cmd.model == m.model]
        logged = [cid for _, cid in await seqs(pool, m.model_uuid) if cid in mine]
        assert list(dict.fromkeys(logged)) == mine


async def test_a_grant_earlier_in_the_batch_counts_for_the_commands_after_it(pool: Any) -> None:
    a = await new_model(pool)
    user = "grantee-" + uuid.uuid4().hex[:6]
    items = [
        item(deploy(a.model, "x"), Actor(user)),  # before the grant: no access
        item({"type": "grant", "model": a.model, "user": user, "level": "write"}),
        item(deploy(a.model, "y"), Actor(user)),
        item({"type": "revoke", "model": a.model, "user": user, "level": "read"}),
        item(deploy(a.model, "z"), Actor(user)),  # after the revoke: no access again
    ]
    async with pool.acquire() as conn:
        results = await apply_batch(conn, items)
    assert [r.disposition if r else None for r in results] == [
        Disposition.denied,
        Disposition.applied,
        Disposition.applied,
        Disposition.applied,
        Disposition.denied,
    ]


async def test_a_batch_that_fails_is_applied_command_by_command_and_only_the_one_at_fault_fails(
    pool: Any,
) -> None:
    from daemon.consumer import CommandConsumer
    from daemon.settings import Settings

    a, b = await new_model(pool), await new_model(pool)
    # An empty command id breaks the claim statement's CHECK: the whole batch fails with it.
    items = [
        item(deploy(a.model, "x")),
        item(deploy(b.model, "x"), command_id=""),
        item(deploy(b.model, "y")),
        item(deploy(a.model, "y")),
    ]
    consumer = CommandConsumer(Settings(), pool, broker=None)  # type: ignore[arg-type]  # no broker used
    results = await consumer._apply_batch(items)
    assert isinstance(results[1], Exception)
    applied = [r for i, r in enumerate(results) if i != 1]
    assert all(isinstance(r, Applied) and r.disposition is Disposition.applied for r in applied)
    logged = [cid for _, cid in await seqs(pool, a.model_uuid)]
    assert logged.index(items[3].command_id) > logged.index(items[0].command_id)


async def test_the_batcher_tries_a_deferred_model_again_and_keeps_its_order(pool: Any) -> None:
    a, b = await new_model(pool), await new_model(pool)

    async def run(batch: list[Item]) -> list[Applied | Exception | None]:
        async with pool.acquire() as conn:
            return list(await apply_batch(conn, batch))

    batcher = Batcher(run, batch_max=8, workers=1)
    sent = [item(deploy(b.model, "x")), item(deploy(a.model, "x")), item(deploy(b.model, "y"))]
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT FROM model WHERE uuid = $1::uuid FOR NO KEY UPDATE", b.model_uuid)
        pending = [asyncio.ensure_future(batcher.submit(i)) for i in sent]
        first_a = await asyncio.wait_for(pending[1], 10)  # model a goes on while b is held
        assert first_a.disposition is Disposition.applied
        assert not pending[0].done() and not pending[2].done()
        await tx.rollback()
    results = await asyncio.wait_for(asyncio.gather(*pending), 10)
    assert all(r.disposition is Disposition.applied for r in results)
    logged = [cid for _, cid in await seqs(pool, b.model_uuid)]
    assert logged.index(sent[2].command_id) > logged.index(sent[0].command_id)
