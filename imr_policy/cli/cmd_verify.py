"""`imr-policy verify [PATH]`: check every declared invariant of every edition on generated cases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from imr_policy import load
from imr_policy.cli.common import announce, policy_source, report_invalid
from imr_policy.errors import PolicyError
from imr_policy.verify import verify

EXIT_OK, EXIT_FAILED = 0, 1


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify", help="check the invariants the rule packs declare on generated cases (Hypothesis)"
    )
    p.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="a directory of rule packs (default: the checkout's policies/, else the installed packs)",
    )
    p.add_argument("--examples", type=int, default=200, help="generated cases per check (default 200)")
    p.add_argument("--seed", type=int, help="a random seed; without one the search is derandomized (repeatable)")
    p.add_argument("--engine", choices=("durable", "reference"), default="durable")
    p.add_argument("--edition", action="append", metavar="GUIDELINE@EDITION", help="check only these editions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        source = policy_source(args.path)
        engine = load(source.load_path, engine=args.engine)
    except PolicyError as exc:
        report_invalid(exc)
        return EXIT_FAILED
    announce(source, engine.policy_set.content_hash, sys.stdout)
    failed = 0
    total = 0
    known = {e.key for e in engine.editions}
    unknown = [e for e in args.edition or () if e not in known]
    if unknown:
        print(
            f"imr-policy: unknown edition {', '.join(f'`{e}`' for e in unknown)}; expected one of: "
            + ", ".join(sorted(known)),
            file=sys.stderr,
        )
        return 2
    for check in verify(engine, examples=args.examples, seed=args.seed, only=args.edition):
        total += 1
        if check.ok:
            print(f"ok    {check.edition}  {check.name}")
            continue
        failed += 1
        print(f"FAIL  {check.edition}  {check.name}: {check.description}")
        print(f"      {check.detail}")
        print("      counterexample (a case file; paste it into a test, or evaluate it):")
        text = yaml.safe_dump(check.counterexample, sort_keys=False, width=100)
        print("\n".join("        " + line for line in text.splitlines()))
    word = "check" if total == 1 else "checks"
    print(f"{total} {word}, {failed} failed ({args.examples} generated cases each)")
    sys.stdout.flush()
    return EXIT_FAILED if failed else EXIT_OK
