"""The decision log: one record per determination, enough to replay it, identifying fields redacted.

A record (one line of JSON Lines, or one row of SQLite) holds a decision id, the time, the engine
version, the policy set (id and content hash), a sha256 of the input as received, each item's
determination and basis, a sha256 of the whole determination, and the case with its identifying
fields redacted. `replay` evaluates the logged case again and reports every record whose
determination would differ.

Redaction must never change what the case decides, or the log could not be replayed. So a field is
redacted only when no fact that the answering policy set's rules read changes with it: the facts
each request derives (`derive.request_facts`) are computed for the case as received and for the
redacted case, and compared. A field some rule reads (today `claimant.age` and `claimant.sex` are
such facts in the registry, although no shipped rule tests them) is kept, and the record says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from imr_policy.engine.combine import PROVENANCE_ORDER
from imr_policy.engine.derive import request_facts
from imr_policy.language.conditions import match_rows, phrase_matches, tokens
from imr_policy.loading.case import validate_case
from imr_policy.model.errors import CaseError, EngineError
from imr_policy.model.values import Case, ConditionRow, UnnamedCondition, leaves

if TYPE_CHECKING:
    from imr_policy.evaluate import Engine
    from imr_policy.model.values import Determination, Edition

FORMAT = 1
PLACEHOLDER = "redacted"
_SQLITE_MAGIC = b"SQLite format 3\x00"


# ---------------------------------------------------------------------------------------- hashing


def _default(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} to the decision log")


def canonical_json(data: object) -> bytes:
    """The bytes that are hashed: keys sorted, no whitespace, UTF-8, dates as ISO 8601 text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default).encode()


def sha256_of(data: object) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data)).hexdigest()


# ---------------------------------------------------------------------------------------- redaction


def facts_read(editions: Iterable[Edition]) -> frozenset[str]:
    """Every fact a rule or an exception of `editions` tests, or names as missing."""
    names: set[str] = set()
    for edition in editions:
        for rule in edition.rules:
            names.update(c.fact for c in leaves(rule.when))
            names.update(rule.outcome.missing)
        for exc in edition.exceptions:
            names.update(c.fact for c in leaves(exc.when))
    return frozenset(names)


# a table by condition: its rows, and its reading of diagnoses that name no condition
ConditionTable = tuple[tuple[ConditionRow, ...], UnnamedCondition | None]


def condition_tables(editions: Iterable[Edition]) -> tuple[ConditionTable, ...]:
    """The tables by condition of `editions` (the rows the `condition` fact is matched against)."""
    return tuple((e.conditions, e.unnamed_condition) for e in editions if e.conditions)


def _drop_claimant(key: str) -> Callable[[dict[str, Any]], list[str]]:
    def apply(case: dict[str, Any]) -> list[str]:
        claimant = case.get("claimant")
        if not isinstance(claimant, dict) or key not in claimant:
            return []
        del claimant[key]
        if not claimant:
            del case["claimant"]
        return [f"$.claimant.{key}"]

    return apply


