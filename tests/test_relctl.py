"""relctl as a user runs it: a subprocess against the running daemon, every command, both outputs.

The same scenario runs twice, in parallel, on two models: once with ``--json`` (checked field by
field) and once with readable output (checked for what a person reads). Commands of one stage
run concurrently. Then the error exits: 1 refused by the daemon, 2 usage, 3 unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from client import RelationClient
from client.relctl import app, hoist_globals, main
from client.relctl.arguments import relation as relation_ref
from client.relctl.argv import global_options
from contracts import commands as c
from tests import client_support
from tests.client_support import UnservedQueue
from tests.domain import charm

ROOT = Path(__file__).resolve().parent.parent
CHARMS = ROOT / "tests" / "charms"
_SCRIPT = Path(sys.executable).parent / "relctl"
RELCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "client.relctl"]

idle_amqp = client_support.idle_amqp  # a session fixture shared with the client tests


@dataclass
class Run:
    args: list[str]
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


async def relctl(*args: str, env: dict[str, str] | None = None) -> Run:
    base = {k: v for k, v in os.environ.items() if k not in ("RELCTL_MODEL", "RELATIOND_AMQP_URL")}
    proc = await asyncio.create_subprocess_exec(
        *RELCTL,
        *args,
        cwd=ROOT,
        env={**base, "COLUMNS": "200", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Run(list(args), proc.returncode, out.decode(), err.decode())


Check = Callable[[Run], None]


@dataclass
class Step:
    """One command with its check in each mode; a variant of a command checked in both modes
    elsewhere runs in one mode only (None for the other), which keeps the run short."""

    args: list[str]
    json: Check | None
    text: Check | None


def lines(run: Run) -> list[str]:
    return [line.rstrip() for line in run.out.splitlines() if line.strip()]


def has(*fragments: str) -> Check:
    def check(run: Run) -> None:
        for fragment in fragments:
            assert fragment in run.out, f"{fragment!r} not in output of {run.args}:\n{run.out}"

    return check


def text_is(*expected: str) -> Check:
    def check(run: Run) -> None:
        assert lines(run) == list(expected), f"{run.args}:\n{run.out}"

    return check


def lacks(fragment: str) -> Check:
    def check(run: Run) -> None:
        assert fragment not in run.out, f"{fragment!r} in output of {run.args}:\n{run.out}"

    return check


def stages(model: str) -> list[list[Step]]:
    """The scenario, stage by stage; the steps of one stage may run in any order."""

    def j(check: Callable[[Any], Any]) -> Check:
        def run_check(run: Run) -> None:
            assert check(run.json) is not False, f"{run.args}: {run.out}"

        return run_check

    def relations_table(run: Run) -> None:
        head, *rows = lines(run)
        assert head.split() == [
            "Id",
            "Provider",
            "Requirer",
            "Interface",
            "Type",
            "Status",
            "Life",
            "Message",
        ]
        cells = {row.split()[0]: row.split() for row in rows}
        assert cells["0"][1:5] == ["mysql:cluster", "mysql:cluster", "mysql-ha", "peer"]
        assert cells["2"][1:7] == ["mysql:db", "wordpress:db", "mysql", "regular", "joined", "alive"]
        assert cells["3"][1:5] == ["wordpress:juju-info", "telegraf:juju-info", "juju-info", "subordinate"]

    def watched(run: Run) -> None:
        events = [json.loads(line) for line in run.out.splitlines()]
        assert [e["seq"] for e in events] == list(range(1, 6))
        assert events[0]["namespace"] == "model" and events[0]["kind"] == "created"
        assert {"seq", "namespace", "kind", "key", "event_id", "payload"} <= set(events[0])

    def scoped(run: Run) -> None:
        events = [json.loads(line) for line in run.out.splitlines()]
        assert [(e["namespace"], e["kind"]) for e in events] == [("relation_unit", "entered")] * 3

    return [
        [
            Step(
                ["add-model", model],
                j(lambda r: r["name"] == model and len(r["uuid"]) == 36),
                has(f"Model {model} created (uuid "),
            )
        ],
        [
            Step(
                ["deploy", "mysql", "--metadata", str(CHARMS / "mysql.yaml"), "--units", "2"],
                j(
                    lambda r: (
                        r["application"] == "mysql"
                        and r["units"] == ["mysql/0", "mysql/1"]
                        and {
                            "name": "db",
                            "role": "provider",
                            "interface": "mysql",
                            "scope": "global",
                            "limit": None,
                        }.items()
                        <= next(e for e in r["endpoints"] if e["name"] == "db").items()
                        and r["peer_relations"] == [{"id": 0, "key": "mysql:cluster"}]
                    )
                ),
                has(
                    "Deployed application mysql (mysql/0, mysql/1)",
                    "db ",
                    "provider",
                    "Peer relation 0: mysql:cluster",
                ),
            )
        ],
        [
            Step(
                ["deploy", "wordpress", "--metadata", str(CHARMS / "wordpress.yaml"), "-n", "1"],
                j(lambda r: r["units"] == ["wordpress/0"] and r["peer_relations"][0]["id"] == 1),
                has("Deployed application wordpress (wordpress/0)"),
            )
        ],
        [
            Step(
                ["deploy", "telegraf", "--metadata", str(CHARMS / "telegraf.yaml")],
                j(lambda r: r["units"] == [] and r["subordinate"] is True),
                has("Deployed subordinate application telegraf (no units)"),
            ),
        ],
        [
            Step(
                ["add-unit", "wordpress", "-n", "2"],
                j(lambda r: r == {"units": ["wordpress/1", "wordpress/2"]}),
                has("Added wordpress/1, wordpress/2"),
            ),
            Step(
                ["set-leader", "mysql/1"], j(lambda r: r == {"leader": "mysql/1"}), has("mysql/1 leads mysql")
            ),
        ],
        [
            Step(
                ["integrate", "wordpress", "mysql"],
                j(
                    lambda r: (
                        r["id"] == 2
                        and r["key"] == "wordpress:db mysql:db"
                        and len(r["uuid"]) == 36
                        and [e["application"] for e in r["endpoints"]] == ["wordpress", "mysql"]
                    )
                ),
                has("Relation 2 created: wordpress:db mysql:db (mysql, joining)"),
            )
        ],
        [
            Step(
                ["integrate", "telegraf:juju-info", "wordpress"],
                j(lambda r: r["id"] == 3 and r["scope"] == "container"),
                has("Relation 3 created: telegraf:juju-info wordpress:juju-info"),
            )
        ],
        [
            Step(
                ["enter-scope", "2", "wordpress/0", "host=wp0"],
                j(lambda r: r == {"id": 2, "unit": "wordpress/0", "in_scope": True, "created_units": []}),
                has("wordpress/0 entered relation 2"),
            ),
            Step(
                ["enter-scope", "2", "mysql/1"], j(lambda r: r["in_scope"]), has("mysql/1 entered relation 2")
            ),
            Step(
                ["enter-scope", "3", "wordpress/0"],
                j(lambda r: r["created_units"] == ["telegraf/0"]),
                has("wordpress/0 entered relation 3 (created telegraf/0)"),
            ),
        ],
        [
            Step(
                ["relation-set", "-r", "2", "--unit", "mysql/1", "host=db", "port=3306", "tmp=x"],
                j(lambda r: r["changed"] is True),
                has("changed"),
            ),
            Step(
                ["relation-set", "-r", "2", "--unit", "mysql/1", "--app", "user=wp"],
                j(lambda r: r["changed"] is True),
                has("changed"),
            ),
            Step(
                ["set-status", "-r", "2", "--unit", "wordpress/0", "joined", "--message", "up"],
                j(lambda r: r["id"] == 2 and r["status"] == "joined"),
                has("Relation 2 is joined: up"),
            ),
        ],
        [
            Step(
                ["relation-set", "-r", "2", "--unit", "mysql/1", "tmp=", "port=3306"],  # delete, keep
                j(lambda r: r["changed"] is True),
                has("changed"),
            ),
            Step(
                ["relation-set", "-r", "2", "--unit", "mysql/1", "--app", "user=wp"],  # the same again
                j(lambda r: r["changed"] is False),
                None,
            ),
        ],
        [
            Step(
                ["models"],
                j(lambda r: {"uuid", "name"} <= set(r[0]) and model in [m["name"] for m in r]),
                has(model),
            ),
            Step(
                ["relations"],
                j(
                    lambda r: (
                        [(x["id"], x["key"], x["interface"], x["scope"], x["status"], x["life"]) for x in r]
                        == [
                            (0, "mysql:cluster", "mysql-ha", "global", "joining", "alive"),
                            (1, "wordpress:loadbalancer", "reversenginx", "global", "joining", "alive"),
                            (2, "wordpress:db mysql:db", "mysql", "global", "joined", "alive"),
                            (
                                3,
                                "telegraf:juju-info wordpress:juju-info",
                                "juju-info",
                                "container",
                                "joined",
                                "alive",
                            ),
                        ]
                    )
                ),
                relations_table,
            ),
            Step(["relations", "mysql"], j(lambda r: [x["id"] for x in r] == [0, 2]), None),
            Step(
                ["show-relation", "2"],
                j(
                    lambda r: (
                        r["key"] == "wordpress:db mysql:db"
                        and r["life"] == "alive"
                        and r["status"] == "joined"
                        and sorted(r["units_in_scope"]) == ["mysql/1", "wordpress/0"]
                        and len(r["endpoints"]) == 2
                    )
                ),
                has("2 (wordpress:db mysql:db)", "Status     joined: up", "requirer", "provider", "In scope"),
            ),
            Step(["relation-ids", "wordpress:db"], j(lambda r: r == [2]), text_is("2")),
            Step(
                ["relation-list", "-r", "2"],
                j(lambda r: sorted(r) == ["mysql/1", "wordpress/0"]),
                has("mysql/1", "wordpress/0"),
            ),
            Step(["relation-list", "-r", "2", "--app", "mysql"], None, text_is("mysql/1")),
            # Relation 3 is container-scoped: both endpoints read so, and a unit lists its own
            # container only (wordpress/1's holds no one in scope; wordpress/0's holds itself).
            Step(
                ["show-relation", "3"],
                j(lambda r: [e["scope"] for e in r["endpoints"]] == ["container", "container"]),
                None,
            ),
            Step(["relation-list", "-r", "3", "--as", "wordpress/1"], j(lambda r: r == []), None),
            Step(["relation-list", "-r", "3", "--as", "wordpress/0"], None, text_is("wordpress/0")),
            Step(
                ["relation-get", "-r", "2", "mysql/1"],
                j(lambda r: r == {"host": "db", "port": "3306"}),
                text_is("host: db", "port: 3306"),
            ),
            Step(
                ["relation-get", "-r", "2", "--as", "wordpress/0", "mysql/1", "host"],
                j(lambda r: r == "db"),
                None,
            ),
            Step(
                ["relation-get", "-r", "2", "--app", "--as", "wordpress/0", "mysql"],
                None,
                text_is("user: wp"),
            ),
            Step(["applications"], None, has("mysql", "mysql/0 mysql/1", "telegraf")),
            Step(["endpoints", "mysql"], j(lambda r: "db" in [e["name"] for e in r]), None),
            Step(["unit-relations", "wordpress/0"], None, has("wordpress:db mysql:db")),
            Step(["access"], j(lambda r: {"model": model, "user": "guest", "level": "admin"} in r), None),
            Step(["watch", "--count", "5"], watched, has("     1  ", "model", "created", f"model={model}")),
            Step(["watch", "--from", "3", "--namespace", "relation_unit", "--count", "3"], scoped, None),
            Step(
                ["watch", "--relation", "3", "--count", "1"],
                None,
                has("relation", "created", "relation_id=3"),
            ),
        ],
        [
            Step(
                ["leave-scope", "2", "wordpress/0"],
                j(lambda r: r == {"id": 2, "unit": "wordpress/0", "in_scope": False, "created_units": []}),
                has("wordpress/0 left relation 2"),
            ),
            Step(["grant", "bob", "write"], None, has("bob has write access")),
        ],
        [
            Step(
                ["remove-relation", "wordpress", "mysql"],
                j(lambda r: r == {"id": 2, "life": "dying"}),
                has("Relation 2 is dying"),
            ),
            Step(
                ["remove-relation", "3"],
                j(lambda r: r == {"id": 3, "life": "dying"}),
                has("Relation 3 is dying"),
            ),
            Step(["revoke", "bob", "write"], None, has("bob has read access")),
        ],
        [
            Step(
                ["leave-scope", "2", "mysql/1"],
                j(lambda r: r["in_scope"] is False),
                has("mysql/1 left relation 2"),
            ),
            Step(
                ["remove-unit", "wordpress/2"],
                j(lambda r: r == {"name": "wordpress/2", "life": "dead"}),
                has("wordpress/2 is dead"),
            ),
        ],
        [
            Step(["relations", "mysql"], j(lambda r: [x["id"] for x in r] == [0]), None),
            Step(
                ["remove-application", "wordpress"],
                j(lambda r: r["life"] in ("dying", "dead")),
                has("wordpress is"),
            ),
        ],
    ]


async def _play(model: str, as_json: bool, env: dict[str, str]) -> list[str]:
    """Run the scenario in one output mode; -m for JSON, RELCTL_MODEL for readable output."""
    ran: list[str] = []
    for stage in stages(model):
        stage = [s for s in stage if (s.json if as_json else s.text) is not None]
        if as_json:
            runs = await asyncio.gather(*(relctl("-m", model, *s.args, "--json", env=env) for s in stage))
        else:
            runs = await asyncio.gather(*(relctl(*s.args, env={**env, "RELCTL_MODEL": model}) for s in stage))
        for step, run in zip(stage, runs, strict=True):
            assert run.code == 0, f"{run.args} exited {run.code}:\n{run.out}\n{run.err}"
            assert run.err == "", run.err
            check = step.json if as_json else step.text
            assert check is not None
            check(run)
            ran.append(step.args[0])
    return ran


async def test_every_command_in_both_output_modes(daemon: Any, amqp_url: str) -> None:
    env = {"RELATIOND_AMQP_URL": amqp_url}
    tag = uuid.uuid4().hex[:8]
    ran_json, ran_text = await asyncio.gather(_play(f"cj-{tag}", True, env), _play(f"ct-{tag}", False, env))
    table = {
        "add-model", "models", "deploy", "add-unit", "set-leader", "integrate", "remove-relation",
        "relations", "show-relation", "enter-scope", "leave-scope", "relation-ids", "relation-list",
        "relation-get", "relation-set", "set-status", "watch",
    }  # fmt: skip
    assert table <= set(ran_json) and table <= set(ran_text)
    # remove-model, on models of its own (in both modes).
    for as_json in (True, False):
        model = f"rm-{uuid.uuid4().hex[:8]}"
        assert (await relctl("--amqp-url", amqp_url, "add-model", model)).code == 0
        run = await relctl(
            "--amqp-url", amqp_url, "-m", model, "remove-model", *(["--json"] if as_json else [])
        )
        assert run.code == 0, run.err
        if as_json:
            assert run.json["name"] == model
        else:
            assert f"Model {model} removed" in run.out


async def test_domain_errors_exit_1_with_the_code(client: RelationClient, amqp_url: str) -> None:
    model = f"ce-{uuid.uuid4().hex[:8]}"
    g = ["--amqp-url", amqp_url, "-m", model]
    await client.create_model(model)
    await client.deploy(model, "mysql", charm("mysql"), units=2)
    await client.deploy(model, "wordpress", charm("wordpress"), units=1)
    await client.integrate(model, "wordpress", "mysql")
    cases = [
        (["show-relation", "99"], "RelationNotFound"),
        (["add-model", model], "ModelAlreadyExists"),
        (["integrate", "wordpress", "mysql"], "RelationAlreadyExists"),
        (["integrate", "wordpress:cache", "mysql"], "CompatibleEndpointsNotFound"),
        (["relation-get", "-r", "2", "--app", "--as", "mysql/1", "mysql"], "NotLeader"),
        (["relation-set", "-r", "2", "--unit", "mysql/1", "--app", "a=b"], "NotLeader"),
        (["set-status", "-r", "2", "--unit", "wordpress/0", "error"], "RelationStatusTransitionNotValid"),
        (["remove-relation", "0"], "CannotRemovePeerRelation"),
        (["relation-ids", "mysql:nope"], "RelationEndpointNotFound"),
        (["-m", "no-such-model", "relations"], "ModelNotFound"),
        (["-m", "no-such-model", "watch"], "ModelNotFound"),
    ]
    readable = cases[:3]  # the readable form of an error is the same for every code
    runs = await asyncio.gather(
        *(relctl(*g, *args, "--json") for args, _ in cases), *(relctl(*g, *args) for args, _ in readable)
    )
    for (args, code), run in zip(cases, runs[: len(cases)], strict=True):
        assert run.code == 1, (args, run.out, run.err)
        assert set(run.json) == {"error"} and run.json["error"]["code"] == code, (args, run.out)
        assert run.json["error"]["message"] and run.err == ""
    for (args, code), run in zip(readable, runs[len(cases) :], strict=True):
        assert run.code == 1, (args, run.out, run.err)
        assert run.out == "" and run.err.startswith(f"relctl: {code}: "), (args, run.err)


USAGE_ERRORS = [
    ["no-such-command"],
    ["relations"],  # no model
    ["-m", "x", "integrate", "wordpress"],  # missing argument
    ["-m", "x", "relation-set", "-r", "2", "--unit", "a/0", "novalue"],
    ["-m", "x", "set-status", "-r", "2", "--unit", "a/0", "sleeping"],
    ["-m", "x", "watch", "--namespace", "nope"],
    ["-m", "x", "show-relation", "not-an-id"],
    ["-m", "x", "deploy", "app", "--metadata", "/nonexistent/metadata.yaml"],
    ["-m", "x", "deploy", "app", "--metadata", str(ROOT / "pyproject.toml")],  # not YAML
    ["-m", "x", "deploy", "Bad_Name", "--metadata", str(CHARMS / "mysql.yaml")],  # refused locally
    ["-m", "x", "remove-relation", "a", "b", "c"],
]


async def test_usage_errors_exit_2(daemon: Any, amqp_url: str) -> None:
    # As a subprocess, a few; every case runs in-process below (the same main(), cheaper).
    runs = await asyncio.gather(
        relctl("--amqp-url", amqp_url, "relations", "--json"), relctl("--amqp-url", amqp_url, "nope")
    )
    assert [r.code for r in runs] == [2, 2]
    assert (
        runs[0].json["error"]["code"] == "UsageError" and "RELCTL_MODEL" in runs[0].json["error"]["message"]
    )
    assert runs[1].out == "" and "No such command" in runs[1].err


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=[" ".join(a) for a in USAGE_ERRORS])
def test_usage_error_in_both_modes(
    args: list[str],
    daemon: Any,
    amqp_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RELCTL_MODEL", raising=False)
    monkeypatch.setenv("RELATIOND_AMQP_URL", amqp_url)
    monkeypatch.setenv("COLUMNS", "200")
    assert main([*args, "--json"]) == 2
    out, _ = capsys.readouterr()
    assert json.loads(out)["error"]["code"] in ("UsageError", "InvalidCommand"), out
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err


async def test_unreachable_daemon_exits_3(idle_amqp: str) -> None:
    no_queue, no_broker = await asyncio.gather(
        relctl("--amqp-url", idle_amqp, "models", "--json"),
        relctl("--amqp-url", "amqp://guest:guest@127.0.0.1:1/", "--timeout", "2", "models"),
    )
    async with UnservedQueue(idle_amqp):
        no_reply = await relctl("--json", "--amqp-url", idle_amqp, "--timeout", "0.5", "-m", "x", "relations")
    for run in (no_queue, no_broker, no_reply):
        assert run.code == 3, (run.args, run.out, run.err)
    assert (
        no_queue.json["error"]["code"] == "DaemonUnreachable"
        and "no queue" in no_queue.json["error"]["message"]
    )
    assert (
        no_reply.json["error"]["code"] == "DaemonUnreachable"
        and "within 0.5s" in no_reply.json["error"]["message"]
    )
    assert no_broker.out == "" and "cannot connect to the broker" in no_broker.err


async def test_help_shows_every_option_with_an_example() -> None:
    top = await relctl("--help")
    assert top.code == 0
    for option in ("--amqp-url", "--model", "--json", "--timeout", "RELATIOND_AMQP_URL", "RELCTL_MODEL"):
        assert option in top.out


@pytest.mark.parametrize("command", sorted(typer.main.get_command(app).commands))  # type: ignore[attr-defined]
def test_every_command_help_has_an_example(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example: relctl" in out and command in out, out
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    for param in params:
        for name in param.opts:
            assert name in out, f"{command}: option {name} not in its help"


def _help(command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """``relctl COMMAND --help``, its words joined by single spaces (rich wraps the epilog)."""
    monkeypatch.setenv("COLUMNS", "200")
    assert main([command, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("command", "sends"),
    [
        ("integrate", [c.Integrate]),
        ("add-model", [c.CreateModel]),
        ("grant", [c.Grant]),
        ("set-status", [c.SetRelationStatus]),
        ("relation-get", [c.GetUnitSettings, c.GetApplicationSettings]),
    ],
)
def test_command_help_lists_declared_access_and_errors(
    command: str,
    sends: list[type[c.AnyCommand]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _help(command, capsys, monkeypatch)
    for cls in sends:
        assert f"Sends {cls.model_fields['type'].default}." in out, out
        assert c.access_help(cls) in out, out
        codes = c.declared_errors(cls)
        assert codes and all(code in out for code in codes), (codes, out)


def test_help_names_the_access_the_command_needs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "Needs write access to the model." in _help("integrate", capsys, monkeypatch)
    assert "Needs admin access to the model." in _help("grant", capsys, monkeypatch)
    assert "Any authenticated user may send it." in _help("add-model", capsys, monkeypatch)
    assert "RelationAlreadyExists" in _help("integrate", capsys, monkeypatch)


@pytest.mark.parametrize("command", sorted(typer.main.get_command(app).commands))  # type: ignore[attr-defined]
def test_no_command_help_lacks_its_declarations(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _help(command, capsys, monkeypatch)
    sent = [name for name in c.COMMAND_TYPES if f"Sends {name}." in out]
    assert sent, f"{command}: its help names no command it sends"
    for name in sent:
        cls = c.COMMAND_TYPES[name]
        assert f"Sends {name}. {c.access_help(cls)}" in out, out


@pytest.mark.parametrize(
    ("argv", "hoisted"),
    [
        (["models", "--json"], ["--json", "models"]),
        (["-m", "a", "relations", "--model", "b", "x"], ["-m", "a", "--model", "b", "relations", "x"]),
        (
            ["deploy", "app", "--metadata", "f", "--timeout=3"],
            ["--timeout=3", "deploy", "app", "--metadata", "f"],
        ),
        (["relation-set", "-r", "1", "--", "--json=x"], ["relation-set", "-r", "1", "--", "--json=x"]),
        (["--help"], ["--help"]),
    ],
)
def test_global_options_may_follow_the_command(argv: list[str], hoisted: list[str]) -> None:
    assert hoist_globals(argv) == hoisted


def test_the_hoisted_options_are_the_global_callbacks_own() -> None:
    """The argv rewriter reads the global options from the callback, so a new one follows too."""
    assert global_options() == {
        "--amqp-url": True,
        "-m": True,
        "--model": True,
        "--json": False,
        "--timeout": True,
        "--command-id": True,
    }


@pytest.mark.parametrize(
    "text", ["6f1c2d3e-0000-4000-8000-00000000000a\n", "6F1C2D3E-0000-4000-8000-00000000000A"]
)
def test_a_relation_uuid_with_a_trailing_newline_is_refused(text: str) -> None:
    """re.match with a `$` pattern let a UUID followed by a newline through to the daemon."""
    with pytest.raises(typer.BadParameter, match="neither a relation id nor a relation UUID"):
        relation_ref(text)
    assert relation_ref(text.strip().lower()) == text.strip().lower()
    assert relation_ref("12") == 12
