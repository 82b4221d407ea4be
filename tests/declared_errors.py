"""Record the error codes handlers raise that their command does not declare (see conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from contracts.commands import AnyCommand
from contracts.errors import RelationdError
from handlers import HANDLERS, Context, Handler


def _recorded(cls: type[AnyCommand], handler: Handler, undeclared: dict[str, set[str]]) -> Handler:
    declared = cls.raises  # as declared when recording began

    async def recorded(ctx: Context, cmd: Any) -> Any:
        try:
            return await handler(ctx, cmd)
        except RelationdError as err:
            if err.code not in declared:
                undeclared.setdefault(cmd.type, set()).add(str(err.code))
            raise

    return recorded


@contextmanager
def recording() -> Iterator[dict[str, set[str]]]:
    """While open, every handler is wrapped; yields {command type: codes raised but not declared}."""
    undeclared: dict[str, set[str]] = {}
    originals = dict(HANDLERS)
    for cls, handler in originals.items():
        HANDLERS[cls] = _recorded(cls, handler, undeclared)
    try:
        yield undeclared
    finally:
        HANDLERS.update(originals)
