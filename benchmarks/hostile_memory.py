"""Does memory stay flat, and is each refusal cheap, over many hostile or invalid inputs?

Feeds the inputs of tests/hostile/ (an alias bomb, unknown and Python tags, 5,000-digit integers,
lone surrogates, deep nesting, ...) plus an 800 KB invalid case, round after round, through the
parsers every entry point uses: `parse_case_text` (CLI `evaluate`, directory corpora), the service
worker's body handling (`Handler.handle`, strict JSON, one translation of the errors, a lazy source
map) and `load_editions` for rule files. It samples the process's resident set size (VmRSS) and the
number of live Python objects every --every inputs, and records the slowest single input of each
kind, so the figures say both "flat" and "bounded per input" in one run.

Nothing is timed against a threshold here or in the tests (docs/limits.md states the limits; the
tests assert the refusals). Linux only (reads /proc/self/status).

Run from the repository root:  python benchmarks/hostile_memory.py [--n 20000] [--every 2000] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import imr_policy  # noqa: E402
from imr_policy.loading.validate import load_editions  # noqa: E402
from imr_policy.loading.yamlsrc import load_text  # noqa: E402
from imr_policy.service import wire  # noqa: E402
from imr_policy.service.worker import Handler  # noqa: E402

HOSTILE = REPO / "tests" / "hostile"
EXAMPLE = REPO / "examples" / "cases" / "imr-2015-psych-example.yaml"


def status_mb(field: str) -> float:
    with Path("/proc/self/status").open(encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status (this script needs Linux)")


def big_invalid_case() -> bytes:
    """About 800 KB of JSON: the example case with 9,000 history entries, each with a wrong type."""
    case = load_text(EXAMPLE.read_text(encoding="utf-8"), file=None, code_prefix="case").data
    case["history"] = [
        {"service": "psychotherapy", "completed": "sixteen", "functional_improvement": "not_documented"}
    ] * 9000
    return json.dumps(case).encode()


def inputs() -> list[tuple[str, str, bytes]]:
    """(kind, name, bytes): every hostile file, as a case text and as an HTTP body, and the big case."""
    found: list[tuple[str, str, bytes]] = []
    for path in sorted(HOSTILE.iterdir()):
        if path.is_file() and path.suffix in (".yaml", ".json"):
            raw = path.read_bytes()
            found.append(("case-text", path.name, raw))
            found.append(("http-body", path.name, raw))
    big = big_invalid_case()
    found.append(("http-body", "invalid-800kb.json", big))
    found.append(("case-text", "invalid-800kb.json", big))
    return found


def run_one(kind: str, raw: bytes, handler: Handler, packs: Path) -> None:
    if kind == "case-text":
        with contextlib.suppress(imr_policy.CaseError):
            imr_policy.parse_case_text(raw.decode("utf-8", "replace"), file="hostile")
    elif kind == "http-body":
        frame = handler.handle({"id": 1, "op": "evaluate"}, raw)
        header, _ = wire.decode(frame[wire.PREFIX :])
        if header.get("status") == "internal-error":
            raise SystemExit(f"the worker failed on a hostile body: {header}")
    else:
        (packs / "pack.yaml").write_bytes(raw)
        load_editions([packs / "pack.yaml"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="inputs to feed in all (default 20,000)")
    parser.add_argument("--every", type=int, default=2_000, help="sample memory every this many inputs")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    engine = imr_policy.load(engine="reference")
    handler = Handler(engine)
    items = inputs()
    bomb = (HOSTILE / "alias-bomb.yaml").read_bytes()
    items.append(("rule-file", "alias-bomb.yaml", bomb))
    series: list[dict[str, Any]] = []
    slowest: dict[str, tuple[float, str]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        packs = Path(tmp)
        for i in range(args.n):
            kind, name, raw = items[i % len(items)]
            t0 = time.perf_counter()
            run_one(kind, raw, handler, packs)
            took = time.perf_counter() - t0
            if took > slowest.get(kind, (0.0, ""))[0]:
                slowest[kind] = (took, name)
            if (i + 1) % args.every == 0 or i == 0:
                row = {
                    "inputs": i + 1,
                    "rss_mb": round(status_mb("VmRSS"), 2),
                    "python_objects": len(gc.get_objects()),
                    "elapsed_s": round(time.perf_counter() - started, 1),
                }
                series.append(row)
                print(
                    f"{row['inputs']:>8,} inputs  RSS {row['rss_mb']:8.2f} MB  {row['python_objects']:>9,} objects"
                    f"  {row['elapsed_s']:7.1f} s",
                    flush=True,
                )
    steady = series[1:] or series
    summary = {
        "inputs": args.n,
        "distinct_inputs": len(items),
        "rss_first_sample_after_warmup_mb": steady[0]["rss_mb"],
        "rss_end_mb": series[-1]["rss_mb"],
        "rss_growth_after_warmup_mb": round(series[-1]["rss_mb"] - steady[0]["rss_mb"], 2),
        "python_objects_growth_after_warmup": series[-1]["python_objects"] - steady[0]["python_objects"],
        "peak_rss_mb": round(status_mb("VmHWM"), 2),
        "slowest_ms_by_kind": {k: [round(v[0] * 1000, 2), v[1]] for k, v in sorted(slowest.items())},
    }
    print(json.dumps(summary, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"series": series, "summary": summary}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
