"""Policy tests: cases kept beside the rule packs, with what the policy set must decide for them.

A test file (`policies/<guideline>/tests/*.yaml`, `schemas/policy-test.schema.json`) goes through the
same stages as a rule file, with the same diagnostics:

1. parse      YAML with a source map; syntax errors and duplicate keys (`policy-test.syntax`, ...)
2. schema     the JSON Schema (`policy-test.unknown-field`, `policy-test.type`, ...)
3. tests      unique names; each test's case (its `defaults`, its `case_file` and its inline `case`
              merged, `as_of` applied) checked against the case contract, every problem reported at
              its place in the test file or the case file; the request the test checks
4. references with the policy set loaded: every rule id in `decided_by` / `not_decided_by` names a
              rule or exception of it

`run_test` evaluates one test with a real Engine and compares the determination of its request
with what the test expects; `coverage` says which rules and exceptions the tests saw decide, and
not decide, per edition. A test with a problem is never run: it is reported as an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from imr_policy.authoring.lint import always_decides
from imr_policy.evaluate import Engine, load
from imr_policy.loading.case import case_diagnostics, validate_case
from imr_policy.loading.limits import TooLarge, for_prefix, read_limited
from imr_policy.loading.schemacheck import float_diagnostics, schema_diagnostics
from imr_policy.loading.yamlsrc import SourceMap, load_text, located, parent_path
from imr_policy.model.diagnostics import Diagnostic, did_you_mean, has_errors, sort_and_cap
from imr_policy.model.errors import CaseError, EngineError, PolicyError
from imr_policy.model.values import Case, Edition, ItemDetermination, leaves

# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class RuleRef:
    """`rule-id`, `guideline:rule-id` or `guideline@edition:rule-id`, as written in a test."""

    text: str
    rule: str
    guideline: str | None = None
    edition: str | None = None
    path: str = "$"

    @classmethod
    def parse(cls, text: str, path: str = "$") -> RuleRef:
        head, _, rule = text.rpartition(":")
        guideline, _, edition = head.partition("@")
        return cls(text, rule, guideline or None, edition or None, path)

    def matches(self, guideline: str, edition: str, rule: str, guidelines: frozenset[str]) -> bool:
        """Whether a trace entry is this reference; `guidelines` is what an unqualified id resolved to."""
        if rule != self.rule:
            return False
        if self.guideline is not None:
            return guideline == self.guideline and (self.edition is None or edition == self.edition)
        return guideline in guidelines


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a test checks; a field left out of the test is None (or empty) and not checked."""

    determination: str | None = None
    approved_quantity: int | None = None
    checks_imr_outcome: bool = False
    imr_outcome: str | None = None
    missing_facts: tuple[str, ...] | None = None
    decided_by: tuple[RuleRef, ...] = ()
    not_decided_by: tuple[RuleRef, ...] = ()
    rationale_contains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyTest:
    """One test. `problems` holds what is wrong with it; a test with problems is reported, never run."""

    name: str
    file: str
    path: str  # `$.tests[3]`
    line: int | None
    description: str
    expect: Expectation
    case: Case | None
    request: str | None
    problems: tuple[Diagnostic, ...] = ()

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class TestFile:
    __test__ = False  # not a pytest test class, whatever its name

    file: str  # as shown in reports
    source: Path
    description: str
    tests: tuple[PolicyTest, ...]
    source_map: SourceMap
    sha256: str

    @property
    def guideline_dir(self) -> Path | None:
        """`policies/<guideline>/` for a file in `policies/<guideline>/tests/`."""
        return self.source.parent.parent if self.source.parent.name == "tests" else None


@dataclass(frozen=True, slots=True)
class Mismatch:
    field: str
    expected: str
    actual: str

    @property
    def text(self) -> str:
        if self.field in ("decided_by", "not_decided_by"):
            return f"{self.field}: expected {self.expected}; what decided: {self.actual}"
        return f"{self.field}: expected {self.expected}, got {self.actual}"


@dataclass(frozen=True, slots=True)
class TestResult:
    __test__ = False  # not a pytest test class, whatever its name

    test: PolicyTest
    status: Literal["pass", "fail", "error"]
    mismatches: tuple[Mismatch, ...] = ()
    item: ItemDetermination | None = None
    error: str | None = None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "pass"


# ---------------------------------------------------------------------------------------------- discovery


