"""relctl: drive relationd from a terminal, over RabbitMQ only (never the database).

Exit codes: 0 success, 1 a domain error (the daemon refused), 2 a usage error (bad arguments,
refused before anything is sent), 3 the daemon or the broker could not be reached in time.
With ``--json`` every command prints one JSON document on stdout, errors included
(``{"error": {"code", "message"}}``); ``watch --json`` prints one JSON line per event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console

from client import tables
from client.api import InvalidArgument
from client.rpc import DEFAULT_AMQP_URL, DaemonUnreachable, RelationClient
from client.watch import Watch
from contracts.commands import RelationStatus
from contracts.errors import RelationdError
from contracts.events import ChangeEvent, Namespace
from contracts.names import UUID_RE, unit_application
from contracts.snapshot import ModelSnapshot

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
    amqp_url: str
    model: str | None
    json: bool
    timeout: float
    command_id: str | None


# Set by the global callback; relctl runs one command per process.
_current: Options | None = None


def _options() -> Options:
    assert _current is not None, "the global options callback has not run"
    return _current


@app.callback()
def _global(
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
    global _current
    _current = Options(amqp_url, model, as_json, timeout, command_id)


# ---- running one command ---------------------------------------------------------------------


def _fail(code: str, message: str, exit_code: int, details: dict[str, Any] | None = None) -> NoReturn:
    if _json_mode():
        error: dict[str, Any] = {"code": code, "message": message}
        if details:
            error["details"] = details
        print(json.dumps({"error": error}), flush=True)
    else:
        tables.console(stderr=True).print(f"relctl: {code}: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(exit_code)


def _json_mode() -> bool:
    return _current.json if _current is not None else False


def _model() -> str:
    model = _options().model
    if not model:
        raise typer.BadParameter("no model given: pass -m/--model NAME or set RELCTL_MODEL", param_hint="-m")
    return model


async def _with_client(options: Options, action: Callable[[RelationClient], Awaitable[Any]]) -> Any:
    client = await RelationClient.connect(options.amqp_url, timeout=options.timeout)
    try:
        return await action(client)
    finally:
        await client.close()


def _call(action: Callable[[RelationClient], Awaitable[Any]]) -> Any:
    """Run one client action; print and exit on failure with relctl's exit codes."""
    options = _options()
    try:
        return asyncio.run(_with_client(options, action))
    except InvalidArgument as exc:
        _fail(exc.code.value, exc.message, EXIT_USAGE, exc.details)
    except DaemonUnreachable as exc:
        _fail("DaemonUnreachable", str(exc), EXIT_UNREACHABLE)
    except RelationdError as exc:
        _fail(exc.code.value, exc.message, EXIT_DOMAIN, exc.details)


def _show(result: Any, render: Callable[[Console, Any], None]) -> None:
    if _options().json:
        print(json.dumps(to_jsonable_python(result)), flush=True)
    else:
        render(tables.console(), result)


def _say(text: Callable[[Any], str]) -> Callable[[Console, Any], None]:
    def render(out: Console, result: Any) -> None:
        out.print(text(result), markup=False, soft_wrap=True)

    return render


def _cid() -> str | None:
    return _options().command_id


# ---- argument parsing helpers ----------------------------------------------------------------


def _relation(text: str) -> int | str:
    """A relation named by id (digits) or UUID."""
    if text.isdigit():
        return int(text)
    if re.match(UUID_RE, text):
        return text
    raise typer.BadParameter(f"{text!r} is neither a relation id nor a relation UUID", param_hint="relation")


