"""Policy tests (policies/<guideline>/tests/*.yaml): the shipped ones pass, catch every change of a limit,
cover every rule; `imr-policy test` reports failures with expected, actual and the trace; pytest runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from imr_policy.authoring.policytest import Run, Runner, coverage, discover_tests, editions_under, load_test_file
from imr_policy.loading.validate import load_editions
from imr_policy.loading.yamlsrc import load_text
from tests.conftest import ROOT

POLICIES = ROOT / "policies"

# Editions (or rules of an edition, by id prefix) added to the shipped packs after the policy tests of
# issue 5 were written, and not yet given policy tests of their own. Each entry is a strict xfail below:
# once tests cover it, the xfail fails and asks for the entry to be removed. A new pack that is not listed
# and has no tests fails `test_every_shipped_rule_is_covered` and `test_every_limit_change_fails_a_policy_test`.
AWAITING_TESTS: dict[str, tuple[str, ...] | None] = {}


def awaiting(edition: str, rule: str) -> bool:
    if edition not in AWAITING_TESTS:
        return False
    prefixes = AWAITING_TESTS[edition]
    return prefixes is None or rule.startswith(prefixes)


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )


@cache
def shipped_run() -> Run:
    """Every shipped policy test, run once on the durable_rules engine."""
    return Runner(engine="durable", display_root=ROOT).run([POLICIES])


# ---------------------------------------------------------------------------------------------- the shipped tests


def test_shipped_policy_tests_pass_on_the_durable_engine() -> None:
    run = shipped_run()
    failing = [
        f"{r.test.file}::{r.test.name}: {r.status} {r.mismatches} {r.error}" for r in run.results if not r.passed
    ]
    assert failing == []
    assert run.diagnostics == ()
    files = {r.test.file for r in run.results}
    for pack in ("mtus-cpmtg", "acoem-2nd-ed", "odg-mental-illness-stress"):
        assert any(f.startswith(f"policies/{pack}/tests/") for f in files), pack
    assert len(run.results) >= 50


def test_every_shipped_test_file_declares_its_schema_for_editors() -> None:
    for path in discover_tests([POLICIES]):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../../schemas/policy-test.schema.json", path


def _awaiting_mark(key: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=f"{key} awaits policy tests (AWAITING_TESTS)")]


def _items() -> list[object]:
    """One parameter per rule or exception; the rules of AWAITING_TESTS as one (xfail) parameter per edition."""
    result = load_editions([POLICIES], display_root=POLICIES)
    params = []
    for e in result.editions:
        key = f"{e.guideline_id}@{e.edition_id}"
        ids = [i.id for i in (*e.rules, *e.exceptions)]
        params += [pytest.param(key, (i,), id=f"{key}:{i}") for i in ids if not awaiting(key, i)]
        waiting = tuple(i for i in ids if awaiting(key, i))
        if waiting:
            params.append(pytest.param(key, waiting, id=f"{key}:awaiting", marks=_awaiting_mark(key)))
    return params


@pytest.mark.parametrize(("edition", "rules"), _items())
def test_every_shipped_rule_is_covered(edition: str, rules: tuple[str, ...]) -> None:
    """Each rule and exception was seen deciding in one test and not deciding in another (100% coverage)."""
    run = shipped_run()
    editions = [e for _, engine in run.engines for e in engine.editions]
    cov = coverage(editions, run.results)
    [ed] = [e for e in cov.editions if e.key == edition]
    for rule in rules:
        [item] = [i for i in ed.items if i.id == rule]
        assert item.decided_in, f"no policy test sees `{rule}` decide; add one under policies/{ed.guideline}/tests/"
        assert item.always_decides or item.not_decided_in, f"no policy test sees `{rule}` considered, not deciding"


def test_the_packs_of_issue_5_reach_full_coverage_and_cite_nothing_untested() -> None:
    run = shipped_run()
    editions = [e for _, engine in run.engines for e in engine.editions]
    cov = coverage(editions, run.results)
    by_key = {e.key: e for e in cov.editions}
    for key in ("mtus-cpmtg@2009", "acoem-2nd-ed@2004-ch15", "odg-mental-illness-stress@2015-03"):
        mine = [i for i in by_key[key].items if not awaiting(key, i.id)]
        assert mine and all(i.covered for i in mine), key
    for key in ("acoem-2nd-ed@2004-ch15", "odg-mental-illness-stress@2015-03"):
        assert [c.id for c in by_key[key].citations if not (c.ruled and c.tested)] == [], key
    # the MTUS's psychological-treatment section, and its silence on medication management, are tested
    tested = {c.id for c in by_key["mtus-cpmtg@2009"].citations if c.tested}
    assert {"psychological-treatment", "medical-management-not-addressed"} <= tested
    [acoem] = [e for e in cov.editions if e.key == "acoem-2nd-ed@2004-ch15"]
    # an unconditional first rule decides whenever it is considered: one point, not two
    assert [(i.id, i.always_decides, i.points) for i in acoem.items] == [
        ("medication-management.periodic-reassessment", True, 1)
    ]
    assert acoem.percent == 100.0


# ---------------------------------------------------------------------------------------------- mutation


DELTAS = (-1, +1, +7)  # just below and just above (the hardest to catch), and far off


def _limits() -> list[object]:
    """One parameter per limit and change; the limits only AWAITING_TESTS rules use as one per edition."""
    params = []
    result = load_editions([POLICIES], display_root=POLICIES)
    for e in result.editions:
        key = f"{e.guideline_id}@{e.edition_id}"
        waiting: list[tuple[str, int]] = []
        for lim in e.limits:
            users = [
                r.id
                for r in e.rules
                if lim.id in {c.limit for c in r.when}
                or lim.id in {r.outcome.up_to_total, r.outcome.up_to_per_request, r.outcome.ceiling}
            ]
            users += [x.id for x in e.exceptions if lim.id in {c.limit for c in x.when} | {x.raises_total}]
            changes = [(lim.id, d) for d in DELTAS if lim.value + d >= 0]
            if users and all(awaiting(key, u) for u in users):
                waiting += changes
            else:
                params += [pytest.param(e.file, (c,), id=f"{key}:{c[0]}{c[1]:+d}") for c in changes]
        if waiting:
            params.append(pytest.param(e.file, tuple(waiting), id=f"{key}:awaiting", marks=_awaiting_mark(key)))
    return params


def mutate_limit(text: str, index: int, delta: int) -> str:
    """The rule file with limits[index].value changed by `delta` (its stated range widened to keep it valid)."""
    loaded = load_text(text, file=None, code_prefix="policy")
    limit = loaded.data["limits"][index]
    value = limit["value"] + delta
    edits = [(f"$.limits[{index}].value", value)]
    if "range" in limit:
        low, high = limit["range"]
        edits += [(f"$.limits[{index}].range[0]", min(low, value)), (f"$.limits[{index}].range[1]", max(high, value))]
    lines = text.splitlines(keepends=True)
    # edit from the last position backwards, so earlier positions stay valid
    for path, new in sorted(edits, key=lambda e: loaded.source_map.values[e[0]], reverse=True):
        line, column = loaded.source_map.values[path]
        row = lines[line - 1]
        start = column - 1
        end = start
        while end < len(row) and row[end].isdigit():
            end += 1
        assert end > start, f"no number at {path}"
        lines[line - 1] = row[:start] + str(new) + row[end:]
    return "".join(lines)


@pytest.mark.parametrize(("file", "changes"), _limits())
def test_every_limit_change_fails_a_policy_test(
    file: str, changes: tuple[tuple[str, int], ...], tmp_path: Path
) -> None:
    """The done-when of issue 5: change any limit of a shipped pack and at least one shipped policy test fails."""
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    pack = copy / file
    text = pack.read_text(encoding="utf-8")
    ids = [lim["id"] for lim in load_text(text, file=None, code_prefix="policy").data["limits"]]
    for limit, delta in changes:
        mutated = mutate_limit(text, ids.index(limit), delta)
        assert mutated != text
        pack.write_text(mutated, encoding="utf-8")
        run = Runner(engine="reference").run([copy])
        assert run.diagnostics == (), "the mutated pack must stay valid, so that only the policy tests can catch it"
        failed = [r for r in run.results if r.status == "fail"]
        assert failed, f"changing `{limit}` of {file} by {delta:+d} fails no policy test"


def test_mutate_limit_edits_only_the_number() -> None:
    text = (POLICIES / "mtus-cpmtg" / "2009.yaml").read_text(encoding="utf-8")
    limits = load_text(text, file=None, code_prefix="policy").data["limits"]
    index = [lim["id"] for lim in limits].index("psychotherapy.trial-visits")
    mutated = mutate_limit(text, index, +1)
    after = load_text(mutated, file=None, code_prefix="policy").data["limits"][index]
    assert (after["value"], after["range"]) == (5, [3, 5])
    changed = [(a, b) for a, b in zip(text.splitlines(), mutated.splitlines(), strict=True) if a != b]
    assert changed == [("    value: 4", "    value: 5"), ("    range: [3, 4]", "    range: [3, 5]")]


# ---------------------------------------------------------------------------------------------- the command


def _mutated_copy(tmp_path: Path) -> Path:
    """A copy of the shipped packs in which the MTUS trial is 5 sessions, not 4."""
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    pack = copy / "mtus-cpmtg" / "2009.yaml"
    text = pack.read_text(encoding="utf-8")
    index = [lim["id"] for lim in load_text(text, file=None, code_prefix="policy").data["limits"]].index(
        "psychotherapy.trial-visits"
    )
    pack.write_text(mutate_limit(text, index, +1), encoding="utf-8")
    return copy


def test_cli_passes_with_exit_0() -> None:
    done = cli("test", "policies/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pass  trial.none-completed.at-limit" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].endswith("passed, 0 failed, 0 errors")


def test_cli_shows_which_tests_a_changed_threshold_breaks_and_why(tmp_path: Path, golden) -> None:  # type: ignore[no-untyped-def]
    copy = _mutated_copy(tmp_path)
    done = cli("test", "-q", "policies/mtus-cpmtg", cwd=tmp_path)
    assert done.returncode == 1
    out = done.stdout
    assert "FAIL  trial.none-completed.above-limit  (policies/mtus-cpmtg/tests/psychotherapy.yaml:" in out
    assert "determination: expected `modify`, got `certify`" in out
    assert "approved_quantity: expected `4`, got `5`" in out
    assert "mtus-cpmtg@2009 rule `psychotherapy.initial-trial` decided" in out
    assert "at the MTUS maximum of 5 visits" in out  # the rationale's arithmetic with the changed limit
    assert "pass  " not in out  # -q lists only what did not pass
    assert copy.is_dir()
    golden("test-changed-threshold.txt", out)


def test_cli_json(tmp_path: Path) -> None:
    _mutated_copy(tmp_path)
    done = cli("test", "--format", "json", "--coverage", "policies/mtus-cpmtg", cwd=tmp_path)
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["ok"] is False
    assert data["counts"]["fail"] > 0 and data["counts"]["error"] == 0
    failed = [t for t in data["tests"] if t["status"] == "fail"]
    assert failed[0]["item"]["trace"] and failed[0]["mismatches"][0]["field"] == "determination"
    assert [(e["guideline"], e["edition"]) for e in data["coverage"]["editions"]] == [
        ("mtus-cpmtg", "2009"),
        ("mtus-cpmtg", "2016"),
    ]


def test_cli_min_coverage(tmp_path: Path) -> None:
    ok = cli("test", "policies/acoem-2nd-ed", "--min-coverage", "100")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "acoem-2nd-ed@2004-ch15  100.0% (1 of 1)" in ok.stdout
    assert "always decides when considered" in ok.stdout
    # keep only the first three MTUS tests: the rules after the trial are never seen deciding
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    tests = copy / "mtus-cpmtg" / "tests" / "psychotherapy.yaml"
    text = tests.read_text(encoding="utf-8")
    cut = text.index("  - name: trial.three-completed.without-improvement")
    tests.write_text(text[:cut], encoding="utf-8")
    (copy / "mtus-cpmtg" / "tests" / "2016-edition.yaml").unlink()  # it sees 2009's later rules decide too
    low = cli("test", "policies/mtus-cpmtg", "--min-coverage", "100", cwd=tmp_path)
    assert low.returncode == 1
    assert "MISS rule      psychotherapy.continued-with-improvement: never decided" in low.stdout
    assert "is below the minimum of 100%" in low.stdout.splitlines()[-1]
    assert cli("test", "--min-coverage", "101").returncode == 2


def test_cli_usage_errors(tmp_path: Path) -> None:
    assert cli("test", str(tmp_path / "nope")).returncode == 2
    assert cli("test", "--policies", str(tmp_path / "nope")).returncode == 2


def test_coverage_counts_what_the_tests_under_the_paths_test() -> None:
    run = shipped_run()
    only = editions_under(run, [POLICIES / "acoem-2nd-ed"])
    assert [f"{e.guideline_id}@{e.edition_id}" for e in only] == ["acoem-2nd-ed@2004-ch15"]
    test_file = POLICIES / "odg-mental-illness-stress" / "tests" / "psychotherapy.yaml"
    keys = {e.guideline_id for e in editions_under(run, [test_file])}
    assert keys == {"odg-mental-illness-stress"}


# ---------------------------------------------------------------------------------------------- the format


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


BASE = """format: 1
defaults:
  request: cbt
  case:
    case_id: base
    date_of_injury: 2012-05-17
    diagnoses: [{description: depression, severity: moderate}]
    requests:
      - {id: cbt, service: psychotherapy, quantity: 6, date_of_service: 2015-07-10}
    history:
      - {service: psychotherapy, completed: 4, functional_improvement: documented}
