"""A settings bag a handler writes is stored when its command ends, in the statement that writes
the command's events (handlers/settings_bag.py Store, daemon/applier.py finish): one round trip
less per settings write; in a batch, before a later command of the same model reads it."""

from __future__ import annotations

from typing import Any

from daemon.applier import apply
from daemon.batch import apply_batch
from daemon.disposition import Disposition
from handlers import Actor, Context, settings_bag
from tests.domain import Domain, Recording
from tests.test_read_ahead import related_model, unit_command

# The bag-storing CTEs, in the finishing statement or on their own.
STORES = "_setting_removed AS (DELETE FROM relation_"


async def stored_hash(d: Domain, rel: int, unit: str) -> str:
    """The hash stored beside ``unit``'s bag in relation ``rel`` of ``d``'s model."""
    return await d.pool.fetchval(
        """SELECT h.sha256 FROM relation_unit_settings_hash h
           JOIN relation_unit ru ON ru.model_uuid = h.model_uuid AND ru.uuid = h.relation_unit_uuid
           JOIN relation_endpoint re ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
           JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
           JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid
           WHERE h.model_uuid = $1 AND r.relation_id = $2 AND u.name = $3""",
        d.model_uuid,
        rel,
        unit,
    )


async def test_one_command_stores_its_bag_in_its_finishing_statement(pool: Any) -> None:
    d, rel, _ = await related_model(pool)
    cmd = unit_command("set_unit_settings", d, rel, "app/0", {"want": "", "port": "5432"})
    async with pool.acquire() as conn:
        recording = Recording(conn)
        applied = await apply(recording, cmd.command_id, cmd.digest, cmd.cmd)
    assert applied.disposition is Disposition.applied
    # The claim, the model lock (the system needs no access check), the unit in its relation with
    # its bag, the finish.
    assert len(recording.statements) == 4
    assert STORES in recording.statements[-1] and "INSERT INTO change_event" in recording.statements[-1]
    bag = await d.run({"type": "get_unit_settings", "relation": rel, "unit": "app/0"})
    assert bag == {"port": "5432"}
    assert await stored_hash(d, rel, "app/0") == settings_bag.bag_hash(bag) == applied.reply["result"]["hash"]


async def test_a_batch_stores_each_models_bags_before_its_next_command_and_keeps_them_past_a_refusal(
    pool: Any,
) -> None:
    (a, rel_a, _), (b, rel_b, _) = await related_model(pool), await related_model(pool)
    items = [
        unit_command("set_unit_settings", a, rel_a, "app/0", {"extra": "1"}),
        unit_command("set_unit_settings", b, rel_b, "app/0", {"want": "q"}),
        # a's second command merges over its first: the bags written so far are stored first.
        unit_command("set_unit_settings", a, rel_a, "app/0", {"extra": "", "more": "2"}),
        # db/0 left the scope: refused, the batch applied again with savepoints.
        unit_command("set_unit_settings", a, rel_a, "db/0", {"host": "z"}),
        unit_command("set_application_settings", b, rel_b, "db/0", {"a": "3"}),
    ]
    async with pool.acquire() as conn:
        recording = Recording(conn)
        results = await apply_batch(recording, items)
    applied, refused = Disposition.applied, Disposition.refused
    assert [r.disposition if r else None for r in results] == [applied] * 3 + [refused, applied]
    # Each attempt (the one refused, then the one with savepoints) stores what was written before
    # a's second and third commands on its own, and b's last write with the events; the refused
    # attempt never finished.
    on_their_own = [q for q in recording.statements if STORES in q and "change_event" not in q]
    finishing = [q for q in recording.statements if STORES in q and "INSERT INTO change_event" in q]
    assert (len(on_their_own), len(finishing)) == (4, 1)
    assert await a.run({"type": "get_unit_settings", "relation": rel_a, "unit": "app/0"}) == {
        "want": "x",
        "more": "2",
    }
    assert await b.run({"type": "get_unit_settings", "relation": rel_b, "unit": "app/0"}) == {"want": "q"}
    app_bag = await b.run({"type": "get_application_settings", "relation": rel_b, "application": "db"})
    assert app_bag == {"a": "3"}
    assert await stored_hash(a, rel_a, "app/0") == settings_bag.bag_hash({"want": "x", "more": "2"})
    assert await stored_hash(b, rel_b, "app/0") == settings_bag.bag_hash({"want": "q"})


async def test_a_bag_written_twice_in_one_command_keeps_both_writes(pool: Any) -> None:
    d, rel, _ = await related_model(pool)
    owner = await pool.fetchval(
        """SELECT ru.uuid::text FROM relation_unit ru
           JOIN relation_endpoint re ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
           JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
           WHERE ru.model_uuid = $1 AND r.relation_id = $2""",
        d.model_uuid,
        rel,
    )
    async with pool.acquire() as conn, conn.transaction():
        ctx = Context(conn, Actor.system())
        bag = settings_bag.UNIT_BAG
        await settings_bag.write(ctx, bag, d.model_uuid, owner, {"x": "1"})
        second = await settings_bag.write(ctx, bag, d.model_uuid, owner, {"want": "", "y": "2"})
        await settings_bag.store(conn, ctx.bag_stores)
        assert await settings_bag.read(conn, bag, d.model_uuid, owner) == {"x": "1", "y": "2"}
        assert second.sha256 == settings_bag.bag_hash({"x": "1", "y": "2"})
