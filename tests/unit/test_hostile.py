"""Hostile input is refused with a diagnostic, never a traceback, and never repeats patient data.

The corpus is tests/hostile/ (see its README). Work is bounded by the limits of docs/limits.md, not by
timers: nothing here measures time. The subprocess runs are also capped in address space, so an input
that expanded past its limits would fail with MemoryError instead of passing slowly.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imr_policy
from imr_policy.cli.main import main
from imr_policy.compliance import corpus
from imr_policy.loading.yamlsrc import load_text
from imr_policy.service import wire
from imr_policy.service.worker import Handler
from tests.conftest import ROOT
from tests.unit.test_invalid_fixtures import EXPECTED_CODES

HOSTILE = ROOT / "tests" / "hostile"
FILES = sorted(p for p in HOSTILE.iterdir() if p.suffix in (".yaml", ".json"))
PLANT = "PLANTED-NOTE"
EXAMPLE = ROOT / "examples" / "cases" / "imr-2015-psych-example.yaml"


def _clean(text: str) -> None:
    assert "Traceback" not in text, text[-2000:]
    assert PLANT not in text, "a planted note appears in the output"
    text.encode("utf-8")  # Unicode text, whatever the input held


def _text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_the_corpus_is_there() -> None:
    names = {p.name for p in FILES}
    assert {"alias-bomb.yaml", "surrogate-in-description.json", "int-5000-digits.yaml", "tag-binary.yaml"} <= names
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_api_refuses_with_diagnostics(path: Path) -> None:
    text = _text(path)
    if text is None:
        pytest.skip("not UTF-8: the API takes text; test_cli_evaluate covers the bytes")
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.parse_case_text(text, file=path.name)
    assert info.value.diagnostics
    assert {d.code for d in info.value.diagnostics} <= EXPECTED_CODES
    _clean(str(info.value))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_cli_evaluate_and_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(path), "--engine", "reference"]) == 1
    out = capsys.readouterr()
    _clean(out.out + out.err)
    assert "error[" in out.err or "cannot read" in out.err
    assert main(["validate", str(path)]) == 1  # as a rule file
    out = capsys.readouterr()
    _clean(out.out + out.err)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_service_worker_answers_4xx(path: Path, worker: Handler) -> None:
    for op in ("evaluate", "validate", "letter"):
        frame = worker.handle({"id": 7, "op": op, "format": "html"}, path.read_bytes())
        header, sections = wire.decode(frame[wire.PREFIX :])
        assert header["status"] in ("malformed", "invalid", "too-large", "ok"), header
        if op != "validate":
            assert header["status"] != "ok", "a hostile body was decided"
        else:
            assert header["status"] != "ok" or json.loads(sections[0])["valid"] is False
        _clean(frame[wire.PREFIX :].decode("utf-8"))


def _capped_run(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # 2 GiB of address space: far more than any refusal needs, far less than a bomb
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "imr_policy", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        **kw,
    )


@pytest.mark.parametrize("name", ["alias-bomb.yaml", "alias-bomb-in-case.yaml", "int-5000-digits.yaml"])
def test_real_cli_refuses_the_bomb(name: str) -> None:
    for args in (["evaluate", f"tests/hostile/{name}"], ["validate", f"tests/hostile/{name}"]):
        done = _capped_run(*args)
        assert done.returncode == 1, done.stderr
        _clean(done.stdout + done.stderr)
    assert "error[case.yaml-alias]" in _capped_run("evaluate", "tests/hostile/alias-bomb.yaml").stderr
    assert "error[policy.limit]" in _capped_run("validate", "tests/hostile/alias-bomb.yaml").stderr


def test_stdin_over_the_size_limit_is_refused_unread() -> None:
    done = _capped_run("evaluate", "-", input="case_id: x\n" + "#" * 2_000_000 + "\n")
    assert done.returncode == 1
    assert "error[case.limit]" in done.stderr and "case.max_bytes" in done.stderr
    _clean(done.stderr)


def test_a_bad_limit_variable_is_a_usage_error() -> None:
    done = _capped_run("evaluate", str(EXAMPLE), env={"IMR_POLICY_CASE_MAX_NODES": "lots"})
    assert done.returncode == 2
    assert "IMR_POLICY_CASE_MAX_NODES must be a whole number" in done.stderr


def test_a_raised_limit_is_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (HOSTILE / "deep-block-nesting.yaml").read_text(encoding="utf-8")
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.parse_case_text(text)
    assert [d.code for d in info.value.diagnostics] == ["case.limit"]
    monkeypatch.setenv("IMR_POLICY_CASE_MAX_DEPTH", "100")
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.parse_case_text(text)
    assert "case.limit" not in {d.code for d in info.value.diagnostics}  # now the schema speaks


def test_worker_refuses_a_body_over_the_case_size_limit(worker: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMR_POLICY_CASE_MAX_BYTES", "100")
    frame = worker.handle({"id": 1, "op": "evaluate"}, json.dumps({"case_id": "x" * 200}).encode())
    header, _ = wire.decode(frame[wire.PREFIX :])
    assert header["status"] == "too-large"
    assert [d["code"] for d in header["diagnostics"]] == ["case.limit"]


def test_a_python_dict_is_bounded_too() -> None:
    deep: Any = []
    for _ in range(10_000):  # deeper than Python's recursion limit
        deep = [deep]
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.validate_case({"case_id": "x", "deep": deep})
    assert [d.code for d in info.value.diagnostics] == ["case.limit"]
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.validate_case({"case_id": "\ud800"})
    assert [(d.code, d.path) for d in info.value.diagnostics] == [("case.text", "$.case_id")]


def test_error_translation_is_bounded() -> None:
    text = (HOSTILE / "many-errors.json").read_text(encoding="utf-8")
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.parse_case_text(text)
    found = info.value.diagnostics
    assert len(found) == 201  # 200 shown, then the cap
    assert found[-1].code == "diagnostics.capped"
    assert found[-1].message.endswith("and more were not looked for")


# ------------------------------------------------------------------------------------------- batch


def test_batch_reports_each_bad_line_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    code = main(["batch", str(HOSTILE), "--out", str(out), "--workers", "1", "--engine", "reference"])
    err = capsys.readouterr().err
    assert code == 1
    _clean(err)
    text = out.read_text(encoding="utf-8")
    _clean(text)
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == corpus.count(HOSTILE)
    assert [r["index"] for r in records] == list(range(len(records)))
    by_source = {r["source"].rsplit("/", 1)[-1]: r for r in records}
    # corpus.jsonl: valid on lines 1 and 11, and everything between is reported with its line number
    assert by_source["corpus.jsonl:1"]["status"] == "decided"
    assert by_source["corpus.jsonl:11"]["status"] == "decided"
    for line in (2, 3, 4, 5, 6, 7, 8, 9):
        record = by_source[f"corpus.jsonl:{line}"]
        assert record["status"] == "invalid"
        assert all(d["line"] == line for d in record["diagnostics"])
        assert f"corpus.jsonl:{line}:" in err
    assert by_source["corpus.jsonl:2"]["diagnostics"][0]["code"] == "case.text"
    assert {r["status"] for r in records if not r["source"].startswith(str(HOSTILE / "corpus"))} == {"invalid"}


def test_batch_output_is_never_cut_mid_record(tmp_path: Path) -> None:
    """A full disk, simulated with a file-size limit: the output keeps whole records only."""
    cases = tmp_path / "cases.jsonl"
    line = json.dumps(load_text(EXAMPLE.read_text(encoding="utf-8"), file=None, code_prefix="case").data)
    cases.write_text((line + "\n") * 20, encoding="utf-8")
    out = tmp_path / "out.jsonl"

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    done = subprocess.run(
        [sys.executable, "-m", "imr_policy", "batch", str(cases), "--out", str(out), "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=small_files,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 1, done.stderr
    assert "cannot write" in done.stderr and "each whole" in done.stderr
    data = out.read_bytes()
    assert 0 < len(data) <= 20_000
    assert data.endswith(b"\n")
    records = [json.loads(x) for x in data.decode("utf-8").splitlines()]
    assert [r["index"] for r in records] == list(range(len(records)))
    assert f"holds the first {len(records)} records" in done.stderr


# -------------------------------------------------------------------------------------- Hypothesis

_YAML_LINES = (
    EXAMPLE.read_text(encoding="utf-8")
    .replace("Insomnia due to other mental disorder", "PLANTED-NOTE insomnia, Jane Roe")
    .splitlines()
)
_SNIPPETS = [
    "&a x",
    "*a",
    "!!binary aGk=",
    "!!python/object/apply:os.system [ls]",
    "!foo bar",
    "!!set {a, b}",
    "!!timestamp 2015-01-01",
    "9" * 5000,
    '"\\ud800"',
    "[" * 200 + "]" * 200,
    "{<<: *a}",
    "'" + "x" * 300_000 + "'",
    "1e99999",
    ".nan",
    "0x" + "f" * 40,
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    line=st.integers(0, len(_YAML_LINES) - 1),
    at=st.integers(0, 200),
    insert=st.one_of(st.sampled_from(_SNIPPETS), st.text(max_size=30)),
)
def test_mutated_cases_are_decided_or_refused(line: int, at: int, insert: str) -> None:
    lines = list(_YAML_LINES)
    text = lines[line]
    lines[line] = text[:at] + insert + text[at:]
    try:
        imr_policy.parse_case_text("\n".join(lines) + "\n", file="mutated.yaml")
    except imr_policy.CaseError as exc:
        assert {d.code for d in exc.diagnostics} <= EXPECTED_CODES
        message = str(exc)
        message.encode("utf-8")
        if _note_kept("\n".join(lines)):  # the mutation left the note a description (not, say, a key)
            assert "Jane Roe" not in message, message


def _note_kept(text: str) -> bool:
    data = load_text(text, file=None, code_prefix="case").data
    try:
        return bool(data["diagnoses"][1]["description"] == "PLANTED-NOTE insomnia, Jane Roe")
    except (KeyError, IndexError, TypeError):
        return False


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters(min_codepoint=0xD700, max_codepoint=0xE000)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(value=_JSON, wrap=st.booleans())
def test_any_json_body_gets_an_answer_not_a_500(value: Any, wrap: bool, worker: Handler) -> None:
    body = json.dumps({"case_id": "x", "diagnoses": value} if wrap else value).encode()  # surrogates as \\udxxx
    for op in ("evaluate", "validate", "letter"):
        frame = worker.handle({"id": 1, "op": op, "format": "json"}, body)
        header, _ = wire.decode(frame[wire.PREFIX :])
        assert header["status"] in ("malformed", "invalid", "ok"), header
        frame[wire.PREFIX :].decode("utf-8")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), prefix=st.sampled_from(["case", "policy", "policy-test"]))
def test_the_loader_never_raises(text: str, prefix: str) -> None:
    loaded = load_text(text, file="x", code_prefix=prefix)
    assert loaded.data is None or not loaded.diagnostics or loaded.diagnostics
    for d in loaded.diagnostics:
        assert d.code in EXPECTED_CODES


@pytest.fixture(scope="module")
def worker() -> Handler:
    return Handler(imr_policy.load(engine="reference"))