def _pairs(items: Sequence[str]) -> dict[str, str]:
    """KEY=VALUE arguments as a settings write (an empty VALUE deletes KEY)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="settings")
        out[key] = value
    return out


def _charm(path: Path) -> dict[str, Any]:
    import yaml  # only deploy needs it; every other command starts faster without

    try:
        meta = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--metadata") from None
    if not isinstance(meta, dict):
        raise typer.BadParameter(f"{path} is not a YAML mapping", param_hint="--metadata")
    return meta


RelationOpt = Annotated[str, typer.Option("-r", "--relation", help="Relation id or UUID. Example: -r 2")]

# ---- models ----------------------------------------------------------------------------------


@app.command("add-model")
def add_model(name: Annotated[str, typer.Argument(help="The new model's name.")]) -> None:
    """Create a model; you become its admin.

    Example: relctl add-model prod
    """
    result = _call(lambda c: c.create_model(name, command_id=_cid()))
    _show(result, _say(lambda r: f"Model {r.name} created (uuid {r.uuid})"))


@app.command("models")
def models() -> None:
    """List the models you can see.

    Example: relctl models --json
    """
    _show(_call(lambda c: c.list_models()), tables.models)


@app.command("remove-model")
def remove_model() -> None:
    """Remove the model (-m) and all it holds (admin).

    Example: relctl -m scratch remove-model
    """
    model = _model()
    result = _call(lambda c: c.remove_model(model, command_id=_cid()))
    _show(result, _say(lambda r: f"Model {r.name} removed"))


@app.command("grant")
def grant(
    user: Annotated[str, typer.Argument(help="A broker user name.")],
    level: Annotated[str, typer.Argument(help="read, write or admin.")],
) -> None:
    """Give a broker user access to the model (admin).

    Example: relctl -m prod grant bob write
    """
    model = _model()
    result = _call(lambda c: c.grant(model, user, level, command_id=_cid()))
    _show(result, _say(lambda r: f"{r.user} has {r.level} access to {r.model}"))


@app.command("revoke")
def revoke(
    user: Annotated[str, typer.Argument(help="A broker user name.")],
    level: Annotated[str, typer.Argument(help="The level to take away (read, write, admin).")] = "read",
) -> None:
    """Take an access level away, as `juju revoke` does (revoking write leaves read).

    Example: relctl -m prod revoke bob write
    """
    model = _model()
    result = _call(lambda c: c.revoke(model, user, level, command_id=_cid()))
    _show(result, _say(lambda r: f"{r.user} has {r.level or 'no'} access to {r.model}"))


@app.command("access")
def access() -> None:
    """Who has what on the model (-m), or on every model you administer.

    Example: relctl -m prod access
    """
    model = _options().model
    _show(_call(lambda c: c.list_access(model)), tables.access)


# ---- applications and units ------------------------------------------------------------------


@app.command("deploy")
def deploy(
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
    model, charm = _model(), _charm(metadata)
    result = _call(lambda c: c.deploy(model, application, charm, units, command_id=_cid()))
    _show(result, tables.deployed)


@app.command("add-unit")
def add_unit(
    application: Annotated[str, typer.Argument(help="A principal application.")],
    count: Annotated[int, typer.Option("-n", "--num-units", min=1, help="How many. Example: -n 3")] = 1,
) -> None:
    """Add units to an application.

    Example: relctl -m prod add-unit wordpress -n 2
    """
    model = _model()
    result = _call(lambda c: c.add_units(model, application, count, command_id=_cid()))
    _show(result, _say(lambda r: "Added " + ", ".join(r.units)))


@app.command("set-leader")
def set_leader(unit: Annotated[str, typer.Argument(help="The unit to lead, app/N.")]) -> None:
    """Make a unit its application's leader.

    Example: relctl -m prod set-leader wordpress/0
    """
    model = _model()
    result = _call(lambda c: c.set_leader(model, unit, command_id=_cid()))
    _show(result, _say(lambda r: f"{r.leader} leads {unit_application(r.leader)}"))


@app.command("remove-unit")
def remove_unit(unit: Annotated[str, typer.Argument(help="app/N")]) -> None:
    """Remove a unit (dying until it has left every relation scope).

    Example: relctl -m prod remove-unit wordpress/1
    """
    model = _model()
    result = _call(lambda c: c.remove_unit(model, unit, command_id=_cid()))
    _show(result, _say(lambda r: f"{r.name} is {r.life}"))


@app.command("remove-application")
def remove_application(application: Annotated[str, typer.Argument(help="The application.")]) -> None:
    """Remove an application; its units and relations become dying.

    Example: relctl -m prod remove-application wordpress
    """
    model = _model()
    result = _call(lambda c: c.remove_application(model, application, command_id=_cid()))
    _show(result, _say(lambda r: f"{r.name} is {r.life}"))


@app.command("applications")
def applications() -> None:
    """List applications with their life, leader and units.

    Example: relctl -m prod applications
    """
    model = _model()
    _show(_call(lambda c: c.list_applications(model)), tables.applications)


@app.command("endpoints")
def endpoints(application: Annotated[str, typer.Argument(help="The application.")]) -> None:
    """An application's endpoints, `juju-info` included.

    Example: relctl -m prod endpoints mysql
    """
    model = _model()
    _show(_call(lambda c: c.application_endpoints(model, application)), tables.endpoints)


# ---- relations -------------------------------------------------------------------------------


@app.command("integrate")
def integrate(
    endpoint1: Annotated[str, typer.Argument(help="app[:endpoint]")],
    endpoint2: Annotated[str, typer.Argument(help="app[:endpoint]")],
) -> None:
    """Relate two applications; endpoints are inferred where not named.

    Example: relctl -m prod integrate wordpress mysql:db
    """
    model = _model()
    result = _call(lambda c: c.integrate(model, endpoint1, endpoint2, command_id=_cid()))
    _show(result, _say(lambda r: f"Relation {r.id} created: {r.key} ({r.interface}, {r.status})"))


@app.command("remove-relation")
def remove_relation(
    targets: Annotated[
        list[str], typer.Argument(help="A relation id or UUID, or two endpoints app[:endpoint].")
    ],
) -> None:
    """Remove a relation, named by id or by its two endpoints (dying until its scope is empty).

    Example: relctl -m prod remove-relation wordpress mysql   or   relctl -m prod remove-relation 2
    """
    model = _model()
    if len(targets) == 1:
        ref = _relation(targets[0])
        result = _call(lambda c: c.remove_relation(model, relation=ref, command_id=_cid()))
    elif len(targets) == 2:
        pair = (targets[0], targets[1])
        result = _call(lambda c: c.remove_relation(model, endpoints=pair, command_id=_cid()))
    else:
        raise typer.BadParameter("give one relation id or two endpoints", param_hint="TARGETS")
    _show(result, _say(lambda r: f"Relation {r.id} is {r.life}"))


@app.command("relations")
def relations(
    application: Annotated[str | None, typer.Argument(help="Only this application's relations.")] = None,
) -> None:
    """List relations, like `juju status --relations`.

    Example: relctl -m prod relations wordpress
    """
    model = _model()
    _show(_call(lambda c: c.list_relations(model, application)), tables.relations)


@app.command("show-relation")
def show_relation(relation: Annotated[str, typer.Argument(help="Relation id or UUID.")]) -> None:
    """One relation's details: endpoints, status, units in scope.

    Example: relctl -m prod show-relation 2
    """
    model, ref = _model(), _relation(relation)
    _show(_call(lambda c: c.get_relation(model, ref)), tables.relation)


@app.command("graph")
def graph(
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
    model = _model()
    try:
        if fmt != "dot":
            drawing.dot_binary()  # refuse before anything is sent
        apps, rels = _call(lambda c: drawing.fetch(c, model))
        text = drawing.render(drawing.to_dot(model, apps, rels), fmt)
    except (drawing.GraphvizUnavailable, drawing.GraphvizFailed) as exc:
        _fail(type(exc).__name__, str(exc), EXIT_USAGE)
    if output is not None:
        output.write_text(text)
    if _options().json:
        written = str(output) if output else None
        print(json.dumps({"format": fmt, "output": written, "graph": text}), flush=True)
    elif output is None:
        sys.stdout.write(text)


@app.command("enter-scope")
def enter_scope(
    relation: Annotated[str, typer.Argument(help="Relation id or UUID.")],
    unit: Annotated[str, typer.Argument(help="The unit entering, app/N.")],
    settings: Annotated[
        list[str] | None, typer.Argument(help="Initial unit settings KEY=VALUE (replace the bag).")
    ] = None,
) -> None:
    """A unit joins a relation (a principal entering a container relation creates its subordinate).

    Example: relctl -m prod enter-scope 2 wordpress/0 hostname=wp0
    """
    model, ref = _model(), _relation(relation)
    bag = _pairs(settings) if settings else None
    result = _call(lambda c: c.enter_scope(model, ref, unit, bag, command_id=_cid()))

    def text(r: Any) -> str:
        created = f" (created {', '.join(r.created_units)})" if r.created_units else ""
        return f"{r.unit} entered relation {r.id}{created}"

    _show(result, _say(text))


@app.command("leave-scope")
def leave_scope(
    relation: Annotated[str, typer.Argument(help="Relation id or UUID.")],
    unit: Annotated[str, typer.Argument(help="The unit leaving, app/N.")],
) -> None:
    """A unit leaves a relation (the last unit out of a dying relation removes it).

    Example: relctl -m prod leave-scope 2 wordpress/0
    """
    model, ref = _model(), _relation(relation)
    result = _call(lambda c: c.leave_scope(model, ref, unit, command_id=_cid()))
    _show(result, _say(lambda r: f"{r.unit} left relation {r.id}"))


@app.command("unit-relations")
def unit_relations(unit: Annotated[str, typer.Argument(help="app/N")]) -> None:
    """The relations of a unit's application, with whether the unit is in scope.

    Example: relctl -m prod unit-relations wordpress/0
    """
    model = _model()
    _show(_call(lambda c: c.unit_relations(model, unit)), tables.unit_relations)


@app.command("snapshot")
def snapshot(
    unit: Annotated[
        str | None, typer.Argument(help="The unit whose view to show (none: the whole model).")
    ] = None,
) -> None:
    """What a unit (or a watcher of the model) needs to know now, and the log position it is at:
    relations, the units in scope it can see, settings hashes. Follow events after SEQ from there.

    Example: relctl -m prod --json snapshot wordpress/0
    """
    model = _model()
    _show(_call(lambda c: c.snapshot(model, unit)), _snapshot_table)


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


# ---- hook tools ------------------------------------------------------------------------------


@app.command("relation-ids")
def relation_ids(endpoint: Annotated[str, typer.Argument(help="APP:ENDPOINT (or APP for all).")]) -> None:
    """Ids of the relations on an endpoint.

    Example: relctl -m prod relation-ids wordpress:db
    """
    model = _model()
    _show(_call(lambda c: c.relation_ids(model, endpoint)), tables.lines)


@app.command("relation-list")
def relation_list(
    relation: RelationOpt,
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
    model, ref = _model(), _relation(relation)
    _show(_call(lambda c: c.relation_units(model, ref, application, as_unit)), tables.lines)


@app.command("relation-get")
def relation_get(
    relation: RelationOpt,
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
    model, ref = _model(), _relation(relation)
    if of_app:
        application = unit_application(target) if "/" in target else target
        bag = _call(lambda c: c.get_application_settings(model, ref, application, as_unit))
    else:
        bag = _call(lambda c: c.get_unit_settings(model, ref, target, as_unit))
    if key is None or key == "-":
        _show(bag, tables.settings)
    elif _options().json:
        print(json.dumps(bag.get(key)), flush=True)
    else:
        tables.console().print(bag.get(key, ""), markup=False, soft_wrap=True)


@app.command("relation-set")
def relation_set(
    relation: RelationOpt,
    unit: Annotated[str, typer.Option("--unit", help="The unit writing, app/N. Example: --unit mysql/0")],
    settings: Annotated[list[str], typer.Argument(help="KEY=VALUE; an empty VALUE deletes KEY.")],
    of_app: Annotated[
        bool, typer.Option("--app", help="Write the unit's application bag (the unit must lead).")
    ] = False,
) -> None:
    """Merge into a unit's (or, with --app, its application's) settings in a relation.

    Example: relctl -m prod relation-set -r 2 --unit mysql/0 host=10.0.0.5 port=3306 old=
    """
    model, ref, bag = _model(), _relation(relation), _pairs(settings)
    if of_app:
        result = _call(lambda c: c.set_application_settings(model, ref, unit, bag, command_id=_cid()))
    else:
        result = _call(lambda c: c.set_unit_settings(model, ref, unit, bag, command_id=_cid()))
    _show(result, _say(lambda r: "changed" if r.changed else "unchanged (same settings; no event)"))


@app.command("set-status")
def set_status(
    relation: RelationOpt,
    unit: Annotated[str, typer.Option("--unit", help="The leader setting it. Example: --unit wordpress/0")],
    status: Annotated[RelationStatus, typer.Argument(help="The new status.")],
    message: Annotated[str, typer.Option("--message", help="Why. Example: --message 'db upgrade'")] = "",
) -> None:
    """The leader of an application in the relation sets the relation's status.

    Example: relctl -m prod set-status -r 2 --unit wordpress/0 suspended --message maintenance
    """
    model, ref = _model(), _relation(relation)
    result = _call(
        lambda c: c.set_relation_status(model, ref, unit, status.value, message, command_id=_cid())
    )
    _show(result, _say(lambda r: f"Relation {r.id} is {r.status}" + (f": {r.message}" if r.message else "")))


# ---- events ----------------------------------------------------------------------------------


@app.command("watch")
def watch(
    start: Annotated[
        int,
        typer.Option(
            "--from", min=1, help="First sequence number to show (1: the whole log). Example: --from 42"
        ),
    ] = 1,
    namespace: Annotated[
        Namespace | None,
        typer.Option("--namespace", help="Only this namespace. Example: --namespace relation_unit"),
    ] = None,
    relation: Annotated[
        int | None, typer.Option("--relation", min=0, help="Only this relation id. Example: --relation 2")
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many events. Example: --count 10")
    ] = None,
) -> None:
    """Stream the model's change events: the log from --from on, then live (Ctrl-C stops).

    Example: relctl -m prod --json watch --from 1 --namespace relation_unit --count 5
    """
    model, options = _model(), _options()
    out = tables.console()

    async def stream(client: RelationClient) -> None:
        await client.list_models()  # the daemon answers: it is worth following
        follow = Watch(
            options.amqp_url,
            model,
            after=start - 1,
            namespace=namespace.value if namespace else None,
            relation_id=relation,
            timeout=options.timeout,
        )
        seen = 0
        async with follow:
            async for event in follow:
                _print_event(event, out, options.json)
                seen += 1
                if count is not None and seen >= count:
                    return

    try:
        _call(stream)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command("hooks")
def hooks(
    unit: Annotated[str, typer.Argument(help="The unit whose hooks to show. Example: wordpress/0")],
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Resume after this hook position SEQ or SEQ.INDEX (as printed; 0: the whole log), "
            "replaying the log from its start. Example: --from 42.1",
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many hooks. Example: --count 10")
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="The unit's hook state: resumed from when the file exists, rewritten atomically "
            "after each hook. Example: --state /var/lib/agent/wordpress-0.json",
        ),
    ] = None,
) -> None:
    """Stream the relation hooks UNIT runs, in Juju's uniter order, each once, then live.

    relation-created, -joined, -changed, -departed and -broken, with the relation id, the unit's
    endpoint and the remote unit or application. Without --from or a saved --state the unit starts
    as a new agent, from its snapshot (its relations and units in scope now). With --state it
    resumes where the file says: the rest of the log while it is kept, else the hooks for what
    changed meanwhile (said on stderr). Ctrl-C stops.

    Example: relctl -m prod --json hooks wordpress/0 --state wp0.json --count 5
    """
    from client.hook_stream import HookStream
    from client.hooks import StateError
    from client.state_file import read_state, write_state

    model, options = _model(), _options()
    out = tables.console()
    after: tuple[int, int] | None = None
    if start is not None:
        match = re.fullmatch(r"(\d+)(?:\.(\d+))?", start)
        if match is None:
            raise typer.BadParameter(f"{start!r} is not SEQ or SEQ.INDEX", param_hint="--from")
        seq, index = int(match[1]), int(match[2]) if match[2] is not None else 10**9
        after = (seq, index)
    try:
        saved = read_state(state_file) if state_file is not None else None
    except (StateError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--state") from None
    if saved is not None and after is not None:
        raise typer.BadParameter(
            f"{state_file} holds a state to resume from: drop --from", param_hint="--from"
        )

    async def stream(client: RelationClient) -> None:
        await client.list_models()  # the daemon answers: it is worth following
        seen = 0
        hooks = HookStream(options.amqp_url, model, unit, after=after, state=saved, timeout=options.timeout)
        try:
            async for hook in hooks:
                _print_hook(hook, out, options.json)
                if state_file is not None and hook.state is not None:
                    write_state(state_file, hook.state)
                seen += 1
                if count is not None and seen >= count:
                    return
        except StateError as exc:
            raise typer.BadParameter(str(exc), param_hint="--state") from None
        finally:
            await hooks.close()

    try:
        _call(stream)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _print_hook(hook: Any, out: Console, as_json: bool) -> None:
    if as_json:
        print(json.dumps(hook.to_dict()), flush=True)
    else:
        remote = hook.remote_unit or hook.remote_app
        out.print(
            f"{hook.seq}.{hook.index}\t{hook.hook}\trelation {hook.relation_id} ({hook.endpoint})\t{remote}",
            markup=False,
            soft_wrap=True,
        )


def _print_event(event: ChangeEvent, out: Console, as_json: bool) -> None:
    if as_json:
        print(event.model_dump_json(), flush=True)
    else:
        tables.event(out, event)


# ---- entry point -----------------------------------------------------------------------------

# Global options and whether each takes a value: they may also follow the command.
_GLOBALS = {
    "--amqp-url": True,
    "-m": True,
    "--model": True,
    "--timeout": True,
    "--command-id": True,
    "--json": False,
}


def hoist_globals(args: Sequence[str]) -> list[str]:
    """Move global options written after the command to before it (``relctl models --json``)."""
    front: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-h", "--help"):
        name = args[i].split("=", 1)[0]
        takes = _GLOBALS.get(name)
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
        if name in _GLOBALS:
            step = 2 if _GLOBALS[name] and "=" not in token else 1
            front += rest[j : j + step]
            j += step
            continue
        back.append(token)
        j += 1
    return [*front, command, *back]


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


if __name__ == "__main__":
    sys.exit(main())
