"""The ASGI application: `create_app(ServiceConfig(...))`, served by `imr-policy serve` (uvicorn).

    POST /v1/determinations   a case -> its determination (written to the decision log first)
    POST /v1/letters          a case -> the UR letter of its determination (JSON, text or HTML; logged)
    POST /v1/validate         a case -> its diagnostics
    GET  /v1/policies         the policy set in use: editions, effective dates, content hash
    POST /v1/admin/reload     load the rule files again; swap atomically when they are valid
    GET  /healthz, /readyz    liveness; readiness (a policy set is loaded and a worker is live)
    GET  /openapi.json        the OpenAPI document (openapi.py)

Errors are RFC 9457 problem documents (problems.py). A determination is returned only after its
record is in the decision log; if the log cannot be written, the answer is a 503 and no decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import shutil
import signal
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from imr_policy.compliance import audit
from imr_policy.engine.combine import PROVENANCE_ORDER
from imr_policy.evaluate import ENGINE_VERSION
from imr_policy.loading.validate import LoadResult
from imr_policy.model.errors import PolicyError
from imr_policy.service import media, observe, openapi
from imr_policy.service.policyset import Backend, Snapshot, remove, take_snapshot, validate_snapshot
from imr_policy.service.pool import Overloaded, Pool, PoolSpec, Reply, StartError, WorkerFault
from imr_policy.service.problems import MEDIA_TYPE, Problem, count, diagnostics_json

log = logging.getLogger("imr_policy.service")

RETRY = {"Retry-After": "1"}


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Everything `imr-policy serve` can set. Times are in seconds, sizes in bytes."""

    audit_log: Path
    policies: Path | None = None  # default: the packs shipped with the package
    backend: Backend = "durable"
    workers: int = 2
    timeout: float = 10.0  # one evaluation in a worker
    queue_timeout: float = 10.0  # waiting for a free worker
    max_queue: int = 1024
    max_body_bytes: int = 1024 * 1024
    max_batch_bytes: int = 16 * 1024 * 1024  # POST /v1/determinations:batch, the whole body
    max_batch_cases: int = 1000  # lines of one batch
    audit_format: audit.LogFormat | None = None  # default: by the log's file name (audit.log_format)
    redacted: bool = True
    admin_token: str | None = None  # POST /v1/admin/reload is off (403) unless set; then it needs the bearer token
    reload_on_sighup: bool = False  # only where the server owns the main thread (imr-policy serve)
    audit_sync: audit.Sync = "always"  # fsync each record before answering; "interval": group commit; "never"
    audit_sync_interval: float = 0.05  # seconds between group commits, with audit_sync="interval"
    access_log: bool = True  # one JSON line per request on the `imr_policy.access` logger
    otel: bool = False  # one OpenTelemetry span per request (the `otel` extra); off: opentelemetry is never imported
    tracer_provider: Any = None  # where the spans go, with `otel`; default: OpenTelemetry's global TracerProvider


@dataclass(frozen=True, slots=True)
class _Generation:
    """One policy set in use: its snapshot, what validation found, and the workers that load it."""

    snapshot: Snapshot
    result: LoadResult
    pool: Pool
    loaded_at: str

    @property
    def policy_set(self) -> dict[str, str]:
        return {"id": self.snapshot.policy_set_id, "content_hash": self.result.content_hash}


