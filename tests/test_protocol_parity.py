"""Juju parity, round two, through the broker: malformed endpoint identifiers, departed units'
settings, per-container reads and container-scoped endpoints, as a client sees them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contracts import errors
from tests.domain import charm


async def test_parity_round_two_through_the_broker(client: Any) -> None:
    model = f"parity-{uuid.uuid4().hex[:10]}"
    m = {"model": model}
    await client.call({"type": "create_model", "name": model})
    await client.call(
        {"type": "deploy", **m, "application": "wordpress", "charm": charm("wordpress"), "units": 2}
    )
    await client.call({"type": "deploy", **m, "application": "telegraf", "charm": charm("telegraf")})

    for ref, field in (("wordpress:", "endpoints.0"), (":juju-info", "endpoints.0"), (":", "endpoints.0")):
        with pytest.raises(errors.InvalidCommand) as caught:
            await client.call({"type": "integrate", **m, "endpoints": [ref, "telegraf"]})
        assert caught.value.details == {"field": field}
    with pytest.raises(errors.InvalidCommand) as caught:
        await client.call({"type": "relation_ids", **m, "endpoint": "wordpress:"})
    assert caught.value.details == {"field": "endpoint"}

    rel = await client.call({"type": "integrate", **m, "endpoints": ["telegraf", "wordpress"]})
    assert {e["application"]: e["scope"] for e in rel["endpoints"]} == {
        "telegraf": "container",
        "wordpress": "container",
    }
    r = {**m, "relation": rel["id"]}
    for n in (0, 1):
        await client.call({"type": "enter_scope", **r, "unit": f"wordpress/{n}"})
        await client.call({"type": "enter_scope", **r, "unit": f"telegraf/{n}", "settings": {"n": str(n)}})

    mine = await client.call({"type": "relation_units", **r, "as_unit": "wordpress/1"})
    everyone = await client.call({"type": "relation_units", **r})
    with pytest.raises(errors.RelationUnitNotFound, match="another container"):
        await client.call({"type": "get_unit_settings", **r, "unit": "telegraf/0", "as_unit": "wordpress/1"})
    await client.call({"type": "leave_scope", **r, "unit": "telegraf/1"})
    departed = await client.call(
        {"type": "get_unit_settings", **r, "unit": "telegraf/1", "as_unit": "wordpress/1"}
    )
    with pytest.raises(errors.RelationUnitNotFound):
        await client.call({"type": "set_unit_settings", **r, "unit": "telegraf/1", "settings": {"n": "x"}})

    assert mine == ["telegraf/1", "wordpress/1"]
    assert everyone == ["telegraf/0", "telegraf/1", "wordpress/0", "wordpress/1"]
    assert departed == {"n": "1"}
    assert await client.call({"type": "relation_units", **r, "as_unit": "wordpress/1"}) == ["wordpress/1"]
