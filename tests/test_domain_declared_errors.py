"""The check that handlers raise only the error codes their commands declare can fail."""

from __future__ import annotations

import pytest

from contracts.commands import SetLeader
from contracts.errors import ErrorCode
from tests.declared_errors import recording
from tests.domain import CommandFailed, Domain


async def test_a_code_the_command_does_not_declare_is_recorded(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SetLeader, "raises", SetLeader.raises - {ErrorCode.UnitNotFound})
    with recording() as undeclared:
        with pytest.raises(CommandFailed, match="UnitNotFound"):
            await domain.run({"type": "set_leader", "unit": "nobody/0"})
    assert undeclared == {"set_leader": {"UnitNotFound"}}


async def test_a_declared_code_is_not_recorded(domain: Domain) -> None:
    with recording() as undeclared:
        with pytest.raises(CommandFailed, match="UnitNotFound"):
            await domain.run({"type": "set_leader", "unit": "nobody/0"})
    assert undeclared == {}
