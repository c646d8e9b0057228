"""`imr-policy letter CASE`: the UR determination letter, with every element the regulation requires.

The letter is written from the determination (imr_policy.compliance.letter): each element the procedural pack in
force lists is filled from the case, the determination and the policy set, or printed as missing with
the reason. `--check` prints only what is missing and exits 1 when anything is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from imr_policy.cli import render
from imr_policy.cli.common import add_engine_options, engine_and_case
from imr_policy.compliance import letter
from imr_policy.model.errors import EngineError

EXIT_OK, EXIT_INCOMPLETE = 0, 1


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "letter",
        help="write the UR determination letter for a case, every required element filled or named missing",
        description="Evaluate the case and write the UR determination letter: for each request modified, "
        "delayed, denied or pended, every element 8 CCR 9792.9.1 lists (as the procedural pack in force "
        "words them), filled from the case and the determination or printed as missing with the reason. "
        "Nothing is invented: the reviewer's name, specialty and telephone come from utilization_review[].reviewer, "
        "and are missing when the case does not state them.",
    )
    p.add_argument("case", help="a case file (YAML or JSON), or - for standard input")
    p.add_argument("--format", choices=("text", "html", "json"), default="text")
    p.add_argument("--out", type=Path, help="write the letter to this file instead of standard output")
    p.add_argument(
        "--check",
        action="store_true",
        help="print only the required elements the letter lacks; exit 1 when any is missing",
    )
    add_engine_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = engine_and_case(args)
    if isinstance(loaded, int):
        return loaded
    engine, case = loaded
    try:
        written = letter.write(engine, case)
    except EngineError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return 1
    if args.check:
        text = letter.render_check(written) if args.format != "json" else render.to_json(letter.check_dict(written))
    else:
        text = (
            letter.render_html(written)
            if args.format == "html"
            else render.to_json(written.to_dict())
            if args.format == "json"
            else letter.render_text(written)
        )
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK if not args.check or written.complete else EXIT_INCOMPLETE
