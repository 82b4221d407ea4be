"""relctl's application and unit commands: deploy, add-unit, set-leader, remove-unit,
remove-application, applications, endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from client import tables
from client.api import RelationCommands
from client.relctl import arguments, cli
from contracts.names import unit_application


@cli.app.command("deploy", epilog=cli.declared(RelationCommands.deploy))
def deploy(
    ctx: typer.Context,
    application: Annotated[str, typer.Argument(help="The application's name.")],
    metadata: Annotated[
        Path,
        typer.Option(
            "--metadata",
            exists=True,
            dir_okay=False,
            help="The charm's metadata.yaml or charmcraft.yaml (its provides/requires/peers and "
            "subordinate are used; other keys are ignored). Example: --metadata ./metadata.yaml",
        ),
    ],
    units: Annotated[int, typer.Option("--units", "-n", min=0, help="Units to add. Example: --units 2")] = 0,
) -> None:
    """Deploy an application from a charm's metadata.yaml / charmcraft.yaml.

    Example: relctl -m prod deploy wordpress --metadata wordpress/metadata.yaml --units 2
    """
    model, charm = cli.model(ctx), arguments.charm(metadata)
    result = cli.call(
        ctx, lambda c: c.deploy(model, application, charm, units, command_id=cli.command_id(ctx))
    )
    cli.show(ctx, result, tables.deployed)


@cli.app.command("add-unit", epilog=cli.declared(RelationCommands.add_units))
def add_unit(
    ctx: typer.Context,
    application: Annotated[str, typer.Argument(help="A principal application.")],
    count: Annotated[int, typer.Option("-n", "--num-units", min=1, help="How many. Example: -n 3")] = 1,
) -> None:
    """Add units to an application.

    Example: relctl -m prod add-unit wordpress -n 2
    """
    model = cli.model(ctx)
    result = cli.call(ctx, lambda c: c.add_units(model, application, count, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: "Added " + ", ".join(r.units)))


@cli.app.command("set-leader", epilog=cli.declared(RelationCommands.set_leader))
def set_leader(
    ctx: typer.Context, unit: Annotated[str, typer.Argument(help="The unit to lead, app/N.")]
) -> None:
    """Make a unit its application's leader.

    Example: relctl -m prod set-leader wordpress/0
    """
    model = cli.model(ctx)
    result = cli.call(ctx, lambda c: c.set_leader(model, unit, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"{r.leader} leads {unit_application(r.leader)}"))


@cli.app.command("remove-unit", epilog=cli.declared(RelationCommands.remove_unit))
def remove_unit(ctx: typer.Context, unit: Annotated[str, typer.Argument(help="app/N")]) -> None:
    """Remove a unit (dying until it has left every relation scope).

    Example: relctl -m prod remove-unit wordpress/1
    """
    model = cli.model(ctx)
    result = cli.call(ctx, lambda c: c.remove_unit(model, unit, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"{r.name} is {r.life}"))


@cli.app.command("remove-application", epilog=cli.declared(RelationCommands.remove_application))
def remove_application(
    ctx: typer.Context, application: Annotated[str, typer.Argument(help="The application.")]
) -> None:
    """Remove an application; its units and relations become dying.

    Example: relctl -m prod remove-application wordpress
    """
    model = cli.model(ctx)
    result = cli.call(ctx, lambda c: c.remove_application(model, application, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"{r.name} is {r.life}"))


@cli.app.command("applications", epilog=cli.declared(RelationCommands.list_applications))
def applications(
    ctx: typer.Context,
) -> None:
    """List applications with their life, leader and units.

    Example: relctl -m prod applications
    """
    model = cli.model(ctx)
    cli.show(ctx, cli.call(ctx, lambda c: c.list_applications(model)), tables.applications)


@cli.app.command("endpoints", epilog=cli.declared(RelationCommands.application_endpoints))
def endpoints(
    ctx: typer.Context, application: Annotated[str, typer.Argument(help="The application.")]
) -> None:
    """An application's endpoints, `juju-info` included.

    Example: relctl -m prod endpoints mysql
    """
    model = cli.model(ctx)
    cli.show(ctx, cli.call(ctx, lambda c: c.application_endpoints(model, application)), tables.endpoints)
