"""relctl's hook tools, as a charm's hooks call them: relation-ids, relation-list, relation-get,
relation-set, set-status."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from client import tables
from client.api import RelationCommands
from client.relctl import arguments, cli
from contracts.commands import RelationStatus
from contracts.names import unit_application


@cli.app.command("relation-ids", epilog=cli.declared(RelationCommands.relation_ids))
def relation_ids(
    ctx: typer.Context, endpoint: Annotated[str, typer.Argument(help="APP:ENDPOINT (or APP for all).")]
) -> None:
    """Ids of the relations on an endpoint.

    Example: relctl -m prod relation-ids wordpress:db
    """
    model = cli.model(ctx)
    cli.show(ctx, cli.call(ctx, lambda c: c.relation_ids(model, endpoint)), tables.lines)


@cli.app.command("relation-list", epilog=cli.declared(RelationCommands.relation_units))
def relation_list(
    ctx: typer.Context,
    relation: arguments.RelationOpt,
    application: Annotated[
        str | None, typer.Option("--app", help="Only units of this application. Example: --app mysql")
    ] = None,
    as_unit: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="List as this unit sees them: in a container-scoped relation, only its own "
            "container's units (default: as the operator, who sees all). Example: --as wordpress/0",
        ),
    ] = None,
) -> None:
    """Units in a relation's scope.

    Example: relctl -m prod relation-list -r 3 --as wordpress/0
    """
    model, ref = cli.model(ctx), arguments.relation(relation)
    cli.show(ctx, cli.call(ctx, lambda c: c.relation_units(model, ref, application, as_unit)), tables.lines)


@cli.app.command(
    "relation-get",
    epilog=cli.declared(RelationCommands.get_unit_settings, RelationCommands.get_application_settings),
)
def relation_get(
    ctx: typer.Context,
    relation: arguments.RelationOpt,
    target: Annotated[str, typer.Argument(help="A unit; with --app an application (or one of its units).")],
    key: Annotated[str | None, typer.Argument(help="One key (`-` or none: the whole bag).")] = None,
    of_app: Annotated[bool, typer.Option("--app", help="Read the application's bag, not a unit's.")] = False,
    as_unit: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Check the read as this unit's (default: as the operator, who reads all). "
            "Example: --as wordpress/0",
        ),
    ] = None,
) -> None:
    """Read a unit's or an application's settings in a relation.

    Example: relctl -m prod relation-get -r 2 --as wordpress/0 mysql/0 host
    """
    model, ref = cli.model(ctx), arguments.relation(relation)
    if of_app:
        application = unit_application(target) if "/" in target else target
        bag = cli.call(ctx, lambda c: c.get_application_settings(model, ref, application, as_unit))
    else:
        bag = cli.call(ctx, lambda c: c.get_unit_settings(model, ref, target, as_unit))
    if key is None or key == "-":
        cli.show(ctx, bag, tables.settings)
    elif cli.options(ctx).json:
        print(json.dumps(bag.get(key)), flush=True)
    else:
        tables.console().print(bag.get(key, ""), markup=False, soft_wrap=True)


@cli.app.command(
    "relation-set",
    epilog=cli.declared(RelationCommands.set_unit_settings, RelationCommands.set_application_settings),
)
def relation_set(
    ctx: typer.Context,
    relation: arguments.RelationOpt,
    unit: Annotated[str, typer.Option("--unit", help="The unit writing, app/N. Example: --unit mysql/0")],
    settings: Annotated[list[str], typer.Argument(help="KEY=VALUE; an empty VALUE deletes KEY.")],
    of_app: Annotated[
        bool, typer.Option("--app", help="Write the unit's application bag (the unit must lead).")
    ] = False,
) -> None:
    """Merge into a unit's (or, with --app, its application's) settings in a relation.

    Example: relctl -m prod relation-set -r 2 --unit mysql/0 host=10.0.0.5 port=3306 old=
    """
    model, ref, bag = cli.model(ctx), arguments.relation(relation), arguments.pairs(settings)
    if of_app:
        result = cli.call(
            ctx, lambda c: c.set_application_settings(model, ref, unit, bag, command_id=cli.command_id(ctx))
        )
    else:
        result = cli.call(
            ctx, lambda c: c.set_unit_settings(model, ref, unit, bag, command_id=cli.command_id(ctx))
        )
    cli.show(
        ctx, result, cli.say(lambda r: "changed" if r.changed else "unchanged (same settings; no event)")
    )


@cli.app.command("set-status", epilog=cli.declared(RelationCommands.set_relation_status))
def set_status(
    ctx: typer.Context,
    relation: arguments.RelationOpt,
    unit: Annotated[str, typer.Option("--unit", help="The leader setting it. Example: --unit wordpress/0")],
    status: Annotated[RelationStatus, typer.Argument(help="The new status.")],
    message: Annotated[str, typer.Option("--message", help="Why. Example: --message 'db upgrade'")] = "",
) -> None:
    """The leader of an application in the relation sets the relation's status.

    Example: relctl -m prod set-status -r 2 --unit wordpress/0 suspended --message maintenance
    """
    model, ref = cli.model(ctx), arguments.relation(relation)
    result = cli.call(
        ctx,
        lambda c: c.set_relation_status(
            model, ref, unit, status.value, message, command_id=cli.command_id(ctx)
        ),
    )
    cli.show(
        ctx,
        result,
        cli.say(lambda r: f"Relation {r.id} is {r.status}" + (f": {r.message}" if r.message else "")),
    )
