"""The Grafana dashboard and Prometheus alert rules in deploy/ against the daemon's real metrics.

promtool (Debian's prometheus package, installed by scripts/ensure-tools) checks the rules and runs
their unit tests, and checks every dashboard query as PromQL. Every metric and label the dashboard
and the rules name must be one daemon/metrics.py exposes, so neither can drift from the code. The
gauges the alerts rely on (ready, readiness checks, relay leader, the lag limit) are read from the
live daemon.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from daemon.metrics import REGISTRY
from tests.harness import DaemonProcess

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy/prometheus/relationd-alerts.yml"
RULE_TESTS = ROOT / "deploy/prometheus/relationd-alerts.test.yml"
DASHBOARD = ROOT / "deploy/grafana/relationd-dashboard.json"

# Labels Prometheus adds to every scraped series, and the histogram's bucket bound.
TARGET_LABELS = {"job", "instance", "le"}
_SELECTOR = re.compile(r"\b(relationd_[a-z_]+)\s*(?:\{([^}]*)\})?")
_LABEL = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian package prometheus: run scripts/ensure-tools as root)",
)


def _exposed() -> dict[str, set[str]]:
    """Every sample name daemon/metrics.py exposes, with the labels it carries."""
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_count", "_sum", "_created"]}
    out: dict[str, set[str]] = {}
    for collector in REGISTRY._collector_to_names:
        for family in collector.describe():
            labels = set(getattr(collector, "_labelnames", ()))
            for suffix in suffixes.get(family.type, [""]):
                out[family.name + suffix] = labels
    return out


def _dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
    return exprs


def _as_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables filled in as a user's selection would; of a
    variable's ``label_values(selector, label)`` the selector."""
    if values := re.fullmatch(r"label_values\((.*),\s*\w+\)", expr):
        expr = values[1]
    return expr.replace("$__rate_interval", "5m").replace("$job", "relationd").replace("$instance", ".*")


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _test_series() -> list[str]:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    return [s["series"] for t in tests for s in t.get("input_series", [])]


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_alert_rules_are_valid() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


@needs_promtool
def test_alert_rules_fire_as_their_unit_tests_expect() -> None:
    done = _promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    queries = _dashboard_queries()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"relationd:dashboard_{i}", "expr": _as_promql(q)}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = _promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_a_promql_typo_is_caught_by_the_check(tmp_path: Path) -> None:
    """The check above can fail: promtool refuses a query with a syntax error."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package prometheus: run scripts/ensure-tools as root)")
    path = tmp_path / "bad.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (le (x)"}]}]})
    )
    assert _promtool("check", "rules", str(path)).returncode != 0


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: _rule_exprs(), id="alert-rules"),
        pytest.param(lambda: _test_series(), id="alert-rule-tests"),
        pytest.param(lambda: _dashboard_queries(), id="dashboard"),
    ],
)
def test_every_metric_and_label_named_exists_in_daemon_metrics(source: Any) -> None:
    exposed = _exposed()
    named: dict[str, set[str]] = {}
    for expr in source():
        for name, selector in _SELECTOR.findall(expr):
            if ":" in name:
                continue
            named.setdefault(name, set()).update(_LABEL.findall(selector or ""))
    assert named, "no relationd metric found: the parsing above is broken"
    unknown = sorted(set(named) - set(exposed))
    assert not unknown, f"not in daemon/metrics.py: {unknown}"
    wrong_labels = {
        name: sorted(labels - exposed[name] - TARGET_LABELS)
        for name, labels in named.items()
        if labels - exposed[name] - TARGET_LABELS
    }
    assert not wrong_labels, f"labels these metrics do not have: {wrong_labels}"


def test_the_drift_check_would_see_a_misspelt_metric() -> None:
    """The name check above is not vacuous: it parses names and labels and rejects unknown ones."""
    exposed = _exposed()
    found = _SELECTOR.findall('rate(relationd_comands_total{outcome="internal"}[5m])')
    assert found == [("relationd_comands_total", 'outcome="internal"')]
    assert "relationd_comands_total" not in exposed and "relationd_commands_total" in exposed
    assert exposed["relationd_commands_total"] == {"type", "outcome"}


async def test_the_live_daemon_exposes_readiness_and_relay_leader_gauges(daemon: DaemonProcess) -> None:
    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = daemon.http("/metrics")
        assert status == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    for _ in range(50):  # the relay takes the lead at its first poll after start
        got = await asyncio.to_thread(samples)
        if got.get(("relationd_relay_leader", ())) == 1:
            break
        await asyncio.sleep(0.1)
    assert got[("relationd_relay_leader", ())] == 1, "the only instance on its database does not lead"
    assert got[("relationd_ready", ())] == 1
    checks = {labels[0][1]: v for (name, labels), v in got.items() if name == "relationd_readiness_check"}
    assert checks == {"broker": 1, "database": 1, "outbox": 1}
    assert got[("relationd_outbox_max_lag_seconds", ())] == 30
