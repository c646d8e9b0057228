"""`imr-policy lint [PATH ...]`: static analysis of rule packs (gaps, overlaps, rules that never decide)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from imr_policy.authoring.lint import lint_paths
from imr_policy.cli import render
from imr_policy.cli.common import announce, files_hash, rule_paths
from imr_policy.cli.sarif import sarif_log
from imr_policy.evaluate import ENGINE_VERSION
from imr_policy.model.diagnostics import Diagnostic, Severity, has_errors, sort_and_cap

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "lint",
        help="analyse rule packs: gaps, overlaps, rules that never decide, exceptions that never apply",
        description="Validate the rule files under PATH (default: the checkout's policies/, else the "
        "installed packs), then analyse every "
        "valid edition: cases no rule decides (lint.gap), rules that never decide (lint.shadowed) or can "
        "never hold (lint.unsatisfiable), exceptions that never apply, gaps between editions, and, as "
        "notes, where rules with different outcomes overlap and the first one decides (lint.overlap).",
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="rule files or directories (default: the checkout's policies/, else the installed packs)",
    )
    p.add_argument(
        "--notes",
        action="store_true",
        help="list the notes (overlaps that the rule order settles) in text output; they are only counted otherwise",
    )
    p.add_argument("--no-notes", action="store_true", help="leave out notes, also from the count and the JSON")
    p.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="text (default), json, or sarif (SARIF 2.1.0, for code scanning in CI)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    source = rule_paths(args.paths)
    if source is None:
        return EXIT_USAGE
    content_hash = files_hash(source.paths)
    result, findings = lint_paths(list(source.paths), display_root=Path.cwd())
    if args.no_notes:
        findings = tuple(d for d in findings if d.severity is not Severity.NOTE)
    everything = sort_and_cap([*result.diagnostics, *findings])
    ok = not has_errors(everything)
    if args.format == "sarif":
        properties = {"files": list(result.files), "policy_set": source.to_dict(content_hash)}
        log = sarif_log(
            everything, tool_version=ENGINE_VERSION, exit_code=EXIT_OK if ok else EXIT_INVALID, properties=properties
        )
        sys.stdout.write(render.to_json(log))
    elif args.format == "json":
        data = {
            "ok": ok,
            "files": list(result.files),
            "policy_set": source.to_dict(content_hash),
            "diagnostics": [d.to_dict() for d in everything],
        }
        sys.stdout.write(render.to_json(data))
    else:
        shown = everything if args.notes else tuple(d for d in everything if d.severity is not Severity.NOTE)
        if shown:
            print(render.diagnostics_text(shown))
        announce(source, content_hash, sys.stdout)
        print(summary(everything, len(result.files)) + _unlisted(len(everything) - len(shown)))
    return EXIT_OK if ok else EXIT_INVALID


def summary(diagnostics: tuple[Diagnostic, ...], files: int) -> str:
    def count(severity: Severity, word: str) -> str:
        n = sum(1 for d in diagnostics if d.severity is severity)
        return f"{n} {word}{'s' if n != 1 else ''}"

    return (
        f"{files} file{'s' if files != 1 else ''} analysed: {count(Severity.ERROR, 'error')}, "
        f"{count(Severity.WARNING, 'warning')}, {count(Severity.NOTE, 'note')}"
    )


def _unlisted(notes: int) -> str:
    if not notes:
        return ""
    return f" (overlaps the rule order settles; `imr-policy lint --notes` lists {'it' if notes == 1 else 'them'})"
