"""Settings bags: merge rules, the content hash, and how a bag is read and written.

A write merges: named keys are set, a key given "" is deleted, the others stay. The hash of the
whole bag is kept beside it; a write that leaves the hash as it was changes nothing and emits
nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from contracts import errors
from handlers.db import Connection


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

    def store_sql(self) -> str:
        """Delete keys $3, upsert keys $4 with values $5 and store hash $6, in one statement."""
        return (
            f"WITH removed AS (DELETE FROM {self.settings} "
            f"WHERE model_uuid = $1 AND {self.owner} = $2 AND key = ANY($3::text[])), "
            f"upserted AS (INSERT INTO {self.settings} (model_uuid, {self.owner}, key, value) "
            "SELECT $1, $2, k, v FROM unnest($4::text[], $5::text[]) AS t(k, v) "
            f"ON CONFLICT (model_uuid, {self.owner}, key) DO UPDATE SET value = EXCLUDED.value) "
            f"INSERT INTO {self.hashes} (model_uuid, {self.owner}, sha256) VALUES ($1, $2, $6) "
            f"ON CONFLICT (model_uuid, {self.owner}) DO UPDATE SET sha256 = EXCLUDED.sha256"
        )


UNIT_BAG = Bag("relation_unit_setting", "relation_unit_settings_hash", "relation_unit_uuid")
APPLICATION_BAG = Bag(
    "relation_application_setting", "relation_application_settings_hash", "relation_endpoint_uuid"
)


async def read(conn: Connection, bag: Bag, model_uuid: str, owner_uuid: str) -> dict[str, str]:
    rows = await conn.fetch(bag.read_sql(), model_uuid, owner_uuid)
    return {r["key"]: r["value"] for r in sorted(rows, key=lambda r: r["key"])}


async def write(
    conn: Connection,
    bag: Bag,
    model_uuid: str,
    owner_uuid: str,
    update: dict[str, str],
    *,
    max_bytes: int,
    replace: bool = False,
    new_owner: bool = False,
    read: Stored | None = None,
    what: str = "settings",
) -> Write:
    """Merge ``update`` into the bag (or replace the bag); store it only if its hash changes.

    ``new_owner``: the owner was created in this transaction, so its bag is empty and unhashed.
    ``read``: the bag as read already in this transaction (unit_in_relation.find reads it).
    Raises PayloadTooLarge when the bag would hold more than ``max_bytes``.
    """
    if new_owner:
        read = Stored({}, None)
    elif read is None:
        row = await conn.fetchrow(bag.read_with_hash_sql(), model_uuid, owner_uuid)
        read = Stored.from_columns(row["keys"], row["vals"], row["sha256"])
    current = read.settings
    old_hash = read.sha256 or bag_hash(current)
    new = merge({} if replace else current, update)
    new_hash = bag_hash(new)
    if new_hash == old_hash:
        return Write(False, new_hash)
    size = bag_size(new)
    if size > max_bytes:
        raise errors.PayloadTooLarge(
            f"{what} would hold {size} bytes; the limit is {max_bytes}",
            size=size,
            limit=max_bytes,
        )
    removed = [k for k in current if k not in new]
    upsert = {k: v for k, v in new.items() if current.get(k) != v}
    await conn.execute(
        bag.store_sql(), model_uuid, owner_uuid, removed, list(upsert), list(upsert.values()), new_hash
    )
    return Write(True, new_hash)
