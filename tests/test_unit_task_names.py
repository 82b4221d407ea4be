"""Every asyncio task the daemon and the client start is named after what it does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("daemon", "client") for p in (ROOT / d).rglob("*.py"))


def _unnamed_tasks(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "create_task" and not any(k.arg == "name" for k in node.keywords):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_task_is_named(path: Path) -> None:
    assert _unnamed_tasks(path) == []


def test_an_unnamed_task_is_found(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("import asyncio\nasync def f():\n    asyncio.create_task(f())\n")
    assert _unnamed_tasks(source) == [3]
