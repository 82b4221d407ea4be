"""The relation domain: one async handler per command, over a connection in a transaction.

Handlers know nothing of AMQP. Each takes ``(connection, command)``, runs inside a transaction the
caller owns, and returns an :class:`~handlers.outcome.Outcome`: the result and the changes it made.
"""

from handlers.access import Actor, authorize
from handlers.outcome import Change, Outcome
from handlers.registry import ACTOR_HANDLERS, HANDLERS, Handler

__all__ = ["ACTOR_HANDLERS", "HANDLERS", "Actor", "Change", "Handler", "Outcome", "authorize"]