def _each(list_key: str, key: str, how: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable[..., list[str]]:
    def apply(case: dict[str, Any]) -> list[str]:
        done = []
        for i, entry in enumerate(case.get(list_key, [])):
            if key in entry:
                how(entry, case)
                done.append(f"$.{list_key}[{i}].{key}")
        return done

    return apply


def _postsurgical(key: str, how: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable[..., list[str]]:
    def apply(case: dict[str, Any]) -> list[str]:
        done = []
        for i, request in enumerate(case.get("requests", [])):
            surgery = request.get("postsurgical")
            if isinstance(surgery, dict) and key in surgery:
                how(surgery, request)
                done.append(f"$.requests[{i}].postsurgical.{key}")
        return done

    return apply


def _placeholder(key: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def how(entry: dict[str, Any], _: dict[str, Any]) -> None:
        entry[key] = PLACEHOLDER

    return how


def _drop(key: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def how(entry: dict[str, Any], _: dict[str, Any]) -> None:
        del entry[key]

    return how


def _surgery_day(surgery: dict[str, Any], request: dict[str, Any]) -> None:
    # a required date that must not follow the date of service: the date of service itself reveals nothing new
    surgery["surgery_date"] = request["date_of_service"]


# The identifying fields of the case contract (docs/case-format.md), in the order they are tried.
# Everything else is kept: dates, services, quantities, history counts and the UR decision are what
# rules decide on, and case_id is the caller's key to the decision (callers should make it opaque).
REDACTABLE: tuple[tuple[str, Callable[[dict[str, Any]], list[str]]], ...] = (
    ("claimant.age", _drop_claimant("age")),
    ("claimant.sex", _drop_claimant("sex")),
    ("diagnoses[].description", _each("diagnoses", "description", _placeholder("description"))),
    ("diagnoses[].code", _each("diagnoses", "code", _drop("code"))),
    ("history[].progress_notes", _each("history", "progress_notes", _drop("progress_notes"))),
    ("requests[].postsurgical.procedure", _postsurgical("procedure", _placeholder("procedure"))),
    ("requests[].postsurgical.surgery_date", _postsurgical("surgery_date", _surgery_day)),
)


@dataclass(frozen=True, slots=True)
class Redaction:
    """A case as logged: `redacted` lists the JSON paths removed or replaced; `kept` the identifying
    fields left in because a rule of the policy set reads a fact derived from them."""

    case: dict[str, Any]
    redacted: tuple[str, ...]
    kept: tuple[str, ...]


def _facts(
    case: Mapping[str, Any] | Case, reads: frozenset[str], tables: tuple[ConditionTable, ...] = ()
) -> list[dict[str, Any]] | None:
    try:
        valid = case if isinstance(case, Case) else validate_case(case)
    except CaseError:
        return None
    out = [{k: v for k, v in request_facts(valid, r).items() if k in reads} for r in valid.requests]
    if "condition" in reads:
        # the rows each request's diagnoses match, and how (the code, or the row's phrase): the `condition`
        # fact and the basis of every decision that tests it
        for facts, request in zip(out, valid.requests, strict=True):
            facts["condition"] = [
                [(m.row.id, m.matched_by, m.diagnosis) for m in match_rows(rows, valid, request, unnamed)]
                for rows, unnamed in tables
            ]
    return out


def _described_by_rows(tables: tuple[ConditionTable, ...]) -> Callable[[dict[str, Any]], list[str]]:
    """Replace each description by the phrases of the tables that it matches (policy words, never the
    record's): a phrase matches the replacement exactly when it matches the description, so every row
    matched by words is matched again, by the same phrase. A description that names only the injured part
    in a table's words (`unnamed_condition`) is replaced by those words, so it still names no condition."""
    vocabulary = [
        frozenset().union(*(tokens(w) for w in (*u.words, *(r for g in u.regions for r in g.regions))))
        for _, u in tables
        if u is not None
    ]

    def apply(case: dict[str, Any]) -> list[str]:
        done = []
        for i, entry in enumerate(case.get("diagnoses", [])):
            if isinstance(entry, dict) and "description" in entry:
                text = entry["description"]
                phrases = [
                    p
                    for rows, _ in tables
                    for row in rows
                    for p in (*row.all_words, *row.general_words)
                    if phrase_matches(p, text)
                ]
                words = tokens(text)
                if not phrases and words and any(words <= v for v in vocabulary):
                    phrases = sorted(words)  # every word is one of the policy's: nothing of the record's
                entry["description"] = "; ".join(dict.fromkeys(phrases)) or PLACEHOLDER
                done.append(f"$.diagnoses[{i}].description")
        return done

    return apply


# A case with every identifying field set, to a value whose redaction changes every fact derived from it.
_PROBE: dict[str, Any] = {
    "case_id": "redaction-probe",
    "date_of_injury": "2010-01-01",
    "claimant": {"age": 40, "sex": "female"},
    "diagnoses": [{"description": "probe", "code": "M54.5", "severity": "moderate"}],
    "requests": [
        {
            "id": "r",
            "service": "physical_therapy",
            "quantity": 6,
            "date_of_service": "2015-07-10",
            "postsurgical": {"procedure": "knee arthroscopy", "surgery_date": "2015-03-01"},
        }
    ],
    "history": [
        {"service": "physical_therapy", "completed": 2, "functional_improvement": "documented", "progress_notes": "x"}
    ],
}


class Redactor:
    """Redacts, for one policy set, the identifying fields that no fact its rules read depends on.

    Every redaction is checked: the facts the rules read are derived again from the redacted case and
    must equal those of the case as received, or the field is kept. A field found to matter once is
    remembered and kept from then on, so the common case costs one check, not one per field."""

    def __init__(self, reads: frozenset[str], *, conditions: tuple[ConditionTable, ...] = ()) -> None:
        self.reads = reads
        self._tables = conditions if "condition" in reads else ()
        # with tables by condition, a description is reduced to the tables' phrases it names rather than
        # replaced, so the rows it names survive redaction and the record's words never reach the log
        self._steps = tuple(
            (name, _described_by_rows(self._tables) if name == "diagnoses[].description" and self._tables else apply)
            for name, apply in REDACTABLE
        )
        self._read_fields: set[str] = set()  # REDACTABLE names seen to change a fact the rules read
        if "condition" in reads and not conditions:
            # rules test the rows the diagnoses name, but the tables are not known here: the fields the rows
            # are matched by cannot be checked, so they are kept (pass `conditions=condition_tables(...)`)
            self._read_fields.update(("diagnoses[].description", "diagnoses[].code"))
        self.redact(_PROBE)  # learn them up front, so that every worker redacts the same fields

    def redact(self, case: Mapping[str, Any], *, valid: Case | None = None) -> Redaction:
        """`case` must be valid; pass `valid` (its Case) when you have it, to save validating it again."""
        original = _facts(valid if valid is not None else case, self.reads, self._tables)
        if original is None:
            raise ValueError("only a valid case can be redacted")
        text = canonical_json(case)
        trial = json.loads(text)
        redacted = [p for name, apply in self._steps if name not in self._read_fields for p in apply(trial)]
        if _facts(trial, self.reads, self._tables) == original:
            kept: list[str] = []
            if self._read_fields:
                scratch = json.loads(text)
                kept = [p for name, apply in self._steps if name in self._read_fields for p in apply(scratch)]
            return Redaction(trial, tuple(redacted), tuple(kept))
        # a field not yet known to matter feeds a fact the rules read: try the fields one at a time
        out, redacted, kept = json.loads(text), [], []
        for name, apply in self._steps:
            attempt = json.loads(canonical_json(out))
            paths = apply(attempt)
            if not paths:
                continue
            if name not in self._read_fields and _facts(attempt, self.reads, self._tables) == original:
                out = attempt
                redacted.extend(paths)
            else:
                self._read_fields.add(name)
                kept.extend(paths)
        return Redaction(out, tuple(redacted), tuple(kept))


def redact(case: Mapping[str, Any], *, reads: frozenset[str], conditions: tuple[ConditionTable, ...] = ()) -> Redaction:
    """Remove or replace the identifying fields of a valid `case` that no fact in `reads` depends on
    (`conditions`: the policy set's tables by condition, `condition_tables(editions)`)."""
    return Redactor(reads, conditions=conditions).redact(case)


# ---------------------------------------------------------------------------------------- records


def now() -> str:
    """UTC, RFC 3339, milliseconds: `2015-07-10T16:04:05.123Z`."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_SUMMARY = ("request", "service", "requested_quantity", "determination", "approved_quantity", "medically_necessary")
_SUMMARY_OPTIONAL = ("imr_outcome",)
_SUMMARY_LISTS = ("basis", "missing_facts")


def _summary(item: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: item[k] for k in _SUMMARY}
    out.update({k: item[k] for k in _SUMMARY_OPTIONAL if k in item})
    out.update({k: item[k] for k in _SUMMARY_LISTS})
    return out


def _as_logged(det: dict[str, Any], case: Mapping[str, Any], logged: Mapping[str, Any]) -> dict[str, Any]:
    """`det` as the logged (redacted) case would word it: a rationale quotes a diagnosis's description (and a
    procedure) as `'...'`, and the log keeps only the phrases of the tables it names, so each quotation of a
    replaced text is replaced the same way. Replaying the logged case then gives the same hash."""
    pairs: dict[str, str] = {}
    for before, after in zip(case.get("diagnoses") or (), logged.get("diagnoses") or (), strict=False):
        if isinstance(before, dict) and isinstance(after, dict):
            old, new = before.get("description"), after.get("description")
            if isinstance(old, str) and isinstance(new, str) and old != new:
                pairs[f"'{old}'"] = f"'{new}'"
    for before, after in zip(case.get("requests") or (), logged.get("requests") or (), strict=False):
        old_s = before.get("postsurgical") if isinstance(before, dict) else None
        new_s = after.get("postsurgical") if isinstance(after, dict) else None
        if isinstance(old_s, dict) and isinstance(new_s, dict):
            old, new = old_s.get("procedure"), new_s.get("procedure")
            if isinstance(old, str) and isinstance(new, str) and old != new:
                pairs[f"'{old}'"] = f"'{new}'"
    if not pairs:
        return det
    order = sorted(pairs, key=len, reverse=True)  # a longer quotation first, should one contain another

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            for old in order:
                value = value.replace(old, pairs[old])
            return value
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    return {**det, "items": sub(det["items"])}


def _decision_hash(det: Mapping[str, Any]) -> str:
    # engine_version and policy_set are left out: a decision replayed by a newer engine or under a
    # policy set whose content changed elsewhere is the same decision if every item is the same
    return sha256_of({"case_id": det["case_id"], "items": det["items"]})


def decision_record(
    case: Mapping[str, Any],
    determination: Determination,
    *,
    redactor: Redactor | None,
    valid: Case | None = None,
    decision_id: str | None = None,
    timestamp: str | None = None,
    min_provenance: str | None = None,
    request: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The log record of one determination of `case` (a valid case, as received; `valid` its Case).

    `redactor` None logs the case whole. `min_provenance`: the floor the determination was made with
    (replay uses it again). `request`: the HTTP request's `request_id` and `traceparent`, when known."""
    text = canonical_json(case)
    redaction = Redaction(json.loads(text), (), ()) if redactor is None else redactor.redact(case, valid=valid)
    det = determination.to_dict()
    return {
        "format": FORMAT,
        "decision_id": decision_id or str(uuid.uuid4()),
        "timestamp": timestamp or now(),
        "engine_version": det["engine_version"],
        "policy_set": det["policy_set"],
        "case_id": det["case_id"],
        "input_hash": "sha256:" + hashlib.sha256(text).hexdigest(),
        "items": [_summary(i) for i in det["items"]],
        "decision_hash": _decision_hash(_as_logged(det, case, redaction.case)),
        "min_provenance": min_provenance,
        **({"request": dict(request)} if request else {}),
        "case": redaction.case,
        "redaction": {
            "applied": redactor is not None,
            "fields": list(redaction.redacted),
            "kept": list(redaction.kept),
        },
    }


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """One encoded record and the columns the SQLite log indexes."""

    decision_id: str
    timestamp: str
    case_id: str
    content_hash: str
    line: bytes  # compact JSON, no newline

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> LoggedDecision:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(
            record["decision_id"], record["timestamp"], record["case_id"], record["policy_set"]["content_hash"], line
        )


# ---------------------------------------------------------------------------------------- logs


Sync = Literal["always", "interval", "never"]


class DecisionLog(Protocol):
    """One writer (the service calls every method from one thread). `append` writes a whole record or
    nothing; `sync` makes every record appended so far durable, and when it cannot, removes the records
    appended since the last successful sync and raises."""

    path: Path

    def append(self, entry: LoggedDecision) -> None: ...

    def sync(self) -> None: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


Writer = Callable[[int, memoryview], int]


def _create(path: Path, flags: int) -> int:
    # owner-only: the records are protected health information (an existing file keeps its mode)
    return os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)


class JsonLinesLog:
    """Appends one line per decision with unbuffered writes to a file opened for appending.

    A write that fails part-way (a full disk, a file size limit) is cut back, so the file never holds
    a partial line, and the error is raised: the service answers 503 and logs nothing for that request.
    `sync` is `fsync`; if it fails, every line written since the last successful sync is cut away too,
    because whether the kernel kept them is then unknown (their requests are answered 503).

    `write` is the test seam (docs/service.md): a function like `os.write(fd, data) -> int`."""

    def __init__(self, path: Path, *, write: Writer = os.write) -> None:
        self.path = path
        self._write = write
        self._lock = threading.Lock()
        self._fd = _create(path, os.O_WRONLY | os.O_APPEND)
        self._durable = os.fstat(self._fd).st_size  # everything before this offset has been synced (or was there)

    def append(self, entry: LoggedDecision) -> None:
        data = memoryview(entry.line + b"\n")
        with self._lock:
            start = os.fstat(self._fd).st_size  # one writer: the line goes here (O_APPEND)
            try:
                while data:
                    n = self._write(self._fd, data)
                    if n <= 0:
                        raise OSError(errno.EIO, "the decision log accepted no bytes")
                    data = data[n:]
            except BaseException:
                self._cut(start)
                raise

    def sync(self) -> None:
        with self._lock:
            try:
                os.fsync(self._fd)
            except OSError:
                self._cut(self._durable)
                raise
            self._durable = os.fstat(self._fd).st_size

    def _cut(self, size: int) -> None:
        with contextlib.suppress(OSError):  # truncating needs no space; if even that fails, the raise says why
            os.ftruncate(self._fd, size)

    def reopen(self) -> None:
        """After the file was moved away (log rotation): continue in a new file at `path`. The old file
        is synced and closed only once the new one is open, so no write ever meets a closed file; if the
        new one cannot be opened, writing goes on in the old one and the error is raised."""
        fd = _create(self.path, os.O_WRONLY | os.O_APPEND)
        with self._lock:
            old, self._fd = self._fd, fd
            durable, self._durable = self._durable, os.fstat(fd).st_size
        try:
            os.fsync(old)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(old, durable)
            raise
        finally:
            os.close(old)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)


class SqliteLog:
    """One row per decision, each insert its own transaction (a failed one leaves no row).

    `durable` True: `synchronous=FULL`, every commit reaches the disk before `append` returns. False:
    `synchronous=NORMAL` (the WAL is synced at checkpoints) and `sync` runs a checkpoint; if it fails,
    the rows appended since the last successful sync are deleted and the error raised."""

    def __init__(self, path: Path, *, durable: bool = True, fsync: bool = True) -> None:
        self.path = path
        self._mode = "FULL" if durable else "NORMAL" if fsync else "OFF"
        self._unsynced: list[str] = []
        os.close(_create(path, os.O_RDWR))  # owner-only; SQLite gives its WAL files the same mode
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._mode}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS decisions (decision_id TEXT PRIMARY KEY, timestamp TEXT NOT NULL, "
            "case_id TEXT NOT NULL, content_hash TEXT NOT NULL, record TEXT NOT NULL)"
        )
        return db

    def append(self, entry: LoggedDecision) -> None:
        self._db.execute(
            "INSERT INTO decisions VALUES (?, ?, ?, ?, ?)",
            (entry.decision_id, entry.timestamp, entry.case_id, entry.content_hash, entry.line.decode()),
        )
        if self._mode == "NORMAL":
            self._unsynced.append(entry.decision_id)

    def sync(self) -> None:
        if self._mode != "NORMAL" or not self._unsynced:
            return
        try:
            self._db.execute("PRAGMA wal_checkpoint(FULL)").fetchall()
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self._db.executemany("DELETE FROM decisions WHERE decision_id = ?", [(i,) for i in self._unsynced])
            self._unsynced.clear()
            raise
        self._unsynced.clear()

    def reopen(self) -> None:
        db = self._connect()
        old, self._db = self._db, db
        old.close()

    def close(self) -> None:
        self._db.close()


