"""Run the benchmarks: `python -m bench [--quick] [--only SCENARIO[,SCENARIO]] [--out DIR]`.

Starts a real server and real agents on 127.0.0.1 for each scenario, prints one table (figure,
result, target, pass/miss) and writes everything to bench/results/<timestamp>.json. These are
benchmarks, not tests: nothing here fails a build; the exit code is 0 unless a scenario crashed.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.harness import Context, Figure, fmt_value, load_average, machine_info

SCENARIOS = ["dispatch", "throughput", "chain", "log_latency", "log_volume", "fleet", "scale", "idle"]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in under a minute")
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (data dirs, logs)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or SCENARIOS
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    args.scenarios = chosen
    return args


def run_scenario(name: str, ctx: Context) -> tuple[list[Figure], str | None, float]:
    module = importlib.import_module(f"bench.scenarios.{name}")
    started = time.monotonic()
    print(f"== {name}: {module.TITLE}", file=sys.stderr, flush=True)
    try:
        figures = module.run(ctx)
        error = None
    except Exception as exc:  # one broken scenario must not hide the others' numbers
        traceback.print_exc()
        figures, error = [Figure(name, "scenario crashed", None, "")], f"{type(exc).__name__}: {exc}"
    return figures, error, time.monotonic() - started


def print_table(figures: list[Figure]) -> None:
    rows = [("scenario", "figure", "result", "target", "")]
    rows += [(f.scenario, f.name, f"{fmt_value(f.value)} {f.unit}".strip(), f.target,
              "" if f.verdict == "info" else f.verdict) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = {"started": datetime.now(timezone.utc).isoformat(), "quick": args.quick,
              "machine": machine_info(), "scenarios": {}}
    all_figures: list[Figure] = []
    crashed = False
    with tempfile.TemporaryDirectory(prefix="task-system-bench-") as tmp:
        root = Path(tmp)
        for name in args.scenarios:
            ctx = Context(quick=args.quick, root=root / name)
            load_before = load_average()
            figures, error, took = run_scenario(name, ctx)
            crashed |= error is not None
            all_figures += figures
            report["scenarios"][name] = {
                "seconds": round(took, 1), "load_before": load_before, "load_after": load_average(),
                "error": error, "figures": [f.to_dict() for f in figures], "details": ctx.details}
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix="task-system-bench-kept-"))
            import shutil
            shutil.copytree(root, kept, dirs_exist_ok=True)
            print(f"scratch kept in {kept}", file=sys.stderr)
    report["finished"] = datetime.now(timezone.utc).isoformat()
    print()
    print_table(all_figures)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults: {out}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
