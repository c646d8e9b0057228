"""`imr-policy show SERVICE`: each edition's rules for one service as a decision table (text, markdown, JSON)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from imr_policy.cli import render
from imr_policy.cli.common import announce, files_hash, report_invalid, rule_paths
from imr_policy.explain import table
from imr_policy.language.facts import SERVICES
from imr_policy.loading.validate import load_editions
from imr_policy.model.diagnostics import did_you_mean
from imr_policy.model.errors import PolicyError

EXIT_OK, EXIT_NONE, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "show",
        help="print the rules of each edition for one service as a decision table",
        description="Each edition's rules for SERVICE as a decision table: rows in the order the engine tries "
        "them (hit policy first), one column per fact tested, then the outcome and the citation; the "
        "exceptions and the table by condition follow. A view of the packs as loaded: nothing is decided.",
    )
    p.add_argument("service", help=f"one of: {', '.join(SERVICES)}")
    p.add_argument("--edition", metavar="G@E", help="only this edition (guideline@edition)")
    p.add_argument("--jurisdiction", metavar="XX", help="only editions that apply in this jurisdiction")
    p.add_argument("--date", metavar="YYYY-MM-DD", help="only editions in force for a service on this date")
    p.add_argument("--table", action="store_true", help="accepted for the issue's spelling; tables are the default")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.add_argument(
        "--policies",
        type=Path,
        action="append",
        default=[],
        help="a directory of rule packs (default: the checkout's policies/, else the installed packs)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.service not in SERVICES:
        hint = did_you_mean(args.service, SERVICES) or f"expected one of: {', '.join(SERVICES)}"
        print(f"imr-policy: unknown service `{args.service}`; {hint}", file=sys.stderr)
        return EXIT_USAGE
    day = None
    if args.date is not None:
        try:
            day = dt.date.fromisoformat(args.date)
        except ValueError:
            print(f"imr-policy: --date `{args.date}` is not a date (YYYY-MM-DD)", file=sys.stderr)
            return EXIT_USAGE
    source = rule_paths(args.policies)
    if source is None:
        return EXIT_USAGE
    result = load_editions(list(source.paths))
    if not result.ok:
        report_invalid(PolicyError("the rule packs are not valid", list(result.diagnostics)))
        return EXIT_NONE
    announce(source, files_hash(source.paths))
    editions = [
        e
        for e in result.editions
        if (args.edition is None or e.key == args.edition)
        and (args.jurisdiction is None or args.jurisdiction in e.jurisdictions)
        and (day is None or e.in_force(day))
    ]
    tables = [t for t in (table.table(e, args.service) for e in editions) if t is not None]
    if not tables:
        print(f"imr-policy: no edition selected has rules for `{args.service}`", file=sys.stderr)
        return EXIT_NONE
    if args.format == "json":
        sys.stdout.write(render.to_json({"service": args.service, "tables": [t.to_dict() for t in tables]}))
    else:
        sys.stdout.write("\n".join(table.render(t, args.format) for t in tables))
    return EXIT_OK
