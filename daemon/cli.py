"""`relationd`: run the daemon, apply the schema, print the protocol."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import asyncpg
import typer
from pydantic import ValidationError

from daemon import logs
from daemon.database import connect_primary, dsn
from daemon.redaction import redact
from daemon.settings import Settings

app = typer.Typer(
    help="relationd: Juju's relation domain as a service (RabbitMQ in, PostgreSQL state, events out).",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for err in exc.errors():
            name = "RELATIOND_" + "_".join(str(p) for p in err["loc"]).upper()
            typer.echo(f"relationd: invalid setting {name}: {err['msg']}", err=True)
        raise typer.Exit(2) from None


def _loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@app.command()
def run() -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT.

    Example: RELATIOND_DATABASE_URL=postgresql://relationd@db/relationd relationd run
    """
    from daemon.service import SchemaNotReady, Service

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    _loop_policy()
    from daemon import tracing

    tracing.configure_from_env()
    try:
        code = asyncio.run(Service(settings).run())
    except SchemaNotReady as exc:
        logs.get("relationd").error("schema not ready", error=str(exc))
        raise typer.Exit(3) from None
    raise typer.Exit(code)


@app.command()
def migrate(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create or upgrade the schema of RELATIOND_DATABASE_URL (safe on every start and upgrade).

    An empty database gets schema.sql; one at an earlier version the numbered migrations after it.

    Example: relationd migrate --json
    """
    from daemon.migrate import apply_schema, schema_path

    settings = _settings()

    async def go() -> int:
        # The primary of a multi-host URL, found as the daemon finds it (past a frozen host).
        conn = await connect_primary(dsn(settings), connect_timeout=settings.database_connect_timeout_seconds)
        try:
            return await apply_schema(conn)
        finally:
            await conn.close()

    try:
        version = asyncio.run(go())
    except (OSError, asyncpg.PostgresError) as exc:
        url = redact(settings.database_url.get_secret_value())
        typer.echo(f"relationd migrate: cannot apply the schema to {url}: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"schema_version": version, "schema": str(schema_path())}))
    else:
        typer.echo(f"schema at version {version} ({schema_path()})")


@app.command()
def config() -> None:
    """Print the effective settings as JSON, secrets masked."""
    settings = _settings()
    data = json.loads(settings.model_dump_json())
    data["amqp_url"] = redact(settings.amqp_url.get_secret_value())
    data["database_url"] = redact(settings.database_url.get_secret_value())
    typer.echo(json.dumps(data, indent=2))


@app.command()
def asyncapi(
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the AsyncAPI 3.0 document of the whole protocol (JSON), generated from contracts/.

    Example: relationd asyncapi -o docs/asyncapi.json
    """
    from contracts.asyncapi import render

    text = render()
    if output is None:
        typer.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)


def main() -> None:
    app(prog_name="relationd")


if __name__ == "__main__":
    main()
