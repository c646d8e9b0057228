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

from imr_policy.compliance.corpus import Entry, parse
from imr_policy.compliance.sides import PackSource, load_pack
from imr_policy.evaluate import Engine
from imr_policy.explain import ur_letter
from imr_policy.loading.procedure import Procedure
from imr_policy.model.errors import CaseError, EngineError
from imr_policy.model.values import Case, Determination, Provenance

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
    # per item under UR review, with `compliance`: (month of the UR decision, UR organization, timeliness,
    # letter), for the compliance view an auditor asks for (8 CCR 9792.12): see `compliance_of`
    compliance: tuple[tuple[str, str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class EvaluateJob:
    """Evaluate each entry with the policy set `pack` (see imr_policy.compliance.runner.Job)."""

    pack: PackSource
    engine: Literal["durable", "reference"] = "durable"
    min_provenance: Provenance | None = None
    compliance: bool = False

    @property
    def cache_key(self) -> str:
        return f"evaluate:{self.engine}:{self.pack.name}:{self.pack.content_hash}:{hash(self.pack.files)}"

    def setup(self) -> Engine:
        return load_pack(self.pack, engine=self.engine)

    def run(self, state: Engine, entry: Entry) -> Record:
        return evaluate_entry(state, entry, min_provenance=self.min_provenance, compliance=self.compliance)

    def crashed(self, entry: Entry, reason: str) -> Record:
        return crashed_entry(entry, reason)


def crashed_entry(entry: Entry, reason: str) -> Record:
    """The `error` record of an entry whose worker process died deciding it (imr_policy.compliance.runner)."""
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


def evaluate_entry(
    engine: Engine, entry: Entry, *, min_provenance: Provenance | None = None, compliance: bool = False
) -> Record:
    """One corpus entry -> its record. Never raises for bad input or an engine failure, and a defect
    of this package met on one entry becomes that entry's `error` record: the run goes on."""
    try:
        return _evaluate_entry(engine, entry, min_provenance, compliance)
    except Exception as exc:  # a defect, not bad input: no determination for this entry, never an approval
        message = f"internal error ({type(exc).__name__}); no determination was made"
        line = _record(entry, "error", None, error=message)
        return Record(entry.index, entry.source, "error", None, line, (f"{_shown(entry)}: {message}",))


def _shown(entry: Entry) -> str:
    return entry.source.encode("utf-8", "backslashreplace").decode("utf-8")


def _evaluate_entry(engine: Engine, entry: Entry, min_provenance: Provenance | None, compliance: bool) -> Record:
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
    views = compliance_of(case, determination, engine.procedures) if compliance else ()
    return Record(entry.index, entry.source, "decided", case.case_id, line, (), kinds, views)


def compliance_of(
    case: Case, determination: Determination, procedures: tuple[Procedure, ...]
) -> tuple[tuple[str, str, str, str], ...]:
    """Per item under UR review: the month of the UR decision (`YYYY-MM`, or `unknown` when the case does
    not date it), the UR organization (`utilization_review[].reviewer.organization`, or `not_stated`), its
    timeliness (`timely`, `untimely`, `cannot_decide`, or `not_stated` when the case does
    not say when the request was received), and its letter (`complete`, `incomplete`, or `none_needed` for
    a certification), as imr_policy.engine.timeliness and imr_policy.explain.ur_letter find them."""
    checks = {c.request: c for c in ur_letter.check(case, determination, procedures)}
    out = []
    for item in determination.items:
        ur = case.ur_for(item.request)
        if ur is None:
            continue
        day = ur.decided_at.date() if ur.decided_at is not None else ur.decision_date
        month = day.strftime("%Y-%m") if day is not None else "unknown"
        timely = item.ur_timeliness.status if item.ur_timeliness is not None else "not_stated"
        check = checks.get(item.request)
        letter = "none_needed" if check is None else "complete" if check.complete else "incomplete"
        organization = (ur.reviewer.organization if ur.reviewer is not None else None) or "not_stated"
        out.append((month, organization, timely, letter))
    return tuple(out)


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
    compliance: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def add(self, record: Record) -> None:
        self.entries += 1
        if record.status == "decided":
            self.decided += 1
            self.items.update(record.determinations)
            self.compliance.update(record.compliance)
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

    def compliance_by_month(self) -> dict[str, dict[str, Any]]:
        """Per month of the UR decision: the decisions reviewed, their timeliness and their letters."""
        return self._compliance_by(0)

    def compliance_by_organization(self) -> dict[str, dict[str, Any]]:
        """Per UR organization (`not_stated` where the case names none): the same counts."""
        return self._compliance_by(1)

    def _compliance_by(self, key: int) -> dict[str, dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = {}
        for view, n in sorted(self.compliance.items()):
            timely, letter = view[2], view[3]
            row = groups.setdefault(view[key], {"decisions": 0, "timeliness": Counter(), "letters": Counter()})
            row["decisions"] += n
            row["timeliness"][timely] += n
            row["letters"][letter] += n
        return {
            g: {"decisions": r["decisions"], "timeliness": dict(r["timeliness"]), "letters": dict(r["letters"])}
            for g, r in groups.items()
        }


__all__ = ["EvaluateJob", "Record", "RecordWriter", "Totals", "compliance_of", "evaluate_entry"]