def discover_tests(paths: Iterable[Path]) -> list[Path]:
    """Policy test files under `paths`: YAML files directly inside a folder named `tests`.

    Case files kept beside them belong in a subfolder (`tests/cases/`), so they are never taken for tests.
    A file named explicitly is taken as it is."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.suffix in (".yaml", ".yml")
                and p.is_file()
                and p.parent.name == "tests"
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append(path)
    return found


def policy_root(test_file: Path) -> Path | None:
    """The policy set a test file tests: `policies/` for `policies/<guideline>/tests/<file>.yaml`."""
    return test_file.parent.parent.parent if test_file.parent.name == "tests" else None


# ---------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class _Layer:
    """One source of a test's case: where its values are, so a problem can be shown where it was written."""

    data: Any
    base: str  # JSON path of the case inside `file` (`$.tests[2].case`, or `$` for a case file)
    file: str
    source_map: SourceMap


def load_test_file(source: Path, *, display: str | None = None) -> tuple[TestFile | None, tuple[Diagnostic, ...]]:
    """Read and check one test file. Returns the TestFile unless the file itself cannot be read, parsed or
    matched to the schema; problems of single tests are kept on those tests (`PolicyTest.problems`)."""
    shown = display or str(source)
    try:
        raw = read_limited(source, for_prefix("policy-test"))
        text = raw.decode("utf-8")
    except TooLarge as exc:
        return None, (exc.refusal(prefix="policy-test", file=shown),)
    except UnicodeDecodeError as exc:
        return None, (
            Diagnostic(
                code="policy-test.unreadable",
                message=f"cannot read the file: it is not UTF-8 text (byte {exc.start})",
                file=shown,
                hint="save the file as UTF-8",
            ),
        )
    except OSError as exc:
        reason = (exc.strerror or "unknown error").lower()
        return None, (
            Diagnostic(
                code="policy-test.unreadable",
                message=f"cannot read the file: {reason}",
                file=shown,
                hint="check the path and the file's permissions",
            ),
        )
    return check_test_text(text, file=shown, source=source, sha256=hashlib.sha256(raw).hexdigest())


def check_test_text(
    text: str, *, file: str, source: Path, sha256: str = ""
) -> tuple[TestFile | None, tuple[Diagnostic, ...]]:
    loaded = load_text(text, file=file, code_prefix="policy-test")
    if loaded.data is None or loaded.diagnostics:
        return None, loaded.diagnostics
    smap = loaded.source_map
    if isinstance(loaded.data, dict) and {"guideline", "rules"} <= loaded.data.keys():
        at_guideline = located(
            "policy-test.rule-pack",
            "this is a rule pack, not a policy test file",
            "$.guideline",
            file=file,
            source_map=smap,
            hint="name the folder to test (`imr-policy test policies/<guideline>/`), or a file in its `tests/` folder",
            key=True,
        )
        return None, (dataclasses.replace(at_guideline, path="$"),)  # the whole file, shown at its `guideline:`
    problems = schema_diagnostics("policy-test", loaded.data, prefix="policy-test", file=file, source_map=smap)
    reported = {d.path for d in problems}
    problems += [
        d
        for d in float_diagnostics(loaded.data, prefix="policy-test", file=file, source_map=smap)
        if d.path not in reported
    ]
    if problems:
        return None, tuple(sort_and_cap(problems))
    data: dict[str, Any] = loaded.data
    defaults: dict[str, Any] = data.get("defaults", {})
    names: dict[str, int] = {}
    tests: list[PolicyTest] = []
    for i, raw_test in enumerate(data["tests"]):
        base = f"$.tests[{i}]"
        own: list[Diagnostic] = []
        name = raw_test["name"]
        if name in names:
            own.append(
                _at(
                    "policy-test.duplicate-name",
                    f"duplicate test name `{name}` (first at $.tests[{names[name]}])",
                    f"{base}.name",
                    file,
                    smap,
                    hint="give every test of a file its own name",
                )
            )
        else:
            names[name] = i
        case, request, case_problems = _case_of(raw_test, defaults, base, file, smap, source)
        own.extend(case_problems)
        where = smap.locate(base)
        tests.append(
            PolicyTest(
                name=name,
                file=file,
                path=base,
                line=where[0] if where else None,
                description=" ".join(raw_test.get("description", "").split()),
                expect=_expectation(raw_test["expect"], f"{base}.expect"),
                case=case,
                request=request,
                problems=tuple(sort_and_cap(own)),
            )
        )
    return (
        TestFile(
            file=file,
            source=source,
            description=" ".join(data.get("description", "").split()),
            tests=tuple(tests),
            source_map=smap,
            sha256=sha256 or hashlib.sha256(text.encode()).hexdigest(),
        ),
        (),
    )


