"""The relation domain: one async handler per command, over a connection in a transaction.

Handlers know nothing of AMQP. Each registers against its command's contract class
(:func:`~handlers.registry.handles`), takes ``(context, command)``, runs inside a transaction the
caller owns, and returns an :class:`~handlers.outcome.Outcome`: the result and the changes it made.
The error codes a handler may raise are declared on its command (``contracts.commands.declare``),
not in its docstring; the test suite checks them.
"""

# Importing the handler modules registers their handlers.
from handlers import (  # noqa: F401
    access,
    applications,
    events,
    integrate,
    models,
    relations,
    scope,
    settings,
    snapshot,
    status,
)
from handlers.access import authorize
from handlers.context import Actor, Context
from handlers.outcome import Change, Outcome
from handlers.registry import HANDLERS, Handler, check_complete, run

check_complete()

__all__ = ["HANDLERS", "Actor", "Change", "Context", "Handler", "Outcome", "authorize", "run"]
