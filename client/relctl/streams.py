"""relctl's streams: watch (the model's change events) and hooks (a unit's relation hooks), both
followed by one loop that stops after --count items or on Ctrl-C."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from client import tables
from client.api import RelationCommands
from client.relctl import cli
from client.rpc import RelationClient
from client.watch import Watch
from contracts.events import ChangeEvent, Namespace

T = TypeVar("T")


def follow(
    ctx: typer.Context,
    items: Callable[[cli.Options], AsyncGenerator[T, None]],
    show: Callable[[T], None],
    count: int | None,
) -> None:
    """Print what ``items`` yields until ``count`` of them (None: until Ctrl-C, exit 130); the
    stream starts once the daemon has answered, so that a stopped daemon fails fast."""
    opts = cli.options(ctx)

    async def run(client: RelationClient) -> None:
        await client.list_models()  # the daemon answers: it is worth following
        seen = 0
        async with aclosing(items(opts)) as stream:
            async for item in stream:
                show(item)
                seen += 1
                if count is not None and seen >= count:
                    return

    try:
        cli.call(ctx, run)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


# The stream sends list_models first (the daemon answers; a model's UUID from its name), then
# events_after; a snapshot when the history it needs is no longer kept (client/watch.py).
_STREAM = (RelationCommands.list_models, RelationCommands.events_after, RelationCommands.snapshot)


@cli.app.command("watch", epilog=cli.declared(*_STREAM))
def watch(
    ctx: typer.Context,
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
    model, as_json = cli.model(ctx), cli.options(ctx).json
    out = tables.console()

    async def events(opts: cli.Options) -> AsyncGenerator[ChangeEvent, None]:
        stream = Watch(
            opts.amqp_url,
            model,
            after=start - 1,
            namespace=namespace.value if namespace else None,
            relation_id=relation,
            timeout=opts.timeout,
        )
        async with stream:
            async for event in stream:
                yield event

    def show(event: ChangeEvent) -> None:
        if as_json:
            print(event.model_dump_json(), flush=True)
        else:
            tables.event(out, event)

    follow(ctx, events, show, count)


@cli.app.command("hooks", epilog=cli.declared(*_STREAM))
def hooks(
    ctx: typer.Context,
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

    model, as_json = cli.model(ctx), cli.options(ctx).json
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

    async def unit_hooks(opts: cli.Options) -> AsyncGenerator[Any, None]:
        stream = HookStream(opts.amqp_url, model, unit, after=after, state=saved, timeout=opts.timeout)
        try:
            async for hook in stream:
                yield hook
        except StateError as exc:
            raise typer.BadParameter(str(exc), param_hint="--state") from None
        finally:
            await stream.close()

    def show(hook: Any) -> None:
        if as_json:
            print(json.dumps(hook.to_dict()), flush=True)
        else:
            remote = hook.remote_unit or hook.remote_app
            out.print(
                f"{hook.seq}.{hook.index}\t{hook.hook}\t"
                f"relation {hook.relation_id} ({hook.endpoint})\t{remote}",
                markup=False,
                soft_wrap=True,
            )
        if state_file is not None and hook.state is not None:
            write_state(state_file, hook.state)

    follow(ctx, unit_hooks, show, count)
