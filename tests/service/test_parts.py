"""The service's parts without a server: body parsing, frames, JSON pointers, the OpenAPI document,
policy snapshots, and `imr-policy serve` refusing invalid rule files before it starts anything."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import imr_policy
from imr_policy.cli.main import main
from imr_policy.compliance import letter
from imr_policy.loading.resources import policies_dir, schema
from imr_policy.service import media, observe, openapi, wire
from imr_policy.service.app import ServiceConfig, create_app
from imr_policy.service.policyset import remove, take_snapshot, validate_snapshot
from imr_policy.service.problems import TYPES, Problem, json_pointer
from imr_policy.service.worker import Handler, parse_body
from tests.conftest import EXAMPLES


@pytest.mark.parametrize(
    ("body", "code", "message", "line", "column"),
    [
        (b"", "case.syntax", "not valid JSON: expecting value", 1, 1),
        (b'{"a": 1,}', "case.syntax", "not valid JSON: expecting property name enclosed in double quotes", 1, 9),
        (b'{"a": 1} x', "case.syntax", "not valid JSON: extra data", 1, 10),
        (b'{"a": NaN}', "case.syntax", "`NaN` is not a JSON value", None, None),
        (b'{"a": -Infinity}', "case.syntax", "`-Infinity` is not a JSON value", None, None),
        (b'{"a": "\xff"}', "case.syntax", "the body is not UTF-8 text (byte 7)", None, None),
        # JSON over a limit of docs/limits.md (the worker answers these 422, not 400)
        (
            b"[" * 50_000 + b"]" * 50_000,
            "case.limit",
            "the document is nested too deeply; the limit `case.max_depth` is 32",
            None,
            None,
        ),
        (
            b'{"a": ' + b"1" * 5000 + b"}",
            "case.limit",
            "a whole number has 5,000 digits; the limit `case.max_integer_digits` is 20",
            None,
            None,
        ),
        (b'{"a": {"b": 1, "b": 2}}', "case.duplicate-key", "duplicate key `b` (first defined at line 1)", 1, 16),
    ],
)
def test_parse_body_refuses_what_is_not_json(
    body: bytes, code: str, message: str, line: int | None, column: int | None
) -> None:
    data, problems = parse_body(body)
    assert data is None
    (d,) = problems
    assert (d.code, d.message, d.line, d.column) == (code, message, line, column)
    assert d.hint


def test_parse_body_accepts_json() -> None:
    assert parse_body('{"a": [1, "é", null, true]}'.encode()) == ({"a": [1, "é", None, True]}, ())


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        ("$", ""),
        ("$.requests[0].quantity", "/requests/0/quantity"),
        ("$['a/b']['c~d']", "/a~1b/c~0d"),
        ("$['it\\'s']", "/it's"),
        ("not a path", ""),
    ],
)
def test_json_pointer(path: str, pointer: str) -> None:
    assert json_pointer(path) == pointer


def test_frames_round_trip_and_refuse_garbage() -> None:
    frame = wire.encode({"id": 3, "status": "ok"}, b'{"x": 1}', b"")
    assert wire.length(frame[: wire.PREFIX]) == len(frame) - wire.PREFIX
    assert wire.decode(frame[wire.PREFIX :]) == ({"id": 3, "status": "ok"}, [b'{"x": 1}', b""])
    for bad in (b"no header line", b"not json\n", b'{"sections": [5]}\nabc', b'{"sections": "x"}\n'):
        with pytest.raises(wire.ProtocolError):
            wire.decode(bad)
    with pytest.raises(wire.ProtocolError):
        wire.length((wire.MAX_FRAME + 1).to_bytes(4, "big"))


def test_problem_types_are_closed() -> None:
    assert Problem("overloaded", "busy").to_dict() == {
        "type": "https://imr-policy.dev/problems/overloaded",
        "title": TYPES["overloaded"][1],
        "status": 503,
        "detail": "busy",
    }
    with pytest.raises(ValueError, match="unknown problem type"):
        Problem("teapot", "no")


def _inline(node: Any, components: dict[str, Any], title: str) -> Any:
    """Undo openapi._hoist: `#/components/schemas/<title>.<def>` back to `#/$defs/<def>`."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref":
                out[k] = "#/$defs/" + v.removeprefix(f"#/components/schemas/{title}.")
            else:
                out[k] = _inline(v, components, title)
        return out
    if isinstance(node, list):
        return [_inline(v, components, title) for v in node]
    return node


