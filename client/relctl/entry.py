"""The relctl console script: quiet libraries, global options hoisted, click's usage errors shown
(as JSON with --json) with exit code 2."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

import typer

from client.relctl.argv import hoist_globals
from client.relctl.cli import EXIT_OK, EXIT_USAGE, app


def _quiet_libraries() -> None:
    """Only relctl's own messages on stderr: the broker library's logging stays silent, and the
    watcher's reconnect warnings are shown as relctl lines."""
    logging.getLogger().addHandler(logging.NullHandler())
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("relctl: %(message)s"))
    client_log = logging.getLogger("relationd.client")
    client_log.addHandler(handler)
    client_log.setLevel(logging.WARNING)
    client_log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """The console script (``argv`` None: the process's arguments), or one call in-process."""
    if argv is None:
        _quiet_libraries()  # the process's own logging; an in-process caller keeps its own
    args = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    try:
        code = command.main(args, prog_name="relctl", standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors: bad option, missing argument, ...
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if "--json" in args:
            print(json.dumps({"error": {"code": "UsageError", "message": message}}), flush=True)
        else:
            from typer import rich_utils

            rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
        code = EXIT_USAGE
    except (typer.Abort, KeyboardInterrupt):
        code = 130
    return code if isinstance(code, int) else EXIT_OK
