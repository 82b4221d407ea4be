"""``python -m bench``: every contender, in the same run, on the same broker and database.

    python -m bench                      full run: 3 runs x 8 s at concurrency 1, 8, 64, then scale
    python -m bench --quick --skip-scale a smoke run of a few seconds (what CI may run)
    python -m bench --json               also print the results as JSON

Each contender runs as its own process on its own vhost and database (bench/env.py). Runs are
interleaved (run 1 of every contender at every concurrency, then run 2, ...), so drift on the
shared machine spreads over all of them. A full run (not --quick) rewrites the table in
bench/README.md and bench/results/throughput_p99.png; every run writes results JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.contenders import CONTENDERS, FASTSTREAM, RELATIOND, Options, Running, faststream_missing, start
from bench.env import RESULTS, describe_machine, sandboxes, use_uvloop
from bench.load import closed_loop

README = Path(__file__).resolve().parent / "README.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    p.add_argument("--runs", type=int, help="runs per contender and concurrency (median reported)")
    p.add_argument("--duration", type=float, help="measured seconds per run")
    p.add_argument("--warmup", type=float, help="warm-up seconds before each measured window")
    p.add_argument("--concurrency", default=None, help="comma-separated outstanding commands, e.g. 1,8,64")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help="which contenders to run")
    p.add_argument("--skip-scale", action="store_true", help="skip the 100k-model scale comparison")
    p.add_argument("--scale-only", action="store_true", help="only the scale comparison")
    p.add_argument("--scale-units", type=int, default=100_000, help="units in the big model")
    p.add_argument("--scale-relations", type=int, default=100_000, help="relations in the big model")
    p.add_argument("--scale-models", type=int, default=1000, help="models of the many-models case")
    p.add_argument(
        "--variants",
        default=None,
        help="relationd variants run beside relationd: " + ", ".join(VARIANTS),
    )
    p.add_argument("--no-uvloop", action="store_true", help="every contender on asyncio's default loop")
    p.add_argument("--models", type=int, help="models the load is spread over")
    p.add_argument("--apps", type=int, help="requirer and provider applications per relationd model")
    p.add_argument("--out", type=Path, default=None, help="where to write results (default bench/results)")
    p.add_argument("--no-report", action="store_true", help="do not rewrite bench/README.md and the plot")
    p.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    p.add_argument(
        "--report-from",
        type=Path,
        help="rewrite bench/README.md and the plot from a results JSON, run nothing",
    )
    args = p.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.duration = args.duration or (1.5 if quick else 8.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if quick else 1.5)
    args.concurrency = [int(c) for c in (args.concurrency or "1,8,64").split(",") if c]
    args.models = args.models or (8 if quick else 64)
    args.apps = args.apps or (8 if quick else 12)
    if args.variants is None:
        args.variants = "" if quick else "info-log,no-uvloop"
    args.variants = [v for v in args.variants.split(",") if v]
    if quick:
        args.scale_units = min(args.scale_units, 5_000)
        args.scale_relations = min(args.scale_relations, 5_000)
        args.scale_models = min(args.scale_models, 20)
    args.report = not (quick or args.no_report)
    args.out = args.out or RESULTS
    return args


# relationd configurations that can run beside relationd as "relationd+<variant>" contenders.
VARIANTS: dict[str, dict[str, Any]] = {
    "info-log": {"relationd_env": {"RELATIOND_LOG_LEVEL": "info"}},
    "no-uvloop": {"uvloop": False},
    "pooled-relay": {"relationd_env": {"BENCH_POOLED_RELAY": "1"}},
    "no-fairness": {"relationd_env": {"RELATIOND_FAIRNESS": "false"}},
    "otel": {"relationd_env": {"BENCH_OTLP_SINK": "1"}},
    # Batching (daemon/batcher.py) on and off, whatever the daemon's default.
    "batch": {"relationd_env": {"RELATIOND_BATCH_MAX": "16"}},
    "no-batch": {"relationd_env": {"RELATIOND_BATCH_MAX": "1"}},
    "batch-w1": {"relationd_env": {"RELATIOND_BATCH_MAX": "16", "RELATIOND_BATCH_WORKERS": "1"}},
    "batch-w2": {"relationd_env": {"RELATIOND_BATCH_MAX": "16", "RELATIOND_BATCH_WORKERS": "2"}},
    # Issue 17's changes, each switched back off on its own (bench/daemon_variant.py).
    "custom-plans": {"relationd_env": {"BENCH_CUSTOM_PLANS": "1"}},
    "always-fence": {"relationd_env": {"BENCH_ALWAYS_FENCE": "1"}},
    "seqscan-on": {"relationd_env": {"BENCH_SEQSCAN_ON": "1"}},
    "aio-pika-publish": {"relationd_env": {"BENCH_AIO_PIKA_PUBLISH": "1"}},
    "relay-delete-apart": {"relationd_env": {"BENCH_RELAY_DELETE_APART": "1"}},
    "no-read-ahead": {"relationd_env": {"BENCH_NO_READ_AHEAD": "1"}},
    "store-bags-apart": {"relationd_env": {"BENCH_STORE_BAGS_APART": "1"}},
}


def contender_options(name: str, opts: Options) -> Options:
    if "+" not in name:
        return opts
    variant = name.split("+", 1)[1]
    changes = VARIANTS[variant]
    env = {**opts.relationd_env, **changes.get("relationd_env", {})}
    return Options(**{**opts.__dict__, **changes, "relationd_env": env})


async def measure(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    wanted = [c for c in args.contenders.split(",") if c]
    wanted += [f"{RELATIOND}+{v}" for v in args.variants if RELATIOND in wanted]
    skipped: dict[str, str] = {}
    if FASTSTREAM in wanted and (why := faststream_missing()):
        skipped[FASTSTREAM] = why
        wanted.remove(FASTSTREAM)
    opts = Options(
        models=args.models,
        requirers=args.apps,
        providers=args.apps,
        uvloop=not args.no_uvloop,
        log_dir=log_dir,
    )
    results: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    labels = {name: name.replace("+", "-") for name in wanted}
    async with contextlib.AsyncExitStack() as stack:
        boxes = await stack.enter_async_context(sandboxes(list(labels.values())))
        t0 = time.monotonic()
        started = await asyncio.gather(
            *(
                stack.enter_async_context(
                    start(
                        n.split("+")[0],
                        contender_options(n, opts),
                        label=labels[n],
                        box=boxes[labels[n]],
                    )
                )
                for n in wanted
            )
        )
        running: dict[str, Running] = dict(zip(wanted, started, strict=True))
        for name in wanted:
            info[name] = {"start_seconds": round(time.monotonic() - t0, 2), **running[name].stats()}
        print(f"bench: {', '.join(wanted)} ready ({time.monotonic() - t0:.1f} s)", flush=True)
        for run in range(args.runs):
            for c in args.concurrency:
                for name in wanted:
                    results.append(await one_run(running[name], name, c, run, args))
        for name in wanted:
            info[name].update(running[name].stats())
    main = [r for r in results if "+" not in r["contender"]]
    variants = [r for r in results if "+" in r["contender"]]
    return {"results": main, "variants": variants, "skipped": skipped, "info": info}


async def one_run(r: Running, name: str, c: int, run: int, args: argparse.Namespace) -> dict[str, Any]:
    waited = await r.settle()
    res = await closed_loop(
        r.client,
        r.script,
        contender=name,
        concurrency=c,
        warmup=args.warmup,
        duration=args.duration,
        run=run,
        server_cpu=r.server.cpu_seconds,
        database_cpu=r.database_cpu,
    )
    out = res.as_dict()
    out["settle_before_s"] = round(waited, 2)
    out["backlog_after_s"] = round(await r.settle(), 2)
    print(
        f"bench: run {run + 1} c={c:<3} {name:<22} {res.throughput:9.0f} cmd/s  p50 {res.p50_ms:7.2f} ms  "
        f"p99 {res.p99_ms:7.2f} ms  cpu/cmd server {res.server_cpu_ms_per_cmd or 0:.2f} "
        f"db {res.database_cpu_ms_per_cmd or 0:.2f} ms  busy {100 * (res.machine_busy or 0):.0f}%  "
        f"errors {res.errors}" + (f"  e.g. {res.error_samples[0]}" if res.error_samples else ""),
        flush=True,
    )
    return out


def write_report(data: dict[str, Any], out: Path, *, quick: bool, readme: bool) -> None:
    summary = report.summarize(data["results"])
    if importlib.util.find_spec("matplotlib") is None:
        print("bench: plot skipped: matplotlib is not installed (pip install -e '.[bench]')")
    else:
        report.plot(summary, out / ("quick.png" if quick else "throughput_p99.png"))
    if readme:
        md = report.markdown(
            summary, report.ratios(summary), data["skipped"], data["meta"], data.get("scale")
        )
        if data.get("variants"):
            md += "\n\n" + variants_markdown(data["variants"], summary)
        if data.get("scale", {}).get("plans"):
            md += "\n\n" + plans_markdown(data["scale"])
        report.update_readme(README, md)


def plans_markdown(scale: dict[str, Any]) -> str:
    out = [
        "Query plans in the 100k model (EXPLAIN ANALYZE; custom and generic plan):",
        "",
        "| query | custom ms | generic ms | indexes | sequential scans |",
        "|---|---:|---:|---|---|",
    ]
    for p in scale["plans"]:
        seq = sorted(set(p["custom"]["seq_scans"]) | set(p["generic"]["seq_scans"]))
        small = sorted(
            set(p["custom"].get("small_seq_scans", {})) | set(p["generic"].get("small_seq_scans", {}))
        )
        note = ", ".join(seq) if seq else "none"
        if small:
            note += f" (small tables: {', '.join(small)})"
        out.append(
            f"| {p['query']} | {p['custom']['ms']:.3f} | {p['generic']['ms']:.3f} | "
            f"{', '.join(sorted(set(p['custom']['indexes']) | set(p['generic']['indexes'])))} | {note} |"
        )
    return "\n".join(out)


async def main_async(args: argparse.Namespace) -> int:
    if args.report_from:
        data = json.loads(args.report_from.read_text())
        write_report(data, args.report_from.parent, quick=bool(data["meta"].get("quick")), readme=True)
        return 0
    started = time.monotonic()
    log_dir = args.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": args.runs,
        "duration": args.duration,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "uvloop": not args.no_uvloop,
        "quick": args.quick,
        **describe_machine(),
    }
    data: dict[str, Any] = {"meta": meta}
    if not args.scale_only:
        data.update(await measure(args, log_dir))
        summary = report.summarize(data["results"])
        rat = report.ratios(summary)
        data["summary"] = {k: {str(c): v for c, v in rows.items()} for k, rows in summary.items()}
        data["ratios"] = {k: {str(c): v for c, v in rows.items()} for k, rows in rat.items()}
        print()
        print(report.text_table(summary, data["skipped"]))
        print()
        print(report.ratio_lines(rat))
        if data["variants"]:
            print()
            print(variants_text(data["variants"], summary))
    if not args.skip_scale:
        from bench import scale

        data["scale"] = await scale.run(args, log_dir)
        print()
        print(report.scale_markdown(data["scale"]))
    meta["seconds"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = "quick" if args.quick else "latest"
    (args.out / f"{stamp}.json").write_text(json.dumps(data, indent=2, default=str))
    if "summary" in data:
        write_report(data, args.out, quick=args.quick, readme=args.report)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    print(f"\nbench: done in {meta['seconds']} s; results in {args.out}")
    return 0


def variants_rows(variants: list[dict[str, Any]], summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, per_c in report.summarize(variants).items():
        for c, row in sorted(per_c.items()):
            base = summary.get(RELATIOND, {}).get(c)
            rows.append(
                {
                    "variant": name,
                    "concurrency": c,
                    **row,
                    "vs_throughput": row["throughput"] / base["throughput"] if base else float("nan"),
                    "vs_p50": row["p50_ms"] / base["p50_ms"] if base else float("nan"),
                    "vs_p99": row["p99_ms"] / base["p99_ms"] if base else float("nan"),
                }
            )
    return rows


def variants_text(variants: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    return "\n".join(
        f"{r['variant']:<26} c={r['concurrency']:<3} {r['throughput']:9.0f} cmd/s  p50 {r['p50_ms']:7.2f} ms"
        f"  p99 {r['p99_ms']:7.2f} ms   vs relationd: cmd/s x{r['vs_throughput']:.2f}, "
        f"p50 x{r['vs_p50']:.2f}, p99 x{r['vs_p99']:.2f}"
        for r in variants_rows(variants, summary)
    )


def variants_markdown(variants: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    out = [
        "relationd variants (separate daemons beside relationd, same workload, runs interleaved):",
        "",
        "| variant | c | cmd/s | p50 ms | p99 ms | cmd/s vs relationd | p50 vs relationd "
        "| p99 vs relationd |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in variants_rows(variants, summary):
        out.append(
            f"| {r['variant']} | {r['concurrency']} | {r['throughput']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | x{r['vs_throughput']:.2f} | x{r['vs_p50']:.2f} | x{r['vs_p99']:.2f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_uvloop(not args.no_uvloop)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