@pytest.mark.parametrize(("name", "title"), [("case", "Case"), ("decision", "Determination")])
def test_the_openapi_schemas_are_the_json_schemas(name: str, title: str) -> None:
    components = openapi.document("1")["components"]["schemas"]
    original = copy.deepcopy(schema(name))
    rebuilt = _inline(components[title], components, title)
    defs = {k.removeprefix(f"{title}."): _inline(v, components, title) for k, v in components.items()
            if k.startswith(f"{title}.")}  # fmt: skip
    rebuilt["$defs"] = defs
    for key in ("$schema", "$id"):
        original.pop(key)
    assert rebuilt == original


def test_every_ref_of_the_document_resolves() -> None:
    document = openapi.document("1")
    refs = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            refs.update(v for k, v in node.items() if k == "$ref")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(document)
    names = set(document["components"]["schemas"])
    assert refs and {r.removeprefix("#/components/schemas/") for r in refs} <= names


def test_a_snapshot_is_the_policy_set_load_would_give(tmp_path: Path) -> None:
    builtin = take_snapshot(None, tmp_path / "a" / "builtin")
    engine = imr_policy.load()
    result = validate_snapshot(builtin)
    assert (builtin.policy_set_id, result.content_hash) == (engine.policy_set.id, engine.policy_set.content_hash)
    assert {e.file for e in result.editions} == {e.file for e in engine.editions}
    remove(builtin)
    assert not builtin.root.exists()

    one = policies_dir() / "mtus-cpmtg" / "2009.yaml"
    single = take_snapshot(one, tmp_path / "b" / "2009")
    assert (single.policy_set_id, validate_snapshot(single).content_hash) == (
        imr_policy.load(one).policy_set.id,
        imr_policy.load(one).policy_set.content_hash,
    )


