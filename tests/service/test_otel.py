"""OpenTelemetry spans (the `otel` extra): one span per request on a real server on loopback, carrying the
request id, the decision id and the outcome counts, never patient data, a child of the caller's valid
`traceparent`; and with spans off (the default), opentelemetry is never imported.

The tests that need the SDK skip when it is not installed; the ones about spans being off run always.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imr_policy.cli.main import main
from tests.conftest import ROOT
from tests.service.conftest import start_server, stop_server
from tests.service.test_http import JSON, example


def _installed(module: str) -> bool:
    """Whether `module` can be imported (find_spec raises, not answers, when a parent package is missing)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


HAVE_SDK = _installed("opentelemetry") and _installed("opentelemetry.sdk")
needs_sdk = pytest.mark.skipif(not HAVE_SDK, reason="the `otel` extra (opentelemetry-sdk) is not installed")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
PLANTED = "PLANTED-NOTE-OTEL lives alone and fears falling"


def planted_case() -> dict[str, Any]:
    case = example()
    case["diagnoses"][0]["description"] = PLANTED
    for entry in case.get("history", []):
        entry["progress_notes"] = PLANTED
    return case


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The service in this process, served by uvicorn on a loopback socket in a thread, its spans going to
    the SDK's in-memory exporter."""
    if not HAVE_SDK:
        pytest.skip("the `otel` extra (opentelemetry-sdk) is not installed")
    import uvicorn
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from imr_policy.service.app import ServiceConfig, create_app

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = ServiceConfig(
        audit_log=tmp_path_factory.mktemp("otel") / "decisions.jsonl",
        workers=1,
        access_log=False,
        otel=True,
        tracer_provider=provider,
    )
    started = threading.Event()
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(config, on_started=started.set), log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert started.wait(60), "the service did not start within 60 s"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", exporter
    finally:
        server.should_exit = True
        thread.join(60)
        provider.shutdown()


