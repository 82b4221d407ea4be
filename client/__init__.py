"""The relationd client: an asyncio library speaking the public protocol, and `relctl`.

Clients never touch the database: everything goes through RabbitMQ.
"""

from client.rpc import RelationClient

__all__ = ["RelationClient"]
