"""Helpers shared by subcommands: reading inputs and reporting errors the same way everywhere."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imr_policy.case import parse_case_text
from imr_policy.cli import render
from imr_policy.errors import CaseError, EngineError, PolicyError
from imr_policy.evaluate import Engine, load
from imr_policy.limits import TooLarge, for_prefix, read_limited
from imr_policy.model import Case
from imr_policy.resources import policies_dir


def read_text(path: str) -> tuple[str, str]:
    """The text of `path` (`-` is standard input) and the name to show in messages, read within the case
    size limit (imr_policy/limits.py: raises TooLarge past it, never reading a huge input whole)."""
    limit = for_prefix("case")
    if path == "-":
        return read_limited(sys.stdin.buffer, limit).decode("utf-8"), "<stdin>"
    return read_limited(path, limit).decode("utf-8"), path


def report_invalid(exc: CaseError | PolicyError) -> None:
    print(render.diagnostics_text(exc.diagnostics), file=sys.stderr)
    what = "the case is" if isinstance(exc, CaseError) else "the rule files are"
    print(f"imr-policy: {what} not valid; no determination was made", file=sys.stderr)


def engine_and_case(args: argparse.Namespace) -> tuple[Engine, Case] | int:
    """The engine (`--policies`, `--engine`) and the validated case (`args.case`) a subcommand works on,
    or the exit code after reporting why there is none (1: unreadable or invalid input)."""
    try:
        text, name = read_text(args.case)
    except TooLarge as exc:
        report_invalid(CaseError("the case is not valid", [exc.refusal(prefix="case", file=args.case)]))
        return 1
    except (OSError, UnicodeDecodeError) as exc:
        print(f"imr-policy: cannot read `{args.case}`: {exc}", file=sys.stderr)
        return 1
    try:
        return load(args.policies, engine=args.engine), parse_case_text(text, file=name)
    except (CaseError, PolicyError) as exc:
        report_invalid(exc)
        return 1
    except EngineError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return 1


def rule_paths(paths: list[Path]) -> list[Path] | None:
    """The rule files or folders a subcommand checks (default: the shipped packs), or None after reporting
    the ones that do not exist."""
    chosen = paths or [policies_dir()]
    missing = [p for p in chosen if not p.exists()]
    if missing:
        print(f"imr-policy: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return None
    return chosen
