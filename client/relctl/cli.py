"""relctl's typer app, its global options (kept in the click context) and how one command runs:
connect, call, print the result or the error with relctl's exit codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console

from client import tables
from client.api import InvalidArgument
from client.rpc import DEFAULT_AMQP_URL, DaemonUnreachable, RelationClient
from contracts.commands import AnyCommand, access_help, errors_help
from contracts.errors import RelationdError

EXIT_OK, EXIT_DOMAIN, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

app = typer.Typer(
    name="relctl",
    help=(
        "Drive relationd, Juju's relation domain as a service, over RabbitMQ.\n\n"
        "Global options go before or after the command. Exit codes: 0 ok, 1 refused by the "
        "daemon, 2 usage error, 3 daemon or broker unreachable in time.\n\n"
        "Example: relctl -m prod integrate wordpress mysql"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Options:
    """The global options, the context object every command finds."""

    amqp_url: str
    model: str | None
    json: bool
    timeout: float
    command_id: str | None


@app.callback()
def _global(
    ctx: typer.Context,
    amqp_url: Annotated[
        str,
        typer.Option(
            "--amqp-url",
            envvar="RELATIOND_AMQP_URL",
            show_envvar=True,
            help="The broker relationd listens on: one node, or a cluster's nodes comma-separated "
            "(the first that answers is used). Example: --amqp-url amqp://bob:pw@mq:5672/prod",
        ),
    ] = DEFAULT_AMQP_URL,
    model: Annotated[
        str | None,
        typer.Option(
            "-m",
            "--model",
            envvar="RELCTL_MODEL",
            show_envvar=True,
            help="The model (name or UUID) commands act on. Example: -m prod",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Machine output: one JSON document on stdout, errors too."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.1, help="Seconds to wait for the broker and the reply. Example: --timeout 5"
        ),
    ] = 30.0,
    command_id: Annotated[
        str | None,
        typer.Option(
            "--command-id",
            help="The command's id; send again with the same id to retry safely. "
            "Example: --command-id 6f1c...-uuid",
        ),
    ] = None,
) -> None:
    ctx.obj = Options(amqp_url, model, as_json, timeout, command_id)


def declared(*methods: Callable[..., Any]) -> str:
    """A command's help epilog from the declarations of the commands it sends (the client methods,
    marked with their command class as ``.command``): who may send each, the codes it may fail with."""
    lines = []
    for method in methods:
        command: type[AnyCommand] = method.command  # type: ignore[attr-defined]  # set by client.api.sends
        name = command.model_fields["type"].default
        lines.append(" ".join(filter(None, (f"Sends {name}.", access_help(command), errors_help(command)))))
    return "\n\n".join(lines)


def options(ctx: typer.Context) -> Options:
    """The global options, from the context of the command running now."""
    found = ctx.find_object(Options)
    assert found is not None, "the global options callback has not run"
    return found


def fail(
    ctx: typer.Context, code: str, message: str, exit_code: int, details: dict[str, Any] | None = None
) -> NoReturn:
    """Print an error (a JSON document with --json) and exit with ``exit_code``."""
    if options(ctx).json:
        error: dict[str, Any] = {"code": code, "message": message}
        if details:
            error["details"] = details
        print(json.dumps({"error": error}), flush=True)
    else:
        tables.console(stderr=True).print(f"relctl: {code}: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(exit_code)


def model(ctx: typer.Context) -> str:
    """The model (-m) the command acts on; a usage error when none is given."""
    name = options(ctx).model
    if not name:
        raise typer.BadParameter("no model given: pass -m/--model NAME or set RELCTL_MODEL", param_hint="-m")
    return name


def command_id(ctx: typer.Context) -> str | None:
    return options(ctx).command_id


async def _with_client(opts: Options, action: Callable[[RelationClient], Awaitable[Any]]) -> Any:
    client = await RelationClient.connect(opts.amqp_url, timeout=opts.timeout)
    try:
        return await action(client)
    finally:
        await client.close()


def call(ctx: typer.Context, action: Callable[[RelationClient], Awaitable[Any]]) -> Any:
    """Run one client action; print and exit on failure with relctl's exit codes."""
    opts = options(ctx)
    try:
        return asyncio.run(_with_client(opts, action))
    except InvalidArgument as exc:
        fail(ctx, exc.code.value, exc.message, EXIT_USAGE, exc.details)
    except DaemonUnreachable as exc:
        fail(ctx, "DaemonUnreachable", str(exc), EXIT_UNREACHABLE)
    except RelationdError as exc:
        fail(ctx, exc.code.value, exc.message, EXIT_DOMAIN, exc.details)


def show(ctx: typer.Context, result: Any, render: Callable[[Console, Any], None]) -> None:
    """Print a result: as JSON with --json, else as ``render`` draws it."""
    if options(ctx).json:
        print(json.dumps(to_jsonable_python(result)), flush=True)
    else:
        render(tables.console(), result)


def say(text: Callable[[Any], str]) -> Callable[[Console, Any], None]:
    """A renderer printing one line of text about the result."""

    def render(out: Console, result: Any) -> None:
        out.print(text(result), markup=False, soft_wrap=True)

    return render
