"""An unexpected, non-transient database failure: an Internal reply with a reference id and no
stack trace, the message dead-lettered with its reason, the error logged with the same reference,
and the daemon goes on (tests/test_daemon_protocol.py counts Internal as covered here).

The failure is made by renaming a table in the test's own database, so no one else is affected.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import aio_pika

from contracts.topology import DEAD_LETTER_CODE_HEADER, DEAD_LETTER_QUEUE, DEAD_LETTER_REASON_HEADER
from tests.fault_support import Driver, connect, fault_database, fault_vhost, report
from tests.harness import DaemonProcess

__all__ = ["fault_database", "fault_vhost"]


async def test_unexpected_database_error_is_internal_dead_lettered_and_survived(
    fault_vhost: str, fault_database: str, tmp_path: Path
) -> None:
    daemon = DaemonProcess(fault_vhost, fault_database, tmp_path)
    daemon.start()
    driver = await Driver(fault_vhost).start()
    try:
        await daemon.wait_ready()
        model = f"internal-{uuid.uuid4().hex[:8]}"
        assert (await driver.call({"type": "create_model", "name": model}))["ok"]
        conn = await connect(fault_database)
        await conn.execute("ALTER TABLE charm RENAME TO charm_gone")
        deploy = {"type": "deploy", "model": model, "application": "app", "charm": {"peers": {"p": "x"}}}
        command_id = str(uuid.uuid4())
        reply = await driver.call(deploy, command_id)
        error = reply["error"]
        assert reply["ok"] is False and error["code"] == "Internal", reply
        reference = error["details"]["error_id"]
        assert reference in error["message"]
        assert "Traceback" not in error["message"] and "charm_gone" not in str(reply)
        assert "File " not in str(reply) and "asyncpg" not in str(reply)
        # The daemon goes on: a command that does not need the table works meanwhile.
        assert (await driver.call({"type": "create_model", "name": f"{model}-2"}))["ok"]
        await conn.execute("ALTER TABLE charm_gone RENAME TO charm")
        await conn.close()
        # Nothing was stored for the failed command: sent again once the cause is gone, it applies.
        again = await driver.send_raw(json.dumps(deploy).encode(), {"message_id": command_id})
        assert again is not None
        assert again["ok"], again
        await asyncio.sleep(0.5)
        connection = await aio_pika.connect(fault_vhost)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(DEAD_LETTER_QUEUE)
            letters = []
            while (m := await queue.get(fail=False, no_ack=True)) is not None:
                letters.append(m)
        mine = [m for m in letters if m.message_id == command_id]
        assert len(mine) == 1 and mine[0].headers[DEAD_LETTER_CODE_HEADER] == "Internal"
        assert reference in mine[0].headers[DEAD_LETTER_REASON_HEADER]
        logged = [x for x in daemon.log_lines() if x.get("error_id") == reference]
        assert logged and "charm" in str(logged[0]), "the log keeps the cause under the same reference"
        report(
            "internal",
            {
                "reply_code": error["code"],
                "reference_in_reply": True,
                "dead_lettered": len(mine),
                "logged_with_reference": len(logged),
                "recovered": again["ok"],
                "daemon_restarts": daemon.starts - 1,
            },
        )
        assert daemon.proc is not None and daemon.proc.poll() is None
    finally:
        await driver.close()
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()
