"""Parsing relctl's own argument forms: relation references, KEY=VALUE settings, charm metadata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from contracts.names import is_uuid

RelationOpt = Annotated[str, typer.Option("-r", "--relation", help="Relation id or UUID. Example: -r 2")]


def relation(text: str) -> int | str:
    """A relation named by id (digits) or UUID."""
    if text.isdigit():
        return int(text)
    if is_uuid(text):
        return text
    raise typer.BadParameter(f"{text!r} is neither a relation id nor a relation UUID", param_hint="relation")


def pairs(items: Sequence[str]) -> dict[str, str]:
    """KEY=VALUE arguments as a settings write (an empty VALUE deletes KEY)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="settings")
        out[key] = value
    return out


def charm(path: Path) -> dict[str, Any]:
    """A charm's metadata.yaml / charmcraft.yaml as a mapping."""
    import yaml  # only deploy needs it; every other command starts faster without

    try:
        meta = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--metadata") from None
    if not isinstance(meta, dict):
        raise typer.BadParameter(f"{path} is not a YAML mapping", param_hint="--metadata")
    return meta