LogFormat = Literal["jsonl", "sqlite"]


def log_format(path: Path) -> LogFormat:
    """SQLite for `.sqlite`, `.sqlite3` and `.db` files, JSON Lines otherwise."""
    return "sqlite" if path.suffix in (".sqlite", ".sqlite3", ".db") else "jsonl"


def open_log(path: Path, *, kind: LogFormat | None = None, sync: Sync = "always") -> DecisionLog:
    """The decision log at `path`, created owner-only (0600) if it does not exist.

    `sync` is the fsync policy the caller will follow: for SQLite it sets `synchronous` (`always`:
    FULL, each commit durable; `interval`: NORMAL, durable at `sync()`; `never`: OFF)."""
    if (kind or log_format(path)) == "sqlite":
        return SqliteLog(path, durable=sync == "always", fsync=sync != "never")
    return JsonLinesLog(path)


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where imr-policy keeps state: `$XDG_STATE_HOME/imr-policy`, else `~/.local/state/imr-policy`."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path(env.get("HOME") or Path.home()) / ".local/state"
    return root / "imr-policy"


def default_log_path(env: Mapping[str, str] | None = None) -> Path:
    """The decision log of `imr-policy serve` when none is named; its directory is created owner-only
    (0700) and the file owner-only (0600): the records are protected health information."""
    directory = state_dir(env)
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # mkdir's mode is masked by the umask
    return directory / "decisions.jsonl"