class Service:
    """The state behind the routes: the generation in use, reloads, and the decision log."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.current: _Generation | None = None
        self._tmp: Path | None = None
        self._count = 0
        self._reload_lock = asyncio.Lock()
        self._log: audit.DecisionLog | None = None
        # syncs, reopens, closes and SQLite writes run on this one thread, in order; JSON Lines appends
        # (on the event loop, unless each is synced) take the log's lock: a reopen never meets a write
        self._log_thread = ThreadPoolExecutor(1, thread_name_prefix="imr-policy-log")
        self._commit: asyncio.Future[None] | None = None  # the next group commit (audit_sync="interval")
        self._tasks: set[asyncio.Task[Any]] = set()
        self.metrics = observe.Metrics()
        self.metrics.watch(
            lambda: self.current.pool.live_workers if self.current else 0,
            lambda: self.current.pool.waiting if self.current else 0,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(suffix="-imr-policy"))
        c = self.config
        self._log = await self._in_log_thread(audit.open_log, c.audit_log, kind=c.audit_format, sync=c.audit_sync)
        snapshot, result = await self._prepare()
        self.current = await self._generation(snapshot, result)
        log.info(
            "policy set %s (%s) loaded by %d workers",
            snapshot.policy_set_id,
            result.content_hash,
            self.config.workers,
        )

    async def close(self) -> None:
        """Stop everything; never raises, so a failure here cannot leave workers or the snapshot behind."""
        try:
            if self._commit is not None:  # records waiting for their group commit get it now
                await self._sync_now()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.current is not None:
                current, self.current = self.current, None
                await current.pool.close(drain=True)
                remove(current.snapshot)
        except Exception:
            log.exception("stopping the workers failed")
        finally:
            if self._log is not None:
                try:
                    if self.config.audit_sync != "never":
                        await self._in_log_thread(self._log.sync)
                    await self._in_log_thread(self._log.close)
                except Exception as exc:  # the records were answered only after they were written
                    log.error("closing the decision log failed: %s", exc)
                self._log = None
            self._log_thread.shutdown(wait=True)
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    async def _in_log_thread(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._log_thread, lambda: fn(*args, **kwargs))

    async def _prepare(self) -> tuple[Snapshot, LoadResult]:
        """Copy and validate the rule files; raise PolicyError with every problem."""
        assert self._tmp is not None
        self._count += 1
        into = self._tmp / str(self._count) / (self.config.policies.name if self.config.policies else "builtin")
        snapshot = await asyncio.to_thread(take_snapshot, self.config.policies, into)
        result = await asyncio.to_thread(validate_snapshot, snapshot)
        if not result.ok:
            remove(snapshot)
            raise PolicyError("the rule files are not valid", result.diagnostics)
        return snapshot, result

    async def _generation(self, snapshot: Snapshot, result: LoadResult) -> _Generation:
        c = self.config
        spec = PoolSpec(
            snapshot=snapshot,
            content_hash=result.content_hash,
            backend=c.backend,
            size=c.workers,
            timeout=c.timeout,
            queue_timeout=c.queue_timeout,
            max_queue=c.max_queue,
            redacted=c.redacted,
        )
        pool = Pool(spec, on_restart=lambda reason: self.metrics.worker_restarts.labels(reason).inc())
        try:
            await pool.start()
        except StartError:
            remove(snapshot)
            raise
        return _Generation(snapshot, result, pool, audit.now())

    async def reload(self) -> dict[str, Any]:
        """Load the rule files again and swap them in; the set in use stays when they are not valid.

        Requests already given to the old workers are answered by them (with the old set); requests
        that arrive after the swap go to the new ones. No request sees both."""
        async with self._reload_lock:
            # a reload is also when a rotated decision log is reopened (`mv log log.1; kill -HUP <pid>`),
            # whether or not the new rule files are valid
            await self._reopen_log()
            old = self.current
            assert old is not None
            snapshot, result = await self._prepare()
            if result.content_hash == old.result.content_hash:
                remove(snapshot)
                self.metrics.reloads.labels("unchanged").inc()
                return {"changed": False, "policy_set": old.policy_set, "previous": old.policy_set}
            new = await self._generation(snapshot, result)
            self.current = new
            self.metrics.reloads.labels("changed").inc()
            self._background(self._retire(old))
            log.info("policy set %s replaced %s", result.content_hash, old.result.content_hash)
            return {"changed": True, "policy_set": new.policy_set, "previous": old.policy_set}

    async def _retire(self, old: _Generation) -> None:
        await old.pool.close(drain=True)
        remove(old.snapshot)

    async def _reopen_log(self) -> None:
        if self._log is not None:
            try:
                await self._in_log_thread(self._log.reopen)
            except (OSError, sqlite3.Error) as exc:  # writing goes on in the file that is open
                log.error("the decision log could not be reopened at %s: %s", self.config.audit_log, exc)

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def reload_in_background(self) -> None:
        """The SIGHUP handler: reload, and say in the log what happened."""
        self._background(self._logged_reload())

    async def _logged_reload(self) -> None:
        try:
            outcome = await self.reload()
        except PolicyError as exc:
            self.metrics.reloads.labels("refused").inc()
            rendered = "\n".join(d.render() for d in exc.diagnostics)
            log.error("reload refused; the policy set in use is unchanged:\n%s", rendered)
        except (StartError, OSError) as exc:
            self.metrics.reloads.labels("failed").inc()
            log.error("reload failed; the policy set in use is unchanged: %s", exc)
        else:
            log.info("reload: %s", "new policy set in use" if outcome["changed"] else "the rule files are unchanged")

    # ------------------------------------------------------------------ requests

    def generation(self) -> _Generation:
        if self.current is None:
            raise Problem("not-ready", "no policy set is loaded yet", headers=RETRY)
        return self.current

    async def call(self, op: str, body: bytes, options: dict[str, Any] | None = None) -> tuple[_Generation, Reply]:
        generation = self.generation()
        answered_by = {openapi.POLICY_SET: generation.result.content_hash}
        try:
            return generation, await generation.pool.call(op, body, options)
        except Overloaded as exc:
            raise Problem("overloaded", str(exc), headers={**RETRY, **answered_by}) from None
        except WorkerFault as exc:
            kind = "evaluation-timeout" if exc.kind == "timeout" else "worker-crashed"
            detail = f"{exc}; the worker was replaced and no other request was affected"
            raise Problem(kind, detail, headers={**RETRY, **answered_by}) from None

    async def record(self, entry: audit.LoggedDecision) -> None:
        """Write `entry` to the decision log, durably as `audit_sync` says; raise the 503 problem if it
        cannot be written (the log then holds no part of it)."""
        try:
            if self._log is None:
                raise OSError("the decision log is not open")
            if self.config.audit_sync == "always":
                await self._in_log_thread(_append_and_sync, self._log, entry)
                self.metrics.log_syncs.inc()
            elif isinstance(self._log, audit.JsonLinesLog):
                # one unbuffered write into the page cache: cheaper than a thread hop, and safe beside a
                # reopen on the log thread (the log's lock); syncs stay on the log thread
                self._log.append(entry)
            else:
                await self._in_log_thread(self._log.append, entry)
            if self.config.audit_sync == "interval":
                await self._group_commit()
        except (OSError, sqlite3.Error, ValueError) as exc:
            self.metrics.log_failures.inc()
            log.error("the decision log could not be written: %s", exc)
            raise Problem("audit-unavailable", "the decision log could not be written", headers=RETRY) from None
        self.metrics.log_writes.inc()

    async def _group_commit(self) -> None:
        """Wait for the next sync, which covers every record appended before it starts (group commit)."""
        if self._commit is None:
            self._commit = asyncio.get_running_loop().create_future()
            self._commit.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._background(self._sync_later())
        await asyncio.shield(self._commit)

    async def _sync_later(self) -> None:
        await asyncio.sleep(self.config.audit_sync_interval)
        await self._sync_now()

    async def _sync_now(self) -> None:
        commit, self._commit = self._commit, None
        if commit is None:
            return
        try:
            if self._log is None:
                raise OSError("the decision log is not open")
            await self._in_log_thread(self._log.sync)
        except BaseException as exc:
            commit.set_exception(exc if isinstance(exc, Exception) else OSError("the service is stopping"))
            if not isinstance(exc, Exception):
                raise
        else:
            self.metrics.log_syncs.inc()
            commit.set_result(None)


def _append_and_sync(decisions: audit.DecisionLog, entry: audit.LoggedDecision) -> None:
    decisions.append(entry)
    decisions.sync()


# ---------------------------------------------------------------------------------------- HTTP


JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


async def _body(request: Request, limit: int, *, lines: bool = False) -> bytes:
    kind = request.headers.get("content-type", "")
    media, _, params = kind.partition(";")
    media = media.strip().lower()
    if lines and media not in JSON_LINES:
        got = f"`{media}`" if media else "no content type"
        raise Problem(
            "unsupported-media-type", f"got {got}; send one case per line with `Content-Type: application/x-ndjson`"
        )
    if not lines and media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        got = f"`{media}`" if media else "no content type"
        raise Problem("unsupported-media-type", f"got {got}; send the case with `Content-Type: application/json`")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise Problem("unsupported-media-type", f"got charset `{charset}`; JSON is UTF-8")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(
            "body-too-large",
            f"the body has {declared} bytes; the limit is {limit}",
            headers={"Connection": "close"},
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(
                "body-too-large", f"the body is over the limit of {limit} bytes", headers={"Connection": "close"}
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _bad_input(reply: Reply) -> Problem | None:
    header = reply.header
    status = header.get("status")
    errors = header.get("diagnostics", [])
    if status == "malformed":
        return Problem("malformed-json", "the request body is not a JSON document", errors)
    if status == "too-large":  # over the case parser's size limit (imr_policy/loading/limits.py)
        return Problem("body-too-large", "the body is over the case size limit", errors)
    if status == "invalid":
        n = sum(1 for e in errors if e.get("severity") == "error")
        return Problem("invalid-case", f"{count(n, 'problem')} in the case", errors)
    if status == "engine-error":
        return Problem("engine-error", str(header.get("message", "")))
    if status != "ok":
        return Problem("internal-error", f"the worker failed ({header.get('message', 'no detail')})")
    return None


def _parameter_error(name: str, message: str, hint: str) -> dict[str, Any]:
    return {
        "code": "request.parameter",
        "severity": "error",
        "message": message,
        "path": "$",
        "pointer": "",
        "parameter": name,
        "hint": hint,
    }


_MAX_PARAMETERS = 20  # looked at; any past them are not reported (there is only one parameter)


def _query(request: Request, allowed: tuple[str, ...]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The query parameters of `request` that are `allowed`, given once; and an error for each other one."""
    errors = []
    seen: dict[str, str] = {}
    names = " and ".join(f"`{n}`" for n in allowed)
    hint = f"the only parameter is {names}" if len(allowed) == 1 else f"the parameters are {names}"
    for name, value in request.query_params.multi_items()[:_MAX_PARAMETERS]:
        if name not in allowed:
            errors.append(_parameter_error(name, f"unknown query parameter `{name[:64]}`", hint))
        elif name in seen:
            errors.append(_parameter_error(name, f"`{name}` is given more than once", "give it once"))
        else:
            seen[name] = value
    return seen, errors