def _expectation(raw: Mapping[str, Any], base: str) -> Expectation:
    missing = raw.get("missing_facts")
    return Expectation(
        determination=raw.get("determination"),
        approved_quantity=raw.get("approved_quantity"),
        checks_imr_outcome="imr_outcome" in raw,
        imr_outcome=raw.get("imr_outcome"),
        missing_facts=tuple(missing) if missing is not None else None,
        decided_by=tuple(RuleRef.parse(t, f"{base}.decided_by[{j}]") for j, t in enumerate(raw.get("decided_by", []))),
        not_decided_by=tuple(
            RuleRef.parse(t, f"{base}.not_decided_by[{j}]") for j, t in enumerate(raw.get("not_decided_by", []))
        ),
        rationale_contains=tuple(raw.get("rationale_contains", [])),
    )


def _merge(low: Any, high: Any) -> Any:
    """`high` over `low`: mappings merge key by key; anything else (lists included) is replaced."""
    if isinstance(low, dict) and isinstance(high, dict):
        out = dict(low)
        for key, value in high.items():
            out[key] = _merge(low[key], value) if key in low else value
        return out
    return high


def _case_of(
    raw: Mapping[str, Any],
    defaults: Mapping[str, Any],
    base: str,
    file: str,
    smap: SourceMap,
    source: Path,
) -> tuple[Case | None, str | None, list[Diagnostic]]:
    """The test's validated case and the id of the request it checks, or the problems that prevent them."""
    layers = _case_layers(raw, defaults, base, file, smap, source)
    if isinstance(layers, Diagnostic):
        return None, None, [layers]
    if isinstance(layers, tuple):
        return None, None, list(layers)
    merged: Any = {}
    for layer in layers:
        merged = _merge(merged, layer.data)
    as_of, as_of_at = (raw["as_of"], f"{base}.as_of") if "as_of" in raw else (defaults.get("as_of"), "$.defaults.as_of")
    if as_of is not None and isinstance(merged.get("requests"), list):
        merged = dict(merged)
        merged["requests"] = [{**r, "date_of_service": as_of} if isinstance(r, dict) else r for r in merged["requests"]]
    problems = [
        _relocate(d, layers, as_of_at if as_of is not None else None, file, smap) for d in case_diagnostics(merged)
    ]
    if problems:
        return None, None, problems
    try:
        case = validate_case(merged)
    except CaseError as exc:  # pragma: no cover - case_diagnostics found nothing, so this cannot happen
        return None, None, [_relocate(d, layers, None, file, smap) for d in exc.diagnostics]
    request = _request_of(raw, defaults, base, [r.id for r in case.requests], file, smap)
    if isinstance(request, Diagnostic):
        return None, None, [request]
    return case, request, []


def _case_layers(
    raw: Mapping[str, Any],
    defaults: Mapping[str, Any],
    base: str,
    file: str,
    smap: SourceMap,
    source: Path,
) -> list[_Layer] | tuple[Diagnostic, ...] | Diagnostic:
    """The sources of the test's case, lowest first: `defaults.case`, the case file, the test's `case`; or
    the problems of the case file, or that there is no case."""
    layers: list[_Layer] = []
    case_file, case_file_at = (
        (raw["case_file"], f"{base}.case_file")
        if "case_file" in raw
        else (defaults.get("case_file"), "$.defaults.case_file")
    )
    if "case" in defaults:
        layers.append(_Layer(defaults["case"], "$.defaults.case", file, smap))
    if case_file is not None:
        loaded_file = _load_case_file(case_file, case_file_at, file, smap, source)
        if isinstance(loaded_file, Diagnostic) or loaded_file.diagnostics:
            return loaded_file if isinstance(loaded_file, Diagnostic) else loaded_file.diagnostics
        layers.append(_Layer(loaded_file.data, "$", loaded_file.file, loaded_file.source_map))
    if "case" in raw:
        layers.append(_Layer(raw["case"], f"{base}.case", file, smap))
    if not layers:
        return _at(
            "policy-test.missing-case",
            "the test has no case",
            base,
            file,
            smap,
            hint="add `case:` (a case, or what differs from `defaults.case`) or `case_file:`",
        )
    return layers