def span_of(exporter: Any, request_id: str) -> Any:
    """The span of the request with this id; it ends just after the answer is sent, so wait for it (bounded)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [s for s in exporter.get_finished_spans() if s.attributes.get("imr_policy.request_id") == request_id]
        if found:
            assert len(found) == 1
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no span for request {request_id}")


@needs_sdk
def test_a_determination_gets_a_span_with_its_ids_and_outcomes(traced: tuple[str, Any]) -> None:
    from opentelemetry.trace import SpanKind

    url, exporter = traced
    headers = {**JSON, "x-request-id": "otel-1", "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    r = httpx.post(f"{url}/v1/determinations", content=json.dumps(planted_case()), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    span = span_of(exporter, "otel-1")
    assert span.name == "POST /v1/determinations"
    assert span.kind == SpanKind.SERVER
    a = dict(span.attributes)
    assert a["http.request.method"] == "POST" and a["http.route"] == "/v1/determinations"
    assert a["http.response.status_code"] == 200
    assert a["imr_policy.decision_id"] == r.headers["imr-decision-id"]
    assert a["imr_policy.policy_set"] == r.headers["imr-policy-set"]
    decided = [item["determination"] for item in r.json()["items"]]
    assert a["imr_policy.decisions"] == 1
    for kind in ("certify", "modify", "non_certify", "pend"):
        assert a[f"imr_policy.determinations.{kind}"] == decided.count(kind)
    # a child of the caller's span, in the caller's trace (W3C trace context)
    assert span.context.trace_id == int(TRACE_ID, 16)
    assert span.parent is not None and span.parent.span_id == int(PARENT_ID, 16) and span.parent.is_remote
    assert r.headers["traceparent"] == headers["traceparent"]  # echoed as before
    assert "PLANTED-NOTE" not in span.to_json()


@needs_sdk
def test_refusals_and_unknown_paths(traced: tuple[str, Any]) -> None:
    url, exporter = traced
    case = planted_case()
    case["requests"][0]["quantity"] = "six"
    bad = {**JSON, "x-request-id": "otel-2", "traceparent": f"00-{TRACE_ID}-{'0' * 16}-01"}  # a zero parent id
    r = httpx.post(f"{url}/v1/determinations", content=json.dumps(case), headers=bad, timeout=30)
    assert r.status_code == 422
    span = span_of(exporter, "otel-2")
    a = dict(span.attributes)
    assert a["imr_policy.problem_type"] == "invalid-case" and a["http.response.status_code"] == 422
    assert "imr_policy.decision_id" not in a and "imr_policy.decisions" not in a
    assert span.parent is None and span.context.trace_id != int(TRACE_ID, 16)  # malformed: a new trace
    assert "PLANTED-NOTE" not in span.to_json()

    r = httpx.get(f"{url}/no/such/path", headers={"x-request-id": "otel-3"}, timeout=30)
    assert r.status_code == 404
    span = span_of(exporter, "otel-3")
    assert span.name == "GET" and "http.route" not in span.attributes  # a scanner cannot grow the span names
    assert span.attributes["imr_policy.problem_type"] == "not-found"


@needs_sdk
def test_a_batch_span_counts_every_decision(traced: tuple[str, Any]) -> None:
    url, exporter = traced
    lines = [json.dumps({**planted_case(), "case_id": f"otel-batch-{i}"}) for i in range(3)]
    body = "\n".join([*lines, "{not json"]) + "\n"
    headers = {"content-type": "application/x-ndjson", "x-request-id": "otel-4"}
    r = httpx.post(f"{url}/v1/determinations:batch", content=body, headers=headers, timeout=60)
    assert r.status_code == 200
    answers = [json.loads(line) for line in r.text.splitlines()]
    span = span_of(exporter, "otel-4")
    a = dict(span.attributes)
    assert a["imr_policy.decisions"] == 3
    decided = [item["determination"] for x in answers if "determination" in x for item in x["determination"]["items"]]
    assert sum(a[f"imr_policy.determinations.{k}"] for k in ("certify", "modify", "non_certify", "pend")) == len(
        decided
    )
    assert "PLANTED-NOTE" not in span.to_json()


@needs_sdk
def test_serve_otel_exports_spans(tmp_path: Path) -> None:
    """`imr-policy serve --otel` with the console exporter: the spans reach standard error, one JSON object a
    line, flushed at SIGTERM; a child of the caller's trace."""
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    server = start_server(tmp_path / "server", "--otel", env=env)
    try:
        headers = {**JSON, "x-request-id": "otel-serve-1", "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        with server.client() as c:
            r = c.post("/v1/determinations", content=json.dumps(planted_case()), headers=headers)
        assert r.status_code == 200
    finally:
        assert stop_server(server) == 0
    spans = []
    for line in server.stderr.read_text(encoding="utf-8").splitlines():
        if line.startswith("{") and '"context"' in line:
            spans.append(json.loads(line))
    (span,) = [s for s in spans if s["attributes"].get("imr_policy.request_id") == "otel-serve-1"]
    assert span["name"] == "POST /v1/determinations"
    assert span["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert span["parent_id"] == f"0x{PARENT_ID}"
    assert span["attributes"]["imr_policy.decision_id"] == r.headers["imr-decision-id"]
    assert span["resource"]["attributes"]["service.name"] == "imr-policy"
    assert "PLANTED-NOTE" not in server.stderr.read_text(encoding="utf-8")


@needs_sdk
def test_serve_refuses_an_exporter_it_does_not_know(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    assert main(["serve", "--otel", "--port", "0"]) == 2
    assert "OTEL_TRACES_EXPORTER='zipkin' is not one of otlp, console, none" in capsys.readouterr().err


@pytest.mark.skipif(
    not HAVE_SDK or not _installed("opentelemetry.exporter.otlp.proto.http"),
    reason="the OTLP/HTTP exporter of the `otel` extra is not installed",
)
def test_the_default_exporter_is_otlp_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `serve --otel` sets up by default sends the spans by OTLP over HTTP, flushed at shutdown: here to
    a receiver on loopback, which decodes them."""
    import http.server

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from imr_policy.service import tracing
    from imr_policy.service.observe import Context

    received: list[tuple[str, bytes]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.server_address[1]}")
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
        provider, owned = tracing.configure()
        assert owned is True
        spans = tracing.Tracing(provider)
        span = spans.start("POST", "/v1/determinations", Context("otlp-1", None), None)
        spans.finish(span, {"status": 200, "decision_id": "d-1"}, {})
        provider.shutdown()  # flushes the batch
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(10)
    ((path, body),) = received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    (resource,) = request.resource_spans
    names = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert names["service.name"] == "imr-policy"
    (sent,) = [s for scope in resource.scope_spans for s in scope.spans]
    assert sent.name == "POST /v1/determinations"
    attributes = {a.key: a.value for a in sent.attributes}
    assert attributes["imr_policy.request_id"].string_value == "otlp-1"
    assert attributes["imr_policy.decision_id"].string_value == "d-1"


def test_serve_otel_without_the_extra_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As if the extra were not installed (an import of opentelemetry fails): exit 2, and what to install."""
    import imr_policy.service

    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "imr_policy.service.tracing", raising=False)
    monkeypatch.delattr(imr_policy.service, "tracing", raising=False)
    monkeypatch.setenv("IMR_POLICY_OTEL", "1")
    # --workers 0 is refused (exit 2) after the extra is looked for: a server is never started here
    assert main(["serve", "--port", "0", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "OpenTelemetry spans need the `otel` extra (opentelemetry is missing)" in err
    assert "pip install 'imr-policy[otel]'" in err


def test_spans_off_import_nothing_of_opentelemetry(tmp_path: Path) -> None:
    """The default, on a real server: an `opentelemetry` package that records being imported is first on the
    path of the server and its workers, and after a determination, a refusal and a reload it has not been."""
    trap = tmp_path / "trap" / "opentelemetry"
    trap.mkdir(parents=True)
    marker = tmp_path / "imported"
    (trap / "__init__.py").write_text(
        f"open({str(marker)!r}, 'a').write('imported\\n')\nraise ImportError('opentelemetry is a trap here')\n",
        encoding="utf-8",
    )
    env = {"PYTHONPATH": f"{trap.parent}{os.pathsep}{ROOT}"}
    server = start_server(tmp_path / "server", env=env)
    try:
        with server.client() as c:
            assert c.post("/v1/determinations", content=json.dumps(example()), headers=JSON).status_code == 200
            assert c.post("/v1/determinations", content=b"{", headers=JSON).status_code == 400
            assert c.get("/metrics").status_code == 200
        server.proc.send_signal(signal.SIGHUP)  # a reload starts new workers only when the files changed;
        server.wait_ready()  # this one at least runs the reload path in the server
    finally:
        assert stop_server(server) == 0
    assert not marker.exists()