"""


def test_defaults_merge_key_by_key_and_lists_are_replaced(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "tests",
        "merge.yaml",
        BASE
        + """tests:
  - name: inherits-everything
    expect: {determination: certify, approved_quantity: 6}
  - name: replaces-the-history-list
    case:
      history: [{service: psychotherapy, completed: 9, functional_improvement: documented}]
    expect: {determination: modify, approved_quantity: 1}
  - name: merges-a-mapping
    case:
      claimant: {age: 40}
    expect: {determination: certify}
  - name: as-of-replaces-every-date-of-service
    as_of: 2017-12-01
    expect: {determination: pend}
""",
    )
    test_file, problems = load_test_file(path)
    assert problems == () and test_file is not None
    by_name = {t.name: t for t in test_file.tests}
    replaced = by_name["replaces-the-history-list"].case
    assert replaced is not None and [h.completed for h in replaced.history] == [9]
    merged = by_name["merges-a-mapping"].case
    assert merged is not None and merged.age == 40 and merged.requests[0].quantity == 6
    dated = by_name["as-of-replaces-every-date-of-service"].case
    assert dated is not None and str(dated.requests[0].date_of_service) == "2017-12-01"
    run = Runner(policies=POLICIES, engine="reference").run([path])
    assert [(r.test.name, r.status) for r in run.results] == [(t.name, "pass") for t in test_file.tests]


def test_case_problems_point_where_the_value_was_written(tmp_path: Path) -> None:
    folder = tmp_path / "tests"
    _write(
        folder / "cases",
        "bad.yaml",
        "case_id: from-file\ndate_of_injury: 2012-05-17\ndiagnoses: []\n"
        "requests:\n  - {id: cbt, service: psychotherapy, quantity: 0, date_of_service: 2015-07-10}\n",
    )
    path = _write(
        folder,
        "where.yaml",
        BASE
        + """tests:
  - name: inline
    case:
      requests: [{id: cbt, service: psychotherapy, quantity: "6", date_of_service: 2015-07-10}]
    expect: {determination: certify}
  - name: inline-history
    case:
      history: [{service: psychotherapy, completed: 4, functional_improvement: maybe}]
    expect: {determination: certify}
  - name: as-of-before-the-injury
    as_of: 2011-01-01
    expect: {determination: certify}
  - name: from-the-case-file
    case_file: cases/bad.yaml
    expect: {determination: certify}
