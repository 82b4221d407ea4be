"""relctl's model and access commands: add-model, models, remove-model, grant, revoke, access."""

from __future__ import annotations

from typing import Annotated

import typer

from client import tables
from client.api import RelationCommands
from client.relctl import cli


@cli.app.command("add-model", epilog=cli.declared(RelationCommands.create_model))
def add_model(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The new model's name.")]) -> None:
    """Create a model; you become its admin.

    Example: relctl add-model prod
    """
    result = cli.call(ctx, lambda c: c.create_model(name, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"Model {r.name} created (uuid {r.uuid})"))


@cli.app.command("models", epilog=cli.declared(RelationCommands.list_models))
def models(
    ctx: typer.Context,
) -> None:
    """List the models you can see.

    Example: relctl models --json
    """
    cli.show(ctx, cli.call(ctx, lambda c: c.list_models()), tables.models)


@cli.app.command("remove-model", epilog=cli.declared(RelationCommands.remove_model))
def remove_model(
    ctx: typer.Context,
) -> None:
    """Remove the model (-m) and all it holds (admin).

    Example: relctl -m scratch remove-model
    """
    model = cli.model(ctx)
    result = cli.call(ctx, lambda c: c.remove_model(model, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"Model {r.name} removed"))


@cli.app.command("grant", epilog=cli.declared(RelationCommands.grant))
def grant(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="A broker user name.")],
    level: Annotated[str, typer.Argument(help="read, write or admin.")],
) -> None:
    """Give a broker user access to the model (admin).

    Example: relctl -m prod grant bob write
    """
    model = cli.model(ctx)
    result = cli.call(ctx, lambda c: c.grant(model, user, level, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"{r.user} has {r.level} access to {r.model}"))


@cli.app.command("revoke", epilog=cli.declared(RelationCommands.revoke))
def revoke(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="A broker user name.")],
    level: Annotated[str, typer.Argument(help="The level to take away (read, write, admin).")] = "read",
) -> None:
    """Take an access level away, as `juju revoke` does (revoking write leaves read).

    Example: relctl -m prod revoke bob write
    """
    model = cli.model(ctx)
    result = cli.call(ctx, lambda c: c.revoke(model, user, level, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"{r.user} has {r.level or 'no'} access to {r.model}"))


@cli.app.command("access", epilog=cli.declared(RelationCommands.list_access))
def access(
    ctx: typer.Context,
) -> None:
    """Who has what on the model (-m), or on every model you administer.

    Example: relctl -m prod access
    """
    model = cli.options(ctx).model
    cli.show(ctx, cli.call(ctx, lambda c: c.list_access(model)), tables.access)
