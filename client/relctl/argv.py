"""Global options may follow the command (``relctl models --json``): click takes a group's options
only before the subcommand, so they are moved there before click parses."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import typer
from typer.core import TyperOption

from client.relctl.cli import app


@cache
def global_options() -> dict[str, bool]:
    """Each spelling of relctl's global options, and whether it takes a value, read from the
    global callback itself so that the two cannot disagree."""
    group = typer.main.get_command(app)
    return {
        name: not param.is_flag
        for param in group.params
        if isinstance(param, TyperOption)
        for name in (*param.opts, *param.secondary_opts)
    }


def hoist_globals(args: Sequence[str]) -> list[str]:
    """Move global options written after the command to before it (``relctl models --json``)."""
    known = global_options()
    front: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-h", "--help"):
        name = args[i].split("=", 1)[0]
        takes = known.get(name)
        step = 2 if takes and "=" not in args[i] else 1
        front += args[i : i + step]
        i += step
    if i >= len(args):
        return list(args)
    command, rest = args[i], args[i + 1 :]
    back: list[str] = []
    j = 0
    while j < len(rest):
        token = rest[j]
        if token == "--":
            back += rest[j:]
            break
        name = token.split("=", 1)[0]
        if name in known:
            step = 2 if known[name] and "=" not in token else 1
            front += rest[j : j + step]
            j += step
            continue
        back.append(token)
        j += 1
    return [*front, command, *back]
