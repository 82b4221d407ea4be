"""The relationd client: an asyncio library speaking the public protocol, and `relctl`.

Clients never touch the database: everything goes through RabbitMQ.

- :class:`RelationClient` (``client.rpc``): connect with an AMQP URL; one typed method per
  command (``client.api``), each with a timeout and a command id for safe retries.
- :func:`watch` (``client.watch``): an async iterator over a model's change events that replays
  what was missed and follows live events, across broker restarts.
- ``relctl`` (``client.relctl``): the command line.
"""

from client.rpc import BrokerUnreachable, DaemonUnreachable, RelationClient
from client.watch import Watch, watch

__all__ = ["BrokerUnreachable", "DaemonUnreachable", "RelationClient", "Watch", "watch"]