def _shown(value: str) -> str:
    return value[:32].encode("ascii", "backslashreplace").decode()


def _floor(seen: dict[str, str], errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The provenance floor option (`min_provenance`), or an error in `errors` when it is not a grade."""
    floor = seen.get(openapi.MIN_PROVENANCE)
    grades = ", ".join(PROVENANCE_ORDER)
    if floor is not None and floor not in PROVENANCE_ORDER:
        errors.append(
            _parameter_error(
                openapi.MIN_PROVENANCE,
                f"unknown provenance grade `{_shown(floor)}`; expected one of {grades}",
                f"one of {grades} (strongest first); leave it out for no floor",
            )
        )
    return {"min_provenance": floor} if floor is not None else {}


def _refuse(errors: list[dict[str, Any]]) -> None:
    if errors:
        n = len(errors)
        raise Problem("invalid-parameter", f"{count(n, 'problem')} in the query parameters", errors)


def _options(request: Request) -> dict[str, Any]:
    """The query parameters of `POST /v1/determinations`; unknown, repeated or bad ones are a 400."""
    seen, errors = _query(request, (openapi.MIN_PROVENANCE,))
    options = _floor(seen, errors)
    _refuse(errors)
    return options


def _letter_options(request: Request) -> dict[str, Any]:
    """The query parameters of `POST /v1/letters` (`check`, `min_provenance`); unknown, repeated or bad ones
    are a 400."""
    seen, errors = _query(request, (openapi.CHECK, openapi.MIN_PROVENANCE))
    options = _floor(seen, errors)
    check = seen.get(openapi.CHECK)
    if check is not None and check not in ("true", "false"):
        errors.append(
            _parameter_error(
                openapi.CHECK,
                f"`{openapi.CHECK}` is `{_shown(check)}`; expected `true` or `false`",
                "`check=true` answers only the required elements the letter lacks; leave it out for the letter",
            )
        )
    _refuse(errors)
    return {**options, "check": check == "true"}


# media type -> the worker's letter format (worker.LETTER_FORMATS), in the order the endpoint prefers them
LETTER_MEDIA = {"application/json": "json", "text/plain": "text", "text/html": "html"}


def _letter_media(request: Request, check: bool) -> str:
    """The media type to answer `POST /v1/letters` in, by `Accept`; a 406 when it accepts none."""
    offered = ("application/json", "text/plain") if check else tuple(LETTER_MEDIA)
    accept = request.headers.get("accept")
    chosen = media.negotiate(accept, offered)
    if chosen is None:
        what = "the letter's completeness check (`check=true`)" if check else "the letter"
        raise Problem(
            "not-acceptable",
            f"`Accept: {media.shown(accept or '')}` accepts none of the media types of {what}: {', '.join(offered)}",
        )
    return chosen


async def _record(
    service: Service, request: Request, ctx: observe.Context, header: dict[str, Any], line: bytes
) -> audit.LoggedDecision | None:
    """Write the decision a worker answered (`header`, its record `line`) to the decision log, and count it;
    None, and nothing written, when the client went away (a record means an answer was sent)."""
    entry = audit.LoggedDecision(
        header["decision_id"], header["timestamp"], header["case_id"], header["content_hash"], line
    )
    if await request.is_disconnected():
        log.info("request %s: the client went away before its answer; nothing logged", ctx.request_id)
        return None
    await service.record(entry)
    for kind in header.get("determinations", ()):
        service.metrics.determinations.labels(str(kind)).inc()
    observe.decided(request.scope, header.get("determinations", ()))
    return entry


async def _letter_answer(
    service: Service, request: Request, generation: _Generation, reply: Reply, media_type: str
) -> Response:
    """The answer of `POST /v1/letters`: the worker's letter as it rendered it; a letter (not a check) is
    answered only once its decision is in the decision log, as a determination is."""
    answered_by = {openapi.POLICY_SET: generation.result.content_hash}
    if (problem := _bad_input(reply)) is not None:
        problem.headers.update(answered_by)
        raise problem
    complete = "true" if reply.header.get("complete") is True else "false"
    headers = {**answered_by, openapi.LETTER_COMPLETE: complete, "Vary": "Accept"}
    text, *logged = reply.sections
    if logged:
        entry = await _record(service, request, observe.context(request.scope), reply.header, logged[0])
        if entry is None:
            return Response(status_code=499)
        headers.update({openapi.DECISION_ID: entry.decision_id, openapi.POLICY_SET: entry.content_hash})
    return Response(text, media_type=media_type, headers=headers)


def _tracing(config: ServiceConfig) -> Any:
    """The span maker of the middleware when `config.otel`, else None; only then is OpenTelemetry imported."""
    if not config.otel:
        return None
    try:
        from imr_policy.service import tracing  # noqa: PLC0415  (the `otel` extra, imported only when on)
    except ImportError as exc:
        raise ImportError(
            f"OpenTelemetry spans need the `otel` extra ({exc.name} is missing): pip install 'imr-policy[otel]'",
            name=exc.name,
        ) from exc
    return tracing.Tracing(config.tracer_provider)


class _Endpoints:
    """The service's endpoints over one app's state (its `Service`, its configuration, the OpenAPI document)."""

    def __init__(self, config: ServiceConfig, on_started: Callable[[], None] | None) -> None:
        self.config = config
        self.service = Service(config)
        self.on_started = on_started
        self.document = openapi.document(ENGINE_VERSION)

    async def determinations(self, request: Request) -> Response:
        options = _options(request)
        body = await _body(request, self.config.max_body_bytes)
        ctx = observe.context(request.scope)
        generation, reply = await self.service.call("evaluate", body, {**options, "request": ctx.for_record()})
        answered_by = {openapi.POLICY_SET: generation.result.content_hash}
        if (problem := _bad_input(reply)) is not None:
            problem.headers.update(answered_by)
            raise problem
        answer, line = reply.sections
        entry = await _record(self.service, request, ctx, reply.header, line)
        if entry is None:  # nobody to answer: no record either
            return Response(status_code=499)
        headers = {openapi.DECISION_ID: entry.decision_id, openapi.POLICY_SET: entry.content_hash}
        return Response(answer, media_type="application/json", headers=headers)

    async def letters(self, request: Request) -> Response:
        """The UR letter of the case's determination (imr_policy.compliance.letter, written in a worker), in the media
        type `Accept` asks for; `?check=true`: only what the letter lacks."""
        options = _letter_options(request)
        media_type = _letter_media(request, options["check"])
        body = await _body(request, self.config.max_body_bytes)
        ctx = observe.context(request.scope)
        frame = {**options, "format": LETTER_MEDIA[media_type], "request": ctx.for_record()}
        generation, reply = await self.service.call("letter", body, frame)
        return await _letter_answer(self.service, request, generation, reply, media_type)

    async def determinations_batch(self, request: Request) -> Response:
        """JSON Lines in, JSON Lines out, in order: each case's determination or its problem, streamed as
        each is decided. A line's determination is logged as a single one is (a record iff its answer is
        sent); a client that goes away stops the batch, and no later line is decided or logged."""
        options = _options(request)
        body = await _body(request, self.config.max_batch_bytes, lines=True)
        cases = body.split(b"\n")
        if cases and not cases[-1].strip():
            cases.pop()  # the newline that ends the last line
        if len(cases) > self.config.max_batch_cases:
            raise Problem(
                "body-too-large",
                f"the batch has {len(cases)} lines; the limit is {self.config.max_batch_cases}",
                headers={"Connection": "close"},
            )
        ctx = observe.context(request.scope)

        async def answers() -> AsyncIterator[bytes]:
            for n, line in enumerate(cases, 1):
                if await request.is_disconnected():
                    log.info("request %s: the client went away at line %d; the rest is not decided", ctx.request_id, n)
                    return
                yield await self._batch_line(n, line, options, ctx, request.scope)

        return StreamingResponse(answers(), media_type="application/x-ndjson")

    async def _batch_line(
        self, n: int, line: bytes, options: dict[str, Any], ctx: Any, scope: MutableMapping[str, Any]
    ) -> bytes:
        def problem_line(p: Problem) -> bytes:
            return json.dumps({"line": n, "problem": p.to_dict()}, separators=(",", ":")).encode() + b"\n"

        if not line.strip():
            return problem_line(Problem("malformed-json", "an empty line is not a case"))
        try:
            _, reply = await self.service.call("evaluate", line, {**options, "request": ctx.for_record()})
        except Problem as exc:
            return problem_line(exc)
        if (bad := _bad_input(reply)) is not None:
            return problem_line(bad)
        header = reply.header
        answer, logged = reply.sections
        entry = audit.LoggedDecision(
            header["decision_id"], header["timestamp"], header["case_id"], header["content_hash"], logged
        )
        try:
            await self.service.record(entry)
        except Problem as exc:
            return problem_line(exc)
        for kind in header.get("determinations", ()):
            self.service.metrics.determinations.labels(str(kind)).inc()
        observe.decided(scope, header.get("determinations", ()))
        head = json.dumps(
            {"line": n, "decision_id": entry.decision_id, "policy_set": entry.content_hash}, separators=(",", ":")
        ).encode()
        return head[:-1] + b',"determination":' + answer.strip() + b"}\n"

    async def validate(self, request: Request) -> Response:
        body = await _body(request, self.config.max_body_bytes)
        _, reply = await self.service.call("validate", body)
        if (problem := _bad_input(reply)) is not None:
            raise problem
        return Response(reply.sections[0], media_type="application/json")

    async def policies(self, _: Request) -> Response:
        g = self.service.generation()
        editions = [
            {
                "guideline": e.guideline_id,
                "guideline_title": e.guideline_title,
                "edition": e.edition_id,
                "edition_title": e.edition_title,
                "tier": e.tier,
                "jurisdictions": list(e.jurisdictions),
                "effective_from": e.effective_from.isoformat(),
                "effective_to": e.effective_to.isoformat() if e.effective_to else None,
                "file": e.file,
                "sha256": e.sha256,
            }
            for e in g.result.editions
        ]
        return JSONResponse({"policy_set": g.policy_set, "loaded_at": g.loaded_at, "editions": editions})

    async def reload(self, request: Request) -> Response:
        if self.config.admin_token is None:
            raise Problem(
                "admin-disabled",
                "the admin endpoints are off; start the server with IMR_POLICY_ADMIN_TOKEN set to turn them on "
                "(SIGHUP reloads without them)",
            )
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {self.config.admin_token}".encode()):
            raise Problem(
                "unauthorized", "send `Authorization: Bearer <token>`", headers={"WWW-Authenticate": "Bearer"}
            )
        in_use = self.service.generation().policy_set
        try:
            outcome = await self.service.reload()
        except PolicyError as exc:
            self.service.metrics.reloads.labels("refused").inc()
            n = sum(1 for d in exc.diagnostics if d.severity == "error")
            raise Problem(
                "invalid-policies",
                f"{count(n, 'problem')} in the rule files; policy set {in_use['content_hash']} is still in use",
                diagnostics_json(exc.diagnostics),
            ) from None
        except (StartError, OSError) as exc:
            self.service.metrics.reloads.labels("failed").inc()
            raise Problem("internal-error", f"the new policy set did not start ({exc}); nothing changed") from None
        return JSONResponse(outcome)

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _: Request) -> Response:
        g = self.service.generation()
        live = g.pool.live_workers
        if not live:
            raise Problem("not-ready", "no worker is live; replacements are starting", headers=RETRY)
        return JSONResponse(
            {"status": "ready", "policy_set": g.policy_set, "workers": {"live": live, "size": self.config.workers}}
        )

    async def openapi_json(self, _: Request) -> Response:
        return JSONResponse(self.document)

    async def metrics(self, _: Request) -> Response:
        return Response(self.service.metrics.exposition(), media_type=observe.CONTENT_TYPE)

    async def problem(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            path = request.url.path
            if exc.status_code == 404:
                exc = Problem("not-found", f"`{path}` is not an endpoint of this service; see /openapi.json")
            elif exc.status_code == 405:
                exc = Problem(
                    "method-not-allowed", f"`{request.method}` is not allowed on `{path}`", headers=exc.headers
                )
            else:
                exc = Problem("internal-error", f"HTTP status {exc.status_code}", headers=exc.headers)
        if not isinstance(exc, Problem):  # a defect: Starlette logs the traceback
            exc = Problem("internal-error", "an unexpected error; no determination was made")
        self.service.metrics.problems.labels(exc.kind).inc()
        request.scope["imr_policy.problem"] = exc.kind  # for the request's span, when there is one
        return Response(exc.body(), status_code=exc.status, media_type=MEDIA_TYPE, headers=exc.headers)

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        try:
            await self.service.start()
        except BaseException:
            await self.service.close()  # workers already started, the snapshot, the log
            raise
        loop = asyncio.get_running_loop()
        if self.config.reload_on_sighup:
            loop.add_signal_handler(signal.SIGHUP, self.service.reload_in_background)
        if self.on_started is not None:
            self.on_started()
        try:
            yield
        finally:
            if self.config.reload_on_sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            await self.service.close()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/determinations", self.determinations, methods=["POST"]),
            Route("/v1/determinations:batch", self.determinations_batch, methods=["POST"]),
            Route("/v1/letters", self.letters, methods=["POST"]),
            Route("/v1/validate", self.validate, methods=["POST"]),
            Route("/v1/policies", self.policies, methods=["GET"]),
            Route("/v1/admin/reload", self.reload, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/openapi.json", self.openapi_json, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]


def create_app(config: ServiceConfig, *, on_started: Callable[[], None] | None = None) -> Starlette:
    """The ASGI application. Its lifespan starts the workers, so serve it with lifespan events on.

    `on_started` is called once the policy set is loaded, every worker is up and the decision log is
    open (`imr-policy serve` then says "serving on ...")."""
    endpoints = _Endpoints(config, on_started)
    service = endpoints.service
    routes = endpoints.routes()
    context = Middleware(
        observe.RequestContext,
        metrics=service.metrics,
        routes=frozenset(r.path for r in routes),
        log_requests=config.access_log,
        tracing=_tracing(config),
    )
    app = Starlette(
        routes=routes,
        middleware=[context],
        exception_handlers={Problem: endpoints.problem, HTTPException: endpoints.problem, Exception: endpoints.problem},
        lifespan=endpoints.lifespan,
    )
    app.state.service = service
    return app
