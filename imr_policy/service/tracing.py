"""OpenTelemetry spans for the HTTP service: optional, off by default, behind the `otel` extra.

Imported only when tracing is turned on (`ServiceConfig(otel=True)`, `imr-policy serve --otel` or
`IMR_POLICY_OTEL=1`); without it nothing here runs and `opentelemetry` is never imported.

One span per HTTP request, of kind SERVER, named `METHOD ROUTE` (the endpoint's path; just `METHOD` for
a path that is no endpoint, so a scanner cannot grow the span names). It starts when the request
arrives and ends once its answer is sent, and carries only what the access log carries: the request
id, the decision id and policy set, the status, the problem type of a refusal, and how many items were
decided of each kind (`imr_policy.determinations.certify`, ...). Nothing of the body is ever put on a
span: no case, no description, no note. A valid W3C `traceparent` (the same check as
observe.traceparent; a malformed one is ignored, so a new trace is started) makes the span a child of
the caller's span, with the caller's `tracestate`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from imr_policy.evaluate import ENGINE_VERSION
from imr_policy.service.observe import Context

DETERMINATIONS = ("certify", "modify", "non_certify", "pend")
EXPORTERS = ("otlp", "console", "none")  # the values of OTEL_TRACES_EXPORTER that `serve` understands

_propagator = TraceContextTextMapPropagator()


class Tracing:
    """Starts and ends the span of each request, with the tracer of `provider` (default: the global one)."""

    def __init__(self, provider: Any = None) -> None:
        source = provider if provider is not None else trace.get_tracer_provider()
        self.tracer = source.get_tracer("imr_policy.service", ENGINE_VERSION)

    def start(self, method: str, route: str | None, ctx: Context, tracestate: str | None) -> Any:
        carrier = {"traceparent": ctx.traceparent} if ctx.traceparent else {}
        if carrier and tracestate:
            carrier["tracestate"] = tracestate
        parent = _propagator.extract(carrier) if carrier else None
        attributes: dict[str, Any] = {"http.request.method": method, "imr_policy.request_id": ctx.request_id}
        if route is not None:
            attributes["http.route"] = route
        name = f"{method} {route}" if route is not None else method
        return self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)

    @staticmethod
    def current(span: Any) -> Any:
        """A context manager making `span` the current span (for the embedder's own spans), not ending it."""
        return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)

    @staticmethod
    def finish(span: Any, seen: Mapping[str, Any], scope: Mapping[str, Any]) -> None:
        status = int(seen["status"])
        span.set_attribute("http.response.status_code", status)
        for key, attribute in (("decision_id", "imr_policy.decision_id"), ("policy_set", "imr_policy.policy_set")):
            if seen.get(key):
                span.set_attribute(attribute, str(seen[key]))
        if problem := scope.get("imr_policy.problem"):
            span.set_attribute("imr_policy.problem_type", str(problem))
        decided = scope.get("imr_policy.determinations")
        if decided is not None:
            span.set_attribute("imr_policy.decisions", int(decided.get("decisions", 0)))
            for kind in DETERMINATIONS:
                span.set_attribute(f"imr_policy.determinations.{kind}", int(decided.get(kind, 0)))
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        span.end()


def configure(environ: Mapping[str, str] = os.environ, *, stream: TextIO | None = None) -> Any:
    """For `imr-policy serve --otel`: the TracerProvider to use, and whether `serve` owns it (must shut it
    down, which flushes the spans not yet exported) as `(provider, owned)`.

    A provider already set up in the process (by `opentelemetry-instrument`, say) is used as it is. Else
    an SDK provider is made with the exporter `OTEL_TRACES_EXPORTER` names: `otlp` (the default; OTLP over
    HTTP, configured by the standard `OTEL_EXPORTER_OTLP_*` variables), `console` (one JSON object a line
    on standard error) or `none`; spans are exported in batches (`OTEL_BSP_*`). Raises ValueError for
    another exporter, ImportError when the one named is not installed."""
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415  (the SDK only when serve owns the setup)
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        return existing, False
    exporter_name = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter_name not in EXPORTERS:
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter_name!r} is not one of {', '.join(EXPORTERS)}")
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    attributes = {"service.version": ENGINE_VERSION, **({} if named else {"service.name": "imr-policy"})}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter_name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        out = stream if stream is not None else sys.stderr
        console = ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")
        provider.add_span_processor(BatchSpanProcessor(console))
    return provider, True
