"""Hostile bodies over real HTTP (the session's server on loopback): a 4xx problem, never a 500."""

from __future__ import annotations

import json

from tests.conftest import ROOT
from tests.service.conftest import Server

HOSTILE = ROOT / "tests" / "hostile"
JSON = {"content-type": "application/json"}


def _post(server: Server, body: bytes, path: str = "/v1/determinations") -> tuple[int, dict[str, object], str]:
    with server.client() as c:
        r = c.post(path, content=body, headers=JSON)
    return r.status_code, r.json(), r.headers["content-type"]


def test_a_lone_surrogate_is_a_422_not_a_500(server: Server) -> None:
    status, problem, kind = _post(server, (HOSTILE / "surrogate-in-description.json").read_bytes())
    assert (status, kind) == (422, "application/problem+json")
    assert problem["type"] == "https://imr-policy.dev/problems/invalid-case"
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert [(e["code"], e["path"]) for e in errors] == [("case.text", "$.diagnoses[0].description")]
    assert "PLANTED-NOTE" not in json.dumps(problem)


def test_limits_over_http(server: Server) -> None:
    for name, code in (("deep-nesting.json", "case.limit"), ("int-5000-digits.json", "case.limit")):
        status, problem, _ = _post(server, (HOSTILE / name).read_bytes())
        assert status == 422, (name, problem)
        errors = problem["errors"]
        assert isinstance(errors, list) and [e["code"] for e in errors] == [code]


def test_validate_reports_the_surrogate(server: Server) -> None:
    status, answer, _ = _post(server, (HOSTILE / "surrogate-in-key.json").read_bytes(), "/v1/validate")
    assert status == 200
    assert answer["valid"] is False
    diagnostics = answer["diagnostics"]
    assert isinstance(diagnostics, list) and [d["code"] for d in diagnostics] == ["case.text"]