@dataclass(frozen=True, slots=True)
class LogEntry:
    where: str  # `line 3` of a JSON Lines file, `row 3` of a SQLite log
    record: dict[str, Any] | None
    problem: str | None = None


_REQUIRED: tuple[tuple[str, type], ...] = (
    ("decision_id", str),
    ("case_id", str),
    ("policy_set", dict),
    ("input_hash", str),
    ("items", list),
    ("decision_hash", str),
    ("case", dict),
    ("redaction", dict),
)


def _check(record: object) -> str | None:
    if not isinstance(record, dict):
        return "not a decision record: each line must be a JSON object"
    if record.get("format") != FORMAT:
        return f"not a decision record of format {FORMAT}: `format` is `{record.get('format')}`"
    for key, kind in _REQUIRED:
        if not isinstance(record.get(key), kind):
            return f"not a decision record: `{key}` is missing or malformed"
    floor = record.get("min_provenance")  # absent in records written before the floor was logged: no floor
    if floor is not None and floor not in PROVENANCE_ORDER:
        return f"not a decision record: `min_provenance` is `{floor}`, not one of {', '.join(PROVENANCE_ORDER)}"
    return None


def read_log(path: Path) -> Iterator[LogEntry]:
    """Every record of a JSON Lines or SQLite decision log, with a problem for each unreadable one."""
    with path.open("rb") as fh:
        is_sqlite = fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    if is_sqlite:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT rowid, record FROM decisions ORDER BY rowid").fetchall()
        finally:
            db.close()
        for rowid, text in rows:
            yield _entry(f"row {rowid}", text)
        return
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if raw.strip():
                yield _entry(f"line {n}", raw)


