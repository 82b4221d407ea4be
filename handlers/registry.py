"""Which handler applies which command: each registers against its contract class."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from contracts.commands import COMMAND_TYPES, AnyCommand
from handlers.context import Context
from handlers.outcome import Outcome
from handlers.unit_in_relation import Wanted

Handler = Callable[[Context, Any], Awaitable[Outcome]]
H = TypeVar("H", bound=Callable[..., Awaitable[Outcome]])

HANDLERS: dict[type[AnyCommand], Handler] = {}
# What a handler reads first, for a batch to read ahead for several commands in one statement
# (handlers/read_ahead.py): from the command, what the handler then asks unit_in_relation.find.
READS_FIRST: dict[type[AnyCommand], Callable[[Any], Wanted]] = {}


def handles(
    command: type[AnyCommand], *, reads_first: Callable[[Any], Wanted] | None = None
) -> Callable[[H], H]:
    """Register the decorated ``(context, command)`` function as ``command``'s handler; with
    ``reads_first``, declare the unit in a relation that it looks up first."""

    def register(handler: H) -> H:
        if command in HANDLERS:
            raise RuntimeError(f"{command.__name__} already has a handler: {HANDLERS[command].__name__}")
        HANDLERS[command] = handler
        if reads_first is not None:
            READS_FIRST[command] = reads_first
        return handler

    return register


async def run(ctx: Context, cmd: AnyCommand) -> Outcome:
    """Apply ``cmd`` with its registered handler."""
    return await HANDLERS[type(cmd)](ctx, cmd)


def check_complete() -> None:
    """Every command has a handler (called once the handler modules are imported)."""
    missing = sorted(name for name, cls in COMMAND_TYPES.items() if cls not in HANDLERS)
    if missing:
        raise RuntimeError(f"commands without a handler: {', '.join(missing)}")
