"""relctl's relation commands: integrate, remove-relation, relations, show-relation, graph,
enter-scope, leave-scope, unit-relations, snapshot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from client import tables
from client.api import RelationCommands
from client.relctl import arguments, cli
from contracts.snapshot import ModelSnapshot


@cli.app.command("integrate", epilog=cli.declared(RelationCommands.integrate))
def integrate(
    ctx: typer.Context,
    endpoint1: Annotated[str, typer.Argument(help="app[:endpoint]")],
    endpoint2: Annotated[str, typer.Argument(help="app[:endpoint]")],
) -> None:
    """Relate two applications; endpoints are inferred where not named.

    Example: relctl -m prod integrate wordpress mysql:db
    """
    model = cli.model(ctx)
    result = cli.call(ctx, lambda c: c.integrate(model, endpoint1, endpoint2, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"Relation {r.id} created: {r.key} ({r.interface}, {r.status})"))


@cli.app.command("remove-relation", epilog=cli.declared(RelationCommands.remove_relation))
def remove_relation(
    ctx: typer.Context,
    targets: Annotated[
        list[str], typer.Argument(help="A relation id or UUID, or two endpoints app[:endpoint].")
    ],
) -> None:
    """Remove a relation, named by id or by its two endpoints (dying until its scope is empty).

    Example: relctl -m prod remove-relation wordpress mysql   or   relctl -m prod remove-relation 2
    """
    model = cli.model(ctx)
    if len(targets) == 1:
        ref = arguments.relation(targets[0])
        result = cli.call(
            ctx, lambda c: c.remove_relation(model, relation=ref, command_id=cli.command_id(ctx))
        )
    elif len(targets) == 2:
        pair = (targets[0], targets[1])
        result = cli.call(
            ctx, lambda c: c.remove_relation(model, endpoints=pair, command_id=cli.command_id(ctx))
        )
    else:
        raise typer.BadParameter("give one relation id or two endpoints", param_hint="TARGETS")
    cli.show(ctx, result, cli.say(lambda r: f"Relation {r.id} is {r.life}"))


@cli.app.command("relations", epilog=cli.declared(RelationCommands.list_relations))
def relations(
    ctx: typer.Context,
    application: Annotated[str | None, typer.Argument(help="Only this application's relations.")] = None,
) -> None:
    """List relations, like `juju status --relations`.

    Example: relctl -m prod relations wordpress
    """
    model = cli.model(ctx)
    cli.show(ctx, cli.call(ctx, lambda c: c.list_relations(model, application)), tables.relations)


@cli.app.command("show-relation", epilog=cli.declared(RelationCommands.get_relation))
def show_relation(
    ctx: typer.Context, relation: Annotated[str, typer.Argument(help="Relation id or UUID.")]
) -> None:
    """One relation's details: endpoints, status, units in scope.

    Example: relctl -m prod show-relation 2
    """
    model, ref = cli.model(ctx), arguments.relation(relation)
    cli.show(ctx, cli.call(ctx, lambda c: c.get_relation(model, ref)), tables.relation)


@cli.app.command(
    "graph", epilog=cli.declared(RelationCommands.list_applications, RelationCommands.list_relations)
)
def graph(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="dot (default) or svg (needs graphviz).")] = (
        "dot"
    ),
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here, not to stdout.")] = None,
) -> None:
    """Draw the model's applications and relations (endpoints, status, life, units in scope) as
    Graphviz DOT or SVG, like the Juju dashboard's relations view.

    Example: relctl -m prod graph --format svg -o prod.svg
    """
    from client import graph as drawing

    if fmt not in drawing.FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(drawing.FORMATS)}", param_hint="--format")
    model = cli.model(ctx)
    try:
        if fmt != "dot":
            drawing.dot_binary()  # refuse before anything is sent
        apps, rels = cli.call(ctx, lambda c: drawing.fetch(c, model))
        text = drawing.render(drawing.to_dot(model, apps, rels), fmt)
    except (drawing.GraphvizUnavailable, drawing.GraphvizFailed) as exc:
        cli.fail(ctx, type(exc).__name__, str(exc), cli.EXIT_USAGE)
    if output is not None:
        output.write_text(text)
    if cli.options(ctx).json:
        written = str(output) if output else None
        print(json.dumps({"format": fmt, "output": written, "graph": text}), flush=True)
    elif output is None:
        sys.stdout.write(text)


@cli.app.command("enter-scope", epilog=cli.declared(RelationCommands.enter_scope))
def enter_scope(
    ctx: typer.Context,
    relation: Annotated[str, typer.Argument(help="Relation id or UUID.")],
    unit: Annotated[str, typer.Argument(help="The unit entering, app/N.")],
    settings: Annotated[
        list[str] | None, typer.Argument(help="Initial unit settings KEY=VALUE (replace the bag).")
    ] = None,
) -> None:
    """A unit joins a relation (a principal entering a container relation creates its subordinate).

    Example: relctl -m prod enter-scope 2 wordpress/0 hostname=wp0
    """
    model, ref = cli.model(ctx), arguments.relation(relation)
    bag = arguments.pairs(settings) if settings else None
    result = cli.call(ctx, lambda c: c.enter_scope(model, ref, unit, bag, command_id=cli.command_id(ctx)))

    def text(r: Any) -> str:
        created = f" (created {', '.join(r.created_units)})" if r.created_units else ""
        return f"{r.unit} entered relation {r.id}{created}"

    cli.show(ctx, result, cli.say(text))


@cli.app.command("leave-scope", epilog=cli.declared(RelationCommands.leave_scope))
def leave_scope(
    ctx: typer.Context,
    relation: Annotated[str, typer.Argument(help="Relation id or UUID.")],
    unit: Annotated[str, typer.Argument(help="The unit leaving, app/N.")],
) -> None:
    """A unit leaves a relation (the last unit out of a dying relation removes it).

    Example: relctl -m prod leave-scope 2 wordpress/0
    """
    model, ref = cli.model(ctx), arguments.relation(relation)
    result = cli.call(ctx, lambda c: c.leave_scope(model, ref, unit, command_id=cli.command_id(ctx)))
    cli.show(ctx, result, cli.say(lambda r: f"{r.unit} left relation {r.id}"))


@cli.app.command("unit-relations", epilog=cli.declared(RelationCommands.unit_relations))
def unit_relations(ctx: typer.Context, unit: Annotated[str, typer.Argument(help="app/N")]) -> None:
    """The relations of a unit's application, with whether the unit is in scope.

    Example: relctl -m prod unit-relations wordpress/0
    """
    model = cli.model(ctx)
    cli.show(ctx, cli.call(ctx, lambda c: c.unit_relations(model, unit)), tables.unit_relations)


@cli.app.command("snapshot", epilog=cli.declared(RelationCommands.snapshot))
def snapshot(
    ctx: typer.Context,
    unit: Annotated[
        str | None, typer.Argument(help="The unit whose view to show (none: the whole model).")
    ] = None,
) -> None:
    """What a unit (or a watcher of the model) needs to know now, and the log position it is at:
    relations, the units in scope it can see, settings hashes. Follow events after SEQ from there.

    Example: relctl -m prod --json snapshot wordpress/0
    """
    model = cli.model(ctx)
    cli.show(ctx, cli.call(ctx, lambda c: c.snapshot(model, unit)), _snapshot_table)


def _snapshot_table(out: Console, snap: ModelSnapshot) -> None:
    who = f"unit {snap.unit}" + (" (leader)" if snap.leader else "") if snap.unit else "model"
    out.print(f"Snapshot of {who} at seq {snap.seq}", markup=False, soft_wrap=True)
    for rel in snap.relations:
        scope = "" if rel.in_scope is None else (" in scope" if rel.in_scope else " not in scope")
        out.print(
            f"relation {rel.id} ({rel.key}) {rel.life} {rel.status} {rel.scope.value}{scope}",
            markup=False,
            soft_wrap=True,
        )
        for u in rel.units:
            out.print(f"  {u.name}\t{(u.settings_hash or '-')[:12]}", markup=False, soft_wrap=True)
        for b in rel.application_settings:
            out.print(f"  {b.application}\t{(b.settings_hash or '-')[:12]}", markup=False, soft_wrap=True)