def _entry(where: str, raw: str | bytes) -> LogEntry:
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return LogEntry(where, None, "not valid JSON")
    problem = _check(record)
    return LogEntry(where, None if problem else record, problem)


# ---------------------------------------------------------------------------------------- replay


@dataclass(frozen=True, slots=True)
class ReplayResult:
    where: str
    decision_id: str | None
    case_id: str | None
    # `differs`: a decision (determination, quantity, outcome, basis or missing facts) differs; `worded`: the
    # decisions are the same and only their explanation (rationale, evidence search, trace) differs
    status: Literal["same", "differs", "worded", "unreplayable"]
    recorded_policy_set: str | None  # the content hash that answered then
    differences: tuple[str, ...] = ()


def _show(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict) and "rule" in value:
        return f"{value.get('guideline')}@{value.get('edition')}:{value['rule']}"
    return str(value)


def _differences(old: list[Any], new: list[Mapping[str, Any]]) -> list[str]:
    found: list[str] = []
    old_ids = [i.get("request") for i in old if isinstance(i, dict)]
    new_ids = [i["request"] for i in new]
    if old_ids != new_ids:
        return [f"items: requests `{', '.join(map(str, old_ids))}` -> `{', '.join(new_ids)}`"]
    for before, after in zip(old, new, strict=True):
        now_ = _summary(after)
        for key in (*_SUMMARY, *_SUMMARY_OPTIONAL, *_SUMMARY_LISTS):
            if before.get(key) != now_.get(key):
                found.append(f"item `{after['request']}`: {key} `{_show(before.get(key))}` -> `{_show(now_.get(key))}`")
    return found


