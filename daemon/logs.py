"""Structured logging: one JSON object per line (or readable lines on a terminal)."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from daemon.bounds import shorten
from daemon.redaction import redact_urls

# The longest a logged value may be, in characters: a refusal's reason or field path carries what
# the sender chose (a 1 MB map key made a 1 MB line). A traceback gets more room.
MAX_FIELD = 2048
MAX_TRACEBACK = 32768
_SCALARS = (bool, float, type(None))
_MAX_INT_BITS = 64


def bound_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every value's text (a string, or the repr of anything else but a
    number) with the secrets of any URL in it masked and cut to MAX_FIELD characters (a
    traceback to MAX_TRACEBACK); an integer too large to print in a line is named by its size."""
    for key, value in event.items():
        if isinstance(value, _SCALARS):
            continue
        if isinstance(value, int):
            if value.bit_length() > _MAX_INT_BITS:
                event[key] = f"<an integer of {value.bit_length()} bits>"
            continue
        limit = MAX_TRACEBACK if key == "exception" else MAX_FIELD
        if isinstance(value, str):
            event[key] = shorten(redact_urls(value), limit)
        elif len(text := repr(value)) > limit or "://" in text:
            event[key] = shorten(redact_urls(text), limit)
    return event


class BoundedFormatter(logging.Formatter):
    """A stdlib log line (aio-pika, asyncpg): URL secrets masked, cut to MAX_TRACEBACK characters."""

    def format(self, record: logging.LogRecord) -> str:
        return shorten(redact_urls(super().format(record)), MAX_TRACEBACK)


def configure(level: str = "info", fmt: str = "json") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            bound_fields,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Library loggers (aio-pika, asyncpg) at warning and above, through the same stream.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(BoundedFormatter("%(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


def get(name: str) -> Any:
    return structlog.get_logger(name)
