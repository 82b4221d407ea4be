"""Medians of the runs, the ratios the issue asks for, the README table and the plot."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

README_START = "<!-- bench:results:start -->"
README_END = "<!-- bench:results:end -->"
LABELS = {
    "ceiling": "broker-only ceiling",
    "raw": "raw aio-pika + asyncpg",
    "faststream": "FastStream peer",
    "relationd": "relationd",
}


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, float]]]:
    """contender -> concurrency -> median throughput, p50, p99 (and mean, cpu) over the runs."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["contender"], r["concurrency"]), []).append(r)
    out: dict[str, dict[int, dict[str, float]]] = {}
    for (name, c), runs in groups.items():
        row: dict[str, float] = {"runs": len(runs)}
        for key in (
            "throughput",
            "p50_ms",
            "p99_ms",
            "mean_ms",
            "server_cpu_ms_per_cmd",
            "database_cpu_ms_per_cmd",
            "client_cpu_ms_per_cmd",
            "machine_busy",
            "events",
        ):
            values = [r[key] for r in runs if r.get(key) is not None and not _nan(r[key])]
            row[key] = statistics.median(values) if values else float("nan")
        row["errors"] = sum(r["errors"] for r in runs)
        row["completed"] = sum(r["completed"] for r in runs)
        out.setdefault(name, {})[c] = row
    return out


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def ratios(summary: dict[str, dict[int, dict[str, float]]], subject: str = "relationd") -> dict[str, Any]:
    """subject / each other contender, per concurrency, for throughput, p50 and p99."""
    out: dict[str, Any] = {}
    mine = summary.get(subject, {})
    for other in ("raw", "faststream", "ceiling"):
        if other not in summary:
            continue
        per_c: dict[int, dict[str, float]] = {}
        for c, row in mine.items():
            theirs = summary[other].get(c)
            if not theirs:
                continue
            per_c[c] = {k: _div(row[k], theirs[k]) for k in ("throughput", "p50_ms", "p99_ms")}
        out[other] = per_c
    return out


def _div(a: float, b: float) -> float:
    return a / b if b and not _nan(a) and not _nan(b) else float("nan")


def _f(x: float, digits: int = 1) -> str:
    return "n/a" if _nan(x) else f"{x:,.{digits}f}"


def text_table(summary: dict[str, dict[int, dict[str, float]]], skipped: dict[str, str]) -> str:
    conc = sorted({c for rows in summary.values() for c in rows})
    head = f"{'contender':<24}" + "".join(f"| c={c:<3} cmd/s    p50 ms   p99 ms " for c in conc)
    lines = [head, "-" * len(head)]
    for name in _order(summary):
        cells = []
        for c in conc:
            row = summary[name].get(c)
            if row is None:
                cells.append(f"| {'':>28} ")
                continue
            cells.append(
                f"| {_f(row['throughput'], 0):>9} {_f(row['p50_ms'], 2):>8} {_f(row['p99_ms'], 2):>8} "
            )
        lines.append(f"{LABELS.get(name, name):<24}" + "".join(cells))
    for name, why in skipped.items():
        lines.append(f"{LABELS.get(name, name):<24}| skipped: {why}")
    return "\n".join(lines)


def ratio_lines(rat: dict[str, Any]) -> str:
    lines = []
    for other, per_c in rat.items():
        for c, r in sorted(per_c.items()):
            lines.append(
                f"relationd / {other:<10} c={c:<3} throughput x{_f(r['throughput'], 2)}  "
                f"p50 x{_f(r['p50_ms'], 2)}  p99 x{_f(r['p99_ms'], 2)}"
            )
    return "\n".join(lines)


def _order(summary: dict[str, Any]) -> list[str]:
    known = [n for n in ("ceiling", "raw", "faststream", "relationd") if n in summary]
    return known + sorted(n for n in summary if n not in known)


