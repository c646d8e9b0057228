"""`imr-policy evaluate CASE`: decide every request of a case."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from imr_policy.cli import render
from imr_policy.cli.common import add_engine_options, engine_and_case, report_invalid
from imr_policy.engine.combine import PROVENANCE_ORDER
from imr_policy.model.errors import CaseError, EngineError

EXIT_OK, EXIT_INVALID = 0, 1


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("evaluate", help="decide every request of a case")
    p.add_argument("case", help="a case file (YAML or JSON), or - for standard input")
    p.add_argument("--format", choices=("text", "json", "yaml"), default="text")
    add_engine_options(p)
    p.add_argument(
        "--min-provenance",
        choices=PROVENANCE_ORDER,
        help="pend any decision that rests on a number graded weaker than this (V > V-seed > V-2nd > UNVERIFIED)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = engine_and_case(args)
    if isinstance(loaded, int):
        return loaded
    engine, case = loaded
    try:
        determination = engine.evaluate(case, min_provenance=args.min_provenance)
    except CaseError as exc:  # valid, but for a jurisdiction the policy set has no profile of
        report_invalid(exc)
        return EXIT_INVALID
    except EngineError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.format == "json":
        sys.stdout.write(render.to_json(determination.to_dict()))
    elif args.format == "yaml":
        sys.stdout.write(render.to_yaml(determination.to_dict()))
    else:
        sys.stdout.write(render.determination_text(determination) + "\n")
    return EXIT_OK