""",
    )
    test_file, problems = load_test_file(path, display="where.yaml")
    assert problems == () and test_file is not None
    got = {t.name: [(d.code, d.file, d.line, d.column, d.path) for d in t.problems] for t in test_file.tests}
    assert got == {
        "inline": [("case.type", "where.yaml", 15, 62, "$.tests[0].case.requests[0].quantity")],
        "inline-history": [("case.enum", "where.yaml", 19, 80, "$.tests[1].case.history[0].functional_improvement")],
        "as-of-before-the-injury": [("case.date-order", "where.yaml", 22, 12, "$.tests[2].as_of")],
        "from-the-case-file": [("case.range", "cases/bad.yaml", 5, 49, "$.requests[0].quantity")],
    }
    run = Runner(policies=POLICIES, engine="reference").run([path])
    assert {r.status for r in run.results} == {"error"}
    # a value of `defaults.case` is reported there, for every test that uses it
    shared = _write(
        folder,
        "shared.yaml",
        BASE.replace("    case_id: base\n", "    case_id: base\n    claimant: {age: 5}\n")
        + "tests:\n  - name: one\n    expect: {determination: certify}\n"
        + "  - name: two\n    expect: {determination: certify}\n",
    )
    test_file, problems = load_test_file(shared, display="shared.yaml")
    assert test_file is not None
    assert [[(d.code, d.line, d.column, d.path) for d in t.problems] for t in test_file.tests] == [
        [("case.range", 6, 21, "$.defaults.case.claimant.age")]
    ] * 2


def test_a_rule_id_means_the_guideline_beside_the_tests_folder(tmp_path: Path) -> None:
    """`psychotherapy.initial-trial` is a rule of both the MTUS and ODG; in the MTUS tests folder it is the MTUS's."""
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy, ignore=shutil.ignore_patterns("tests"))
    path = _write(
        copy / "mtus-cpmtg" / "tests",
        "home.yaml",
        BASE
        + """tests:
  - name: mtus-trial-decides
    case:
      history: [{service: psychotherapy, completed: 3, functional_improvement: documented}]
    expect:
      decided_by: [psychotherapy.initial-trial]
  - name: odg-trial-is-named-by-its-guideline
    case:
      history: [{service: psychotherapy, completed: 4, functional_improvement: documented}]
      requests: [{id: cbt, service: psychotherapy, quantity: 8, date_of_service: 2015-07-10}]
    expect:
      decided_by: [odg-mental-illness-stress:psychotherapy.initial-trial]
      not_decided_by: [psychotherapy.initial-trial]
""",
    )
    run = Runner(engine="reference").run([path])
    assert [(r.test.name, r.status) for r in run.results] == [
        ("mtus-trial-decides", "pass"),
        ("odg-trial-is-named-by-its-guideline", "pass"),
    ]