def markdown(
    summary: dict[str, dict[int, dict[str, float]]],
    rat: dict[str, Any],
    skipped: dict[str, str],
    meta: dict[str, Any],
    scale: dict[str, Any] | None,
) -> str:
    conc = sorted({c for rows in summary.values() for c in rows})
    out = [
        f"Run of {meta.get('date', '?')}: {meta.get('runs')} runs x {meta.get('duration')} s "
        f"(after {meta.get('warmup')} s warm-up) per contender and concurrency, medians shown; "
        f"{meta.get('cpus')} CPUs shared by client, broker, database and servers; "
        f"uvloop {'on' if meta.get('uvloop') else 'off'}; relationd log level warning.",
        "",
        "| contender | " + " | ".join(f"c={c} cmd/s | c={c} p50 ms | c={c} p99 ms" for c in conc) + " |",
        "|---|" + "---:|" * (3 * len(conc)),
    ]
    for name in _order(summary):
        cells = []
        for c in conc:
            row = summary[name].get(c)
            if row is None:
                cells += ["", "", ""]
            else:
                cells += [_f(row["throughput"], 0), _f(row["p50_ms"], 2), _f(row["p99_ms"], 2)]
        out.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    for name, why in skipped.items():
        out.append(f"| {LABELS.get(name, name)} | skipped: {why} |" + " |" * (3 * len(conc) - 1))
    out += ["", "Ratios (relationd / other; throughput higher is better, latency lower is better):", ""]
    out.append("| relationd / | " + " | ".join(f"c={c} cmd/s | c={c} p50 | c={c} p99" for c in conc) + " |")
    out.append("|---|" + "---:|" * (3 * len(conc)))
    for other, per_c in rat.items():
        cells = []
        for c in conc:
            r = per_c.get(c)
            if r is None:
                cells += ["", "", ""]
            else:
                cells += [f"x{_f(r['throughput'], 2)}", f"x{_f(r['p50_ms'], 2)}", f"x{_f(r['p99_ms'], 2)}"]
        out.append(f"| {LABELS.get(other, other)} | " + " | ".join(cells) + " |")
    out += [
        "",
        "CPU per command (ms, median of the runs): the contender's own process and its PostgreSQL "
        "backends (the broker's share cannot be told apart per vhost, so it is not counted); "
        "machine = share of both CPUs busy during the runs, everything on the machine included.",
        "",
        "| contender | " + " | ".join(f"c={c} server | c={c} database | c={c} machine" for c in conc) + " |",
        "|---|" + "---:|" * (3 * len(conc)),
    ]
    for name in _order(summary):
        cells = []
        for c in conc:
            row = summary[name].get(c, {})
            cells += [
                _f(row.get("server_cpu_ms_per_cmd", float("nan")), 2),
                _f(row.get("database_cpu_ms_per_cmd", float("nan")), 2),
                _f(row.get("machine_busy", float("nan")) * 100, 0) + "%",
            ]
        out.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    if scale:
        out += ["", scale_markdown(scale)]
    out += ["", "Targets of the issue:", "", targets_markdown(targets(summary, scale))]
    return "\n".join(out)


def targets(
    summary: dict[str, dict[int, dict[str, float]]], scale: dict[str, Any] | None
) -> list[tuple[str, str, bool | None]]:
    """The issue's targets: (target, figure reached, met)."""
    rel = summary.get("relationd", {})
    out: list[tuple[str, str, bool | None]] = []

    def ratio(other: str, c: int, key: str) -> float:
        a, b = rel.get(c, {}).get(key), summary.get(other, {}).get(c, {}).get(key)
        return _div(a, b) if a is not None and b is not None else float("nan")

    def check(name: str, value: float, ok: bool) -> None:
        out.append((name, "n/a" if _nan(value) else f"x{value:.2f}", None if _nan(value) else ok))

    # Issue 17: every guarantee on, >= 0.9x raw at c=1 and >= 1.0x at c=8 and c=64.
    for c, goal in ((1, 0.9), (8, 1.0), (64, 1.0)):
        r = ratio("raw", c, "throughput")
        check(f"throughput >= {goal:.1f}x raw at c={c}", r, r >= goal)
    for c in sorted(rel):
        r = ratio("faststream", c, "throughput")
        check(f"ahead of the FastStream peer at c={c}", r, r > 1.0)
    r = ratio("raw", 8, "p99_ms")
    check("p99 at c=8 <= 1.5x raw", r, r <= 1.5)
    if scale:
        big = next((row for row in scale.get("rows", []) if "units" in row["label"]), None)
        if big is not None:
            check("latency in the 100k model <= 1.3x the empty model", big["ratio"], big["ratio"] <= 1.3)
    return out


def targets_markdown(rows: list[tuple[str, str, bool | None]]) -> str:
    out = ["| target | reached | met |", "|---|---:|---|"]
    for name, value, ok in rows:
        out.append(f"| {name} | {value} | {'n/a' if ok is None else ('yes' if ok else 'no')} |")
    return "\n".join(out)


def scale_markdown(scale: dict[str, Any]) -> str:
    out = [
        "Scale: the same relationd mix, one worker at a time (c=1) in one model, against an empty "
        "model in the same database (measured in alternation):",
        "",
        "| model | load time s | p50 ms | p99 ms | mean ms | mean / empty |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in scale.get("rows", []):
        out.append(
            f"| {row['label']} | {_f(row.get('load_seconds', float('nan')), 1)} | {_f(row['p50_ms'], 2)} | "
            f"{_f(row['p99_ms'], 2)} | {_f(row['mean_ms'], 2)} | {_f(row.get('ratio', float('nan')), 2)} |"
        )
    return "\n".join(out)


def update_readme(path: Path, body: str) -> None:
    text = path.read_text() if path.exists() else ""
    block = f"{README_START}\n{body}\n{README_END}"
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        _, tail = rest.split(README_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def plot(summary: dict[str, dict[int, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {
        "relationd": dict(color="tab:blue", marker="o", linewidth=2.2),
        "raw": dict(color="tab:orange", marker="s", linewidth=2.2),
        "faststream": dict(color="tab:green", marker="^", linewidth=1.2, linestyle="--"),
        "ceiling": dict(color="tab:gray", marker="x", linewidth=1.2, linestyle=":"),
    }
    for name in _order(summary):
        rows = summary[name]
        conc = sorted(rows)
        style = styles.get(name, {})
        left.plot(conc, [rows[c]["throughput"] for c in conc], label=LABELS.get(name, name), **style)
        right.plot(conc, [rows[c]["p99_ms"] for c in conc], label=LABELS.get(name, name), **style)
    for ax, title, unit in ((left, "throughput", "commands/s"), (right, "p99 latency", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("outstanding commands (concurrency)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ticks = sorted({c for rows in summary.values() for c in rows})
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
    right.set_yscale("log")
    left.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
