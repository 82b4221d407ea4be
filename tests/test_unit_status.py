"""Relation status transitions (handlers/status.transition): SPEC.md's table, no database.

The table below is written from SPEC.md, not imported from the handler: setting the current status
again is always accepted; broken from anything; suspending not from broken or suspended; joining
not from broken or joined; joined and suspended not from broken; error from anything, with a
message.
"""

from __future__ import annotations

import itertools

import pytest

from contracts import errors
from contracts.commands import RelationStatus as S
from handlers.status import transition

REFUSED = {
    (S.broken, S.suspending),
    (S.suspended, S.suspending),
    (S.broken, S.joining),
    (S.joined, S.joining),
    (S.broken, S.joined),
    (S.broken, S.suspended),
}
ALL_PAIRS = list(itertools.product(S, S))


@pytest.mark.parametrize(("current", "new"), [p for p in ALL_PAIRS if p not in REFUSED])
def test_allowed_transition_stores_the_new_message(current: S, new: S) -> None:
    assert transition(current, "before", new, "after") == "after"


@pytest.mark.parametrize(("current", "new"), sorted(REFUSED))
def test_refused_transition_raises(current: S, new: S) -> None:
    with pytest.raises(errors.RelationStatusTransitionNotValid) as err:
        transition(current, "", new, "a message")

    assert err.value.details == {"current": current.value, "status": new.value}


@pytest.mark.parametrize("current", [s for s in S if s != S.error])
def test_error_needs_a_message(current: S) -> None:
    with pytest.raises(errors.RelationStatusTransitionNotValid):
        transition(current, "", S.error, "")


@pytest.mark.parametrize("status", list(S))
def test_setting_the_current_status_again_is_always_accepted(status: S) -> None:
    assert transition(status, "old", status, "") == ""
    assert transition(status, "old", status, "new") == "new"


def test_suspended_without_message_after_suspending_keeps_the_suspending_message() -> None:
    assert transition(S.suspending, "draining", S.suspended, "") == "draining"


def test_suspended_with_a_message_after_suspending_takes_the_new_message() -> None:
    assert transition(S.suspending, "draining", S.suspended, "done") == "done"


def test_suspended_without_message_from_joined_has_no_message() -> None:
    assert transition(S.joined, "up", S.suspended, "") == ""
