"""Diagnostics: one problem, with a stable code, a location and a hint.

Messages follow one style: lowercase, no final period, user values in backticks, no Python type
names, and "did you mean" where a near name exists. Each code is documented in docs/diagnostics.md.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

DOCS_URL = "docs/diagnostics.md"


def see(code: str) -> str:
    """Where a reader finds what `code` means: the section of docs/diagnostics.md inside a checkout (the
    file is there, beside the working directory), else the verb that prints it from the installed copy."""
    if Path(DOCS_URL).is_file():  # one stat, and only when a problem is rendered
        return f"{DOCS_URL}#{code.replace('.', '')}"
    return f"imr-policy diagnostic {code}"


DEFAULT_CAP = 200


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"  # for information only (`imr-policy lint` shows them; `validate` does not)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a rule file or a case.

    `path` is the JSON path of the offending value (`$.rules[2].when[0].fact`), `line` and `column` are
    1-based positions in `file` when the input came from a file or text.
    """

    code: str
    message: str
    path: str = "$"
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def location(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return where

    def render(self, source_line: str | None = None) -> str:
        """The diagnostic as text; with `source_line` (the text of line `line` of `file`), a code frame
        under it: the line, and a caret under the column, as rustc and Cedar show."""
        text = f"{self.location}: {self.severity.value}[{self.code}] {self.message} (at {self.path})"
        if source_line is not None and self.line is not None:
            text += "\n" + code_frame(source_line, self.line, self.column or 1)
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text + f"\n  see: {see(self.code)}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
        }
        for key in ("file", "line", "column", "hint"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


_TOKEN = re.compile(r"[^\s,\[\]{}]+")
FRAME_WIDTH = 160  # a longer line is cut around the column


def code_frame(source_line: str, line: int, column: int) -> str:
    """`source_line` with its line number and carets under the token at `column` (1-based)."""
    shown = source_line.rstrip("\r\n").expandtabs(1)
    start = max(0, min(column - 1, len(shown)))
    if len(shown) > FRAME_WIDTH:  # keep the column in view, never print a huge line
        left = max(0, start - FRAME_WIDTH // 2)
        shown, start = shown[left : left + FRAME_WIDTH], start - left
    rest = shown[start:]
    if rest[:1] in ('"', "'") and rest.find(rest[0], 1) > 0:
        width = rest.find(rest[0], 1) + 1
    else:
        token = _TOKEN.match(rest)
        width = len(token[0].rstrip(":")) if token else 1
    number = str(line)
    gutter = " " * len(number)
    return f"{gutter} |\n{number} | {shown}\n{gutter} | {' ' * start}{'^' * max(1, width)}"


def sort_and_cap(diagnostics: Iterable[Diagnostic], cap: int = DEFAULT_CAP) -> tuple[Diagnostic, ...]:
    """Order diagnostics by file and position (errors before warnings at one place) and keep at most `cap`."""
    ordered = sorted(
        diagnostics,
        key=lambda d: (
            d.file or "",
            d.line or 0,
            d.column or 0,
            d.severity != Severity.ERROR,
            d.code,
            d.path,
        ),
    )
    # a `diagnostics.capped` already in the list says that a stage stopped looking (imr_policy/loading/limits.py,
    # `max_errors`): the count below is then a lower bound, and the message says so
    stopped = [d for d in ordered if d.code == "diagnostics.capped"]
    if stopped:
        ordered = [d for d in ordered if d.code != "diagnostics.capped"]
    if len(ordered) <= cap:
        return (*ordered, *stopped[:1])
    dropped = len(ordered) - cap
    return (
        *ordered[:cap],
        Diagnostic(
            code="diagnostics.capped",
            message=f"{dropped} more problems not shown" + (", and more were not looked for" if stopped else ""),
            hint="fix the problems above and run again",
            severity=Severity.WARNING,
        ),
    )


def did_you_mean(value: object, choices: Iterable[str]) -> str | None:
    """A "did you mean `x`" suffix when `value` is close to one of `choices`."""
    if not isinstance(value, str):
        return None
    options = list(choices)
    by_lower = {c.lower(): c for c in options}
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"did you mean `{by_lower[close[0]]}`?" if close else None


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


# ------------------------------------------------------------------------- paths of a rule file's format

_PREFIX = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*")


def rename(path: str, renames: Mapping[str, str]) -> str:
    """`path` as the file writes it: its longest internal prefix replaced by the file's path (the renames
    imr_policy.loading.packformat makes for a format-2 pack)."""
    if not renames:
        return path
    probe = path
    while probe:
        target = renames.get(probe)
        if target is not None:
            return target + path[len(probe) :]
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut <= 0:
            return path
        probe = probe[:cut]
    return path  # pragma: no cover - a path always starts with `$`


def rename_text(text: str, renames: Mapping[str, str]) -> str:
    """Every JSON path quoted in a message, as the file writes it."""
    if not renames or "$." not in text:
        return text
    return _PREFIX.sub(lambda m: rename(m[0], renames), text)