def _request_of(
    raw: Mapping[str, Any], defaults: Mapping[str, Any], base: str, ids: list[str], file: str, smap: SourceMap
) -> str | Diagnostic:
    """The id of the request the test checks: the one named, or the case's only one."""
    request, request_at = (raw["request"], f"{base}.request") if "request" in raw else (defaults.get("request"), None)
    if request is None:
        if len(ids) == 1:
            return ids[0]
        return _at(
            "policy-test.ambiguous-request",
            f"the case has {len(ids)} requests; the test must say which one it checks",
            base,
            file,
            smap,
            hint=f"add `request:` with one of: {', '.join(f'`{i}`' for i in ids)}",
        )
    if request not in ids:
        return _at(
            "policy-test.unknown-request",
            f"the case has no request `{request}`",
            request_at or "$.defaults.request",
            file,
            smap,
            hint=did_you_mean(request, ids) or f"expected one of: {', '.join(f'`{i}`' for i in ids)}",
        )
    return request  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class _CaseFile:
    data: Any
    file: str
    source_map: SourceMap
    diagnostics: tuple[Diagnostic, ...]


def _load_case_file(name: str, at: str, file: str, smap: SourceMap, source: Path) -> _CaseFile | Diagnostic:
    path = source.parent / name
    shown = str(Path(file).parent / name)
    try:
        text = read_limited(path, for_prefix("case")).decode("utf-8")
    except TooLarge as exc:
        return _CaseFile(None, shown, SourceMap(), (exc.refusal(prefix="case", file=shown),))
    except (OSError, UnicodeDecodeError) as exc:
        reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or "error").lower()
        return _at(
            "policy-test.case-file",
            f"cannot read the case file `{name}`: {reason}",
            at,
            file,
            smap,
            hint="case files are found relative to the test file, e.g. `cases/letter.yaml`",
        )
    loaded = load_text(text, file=shown, code_prefix="case")
    if loaded.data is not None and not isinstance(loaded.data, dict):
        return _CaseFile(
            None,
            shown,
            loaded.source_map,
            (
                Diagnostic(
                    code="case.type",
                    message="expected a mapping, got " + ("a list" if isinstance(loaded.data, list) else "a value"),
                    path="$",
                    file=shown,
                    line=1,
                    column=1,
                    hint="a case file holds one case: a mapping with case_id, date_of_injury, diagnoses, requests",
                ),
            ),
        )
    return _CaseFile(loaded.data, shown, loaded.source_map, loaded.diagnostics)


def _relocate(d: Diagnostic, layers: Sequence[_Layer], as_of_at: str | None, file: str, smap: SourceMap) -> Diagnostic:
    """A problem of the merged case, placed where its value was written: the last layer that has it."""
    if as_of_at is not None and d.path.endswith(".date_of_service") and d.path.startswith("$.requests["):
        return located(d.code, d.message, as_of_at, file=file, source_map=smap, hint=d.hint, severity=d.severity)
    probe = d.path
    while True:
        for layer in reversed(layers):
            full = layer.base + probe[1:]
            if full in layer.source_map.values or full in layer.source_map.keys:
                return located(
                    d.code,
                    d.message,
                    full,
                    file=layer.file,
                    source_map=layer.source_map,
                    hint=d.hint,
                    key=d.code.endswith("unknown-field"),
                    severity=d.severity,
                )
        if probe == "$":
            break
        probe = parent_path(probe)
    top = layers[-1]  # pragma: no cover - every layer has `$` of its case
    return dataclasses.replace(d, path=top.base, file=top.file)  # pragma: no cover


def _at(code: str, message: str, path: str, file: str, smap: SourceMap, *, hint: str) -> Diagnostic:
    return located(code, message, path, file=file, source_map=smap, hint=hint)


# ---------------------------------------------------------------------------------------------- references


def _ids(edition: Edition) -> list[str]:
    """The ids of an edition's rules and exceptions (one namespace)."""
    return [r.id for r in edition.rules] + [x.id for x in edition.exceptions]


def home_guidelines(test_file: TestFile, editions: Sequence[Edition], root: Path) -> frozenset[str]:
    """The guidelines whose rule files sit beside the test file's `tests/` folder."""
    folder = test_file.guideline_dir
    if folder is None:
        return frozenset()
    here = folder.resolve()
    return frozenset(e.guideline_id for e in editions if (root / e.file).resolve().parent == here)


