"""`imr-policy validate [PATH ...]`: every problem in every rule file, with file:line:col."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from imr_policy.cli import render
from imr_policy.resources import policies_dir
from imr_policy.validate import load_editions

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "validate", help="check rule files and report every problem with file:line:col"
    )
    p.add_argument("paths", nargs="*", type=Path, help="rule files or directories (default: the shipped packs)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = args.paths or [policies_dir()]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"imr-policy: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_USAGE
    result = load_editions(list(paths), display_root=Path.cwd())
    if args.format == "json":
        sys.stdout.write(
            render.to_json(
                {
                    "ok": result.ok,
                    "files": list(result.files),
                    "diagnostics": [d.to_dict() for d in result.diagnostics],
                }
            )
        )
    else:
        if result.diagnostics:
            print(render.diagnostics_text(result.diagnostics), file=sys.stderr)
        print(render.summary(result.diagnostics, len(result.files)))
    return EXIT_OK if result.ok else EXIT_INVALID
