"""The life of one command message: received -> applied -> replied -> acked.

Validation failures are answered (when the message has ``reply_to``), dead-lettered with the
reason and acked: never a requeue loop. Transient database failures are retried with backoff for
as long as the daemon runs; if it stops first, the message stays unacked and is redelivered.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from contracts import errors, topology, tracing
from contracts.errors import RelationdError
from daemon import amqp_decoding, database, logs, metrics
from daemon.applier import Applied, apply, error_reply
from daemon.batch import Item, apply_batch, batchable
from daemon.batcher import Batcher
from daemon.broker import Broker
from daemon.disposition import Disposition
from daemon.fairness import from_settings as fairness_from_settings
from daemon.parsing import Parsed, parse
from daemon.settings import Settings
from daemon.tracing import committed as trace_committed
from daemon.transient import backoff, is_transient
from handlers import Actor
from handlers.context import Limits

log = logs.get("relationd.command")


class Stage(StrEnum):
    received = "received"
    applied = "applied"
    replied = "replied"
    acked = "acked"


class ShuttingDown(Exception):
    """The daemon stopped before a transient failure cleared; the message will be redelivered."""


class CommandConsumer:
    """Runs each delivered command as a task; tracks them so shutdown can wait for them."""

    def __init__(
        self, settings: Settings, pool: Any, broker: Broker, on_events: Callable[[], None] | None = None
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.broker = broker
        self.on_events = on_events  # told after each commit that wrote change events
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()
        self.fairness = fairness_from_settings(settings)
        self.limits = Limits(max_bag_bytes=settings.max_bag_bytes)
        self.batcher: Batcher | None = None
        if settings.batch_max > 1:
            workers = settings.batch_workers or max(1, settings.pool_size // 2)
            self.batcher = Batcher(self._apply_batch, batch_max=settings.batch_max, workers=workers)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(
            tracing.within("relationd process", self.handle(message), "CONSUMER", message.headers),
            name=f"command {(message.message_id or '')[:64]}",
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, within: float) -> bool:
        """Wait for the commands in flight; True when all finished in time."""
        if not self.tasks:
            return True
        _, pending = await asyncio.wait(set(self.tasks), timeout=within)
        return not pending

    async def handle(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        stage = Stage.received
        cmd_type = "?"
        outcome = Disposition.error
        model: str | None = None
        user = message.user_id
        code: str | None = None
        metrics.IN_FLIGHT.inc()
        if message.redelivered:
            metrics.REDELIVERIES.inc()
        sender = user or ""
        admitted = False
        try:
            undecodable = amqp_decoding.fault_of(message.headers)
            if undecodable is not None:
                outcome = Disposition.invalid
                invalid = errors.InvalidCommand(undecodable.message, field=undecodable.field)
                await self._refuse(message, invalid)
                stage = Stage.acked
                return
            try:
                self.fairness.admit(sender, len(message.body))
                admitted = True
            except errors.RateLimited as err:
                outcome = Disposition.rate_limited
                code = str(err.code)
                await self._turn_away(message, err)
                stage = Stage.acked
                return
            try:
                parsed = parse(
                    message.body,
                    message_id=message.message_id,
                    content_type=message.content_type,
                    max_body_bytes=self.settings.max_body_bytes,
                )
            except RelationdError as err:
                outcome = Disposition.invalid
                await self._refuse(message, err)
                stage = Stage.acked
                return
            cmd_type = parsed.command.type
            model = getattr(parsed.command, "model", None)
            tracing.annotate(command_id=parsed.command_id, type=cmd_type, model=model)
            try:
                actor = self._actor(message)
            except RelationdError as err:
                outcome = Disposition.unauthorized
                await self._refuse(message, err, cmd_type)
                stage = Stage.acked
                return
            try:
                async with self.fairness.turn(sender):
                    applied = await self._apply(parsed, actor)
                if applied.events:
                    trace_committed(parsed.command_id)
                if applied.events and self.on_events is not None:
                    self.on_events()
                outcome = applied.disposition
                code = (applied.reply.get("error") or {}).get("code")
            except ShuttingDown:
                outcome = Disposition.abandoned
                return
            except Exception:
                error_id = str(uuid.uuid4())
                log.exception("command failed", command_id=parsed.command_id, error_id=error_id)
                internal = errors.Internal(
                    f"internal error applying {cmd_type}; reference {error_id}", error_id=error_id
                )
                outcome = Disposition.internal
                await self._refuse(message, internal, cmd_type)
                stage = Stage.acked
                return
            stage = Stage.applied
            await self._reply(message, applied.reply)
            stage = Stage.replied
            await message.ack()
            stage = Stage.acked
        except Exception as exc:
            # Reply or ack failed: the broker session is gone. The command is committed and will
            # be redelivered and answered from the store.
            log.warning(
                "command not acknowledged; it will be redelivered",
                command_id=message.message_id,
                stage=stage.value,
                error=str(exc) or type(exc).__name__,
            )
        finally:
            if admitted:
                self.fairness.leave(sender, len(message.body))
            metrics.IN_FLIGHT.dec()
            tracing.annotate(outcome=outcome.value)
            elapsed = time.perf_counter() - started
            metrics.COMMANDS.labels(cmd_type, outcome.value).inc()
            metrics.COMMAND_SECONDS.labels(cmd_type).observe(elapsed)
            log.info(
                "command",
                type=cmd_type,
                model=model,
                command_id=message.message_id,
                user=user,
                outcome=outcome.value,
                code=code,
                stage=stage.value,
                ms=round(elapsed * 1000, 2),
            )

    def _actor(self, message: AbstractIncomingMessage) -> Actor:
        """The user RabbitMQ vouched for (user_id); Unauthorized without one, unless allowed."""
        user = message.user_id
        if user:
            return Actor(user, superuser=user in self.settings.superusers)
        if self.settings.allow_anonymous:
            return Actor.system()
        raise errors.Unauthorized(
            "command has no user_id: publish with the user_id property set to your broker user",
            field="user_id",
        )

    async def _apply(self, parsed: Parsed, actor: Actor) -> Applied:
        if self.batcher is not None and batchable(parsed.command):
            item = Item(parsed.command_id, parsed.digest, parsed.command, actor)
            return await self.batcher.submit(item)
        return await self._apply_alone(parsed.command_id, parsed.digest, parsed.command, actor)

    async def _apply_batch(self, items: list[Item]) -> list[Applied | Exception | None]:
        """One batch in one transaction. Should it fail, each command is applied alone (and
        retried alone while its failures are transient), so that a command at fault, or one that
        keeps timing out, holds up no other. A batch of one is applied alone from the start: the
        one-command path opens with a single statement."""
        if len(items) == 1:
            return [await self._alone_or_error(items[0])]
        try:
            with tracing.span("relationd transaction"):
                async with database.session(self.pool) as conn:
                    results = await apply_batch(conn, items, self.limits)
                    if any(r is not None and r.disposition is Disposition.duplicate for r in results):
                        await database.fence(conn)  # see _apply_alone
                    return list(results)
        except Exception as exc:
            if is_transient(exc):
                metrics.RETRIES.labels("database").inc()
            log.warning(
                "batch failed; applying its commands one by one",
                commands=len(items),
                transient=is_transient(exc),
                error=str(exc) or type(exc).__name__,
            )
        return await self._each_alone(items)

    async def _each_alone(self, items: list[Item]) -> list[Applied | Exception | None]:
        """Apply each command in a transaction of its own: one model's in order, models side by side."""
        results: list[Applied | Exception | None] = [None] * len(items)
        by_model: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            by_model.setdefault(item.key, []).append(i)

        async def in_order(indexes: list[int]) -> None:
            for i in indexes:
                results[i] = await self._alone_or_error(items[i])

        await asyncio.gather(*(in_order(indexes) for indexes in by_model.values()))
        return results

    async def _alone_or_error(self, item: Item) -> Applied | Exception:
        try:
            return await self._apply_alone(item.command_id, item.digest, item.cmd, item.actor)
        except Exception as exc:
            return exc

    async def _apply_alone(self, command_id: str, digest: str, command: Any, actor: Actor) -> Applied:
        delays = backoff(0.05, 5.0)
        while True:
            try:
                with tracing.span("relationd transaction"):
                    async with database.session(self.pool) as conn:
                        applied = await apply(conn, command_id, digest, command, actor, self.limits)
                        if applied.disposition is Disposition.duplicate:
                            # Its first COMMIT may have timed out after all: answer once it is on the
                            # standby, never from a primary that a failover could still lose it with.
                            await database.fence(conn)
                        return applied
            except Exception as exc:
                if not is_transient(exc):
                    raise
                metrics.RETRIES.labels("database").inc()
                log.warning(
                    "transient database failure; retrying",
                    command_id=command_id,
                    error=str(exc) or type(exc).__name__,
                )
            if self.stopping.is_set():
                raise ShuttingDown
            try:
                await asyncio.wait_for(self.stopping.wait(), next(delays))
            except TimeoutError:
                pass

    async def _reply(self, message: AbstractIncomingMessage, reply: dict[str, Any]) -> None:
        if not message.reply_to:
            return
        with tracing.span("relationd reply", kind="PRODUCER"):
            await self.broker.publish(
                "",
                message.reply_to,
                json.dumps(reply).encode(),
                message_id=str(uuid.uuid4()),
                correlation_id=message.correlation_id,
                headers=tracing.inject(),
            )

    async def _turn_away(self, message: AbstractIncomingMessage, err: RelationdError) -> None:
        """Refuse a delivery over its sender's share: answer it, store nothing, ack.

        Not dead-lettered when it is answered (the sender sends it again); without ``reply_to``
        nobody would learn of it, so then it is dead-lettered with the reason."""
        if not message.reply_to:
            await self._refuse(message, err)
            return
        await self._reply(message, error_reply(message.message_id, None, err))
        await message.ack()

    async def _refuse(
        self, message: AbstractIncomingMessage, err: RelationdError, cmd_type: str | None = None
    ) -> None:
        """Answer with the error when asked, dead-letter the message with its reason, ack."""
        await self._reply(message, error_reply(message.message_id, cmd_type, err))
        headers = _copyable(dict(message.headers or {}))
        headers[topology.DEAD_LETTER_REASON_HEADER] = err.message[:1000]
        headers[topology.DEAD_LETTER_CODE_HEADER] = str(err.code)
        if message.content_type:
            headers["x-original-content-type"] = message.content_type[:200]
        await self.broker.publish(
            topology.DEAD_LETTER_EXCHANGE,
            "",
            message.body,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            headers=headers,
        )
        metrics.DEAD_LETTERED.labels(str(err.code)).inc()
        log.warning(
            "command refused and dead-lettered",
            command_id=message.message_id,
            user=message.user_id,
            code=str(err.code),
            reason=err.message,
        )
        await message.ack()


def _copyable(value: Any) -> Any:
    """A received header value in a form that can be published again.

    aio-pika decodes a header string that is not UTF-8 as bytes, which it cannot encode, and
    sends every float as a float32, which a double from another client may not fit; a decimal
    (unsigned mantissa on the wire, signed in pamqp's encoder) and a byte array do not encode
    again either: each way the dead-letter copy failed and the message stayed unacked, holding a
    prefetch slot until the session ended. Such values are copied as text.
    """
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {
            (k.decode("utf-8", "replace") if isinstance(k, bytes) else k): _copyable(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_copyable(v) for v in value]
    if value is None or isinstance(value, str | int | datetime.datetime):
        return value
    return str(value)  # a decimal whose scale or mantissa aio-pika cannot encode again, ...
