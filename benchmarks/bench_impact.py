"""Impact analysis of a large generated corpus between two policy editions: time and peak memory.

The question (issue 6): can `imr-policy diff OLD NEW --impact CORPUS` compare 100,000 cases within
2 minutes on a 2-core machine, with memory bounded whatever the corpus size? Each run is the real
command in a fresh process; a small wrapper reports the peak RSS of that process (the reader, the
collector and the report) and of its largest worker process (each loads both engines).

Sides (default): the shipped packs against a copy in which one ODG limit changes (the maximum of
psychotherapy visits, 20 -> 24), the change a new guideline edition typically makes. `--editions A B`
compares two shipped editions instead (e.g. `odg-mental-illness-stress@2015-03
odg-mental-illness-stress@2018-01`), each standing in for its guideline in the shipped packs.

The corpus is written to a temporary JSON Lines file, streamed, never held in memory: one to three
requests per case, psychotherapy around the MTUS and ODG thresholds, medication management, and
other services, in California and Texas, dates of service 2012-2019.

Run from the repository root:
    python benchmarks/bench_impact.py                    # 10,000 and 100,000 cases, both engines
    python benchmarks/bench_impact.py --sizes 2000 --engines reference    # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]

WRAPPER = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from imr_policy.cli.main import main
code = main(sys.argv[2:])
me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"exit": code, "parent_kb": me, "worker_kb": kids}), file=sys.stderr)
"""

SERVICES = ["psychotherapy"] * 5 + ["medication_management"] * 2 + ["physical_therapy", "chiropractic", "acupuncture"]
DAYS = ["2012-06-01", "2014-02-10", "2015-07-10", "2016-05-02", "2017-06-15", "2018-03-01", "2019-04-01"]


def write_corpus(path: Path, n: int, seed: int = 2026) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            day = rnd.choice(DAYS)
            requests = []
            history = []
            for r in range(rnd.choice([1, 1, 2, 3])):
                service = rnd.choice(SERVICES)
                requests.append(
                    {
                        "id": f"r{r}",
                        "service": service,
                        "quantity": rnd.choice([1, 2, 3, 4, 6, 8, 10, 12]),
                        "date_of_service": day,
                    }
                )
                if rnd.random() < 0.8:
                    history.append(
                        {
                            "service": service,
                            "completed": rnd.choice([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 19, 20, 22, 30]),
                            "functional_improvement": rnd.choice(
                                ["documented", "documented", "not_documented", "unknown"]
                            ),
                        }
                    )
            case: dict[str, Any] = {
                "case_id": f"bench-{i}",
                "jurisdiction": rnd.choice(["CA", "CA", "TX"]),
                "date_of_injury": "2011-01-15",
                "diagnoses": [{"description": "d", "severity": rnd.choice(["mild", "moderate", "severe"])}],
                "requests": requests,
            }
            if history:
                case["history"] = history
            if rnd.random() < 0.6:
                case["utilization_review"] = [{"request": requests[0]["id"], "decision": rnd.choice(["deny", "delay"])}]
            fh.write(json.dumps(case, separators=(",", ":")) + "\n")


def edited_sides(root: Path) -> tuple[str, str, str]:
    old, new = root / "old", root / "new"
    shutil.copytree(REPO / "policies", old)
    shutil.copytree(REPO / "policies", new)
    pack = new / "odg-mental-illness-stress" / "2015-03.yaml"
    data = yaml.safe_load(pack.read_text(encoding="utf-8"))
    limit = next(x for x in data["limits"] if x["id"] == "psychotherapy.max-visits")
    limit.update(value=24, range=[13, 24])
    pack.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return (
        str(old),
        str(new),
        "shipped packs vs a copy with ODG 2015-03 `psychotherapy.max-visits` 20 (13-20) -> 24 (13-24)",
    )


def run_once(old: str, new: str, corpus: Path, engine: str, workers: int) -> dict[str, Any]:
    args = ["diff", old, new, "--impact", str(corpus), "--format", "json", "--engine", engine]
    args += ["--workers", str(workers), "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(REPO), *args], capture_output=True, text=True, check=False, cwd=REPO
    )
    wall = time.perf_counter() - started
    stats = json.loads(done.stderr.strip().splitlines()[-1])
    if stats["exit"] not in (0, 1):
        raise SystemExit(f"the impact run failed:\n{done.stderr[-3000:]}")
    impact = json.loads(done.stdout)["impact"]
    return {
        "engine": engine,
        "workers": workers,
        "cases": impact["entries"],
        "wall_s": round(wall, 2),
        "cases_per_s": round(impact["entries"] / wall),
        "parent_peak_rss_mb": round(stats["parent_kb"] / 1024, 1),
        "worker_peak_rss_mb": round(stats["worker_kb"] / 1024, 1),
        "changed_items": impact["changed_items"],
        "changed_cases": impact["changed_cases"],
        "invalid": impact["invalid"],
        "errors": impact["errors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="+", default=["durable", "reference"], choices=["durable", "reference"])
    parser.add_argument("--workers", type=int, nargs="+", default=[len(os.sched_getaffinity(0))])
    parser.add_argument("--editions", nargs=2, metavar=("OLD", "NEW"), help="two shipped edition ids to compare")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.editions:
            old, new = args.editions
            what = f"{old} vs {new} (each standing in for its guideline in the shipped packs)"
        else:
            old, new, what = edited_sides(root)
        print(f"sides: {what}")
        for size in args.sizes:
            corpus = root / f"corpus-{size}.jsonl"
            write_corpus(corpus, size)
            print(f"corpus: {size:,} cases, {corpus.stat().st_size / 1e6:.1f} MB of JSON Lines")
            for engine in args.engines:
                for workers in args.workers:
                    row = run_once(old, new, corpus, engine, workers)
                    rows.append(row)
                    print(
                        f"  {engine:9} workers={workers}  {row['wall_s']:7.1f} s  {row['cases_per_s']:7,} cases/s  "
                        f"parent peak {row['parent_peak_rss_mb']:6.1f} MB  "
                        f"worker peak {row['worker_peak_rss_mb']:6.1f} MB  "
                        f"changed items {row['changed_items']:,}  invalid {row['invalid']}  errors {row['errors']}"
                    )
            corpus.unlink()
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"sides": what, "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
