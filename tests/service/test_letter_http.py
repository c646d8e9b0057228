"""`POST /v1/letters` on a real server on loopback: the UR letter `imr_policy.write_letter` writes, in the
media type `Accept` asks for, logged like a determination; `?check=true` answers what `letter --check` does."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import imr_policy
from imr_policy.cli.main import main
from imr_policy.compliance import letter
from imr_policy.service.worker import SLOW_CASE_ID
from tests.conftest import load_example
from tests.service.conftest import MAX_BODY, Server, read_records, start_server, stop_server

PROBLEM = "application/problem+json"
TYPE = "https://imr-policy.dev/problems/"
JSON = {"content-type": "application/json"}


def example(case_id: str = "letter-example") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(load_example("imr-2015-psych-example.yaml"), default=str))
    data["case_id"] = case_id
    return data


def post(server: Server, case: Any, accept: str | None = None, query: str = "") -> httpx.Response:
    headers = {**JSON, **({"accept": accept} if accept is not None else {})}
    with server.client() as c:
        return c.post(f"/v1/letters{query}", content=json.dumps(case), headers=headers)


def problem_of(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["type"] == TYPE + kind and body["status"] == status
    assert body["title"] and body["detail"]
    assert "Traceback" not in r.text
    return body


def logged(server: Server, r: httpx.Response) -> dict[str, Any]:
    (record,) = [x for x in read_records(server.audit_log) if x["decision_id"] == r.headers["imr-decision-id"]]
    return record


# ---------------------------------------------------------------------------------------- the letter


def test_json_by_default_is_the_letter_write_letter_writes(server: Server, engine: imr_policy.Engine) -> None:
    case = example("letter-json")
    for accept in (None, "*/*", "application/json", "application/*", "text/html;q=0.2, application/json"):
        r = post(server, case, accept)
        assert r.status_code == 200, (accept, r.text)
        assert r.headers["content-type"] == "application/json", accept
        assert r.json() == imr_policy.write_letter(engine, case).to_dict(), accept
        assert r.headers["imr-policy-set"] == engine.policy_set.content_hash
        assert r.headers["imr-letter-complete"] == "false"  # the example lacks the dates and the reviewer
        assert r.headers["vary"] == "Accept"
        # the letter states a decision: it is answered only once that decision is in the decision log
        record = logged(server, r)
        assert record["case_id"] == "letter-json"
        assert [i["determination"] for i in record["items"]] == [i["determination"] for i in r.json()["items"]]


def test_text(server: Server, engine: imr_policy.Engine) -> None:
    case = example("letter-text")
    for accept in ("text/plain", "text/*", "text/plain; charset=utf-8", "application/json;q=0.5, text/plain"):
        r = post(server, case, accept)
        assert r.status_code == 200, (accept, r.text)
        assert r.headers["content-type"] == "text/plain; charset=utf-8", accept
        assert r.text == letter.render_text(imr_policy.write_letter(engine, case)), accept
        assert logged(server, r)["case_id"] == "letter-text"


def test_html_is_the_letter_write_letter_renders(server: Server, engine: imr_policy.Engine) -> None:
    """The service only transports the letter: the HTML is `render_html(write_letter(...))`, byte for byte."""
    case = example("letter-html")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    for accept in ("text/html", browser):
        r = post(server, case, accept)
        assert r.status_code == 200, (accept, r.text)
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.content == letter.render_html(imr_policy.write_letter(engine, case)).encode()
        assert r.headers["imr-decision-id"]


def test_a_complete_letter_says_so(server: Server, engine: imr_policy.Engine) -> None:
    case = json.loads(json.dumps(load_example("certify-psychotherapy-initial-trial.yaml"), default=str))
    r = post(server, case)
    assert r.status_code == 200, r.text
    assert r.json() == imr_policy.write_letter(engine, case).to_dict()
    assert r.json()["complete"] is True and r.headers["imr-letter-complete"] == "true"


def test_the_provenance_floor(server: Server, engine: imr_policy.Engine) -> None:
    case = example("letter-floor")
    r = post(server, case, query="?min_provenance=V")
    assert r.status_code == 200, r.text
    strict = engine.evaluate(case, min_provenance="V")
    assert r.json() == imr_policy.write_letter(engine, case, strict).to_dict()
    assert [i["determination"] for i in r.json()["items"]] == ["pend", "pend"]
    assert logged(server, r)["min_provenance"] == "V"


# ---------------------------------------------------------------------------------------- check


def test_check_is_what_letter_check_reports(server: Server, engine: imr_policy.Engine) -> None:
    case = example("letter-check")
    before = len(read_records(server.audit_log))
    written = imr_policy.write_letter(engine, case)
    r = post(server, case, query="?check=true")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == letter.check_dict(written)
    assert r.json()["complete"] is False
    assert {(m["request"], m["element"]) for m in r.json()["missing"]} >= {
        ("cbt", "reviewer_name"),
        ("cbt", "rfa_date"),
    }
    assert r.headers["imr-letter-complete"] == "false"
    text = post(server, case, "text/plain", "?check=true")
    assert text.status_code == 200 and text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text == letter.render_check(written)
    # a check answers no decision, so nothing is logged and there is no decision id
    assert "imr-decision-id" not in r.headers and "imr-decision-id" not in text.headers
    assert len(read_records(server.audit_log)) == before
    # check=false is the letter
    full = post(server, case, query="?check=false")
    assert full.status_code == 200 and full.json() == written.to_dict()


def test_check_has_no_html(server: Server) -> None:
    body = problem_of(post(server, example(), "text/html", "?check=true"), 406, "not-acceptable")
    assert body["detail"] == (
        "`Accept: text/html` accepts none of the media types of the letter's completeness check (`check=true`): "
        "application/json, text/plain"
    )


# ---------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("accept", ["application/xml", "image/png, text/csv", "text/html;q=0, */*;q=0", "garbage"])
def test_an_accept_it_cannot_answer_is_a_406(server: Server, accept: str) -> None:
    before = len(read_records(server.audit_log))
    body = problem_of(post(server, example(), accept), 406, "not-acceptable")
    assert body["detail"] == (
        f"`Accept: {accept}` accepts none of the media types of the letter: application/json, text/plain, text/html"
    )
    assert len(read_records(server.audit_log)) == before  # refused before anything was decided


def test_a_malformed_case_names_the_field_and_no_patient_data(server: Server) -> None:
    case = example("letter-bad-quantity")
    case["requests"][1]["quantity"] = "6"
    case["history"][0]["progress_notes"] = "secret note of the patient"
    case["diagnoses"][0]["description"] = "secret diagnosis"
    r = post(server, case, "text/html")
    body = problem_of(r, 422, "invalid-case")
    (error,) = body["errors"]
    assert (error["code"], error["path"], error["pointer"]) == (
        "case.type",
        "$.requests[1].quantity",
        "/requests/1/quantity",
    )
    assert error["message"] == "expected a whole number, got the string `6`"
    assert "secret" not in r.text
    with server.client() as c:
        r = c.post("/v1/letters", content=b'{"case_id": "x",\n  "requests": [}', headers=JSON)
    (error,) = problem_of(r, 400, "malformed-json")["errors"]
    assert (error["code"], error["line"], error["column"]) == ("case.syntax", 2, 16)
    with server.client() as c:
        r = c.post("/v1/letters", content=json.dumps(example()), headers={"content-type": "text/plain"})
    problem_of(r, 415, "unsupported-media-type")


def test_bad_parameters(server: Server) -> None:
    body = problem_of(post(server, example(), query="?check=yes&check=no&floor=V"), 400, "invalid-parameter")
    assert sorted((e["parameter"], e["message"]) for e in body["errors"]) == [
        ("check", "`check` is `yes`; expected `true` or `false`"),
        ("check", "`check` is given more than once"),
        ("floor", "unknown query parameter `floor`"),
    ]
    assert {e["code"] for e in body["errors"]} == {"request.parameter"}
    body = problem_of(post(server, example(), query="?min_provenance=strong"), 400, "invalid-parameter")
    assert (
        body["errors"][0]["message"]
        == "unknown provenance grade `strong`; expected one of V, V-seed, V-2nd, UNVERIFIED"
    )


def test_the_body_limit_of_determinations(server: Server) -> None:
    case = example()
    case["history"][0]["progress_notes"] = "x" * MAX_BODY
    body = problem_of(post(server, case, "text/html"), 413, "body-too-large")
    assert body["detail"] == f"the body has {len(json.dumps(case))} bytes; the limit is {MAX_BODY}"

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"case_id": "' + b"x" * 4096
        for _ in range(MAX_BODY // 4096 + 1):
            yield b"x" * 4096
        yield b'"}'

    with server.client() as c:
        r = c.post("/v1/letters", content=chunks(), headers=JSON)
    assert "content-length" not in r.request.headers
    assert problem_of(r, 413, "body-too-large")["detail"] == f"the body is over the limit of {MAX_BODY} bytes"


def test_only_post(server: Server) -> None:
    with server.client() as c:
        r = c.get("/v1/letters")
    problem_of(r, 405, "method-not-allowed")
    assert r.headers["allow"] == "POST"


# ---------------------------------------------------------------------------------------- logs


def test_letters_replay_clean(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A letter's decision log record is a determination's: `imr-policy replay` decides it again the same."""
    ids = [post(server, example(f"letter-replay-{n}"), accept).headers["imr-decision-id"]
           for n, accept in enumerate(("application/json", "text/plain", "text/html"))]  # fmt: skip
    by_id = {x["decision_id"]: x for x in read_records(server.audit_log)}
    log = tmp_path / "letters.jsonl"
    log.write_text("".join(json.dumps(by_id[i]) + "\n" for i in ids), encoding="utf-8")
    assert main(["replay", str(log)]) == 0
    assert ": 3 same, 0 differ, 0 cannot be replayed" in capsys.readouterr().out