# ---------------------------------------------------------------------------------------------- pytest


PYPROJECT = """[tool.pytest.ini_options]
imr_policy_tests = ["policies/*/tests/*.yaml"]
"""


def _pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "imr_policy.pytest_plugin", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=project,
        env=env,
    )


def test_pytest_collects_and_runs_policy_tests(tmp_path: Path) -> None:
    copy = _mutated_copy(tmp_path)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    done = _pytest(tmp_path, "policies/mtus-cpmtg")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED policies/mtus-cpmtg/tests/psychotherapy.yaml::trial.none-completed.above-limit" in done.stdout
    assert "determination: expected `modify`, got `certify`" in done.stdout
    assert "trace:" in done.stdout
    # restore the limit: everything passes, one pytest item per policy test
    shutil.copy(POLICIES / "mtus-cpmtg" / "2009.yaml", copy / "mtus-cpmtg" / "2009.yaml")
    again = _pytest(tmp_path, "-q", "policies")
    assert again.returncode == 0, again.stdout + again.stderr
    run = shipped_run()
    assert f"{len(run.results)} passed" in again.stdout


def test_pytest_reports_an_invalid_test_file_as_a_failure(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies", ignore=shutil.ignore_patterns("tests"))
    _write(tmp_path / "policies" / "mtus-cpmtg" / "tests", "broken.yaml", "format: 1\ntests:\n  - name: x\n")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    done = _pytest(tmp_path, "policies")
    assert done.returncode == 1
    assert "error[policy-test.missing-field] missing required field `expect`" in done.stdout


def test_pytest_collects_nothing_unless_the_project_asks(tmp_path: Path) -> None:
    """The plugin is loaded wherever imr-policy is installed; unrelated YAML must never become a test."""
    shutil.copytree(POLICIES, tmp_path / "policies")
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n", encoding="utf-8")
    done = _pytest(tmp_path, "policies")
    assert done.returncode == 5, done.stdout  # pytest: no tests collected


def test_the_repository_runs_its_policy_tests_with_pytest() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "policies"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if line.startswith("policies/") and "::" in line]
    run = shipped_run()
    assert len(collected) == len(run.results)
    assert "policies/mtus-cpmtg/tests/psychotherapy.yaml::trial.none-completed.at-limit" in collected


