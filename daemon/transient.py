"""Which failures are worth retrying: the database or broker going away, deadlocks, conflicts."""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Iterator

import aiormq.exceptions
import asyncpg

# SQLSTATE classes and codes that a retry can cure. 25006 (read-only transaction) is a primary
# demoted under a session that the retry replaces with one on the new primary.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57P")
_TRANSIENT_SQLSTATES = {"55P03", "55006", "25006"}


def is_transient(exc: BaseException) -> bool:
    """True for connection loss, deadlock, serialization failure, shutdown, resource limits, a
    statement timed out (a COMMIT among them: the retry keeps the command id, so one that was
    applied after all is answered from the store), no primary found during a failover."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state.startswith(_TRANSIENT_SQLSTATE_PREFIXES) or state in _TRANSIENT_SQLSTATES
    if isinstance(exc, asyncpg.exceptions.InternalClientError) and not isinstance(
        exc, asyncpg.exceptions.TargetServerAttributeNotMatched
    ):
        # A session left unusable by an error outside a query (daemon.database.broken_protocol).
        return str(exc).startswith("cannot switch to state")
    return isinstance(
        exc,
        (
            asyncpg.InterfaceError,
            asyncpg.exceptions.TargetServerAttributeNotMatched,
            asyncpg.exceptions.ConnectionDoesNotExistError,
            ConnectionError,
            OSError,
            asyncio.TimeoutError,
            aiormq.exceptions.AMQPConnectionError,
            aiormq.exceptions.ChannelInvalidStateError,
        ),
    )


def is_tls_failure(exc: BaseException) -> bool:
    """True when a TLS handshake or certificate check caused it (also when wrapped, as aiormq
    does): worth a log line naming the TLS settings rather than "unreachable"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def backoff(initial: float = 0.05, cap: float = 5.0) -> Iterator[float]:
    """Exponential delays with full jitter: initial, 2x, ... up to cap, for ever."""
    delay = initial
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(cap, delay * 2)
