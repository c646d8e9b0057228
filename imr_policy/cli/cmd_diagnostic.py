"""`imr-policy diagnostic CODE`: what a diagnostic code means, as docs/diagnostics.md explains it (the
checkout's copy, or the one shipped with the package), so a `see:` line can be followed from a wheel."""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from typing import Any

from imr_policy.loading import resources
from imr_policy.model.diagnostics import did_you_mean

EXIT_OK, EXIT_USAGE = 0, 2

_HEADING = re.compile(r"^## ", re.M)
_SECTION = re.compile(r"## ([a-z0-9_.-]+)[ \t]*$", re.M)  # a code's heading: `## policy.unknown-limit`


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "diagnostic",
        help="explain a diagnostic code: what it means, an example and the fix",
        description="Print the section of docs/diagnostics.md for CODE (for example `policy.unknown-limit`): "
        "what the problem is, a file that has it, what imr-policy says and how to fix it. `--list` prints "
        "every code. Reads the checkout's docs/diagnostics.md when there is one, else the installed copy.",
    )
    p.add_argument("code", nargs="?", help="a diagnostic code, as after `error[` in a message")
    p.add_argument("--list", action="store_true", help="print every documented code, one per line")
    p.set_defaults(func=run)


def sections(text: str) -> dict[str, str]:
    """Each documented code and its section: its heading up to the next heading of the same level."""
    headings = [m.start() for m in _HEADING.finditer(text)] + [len(text)]
    out: dict[str, str] = {}
    for start, end in itertools.pairwise(headings):
        found = _SECTION.match(text, start)
        if found is not None:
            out[found[1]] = text[start:end].rstrip() + "\n"
    return out


def run(args: argparse.Namespace) -> int:
    text = resources.diagnostics_doc().read_text(encoding="utf-8")
    known = sections(text)
    if args.list:
        sys.stdout.write("".join(f"{code}\n" for code in known))
        return EXIT_OK
    if not args.code:
        print("imr-policy diagnostic: give a CODE (e.g. policy.unknown-limit), or --list", file=sys.stderr)
        return EXIT_USAGE
    code = args.code.strip().strip("[]")
    section = known.get(code)
    if section is None:
        hint = did_you_mean(code, sorted(known)) or "`imr-policy diagnostic --list` prints every code"
        print(f"imr-policy diagnostic: `{code}` is not a documented code; {hint}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(section)
    return EXIT_OK