NEW_EDITION = """format: 1
guideline: {id: example-new, title: Example guideline, family: ODG, tier: non_mtus, jurisdictions: [TX]}
edition:
  id: 2030-01
  title: Example guideline, 2030
  effective: {from: 2030-01-01, to: null, selected_by: date_of_service, provenance: UNVERIFIED, source: tests}
citations:
  - {id: c, section: Psychotherapy, pages: null, quote: up to 6 visits, provenance: UNVERIFIED, source: tests}
limits:
  - {id: max, value: 6, unit: visits, citation: c, provenance: UNVERIFIED, description: up to 6 visits}
rules:
  - id: up-to-six
    services: [psychotherapy]
    citation: c
    when: []
    outcome: {decision: certify, up_to: {total: max}, reason: up to six}
"""


def test_the_coverage_gate_is_per_edition(tmp_path: Path) -> None:
    """Issue 14.8: the gate was global, so an edition with no tests at all passed `--min-coverage 90` while
    the others were covered. Every edition must now reach the minimum."""
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    (copy / "example-new").mkdir()
    (copy / "example-new" / "2030-01.yaml").write_text(NEW_EDITION, encoding="utf-8")  # nobody wrote tests for it
    done = cli("test", "policies", "--min-coverage", "90", "-q", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    total = next(line for line in lines if line.startswith("total rule coverage: "))
    assert float(total.split(": ")[1].split("%")[0]) >= 90  # the global figure alone would pass
    assert lines[-1] == ("coverage of example-new@2030-01 (example-new/2030-01.yaml) 0.0% is below the minimum of 90%")
    data = json.loads(cli("test", "policies", "--min-coverage", "90", "--format", "json", cwd=tmp_path).stdout)
    assert data["below_minimum"] == ["example-new@2030-01"]
