"""What each command's ok reply carries in ``result``, by command type.

Derived from each command's declaration (``contracts.commands.declare``), shared by the client
(to parse replies into typed results) and the AsyncAPI document (to give every reply its schema).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from contracts.commands import COMMAND_TYPES

RESULT_TYPES: dict[str, Any] = {name: cls.result_type for name, cls in COMMAND_TYPES.items()}

RESULT_ADAPTERS: dict[str, TypeAdapter[Any]] = {name: TypeAdapter(t) for name, t in RESULT_TYPES.items()}
