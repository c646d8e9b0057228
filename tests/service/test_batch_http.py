"""`POST /v1/determinations:batch` on a real server on loopback: JSON Lines in, JSON Lines out, in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import imr_policy
from tests.conftest import load_example
from tests.service.conftest import Server, read_records, start_server, stop_server

NDJSON = {"Content-Type": "application/x-ndjson"}


def _lines(*cases: Any) -> bytes:
    return b"".join((c if isinstance(c, bytes) else json.dumps(c, default=str).encode()) + b"\n" for c in cases)


def test_each_case_or_its_problem_in_order_and_each_decision_logged(server: Server) -> None:
    good = load_example("imr-2015-psych-example.yaml")
    good["case_id"] = "batch-good"
    other = load_example("texas-odg-psychotherapy.yaml")
    other["case_id"] = "batch-other"
    invalid = {"case_id": "batch-invalid", "jurisdiction": "CA"}
    before = len(read_records(server.audit_log))
    with server.client() as client:
        r = client.post("/v1/determinations:batch", content=_lines(good, b"{not json", invalid, other), headers=NDJSON)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    out = [json.loads(line) for line in r.text.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3, 4]
    assert out[0]["determination"]["case_id"] == "batch-good"
    assert out[1]["problem"]["status"] == 400 and out[1]["problem"]["type"].endswith("malformed-json")
    assert out[2]["problem"]["status"] == 422 and out[2]["problem"]["type"].endswith("invalid-case")
    assert out[3]["determination"]["case_id"] == "batch-other"
    # the same answer as the single endpoint gives
    single = server.post_case(good).json()
    assert out[0]["determination"]["items"] == single["items"]
    # one record per determination sent, none for a problem
    records = read_records(server.audit_log)[before:]
    ids = {rec["decision_id"] for rec in records}
    assert out[0]["decision_id"] in ids and out[3]["decision_id"] in ids
    assert len(records) == 3  # the two batch lines and the single request


def test_refusals_are_problem_json(server: Server) -> None:
    with server.client() as client:
        wrong_type = client.post(
            "/v1/determinations:batch", content=b"{}\n", headers={"Content-Type": "application/json"}
        )
        assert wrong_type.status_code == 415
        assert wrong_type.headers["content-type"].startswith("application/problem+json")
        bad_param = client.post("/v1/determinations:batch?nope=1", content=b"{}\n", headers=NDJSON)
        assert bad_param.status_code == 400
        empty_line = client.post("/v1/determinations:batch", content=b"\n{}\n", headers=NDJSON)
        assert empty_line.status_code == 200
        first, second = (json.loads(x) for x in empty_line.text.splitlines())
        assert first["problem"]["type"].endswith("malformed-json") and "empty line" in first["problem"]["detail"]
        assert second["problem"]["type"].endswith("invalid-case")


def test_the_provenance_floor_applies_to_every_line(server: Server) -> None:
    case = load_example("physical-therapy-aquatic-radiculitis.yaml")
    with server.client() as client:
        r = client.post("/v1/determinations:batch?min_provenance=V", content=_lines(case, case), headers=NDJSON)
    assert r.status_code == 200
    engine = imr_policy.load()
    strict = engine.evaluate(case, min_provenance="V").to_dict()
    for line in r.text.splitlines():
        assert json.loads(line)["determination"]["items"] == strict["items"]


def test_the_batch_limits_are_set_by_the_serve_flags(tmp_path: Path) -> None:
    small = start_server(tmp_path / "small", "--max-batch-cases", "2")
    try:
        with small.client() as client:
            r = client.post("/v1/determinations:batch", content=b"{}\n{}\n{}\n", headers=NDJSON)
            assert r.status_code == 413
            assert "the batch has 3 lines; the limit is 2" in r.json()["detail"]
            ok = client.post("/v1/determinations:batch", content=b"{}\n{}\n", headers=NDJSON)
            assert ok.status_code == 200 and len(ok.text.splitlines()) == 2
    finally:
        assert stop_server(small) == 0
