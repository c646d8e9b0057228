"""Every diagnostic code has a bad input under tests/invalid/ and a section in docs/diagnostics.md.

A fixture is a rule file (or a directory of rule files, for checks across files) or a case with one
deliberate mistake. Its leading comment block states what the validator must say:

    # expect: code=<code> line=<n> column=<n> path=<json path> [severity=warning] message~=<text> [hint~=<text>]
    # xfail: <why the package is wrong today>          the whole fixture test is a strict xfail
    # xfail-style: <why the message breaks the style>  only the message-style test is a strict xfail

Every `expect` must match one diagnostic of the fixture's own file exactly (code, line, column, path,
severity) and by substring (message, hint); any error diagnostic left over fails the test. File names
are `<code>.yaml` or `<code>--<variant>.yaml` (directories likewise), so the code a fixture is for is
visible without opening it.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import imr_policy
from imr_policy.authoring.lint import lint_paths
from imr_policy.authoring.policytest import Runner
from imr_policy.loading.validate import load_editions
from imr_policy.model.diagnostics import Diagnostic, Severity, sort_and_cap

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
INVALID = ROOT / "tests" / "invalid"
PACKAGE = ROOT / "imr_policy"
DOCS = ROOT / "docs" / "diagnostics.md"
EXAMPLE_CASE = ROOT / "examples" / "cases" / "imr-2015-psych-example.yaml"
EXAMPLE_JSON = json.dumps(
    imr_policy.loading.yamlsrc.load_text(EXAMPLE_CASE.read_text(encoding="utf-8"), file=None, code_prefix="case").data
)

# Every code the package can emit, written out so that a new code cannot slip in unnoticed:
# test_expected_codes_match_the_source compares this list with what the source actually contains.
EXPECTED_CODES = frozenset(
    {
        # imr_policy/model/diagnostics.py
        "diagnostics.capped",
        # authoring/policytest.py: policy test files (yamlsrc with code_prefix="policy-test", schemacheck with
        # prefix="policy-test", then the checks of the tests themselves)
        "policy-test.syntax",
        "policy-test.duplicate-key",
        "policy-test.yaml-tag",
        "policy-test.unknown-field",
        "policy-test.missing-field",
        "policy-test.type",
        "policy-test.enum",
        "policy-test.date",
        "policy-test.range",
        "policy-test.size",
        "policy-test.pattern",
        "policy-test.invalid",
        "policy-test.duplicate-entry",
        "policy-test.unreadable",
        "policy-test.no-files",
        "policy-test.no-policies",
        "policy-test.duplicate-name",
        "policy-test.missing-case",
        "policy-test.case-file",
        "policy-test.ambiguous-request",
        "policy-test.unknown-request",
        "policy-test.unknown-rule",
        "policy-test.ambiguous-rule",
        "policy-test.contradiction",
        "policy-test.rule-pack",
        # imr_policy/authoring/lint.py: static analysis (imr-policy lint; validate shows all but the notes)
        "lint.gap",
        "lint.shadowed",
        "lint.unsatisfiable",
        "lint.overlap",
        "lint.exception-never-applies",
        "lint.edition-gap",
        "lint.condition-overlap",
        "lint.too-complex",
        "lint.limit-text",
        "lint.unique-overlap",
        "lint.exception-conflict",
        # imr_policy/loading/yamlsrc.py with code_prefix="policy"
        "policy.syntax",
        "policy.duplicate-key",
        "policy.yaml-tag",
        # imr_policy/loading/limits.py: input over a limit (docs/limits.md)
        "policy.limit",
        "policy-test.limit",
        "case.limit",
        # imr_policy/loading/schemacheck.py with prefix="policy.schema"
        "policy.schema.unknown-field",
        "policy.schema.missing-field",
        "policy.schema.type",
        "policy.schema.enum",
        "policy.schema.date",
        "policy.schema.range",
        "policy.schema.size",
        "policy.schema.pattern",
        "policy.schema.invalid",
        "policy.schema.duplicate-entry",
        # imr_policy/loading/validate.py
        "policy.no-files",
        "policy.unreadable",
        "policy.duplicate-id",
        "policy.duplicate-rule-id",
        "policy.effective-range",
        "policy.unknown-citation",
        "policy.unknown-limit",
        "policy.case-file",
        "policy.limit-outside-range",
        "policy.exception-unknown-rule",
        "policy.exception-not-raisable",
        "policy.unused-citation",
        "policy.unused-limit",
        "policy.engine-limit",
        "policy.unknown-fact",
        "policy.condition-operand",
        "policy.type-mismatch",
        "policy.unknown-value",
        "policy.outcome-shape",
        "policy.silent-but-decided",
        "policy.profile-without-decider",
        "policy.unknown-exception",
        "policy.duplicate-edition",
        "policy.overlapping-editions",
        "policy.within-same-key",
        "policy.inconsistent-guideline",
        "policy.unknown-condition",
        "policy.duplicate-condition",
        "policy.condition-without-match",
        "policy.condition-code",
        "policy.duplicate-severity-scale",
        "policy.unit-mismatch",
        "policy.words-in-region-without-regions",
        "policy.unnamed-condition-without-table",
        "policy.unnamed-procedure-without-table",
        "policy.unnamed-procedure-row-twice",
        "policy.unnamed-procedure-unread",
        "policy.table-without-rows",
        "policy.table-placeholder",
        "policy.table-rows-disagree",
        "policy.table-unread",
        "policy.duplicate-region",
        "policy.unnamed-row-region",
        "policy.duplicate-count-group",
        "policy.unnamed-condition-row-left-out",
        "policy.exception-outside-rule",
        "policy.outside-scope",
        "policy.format-mismatch",
        "policy.duplicate-decision",
        "policy.row-outside-decision",
        "policy.duplicate-source",
        "policy.unknown-source",
        "policy.unused-source",
        "policy.source-twice",
        # loading/procedure.py: UR procedural packs (policies/*-ur-procedure/, schemas/ur-procedure.schema.json)
        "policy.holiday-year",
        "policy.holiday-rule",
        "policy.holiday-list-disagrees",
        "policy.missing-time-limit",
        "policy.duplicate-time-limit",
        # imr_policy/loading/yamlsrc.py with code_prefix="case"
        "case.syntax",
        "case.duplicate-key",
        "case.yaml-tag",
        "case.yaml-alias",
        # loading/yamlsrc.py check_data: a string that is not Unicode text (JSON only: YAML refuses it as syntax)
        "case.text",
        # imr_policy/loading/schemacheck.py with prefix="case"
        "case.unknown-field",
        "case.missing-field",
        "case.type",
        "case.enum",
        "case.date",
        "case.range",
        "case.size",
        "case.pattern",
        "case.invalid",
        "case.duplicate-entry",
        # imr_policy/loading/case.py
        "case.duplicate-request-id",
        "case.date-order",
        "case.unknown-request",
        "case.duplicate-review",
        "case.concurrent-visits-disagree",
        "case.unexpected-field",
        "case.code-system",
        "case.code-system-ambiguous",
        # imr_policy/evaluate.py: valid, but the policy set has no profile of its jurisdiction
        "case.unknown-jurisdiction",
        # imr_policy/compliance/corpus.py (corpora for `imr-policy batch` and `diff --impact`)
        "case.unreadable",
    }
)

# Codes that need no input file (or a file no fixture can be), tested by the named function below.
DIRECT_TESTS = {
    "policy.no-files": "test_no_files",
    "policy.unreadable": "test_unreadable",
    "diagnostics.capped": "test_capped",
    "policy-test.unreadable": "test_policy_test_unreadable",
    "policy-test.no-files": "test_policy_test_no_files",
    "policy-test.no-policies": "test_policy_test_no_policies",
    "lint.too-complex": "test_lint_too_complex",
    "case.unreadable": "test_case_unreadable",
    "case.text": "test_case_text",
    "case.unknown-jurisdiction": "test_case_unknown_jurisdiction",
}

# Codes the package contains but no input can produce today; the named test proves it and fails
# (asking for a fixture) as soon as one can.
UNREACHABLE = {
    "case.invalid": "test_schema_fallback_codes_are_unreachable",
    "policy.schema.invalid": "test_schema_fallback_codes_are_unreachable",
    "case.duplicate-entry": "test_schema_fallback_codes_are_unreachable",
    "policy-test.invalid": "test_schema_fallback_codes_are_unreachable",
}

WARNING_CODES = frozenset(
    {
        "policy.table-unread",
        "policy.unused-citation",
        "policy.unused-limit",
        "policy.unused-source",
        "policy.unnamed-condition-row-left-out",
        "diagnostics.capped",
        "lint.gap",
        "lint.shadowed",
        "lint.exception-never-applies",
        "lint.edition-gap",
        "lint.condition-overlap",
        "lint.limit-text",
    }
)
NOTE_CODES = frozenset({"lint.overlap", "lint.too-complex"})


# --------------------------------------------------------------------------------------------------
# fixtures


@dataclass(frozen=True)
class Expect:
    code: str
    line: int | None
    column: int | None
    path: str
    severity: Severity
    message: str
    hint: str | None
    file: str  # the fixture file that states the expectation, relative to the repository root

    def matches(self, d: Diagnostic) -> bool:
        return (
            d.code == self.code
            and d.line == self.line
            and d.column == self.column
            and d.path == self.path
            and d.severity == self.severity
            and d.file == self.file
            and self.message in d.message
            and (self.hint is None or (d.hint is not None and self.hint in d.hint))
        )

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}:{self.column}: {self.severity.value}[{self.code}] ~{self.message!r} "
            f"(at {self.path})" + (f" hint~{self.hint!r}" if self.hint else "")
        )


_EXPECT = re.compile(
    r"^# expect: code=(?P<code>\S+) line=(?P<line>\S+) column=(?P<column>\S+) path=(?P<path>\S+)"
    r"(?: severity=(?P<severity>error|warning|note))? message~=(?P<message>.*?)(?: hint~=(?P<hint>.*))?$"
)


@dataclass(frozen=True)
class Fixture:
    path: Path  # a file, or a directory of rule files
    kind: str  # "policy", "case", "policy-test" or "lint"
    expects: tuple[Expect, ...]
    xfail: str | None
    xfail_style: str | None

    @property
    def id(self) -> str:
        return self.path.relative_to(INVALID).as_posix()

    @property
    def code(self) -> str:
        """The code the fixture is named after: `<code>.yaml` or `<code>--<variant>.yaml`."""
        name = self.path.name.removesuffix(".yaml")
        return name.split("--")[0]

    def files(self) -> list[Path]:
        return sorted(self.path.glob("*.yaml")) if self.path.is_dir() else [self.path]


def _optional_int(text: str) -> int | None:
    return None if text == "none" else int(text)


def _header(file: Path) -> list[str]:
    lines = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def _read_fixture(path: Path, kind: str) -> Fixture:
    expects: list[Expect] = []
    xfail: list[str] = []
    xfail_style: list[str] = []
    for file in [path] if path.is_file() else sorted(path.glob("*.yaml")):
        rel = file.relative_to(ROOT).as_posix()
        for line in _header(file):
            if line.startswith("# expect:"):
                m = _EXPECT.match(line)
                assert m, f"{rel}: malformed expect line: {line}"
                expects.append(
                    Expect(
                        code=m["code"],
                        line=_optional_int(m["line"]),
                        column=_optional_int(m["column"]),
                        path=m["path"],
                        severity=Severity(m["severity"] or "error"),
                        message=m["message"],
                        hint=m["hint"],
                        file=rel,
                    )
                )
            elif line.startswith("# xfail:"):
                xfail.append(line.removeprefix("# xfail:").strip())
            elif line.startswith("# xfail-style:"):
                xfail_style.append(line.removeprefix("# xfail-style:").strip())
    return Fixture(path, kind, tuple(expects), "; ".join(xfail) or None, "; ".join(xfail_style) or None)


def all_fixtures() -> list[Fixture]:
    found = [
        _read_fixture(p, "policy") for p in sorted((INVALID / "policy").iterdir()) if p.suffix == ".yaml" or p.is_dir()
    ]
    found += [_read_fixture(p, "case") for p in sorted((INVALID / "case").glob("*.yaml"))]
    # policy test files; case files they use live in policy-test/cases/
    found += [_read_fixture(p, "policy-test") for p in sorted((INVALID / "policy-test").glob("*.yaml"))]
    # rule packs with a finding of the static analysis (a directory for findings across editions)
    found += [
        _read_fixture(p, "lint") for p in sorted((INVALID / "lint").iterdir()) if p.suffix == ".yaml" or p.is_dir()
    ]
    return found


FIXTURES = all_fixtures()


def diagnostics_of(fixture: Fixture) -> tuple[Diagnostic, ...]:
    """Run the validator the way a user would: rule files through load_editions, cases through parse_case_text."""
    if fixture.kind == "policy":
        return load_editions([fixture.path], display_root=ROOT).diagnostics
    if fixture.kind == "lint":
        result, findings = lint_paths([fixture.path], display_root=ROOT)
        return (*result.diagnostics, *findings)
    if fixture.kind == "policy-test":
        return policy_test_diagnostics(fixture.path)
    rel = fixture.path.relative_to(ROOT).as_posix()
    try:
        imr_policy.parse_case_text(fixture.path.read_text(encoding="utf-8"), file=rel)
    except imr_policy.CaseError as exc:
        return exc.diagnostics
    return ()


_POLICY_TEST_RUNNER: list[Runner] = []


def policy_test_diagnostics(path: Path) -> tuple[Diagnostic, ...]:
    """Run a policy test file the way `imr-policy test --policies policies/` would, and collect every problem."""
    if not _POLICY_TEST_RUNNER:
        _POLICY_TEST_RUNNER.append(Runner(policies=ROOT / "policies", engine="reference", display_root=ROOT))
    run = _POLICY_TEST_RUNNER[0].run([path])
    return (*run.diagnostics, *(d for r in run.results for d in r.diagnostics))


def _params(style: bool) -> Iterator[object]:
    for f in FIXTURES:
        reason = f.xfail_style if style else f.xfail
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(f, id=f.id, marks=marks)


@pytest.mark.parametrize("fixture", list(_params(style=False)))
def test_fixture(fixture: Fixture) -> None:
    """Each expected diagnostic is reported exactly as stated; no other error is."""
    assert fixture.expects, f"{fixture.id}: no `# expect:` line"
    found = list(diagnostics_of(fixture))
    missing = []
    for expect in fixture.expects:
        hit = next((d for d in found if expect.matches(d)), None)
        if hit is None:
            missing.append(expect)
        else:
            found.remove(hit)
    unexpected = [d for d in found if d.severity is Severity.ERROR]
    report = "\n".join(
        [
            *(f"missing:    {e}" for e in missing),
            *(f"unexpected: {d.render()}" for d in unexpected),
            *(f"(warning)   {d.render()}" for d in found if d.severity is not Severity.ERROR),
        ]
    )
    assert not missing and not unexpected, "\n" + report


# --------------------------------------------------------------------------------------------------
# message style: lowercase, no final period, user values in backticks, no Python reprs or type names

# a quoted value of two or more characters ('2015-3-01', ['a', 'b']) or '' is a Python repr; PyYAML's
# quoted single characters (expected ',' or '}') are let through
_PYTHON_REPR = re.compile(r"''|(?<![\w'])'[^'\s][^']+'(?![\w'])|\b(?:True|False|None|NoneType|str|int|float|dict)\b")
# jsonschema's own English: when one shows up, the error was passed through untranslated.
_JSONSCHEMA_PHRASES = (
    "is not valid under any of the given schemas",
    "has non-unique elements",
    "should be non-empty",
    "is too short",
    "is too long",
    "has too many properties",
    "does not have enough properties",
    "is a required property",
    "is not of type",
    "were unexpected",
    "was unexpected",
)


def style_problems(d: Diagnostic) -> list[str]:
    problems = []
    msg = d.message
    if not msg:
        problems.append("empty message")
        return problems
    if msg[0].isupper():
        problems.append("starts with a capital letter")
    if msg.endswith("."):
        problems.append("ends with a period")
    for text, what in ((msg, "message"), (d.hint or "", "hint")):
        if m := _PYTHON_REPR.search(text):
            problems.append(f"{what} shows a Python value or type name: {m.group(0)!r}")
    for phrase in _JSONSCHEMA_PHRASES:
        if phrase in msg:
            problems.append(f"untranslated jsonschema message ({phrase!r})")
    return problems


@pytest.mark.parametrize("fixture", list(_params(style=True)))
def test_message_style(fixture: Fixture) -> None:
    try:
        found = diagnostics_of(fixture)
    except Exception as exc:  # a crash is test_fixture's finding; nothing to judge the style of
        pytest.skip(f"the validator crashes on this fixture ({type(exc).__name__}); see test_fixture")
    bad = [f"{d.render()}\n  -> {', '.join(p)}" for d in found if (p := style_problems(d))]
    assert not bad, "\n" + "\n".join(bad)


def test_every_diagnostic_has_a_hint() -> None:
    without = sorted({d.code for f in FIXTURES if not f.xfail for d in diagnostics_of(f) if not d.hint})
    assert without == []


def test_fixture_names_and_codes() -> None:
    """A fixture is named after a known code, and states at least one diagnostic of that code."""
    for f in FIXTURES:
        assert f.code in EXPECTED_CODES, f"{f.id}: `{f.code}` is not a known diagnostic code"
        assert f.code in {e.code for e in f.expects}, f"{f.id}: no `# expect:` line with code `{f.code}`"
        assert f.code.startswith(f.kind + "."), f"{f.id}: a {f.kind} fixture for `{f.code}`"
        for e in f.expects:
            want = (
                Severity.WARNING
                if e.code in WARNING_CODES
                else Severity.NOTE
                if e.code in NOTE_CODES
                else Severity.ERROR
            )
            assert e.severity is want, f"{f.id}: `{e.code}` is a{'' if want is Severity.ERROR else ' '}{want.value}"


# --------------------------------------------------------------------------------------------------
# codes with no fixture file


def test_no_files(tmp_path: Path) -> None:
    # a folder whose only YAML is a policy test is a folder without rule files
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "psychotherapy.yaml").write_text("case: {}\n", encoding="utf-8")
    result = load_editions([tmp_path])
    assert not result.ok
    assert [(d.code, d.severity, d.file, d.line) for d in result.diagnostics] == [
        ("policy.no-files", Severity.ERROR, None, None)
    ]
    assert result.diagnostics[0].message == f"no rule files found in `{tmp_path}`"


def test_no_files_without_paths() -> None:
    (d,) = load_editions([]).diagnostics
    assert d.code == "policy.no-files"
    assert not d.message.endswith(" in ")


def test_unreadable(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("format: 1\n# Gutachten für die IMR\n".encode("latin-1"))
    absent = tmp_path / "absent.yaml"
    result = load_editions([latin1, absent])
    assert not result.ok
    got = [(d.code, d.file, d.severity) for d in result.diagnostics]
    assert got == [
        ("policy.unreadable", str(absent), Severity.ERROR),
        ("policy.unreadable", str(latin1), Severity.ERROR),
    ]
    assert all(d.message.startswith("cannot read the file") for d in result.diagnostics)


def test_unreadable_message_style(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("format: 1\n# Gutachten für die IMR\n".encode("latin-1"))
    result = load_editions([latin1, tmp_path / "absent.yaml"])
    assert [p for d in result.diagnostics for p in style_problems(d)] == []


def test_case_unreadable(tmp_path: Path) -> None:
    """A corpus entry that is not UTF-8 (a JSON Lines line, or a case file): reported with its place, not skipped."""
    from imr_policy.compliance import corpus
    from imr_policy.model.errors import CaseError

    lines = tmp_path / "cases.jsonl"
    lines.write_bytes(b'{"case_id": "fine"}\n{"case_id": "r\xe9vision"}\n')
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "latin1.yaml").write_bytes("case_id: r\u00e9vision\n".encode("latin-1"))
    entries = [*corpus.entries(lines), *corpus.entries(folder)]
    assert len(entries) == 3
    problems = [e.problem for e in entries if e.problem is not None]
    assert [(d.code, d.file, d.line, d.severity) for d in problems] == [
        ("case.unreadable", str(lines), 2, Severity.ERROR),
        ("case.unreadable", str(folder / "latin1.yaml"), None, Severity.ERROR),
    ]
    assert problems[0].message == "cannot read the line: it is not UTF-8 text (byte 14)"
    assert [p for d in problems for p in style_problems(d)] == []
    with pytest.raises(CaseError) as caught:
        corpus.parse(entries[1])
    assert caught.value.diagnostics == (problems[0],)


def test_case_text() -> None:
    """A lone surrogate escape can only come from JSON (YAML refuses it as `case.syntax`)."""
    data = json.loads(EXAMPLE_JSON.replace('"Insomnia', '"\\ud800Insomnia'))
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.validate_case(data)
    (d,) = info.value.diagnostics
    assert (d.code, d.path) == ("case.text", "$.diagnoses[1].description")
    assert d.message == "a string is not Unicode text: it holds a lone surrogate escape (`\\ud800` to `\\udfff`)"
    assert d.hint == "write the character itself, or both halves of its surrogate pair"
    assert "Insomnia" not in d.render()
    d.render().encode("utf-8")  # the message itself is Unicode text


def test_case_unknown_jurisdiction() -> None:
    """Only a loaded policy set knows its jurisdictions, so the engine (not the schema) refuses one it has
    no profile of."""
    data = json.loads(EXAMPLE_JSON.replace('"case_id"', '"jurisdiction": "NV", "case_id"', 1))
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.load(engine="reference").evaluate(data)
    (d,) = info.value.diagnostics
    assert (d.code, d.path) == ("case.unknown-jurisdiction", "$.jurisdiction")
    assert d.render().splitlines()[0] == (
        "<input>: error[case.unknown-jurisdiction] jurisdiction `NV` has no profile in this policy set "
        "(at $.jurisdiction)"
    )


def test_policy_test_unreadable(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    latin1 = tests / "latin1.yaml"
    latin1.write_bytes("format: 1\n# Prüfung\n".encode("latin-1"))
    run = Runner(policies=ROOT / "policies", engine="reference").run([latin1, tests / "absent.yaml"])
    got = [(d.code, d.file, d.severity) for d in run.diagnostics]
    assert got == [
        ("policy-test.unreadable", str(latin1), Severity.ERROR),
        ("policy-test.unreadable", str(tests / "absent.yaml"), Severity.ERROR),
    ]
    assert run.diagnostics[0].message == "cannot read the file: it is not UTF-8 text (byte 14)"
    assert run.diagnostics[1].message == "cannot read the file: no such file or directory"
    assert [p for d in run.diagnostics for p in style_problems(d)] == []
    assert not run.ok


def test_policy_test_no_files(tmp_path: Path) -> None:
    # rule packs without a tests/ folder, and YAML in a folder with another name: no policy tests
    (tmp_path / "guideline").mkdir()
    (tmp_path / "guideline" / "2009.yaml").write_text("format: 1\n", encoding="utf-8")
    (tmp_path / "guideline" / "cases").mkdir()
    (tmp_path / "guideline" / "cases" / "case.yaml").write_text("case_id: x\n", encoding="utf-8")
    run = Runner(engine="reference").run([tmp_path])
    assert [(d.code, d.severity, d.file, d.line) for d in run.diagnostics] == [
        ("policy-test.no-files", Severity.ERROR, None, None)
    ]
    assert run.diagnostics[0].message == f"no policy test files found in `{tmp_path}`"
    assert run.diagnostics[0].hint == "policy tests are YAML files in a `tests/` folder beside the rule packs"
    assert not run.ok and run.results == ()


def test_policy_test_no_policies(tmp_path: Path) -> None:
    # a valid test file outside a tests/ folder: which rule packs it tests cannot be told without --policies
    source = ROOT / "policies" / "acoem-2nd-ed" / "tests" / "medication-management.yaml"
    loose = tmp_path / "loose.yaml"
    loose.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    run = Runner(engine="reference").run([loose])
    assert [(d.code, d.file) for d in run.diagnostics] == [("policy-test.no-policies", str(loose))]
    assert run.diagnostics[0].message == "cannot tell which rule packs this file tests"
    assert {r.status for r in run.results} == {"error"}
    assert [p for d in run.diagnostics for p in style_problems(d)] == []
    # naming them makes the same file run
    named = Runner(policies=ROOT / "policies", engine="reference").run([loose])
    assert named.ok and named.results and all(r.passed for r in named.results)


def test_lint_too_complex(monkeypatch: pytest.MonkeyPatch) -> None:
    from imr_policy.authoring import lint

    result = load_editions([ROOT / "policies" / "odg-mental-illness-stress" / "2015-03.yaml"], display_root=ROOT)
    assert result.ok
    assert [d for d in lint.lint(result.editions) if d.code == "lint.too-complex"] == []
    monkeypatch.setattr(lint, "SEARCH_BUDGET", 3)
    found = [d for d in lint.lint(result.editions) if d.code == "lint.too-complex"]
    assert [(d.severity, d.path, d.file) for d in found] == [
        (Severity.NOTE, "$.decisions[0].rules[0].id", "policies/odg-mental-illness-stress/2015-03.yaml")
    ]
    assert found[0].message == (
        "the rules for psychotherapy combine too many conditions to analyse within 3 steps; gaps and overlaps "
        "were not checked"
    )
    assert [p for d in found for p in style_problems(d)] == []


def _many_bad_rules(count: int) -> str:
    """The ACOEM pack with `count` rules that each cite an undefined citation."""
    pack = (ROOT / "tests" / "format1" / "policies" / "acoem-2nd-ed" / "2004-ch15.yaml").read_text(encoding="utf-8")
    head = pack[: pack.index("rules:\n")]
    rules = "".join(
        f"  - id: rule-{i}\n    services: [medication_management]\n    citation: ch15-referal\n    when: []\n"
        "    outcome: {decision: certify, reason: x, up_to: {per_request: medication-management.visits-per-request}}\n"
        for i in range(count)
    )
    return head + "rules:\n" + rules


def test_capped(tmp_path: Path) -> None:
    # 210 unknown citations + 1 engine-limit error (210 rules) + 1 unused-citation warning = 212
    pack = tmp_path / "acoem.yaml"
    pack.write_text(_many_bad_rules(210), encoding="utf-8")
    result = load_editions([pack])
    assert len(result.diagnostics) == 201
    last = result.diagnostics[-1]
    assert (last.code, last.severity, last.message) == (
        "diagnostics.capped",
        Severity.WARNING,
        "12 more problems not shown",
    )
    assert last.hint == "fix the problems above and run again"
    assert all(d.code != "diagnostics.capped" for d in result.diagnostics[:-1])

    # cases are capped the same way: 201 quoted quantities + 1 too many requests = 202
    example = imr_policy.parse_case_text(EXAMPLE_CASE.read_text(encoding="utf-8"))
    data = {
        "case_id": example.case_id,
        "date_of_injury": example.date_of_injury.isoformat(),
        "diagnoses": [],
        "requests": [
            {"id": f"r{i}", "service": "psychotherapy", "quantity": "6", "date_of_service": "2015-07-10"}
            for i in range(201)
        ],
    }
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.parse_case_text(json.dumps(data), file="many.json")
    diagnostics = info.value.diagnostics
    assert len(diagnostics) == 201
    assert (diagnostics[-1].code, diagnostics[-1].message) == ("diagnostics.capped", "2 more problems not shown")

    # and at an explicit cap
    few = [Diagnostic(code="case.type", message=f"m{i}", line=i) for i in range(5)]
    capped = sort_and_cap(few, cap=3)
    assert [d.code for d in capped] == ["case.type"] * 3 + ["diagnostics.capped"]
    assert capped[-1].message == "2 more problems not shown"


# keywords that schemacheck.py maps to a dedicated code (or that only structure a schema); any other
# keyword would come out as <prefix>.invalid
_TRANSLATED = {
    "type", "enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties", "required",
    "additionalProperties", "uniqueItems", "anyOf",
}  # fmt: skip
_STRUCTURE = {"$schema", "$id", "$ref", "$defs", "title", "description", "default", "properties", "items"}
_STRUCTURE |= {"if", "then", "else"}
# annotations for editors (yaml-language-server): they validate nothing, so they report nothing
_STRUCTURE |= {"examples", "markdownDescription", "markdownEnumDescriptions"}


def _keywords(schema: object) -> Iterator[tuple[str, object]]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield key, value
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from _keywords(sub)
            elif key in ("items", "if", "then", "else"):
                yield from _keywords(value)
            elif key == "anyOf":
                for sub in value:
                    yield from _keywords(sub)


@pytest.mark.parametrize("name", ["case", "policy", "policy-test"])
def test_schema_fallback_codes_are_unreachable(name: str) -> None:
    """`<prefix>.invalid` has no fixture because the schema uses no keyword that falls through to it,
    and `case.duplicate-entry` has none because the case schema has no `uniqueItems`."""
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
    for key, value in _keywords(schema):
        assert key in _TRANSLATED | _STRUCTURE | {"format"}, (
            f"the {name} schema now uses `{key}`, which schemacheck.py reports as {name}.invalid: "
            f"add a fixture and remove the code from UNREACHABLE"
        )
        if key == "format":
            assert value == "date", f"format `{value}` is reported as {name}.invalid"
        if name == "case":
            assert key != "uniqueItems", "the case schema now uses uniqueItems: add a case.duplicate-entry fixture"


# --------------------------------------------------------------------------------------------------
# the list of codes, from the source


_CODE = re.compile(r"^(?:policy-test|policy|case|diagnostics|lint)(?:\.[a-z][a-z0-9-]*)+$")


def emitted_codes() -> set[str]:
    """The diagnostic codes in the package source.

    Literal codes (`"policy.unknown-citation"`), plus each `f"{prefix}.x"` suffix combined with every
    constant `prefix=` / `code_prefix=` passed to the function of that module (`load_text`, `schema_diagnostics`).
    """
    trees = {p: ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}
    defined_in = {
        node.name: path for path, tree in trees.items() for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
    }
    prefixes: dict[Path, set[str]] = {}
    prefix_nodes: set[int] = set()
    suffixes: dict[Path, set[str]] = {}
    literals: set[str] = set()
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                for kw in node.keywords:
                    if kw.arg in ("prefix", "code_prefix") and isinstance(kw.value, ast.Constant):
                        assert callee in defined_in, f"{path}: prefix passed to unknown function {callee}"
                        prefixes.setdefault(defined_in[callee], set()).add(kw.value.value)
                        prefix_nodes.add(id(kw.value))
            elif isinstance(node, ast.JoinedStr):
                parts = node.values
                if (
                    len(parts) == 2
                    and isinstance(parts[0], ast.FormattedValue)
                    and isinstance(parts[0].value, ast.Name)
                    and parts[0].value.id in ("prefix", "code_prefix")
                    and isinstance(parts[1], ast.Constant)
                    and re.fullmatch(r"\.[a-z][a-z0-9-]*", str(parts[1].value))
                ):
                    suffixes.setdefault(path, set()).add(str(parts[1].value))
    for tree in trees.values():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _CODE.match(node.value)
                and id(node) not in prefix_nodes
            ):
                literals.add(node.value)
    codes = set(literals)
    for path, ends in suffixes.items():
        assert prefixes.get(path), f"{path} builds codes from a prefix, but no caller passes one"
        codes |= {p + s for p in prefixes[path] for s in ends}
    return codes


def test_expected_codes_match_the_source() -> None:
    found = emitted_codes()
    new, gone = found - EXPECTED_CODES, EXPECTED_CODES - found
    assert not new, f"new codes {sorted(new)}: add them to EXPECTED_CODES, tests/invalid/ and docs/diagnostics.md"
    assert not gone, f"codes {sorted(gone)} are no longer in the source: remove them from EXPECTED_CODES and the docs"


def test_every_code_has_a_fixture_or_a_direct_test() -> None:
    # only fixtures that pass count: an xfail fixture documents a bug, it does not cover the code
    covered = {e.code for f in FIXTURES if not f.xfail for e in f.expects}
    for code, test in {**DIRECT_TESTS, **UNREACHABLE}.items():
        assert callable(globals().get(test)), f"{code}: {test} does not exist"
        assert code not in covered or code in DIRECT_TESTS, f"{code} has a fixture; remove it from UNREACHABLE"
    missing = sorted(EXPECTED_CODES - covered - DIRECT_TESTS.keys() - UNREACHABLE.keys())
    assert missing == [], "codes without a passing fixture in tests/invalid/"


# --------------------------------------------------------------------------------------------------
# docs/diagnostics.md


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation other than `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def doc_sections() -> dict[str, str]:
    """Code headings (`## policy.unknown-citation`) -> the section's text."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            current = title if _CODE.match(title) else None
            if current is not None:
                assert current not in sections, f"two sections for {current}"
                sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def test_every_code_is_documented() -> None:
    sections = doc_sections()
    assert sorted(EXPECTED_CODES - sections.keys()) == [], "codes without a section in docs/diagnostics.md"
    assert sorted(sections.keys() - EXPECTED_CODES) == [], "sections for codes the package does not emit"
    for code, text in sections.items():
        if code in DIRECT_TESTS or code in UNREACHABLE:
            assert "```" in text, f"{code}: no example"
        else:
            assert "```yaml" in text, f"{code}: no YAML example"
        assert f"[{code}]" in text, f"{code}: no message as printed"
        assert "Fix" in text, f"{code}: no advice on the fix"


