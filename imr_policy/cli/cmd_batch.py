"""`imr-policy batch CORPUS --out decisions.jsonl`: decide every case of a corpus, on every core.

One output record per corpus entry, in input order (see imr_policy/compliance/batch.py); bad entries become
`invalid` or `error` records and are reported on standard error with their file and line, so the
totals always add up. Exit 0 when every case was decided, 1 when any was not, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from imr_policy.cli import render
from imr_policy.cli.common import announce, policy_source
from imr_policy.cli.progress import Progress
from imr_policy.compliance import corpus, runner
from imr_policy.compliance.batch import EvaluateJob, RecordWriter, Totals
from imr_policy.compliance.sides import pack_of, pinned
from imr_policy.engine.combine import PROVENANCE_ORDER
from imr_policy.model.errors import EngineError, PolicyError

EXIT_OK, EXIT_UNDECIDED, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "batch",
        help="decide every case of a corpus (a directory of case files or JSON Lines), on every core",
    )
    p.add_argument("corpus", type=Path, help="a directory of case files (YAML or JSON), or a JSON Lines file")
    p.add_argument("--out", required=True, help="the output JSON Lines file, one record per case (- for stdout)")
    p.add_argument(
        "--policies",
        type=Path,
        help="a directory of rule packs or one rule file (default: the checkout's policies/, else the installed packs)",
    )
    p.add_argument("--engine", choices=("durable", "reference"), default="durable")
    p.add_argument(
        "--min-provenance",
        choices=PROVENANCE_ORDER,
        help="pend any decision that rests on a number graded weaker than this (V > V-seed > V-2nd > UNVERIFIED)",
    )
    p.add_argument("--workers", type=int, help="worker processes (default: every core; 1 runs in this process)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--chunk-size", type=int, default=runner.DEFAULT_CHUNK, help="cases per task")
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)"
    )
    p.add_argument(
        "--compliance",
        metavar="FILE",
        type=Path,
        help="also write, per month of the UR decision, the timeliness of the UR decisions and the completeness "
        "of their letters (JSON; - for standard error), as an auditor under 8 CCR 9792.12 asks for them",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.corpus.exists():
        print(f"imr-policy: no such corpus: `{args.corpus}`", file=sys.stderr)
        return EXIT_USAGE
    if args.policies is not None and not args.policies.exists():
        print(f"imr-policy: no such file or directory: `{args.policies}`", file=sys.stderr)
        return EXIT_USAGE
    if (args.workers is not None and args.workers < 1) or args.chunk_size < 1:
        print("imr-policy: --workers and --chunk-size must be 1 or more", file=sys.stderr)
        return EXIT_USAGE
    source = policy_source(args.policies)
    chosen = source.load_path
    try:
        job = EvaluateJob(
            pinned(pack_of(chosen, str(chosen or "shipped packs"))),
            args.engine,
            args.min_provenance,
            compliance=args.compliance is not None,
        )
        announce(source, job.pack.content_hash)
    except PolicyError as exc:
        print(render.diagnostics_text(exc.diagnostics), file=sys.stderr)
        print("imr-policy: the rule files are not valid; no case was evaluated", file=sys.stderr)
        return EXIT_UNDECIDED
    totals = Totals()
    started = time.perf_counter()
    try:
        out = RecordWriter.open(args.out)
    except OSError as exc:
        print(f"imr-policy: cannot write `{args.out}`: {(exc.strerror or 'error').lower()}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with Progress(corpus.count(args.corpus), enabled=args.progress) as bar:
            for record in runner.run(
                job, corpus.entries(args.corpus), workers=args.workers, dask=args.dask, chunk_size=args.chunk_size
            ):
                out.write(record.line)
                totals.add(record)
                for problem in record.problems:
                    bar.write(problem)
                bar.update()
    except ImportError as exc:
        print(
            f"imr-policy: --dask needs the Dask extra: pip install 'imr-policy[dask]' ({exc.name} is missing)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except EngineError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return EXIT_UNDECIDED
    except OSError as exc:  # the output could not be written: what it holds are whole records
        print(
            f"imr-policy: cannot write `{args.out}`: {(exc.strerror or 'error').lower()}; it holds the first "
            f"{out.records:,} records, each whole",
            file=sys.stderr,
        )
        return EXIT_UNDECIDED
    finally:
        out.close()
    elapsed = time.perf_counter() - started
    items = ", ".join(f"{k} {n:,}" for k, n in sorted(totals.items.items())) or "none"
    where = f"Dask at {args.dask}" if args.dask else render.count(args.workers or runner.default_workers(), "worker")
    print(
        f"imr-policy batch: {totals.entries:,} cases: {totals.decided:,} decided, {totals.invalid:,} invalid, "
        f"{totals.errors:,} engine errors; items: {items}; {where}, {elapsed:.1f} s "
        f"({totals.entries / elapsed if elapsed else 0:,.0f} cases/s)",
        file=sys.stderr,
    )
    if args.compliance is not None and not _write_compliance(args.compliance, totals):
        return EXIT_UNDECIDED
    return EXIT_OK if totals.decided == totals.entries else EXIT_UNDECIDED


def _write_compliance(where: Path, totals: Totals) -> bool:
    """The compliance view (`--compliance`), to a file or standard error; False after saying why it could not."""
    report = render.to_json(
        {"by_month": totals.compliance_by_month(), "by_organization": totals.compliance_by_organization()}
    )
    if str(where) == "-":
        sys.stderr.write(report)
        return True
    try:
        where.write_text(report, encoding="utf-8")
    except OSError as exc:
        print(f"imr-policy: cannot write `{where}`: {(exc.strerror or 'error').lower()}", file=sys.stderr)
        return False
    return True
