"""Does memory stay flat over many evaluations? Evaluate one case N times and watch the process RSS.

Why: durable_rules keeps everything it is given until told otherwise (an un-retracted fact costs about
8 KB, a live sid 145 KB or more; durable-rules.md §2.5), and a leak there is invisible to Python's own
allocators and to tracemalloc. The resident set size of the process is what an operator would see, so
that is what this script reports: before the first evaluation, after it, every --every evaluations and
at the end, together with the number of live Python objects (which separates a leak of Python objects
from one inside the C extension).

It also checks that every determination equals the first one (dataclass equality: every field of every
item, including basis, rationale and trace), because "flat memory" is worthless if the answers drift,
and cross-request state leaking inside the engine would show up as exactly such a drift.

Run from the repository root:  python benchmarks/memory_flat.py [--n 1000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

# Measure the checkout this file belongs to, not whatever imr_policy happens to be installed.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import imr_policy  # noqa: E402

DEFAULT_CASE = REPO / "examples" / "cases" / "imr-2015-psych-example.yaml"


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS: resident now; VmHWM: peak), in MB."""
    with Path("/proc/self/status").open(encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    raise RuntimeError(f"{field} not found in /proc/self/status (this script needs Linux)")


def checkout() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return ""


def sample(label: str, done: int, started: float, mismatches: int) -> dict[str, Any]:
    """One row of the series, printed as it is taken so a long run can be followed with `tail -f`."""
    row = {
        "label": label,
        "evaluations": done,
        "rss_mb": round(status_mb("VmRSS"), 2),
        "python_objects": len(gc.get_objects()),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "mismatches": mismatches,
    }
    print(
        f"{label:<10} {done:>10,} evaluations  RSS {row['rss_mb']:8.2f} MB  "
        f"{row['python_objects']:>8,} Python objects  {row['elapsed_s']:8.1f} s  mismatches {mismatches}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of evaluations (default 1,000,000)")
    parser.add_argument("--every", type=int, default=100_000, help="take an RSS sample every this many evaluations")
    parser.add_argument("--engine", choices=("durable", "reference"), default="durable", help="matcher backend")
    parser.add_argument("--case", type=Path, default=DEFAULT_CASE, help="the case file (YAML or JSON)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the series to this JSON file")
    args = parser.parse_args(argv)

    with args.case.open(encoding="utf-8") as fh:
        case = yaml.safe_load(fh)
    print(
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}  python {sys.version.split()[0]}  "
        f"{platform.platform()}  nproc {len(os.sched_getaffinity(0))}  checkout {checkout()}  "
        f"engine {args.engine}  case {args.case}  n {args.n:,}  gc enabled {gc.isenabled()}",
        flush=True,
    )
    started = time.perf_counter()
    series = [sample("imported", 0, started, 0)]
    engine = imr_policy.load(engine=args.engine)
    series.append(sample("loaded", 0, started, 0))

    first = engine.evaluate(case)
    mismatches = 0
    first_mismatch: int | None = None
    series.append(sample("first", 1, started, 0))
    loop_started = time.perf_counter()
    for i in range(2, args.n + 1):
        if engine.evaluate(case) != first:
            mismatches += 1
            if first_mismatch is None:
                first_mismatch = i
        if i % args.every == 0:
            series.append(sample("sample", i, started, mismatches))
    loop_s = time.perf_counter() - loop_started
    if args.n % args.every:
        series.append(sample("sample", args.n, started, mismatches))
    gc.collect()
    series.append(sample("after gc", args.n, started, mismatches))

    baseline = series[2]["rss_mb"]  # after the first evaluation: the engine's working set exists
    steady = [row["rss_mb"] for row in series if row["label"] == "sample"]
    summary = {
        "evaluations": args.n,
        "mismatches": mismatches,
        "first_mismatch_at": first_mismatch,
        "rss_after_first_mb": baseline,
        "rss_end_mb": series[-1]["rss_mb"],
        "rss_growth_after_first_mb": round(series[-1]["rss_mb"] - baseline, 2),
        # from the first periodic sample on, allocator warm-up is over: growth here would be a leak
        "rss_growth_from_first_sample_mb": round(series[-1]["rss_mb"] - steady[0], 2) if steady else None,
        "rss_range_of_samples_mb": [min(steady), max(steady)] if steady else [],
        "peak_rss_mb": round(status_mb("VmHWM"), 2),
        "us_per_evaluation_incl_check": round(loop_s / max(1, args.n - 1) * 1e6, 1),
        "gc_collections": [g["collections"] for g in gc.get_stats()],
    }
    print(json.dumps(summary, indent=2), flush=True)
    if args.json:
        results: dict[str, Any] = {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "checkout": checkout(),
            "engine": args.engine,
            "case": str(args.case),
            "series": series,
            "summary": summary,
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
