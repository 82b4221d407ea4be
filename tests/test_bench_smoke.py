"""The bench command works: a few seconds of every contender, no timing asserted.

Benchmarks are not tests; this only checks that ``python -m bench`` runs end to end on the real
broker and database and prints a table with every contender (FastStream marked skipped, with the
reason, where the bench extra is not installed).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A few seconds: one short run of each contender at two concurrencies, few models.
ARGS = "--quick --skip-scale --runs 1 --duration 0.8 --warmup 0.2 --concurrency 1,8 --models 4 --apps 3"


def test_bench_quick_run_prints_every_contender(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", *ARGS.split(), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for label in ("broker-only ceiling", "raw aio-pika + asyncpg", "FastStream peer", "relationd"):
        assert label in out.stdout, out.stdout
    data = json.loads((tmp_path / "quick.json").read_text())
    ran = {r["contender"] for r in data["results"]}
    assert {"ceiling", "raw", "relationd"} <= ran
    assert "faststream" in ran or "faststream" in data["skipped"]
    assert all(r["errors"] == 0 for r in data["results"]), [r["error_samples"] for r in data["results"]]
    assert all(r["completed"] > 0 for r in data["results"])
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "quick.png").stat().st_size > 0
    else:
        assert "plot skipped: matplotlib is not installed" in out.stdout


def test_statement_counts_of_the_mix_are_those_the_readme_reports() -> None:
    """bench.statements applies the mix through the applier and counts asyncpg calls per command:
    the counts bench/README.md reports (the raw pipeline sends 7 a command)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.statements", "--models", "1", "--apps", "2", "--relay", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads(out.stdout)
    assert data["statements_per_command"] == {
        "integrate": 6,
        "enter scope": 6,
        "enter scope with settings": 6,
        "unit settings write": 5,
        "application settings write": 5,
    }
    assert round(data["mix_average"], 1) == 5.6


def test_the_scale_plan_check_names_queries_that_exist() -> None:
    """bench.scale explains the hot queries by their names in handlers/ and daemon/; a renamed
    one broke the full run at its last step (issue 17's run), after every figure was measured."""
    from bench.scale import hot_queries

    queries = hot_queries()
    assert len(queries) >= 25
    for name, (sql, params) in queries.items():
        used = max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)
        assert used == len(params), f"{name}: the query takes {used} parameters, the check gives {params}"
