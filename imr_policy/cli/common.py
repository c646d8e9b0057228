"""Helpers shared by subcommands: reading inputs and reporting errors the same way everywhere."""

from __future__ import annotations

import sys
from pathlib import Path

from imr_policy.cli import render
from imr_policy.errors import CaseError, PolicyError


def read_text(path: str) -> tuple[str, str]:
    """The text of `path` (`-` is standard input) and the name to show in messages."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    return Path(path).read_text(encoding="utf-8"), path


def report_invalid(exc: CaseError | PolicyError) -> None:
    print(render.diagnostics_text(exc.diagnostics), file=sys.stderr)
    what = "the case is" if isinstance(exc, CaseError) else "the rule files are"
    print(f"imr-policy: {what} not valid; no determination was made", file=sys.stderr)
