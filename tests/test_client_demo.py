"""The scripted demo (`make run` runs it after the daemon starts) runs to its end."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from client.demo import demo_charm
from contracts.charm import CharmMetadata

ROOT = Path(__file__).resolve().parent.parent


def test_demo_charms_are_real_metadata() -> None:
    for name in ("wordpress", "mysql", "telegraf"):
        meta = demo_charm(name)
        assert meta["name"] == name
        CharmMetadata.model_validate(meta)
    assert demo_charm("telegraf")["subordinate"] is True
    assert "bases" in yaml.safe_load((ROOT / "client" / "demo_charms" / "telegraf.yaml").read_text())


async def test_demo_runs_against_the_daemon(daemon: Any, amqp_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client.demo",
        cwd=ROOT,
        env={**os.environ, "RELATIOND_AMQP_URL": amqp_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert "wordpress/0 entered relation 3, creating telegraf/0" in text
    assert "wordpress/0 reads mysql/0: {'host': '10.0.0.5', 'port': '3306'}" in text
    assert "relation_status              changed" in text
