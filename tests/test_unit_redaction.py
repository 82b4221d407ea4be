"""Secrets masked wherever they sit in a URL, and every logged value bounded (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.logs import MAX_FIELD, MAX_TRACEBACK, bound_fields
from daemon.redaction import redact, redact_urls

CASES = [
    ("postgresql://postgres@127.0.0.1:5432/relationd", "postgresql://postgres@127.0.0.1:5432/relationd"),
    ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u@h/db?password=pw&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    (
        "postgresql://u:p%40w@h1:5432,h2:5432/db?target_session_attrs=read-write&sslpassword=k&passfile=/p",
        "postgresql://u:***@h1:5432,h2:5432/db?target_session_attrs=read-write&sslpassword=***&passfile=***",
    ),
    ("postgresql:///db?host=/run/pg&password=pw", "postgresql:///db?host=/run/pg&password=***"),
    ("amqp://g:pw@h1/v,amqps://g:pw2@h2/v?password=q&heartbeat=10",
     "amqp://g:***@h1/v,amqps://g:***@h2/v?password=***&heartbeat=10"),
    ("amqp://g:pw@h1/v, amqp://g:pw2@h2/v", "amqp://g:***@h1/v, amqp://g:***@h2/v"),
    ("amqp://g:pa/ss@h/v", "amqp://g:***@h/v"),  # an unescaped '/' in the password: masked whole
    ("amqp://g:p@ss@h/v", "amqp://g:***@h/v"),  # an unescaped '@'
    ("amqp://h/?Pass%77ord=x&token=y&x=1", "amqp://h/?Pass%77ord=***&token=***&x=1"),
    ("amqp://h/v#password=x", "amqp://h/v#password=***"),
    ("host=h1,h2 user=u password='se cr\\'et' dbname=x", "host=h1,h2 user=u password=*** dbname=x"),
    ("host=h password = pw", "host=h password = ***"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "masked"), CASES)
def test_every_secret_of_a_url_is_masked_and_nothing_else(url: str, masked: str) -> None:
    assert redact(url) == masked


def test_urls_in_prose_are_masked_and_the_prose_kept() -> None:
    text = "cannot connect to amqp://g:pw@h/?password=x, then (postgresql://u:p@h/db)."
    assert (
        redact_urls(text) == "cannot connect to amqp://g:***@h/?password=***, then (postgresql://u:***@h/db)."
    )
    assert redact_urls("no url here: a=b") == "no url here: a=b"


def test_every_logged_value_is_bounded() -> None:
    event: dict[str, Any] = {
        "event": "e" * 10_000,
        "reason": "k" * 1_000_000,
        "path": ("settings", "k" * 1_000_000),
        "huge_int": 10**1000,
        "count": 7,
        "ratio": 0.5,
        "flag": True,
        "none": None,
        "exception": "Traceback\n" + "x" * 100_000,
        "url": "amqp://u:secret@h/",
    }
    out = bound_fields(None, "info", event)
    assert all(len(repr(v)) <= MAX_FIELD + 2 for k, v in out.items() if k != "exception"), {
        k: len(repr(v)) for k, v in out.items()
    }
    assert len(out["exception"]) <= MAX_TRACEBACK and out["exception"].startswith("Traceback")
    assert out["reason"].endswith("more]") and out["huge_int"] == "<an integer of 3322 bits>"
    assert (out["count"], out["ratio"], out["flag"], out["none"]) == (7, 0.5, True, None)
    assert out["url"] == "amqp://u:***@h/"