def test_a_client_that_leaves_before_its_letter_gets_no_record(server: Server) -> None:
    """As for a determination: a record means an answer was sent (the `slow` fault holds the case a second)."""
    body = json.dumps({**example(), "case_id": SLOW_CASE_ID}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/letters HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: text/html\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-Id: letter-gone-away\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        time.sleep(0.2)  # the case is in a worker now
    time.sleep(1.5)  # past the worker's answer
    assert all(x.get("request", {}).get("request_id") != "letter-gone-away" for x in read_records(server.audit_log))
    waited = post(server, {**example(), "case_id": SLOW_CASE_ID}, "text/html")
    assert waited.status_code == 200
    assert logged(server, waited)["case_id"] == SLOW_CASE_ID


def test_each_letter_request_is_in_the_access_log_without_patient_data(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", access_log=True)
    try:
        case = example("letter-logged")
        case["history"][0]["progress_notes"] = "secret note of the patient"
        case["diagnoses"][0]["description"] = "secret diagnosis"
        with server.client() as c:
            r = c.post("/v1/letters", content=json.dumps(case), headers={**JSON, "x-request-id": "letter-1"})
            checked = c.post("/v1/letters?check=true", content=json.dumps(case), headers=JSON)
            refused = c.post("/v1/letters", content=json.dumps(case), headers={**JSON, "accept": "image/png"})
            metrics = c.get("/metrics").text
    finally:
        assert stop_server(server) == 0
    assert (r.status_code, checked.status_code, refused.status_code) == (200, 200, 406)
    err = server.stderr.read_text()
    lines = [json.loads(m.group(1)) for m in re.finditer(r"imr_policy\.access: (\{.*\})$", err, re.MULTILINE)]
    mine = [x for x in lines if x["path"] == "/v1/letters"]
    assert [x["status"] for x in mine] == [200, 200, 406]
    assert mine[0]["request_id"] == "letter-1" and mine[0]["method"] == "POST"
    assert mine[0]["decision_id"] == r.headers["imr-decision-id"]
    assert mine[0]["policy_set"] == r.headers["imr-policy-set"]
    assert mine[1]["decision_id"] is None and mine[1]["policy_set"] == checked.headers["imr-policy-set"]
    assert "secret" not in err
    (record,) = read_records(server.audit_log)  # the letter; not the check, not the refusal
    assert record["decision_id"] == r.headers["imr-decision-id"]
    assert record["request"] == {"request_id": "letter-1"}
    assert "secret" not in server.audit_log.read_text(encoding="utf-8")  # redacted, as for a determination
    assert 'imr_policy_http_requests_total{method="POST",route="/v1/letters",status="200"} 2.0' in metrics
    assert 'imr_policy_problems_total{type="not-acceptable"} 1.0' in metrics
