"""Settings bags: merge rules, the content hash, and how a bag is read and written.

A write merges: named keys are set, a key given "" is deleted, the others stay. The hash of the
whole bag is kept beside it; a write that leaves the hash as it was changes nothing and emits
nothing. What a write stores waits in the command's context until the command ends, when the
daemon stores it in the statement that writes the command's events (daemon/applier.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contracts import errors
from handlers.db import Connection

if TYPE_CHECKING:
    from handlers.context import Context


def merge(current: dict[str, str], update: dict[str, str]) -> dict[str, str]:
    """The bag after a merge write."""
    bag = dict(current)
    for key, value in update.items():
        if value == "":
            bag.pop(key, None)
        else:
            bag[key] = value
    return bag


def bag_hash(bag: dict[str, str]) -> str:
    """SHA-256 of the bag's canonical JSON: equal bags, equal hashes, whatever the order."""
    canonical = json.dumps(bag, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def bag_size(bag: dict[str, str]) -> int:
    return sum(
        len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
        for k, v in bag.items()
    )


@dataclass(frozen=True, slots=True)
class Write:
    changed: bool
    sha256: str


@dataclass(frozen=True, slots=True)
class Stored:
    """A bag as read, with the hash stored beside it (None: none stored)."""

    settings: dict[str, str]
    sha256: str | None

    @classmethod
    def from_columns(cls, keys: list[str] | None, values: list[str] | None, sha256: str | None) -> Stored:
        return cls(dict(sorted(zip(keys or [], values or [], strict=True))), sha256)


@dataclass(frozen=True, slots=True)
class Bag:
    """The two tables of one kind of bag; identifiers are constants, never input."""

    settings: str
    hashes: str
    owner: str

    def read_sql(self) -> str:
        return f"SELECT key, value FROM {self.settings} WHERE model_uuid = $1 AND {self.owner} = $2"

    def read_with_hash_sql(self, owner: str = "$2", model: str = "$1") -> str:
        """The bag of ``owner`` in ``model`` (SQL expressions) as two arrays (NULL when empty)
        and its stored hash (NULL: none stored), in one row whatever the owner."""
        return (
            "SELECT array_agg(s.key) AS keys, array_agg(s.value) AS vals, "
            f"(SELECT h.sha256 FROM {self.hashes} h "
            f"WHERE h.model_uuid = {model} AND h.{self.owner} = {owner}) AS sha256 "
            f"FROM {self.settings} s WHERE s.model_uuid = {model} AND s.{self.owner} = {owner}"
        )

    def store_one_sql(self, first: int) -> str:
        """CTEs that store one bag of this kind from the six parameters of :func:`store_args`
        (model, owner, keys deleted, keys and values upserted, hash), the first at ``first``."""
        m, o = f"${first}::uuid", f"${first + 1}::uuid"
        return (
            f"{self.settings}_removed AS (DELETE FROM {self.settings} "
            f"WHERE model_uuid = {m} AND {self.owner} = {o} AND key = ANY(${first + 2}::text[])), "
            f"{self.settings}_upserted AS ("
            f"INSERT INTO {self.settings} (model_uuid, {self.owner}, key, value) "
            f"SELECT {m}, {o}, k, v FROM unnest(${first + 3}::text[], ${first + 4}::text[]) AS t(k, v) "
            f"ON CONFLICT (model_uuid, {self.owner}, key) DO UPDATE SET value = EXCLUDED.value), "
            f"{self.hashes}_stored AS ("
            f"INSERT INTO {self.hashes} (model_uuid, {self.owner}, sha256) VALUES ({m}, {o}, ${first + 5}) "
            f"ON CONFLICT (model_uuid, {self.owner}) DO UPDATE SET sha256 = EXCLUDED.sha256)"
        )

    def store_each_sql(self, first: int) -> str:
        """CTEs that store this kind's bags among the rows of :func:`store_args`' nine arrays,
        the first at parameter ``first``."""
        keys = (
            f"unnest(${first}::text[], ${first + 1}::uuid[], ${first + 2}::uuid[], "
            f"${first + 3}::text[], ${first + 4}::text[]) AS k(bag, m, o, key, value)"
        )
        hashes = (
            f"unnest(${first + 5}::text[], ${first + 6}::uuid[], ${first + 7}::uuid[], "
            f"${first + 8}::text[]) AS h(bag, m, o, sha256)"
        )
        mine = f"bag = '{self.settings}'"
        return (
            f"{self.settings}_removed AS (DELETE FROM {self.settings} s USING {keys} "
            f"WHERE k.{mine} AND k.value IS NULL "
            f"AND s.model_uuid = k.m AND s.{self.owner} = k.o AND s.key = k.key), "
            f"{self.settings}_upserted AS ("
            f"INSERT INTO {self.settings} (model_uuid, {self.owner}, key, value) "
            f"SELECT k.m, k.o, k.key, k.value FROM {keys} WHERE k.{mine} AND k.value IS NOT NULL "
            f"ON CONFLICT (model_uuid, {self.owner}, key) DO UPDATE SET value = EXCLUDED.value), "
            f"{self.hashes}_stored AS (INSERT INTO {self.hashes} (model_uuid, {self.owner}, sha256) "
            f"SELECT h.m, h.o, h.sha256 FROM {hashes} WHERE h.{mine} "
            f"ON CONFLICT (model_uuid, {self.owner}) DO UPDATE SET sha256 = EXCLUDED.sha256)"
        )


UNIT_BAG = Bag("relation_unit_setting", "relation_unit_settings_hash", "relation_unit_uuid")
APPLICATION_BAG = Bag(
    "relation_application_setting", "relation_application_settings_hash", "relation_endpoint_uuid"
)


async def read(conn: Connection, bag: Bag, model_uuid: str, owner_uuid: str) -> dict[str, str]:
    rows = await conn.fetch(bag.read_sql(), model_uuid, owner_uuid)
    return {r["key"]: r["value"] for r in sorted(rows, key=lambda r: r["key"])}


@dataclass(frozen=True, slots=True)
class Store:
    """A bag's write, kept until its command ends: the daemon stores it with the command's events,
    a round trip less per write."""

    bag: Bag
    model_uuid: str
    owner_uuid: str
    removed: list[str]
    upserted: dict[str, str]
    sha256: str


BAGS = (UNIT_BAG, APPLICATION_BAG)
# How some stores are written: none; one bag of a kind, with scalar parameters (the common case:
# a settings write or enter scope writes one bag); or several, set-wise. Each form is its own
# statement.
EACH = "each"
FORMS: tuple[Bag | str | None, ...] = (None, *BAGS, EACH)


def form(stores: Sequence[Store]) -> Bag | str | None:
    """How ``stores`` are written, one of FORMS."""
    if not stores:
        return None
    return stores[0].bag if len(stores) == 1 else EACH


def store_ctes(first: int, how: Bag | str | None) -> str:
    """CTEs that store bags written in the form ``how`` (not None) from :func:`store_args`, the
    first parameter at ``first``."""
    if isinstance(how, Bag):
        return how.store_one_sql(first)
    return ", ".join(bag.store_each_sql(first) for bag in BAGS)


def store_args(stores: Sequence[Store]) -> list[Any]:
    """The parameters of :func:`store_ctes` for ``stores`` (at most one per bag owner: the upserts
    could not touch the same row twice). One store: model, owner, keys deleted, keys and values
    upserted, hash. Several: keys (bag, model, owner, key, value; a NULL value deletes the key),
    then hashes (bag, model, owner, hash), as arrays; ``bag`` is the settings table a row is for."""
    if len(stores) == 1:
        (s,) = stores
        return [s.model_uuid, s.owner_uuid, s.removed, list(s.upserted), list(s.upserted.values()), s.sha256]
    keys: list[tuple[str, str, str, str, str | None]] = []
    for s in stores:
        keys += [(s.bag.settings, s.model_uuid, s.owner_uuid, k, None) for k in s.removed]
        keys += [(s.bag.settings, s.model_uuid, s.owner_uuid, k, v) for k, v in s.upserted.items()]
    hashes = [(s.bag.settings, s.model_uuid, s.owner_uuid, s.sha256) for s in stores]
    return [*_columns(keys, 5), *_columns(hashes, 4)]


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


# Stores on their own, for a command that must read what an earlier one wrote.
_STORE: dict[Bag | str | None, str] = {
    how: f"WITH {store_ctes(1, how)} SELECT 1" for how in FORMS if how is not None
}


async def store(conn: Connection, stores: Sequence[Store]) -> None:
    """Write ``stores`` now (nothing if there are none)."""
    if stores:
        await conn.execute(_STORE[form(stores)], *store_args(stores))


async def write(
    ctx: Context,
    bag: Bag,
    model_uuid: str,
    owner_uuid: str,
    update: dict[str, str],
    *,
    replace: bool = False,
    new_owner: bool = False,
    read: Stored | None = None,
    what: str = "settings",
) -> Write:
    """Merge ``update`` into the bag (or replace the bag); store it only if its hash changes.

    The store waits in ``ctx.bag_stores`` until the command ends (the daemon writes it with the
    command's events), so nothing in the command reads the bag back from the database after this.
    ``new_owner``: the owner was created in this transaction, so its bag is empty and unhashed.
    ``read``: the bag as read already in this transaction (unit_in_relation.find reads it).
    Raises PayloadTooLarge when the bag would hold more than the limit of ``ctx``.
    """
    if any(s.bag == bag and s.owner_uuid == owner_uuid for s in ctx.bag_stores):
        # The same bag twice in one command: what was read before the first write is stale.
        await store(ctx.conn, ctx.bag_stores)
        ctx.bag_stores.clear()
        read, new_owner = None, False
    if new_owner:
        read = Stored({}, None)
    elif read is None:
        row = await ctx.conn.fetchrow(bag.read_with_hash_sql(), model_uuid, owner_uuid)
        read = Stored.from_columns(row["keys"], row["vals"], row["sha256"])
    current = read.settings
    old_hash = read.sha256 or bag_hash(current)
    new = merge({} if replace else current, update)
    new_hash = bag_hash(new)
    if new_hash == old_hash:
        return Write(False, new_hash)
    size = bag_size(new)
    max_bytes = ctx.limits.max_bag_bytes
    if size > max_bytes:
        raise errors.PayloadTooLarge(
            f"{what} would hold {size} bytes; the limit is {max_bytes}",
            size=size,
            limit=max_bytes,
        )
    removed = [k for k in current if k not in new]
    upserted = {k: v for k, v in new.items() if current.get(k) != v}
    ctx.bag_stores.append(Store(bag, model_uuid, owner_uuid, removed, upserted, new_hash))
    return Write(True, new_hash)
