"""A corpus of cases, read as a stream: a JSON Lines file, or a directory of case files.

Nothing is held in memory beyond one entry: a JSON Lines file is read line by line, a directory is
walked in sorted order (`*.yaml`, `*.yml`, `*.json` are one case each; `*.jsonl` files inside it are
read line by line too). Blank lines are not cases. Every other line or file is an `Entry`, in input
order, whether it turns out to be a valid case or not, so bad input is counted and reported, never
skipped: `parse` raises CaseError with diagnostics that name the file and line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imr_policy.loading.case import parse_case_text, validate_case
from imr_policy.loading.limits import TooLarge, for_prefix, read_limited
from imr_policy.loading.yamlsrc import StrictJsonError, strict_json
from imr_policy.model.diagnostics import Diagnostic
from imr_policy.model.errors import CaseError
from imr_policy.model.values import Case

CASE_SUFFIXES = (".yaml", ".yml", ".json")
LINES_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True, slots=True)
class Entry:
    """One case of a corpus as text, with where it came from. `problem` is set when it could not be read."""

    index: int  # 0-based position in the corpus
    file: str
    line: int | None  # 1-based, for JSON Lines
    text: str | None
    problem: Diagnostic | None = None

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


def files(path: Path) -> list[Path]:
    """The files of a corpus, in the order their entries are read."""
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix in (*CASE_SUFFIXES, *LINES_SUFFIXES)
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    return [path]


def entries(path: Path) -> Iterator[Entry]:
    """Every entry of the corpus at `path`, streamed in input order."""
    index = 0
    for file in files(path):
        if file.suffix in LINES_SUFFIXES or (file == path and file.suffix not in CASE_SUFFIXES):
            for line_no, raw in _lines(file):
                if raw is None:
                    over = TooLarge(for_prefix("case"), None).refusal(prefix="case", file=str(file), line=line_no)
                    yield Entry(index, str(file), line_no, None, over)
                else:
                    yield _decoded(index, str(file), line_no, raw)
                index += 1
        else:
            try:
                raw = read_limited(file, for_prefix("case"))
            except TooLarge as exc:
                yield Entry(index, str(file), None, None, exc.refusal(prefix="case", file=str(file)))
            except OSError as exc:
                reason = (exc.strerror or "unknown error").lower()
                problem = _unreadable(
                    str(file), None, f"cannot read the file: {reason}", hint="check the path and the file's permissions"
                )
                yield Entry(index, str(file), None, None, problem)
            else:
                yield _decoded(index, str(file), None, raw)
            index += 1


def count(path: Path) -> int:
    """How many entries `entries(path)` yields (one cheap pass, for a progress bar's total)."""
    total = 0
    for file in files(path):
        if file.suffix in LINES_SUFFIXES or (file == path and file.suffix not in CASE_SUFFIXES):
            total += sum(1 for _ in _lines(file))
        else:
            total += 1
    return total


def _lines(file: Path) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each non-blank line; None for a line over the case size limit, which is
    skipped to its end in bounded reads rather than held in memory."""
    limit = for_prefix("case").max_bytes
    with file.open("rb") as fh:
        line_no = 0
        while raw := fh.readline(limit + 2):  # the line, its newline, and one byte more
            line_no += 1
            if len(raw.rstrip(b"\r\n")) > limit:
                while not raw.endswith(b"\n") and (raw := fh.readline(1024 * 1024)):
                    pass
                yield line_no, None
            elif raw.strip():
                yield line_no, raw


def _decoded(index: int, file: str, line: int | None, raw: bytes) -> Entry:
    try:
        text = raw.decode("utf-8")
        return Entry(index, file, line, text.rstrip("\r\n") if line is not None else text)
    except UnicodeDecodeError as exc:
        what = "the line" if line is not None else "the file"
        return Entry(
            index,
            file,
            line,
            None,
            _unreadable(file, line, f"cannot read {what}: it is not UTF-8 text (byte {exc.start})"),
        )


def _unreadable(file: str, line: int | None, message: str, *, hint: str = "save the corpus as UTF-8") -> Diagnostic:
    return Diagnostic(code="case.unreadable", message=message, file=file, line=line, hint=hint)


# ---------------------------------------------------------------------------------------------- parsing


def parse(entry: Entry) -> Case:
    """The validated case of one entry; raises CaseError with diagnostics naming its file and line."""
    if entry.problem is not None or entry.text is None:
        problem = entry.problem or _unreadable(entry.file, entry.line, "cannot read the entry")
        raise CaseError("the case is not valid", [problem])
    if entry.line is None:
        return parse_case_text(entry.text, file=entry.file)
    try:
        data = strict_json(entry.text)
    except StrictJsonError as exc:
        if exc.limit is not None:
            over = dataclasses.replace(exc.limit, file=entry.file, line=entry.line)
            raise CaseError("the case is not valid", [over]) from None
        duplicate = exc.key is not None
        raise CaseError(
            "the case is not valid",
            [
                Diagnostic(
                    code="case.duplicate-key" if duplicate else "case.syntax",
                    message=exc.message,
                    file=entry.file,
                    line=entry.line,
                    column=None if duplicate else exc.column,
                    hint="JSON readers would silently keep only the last value; remove or rename one of them"
                    if duplicate
                    else "each line of a JSON Lines corpus is one case, a JSON object on one line",
                )
            ],
        ) from None
    try:
        return validate_case(data, file=entry.file)
    except CaseError as exc:
        located = [dataclasses.replace(d, line=entry.line, column=None) for d in exc.diagnostics]
        raise CaseError("the case is not valid", located) from None


def raw_case(entry: Entry) -> Any:
    """The entry's data as given (for showing an example case), or None if it does not parse."""
    if entry.text is None:
        return None
    try:
        if entry.line is not None:
            return strict_json(entry.text)
        from imr_policy.loading.yamlsrc import load_text  # noqa: PLC0415 - only for examples

        return load_text(entry.text, file=entry.file, code_prefix="case").data
    except ValueError:
        return None


__all__ = ["Entry", "count", "entries", "files", "parse", "raw_case"]
