"""`imr-policy validate [PATH ...]`: every problem in every rule file, with file:line:col.

It runs the static analysis of `imr-policy lint` too, without its notes: a rule that can never hold is
an error, a gap or a rule that never decides a warning."""

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
from imr_policy.model.diagnostics import Severity, has_errors, sort_and_cap

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "validate", help="check rule files and report every problem with file:line:col"
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="rule files or directories (default: the checkout's policies/, else the installed packs)",
    )
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
    diagnostics = sort_and_cap([*result.diagnostics, *(d for d in findings if d.severity is not Severity.NOTE)])
    ok = not has_errors(diagnostics)
    if args.format == "sarif":
        properties = {"files": list(result.files), "policy_set": source.to_dict(content_hash)}
        log = sarif_log(
            diagnostics, tool_version=ENGINE_VERSION, exit_code=EXIT_OK if ok else EXIT_INVALID, properties=properties
        )
        sys.stdout.write(render.to_json(log))
    elif args.format == "json":
        sys.stdout.write(
            render.to_json(
                {
                    "ok": ok,
                    "files": list(result.files),
                    "policy_set": source.to_dict(content_hash),
                    "diagnostics": [d.to_dict() for d in diagnostics],
                }
            )
        )
    else:
        if diagnostics:
            print(render.diagnostics_text(diagnostics), file=sys.stderr)
        announce(source, content_hash, sys.stdout)
        print(render.summary(diagnostics, len(result.files)))
    return EXIT_OK if ok else EXIT_INVALID
