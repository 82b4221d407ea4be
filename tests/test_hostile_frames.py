"""A message whose AMQP properties the client library cannot decode costs nobody else a command.

Regression for issue 15 part 1: a message_id that is not UTF-8 made pamqp fail on the content
header, aiormq's reader died, the daemon reconnected and the broker redelivered everything in
flight, until the delivery limit dead-lettered the hostile message and innocent commands with it.
The full matrix of hostile frames is in tests/test_fault_frames.py (make fault).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg

from contracts import topology
from tests.harness import DaemonProcess
from tests.hostile_support import deploy, hostile_user_site
from tests.raw_amqp import short_str


async def test_undecodable_message_id_is_refused_once_and_others_lose_nothing(
    daemon: DaemonProcess, amqp_url: str, database_url: str
) -> None:
    async with hostile_user_site(amqp_url, daemon) as site:
        assert site.mailbox is not None and site.hostile_mailbox is not None
        await site.dead_letters()  # start from an empty dead-letter queue
        reconnects = site.broker_reconnects()
        log_start = len(daemon.log())
        model = f"hostile-{uuid.uuid4().hex[:8]}"
        assert (await site.call({"type": "create_model", "name": model}))["ok"]

        token = uuid.uuid4().hex
        victim = f"never-{token[:8]}"
        body = json.dumps({"type": "create_model", "name": victim}).encode()
        header = site.hostile_header(body, token, message_id=short_str(b"\xff\xfe" + token.encode()))
        before = [await site.send(deploy(model, f"before{i}")) for i in range(5)]
        outcome = await site.publish_hostile(header, body)
        after = [await site.send(deploy(model, f"after{i}")) for i in range(5)]
        assert outcome.confirmed, outcome

        innocent = set(before + after)
        assert not await site.mailbox.wait(innocent, 20), "innocent commands unanswered"
        await asyncio.sleep(0.5)  # a redelivery would answer again in this time
        replies = {cid: site.mailbox.replies[cid] for cid in innocent}
        assert all(len(r) == 1 and r[0]["ok"] for r in replies.values()), replies

        refusal = site.hostile_mailbox.matching(token)
        assert len(refusal) == 1, refusal
        assert refusal[0]["error"]["code"] == "InvalidCommand"
        assert refusal[0]["error"]["details"] == {"field": "message_id"}
        assert "message_id" in refusal[0]["error"]["message"]

        dead = await site.dead_letters()
        assert [m.body for m in dead] == [body]  # the hostile one, once; no innocent command
        headers: dict[str, Any] = dict(dead[0].headers)
        assert headers[topology.DEAD_LETTER_CODE_HEADER] == "InvalidCommand"
        assert "message_id" in str(headers[topology.DEAD_LETTER_REASON_HEADER])

        refused = [
            line
            for line in daemon.log_lines()
            if line.get("event") == "command refused and dead-lettered"
            and token in str(line.get("command_id"))
        ]
        assert len(refused) == 1 and refused[0]["code"] == "InvalidCommand", refused
        assert "message_id" in refused[0]["reason"]
        assert site.broker_reconnects() == reconnects
        assert "broker session lost" not in daemon.log()[log_start:]
        conn = await asyncpg.connect(database_url)
        try:
            applied = await conn.fetchval(
                "SELECT count(*) FROM processed_command WHERE command_id = ANY($1)", list(innocent)
            )
            victims = await conn.fetchval("SELECT count(*) FROM model WHERE name = $1", victim)
        finally:
            await conn.close()
        assert applied == len(innocent)
        assert victims == 0
