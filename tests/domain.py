"""Drive the relation domain directly through the daemon's applier (no broker), for domain tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.commands import COMMAND_ADAPTER
from daemon.applier import apply, body_digest
from daemon.batch import Item, apply_batch, batchable
from daemon.settings import Settings
from handlers.context import Actor, Limits

CHARMS = Path(__file__).resolve().parent / "charms"


def charm(name: str) -> dict[str, Any]:
    """A real charm's metadata.yaml from tests/charms/, as a dict."""
    data: dict[str, Any] = yaml.safe_load((CHARMS / f"{name}.yaml").read_text())
    return data


class CommandFailed(Exception):
    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply['error']['code']}: {reply['error']['message']}")
        self.code: str = reply["error"]["code"]
        self.message: str = reply["error"]["message"]
        self.reply = reply


async def refused(awaitable: Any) -> CommandFailed:
    """Await a command expected to be refused; return the refusal."""
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


async def enter(domain: Domain, relation: int, unit: str, settings: dict[str, str] | None = None) -> Any:
    """Unit enters the relation's scope, with its settings if given."""
    body: dict[str, Any] = {"type": "enter_scope", "relation": relation, "unit": unit}
    if settings is not None:
        body["settings"] = settings
    return await domain.run(body)


async def leave(domain: Domain, relation: int, unit: str) -> Any:
    """Unit leaves the relation's scope."""
    return await domain.run({"type": "leave_scope", "relation": relation, "unit": unit})


class Domain:
    """One model, and helpers that send commands to it as JSON bodies would arrive."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.model = ""
        self.model_uuid = ""
        self.limits = Limits()  # what the daemon's settings would configure
        # With RELATIOND_BATCH_MAX above 1 the daemon applies writes as batches: so do these tests.
        self.batched = Settings().batch_max > 1

    async def new_model(self, name: str | None = None) -> str:
        name = name or f"m-{uuid.uuid4().hex[:10]}"
        result = await self.run({"type": "create_model", "name": name})
        self.model, self.model_uuid = name, result["uuid"]
        return name

    async def reply(self, body: dict[str, Any], command_id: str | None = None) -> dict[str, Any]:
        """Apply a command; return the whole reply (ok or error)."""
        if body["type"] not in ("create_model", "list_models") and "model" not in body:
            body = {**body, "model": self.model}
        import json

        raw = json.dumps(body).encode()
        cmd = COMMAND_ADAPTER.validate_json(raw)
        command_id = command_id or str(uuid.uuid4())
        async with self.pool.acquire() as conn:
            if self.batched and batchable(cmd):
                item = Item(command_id, body_digest(raw), cmd, Actor.system())
                (applied,) = await apply_batch(conn, [item], self.limits)
                assert applied is not None, "no other transaction holds the model"
            else:
                applied = await apply(conn, command_id, body_digest(raw), cmd, limits=self.limits)
        return applied.reply

    async def run(self, body: dict[str, Any], command_id: str | None = None) -> Any:
        """Apply a command; return its result or raise CommandFailed with the error code."""
        reply = await self.reply(body, command_id)
        if not reply["ok"]:
            raise CommandFailed(reply)
        return reply["result"]

    async def deploy(
        self,
        app: str,
        charm_name: str | None = None,
        units: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        meta = metadata if metadata is not None else charm(charm_name or app)
        return await self.run({"type": "deploy", "application": app, "charm": meta, "units": units})

    async def integrate(self, a: str, b: str, **settings: dict[str, str]) -> Any:
        body: dict[str, Any] = {"type": "integrate", "endpoints": [a, b]}
        if settings:
            body["settings"] = settings
        return await self.run(body)

    async def events(self, after: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.run(
            {"type": "events_after", "after": after, "limit": 10000}
        )
        return result

    async def last_seq(self) -> int:
        evs = await self.events()
        return evs[-1]["seq"] if evs else 0

    async def events_since(self, seq: int) -> list[tuple[str, str]]:
        """(namespace, kind) of every event after seq, in order."""
        return [(e["namespace"], e["kind"]) for e in await self.events(seq)]


class Recording:
    """A connection that records every statement sent through it (whitespace folded)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conn, name)
        if name not in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
            return attr

        async def recorded(query: str, *args: Any, **kwargs: Any) -> Any:
            self.statements.append(" ".join(query.split()))
            return await attr(query, *args, **kwargs)

        return recorded
