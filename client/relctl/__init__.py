"""relctl: drive relationd from a terminal, over RabbitMQ only (never the database).

Exit codes: 0 success, 1 a domain error (the daemon refused), 2 a usage error (bad arguments,
refused before anything is sent), 3 the daemon or the broker could not be reached in time.
With ``--json`` every command prints one JSON document on stdout, errors included
(``{"error": {"code", "message"}}``); ``watch --json`` prints one JSON line per event.

One module per command family registers its commands on :data:`app` (cli.py): models and
access, applications, relations, hook tools, streams.
"""

from __future__ import annotations

# The import order is the order of the commands in --help.
# isort: off
from client.relctl import models
from client.relctl import applications
from client.relctl import relations
from client.relctl import hook_tools
from client.relctl import streams

# isort: on
from client.relctl.argv import hoist_globals
from client.relctl.cli import EXIT_DOMAIN, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, app
from client.relctl.entry import main

__all__ = [
    "EXIT_DOMAIN",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "app",
    "applications",
    "hoist_globals",
    "hook_tools",
    "main",
    "models",
    "relations",
    "streams",
]
