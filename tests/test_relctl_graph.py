"""`relctl graph` draws the walkthrough's model (docs/walkthrough.md) through the running daemon.

The model is built as the walkthrough builds it (mysql and wordpress with two units each, the
subordinate telegraf, mariadb; relations 2 and 3 with units in scope, relation 2 joined), then
relctl runs as a user runs it. The DOT is read back by Graphviz itself (``dot -Tjson``), so the
checks are on the graph Graphviz sees, not on text fragments; the SVG is parsed as XML.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from client import RelationClient
from client.graph import to_dot
from contracts.replies import ApplicationInfo
from tests.test_relctl import relctl

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "client" / "demo_charms"

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot not installed (Debian package graphviz: scripts/ensure-tools)",
)


async def walkthrough_model(client: RelationClient) -> str:
    model = f"blog-{uuid.uuid4().hex[:8]}"
    meta = {
        name: yaml.safe_load((DEMO / f"{name}.yaml").read_text())
        for name in ("mysql", "wordpress", "telegraf")
    }
    await client.create_model(model)
    await client.deploy(model, "mysql", meta["mysql"], units=2)
    await client.deploy(model, "wordpress", meta["wordpress"], units=2)
    await client.deploy(model, "telegraf", meta["telegraf"])
    await client.integrate(model, "wordpress", "mysql")
    await client.integrate(model, "telegraf", "wordpress")
    await client.deploy(model, "mariadb", meta["mysql"])
    await client.enter_scope(model, 2, "mysql/0")
    await client.enter_scope(model, 2, "wordpress/0", {"hostname": "wp-0"})
    await client.enter_scope(model, 3, "wordpress/0")
    await client.set_relation_status(model, 2, "wordpress/0", "joined", "database ready")
    return model


def _graphviz_json(dot: str) -> dict[str, Any]:
    done = subprocess.run(
        ["dot", "-Tjson"], input=dot, capture_output=True, text=True, timeout=60, check=True
    )
    return dict(json.loads(done.stdout))


@needs_dot
async def test_graph_of_the_walkthrough_model_as_dot_and_svg(
    daemon: Any, client: RelationClient, amqp_url: str, tmp_path: Path
) -> None:
    model = await walkthrough_model(client)
    g = ["--amqp-url", amqp_url, "-m", model]
    svg_path = tmp_path / "blog.svg"
    run, svg_run, json_run = await asyncio.gather(
        relctl(*g, "graph"),
        relctl(*g, "graph", "--format", "svg", "-o", str(svg_path)),
        relctl(*g, "graph", "--json"),
    )
    assert run.code == 0, run.err

    drawn = _graphviz_json(run.out)
    assert drawn["name"] == model and drawn["directed"] is False
    nodes = {o["name"]: o for o in drawn["objects"]}
    assert set(nodes) == {"mysql", "wordpress", "telegraf", "mariadb"}
    assert "dashed" in nodes["telegraf"]["style"] and "dashed" not in nodes["mysql"]["style"]
    assert "subordinate" in nodes["telegraf"]["label"] and "principal" in nodes["wordpress"]["label"]
    assert "mysql/0*" in nodes["mysql"]["label"] and "mysql/1" in nodes["mysql"]["label"]
    assert "telegraf/0*" in nodes["telegraf"]["label"]  # created beside wordpress/0, its leader

    names = [o["name"] for o in drawn["objects"]]
    edges = {e["id"]: e for e in drawn["edges"]}
    assert set(edges) == {f"relation-{i}" for i in range(5)}  # 0, 1, 4 peers; 2 and 3
    db = edges["relation-2"]
    assert {names[db["tail"]], names[db["head"]]} == {"wordpress", "mysql"}
    assert (db["taillabel"], db["headlabel"]) == ("db", "db")
    assert db["label"] == "#2 mysql\\njoined: database ready\\nin scope: wordpress/0, mysql/0"
    assert db["color"] == "#2e7d32" and db["style"] == "solid"
    sub = edges["relation-3"]
    assert {names[sub["tail"]], names[sub["head"]]} == {"telegraf", "wordpress"}
    assert sub["label"].startswith("#3 juju-info (container)\\njoined") and sub["style"] == "bold"
    assert "in scope: " in sub["label"] and "wordpress/0" in sub["label"]
    peer = edges["relation-0"]
    assert names[peer["tail"]] == names[peer["head"]] == "mysql"
    assert peer["label"].startswith("#0 mysql-ha (peer)") and peer["headlabel"] == "cluster"

    assert svg_run.code == 0 and svg_run.out == "", svg_run.err
    root = ET.fromstring(svg_path.read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    assert {f"relation-{i}" for i in range(5)} <= ids
    texts = {el.text for el in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"mysql", "wordpress", "telegraf", "mariadb", "joined: database ready"} <= texts

    assert json_run.code == 0 and json_run.json["format"] == "dot"
    assert json_run.json["graph"] == run.out


async def test_graph_refuses_a_bad_format_a_missing_model_and_svg_without_graphviz(
    daemon: Any, amqp_url: str, tmp_path: Path
) -> None:
    """Exit 2 for an unknown format and for SVG without Graphviz's dot on PATH (refused before
    anything is sent, naming the package); exit 1 with the code for a model that does not exist."""
    python_only = tmp_path / "bin"
    python_only.mkdir()
    g = ["--amqp-url", amqp_url]
    bad, missing, no_dot = await asyncio.gather(
        relctl(*g, "-m", "x", "graph", "--format", "png"),
        relctl(*g, "-m", f"none-{uuid.uuid4().hex[:8]}", "graph", "--json"),
        relctl(*g, "-m", "x", "graph", "--format", "svg", "--json", env={"PATH": str(python_only)}),
    )
    assert bad.code == 2 and "'png' is not one of dot, svg" in bad.err
    assert missing.code == 1 and missing.json["error"]["code"] == "ModelNotFound"
    assert no_dot.code == 2, no_dot.err
    assert no_dot.json["error"]["code"] == "GraphvizUnavailable"
    assert "apt-get install graphviz" in no_dot.json["error"]["message"]


def test_names_with_quotes_and_markup_are_escaped() -> None:
    app = ApplicationInfo(name='we"ird<b>', life="dying", subordinate=False, leader=None, units=[])
    dot = to_dot('m"1', [app], [])
    assert 'graph "m\\"1" {' in dot and '"we\\"ird<b>" [' in dot
    assert "<B>we&quot;ird&lt;b&gt;</B>" in dot and "principal, dying" in dot
    if shutil.which("dot"):
        assert _graphviz_json(dot)["objects"][0]["name"] == 'we"ird<b>'
