"""relationd's workload: real commands through the public protocol, spread over many models.

Set-up (not timed): models, each with requirer applications ``app<i>`` and provider
applications ``db<j>`` of one unit each (unit 0 leads). The timed mix is the life of a new
relation, one command at a time per worker:

  integrate app<i>:db db<j>:db      -> a new relation (a pair never used before)
  enter_scope app<i>/0              -> the requirer unit enters (status joining -> joined)
  enter_scope db<j>/0 with settings -> the provider unit enters, writing its settings
  set_unit_settings app<i>/0        -> a unit settings write
  set_application_settings db<j>/0  -> the leader writes its application's settings

so a fifth of the commands are integrates, two fifths enter scope, two fifths settings writes.
When every pair has been used the workers go on with settings writes on relations they made.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from bench.load import Call, LoadClient, Script, run_all

PROVIDER_CHARM = {"name": "bench-db", "provides": {"db": {"interface": "bench-sql"}}}
REQUIRER_CHARM = {"name": "bench-app", "requires": {"db": {"interface": "bench-sql"}}}


@dataclass
class _Model:
    name: str
    requirers: int
    providers: int
    next_pair: int = 0

    def take_pair(self) -> tuple[int, int] | None:
        if self.next_pair >= self.requirers * self.providers:
            return None
        k = self.next_pair
        self.next_pair += 1
        # Walk the pairs so consecutive relations use different applications on both sides.
        i = k % self.requirers
        return i, (k // self.requirers + i) % self.providers


@dataclass
class RelationdWorkload:
    models: list[_Model]
    seed: int = 11
    relations: list[tuple[str, int, int, int]] = field(default_factory=list)

    @classmethod
    def create(cls, names: list[str], requirers: int, providers: int, seed: int = 11) -> RelationdWorkload:
        return cls([_Model(n, requirers, providers) for n in names], seed)

    async def setup(self, client: LoadClient, *, create_models: bool = True, concurrency: int = 16) -> int:
        """Create the models (unless they exist) and deploy the applications; returns commands sent."""
        if create_models:
            await run_all(
                [lambda n=m.name: client.call({"type": "create_model", "name": n}) for m in self.models],
                concurrency,
            )
        deploys = []
        for m in self.models:
            for prefix, count, charm in (
                ("app", m.requirers, REQUIRER_CHARM),
                ("db", m.providers, PROVIDER_CHARM),
            ):
                for i in range(count):
                    body = {
                        "type": "deploy",
                        "model": m.name,
                        "application": f"{prefix}{i}",
                        "charm": charm,
                        "units": 1,
                    }
                    deploys.append(lambda b=body: client.call(b))
        await run_all(deploys, concurrency)
        return len(deploys) + (len(self.models) if create_models else 0)

    def script(self) -> Script:
        rng = random.Random(self.seed)
        values = itertools.count()

        async def lifecycle(call: Call) -> None:
            open_models = [m for m in self.models if m.next_pair < m.requirers * m.providers]
            if not open_models:
                await settings_only(call)
                return
            model = rng.choice(open_models)
            pair = model.take_pair()
            if pair is None:
                return
            i, j = pair
            m, app, db = model.name, f"app{i}", f"db{j}"
            reply = await call({"type": "integrate", "model": m, "endpoints": [f"{app}:db", f"{db}:db"]})
            if reply is None:
                return
            rid = reply["result"]["id"]
            await call({"type": "enter_scope", "model": m, "relation": rid, "unit": f"{app}/0"})
            await call(
                {
                    "type": "enter_scope",
                    "model": m,
                    "relation": rid,
                    "unit": f"{db}/0",
                    "settings": {"host": f"{db}.internal", "port": "5432"},
                }
            )
            await call(
                {
                    "type": "set_unit_settings",
                    "model": m,
                    "relation": rid,
                    "unit": f"{app}/0",
                    "settings": {"want": f"v{next(values)}"},
                }
            )
            await call(
                {
                    "type": "set_application_settings",
                    "model": m,
                    "relation": rid,
                    "unit": f"{db}/0",
                    "settings": {"database": f"d{rid}", "user": f"u{next(values)}"},
                }
            )
            self.relations.append((m, rid, i, j))

        async def settings_only(call: Call) -> None:
            if not self.relations:
                return
            m, rid, i, _ = rng.choice(self.relations)
            await call(
                {
                    "type": "set_unit_settings",
                    "model": m,
                    "relation": rid,
                    "unit": f"app{i}/0",
                    "settings": {"want": f"v{next(values)}"},
                }
            )

        return lifecycle


def model_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(count)]


def summary(workload: RelationdWorkload) -> dict[str, Any]:
    pairs = sum(m.requirers * m.providers for m in workload.models)
    used = sum(m.next_pair for m in workload.models)
    return {"models": len(workload.models), "pairs": pairs, "relations_made": used}
