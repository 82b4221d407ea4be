"""A picture of a model, as the Juju dashboard's relations view draws it: Graphviz DOT or SVG.

Each application is a node (principal: solid box; subordinate: dashed box), listing its units with
the leader starred. Each relation is an edge between its applications (a peer relation loops back
to its one application) labelled with its id, interface, status, life when not alive, and the units
in scope; each end names the endpoint. Colour follows status: joined green, joining orange,
broken red, suspended grey. SVG is rendered by Graphviz's ``dot`` (Debian package graphviz).
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Sequence

from client.rpc import RelationClient
from contracts.replies import ApplicationInfo, RelationInfo

FORMATS = ("dot", "svg")

STATUS_COLOURS = {
    "joined": "#2e7d32",
    "joining": "#ef6c00",
    "broken": "#c62828",
    "suspending": "#757575",
    "suspended": "#757575",
    "error": "#c62828",
}


class GraphvizUnavailable(RuntimeError):
    """SVG was asked for and Graphviz's ``dot`` is not installed."""


class GraphvizFailed(RuntimeError):
    """``dot`` refused the graph or ended with an error."""


async def fetch(client: RelationClient, model: str) -> tuple[list[ApplicationInfo], list[RelationInfo]]:
    """The model's applications and relations (with units in scope), as the picture needs them."""
    return await client.list_applications(model), await client.list_relations(model)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node_label(app: ApplicationInfo) -> str:
    """An HTML-like label: the name in bold, its kind and life, one unit a line (leader starred)."""
    kind = "subordinate" if app.subordinate else "principal"
    if app.life != "alive":
        kind += f", {app.life}"
    rows = [f"<B>{html.escape(app.name)}</B>", f'<FONT POINT-SIZE="10">{kind}</FONT>']
    for unit in app.units:
        star = "*" if unit == app.leader else ""
        rows.append(f'<FONT POINT-SIZE="10">{html.escape(unit)}{star}</FONT>')
    if not app.units:
        rows.append('<FONT POINT-SIZE="10">no units</FONT>')
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


def _edge_label(rel: RelationInfo) -> str:
    kind = {"container": "container", "global": ""}.get(rel.scope.value, rel.scope.value)
    peer = len(rel.endpoints) == 1
    title = f"#{rel.id} {rel.interface}" + (" (peer)" if peer else "") + (f" ({kind})" if kind else "")
    status = rel.status + (f": {rel.message}" if rel.message else "")
    lines = [title, status if rel.life == "alive" else f"{status}, {rel.life}"]
    if rel.units_in_scope:
        lines.append("in scope: " + ", ".join(rel.units_in_scope))
    return "\n".join(lines)


def to_dot(model: str, applications: Sequence[ApplicationInfo], relations: Sequence[RelationInfo]) -> str:
    """The model as a DOT graph (undirected: a relation has two ends, no direction)."""
    out = [
        f"graph {_quote(model)} {{",
        f"  label={_quote(f'model {model}')}; labelloc=t; fontname=Helvetica; rankdir=LR; nodesep=0.6;",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fillcolor="#e3f2fd",'
        ' color="#1565c0"];',
        "  edge [fontname=Helvetica, fontsize=10, labelfontsize=9];",
    ]
    for app in sorted(applications, key=lambda a: a.name):
        attrs = [f"label={_node_label(app)}"]
        if app.subordinate:
            attrs += ['style="rounded,dashed,filled"', 'fillcolor="#f3e5f5"', 'color="#6a1b9a"']
        if app.life != "alive":
            attrs.append('color="#c62828"')
        out.append(f"  {_quote(app.name)} [{', '.join(attrs)}];")
    for rel in sorted(relations, key=lambda r: r.id):
        ends = rel.endpoints
        tail, head = ends[0], ends[-1]
        colour = STATUS_COLOURS.get(rel.status, "#424242")
        style = "dashed" if rel.life != "alive" else ("bold" if rel.scope.value == "container" else "solid")
        attrs = [
            f"label={_quote(_edge_label(rel))}",
            f"color={_quote(colour)}",
            f"fontcolor={_quote(colour)}",
            f"style={style}",
            f"id={_quote(f'relation-{rel.id}')}",
        ]
        if len(ends) == 2:
            attrs += [f"taillabel={_quote(tail.name)}", f"headlabel={_quote(head.name)}"]
        else:
            attrs.append(f"headlabel={_quote(head.name)}")
        out.append(f"  {_quote(tail.application)} -- {_quote(head.application)} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def dot_binary() -> str:
    """The path of Graphviz's ``dot``; GraphvizUnavailable naming the package when it is missing."""
    found = shutil.which("dot")
    if found is None:
        raise GraphvizUnavailable(
            "SVG needs Graphviz's `dot`, which is not installed: apt-get install graphviz "
            "(or use --format dot and render it elsewhere)"
        )
    return found


def render(dot: str, fmt: str, timeout: float = 60) -> str:
    """``dot`` text in the asked format: as is for dot, rendered by Graphviz for svg."""
    if fmt == "dot":
        return dot
    done = subprocess.run(
        [dot_binary(), f"-T{fmt}"], input=dot, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise GraphvizFailed(f"dot -T{fmt} failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return done.stdout
