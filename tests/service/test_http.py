"""The HTTP service on loopback: answers, precise problem responses, load, worker faults, the decision log.

Every determination the server returns is compared with an isolated in-process evaluation of the
same case (`imr_policy.load().evaluate`), field for field.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import imr_policy
from imr_policy.cli.main import main
from imr_policy.service.worker import CRASH_CASE_ID, HANG_CASE_ID
from tests.conftest import EXAMPLES, load_example
from tests.service.conftest import MAX_BODY, TIMEOUT, Server, read_records
from tests.unit.test_engine import GRID

PROBLEM = "application/problem+json"
TYPE = "https://imr-policy.dev/problems/"
JSON = {"content-type": "application/json"}


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(load_example("imr-2015-psych-example.yaml"), default=str))
    return data


def problem_of(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["type"] == TYPE + kind
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


# ---------------------------------------------------------------------------------------- answers


def test_a_determination_is_the_in_process_one(server: Server, engine: imr_policy.Engine) -> None:
    case = example()
    r = server.post_case(case)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == engine.evaluate(case).to_dict()
    assert r.headers["imr-policy-set"] == engine.policy_set.content_hash
    assert r.headers["imr-decision-id"]


def test_every_example_case(server: Server, engine: imr_policy.Engine) -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        case = json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))
        r = server.post_case(case)
        assert r.status_code == 200, (path.name, r.text)
        assert r.json() == engine.evaluate(case).to_dict(), path.name


def test_validate(server: Server) -> None:
    assert server.post_case(example(), "/v1/validate").json() == {"valid": True, "diagnostics": []}
    case = example()
    case["requests"][1]["quantity"] = "6"
    body = server.post_case(case, "/v1/validate").json()
    assert body["valid"] is False
    assert [(d["code"], d["path"], d["pointer"]) for d in body["diagnostics"]] == [
        ("case.type", "$.requests[1].quantity", "/requests/1/quantity")
    ]
    # any JSON value can be validated: what is wrong with it is the answer
    body = server.post_case([1, 2], "/v1/validate").json()
    assert body["valid"] is False
    assert body["diagnostics"][0]["code"] == "case.type"


def test_policies_health_readiness_openapi(server: Server, engine: imr_policy.Engine) -> None:
    with server.client() as c:
        policies = c.get("/v1/policies").json()
        assert policies["policy_set"] == {"id": engine.policy_set.id, "content_hash": engine.policy_set.content_hash}
        got = {(e["guideline"], e["edition"], e["effective_from"], e["effective_to"]) for e in policies["editions"]}
        want = {
            (e.guideline_id, e.edition_id, e.effective_from.isoformat(), e.effective_to and e.effective_to.isoformat())
            for e in engine.editions
        }
        assert got == want
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and ready["workers"]["size"] == 2
        document = c.get("/openapi.json").json()
        assert document["openapi"] == "3.1.0"
        assert set(document["paths"]) == {
            "/v1/determinations",
            "/v1/determinations:batch",
            "/v1/letters",
            "/v1/validate",
            "/v1/policies",
            "/v1/admin/reload",
            "/healthz",
            "/readyz",
            "/metrics",
        }


# ---------------------------------------------------------------------------------------- problems


def test_malformed_json(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/determinations", content=b'{"case_id": "x",\n  "requests": [}', headers=JSON)
    body = problem_of(r, 400, "malformed-json")
    assert body["errors"] == [
        {
            "code": "case.syntax",
            "severity": "error",
            "message": "not valid JSON: expecting value",
            "path": "$",
            "pointer": "",
            "line": 2,
            "column": 16,
            "hint": "send one JSON object with `Content-Type: application/json`",
        }
    ]


def test_json_that_python_would_accept_but_is_not_json(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/determinations", content=b'{"case_id": NaN}', headers=JSON)
    body = problem_of(r, 400, "malformed-json")
    assert "`NaN` is not a JSON value" in body["errors"][0]["message"]
    # JSON, but over a limit of docs/limits.md: the case cannot be processed (422), naming the limit
    for text, limit in (
        ('{"quantity": ' + "9" * 5000 + "}", "case.max_integer_digits"),
        ("[" * 30_000 + "]" * 30_000, "case.max_depth"),
    ):
        with server.client() as c:
            r = c.post("/v1/determinations", content=text.encode(), headers=JSON)
        body = problem_of(r, 422, "invalid-case")
        assert body["errors"][0]["code"] == "case.limit"
        assert f"the limit `{limit}`" in body["errors"][0]["message"]


def test_duplicate_key(server: Server) -> None:
    text = '{\n  "case_id": "a",\n  "case_id": "b"\n}'
    with server.client() as c:
        body = problem_of(c.post("/v1/determinations", content=text, headers=JSON), 400, "malformed-json")
    (error,) = body["errors"]
    assert (error["code"], error["path"], error["line"], error["column"]) == ("case.duplicate-key", "$.case_id", 3, 3)


def _at(text: str, needle: str) -> tuple[int, int]:
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def test_unknown_field(server: Server) -> None:
    case = example()
    case["requests"][0]["quantiti"] = 6
    text = json.dumps(case, indent=2)
    with server.client() as c:
        body = problem_of(c.post("/v1/determinations", content=text, headers=JSON), 422, "invalid-case")
    line, column = _at(text, '"quantiti"')
    assert body["detail"] == "1 problem in the case"
    assert body["errors"] == [
        {
            "code": "case.unknown-field",
            "severity": "error",
            "message": "unknown field `quantiti`",
            "path": "$.requests[0].quantiti",
            "pointer": "/requests/0/quantiti",
            "line": line,
            "column": column,
            "hint": "did you mean `quantity`?",
        }
    ]


def test_wrong_type(server: Server) -> None:
    case = example()
    case["requests"][1]["quantity"] = "6"
    text = json.dumps(case, indent=2)
    with server.client() as c:
        body = problem_of(c.post("/v1/determinations", content=text, headers=JSON), 422, "invalid-case")
    (error,) = body["errors"]
    line, column = _at(text, '"6"')
    assert error == {
        "code": "case.type",
        "severity": "error",
        "message": "expected a whole number, got the string `6`",
        "path": "$.requests[1].quantity",
        "pointer": "/requests/1/quantity",
        "line": line,
        "column": column,
        "hint": "remove the quotes",
    }


def test_every_problem_of_a_case_at_once(server: Server) -> None:
    case = example()
    del case["date_of_injury"]
    case["jurisdiction"] = "New York"
    case["requests"][0]["date_of_service"] = "2015-7-10"
    body = problem_of(server.post_case(case), 422, "invalid-case")
    assert sorted((e["code"], e["path"]) for e in body["errors"]) == [
        ("case.date", "$.requests[0].date_of_service"),
        ("case.missing-field", "$"),
        ("case.pattern", "$.jurisdiction"),
    ]


def test_a_jurisdiction_without_a_profile_is_a_422(server: Server) -> None:
    case = example()
    case["jurisdiction"] = "NY"
    body = problem_of(server.post_case(case), 422, "invalid-case")
    assert [(e["code"], e["path"]) for e in body["errors"]] == [("case.unknown-jurisdiction", "$.jurisdiction")]


def test_oversized_body_with_a_length(server: Server) -> None:
    case = example()
    case["history"][0]["progress_notes"] = "x" * MAX_BODY
    with server.client() as c:
        r = c.post("/v1/determinations", content=json.dumps(case), headers=JSON)
    body = problem_of(r, 413, "body-too-large")
    assert body["detail"] == f"the body has {len(json.dumps(case))} bytes; the limit is {MAX_BODY}"


def test_oversized_body_without_a_length(server: Server) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"case_id": "' + b"x" * 4096
        for _ in range(MAX_BODY // 4096 + 1):
            yield b"x" * 4096
        yield b'"}'

    with server.client() as c:
        r = c.post("/v1/determinations", content=chunks(), headers=JSON)
    assert "content-length" not in r.request.headers
    body = problem_of(r, 413, "body-too-large")
    assert body["detail"] == f"the body is over the limit of {MAX_BODY} bytes"


def test_not_json_media_type(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/determinations", content=json.dumps(example()), headers={"content-type": "text/plain"})
        body = problem_of(r, 415, "unsupported-media-type")
        assert body["detail"] == "got `text/plain`; send the case with `Content-Type: application/json`"
        r = c.post("/v1/determinations", content=b"{}", headers={"content-type": "application/json; charset=latin-1"})
        problem_of(r, 415, "unsupported-media-type")


def test_unknown_endpoint_and_method(server: Server) -> None:
    with server.client() as c:
        body = problem_of(c.get("/v1/determination"), 404, "not-found")
        assert body["detail"] == "`/v1/determination` is not an endpoint of this service; see /openapi.json"
        r = c.get("/v1/determinations")
        problem_of(r, 405, "method-not-allowed")
        assert r.headers["allow"] == "POST"


# ---------------------------------------------------------------------------------------- load


def _load_cases() -> list[dict[str, Any]]:
    """GRID cases and the examples, each with identifying fields that must never reach the log."""
    examples = [
        json.loads(json.dumps(yaml.safe_load(p.read_text(encoding="utf-8")), default=str))
        for p in sorted(EXAMPLES.glob("*.yaml"))
    ]
    cases = random.Random(11).sample(GRID, 120) + examples
    for n, case in enumerate(cases):
        case["claimant"] = {"age": 30 + n % 50, "sex": "female"}
        case["diagnoses"] = [{**d, "description": f"secret diagnosis {n}"} for d in case["diagnoses"]]
        for h in case.get("history", []):
            h["progress_notes"] = f"secret note {n}"
    return cases


async def _clients(server: Server, plans: list[list[dict[str, Any]]], path: str) -> list[list[httpx.Response]]:
    """One connection per client; each client sends its plan in order; everything bounded by 120 s."""

    async def client(plan: list[dict[str, Any]]) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as c:
            return [await c.post(path, content=json.dumps(case), headers=JSON) for case in plan]

    return await asyncio.wait_for(asyncio.gather(*(client(p) for p in plans)), timeout=120)


def test_under_load_every_answer_is_right_and_its_own(server: Server, engine: imr_policy.Engine) -> None:
    """64 concurrent clients x 8 requests: each answer equals the isolated evaluation of its own case."""
    base = _load_cases()
    rng = random.Random(5)
    plans: list[list[dict[str, Any]]] = []
    for client in range(64):
        plan = []
        for n in range(8):
            case = json.loads(json.dumps(rng.choice(base)))
            case["case_id"] = f"load-{client}-{n}-{case['case_id']}"  # every request its own case_id
            plan.append(case)
        plans.append(plan)
    expected = {c["case_id"]: engine.evaluate(c).to_dict() for plan in plans for c in plan}
    assert len(expected) == 512

    answers = asyncio.run(_clients(server, plans, "/v1/determinations"))

    decision_ids = set()
    for plan, responses in zip(plans, answers, strict=True):
        for case, r in zip(plan, responses, strict=True):
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["case_id"] == case["case_id"]  # never another client's case
            assert got == expected[case["case_id"]]
            decision_ids.add(r.headers["imr-decision-id"])
    assert len(decision_ids) == 512

    # every decision is in the log, once, under its id, with what was answered and nothing identifying
    records = {r["decision_id"]: r for r in read_records(server.audit_log)}
    text = server.audit_log.read_text(encoding="utf-8")
    assert "secret" not in text
    for plan, responses in zip(plans, answers, strict=True):
        for case, r in zip(plan, responses, strict=True):
            record = records[r.headers["imr-decision-id"]]
            assert record["case_id"] == case["case_id"]
            assert record["policy_set"]["content_hash"] == r.headers["imr-policy-set"]
            assert [i["determination"] for i in record["items"]] == [i["determination"] for i in r.json()["items"]]
            assert "claimant" not in record["case"]


def test_the_decision_log_replays_clean(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """Everything the session's server decided so far, the load test's 512 included, replays the same."""
    records = read_records(server.audit_log)
    assert len(records) >= 512
    assert main(["replay", str(server.audit_log)]) == 0
    out = capsys.readouterr().out
    assert f": {len(records)} same, 0 differ, 0 cannot be replayed" in out


def test_a_tampered_log_does_not_replay_clean(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = read_records(server.audit_log)[:3]
    item = records[1]["items"][0]
    item["approved_quantity"] += 1
    log = tmp_path / "tampered.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n", encoding="utf-8")
    assert main(["replay", str(log)]) == 1
    out = capsys.readouterr().out
    assert f"line 2: decision {records[1]['decision_id']} (case `{records[1]['case_id']}`) differs" in out
    assert f"item `{item['request']}`: approved_quantity `{item['approved_quantity']}`" in out
    assert "line 4: a record cannot be replayed\n  not valid JSON" in out
    assert out.strip().endswith(
        "4 decisions replayed with policy set imr-policy:builtin "
        f"({records[0]['policy_set']['content_hash']}): 2 same, 1 differ, 1 cannot be replayed"
    )


# ---------------------------------------------------------------------------------------- faults


def _fault_run(
    server: Server, engine: imr_policy.Engine, marker: str
) -> tuple[list[httpx.Response], list[httpx.Response], dict[str, Any]]:
    """8 clients with 4 ordinary cases each, and one client that sends `marker` twice, all at once."""
    base = random.Random(3).sample(GRID, 32)
    plans = [[{**c, "case_id": f"{marker}-neighbour-{i}-{j}"} for j, c in enumerate(base[i * 4 : i * 4 + 4])]
             for i in range(8)]  # fmt: skip
    faulty = example()
    faulty["case_id"] = marker
    plans.append([faulty, faulty])
    expected = {c["case_id"]: engine.evaluate(c).to_dict() for plan in plans[:-1] for c in plan}
    answers = asyncio.run(_clients(server, plans, "/v1/determinations"))
    neighbours = [r for responses in answers[:-1] for r in responses]
    return neighbours, answers[-1], expected


def test_a_crashed_worker_costs_only_the_request_it_held(server: Server, engine: imr_policy.Engine) -> None:
    neighbours, crashed, expected = _fault_run(server, engine, CRASH_CASE_ID)
    for r in crashed:
        body = problem_of(r, 503, "worker-crashed")
        assert "SIGSEGV" in body["detail"]
        assert r.headers["retry-after"] == "1"
        assert r.headers["imr-policy-set"] == engine.policy_set.content_hash
    for r in neighbours:
        assert r.status_code == 200, r.text
        assert r.json() == expected[r.json()["case_id"]]
    assert server.wait_ready(live=2)["workers"]["live"] == 2  # both crashed workers were replaced
    assert server.post_case(example()).status_code == 200


def test_a_hung_worker_is_killed_and_costs_only_its_request(server: Server, engine: imr_policy.Engine) -> None:
    neighbours, hung, expected = _fault_run(server, engine, HANG_CASE_ID)
    for r in hung:
        body = problem_of(r, 503, "evaluation-timeout")
        assert body["detail"].startswith(f"no answer within {TIMEOUT:g} s")
    for r in neighbours:
        assert r.status_code == 200, r.text
        assert r.json() == expected[r.json()["case_id"]]
    assert server.wait_ready(live=2)["workers"]["live"] == 2
    assert server.post_case(example()).status_code == 200


def test_faults_are_never_logged_as_decisions(server: Server) -> None:
    cases = {r["case_id"] for r in read_records(server.audit_log)}
    assert CRASH_CASE_ID not in cases and HANG_CASE_ID not in cases


# ---------------------------------------------------------------------------------------- the provenance floor


def test_the_provenance_floor(server: Server, engine: imr_policy.Engine) -> None:
    """`?min_provenance=V`: the answer is the in-process one with the same floor, and the floor changes it
    (the example's numbers are graded V-seed); the log records the floor used."""
    case = {**example(), "case_id": "floor-v"}
    with server.client() as c:
        r = c.post("/v1/determinations", params={"min_provenance": "V"}, content=json.dumps(case), headers=JSON)
    assert r.status_code == 200, r.text
    assert r.json() == engine.evaluate(case, min_provenance="V").to_dict()
    assert [i["determination"] for i in r.json()["items"]] == ["pend", "pend"]
    assert r.json()["items"] != engine.evaluate(case).to_dict()["items"]
    (record,) = [x for x in read_records(server.audit_log) if x["decision_id"] == r.headers["imr-decision-id"]]
    assert record["min_provenance"] == "V"
    unfloored = server.post_case({**case, "case_id": "floor-none"})
    (plain,) = [x for x in read_records(server.audit_log) if x["decision_id"] == unfloored.headers["imr-decision-id"]]
    assert plain["min_provenance"] is None


def test_a_floor_that_is_not_a_grade(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/determinations?min_provenance=strong", content=json.dumps(example()), headers=JSON)
        body = problem_of(r, 400, "invalid-parameter")
        (error,) = body["errors"]
        assert error["parameter"] == "min_provenance"
        assert error["code"] == "request.parameter"
        assert error["message"] == "unknown provenance grade `strong`; expected one of V, V-seed, V-2nd, UNVERIFIED"
        # unknown and repeated parameters are refused too, all at once
        r = c.post("/v1/determinations?min_provenance=V&min_provenance=V-2nd&floor=V", content=b"{}", headers=JSON)
        body = problem_of(r, 400, "invalid-parameter")
        assert sorted(e["parameter"] for e in body["errors"]) == ["floor", "min_provenance"]
        # hostile: a thousand parameters get one bounded problem
        many = "&".join(f"p{n}=1" for n in range(1000))
        body = problem_of(c.post(f"/v1/determinations?{many}", content=b"{}", headers=JSON), 400, "invalid-parameter")
        assert len(body["errors"]) == 20
    assert not [x for x in read_records(server.audit_log) if x["case_id"] == example()["case_id"] and "strong" in x]


def test_a_log_with_a_floor_replays_with_it(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Decisions logged with floors replay with zero differences; the same record without its floor
    differs, so replay did decide with the floor (and the floor changed the outcome)."""
    ids = []
    for n, floor in enumerate(("V", "V-seed", "V-2nd", "UNVERIFIED")):
        for name in ("imr-2015-psych-example.yaml", "occupational-therapy-statute-cap.yaml"):
            case = {**json.loads(json.dumps(load_example(name), default=str)), "case_id": f"floor-{n}-{name}"}
            with server.client() as c:
                r = c.post(f"/v1/determinations?min_provenance={floor}", content=json.dumps(case), headers=JSON)
            assert r.status_code == 200, r.text
            ids.append(r.headers["imr-decision-id"])
    by_id = {x["decision_id"]: x for x in read_records(server.audit_log)}
    records = [by_id[i] for i in ids]
    log = tmp_path / "floors.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in records), encoding="utf-8")
    assert main(["replay", str(log)]) == 0
    assert ": 8 same, 0 differ, 0 cannot be replayed" in capsys.readouterr().out

    strict = records[0]  # the example under floor V: both items pend
    assert strict["min_provenance"] == "V" and {i["determination"] for i in strict["items"]} == {"pend"}
    log.write_text(json.dumps({**strict, "min_provenance": None}) + "\n", encoding="utf-8")
    assert main(["replay", str(log)]) == 1
    out = capsys.readouterr().out
    assert "determination `pend` -> `modify`" in out
    assert ": 0 same, 1 differ, 0 cannot be replayed" in out
    log.write_text(json.dumps({**strict, "min_provenance": "strong"}) + "\n", encoding="utf-8")
    assert main(["replay", str(log)]) == 1
    assert "`min_provenance` is `strong`, not one of V, V-seed, V-2nd, UNVERIFIED" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------- closed, observable


def test_the_admin_endpoint_is_off_without_a_token(server: Server) -> None:
    with server.client() as c:
        body = problem_of(c.post("/v1/admin/reload"), 403, "admin-disabled")
        assert "IMR_POLICY_ADMIN_TOKEN" in body["detail"]
        # with any token at all: still off, nothing reloaded
        problem_of(c.post("/v1/admin/reload", headers={"authorization": "Bearer x"}), 403, "admin-disabled")


TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_request_id_and_traceparent(server: Server) -> None:
    case = {**example(), "case_id": "traced"}
    with server.client() as c:
        r = c.post(
            "/v1/determinations",
            content=json.dumps(case),
            headers={**JSON, "x-request-id": "req-42.a", "traceparent": TRACE},
        )
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "req-42.a"
        assert r.headers["traceparent"] == TRACE
        (record,) = [x for x in read_records(server.audit_log) if x["decision_id"] == r.headers["imr-decision-id"]]
        assert record["request"] == {"request_id": "req-42.a", "traceparent": TRACE}
        # an unusable id is replaced (never echoed); a malformed traceparent is dropped
        r = c.post(
            "/v1/determinations",
            content=json.dumps(case),
            headers={
                **JSON,
                "x-request-id": "a b" + "x" * 200,
                "traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
            },
        )
        assert r.status_code == 200
        assert r.headers["x-request-id"] != "a b" + "x" * 200 and len(r.headers["x-request-id"]) == 36
        assert "traceparent" not in r.headers
        (record,) = [x for x in read_records(server.audit_log) if x["decision_id"] == r.headers["imr-decision-id"]]
        assert record["request"] == {"request_id": r.headers["x-request-id"]}
        # problems carry the id too
        r = c.get("/v1/nothing", headers={"x-request-id": "req-43"})
        assert r.status_code == 404 and r.headers["x-request-id"] == "req-43"


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus exposition `text` (0 when the series is absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        head, _, rest = series.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if head == name and got == want:
            return float(value)
    return 0.0


def test_metrics(server: Server, engine: imr_policy.Engine) -> None:
    with server.client() as c:
        before = c.get("/metrics")
        assert before.status_code == 200
        assert before.headers["content-type"].startswith("text/plain; version=")
        case = {**example(), "case_id": "metrics"}
        kinds = [i.determination for i in engine.evaluate(case).items]
        assert server.post_case(case).status_code == 200
        problem_of(c.get("/v1/scanning/for/admin.php"), 404, "not-found")
        crash = {**example(), "case_id": CRASH_CASE_ID}
        problem_of(server.post_case(crash), 503, "worker-crashed")
        server.wait_ready(live=2)
        after = c.get("/metrics").text

    def grew(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before.text, name, **labels)

    ok = {"method": "POST", "route": "/v1/determinations", "status": "200"}
    assert grew("imr_policy_http_requests_total", **ok) == 1
    assert grew("imr_policy_http_request_duration_seconds_count", route="/v1/determinations") == 2  # 200 and 503
    for kind in set(kinds):
        assert grew("imr_policy_determinations_total", determination=kind) == kinds.count(kind)
    assert grew("imr_policy_decision_log_writes_total") == 1
    assert grew("imr_policy_decision_log_syncs_total") == 1  # the default policy: one fsync per record
    assert grew("imr_policy_worker_restarts_total", reason="crashed") == 1
    assert grew("imr_policy_problems_total", type="worker-crashed") == 1
    # an unknown path is counted under one label, never its own
    assert grew("imr_policy_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert "admin.php" not in after
    assert _metric(after, "imr_policy_workers_live") == 2