def replay_one(entry: LogEntry, engine: Engine) -> ReplayResult:
    record = entry.record
    if record is None:
        return ReplayResult(entry.where, None, None, "unreplayable", None, (entry.problem or "unreadable",))
    ident = (entry.where, record["decision_id"], record["case_id"])
    answered = record["policy_set"].get("content_hash")
    redaction = record["redaction"]
    if not redaction.get("fields") and sha256_of(record["case"]) != record["input_hash"]:
        return ReplayResult(*ident, "unreplayable", answered, ("the logged case does not match its input hash",))
    try:
        det = engine.evaluate(record["case"], min_provenance=record.get("min_provenance")).to_dict()
    except CaseError as exc:
        problems = tuple(f"the logged case is not valid: {d.message} (at {d.path})" for d in exc.diagnostics)
        return ReplayResult(*ident, "unreplayable", answered, problems)
    except EngineError as exc:
        return ReplayResult(*ident, "unreplayable", answered, (f"the engine failed: {exc}",))
    # both the logged items and the hash of the whole determination must match what is decided now
    found = _differences(record["items"], det["items"])
    if det["case_id"] != record["case_id"]:
        found.insert(0, f"case_id `{record['case_id']}` -> `{det['case_id']}`")
    if found:
        return ReplayResult(*ident, "differs", answered, tuple(found))
    if _decision_hash(det) != record["decision_hash"]:
        worded = ("the explanation (rationale, evidence search or trace) differs; the decisions are the same",)
        return ReplayResult(*ident, "worded", answered, worded)
    return ReplayResult(*ident, "same", answered)


def replay(entries: Iterable[LogEntry], engine: Engine) -> Iterator[ReplayResult]:
    """Evaluate every logged case again with `engine` and compare with what was decided."""
    for entry in entries:
        yield replay_one(entry, engine)
