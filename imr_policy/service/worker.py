"""One evaluation worker process, started by `pool.py`; not a command for people.

    python -m imr_policy.service.worker --snapshot DIR --policy-set-id ID [--engine durable] [--unredacted]

It loads the policy set once, says hello (`ready` and the content hash it loaded), then answers one
frame at a time (wire.py): `evaluate` (JSON body -> determination and decision-log record), `letter`
(JSON body -> the UR letter of its determination, imr_policy.compliance.letter, and the decision-log record) and
`validate` (JSON body -> diagnostics). Everything that touches the untrusted body happens here, so a
crash or a hang costs this process and the one request it holds, never the server.

Test hook, off unless the environment has IMR_POLICY_TEST_FAULTS=1: a body whose `case_id` is
`imr-policy-test-fault:crash` makes the worker kill itself with SIGSEGV (as durable_rules does past
its limits), `imr-policy-test-fault:hang` makes it sleep forever (as durable_rules does when a
ruleset is too wide), and `imr-policy-test-fault:slow` makes it answer normally a second late (so a
client can go away before its answer). tests/service/ uses them to prove that the server survives
the first two and logs nothing for a client that left.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import gc
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

from imr_policy.compliance import audit, letter
from imr_policy.engine.combine import PROVENANCE_ORDER
from imr_policy.evaluate import Engine
from imr_policy.loading.case import case_diagnostics, validate_case
from imr_policy.loading.limits import for_prefix
from imr_policy.loading.yamlsrc import LazySourceMap, StrictJsonError, load_text, shown_key, strict_json
from imr_policy.model.diagnostics import Diagnostic, has_errors
from imr_policy.model.errors import CaseError, EngineError, PolicyError
from imr_policy.model.values import Case, Determination
from imr_policy.service import wire
from imr_policy.service.policyset import Snapshot, engine_for
from imr_policy.service.problems import diagnostics_json

FAULTS_ENV = "IMR_POLICY_TEST_FAULTS"
CRASH_CASE_ID = "imr-policy-test-fault:crash"
HANG_CASE_ID = "imr-policy-test-fault:hang"
SLOW_CASE_ID = "imr-policy-test-fault:slow"  # answered normally, one second late

_JSON_HINT = "send one JSON object with `Content-Type: application/json`"


# ---------------------------------------------------------------------------------------- the body


def _syntax(message: str, line: int | None = None, column: int | None = None) -> tuple[Diagnostic, ...]:
    return (Diagnostic("case.syntax", message, "$", None, line, column, _JSON_HINT),)


def parse_body(body: bytes) -> tuple[Any, tuple[Diagnostic, ...]]:
    """The JSON value of `body`, or the diagnostics that say why it is not one.

    Stricter than `json.loads`: a repeated key is an error (JSON leaves its meaning open; a silently
    dropped value could change a decision), and so are `NaN` and `Infinity`, which are not JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, _syntax(f"the body is not UTF-8 text (byte {exc.start})")
    try:
        return strict_json(text), ()
    except StrictJsonError as exc:
        if exc.limit is not None:
            return None, (exc.limit,)
        if exc.key is not None:
            return None, _duplicate(text, exc.key)
        return None, _syntax(exc.message, exc.line, exc.column)


def _duplicate(text: str, key: str) -> tuple[Diagnostic, ...]:
    # The YAML loader (JSON is YAML) reports duplicate keys with their JSON path, line and column.
    loaded = load_text(text, file=None, code_prefix="case")
    hint = "JSON readers disagree on which value of a repeated key counts; remove or rename one of them"
    found = tuple(dataclasses.replace(d, hint=hint) for d in loaded.diagnostics if d.code == "case.duplicate-key")
    if found:
        return found
    return (Diagnostic("case.duplicate-key", f"duplicate key `{shown_key(key)}`", "$", hint=hint),)


def _too_large(body: bytes) -> tuple[Diagnostic, ...]:
    """The limit diagnostic when `body` is over the case size limit (the server's own body limit may be
    set higher than the parser's), else nothing."""
    limit = for_prefix("case")
    if len(body) <= limit.max_bytes:
        return ()
    return (limit.exceeded("max_bytes", f"the body has {len(body):,} bytes", prefix="case"),)


# ---------------------------------------------------------------------------------------- requests

LETTER_FORMATS = ("json", "text", "html")