def resolve(
    test: PolicyTest, editions: Sequence[Edition], home: frozenset[str], smap: SourceMap
) -> tuple[dict[str, frozenset[str]], list[Diagnostic]]:
    """The guidelines each rule reference of `test` names, or why it names none (or several)."""
    ids: dict[str, set[tuple[str, str]]] = defaultdict(set)  # rule id -> (guideline, edition)
    for e in editions:
        for item_id in _ids(e):
            ids[item_id].add((e.guideline_id, e.edition_id))
    resolved: dict[str, frozenset[str]] = {}
    problems: list[Diagnostic] = []
    for ref in (*test.expect.decided_by, *test.expect.not_decided_by):
        found = (
            _named_guideline(ref, ids, editions, test.file, smap)
            if ref.guideline is not None
            else _guideline_of(ref, ids, home, test.file, smap)
        )
        if isinstance(found, Diagnostic):
            problems.append(found)
        else:
            resolved[ref.text] = found
    clash = {r.text for r in test.expect.decided_by} & {r.text for r in test.expect.not_decided_by}
    for ref in test.expect.not_decided_by:
        if ref.text in clash:
            problems.append(
                _at(
                    "policy-test.contradiction",
                    f"`{ref.text}` is expected both to decide and not to decide",
                    ref.path,
                    test.file,
                    smap,
                    hint="remove it from `decided_by` or from `not_decided_by`",
                )
            )
    return resolved, problems


def _named_guideline(
    ref: RuleRef, ids: Mapping[str, set[tuple[str, str]]], editions: Sequence[Edition], file: str, smap: SourceMap
) -> frozenset[str] | Diagnostic:
    """`guideline:rule` or `guideline@edition:rule`: that guideline, when it (and the edition) has the rule."""
    assert ref.guideline is not None
    places = ids.get(ref.rule, set())
    known = {g for g, _ in places}
    editions_of = {ed for g, ed in places if g == ref.guideline}
    if ref.guideline in known and (ref.edition is None or ref.edition in editions_of):
        return frozenset({ref.guideline})
    in_guideline = [
        item_id
        for e in editions
        if e.guideline_id == ref.guideline and (ref.edition is None or e.edition_id == ref.edition)
        for item_id in _ids(e)
    ]
    where = f"`{ref.guideline}@{ref.edition}`" if ref.edition else f"`{ref.guideline}`"
    if not in_guideline:
        guidelines = sorted({e.guideline_id for e in editions})
        return _at(
            "policy-test.unknown-rule",
            f"the policy set has no {'edition' if ref.edition else 'guideline'} {where}",
            ref.path,
            file,
            smap,
            hint=did_you_mean(ref.guideline, guidelines) or f"guidelines of this policy set: {', '.join(guidelines)}",
        )
    return _at(
        "policy-test.unknown-rule",
        f"{where} has no rule or exception `{ref.rule}`",
        ref.path,
        file,
        smap,
        hint=did_you_mean(ref.rule, in_guideline) or "rule ids are listed under `rules:` and `exceptions:`",
    )


def _guideline_of(
    ref: RuleRef, ids: Mapping[str, set[tuple[str, str]]], home: frozenset[str], file: str, smap: SourceMap
) -> frozenset[str] | Diagnostic:
    """A bare `rule`: the one guideline that has it, preferring the test's own (`home`) guidelines."""
    candidates = {g for g, _ in ids.get(ref.rule, set())}
    chosen = candidates & home if candidates & home else candidates
    if len(chosen) == 1:
        return frozenset(chosen)
    if not chosen:
        return _at(
            "policy-test.unknown-rule",
            f"no rule or exception `{ref.rule}` in this policy set",
            ref.path,
            file,
            smap,
            hint=did_you_mean(ref.rule, ids) or "rule ids are listed under `rules:` and `exceptions:`",
        )
    names = sorted(chosen)
    return _at(
        "policy-test.ambiguous-rule",
        f"`{ref.rule}` is a rule of {len(names)} guidelines: {', '.join(f'`{n}`' for n in names)}",
        ref.path,
        file,
        smap,
        hint=f"name the guideline, e.g. `{names[0]}:{ref.rule}`",
    )


# ---------------------------------------------------------------------------------------------- running


