"""From an AMQP message to a validated command, or to the typed error that refuses it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts import errors
from contracts.commands import COMMAND_TYPES
from contracts.topology import CONTENT_TYPE
from daemon.applier import body_digest
from daemon.bounds import shorten

_MAX_COMMAND_ID = 200
# A refusal names the field at fault by pydantic's path, which holds the offending map keys: each
# part and the message are cut to these lengths, so a 1 MB key makes no 1 MB reply or log line.
_MAX_PATH_PART = 64
_MAX_PATH = 256
_MAX_REASON = 512


@dataclass(frozen=True, slots=True)
class Parsed:
    command_id: str
    digest: str
    command: Any


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted field path of bounded length ("body" for none)."""
    path = ".".join(shorten(str(p), _MAX_PATH_PART) for p in loc)
    return shorten(path, _MAX_PATH) or "body"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse(body: bytes, *, message_id: str | None, content_type: str | None, max_body_bytes: int) -> Parsed:
    """Validate one message. Raises PayloadTooLarge, InvalidCommand, UnknownCommand."""
    if len(body) > max_body_bytes:
        raise errors.PayloadTooLarge(
            f"command body is {len(body)} bytes; the limit is {max_body_bytes}",
            size=len(body),
            limit=max_body_bytes,
        )
    if not message_id or len(message_id) > _MAX_COMMAND_ID or "\x00" in message_id:
        raise errors.InvalidCommand(
            f"message_id must be set to a unique command id of 1 to {_MAX_COMMAND_ID} characters, "
            "without NUL",
            field="message_id",
        )
    if content_type not in (None, "", CONTENT_TYPE):
        raise errors.InvalidCommand(
            f"content_type must be {CONTENT_TYPE!r}, not {content_type!r}", field="content_type"
        )
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise errors.InvalidCommand(f"command body is not valid JSON: {reason}", field="body") from None
    if not isinstance(data, dict):
        raise errors.InvalidCommand("command body must be a JSON object", field="body")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise errors.InvalidCommand("command has no 'type' string", field="type")
    cls = COMMAND_TYPES.get(kind)
    if cls is None:
        raise errors.UnknownCommand(f"unknown command type {kind[:100]!r}", type=kind[:100])
    try:
        command = cls.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = field_path(first["loc"])
        raise errors.InvalidCommand(
            f"{kind}: field {field!r}: {shorten(first['msg'], _MAX_REASON)}"
            + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
            field=field,
        ) from None
    return Parsed(message_id, body_digest(body), command)
