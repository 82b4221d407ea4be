"""What a handler acts with: one transaction's connection, acting user and model row."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from handlers import lookup
from handlers.db import Connection
from handlers.rows import Model, Row
from handlers.settings_bag import Store


@dataclass(frozen=True, slots=True)
class Actor:
    """The user a command acts for. A superuser (or the system itself) may do everything."""

    user: str | None
    superuser: bool = False

    @classmethod
    def system(cls) -> Actor:
        return cls(None, superuser=True)

    def __str__(self) -> str:
        return self.user or "(system)"


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds the daemon's settings put on what a command may store."""

    max_bag_bytes: int = 256 * 1024  # a settings bag after a write: keys plus values, UTF-8 bytes


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class Context:
    """One command's transaction: its connection, who acts, the configured limits and the model
    row already read.

    The applier reads (and for a write, locks) the command's model while checking access; the
    handler's :meth:`model` then returns that row without asking the database again.
    """

    conn: Connection
    actor: Actor
    limits: Limits = DEFAULT_LIMITS
    model_ref: str | None = None
    model_row: Model | None = None
    model_locked: bool = False
    # What a batch read for this command before its handler ran (unit_in_relation.find_many),
    # by (model UUID, what was asked); each answer is taken once.
    read_ahead: dict[Hashable, Any] = field(default_factory=dict)
    # Settings bags written by the handler, stored by the daemon when the command ends.
    bag_stores: list[Store] = field(default_factory=list)

    def knows_model(self, ref: str, row: Row, *, locked: bool) -> None:
        """Keep the model row read as ``ref`` in this transaction (locked, with ``locked``)."""
        self.model_ref, self.model_row, self.model_locked = ref, Model.from_record(row), locked

    async def model(self, ref: str, *, lock: bool) -> Model:
        """The model named by name or UUID; with ``lock``, serialise this model's writers on it.

        Raises ModelNotFound.
        """
        if self.model_row is not None and ref == self.model_ref and (self.model_locked or not lock):
            return self.model_row
        model = await lookup.model(self.conn, ref, lock=lock)
        self.model_ref, self.model_row, self.model_locked = ref, model, lock
        return model