def run_test(test: PolicyTest, engine: Engine, resolved: Mapping[str, frozenset[str]]) -> TestResult:
    """Evaluate the test's case with `engine` and compare the request's determination with the test."""
    if test.problems or test.case is None or test.request is None:
        return TestResult(test, "error", diagnostics=test.problems)
    try:
        determination = engine.evaluate(test.case)
    except (EngineError, CaseError) as exc:
        return TestResult(test, "error", error=str(exc).splitlines()[0])
    item = determination.item(test.request)
    found = mismatches(test.expect, item, resolved)
    return TestResult(test, "fail" if found else "pass", tuple(found), item)


def _show(value: object) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f"`{v}`" for v in value) + "]"
    return f"`{value}`"


def mismatches(expect: Expectation, item: ItemDetermination, resolved: Mapping[str, frozenset[str]]) -> list[Mismatch]:
    """Every difference between what a test expects and what was decided."""
    out: list[Mismatch] = []
    if expect.determination is not None and item.determination != expect.determination:
        out.append(Mismatch("determination", _show(expect.determination), _show(item.determination)))
    if expect.approved_quantity is not None and item.approved_quantity != expect.approved_quantity:
        out.append(Mismatch("approved_quantity", _show(expect.approved_quantity), _show(item.approved_quantity)))
    if expect.checks_imr_outcome and item.imr_outcome != expect.imr_outcome:
        out.append(Mismatch("imr_outcome", _show(expect.imr_outcome), _show(item.imr_outcome)))
    if expect.missing_facts is not None and sorted(item.missing_facts) != sorted(expect.missing_facts):
        out.append(Mismatch("missing_facts", _show(sorted(expect.missing_facts)), _show(sorted(item.missing_facts))))
    # the evaluation on the records as they are; entries of a reading of unstated facts are its own
    decided = [t for t in item.trace if t.decided and not t.reading]
    deciders = ", ".join(f"`{t.guideline}@{t.edition}:{t.rule}`" for t in decided) if decided else "nothing"
    for ref in expect.decided_by:
        guidelines = resolved.get(ref.text, frozenset())
        if not any(ref.matches(t.guideline, t.edition, t.rule, guidelines) for t in decided):
            out.append(Mismatch("decided_by", f"`{ref.text}` to decide", deciders))
    for ref in expect.not_decided_by:
        guidelines = resolved.get(ref.text, frozenset())
        if any(ref.matches(t.guideline, t.edition, t.rule, guidelines) for t in decided):
            out.append(Mismatch("not_decided_by", f"`{ref.text}` not to decide", deciders))
    for text in expect.rationale_contains:
        if text not in item.rationale:
            out.append(Mismatch("rationale_contains", _show(text), "a rationale without it"))
    return out


