"""What the service says about itself: Prometheus metrics, request ids, W3C trace context, JSON access logs.

Every metric lives in the server process, the only process that sees every request: workers report
what they decided in the header of their reply (wire.py), so no multi-process collection is needed
(prometheus_client's multiprocess mode, with its files on disk, is for servers whose requests are
answered by several processes that each count; here the workers never count anything).

`RequestContext` is the middleware: it accepts `X-Request-Id` (or makes one) and `traceparent`,
echoes both on the answer, puts them where the routes find them (`context(request)`), and writes one
JSON line per request to the `imr_policy.access` logger (method, route, status, latency, request id,
trace id, decision id, policy set) and, when OpenTelemetry spans are on (tracing.py), makes one span.
Paths of unknown endpoints are logged as they came but counted under the route label `unmatched`, so
a scanner cannot grow the metrics without bound. Nothing of a request body is ever logged.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `*_created` series: they double the exposition and nothing here reads them

access_log = logging.getLogger("imr_policy.access")

REQUEST_ID = "X-Request-Id"
TRACEPARENT = "traceparent"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")  # visible, no spaces or quotes: safe in logs and headers
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")

# seconds; from a cached in-process answer (~1 ms) to a timed-out worker (the default timeout is 10 s)
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def request_id(given: str | None) -> str:
    """`given` when it is a usable request id (1-128 characters of `A-Za-z0-9._:@/+=-`), else a new UUID."""
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return str(uuid.uuid4())


def traceparent(given: str | None) -> str | None:
    """`given` when it is a valid W3C `traceparent` (version 00, or a later version read as 00), else None."""
    if given is None:
        return None
    m = _TRACEPARENT.fullmatch(given.strip())
    if m is None:
        return None
    version, trace_id, parent_id, _flags, rest = m.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16 or (version == "00" and rest):
        return None
    return given.strip()


def trace_id(parent: str | None) -> str | None:
    return parent.split("-")[1] if parent else None


@dataclass(frozen=True, slots=True)
class Context:
    request_id: str
    traceparent: str | None

    def for_record(self) -> dict[str, str]:
        """What the decision log record keeps of the request."""
        out = {"request_id": self.request_id}
        if self.traceparent:
            out["traceparent"] = self.traceparent
        return out


def decided(scope: MutableMapping[str, Any], kinds: Iterable[object]) -> None:
    """Note on the request's scope one logged decision and its items' determinations (for its span)."""
    tally: dict[str, int] = scope.setdefault("imr_policy.determinations", {})
    tally["decisions"] = tally.get("decisions", 0) + 1
    for kind in kinds:
        tally[str(kind)] = tally.get(str(kind), 0) + 1


def context(scope: Mapping[str, Any]) -> Context:
    found = scope.get("imr_policy.context")
    return found if isinstance(found, Context) else Context(request_id(None), None)


class Metrics:
    """The service's metrics, in a registry of their own (one per application)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "imr_policy_http_requests", "HTTP requests answered", ("method", "route", "status"), registry=r
        )
        self.latency = Histogram(
            "imr_policy_http_request_duration_seconds",
            "time from the request's arrival to the end of its answer",
            ("route",),
            buckets=_BUCKETS,
            registry=r,
        )
        self.determinations = Counter(
            "imr_policy_determinations",
            "items decided, by determination (certify, modify, non_certify, pend)",
            ("determination",),
            registry=r,
        )
        self.problems = Counter("imr_policy_problems", "problem responses, by type", ("type",), registry=r)
        self.worker_restarts = Counter(
            "imr_policy_worker_restarts", "workers replaced after they died or hung", ("reason",), registry=r
        )
        self.reloads = Counter(
            "imr_policy_reloads", "policy set reloads, by outcome (changed, unchanged, refused, failed)", ("outcome",),
            registry=r,
        )  # fmt: skip
        self.log_writes = Counter("imr_policy_decision_log_writes", "decision log records written", registry=r)
        self.log_failures = Counter(
            "imr_policy_decision_log_failures", "decision log writes or syncs that failed (answered 503)", registry=r
        )
        self.log_syncs = Counter("imr_policy_decision_log_syncs", "fsyncs of the decision log", registry=r)
        self.workers_live = Gauge("imr_policy_workers_live", "live workers of the policy set in use", registry=r)
        self.waiting = Gauge("imr_policy_requests_waiting", "requests waiting for a free worker", registry=r)

    def watch(self, live: Callable[[], float], waiting: Callable[[], float]) -> None:
        self.workers_live.set_function(live)
        self.waiting.set_function(waiting)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RequestContext:
    """ASGI middleware: request id and trace context in, echoed out; one JSON access log line; metrics."""

    def __init__(
        self, app: Any, metrics: Metrics, routes: frozenset[str], *, log_requests: bool = True, tracing: Any = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.log_requests = log_requests
        self.tracing = tracing  # a tracing.Tracing when OpenTelemetry spans are on, else None (nothing imported)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = scope.get("headers", [])
        ctx = Context(request_id(_header(headers, b"x-request-id")), traceparent(_header(headers, b"traceparent")))
        scope["imr_policy.context"] = ctx
        seen: dict[str, Any] = {"status": 500}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                out = list(message.get("headers", []))
                for key, value in out:
                    name = key.lower()
                    if name == b"imr-decision-id":
                        seen["decision_id"] = value.decode("latin-1")
                    elif name == b"imr-policy-set":
                        seen["policy_set"] = value.decode("latin-1")
                    elif name == b"content-type" and value.startswith(b"application/problem+json"):
                        seen["problem"] = True
                out.append((REQUEST_ID.lower().encode(), ctx.request_id.encode()))
                if ctx.traceparent:
                    out.append((TRACEPARENT.encode(), ctx.traceparent.encode()))
                message = {**message, "headers": out}
            await send(message)

        if self.tracing is None:
            try:
                await self.app(scope, receive, sending)
            finally:
                self._done(scope, ctx, seen, time.perf_counter() - started)
            return
        path = scope.get("path", "")
        span = self.tracing.start(
            scope.get("method", ""), path if path in self.routes else None, ctx, _header(headers, b"tracestate")
        )
        try:
            with self.tracing.current(span):
                await self.app(scope, receive, sending)
        finally:
            self._done(scope, ctx, seen, time.perf_counter() - started)
            self.tracing.finish(span, seen, scope)

    def _done(self, scope: dict[str, Any], ctx: Context, seen: dict[str, Any], elapsed: float) -> None:
        path = scope.get("path", "")
        route = path if path in self.routes else "unmatched"
        status = seen["status"]
        self.metrics.requests.labels(scope.get("method", ""), route, str(status)).inc()
        self.metrics.latency.labels(route).observe(elapsed)
        if not self.log_requests:
            return
        line = {
            "time": _now(),
            "event": "http.request",
            "method": scope.get("method"),
            "path": path[:200],
            "status": status,
            "latency_ms": round(elapsed * 1000, 3),
            "request_id": ctx.request_id,
            "trace_id": trace_id(ctx.traceparent),
            "decision_id": seen.get("decision_id"),
            "policy_set": seen.get("policy_set"),
        }
        access_log.info(json.dumps(line, ensure_ascii=True, separators=(",", ":")))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """`--log-format json`: every server message one JSON object (the access log already is one)."""

    converter = time.gmtime  # type: ignore[assignment]

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == access_log.name:
            return message
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if record.exc_info:
            out["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "error"
        return json.dumps(out, ensure_ascii=True, separators=(",", ":"))
