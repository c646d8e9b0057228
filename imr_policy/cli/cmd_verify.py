"""`imr-policy verify [--policies PATH]`: check every declared invariant of every edition on generated cases."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import yaml

from imr_policy import load
from imr_policy.cli.common import announce, policy_source, report_invalid
from imr_policy.model.errors import PolicyError

EXIT_OK, EXIT_FAILED = 0, 1


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify", help="check the invariants the rule packs declare on generated cases (Hypothesis)"
    )
    p.add_argument(
        "--policies",
        type=Path,
        help="a directory of rule packs (default: the checkout's policies/, else the installed packs)",
    )
    p.add_argument("path", nargs="?", type=Path, help=argparse.SUPPRESS)  # deprecated: use --policies
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress line on standard error (default: when standard error is a terminal)",
    )
    p.add_argument("--examples", type=int, default=200, help="generated cases per check (default 200)")
    p.add_argument("--seed", type=int, help="a random seed; without one the search is derandomized (repeatable)")
    p.add_argument("--engine", choices=("durable", "reference"), default="durable")
    p.add_argument("--edition", action="append", metavar="GUIDELINE@EDITION", help="check only these editions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from imr_policy.authoring.verify import verify  # noqa: PLC0415 - Hypothesis, only for this verb
    except ImportError as exc:
        print(
            f"imr-policy: `verify` needs the `verify` extra ({exc.name} is missing): pip install 'imr-policy[verify]'",
            file=sys.stderr,
        )
        return 2
    if args.path is not None:
        if args.policies is not None:
            print("imr-policy: give the rule packs once, with --policies", file=sys.stderr)
            return 2
        print(
            f"imr-policy: `verify {args.path}` is deprecated; write `verify --policies {args.path}` "
            "(as the other verbs take it)",
            file=sys.stderr,
        )
    try:
        source = policy_source(args.policies or args.path)
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
    show = sys.stderr.isatty() if args.progress is None else args.progress
    line = _ProgressLine(sys.stderr) if show else None
    for check in verify(
        engine, examples=args.examples, seed=args.seed, only=args.edition, on_start=line.start if line else None
    ):
        if line is not None:
            line.clear()
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
        if check.baseline is not None:
            print("      the same request under the older edition (evaluate both to compare):")
            text = yaml.safe_dump(check.baseline, sort_keys=False, width=100)
            print("\n".join("        " + line for line in text.splitlines()))
        sys.stdout.flush()
    if line is not None:
        line.clear()
    word = "check" if total == 1 else "checks"
    print(f"{total} {word}, {failed} failed ({args.examples} generated cases each)")
    sys.stdout.flush()
    return EXIT_FAILED if failed else EXIT_OK


class _ProgressLine:
    """One line on standard error, rewritten before each check: how many are done, of how many, the one
    being searched and the time so far (a terminal gets it rewritten in place; a log, one line each)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self._width = 0

    def start(self, done: int, total: int, label: str) -> None:
        text = f"verify: {done}/{total} checks done, {time.monotonic() - self._started:.0f} s; searching {label}"
        if self._tty:
            self._stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def clear(self) -> None:
        if self._tty and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
