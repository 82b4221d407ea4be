"""Settings bag rules (handlers/settings_bag.py): merge, hash, size; no database."""

from __future__ import annotations

import re

from daemon.consumer import CommandConsumer
from daemon.settings import Settings
from handlers.context import Limits
from handlers.settings_bag import bag_hash, bag_size, merge


def test_merge_sets_named_keys_and_keeps_the_others() -> None:
    assert merge({"a": "1", "b": "2"}, {"b": "3", "c": "4"}) == {"a": "1", "b": "3", "c": "4"}


def test_merge_deletes_a_key_given_an_empty_value() -> None:
    assert merge({"a": "1", "b": "2"}, {"a": ""}) == {"b": "2"}


def test_merge_deleting_an_absent_key_changes_nothing() -> None:
    assert merge({"a": "1"}, {"zzz": ""}) == {"a": "1"}


def test_merge_does_not_modify_the_current_bag() -> None:
    current = {"a": "1"}

    merge(current, {"a": "", "b": "2"})

    assert current == {"a": "1"}


def test_merge_of_nothing_is_the_same_bag() -> None:
    assert merge({"a": "1"}, {}) == {"a": "1"}


def test_hash_is_a_sha256_hex_digest() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", bag_hash({"a": "1"}))


def test_hash_does_not_depend_on_key_order() -> None:
    assert bag_hash({"a": "1", "b": "2"}) == bag_hash({"b": "2", "a": "1"})


def test_hash_changes_when_a_value_changes() -> None:
    assert bag_hash({"a": "1"}) != bag_hash({"a": "2"})


def test_hash_tells_key_and_value_boundaries_apart() -> None:
    assert bag_hash({"ab": "c"}) != bag_hash({"a": "bc"})
    assert bag_hash({"a": "b", "c": "d"}) != bag_hash({"a": "b,c:d"})


def test_hash_of_an_empty_bag_is_stable() -> None:
    assert bag_hash({}) == bag_hash({})
    assert bag_hash({}) != bag_hash({"a": "1"})


def test_hash_of_a_bag_after_a_no_op_merge_is_unchanged() -> None:
    bag = {"a": "1", "b": "2"}

    assert bag_hash(merge(bag, {"a": "1", "missing": ""})) == bag_hash(bag)


def test_size_counts_keys_and_values_in_utf8_bytes() -> None:
    assert bag_size({"ab": "cde"}) == 5
    assert bag_size({"é": "€"}) == 2 + 3


def test_the_daemon_applies_commands_within_its_configured_bag_limit() -> None:
    consumer = CommandConsumer(Settings(max_bag_bytes=100), pool=None, broker=None)  # type: ignore[arg-type]
    assert consumer.limits == Limits(max_bag_bytes=100)