class Runner:
    """Runs test files, loading each policy set once. The policy set of `policies/<guideline>/tests/x.yaml`
    is `policies/` unless `policies` is given. Shared by `imr-policy test` and the pytest plugin."""

    def __init__(
        self,
        *,
        policies: Path | None = None,
        engine: Literal["durable", "reference"] = "durable",
        display_root: Path | None = None,
    ) -> None:
        self._policies = policies
        self._engine_kind: Literal["durable", "reference"] = engine
        self._display_root = display_root
        self._engines: dict[Path, Engine | tuple[Diagnostic, ...]] = {}

    def show(self, path: Path) -> str:
        if self._display_root is not None:
            try:
                return path.resolve().relative_to(self._display_root.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    def engine_for(self, test_file: TestFile) -> tuple[Path | None, Engine | tuple[Diagnostic, ...]]:
        """The policy set a test file tests, loaded (or the problems that prevent loading it)."""
        root = self._policies or policy_root(test_file.source)
        if root is None:
            return None, (
                Diagnostic(
                    code="policy-test.no-policies",
                    message="cannot tell which rule packs this file tests",
                    file=test_file.file,
                    hint="keep test files in policies/<guideline>/tests/, or name the rule packs with --policies",
                ),
            )
        key = root.resolve()
        if key not in self._engines:
            try:
                self._engines[key] = load(root, engine=self._engine_kind)
            except PolicyError as exc:
                self._engines[key] = tuple(
                    dataclasses.replace(d, file=self.show(root / d.file)) if d.file else d for d in exc.diagnostics
                )
        return root, self._engines[key]

    def run_file(self, test_file: TestFile) -> tuple[list[TestResult], tuple[Diagnostic, ...]]:
        root, loaded = self.engine_for(test_file)
        if root is None or not isinstance(loaded, Engine):
            why = (
                "the rule packs it tests are not valid" if root is not None else "the rule packs it tests are not known"
            )
            problems = loaded if not isinstance(loaded, Engine) else ()
            return [TestResult(t, "error", error=why) for t in test_file.tests], problems
        home = home_guidelines(test_file, loaded.editions, root)
        results = []
        for test in test_file.tests:
            results.append(self.run_test(test, test_file, loaded, home))
        return results, ()

    def run_test(self, test: PolicyTest, test_file: TestFile, engine: Engine, home: frozenset[str]) -> TestResult:
        resolved, problems = resolve(test, engine.editions, home, test_file.source_map)
        if problems:
            test = dataclasses.replace(test, problems=tuple(sort_and_cap([*test.problems, *problems])))
        return run_test(test, engine, resolved)

    def run(self, paths: Sequence[Path]) -> Run:
        """Every test file under `paths`."""
        files = discover_tests(paths)
        if not files:
            where = ", ".join(f"`{self.show(p)}`" for p in paths)
            return Run(
                (),
                (
                    Diagnostic(
                        code="policy-test.no-files",
                        message=f"no policy test files found in {where}" if paths else "no policy test files given",
                        hint="policy tests are YAML files in a `tests/` folder beside the rule packs",
                    ),
                ),
                (),
                (),
            )
        results: list[TestResult] = []
        diagnostics: list[Diagnostic] = []
        for source in files:
            test_file, problems = load_test_file(source, display=self.show(source))
            diagnostics.extend(problems)
            if test_file is None:
                continue
            ran, broken = self.run_file(test_file)
            results.extend(ran)
            diagnostics.extend(d for d in broken if d not in diagnostics)
        engines = tuple((k, e) for k, e in self._engines.items() if isinstance(e, Engine))
        return Run(tuple(results), tuple(diagnostics), tuple(self.show(f) for f in files), engines)


@dataclass(frozen=True, slots=True)
class Run:
    """The results of running test files against policy sets, and what could not be run."""

    results: tuple[TestResult, ...]
    diagnostics: tuple[Diagnostic, ...]  # problems of whole files (and of the rule packs they test)
    files: tuple[str, ...]
    engines: tuple[tuple[Path, Engine], ...]  # (policy root, resolved; its engine), in order of first use

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics) and all(r.passed for r in self.results)

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "error": 0}
        for r in self.results:
            out[r.status] += 1
        return out


# ---------------------------------------------------------------------------------------------- coverage


@dataclass(frozen=True, slots=True)
class ItemCoverage:
    """One rule or exception: the tests that saw it decide, and the tests that saw it considered but not decide."""

    id: str
    kind: str  # `rule` or `exception`
    path: str  # `$.rules[0]`
    decided_in: tuple[str, ...]
    not_decided_in: tuple[str, ...]
    always_decides: bool = False  # static analysis proves no case considers it without it deciding

    @property
    def covered(self) -> bool:
        return self.hits == self.points

    @property
    def points(self) -> int:
        return 1 if self.always_decides else 2

    @property
    def hits(self) -> int:
        return int(bool(self.decided_in)) + (0 if self.always_decides else int(bool(self.not_decided_in)))


@dataclass(frozen=True, slots=True)
class CitationCoverage:
    """A cited guideline section: whether a rule rests on it, and whether a test exercised that rule."""

    id: str
    section: str
    ruled: bool  # a rule or exception cites it, directly or through a limit it uses, or `silent_on` does
    tested: bool  # a test saw one of those rules decide (or the guideline found silent on that service)


@dataclass(frozen=True, slots=True)
class EditionCoverage:
    guideline: str
    edition: str
    file: str
    items: tuple[ItemCoverage, ...]
    citations: tuple[CitationCoverage, ...]

    @property
    def key(self) -> str:
        return f"{self.guideline}@{self.edition}"

    @property
    def hits(self) -> int:
        return sum(i.hits for i in self.items)

    @property
    def points(self) -> int:
        return sum(i.points for i in self.items)

    @property
    def percent(self) -> float:
        return 100.0 * self.hits / self.points if self.points else 100.0