def test_serve_refuses_invalid_rule_files_before_starting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    packs = tmp_path / "packs"
    shutil.copytree(policies_dir(), packs, ignore=shutil.ignore_patterns("tests"))
    (packs / "mtus-cpmtg" / "2009.yaml").write_text("format: 1\nguideline: [\n", encoding="utf-8")
    assert main(["serve", "--policies", str(packs), "--audit-log", str(tmp_path / "log.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "mtus-cpmtg/2009.yaml:" in err and "[policy.syntax]" in err
    assert "the rule files are not valid; not serving" in err
    assert not (tmp_path / "log.jsonl").exists()


def test_serve_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--workers", "0"]) == 2
    assert main(["serve", "--policies", str(tmp_path / "absent")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_replay_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "absent.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert main(["replay", str(empty), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 0


def test_the_floor_parameter_in_the_document() -> None:
    (floor, *_) = openapi.document("0")["paths"]["/v1/determinations"]["post"]["parameters"]
    assert (floor["name"], floor["in"]) == ("min_provenance", "query")
    assert floor["schema"]["enum"] == ["V", "V-seed", "V-2nd", "UNVERIFIED"]


def test_request_ids_and_traceparents() -> None:
    assert observe.request_id("abc-1.2:x") == "abc-1.2:x"
    for bad in (None, "", "a b", "x" * 129, "é", 'a"b'):
        made = observe.request_id(bad)
        assert made != bad and len(made) == 36
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert observe.traceparent(good) == good
    assert observe.trace_id(good) == "4bf92f3577b34da6a3ce929d0e0e4736"
    # a later version may carry more fields; version ff, zero ids, version 00 with more fields, upper case: refused
    assert observe.traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra") is not None
    for bad in (
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "garbage",
        None,
    ):
        assert observe.traceparent(bad) is None, bad


def test_the_document_describes_every_route_and_method(tmp_path: Path) -> None:
    app = create_app(ServiceConfig(audit_log=tmp_path / "log.jsonl"))
    routes = {r.path: r.methods - {"HEAD"} for r in app.routes if r.path != "/openapi.json"}  # type: ignore[attr-defined]
    described = {path: {m.upper() for m in ops} for path, ops in openapi.document("0")["paths"].items()}
    assert routes == described


OFFERED = ("application/json", "text/plain", "text/html")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/*", "text/plain"),
        ("TEXT/HTML", "text/html"),
        ("text/html; charset=utf-8", "text/html"),
        ("text/html;q=0.5, text/plain;q=0.6", "text/plain"),
        ("text/*;q=0.9, text/html;q=0.1, application/json;q=0.5", "text/plain"),  # the most specific range counts
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),  # a browser
        ("application/json;q=0, */*", "text/plain"),
        ("application/xml", None),
        ("*/*;q=0", None),
        ("text/html;q=0, text/plain;q=0, application/*;q=0", None),
        ("garbage, text/html;q=2, text/plain;q=abc", None),  # unreadable ranges are skipped
        ("*/html", None),
        ("image/png, " * 100 + "text/html", None),  # only the first 64 ranges are read
    ],
)
def test_negotiate(accept: str | None, chosen: str | None) -> None:
    assert media.negotiate(accept, OFFERED) == chosen


def test_an_accept_is_shown_bounded_and_printable() -> None:
    assert media.shown("text/html") == "text/html"
    assert media.shown("a\x00é" + "x" * 200).startswith("a?\\xe9x")
    assert len(media.shown("x" * 1000)) == 103


def test_every_example_letter_matches_the_document(engine: imr_policy.Engine) -> None:
    components = openapi.document("0")["components"]
    for title, render in (("Letter", letter.Letter.to_dict), ("LetterCheck", letter.check_dict)):
        validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{title}", "components": components})
        for path in sorted(EXAMPLES.glob("*.yaml")):
            case = yaml.safe_load(path.read_text(encoding="utf-8"))
            written = imr_policy.write_letter(engine, case)
            errors = [e.message for e in validator.iter_errors(json.loads(json.dumps(render(written))))]
            assert errors == [], (title, path.name)


def test_the_worker_writes_the_letter_of_its_determination(engine: imr_policy.Engine) -> None:
    """The `letter` frame: the letter `compliance/letter.py` writes, with the decision's log record; `check` without
    a record; a format the server would never send is refused (a frame is not trusted)."""
    case = yaml.safe_load((EXAMPLES / "imr-2015-psych-example.yaml").read_text(encoding="utf-8"))
    body = json.dumps(case, default=str).encode()
    written = imr_policy.write_letter(engine, json.loads(body))
    worker = Handler(engine)

    def ask(**header: Any) -> tuple[dict[str, Any], list[bytes]]:
        return wire.decode(worker.handle({"id": 1, "op": "letter", **header}, body)[wire.PREFIX :])

    header, (html, line) = ask(format="html")
    assert html.decode() == letter.render_html(written)
    assert header["status"] == "ok" and header["complete"] is False and header["decision_id"]
    assert json.loads(line)["decision_id"] == header["decision_id"]
    header, (text,) = ask(format="text", check=True)
    assert text.decode() == letter.render_check(written) and "decision_id" not in header
    header, (data,) = ask(format="json", check=True)
    assert json.loads(data) == letter.check_dict(written)
    for bad in ({"format": "pdf"}, {"format": None}, {"format": "html", "check": True}):
        assert ask(**bad)[0] == {"id": 1, "status": "internal-error", "message": "unknown letter format"}
    assert ask(format="json", min_provenance="strong")[0]["status"] == "internal-error"
