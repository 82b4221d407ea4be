"""Names and arguments of the AMQP objects relationd uses, as data.

The daemon declares from these, clients publish and bind with them, and the AsyncAPI document is
generated from them, so the three cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COMMAND_EXCHANGE = ""  # commands go through the default exchange, routed by queue name
COMMAND_QUEUE = "relationd.commands"
EVENTS_EXCHANGE = "relationd.events"
DEAD_LETTER_EXCHANGE = "relationd.dead-letter"
DEAD_LETTER_QUEUE = "relationd.dead-letter"
DEAD_LETTER_REASON_HEADER = "x-relationd-reason"
DEAD_LETTER_CODE_HEADER = "x-relationd-code"
CONTENT_TYPE = "application/json"

# Replicas of each quorum queue. RabbitMQ checks x-quorum-initial-group-size for equivalence on
# every redeclaration, so every declarer sends the same value whatever the cluster's size; the
# broker caps it at the number of nodes (a single node gets one replica).
QUORUM_GROUP_SIZE = 3
DEAD_LETTER_MAX_MESSAGES = 10000
DEAD_LETTER_MAX_BYTES = 64 * 1024 * 1024
DEAD_LETTER_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class QueueSpec:
    name: str
    durable: bool = True
    arguments: dict[str, Any] = field(default_factory=dict)


def command_queue(
    *, quorum: bool = True, delivery_limit: int = 20, group_size: int = QUORUM_GROUP_SIZE
) -> QueueSpec:
    """The durable command queue: quorum (replicated, with a delivery limit) where the broker
    supports it. Rejected or over-delivered messages go to the dead-letter exchange."""
    args: dict[str, Any] = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE}
    if quorum:
        args["x-queue-type"] = "quorum"
        args["x-quorum-initial-group-size"] = group_size
        args["x-delivery-limit"] = delivery_limit
    return QueueSpec(COMMAND_QUEUE, arguments=args)


def dead_letter_queue(
    *,
    quorum: bool = True,
    group_size: int = QUORUM_GROUP_SIZE,
    max_messages: int = DEAD_LETTER_MAX_MESSAGES,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
    ttl_seconds: int = DEAD_LETTER_TTL_SECONDS,
) -> QueueSpec:
    """Where refused commands end, bodies and all: replicated like the command queue (a queue on
    one node would stop every daemon's session while that node is down), bounded (the oldest
    letter is dropped first) and each letter kept at most ``ttl_seconds``."""
    args: dict[str, Any] = {
        "x-max-length": max_messages,
        "x-max-length-bytes": max_bytes,
        "x-overflow": "drop-head",
        "x-message-ttl": ttl_seconds * 1000,
    }
    if quorum:
        args = {"x-queue-type": "quorum", "x-quorum-initial-group-size": group_size, **args}
    return QueueSpec(DEAD_LETTER_QUEUE, arguments=args)
