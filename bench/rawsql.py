"""The guarantees-free transaction of the raw and FastStream contenders: the size of an integrate.

A row lock on the model, a counter update, the relation, its two endpoints and one event row: the
writes an integrate makes, without dedupe, validation, life checks, endpoint inference or an
outbox relay.
"""

from __future__ import annotations

import json
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_model (
    id            integer PRIMARY KEY,
    relation_seq  bigint NOT NULL DEFAULT 0,
    event_seq     bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS raw_relation (
    model_id     integer NOT NULL REFERENCES raw_model (id),
    relation_id  bigint NOT NULL,
    key          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, relation_id)
);
CREATE TABLE IF NOT EXISTS raw_relation_endpoint (
    model_id     integer NOT NULL,
    relation_id  bigint NOT NULL,
    position     smallint NOT NULL,
    endpoint     text NOT NULL,
    PRIMARY KEY (model_id, relation_id, position),
    FOREIGN KEY (model_id, relation_id) REFERENCES raw_relation (model_id, relation_id)
);
CREATE TABLE IF NOT EXISTS raw_event (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id    integer NOT NULL,
    seq         bigint NOT NULL,
    payload     jsonb NOT NULL,
    UNIQUE (model_id, seq)
);
"""

_LOCK = "SELECT id FROM raw_model WHERE id = $1 FOR UPDATE"
_COUNTERS = """
UPDATE raw_model SET relation_seq = relation_seq + 1, event_seq = event_seq + 1 WHERE id = $1
RETURNING relation_seq, event_seq
"""
_RELATION = "INSERT INTO raw_relation (model_id, relation_id, key) VALUES ($1, $2, $3)"
_ENDPOINTS = """
INSERT INTO raw_relation_endpoint (model_id, relation_id, position, endpoint)
VALUES ($1, $2, 0, $3), ($1, $2, 1, $4)
"""
_EVENT = "INSERT INTO raw_event (model_id, seq, payload) VALUES ($1, $2, $3::jsonb)"


async def create_schema(conn: Any, models: int) -> None:
    await conn.execute(SCHEMA)
    await conn.execute(
        "INSERT INTO raw_model (id) SELECT g FROM generate_series(0, $1 - 1) g ON CONFLICT DO NOTHING",
        models,
    )


async def integrate(conn: Any, model: int, endpoints: list[str]) -> tuple[dict[str, Any], bytes]:
    """One transaction; returns the reply and the event body."""
    key = " ".join(endpoints)
    async with conn.transaction():
        await conn.execute(_LOCK, model)
        relation_id, seq = await conn.fetchrow(_COUNTERS, model)
        await conn.execute(_RELATION, model, relation_id, key)
        await conn.execute(_ENDPOINTS, model, relation_id, endpoints[0], endpoints[1])
        event = json.dumps({"model": model, "seq": seq, "kind": "created", "relation_id": relation_id})
        await conn.execute(_EVENT, model, seq, event)
    return {"ok": True, "result": {"id": relation_id, "key": key}}, event.encode()


def routing_key(model: int, relation_id: int) -> str:
    return f"model.{model}.relation_life.{relation_id}"