@dataclasses.dataclass(frozen=True, slots=True)
class _Decided:
    case: Case
    determination: Determination
    logged: audit.LoggedDecision


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Handler:
    """Answers the server's frames with one loaded Engine."""

    def __init__(self, engine: Engine, *, redacted: bool = True, faults: bool = False) -> None:
        self.engine = engine
        self.redactor = (
            audit.Redactor(audit.facts_read(engine.editions), conditions=audit.condition_tables(engine.editions))
            if redacted
            else None
        )
        self.faults = faults

    def handle(self, header: dict[str, Any], body: bytes) -> bytes:
        ident = header.get("id")
        try:
            if header.get("op") == "evaluate":
                return self._evaluate(ident, body, header.get("min_provenance"), header.get("request"))
            if header.get("op") == "validate":
                return self._validate(ident, body)
            if header.get("op") == "letter":
                return self._letter(ident, body, header)
            return wire.encode({"id": ident, "status": "internal-error", "message": "unknown operation"})
        except Exception as exc:  # a defect in this package: the server answers 500, the worker lives on
            print(f"imr-policy worker {os.getpid()}: {type(exc).__name__} while answering", file=sys.stderr)
            return wire.encode({"id": ident, "status": "internal-error", "message": type(exc).__name__})

    def _bad(self, ident: object, status: str, diagnostics: tuple[Diagnostic, ...]) -> bytes:
        return wire.encode({"id": ident, "status": status, "diagnostics": list(diagnostics_json(diagnostics))})

    def _parsed(self, ident: object, body: bytes) -> tuple[Any, bytes | None]:
        """The body's JSON value, or the answer that refuses it (413 over the size limit, 422 over another
        limit, 400 not JSON)."""
        if over := _too_large(body):
            return None, self._bad(ident, "too-large", over)
        data, problems = parse_body(body)
        if problems:
            limited = all(d.code == "case.limit" for d in problems)
            return None, self._bad(ident, "invalid" if limited else "malformed", problems)
        return data, None

    def _decide(self, ident: object, body: bytes, floor: Any, request: Any) -> _Decided | bytes:
        """The case of `body` decided, with its decision log record; or the answer that refuses it."""
        if floor is not None and floor not in PROVENANCE_ORDER:  # the server checks it; a frame is not trusted
            return wire.encode({"id": ident, "status": "internal-error", "message": "unknown provenance grade"})
        if not isinstance(request, dict) or not all(isinstance(v, str) for v in request.values()):
            request = None
        data, refused = self._parsed(ident, body)
        if refused is not None:
            return refused
        self._fault(data)
        try:
            # the body's source map is parsed only if the case is invalid, and its problems are found once
            case = validate_case(data, source_map=LazySourceMap(body))
        except CaseError as exc:
            return self._bad(ident, "invalid", exc.diagnostics)
        try:
            determination = self.engine.evaluate(case, min_provenance=floor)
        except CaseError as exc:  # valid, but for a jurisdiction the policy set has no profile of
            return self._bad(ident, "invalid", exc.diagnostics)
        except EngineError as exc:
            return wire.encode({"id": ident, "status": "engine-error", "message": str(exc)})
        record = audit.decision_record(
            data, determination, redactor=self.redactor, valid=case, min_provenance=floor, request=request
        )
        return _Decided(case, determination, audit.LoggedDecision.of(record))

    def _decided_header(self, ident: object, decided: _Decided) -> dict[str, Any]:
        logged = decided.logged
        return {
            "id": ident,
            "status": "ok",
            "decision_id": logged.decision_id,
            "timestamp": logged.timestamp,
            "case_id": logged.case_id,
            "content_hash": logged.content_hash,
            # for the server's metrics: what was decided, never about whom
            "determinations": [i.determination for i in decided.determination.items],
        }

    def _evaluate(self, ident: object, body: bytes, floor: Any = None, request: Any = None) -> bytes:
        decided = self._decide(ident, body, floor, request)
        if isinstance(decided, bytes):
            return decided
        answer = json.dumps(decided.determination.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
        return wire.encode(self._decided_header(ident, decided), answer, decided.logged.line)

    def _letter(self, ident: object, body: bytes, header: dict[str, Any]) -> bytes:
        """The UR letter (imr_policy.compliance.letter) written from the case's determination, in `header["format"]`.

        The letter states the decision, so it is answered with the decision's log record, as a determination
        is; with `check` only the completeness of the letter is answered, and nothing is recorded."""
        form, check = header.get("format"), header.get("check") is True
        if form not in LETTER_FORMATS or (check and form == "html"):  # the server checks it; a frame is not trusted
            return wire.encode({"id": ident, "status": "internal-error", "message": "unknown letter format"})
        decided = self._decide(ident, body, header.get("min_provenance"), header.get("request"))
        if isinstance(decided, bytes):
            return decided
        try:
            written = letter.write(self.engine, decided.case, decided.determination)
        except EngineError as exc:
            return wire.encode({"id": ident, "status": "engine-error", "message": str(exc)})
        if check:
            text = letter.render_check(written) if form == "text" else _json(letter.check_dict(written))
            reply = {"id": ident, "status": "ok", "complete": written.complete}
            return wire.encode(reply, text.encode())
        text = (
            letter.render_html(written)
            if form == "html"
            else letter.render_text(written)
            if form == "text"
            else _json(written.to_dict())
        )
        reply = {**self._decided_header(ident, decided), "complete": written.complete}
        return wire.encode(reply, text.encode(), decided.logged.line)

    def _validate(self, ident: object, body: bytes) -> bytes:
        if over := _too_large(body):
            return self._bad(ident, "too-large", over)
        data, problems = parse_body(body)
        if problems and not all(d.code == "case.limit" for d in problems):
            return self._bad(ident, "malformed", problems)
        if problems:  # JSON, but over a limit: that is what is wrong with it
            found = problems
        else:
            self._fault(data)
            found = tuple(case_diagnostics(data, source_map=LazySourceMap(body)))
        answer = {"valid": not has_errors(found), "diagnostics": list(diagnostics_json(found))}
        return wire.encode({"id": ident, "status": "ok"}, json.dumps(answer, ensure_ascii=False).encode())

    def _fault(self, data: Any) -> None:
        if not self.faults or not isinstance(data, dict):
            return
        if data.get("case_id") == CRASH_CASE_ID:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
            os.kill(os.getpid(), signal.SIGSEGV)
        if data.get("case_id") == HANG_CASE_ID:
            while True:
                time.sleep(3600)
        if data.get("case_id") == SLOW_CASE_ID:
            time.sleep(1.0)


# ---------------------------------------------------------------------------------------- the process


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the server dies, even if the worker is stuck in C code."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the server's stdin EOF still stops us
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _read_frame(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    prefix = stream.read(wire.PREFIX)
    if len(prefix) < wire.PREFIX:
        return None
    payload = stream.read(wire.length(prefix))
    header, sections = wire.decode(payload)
    return header, sections[0] if sections else b""


def serve(engine: Engine, inp: IO[bytes], out: IO[bytes], *, redacted: bool, faults: bool) -> int:
    handler = Handler(engine, redacted=redacted, faults=faults)
    while (frame := _read_frame(inp)) is not None:
        out.write(handler.handle(*frame))
        out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="imr_policy.service.worker")
    p.add_argument("--snapshot", type=Path, required=True)
    p.add_argument("--policy-set-id", required=True)
    p.add_argument("--engine", choices=("durable", "reference"), default="durable")
    p.add_argument("--unredacted", action="store_true")
    args = p.parse_args(argv)

    # the server decides when a worker stops (it closes standard input); a Ctrl-C in the terminal or a
    # SIGHUP meant for the server must not stop a worker in the middle of a request
    # (and a SIGTERM sent to the whole process group, as systemd does, must let the server drain first)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to standard error, never into a frame
    faults = os.environ.get(FAULTS_ENV) == "1"
    if faults:
        print(f"imr-policy worker {os.getpid()}: test faults are enabled ({FAULTS_ENV}=1)", file=sys.stderr)
    try:
        engine = engine_for(Snapshot(args.snapshot, args.policy_set_id), args.engine)
    except PolicyError as exc:
        with contextlib.suppress(BrokenPipeError):  # the server may have stopped meanwhile
            out.write(wire.encode({"ready": False, "error": str(exc)}))
            out.flush()
        return 1
    gc.freeze()  # the loaded policy set never becomes garbage; keep full collections cheap (docs/api.md)
    hello = {"ready": True, "pid": os.getpid(), "content_hash": engine.policy_set.content_hash}
    out.write(wire.encode(hello))
    out.flush()
    return serve(engine, sys.stdin.buffer, out, redacted=not args.unredacted, faults=faults)


if __name__ == "__main__":
    sys.exit(main())
