"""parse(): from message bytes and properties to a command or a typed refusal (no I/O)."""

from __future__ import annotations

import json

import pytest

from contracts import errors
from daemon.parsing import parse


def _parse(
    body: bytes, message_id: str | None = "c-1", content_type: str | None = "application/json"
) -> object:
    return parse(body, message_id=message_id, content_type=content_type, max_body_bytes=4096)


def test_valid_command_keeps_its_id_and_digest() -> None:
    parsed = _parse(b'{"type": "list_models"}')
    assert parsed.command_id == "c-1"  # type: ignore[attr-defined]
    assert len(parsed.digest) == 64  # type: ignore[attr-defined]


# aiormq gives every message a random message_id when none is set, so a message without one
# can only come from other clients; the rule is checked here.
@pytest.mark.parametrize("message_id", [None, "", "x" * 201])
def test_missing_or_oversize_message_id_is_refused(message_id: str | None) -> None:
    with pytest.raises(errors.InvalidCommand) as caught:
        _parse(b'{"type": "list_models"}', message_id=message_id)
    assert caught.value.details["field"] == "message_id"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"not json", errors.InvalidCommand, "body"),
        (b"\xff\xfe\xfd", errors.InvalidCommand, "body"),
        (b'{"type": "list_models", "x": NaN}', errors.InvalidCommand, "body"),
        (b"[" * 2000 + b"]" * 2000, errors.InvalidCommand, "body"),
        (b'"a string"', errors.InvalidCommand, "body"),
        (b'{"name": "m"}', errors.InvalidCommand, "type"),
        (b'{"type": 5}', errors.InvalidCommand, "type"),
        (b'{"type": "drop_tables"}', errors.UnknownCommand, None),
        (b'{"type": "create_model", "name": "m", "extra": 1}', errors.InvalidCommand, "extra"),
        (
            b'{"type": "add_units", "model": "m", "application": "a", "count": "1"}',
            errors.InvalidCommand,
            "count",
        ),
        (
            b'{"type": "create_model", "name": "Robert\'); DROP TABLE model;--"}',
            errors.InvalidCommand,
            "name",
        ),
    ],
)
def test_bad_bodies_get_typed_errors_naming_the_field(body: bytes, code: type, field: str | None) -> None:
    with pytest.raises(code) as caught:
        _parse(body)
    if field is not None:
        assert caught.value.details["field"] == field  # type: ignore[attr-defined]


def test_body_over_the_limit_is_payload_too_large() -> None:
    body = json.dumps({"type": "list_models", "pad": "x" * 5000}).encode()
    with pytest.raises(errors.PayloadTooLarge) as caught:
        _parse(body)
    assert caught.value.details == {"size": len(body), "limit": 4096}


def test_wrong_content_type_is_refused() -> None:
    with pytest.raises(errors.InvalidCommand) as caught:
        _parse(b'{"type": "list_models"}', content_type="text/plain")
    assert caught.value.details["field"] == "content_type"
