"""Static analysis (imr_policy/authoring/lint.py, `imr-policy lint`, and `validate`): exact about finite facts and
intervals, aware of the relations between facts, quiet about the shipped packs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from imr_policy.authoring.lint import always_decides, analyse, lint_paths
from imr_policy.loading.validate import check_text, load_editions
from imr_policy.model.diagnostics import Severity
from tests.conftest import ROOT

LINT_FIXTURES = ROOT / "tests" / "invalid" / "lint"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


HEAD = """format: 1
guideline: {id: example, title: Example, family: ODG, tier: non_mtus, jurisdictions: [CA]}
edition:
  id: "1"
  title: Example
  effective: {from: 2015-01-01, to: null, selected_by: date_of_service, provenance: UNVERIFIED, source: test}
citations:
  - {id: c, section: s, pages: null, quote: q, provenance: UNVERIFIED, source: test}
limits:
  - {id: trial, value: 4, unit: visits, citation: c, provenance: UNVERIFIED, description: d}
  - {id: max, value: 10, unit: visits, citation: c, provenance: UNVERIFIED, description: d}
rules:
"""


def rule(
    rule_id: str, when: str, outcome: str = "{decision: pend, missing: [functional_improvement], reason: r}"
) -> str:
    return f"  - {{id: {rule_id}, services: [psychotherapy], citation: c, when: [{when}], outcome: {outcome}}}\n"


def findings(text: str) -> list[tuple[str, str]]:
    edition, problems, _ = check_text(text, file="example.yaml")
    assert edition is not None, [p.render() for p in problems]
    return [(f.code, f.message) for f in analyse(edition)]


def codes(text: str) -> list[str]:
    return [c for c, _ in findings(text) if c != "lint.overlap"]


CERTIFY = "{decision: certify, up_to: {total: max}, reason: r}"


def test_the_shipped_packs_have_no_errors_or_warnings() -> None:
    result, found = lint_paths([ROOT / "policies"], display_root=ROOT)
    assert result.ok
    assert [d.render() for d in found if d.severity is not Severity.NOTE] == []


def test_finite_facts_are_covered_value_by_value() -> None:
    three = rule("a", "{fact: functional_improvement, op: eq, value: documented}") + rule(
        "b", "{fact: functional_improvement, op: in, value: [not_documented, unknown]}"
    )
    assert findings(HEAD + three) == [
        ("lint.gap", "no rule decides psychotherapy when `functional_improvement` is `none`")
    ]
    every = three + rule("c", "{fact: functional_improvement, op: eq, value: none}")
    assert codes(HEAD + every) == []


def test_no_history_means_nothing_completed() -> None:
    """After the trial (completed >= 4) `functional_improvement` cannot be `none`: no gap is reported there."""
    rules = rule("trial", "{fact: completed, op: lt, limit: trial}", CERTIFY) + rule(
        "a", "{fact: functional_improvement, op: in, value: [documented, not_documented, unknown]}"
    )
    assert codes(HEAD + rules) == []
    # a rule for `none` after the trial could never hold
    dead = rules + rule(
        "b", "{fact: functional_improvement, op: eq, value: none}, {fact: completed, op: gte, value: 1}"
    )
    assert (
        "lint.unsatisfiable",
        "rule `b` can never hold: no psychotherapy case meets all of `functional_improvement` is `none`; "
        "`completed` is at least 1",
    ) in findings(HEAD + dead)


def test_total_is_completed_plus_quantity() -> None:
    # total <= 10 or completed >= 11: the cases left are completed <= 10 with total >= 11
    rules = rule("within", "{fact: total, op: lte, limit: max}", CERTIFY) + rule(
        "beyond", "{fact: completed, op: gte, value: 11}"
    )
    assert findings(HEAD + rules) == [
        ("lint.gap", "no rule decides psychotherapy when `total` is at least 11 and `completed` is at most 10")
    ]
    # quantity >= 1, so completed >= 10 means total >= 11: `total <= 10` cannot hold with it
    assert sorted(
        codes(HEAD + rule("x", "{fact: completed, op: gte, limit: max}, {fact: total, op: lte, limit: max}"))
    ) == [
        "lint.gap",
        "lint.unsatisfiable",
    ]


def test_integer_bounds_come_from_the_case_contract() -> None:
    # quantity is 1 to 1000: `quantity lt 1` can never hold, `quantity lte 1000` always does
    assert "lint.unsatisfiable" in codes(HEAD + rule("x", "{fact: quantity, op: lt, value: 1}"))
    assert codes(HEAD + rule("x", "{fact: quantity, op: lte, value: 1000}")) == []


def test_shadowing_and_overlap() -> None:
    rules = (
        rule("trial", "{fact: completed, op: lt, limit: trial}", CERTIFY)
        + rule("early", "{fact: completed, op: lt, value: 2}", CERTIFY.replace("max", "trial"))
        + rule("rest", "")
    )
    found = findings(HEAD + rules)
    assert (
        "lint.shadowed",
        "rule `early` never decides psychotherapy: wherever it holds, an earlier rule holds first (`trial`)",
    ) in found
    overlaps = [m for c, m in found if c == "lint.overlap"]
    assert overlaps == [
        "rule `rest` (pend) overlaps an earlier rule with another outcome, which decides where both hold: `trial` "
        "(certify up to `max` in total) when `completed` is below 4 (`trial`)"
    ]
    # rules with the same outcome overlap without a note
    same = rule("a", "{fact: severity, op: eq, value: severe}", CERTIFY) + rule("b", "", CERTIFY)
    assert findings(HEAD + same) == []


def test_exceptions() -> None:
    base = (
        HEAD.replace(
            "rules:\n",
            "  - {id: severe, value: 20, unit: visits, citation: c, provenance: UNVERIFIED, description: d}\nrules:\n",
        )
        + rule("with", "{fact: functional_improvement, op: eq, value: documented}", CERTIFY)
        + rule("rest", "")
    )
    ok = base + (
        "exceptions:\n  - {id: x, rules: [with], citation: c, when: [{fact: severity, op: eq, value: severe}], "
        "raises: {total: severe}}\n"
    )
    assert codes(ok) == []
    never = ok.replace("raises: {total: severe}", "raises: {total: trial}")
    assert codes(never) == ["lint.exception-never-applies"]


def test_edition_gaps(tmp_path: Path) -> None:
    result, found = lint_paths([LINT_FIXTURES / "lint.edition-gap"], display_root=ROOT)
    assert result.ok
    assert [d.code for d in found if d.code == "lint.edition-gap"] == ["lint.edition-gap"]
    # editions that meet leave no gap
    for name in ("2015.yaml", "2018.yaml"):
        text = (LINT_FIXTURES / "lint.edition-gap" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("from: 2018-03-01", "from: 2018-01-01"), encoding="utf-8")
    assert [d.code for d in lint_paths([tmp_path])[1] if d.code == "lint.edition-gap"] == []


def test_a_condition_on_the_service_narrows_a_rule_of_several_services() -> None:
    pend = "outcome: {decision: pend, missing: [severity], reason: r}"
    both = HEAD + (
        "  - {id: pt-only, services: [physical_therapy, occupational_therapy], citation: c, "
        f"when: [{{fact: service, op: eq, value: physical_therapy}}], {pend}}}\n"
        f"  - {{id: rest, services: [physical_therapy, occupational_therapy], citation: c, when: [], {pend}}}\n"
    )
    # not dead (it decides physical therapy); `rest` is left to decide occupational therapy only
    assert findings(both) == [
        (
            "lint.shadowed",
            "rule `rest` never decides physical therapy: wherever it holds, an earlier rule holds first (`pt-only`)",
        )
    ]
    only_acupuncture = both.replace("value: physical_therapy}", "value: acupuncture}")
    assert "lint.unsatisfiable" in codes(only_acupuncture)


def test_always_decides() -> None:
    result = load_editions([ROOT / "policies"], display_root=ROOT / "policies")
    by_key = {f"{e.guideline_id}@{e.edition_id}": e for e in result.editions}
    acoem = by_key["acoem-2nd-ed@2004-ch15"]
    mtus = by_key["mtus-cpmtg@2009"]
    assert always_decides(acoem, acoem.rules[0])
    assert not always_decides(mtus, mtus.rule("psychotherapy.initial-trial"))
    assert not always_decides(mtus, mtus.rule("psychotherapy.continued-without-improvement"))


# ------------------------------------------------------------------------------------------------ commands


def test_validate_runs_the_analysis_without_notes() -> None:
    gap = cli("validate", "tests/invalid/lint/lint.gap.yaml")
    assert gap.returncode == 0, gap.stderr
    assert "warning[lint.gap]" in gap.stderr
    assert "lint.overlap" not in gap.stderr
    assert "0 errors, 1 warning" in gap.stdout
    dead = cli("validate", "tests/invalid/lint/lint.unsatisfiable.yaml")
    assert dead.returncode == 1
    assert "error[lint.unsatisfiable]" in dead.stderr


def test_lint_command(golden) -> None:  # type: ignore[no-untyped-def]
    outputs = []
    for path in sorted(LINT_FIXTURES.iterdir()):
        rel = path.relative_to(ROOT).as_posix()
        done = cli("lint", "--notes", rel)
        errors = ("lint.unsatisfiable", "lint.unique-overlap", "lint.exception-conflict")
        expected_status = 1 if path.name.startswith(errors) else 0
        assert done.returncode == expected_status, done.stdout + done.stderr
        outputs.append(f"$ imr-policy lint {rel}\n{done.stdout}")
    golden("lint-fixtures.txt", "\n".join(outputs))
    quiet = cli("lint", "--no-notes", "tests/invalid/lint/lint.overlap.yaml")
    assert quiet.returncode == 0
    policy_set, summary = quiet.stdout.splitlines()
    assert policy_set.startswith("policy set: tests/invalid/lint/lint.overlap.yaml (sha256:")
    assert summary == "1 file analysed: 0 errors, 0 warnings, 0 notes"
    shipped = cli("lint", "--format", "json")
    assert shipped.returncode == 0
    import json

    data = json.loads(shipped.stdout)
    assert data["ok"] is True
    assert {d["severity"] for d in data["diagnostics"]} <= {"note"}


def test_lint_on_clean_packs_is_quiet() -> None:
    """Issue 14.7: `lint` on the shipped (clean) packs printed every overlap note, some of 6,000 characters
    (a fallback rule listed each of its 26 earlier rules with their conditions). Notes are now counted, listed
    with `--notes`, and each names at most three earlier rules."""
    import json

    done = cli("lint")
    assert done.returncode == 0, done.stderr
    assert "note[" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith(
        " notes (overlaps the rule order settles; `imr-policy lint --notes` lists them)"
    )
    data = json.loads(cli("lint", "--format", "json").stdout)
    notes = [d["message"] for d in data["diagnostics"] if d["code"] == "lint.overlap"]
    assert notes
    assert max(map(len, notes)) < 600, max(notes, key=len)  # was 6,178
    assert any(
        " earlier rules with another outcome, which decide where both hold: " in m and " more" in m for m in notes
    )
    listed = cli("lint", "--notes")
    assert listed.stdout.count("note[lint.overlap]") == len(notes)


@pytest.mark.parametrize("args", [["nope/"], ["--format", "xml"]])
def test_lint_usage_errors(args: list[str]) -> None:
    assert cli("lint", *args).returncode == 2


def test_a_limit_edited_without_its_text_is_found() -> None:
    """Issue 14.7: a limit set to 24 whose description and quote still say 20 gave a rationale that contradicts
    itself, and nothing checked it. `lint.limit-text` compares the value with the numbers its texts state in
    its unit; the shipped packs agree with theirs."""
    import imr_policy
    from imr_policy.authoring.lint import lint, stated_counts

    assert stated_counts("total of up to 6-10 visits with evidence", "visits") == {6, 10}
    assert stated_counts("the first 3 to 6 treatments", "sessions") == {3, 6}
    assert stated_counts("one follow-up visit per prospective request", "visits") == {1}
    assert stated_counts("6 office visits", "visits") == {6}
    assert stated_counts("10 visits over 8 weeks", "visits") == {10}  # 8 is weeks, not visits
    assert stated_counts("the post-surgical period", "months") == set()
    assert stated_counts("5 business days", "business_days") == set()  # not a unit counted in words
    assert [d for d in lint(imr_policy.load().editions) if d.code == "lint.limit-text"] == []
    text = (ROOT / "policies/odg-mental-illness-stress/2015-03.yaml").read_text(encoding="utf-8")
    old = "    value: 20\n    range: [13, 20]\n"
    assert old in text
    found = [
        m for c, m in findings(text.replace(old, "    value: 24\n    range: [13, 24]\n", 1)) if c == "lint.limit-text"
    ]
    assert found == [
        "limit `psychotherapy.max-visits` is 13-24 visits, but its description states 13, 20 visits and not 24",
        "limit `psychotherapy.max-visits` is 13-24 visits, but its citation `psychotherapy-guidelines`'s quote "
        "states 13, 20 visits and not 24",
    ]


def test_a_long_list_of_values_is_shortened_in_notes() -> None:
    """A `contains_any` of 14 procedure words reads as its first four and a count, so a note stays short."""
    from imr_policy.authoring.lint import condition_text
    from imr_policy.model.values import Condition

    words = tuple(f"w{i}" for i in range(14))
    text = condition_text(Condition("postsurgical_procedure", "contains_any", words), None)  # type: ignore[arg-type]
    assert text == "`postsurgical_procedure` mentions `w0`, `w1`, `w2`, `w3` and 10 more"
    short = condition_text(Condition("postsurgical_procedure", "contains_any", words[:6]), None)  # type: ignore[arg-type]
    assert short.endswith("`w4`, `w5`")


def test_procedure_phrases_shared_by_rows_are_a_note_and_wider_ones_a_warning() -> None:
    """Two rows that list the same procedure phrase (a laminectomy: a disc disorder's or a stenosis's) are
    read both, as the pack intends: a note. A phrase inside a wider phrase of another row is a warning."""
    text = (ROOT / "policies/odg-treatment/2007-05.yaml").read_text(encoding="utf-8")
    shipped = [(c, m) for c, m in findings(text) if c == "lint.condition-overlap"]
    assert (
        "lint.condition-overlap",
        "condition rows `disc-without-myelopathy` and `spinal-stenosis` overlap: both list the procedure phrase "
        "`laminectomy`, `hemilaminectomy`, `laminotomy`, so such an operation reads both rows (as the pack "
        "intends, if the operation can be either row's)",
    ) in shipped
    edition, _, _ = check_text(text, file="odg.yaml")
    assert edition is not None
    assert {f.severity for f in analyse(edition) if f.code == "lint.condition-overlap"} == {Severity.NOTE}
    old = "    procedure_words: [laminectomy, hemilaminectomy, laminotomy]\n"
    assert old in text
    wider = text.replace(old, "    procedure_words: [lumbar laminectomy]\n", 1)
    edition, _, _ = check_text(wider, file="odg.yaml")
    assert edition is not None
    warned = [f.message for f in analyse(edition) if f.severity is Severity.WARNING]
    assert warned == [
        "condition rows `disc-without-myelopathy` and `spinal-stenosis` overlap: the procedure phrases "
        "`laminectomy` and `lumbar laminectomy` match the same procedures"
    ]
