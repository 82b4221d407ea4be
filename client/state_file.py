"""A unit agent's hook state on disk: JSON, replaced atomically so a crash leaves the old or the new
state, never half of one (write a temporary file beside it, fsync, rename, fsync the directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from client.hooks import StateError


def read_state(path: Path) -> dict[str, Any] | None:
    """The state saved at ``path``; None when there is none yet. Raises StateError."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path} is not a hook state (not JSON: {exc})") from None
    if not isinstance(state, dict):
        raise StateError(f"{path} is not a hook state (not a JSON object)")
    return state


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace ``path`` with ``state``, atomically and durably."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(state, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
