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


@dataclass(frozen=True)
class QueueSpec:
    name: str
    durable: bool = True
    arguments: dict[str, Any] = field(default_factory=dict)


def command_queue(*, quorum: bool = True, delivery_limit: int = 20) -> QueueSpec:
    """The durable command queue: quorum (with a delivery limit) where the broker supports it.

    Rejected or over-delivered messages go to the dead-letter exchange.
    """
    args: dict[str, Any] = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE}
    if quorum:
        args["x-queue-type"] = "quorum"
        args["x-delivery-limit"] = delivery_limit
    return QueueSpec(COMMAND_QUEUE, arguments=args)


def dead_letter_queue() -> QueueSpec:
    return QueueSpec(DEAD_LETTER_QUEUE)
