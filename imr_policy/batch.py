"""Batch evaluation: every entry of a corpus -> one output record, in input order.

A record is one JSON object per line of the output:

    {"index": 0, "source": "cases.jsonl:1", "status": "decided", "case_id": "...", "determination": {...}}
    {"index": 1, "source": "cases.jsonl:2", "status": "invalid", "case_id": null, "diagnostics": [...]}
    {"index": 2, "source": "cases.jsonl:3", "status": "error", "case_id": "...", "error": "..."}

`decided` carries the determination exactly as `imr-policy evaluate --format json` prints it;
`invalid` carries every diagnostic (code, message, file, line, JSON path, hint); `error` means the
engine failed on that case (no determination, never an approval). No entry is ever dropped, so the
output has exactly as many records as the corpus has entries.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from imr_policy.corpus import Entry, parse
from imr_policy.errors import CaseError, EngineError
from imr_policy.evaluate import Engine
from imr_policy.model import Provenance
from imr_policy.sides import PackSource, load_pack

Status = Literal["decided", "invalid", "error"]


@dataclass(frozen=True, slots=True)
class Record:
    index: int
    source: str
    status: Status
    case_id: str | None
    line: str  # the output record as one line of JSON
    problems: tuple[str, ...] = ()  # one line per problem, for the terminal
    determinations: tuple[str, ...] = ()  # per item, for the summary


@dataclass(frozen=True, slots=True)
class EvaluateJob:
    """Evaluate each entry with the policy set `pack` (see imr_policy.runner.Job)."""

    pack: PackSource
    engine: Literal["durable", "reference"] = "durable"
    min_provenance: Provenance | None = None

    @property
    def cache_key(self) -> str:
        return f"evaluate:{self.engine}:{self.pack.name}:{self.pack.content_hash}:{hash(self.pack.files)}"

    def setup(self) -> Engine:
        return load_pack(self.pack, engine=self.engine)

    def run(self, state: Engine, entry: Entry) -> Record:
        return evaluate_entry(state, entry, min_provenance=self.min_provenance)

    def crashed(self, entry: Entry, reason: str) -> Record:
        return crashed_entry(entry, reason)


def crashed_entry(entry: Entry, reason: str) -> Record:
    """The `error` record of an entry whose worker process died deciding it (imr_policy.runner)."""
    message = f"engine error: {reason}"
    line = _record(entry, "error", None, error=message)
    return Record(entry.index, entry.source, "error", None, line, (f"{_shown(entry)}: {message}",))


def _record(entry: Entry, status: Status, case_id: str | None, **extra: Any) -> str:
    data = {"index": entry.index, "source": entry.source, "status": status, "case_id": case_id, **extra}
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: escaped, so the record can still be written
        line = json.dumps(data, separators=(",", ":"))
    return line


def evaluate_entry(engine: Engine, entry: Entry, *, min_provenance: Provenance | None = None) -> Record:
    """One corpus entry -> its record. Never raises for bad input or an engine failure, and a defect
    of this package met on one entry becomes that entry's `error` record: the run goes on."""
    try:
        return _evaluate_entry(engine, entry, min_provenance)
    except Exception as exc:  # a defect, not bad input: no determination for this entry, never an approval
        message = f"internal error ({type(exc).__name__}); no determination was made"
        line = _record(entry, "error", None, error=message)
        return Record(entry.index, entry.source, "error", None, line, (f"{_shown(entry)}: {message}",))


def _shown(entry: Entry) -> str:
    return entry.source.encode("utf-8", "backslashreplace").decode("utf-8")


def _evaluate_entry(engine: Engine, entry: Entry, min_provenance: Provenance | None) -> Record:
    try:
        case = parse(entry)
    except CaseError as exc:
        problems = tuple(d.render().splitlines()[0] for d in exc.diagnostics)
        line = _record(entry, "invalid", None, diagnostics=[d.to_dict() for d in exc.diagnostics])
        return Record(entry.index, entry.source, "invalid", None, line, problems)
    try:
        determination = engine.evaluate(case, min_provenance=min_provenance)
    except CaseError as exc:  # valid, but for a jurisdiction the policy set has no profile of
        problems = tuple(d.render().splitlines()[0] for d in exc.diagnostics)
        line = _record(entry, "invalid", None, diagnostics=[d.to_dict() for d in exc.diagnostics])
        return Record(entry.index, entry.source, "invalid", None, line, problems)
    except EngineError as exc:
        message = str(exc)
        line = _record(entry, "error", case.case_id, error=message)
        return Record(
            entry.index, entry.source, "error", case.case_id, line, (f"{entry.source}: engine error: {message}",)
        )
    line = _record(entry, "decided", case.case_id, determination=determination.to_dict())
    kinds = tuple(i.determination for i in determination.items)
    return Record(entry.index, entry.source, "decided", case.case_id, line, (), kinds)


class RecordWriter:
    """The output of a batch, written so that it never holds part of a record.

    Each record is encoded whole and written with unbuffered `os.write` calls before the next one is
    taken, so a run that stops (an exception, Ctrl-C, a signal) leaves only whole lines. A write that
    fails (a full disk) is undone: the file is cut back to the end of the last whole record and the
    error raised, so the records before it stay readable and count what was done."""

    def __init__(self, fd: int | None, *, close: bool) -> None:
        self._fd = fd  # None: standard output without a file descriptor (a test's capture)
        self._close = close
        self.written = 0  # bytes of whole records
        self.records = 0

    @classmethod
    def open(cls, path: str) -> RecordWriter:
        if path == "-":
            sys.stdout.flush()
            try:
                return cls(sys.stdout.fileno(), close=False)
            except (AttributeError, OSError, ValueError):
                return cls(None, close=False)
        return cls(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), close=True)

    def write(self, line: str) -> None:
        if self._fd is None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            self.records += 1
            return
        data = memoryview((line + "\n").encode("utf-8"))
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError:
            if done and self._close:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self.written)
            raise
        self.written += done
        self.records += 1

    def close(self) -> None:
        if self._close and self._fd is not None:
            os.close(self._fd)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass
class Totals:
    """Counts over a batch: every entry lands in exactly one of decided / invalid / error."""

    entries: int = 0
    decided: int = 0
    invalid: int = 0
    errors: int = 0
    items: Counter[str] = field(default_factory=Counter)

    def add(self, record: Record) -> None:
        self.entries += 1
        if record.status == "decided":
            self.decided += 1
            self.items.update(record.determinations)
        elif record.status == "invalid":
            self.invalid += 1
        else:
            self.errors += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "decided": self.decided,
            "invalid": self.invalid,
            "errors": self.errors,
            "items": dict(sorted(self.items.items())),
        }


__all__ = ["EvaluateJob", "Record", "RecordWriter", "Totals", "evaluate_entry"]