@dataclass(frozen=True, slots=True)
class Coverage:
    """Rule coverage: every rule and exception counts twice, once for a test in which it decided and once
    for a test in which it was considered and did not decide (once only for a rule that static analysis
    proves decides whenever it is considered). 100% means every one of them was seen."""

    editions: tuple[EditionCoverage, ...]

    @property
    def hits(self) -> int:
        return sum(e.hits for e in self.editions)

    @property
    def points(self) -> int:
        return sum(e.points for e in self.editions)

    @property
    def percent(self) -> float:
        return 100.0 * self.hits / self.points if self.points else 100.0

    def below(self, minimum: float) -> tuple[EditionCoverage, ...]:
        """The editions covered less than `minimum` percent: the gate is per edition, so a new edition
        with no tests fails it however well the others are covered."""
        return tuple(e for e in self.editions if e.percent < minimum)


def editions_under(run: Run, paths: Sequence[Path]) -> list[Edition]:
    """The editions whose rule files lie under `paths` (a test file stands for its guideline's folder), or
    every edition the tests ran against when none does: what `--coverage` measures."""
    places = []
    for given in paths:
        p = given.resolve()
        places.append(p.parent.parent if p.is_file() and p.parent.name == "tests" else p if p.is_dir() else p.parent)
    everything: list[Edition] = []
    chosen: list[Edition] = []
    for root, engine in run.engines:
        for e in engine.editions:
            everything.append(e)
            source = (root / e.file).resolve()
            if any(source == place or place in source.parents for place in places):
                chosen.append(e)
    return chosen or everything


def coverage(editions: Sequence[Edition], results: Iterable[TestResult]) -> Coverage:
    """Which rules and exceptions of `editions` the evaluated tests saw decide, and not decide."""
    decided: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    not_decided: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    silent_seen: set[tuple[str, str, str]] = set()  # (guideline, edition, service) found not to address it
    for r in results:
        if r.item is None:
            continue
        label = f"{r.test.file}::{r.test.name}"
        for t in r.item.trace:
            if t.reading:
                continue  # counted on the records as they are, not per reading of unstated facts
            (decided if t.decided else not_decided)[(t.guideline, t.edition, t.rule)].append(label)
        for step in r.item.search:
            if step.result == "not_addressed":
                silent_seen.add((step.guideline, step.edition, r.item.service))
    out: list[EditionCoverage] = []
    for e in editions:
        items: list[ItemCoverage] = []
        for kind, ids in (("rule", [r.id for r in e.rules]), ("exception", [x.id for x in e.exceptions])):
            for i, item_id in enumerate(ids):
                key = (e.guideline_id, e.edition_id, item_id)
                items.append(
                    ItemCoverage(
                        item_id,
                        kind,
                        f"$.{kind}s[{i}]",
                        tuple(dict.fromkeys(decided.get(key, ()))),
                        tuple(dict.fromkeys(not_decided.get(key, ()))),
                        always_decides=kind == "rule" and always_decides(e, e.rules[i]),
                    )
                )
        out.append(
            EditionCoverage(e.guideline_id, e.edition_id, e.file, tuple(items), _citations(e, decided, silent_seen))
        )
    return Coverage(tuple(out))


def _citations(
    e: Edition, decided: Mapping[tuple[str, str, str], list[str]], silent_seen: set[tuple[str, str, str]]
) -> tuple[CitationCoverage, ...]:
    rests_on: dict[str, set[str]] = defaultdict(set)  # citation -> rules and exceptions resting on it
    for rule in e.rules:
        limits = {c.limit for c in leaves(rule.when) if c.limit}
        limits |= {x for x in (rule.outcome.up_to_total, rule.outcome.up_to_per_request, rule.outcome.ceiling) if x}
        for cid in {rule.citation, *(e.limit(x).citation for x in limits)}:
            rests_on[cid].add(rule.id)
    for exc in e.exceptions:
        limits = {c.limit for c in leaves(exc.when) if c.limit} | {exc.raises_total}
        for cid in {exc.citation, *(e.limit(x).citation for x in limits)}:
            rests_on[cid].add(exc.id)
    silent = {s.citation: s.service for s in e.silent_on}
    out = []
    for c in e.citations:
        tested = any(decided.get((e.guideline_id, e.edition_id, rid)) for rid in rests_on.get(c.id, ()))
        if c.id in silent:
            tested = tested or (e.guideline_id, e.edition_id, silent[c.id]) in silent_seen
        out.append(CitationCoverage(c.id, c.section, bool(rests_on.get(c.id)) or c.id in silent, tested))
    return tuple(out)
