"""`imr-policy migrate [PATH...]`: rewrite format-1 rule packs as format 2, each proved to decide the same."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from imr_policy.authoring.migrate import migrate_paths
from imr_policy.cli.common import rule_paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "migrate",
        help="rewrite format-1 rule packs as format 2 (decisions per service), proved to decide the same",
        description="Rewrite each format-1 rule pack as format 2: `rules:` become `decisions:` with their hit "
        "policy, comments kept. A file is rewritten only when the new text is valid and `imr-policy diff` finds "
        "no difference between the two (not a rule, an order that decides, a hit policy or a word). Without "
        "--write, prints the changes as a unified diff.",
    )
    p.add_argument("paths", nargs="*", type=Path, help="rule files or folders (default: the checkout's policies/)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the files in place")
    mode.add_argument("--check", action="store_true", help="exit 1 if any rule pack is still format 1")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    source = rule_paths(list(args.paths))
    if source is None:
        return EXIT_USAGE
    results = migrate_paths(list(source.paths))
    refused = [m for m in results if m.status == "refused"]
    pending = [m for m in results if m.status == "migrated"]
    for m in refused:
        print(f"{m.file}: not migrated: {m.reason}", file=sys.stderr)
    if args.check:
        for m in pending:
            print(f"{m.file}: format 1 (`imr-policy migrate --write {m.file}` rewrites it)", file=sys.stderr)
    elif args.write:
        for m in pending:
            Path(m.file).write_text(m.text, encoding="utf-8")
    else:
        for m in pending:
            sys.stdout.write(m.unified_diff(Path(m.file).read_text(encoding="utf-8")))
    already = sum(m.status == "already" for m in results)
    verb = "rewritten" if args.write else "to migrate"
    print(
        f"{len(pending)} {verb}, {already} already format 2, {len(refused)} refused; "
        "each one migrated decides as before (imr-policy diff finds no difference)",
        file=sys.stderr,
    )
    return EXIT_FAILED if refused or (args.check and pending) else EXIT_OK