@pytest.mark.parametrize("code", sorted(EXPECTED_CODES))
def test_render_links_to_the_section(code: str) -> None:
    see = Diagnostic(code=code, message="x").render().splitlines()[-1]
    assert see == f"  see: docs/diagnostics.md#{github_slug(code)}"
    headings = [line[3:] for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]
    slugs = [github_slug(h) for h in headings]
    assert slugs.count(github_slug(code)) == 1, "the anchor must name exactly one heading"


def test_a_case_s_patient_data_is_never_repeated() -> None:
    """Every identifying field of a case, given a wrong value, is reported by its kind and position only."""
    secret = "1999-13-45"
    case = {
        "case_id": 12345,
        "jurisdiction": "CA",
        "date_of_injury": secret,
        "claimant": {"age": "forty-two", "sex": "Jane"},
        "diagnoses": [{"description": 98765, "code": "JANE.DOE"}],
        "requests": [
            {
                "id": "r",
                "service": "physical_therapy",
                "quantity": 6,
                "date_of_service": "2015-02-30",
                "postsurgical": {"procedure": 4242, "surgery_date": "2015-02-31"},
            }
        ],
        "history": [
            {"service": "physical_therapy", "completed": 1, "functional_improvement": "unknown", "progress_notes": 777}
        ],
    }
    with pytest.raises(imr_policy.CaseError) as caught:
        imr_policy.validate_case(case)
    shown = "\n".join(f"{d.message} | {d.hint}" for d in caught.value.diagnostics)
    assert len(caught.value.diagnostics) >= 9, shown
    for value in (secret, "forty-two", "Jane", "98765", "JANE.DOE", "2015-02-30", "4242", "2015-02-31", "777", "12345"):
        assert value not in shown, (value, shown)
    assert "not repeated: it may identify the patient" in shown
    # a field that identifies nobody still shows its value, so that the fix is plain
    case = {**case, "case_id": "c", "date_of_injury": "2015-01-01", "claimant": {}, "diagnoses": []}
    case["requests"] = [{"id": "r", "service": "physical_therapy", "quantity": "6", "date_of_service": "2015-03-01"}]
    case["history"] = []
    with pytest.raises(imr_policy.CaseError) as caught:
        imr_policy.validate_case(case)
    assert [d.message for d in caught.value.diagnostics] == ["expected a whole number, got the string `6`"]
