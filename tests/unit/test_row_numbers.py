"""Rows that carry their numbers (format 2, issue 11): a row of the table by condition gives its medical
visits (`medical: {limit, over}`), and one `table: medical` entry of a decision stands for the rules those
numbers make. The generated rules are ordinary rules: basis, trace, coverage, lint and diff see them as
the rules the pack used to write out, and the shipped ODG pack decides exactly as its written-out form."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import imr_policy
from imr_policy.compliance.diff import PolicySet, diff_policy_sets
from imr_policy.loading.validate import check_text, load_editions
from imr_policy.model.values import Edition, RowNumbers
from tests.conftest import ROOT

ODG = ROOT / "policies" / "odg-treatment" / "2007-05.yaml"
FORMAT1 = ROOT / "tests" / "format1" / "policies" / "odg-treatment" / "2007-05.yaml"  # the rules written out

PACK = """format: 2
guideline: {id: example, title: Example, family: ODG, tier: non_mtus, jurisdictions: [TX]}
edition:
  id: "1"
  title: Example
  effective: {from: 2010-01-01, to: null, selected_by: date_of_service, provenance: UNVERIFIED, source: test}
citations:
  - {id: table, section: by condition, pages: null, quote: q, provenance: UNVERIFIED, source: test}
  - {id: fading, section: principles, pages: null, quote: q, provenance: UNVERIFIED, source: test}
limits:
  - {id: nine, value: 9, unit: visits, citation: table, provenance: UNVERIFIED, description: 9 visits}
  - {id: ten, value: 10, unit: visits, citation: table, provenance: UNVERIFIED, description: 10 visits}
conditions:
  - {id: sprain, title: Sprain, words: [sprain], medical: {limit: ten, over: 8 weeks}}
  - {id: lumbago, title: Lumbago, words: [lumbago], medical: {limit: nine, over: 8 weeks}}
  - {id: strain, title: Strain, words: [strain], medical: {limit: ten, over: 8 weeks}}
  - {id: rupture, title: Rupture, words: [rupture]}
decisions:
  - services: [physical_therapy]
    hit_policy: first
    rules:
      - table: medical
        reached: {citation: fading, reason: "{visits} over {over} reached"}
        within: {citation: table, reason: "up to {visits}   over {over}"}
      - {id: other, citation: table, when: [], outcome: {decision: pend, reason: not encoded}}
"""


def _edition(text: str = PACK) -> Edition:
    edition, problems, _ = check_text(text, file="example.yaml")
    assert edition is not None, [p.render() for p in problems]
    return edition


def test_the_entry_stands_for_a_rule_per_number_reached_first_in_the_order_of_limits() -> None:
    rules = _edition().rules
    assert [r.id for r in rules] == ["nine.reached", "ten.reached", "nine", "ten", "other"]
    ten_reached, ten = rules[1], rules[3]
    assert [(c.fact, c.op, c.value, c.limit) for c in ten_reached.when] == [
        ("condition", "in", ("sprain", "strain"), None),
        ("completed", "gte", None, "ten"),
    ]
    assert (ten_reached.outcome.decision, ten_reached.outcome.ceiling, ten_reached.citation) == (
        "non_certify",
        "ten",
        "fading",
    )
    assert ten_reached.outcome.reason == "10 visits over 8 weeks reached"
    assert [(c.fact, c.op, c.value) for c in ten.when] == [("condition", "in", ("sprain", "strain"))]
    assert (ten.outcome.decision, ten.outcome.up_to_total, ten.citation) == ("certify", "ten", "table")
    assert ten.outcome.reason == "up to 10 visits over 8 weeks"  # the reason's spaces folded, as a rule's are
    assert all(r.services == ("physical_therapy",) for r in rules)
    # the row keeps its numbers for the table view and the diff
    assert next(r for r in _edition().conditions if r.id == "lumbago").medical == RowNumbers("nine", "8 weeks")


def test_a_row_without_numbers_is_not_in_the_generated_rules() -> None:
    assert all("rupture" not in (c.value or ()) for r in _edition().rules for c in r.when)


def test_the_shipped_odg_rules_are_the_ones_the_pack_wrote_out() -> None:
    """Every rule the ODG pack's `table: medical` stands for is, field for field, the rule the format-1 copy
    writes out (tests/format1, frozen at the migration); only their place in the list moved: the
    radiculitis rule, written by hand, follows the table's rules."""
    generated = {r.id: r for r in _edition(ODG.read_text(encoding="utf-8")).rules}
    written = {r.id: r for r in _edition(FORMAT1.read_text(encoding="utf-8")).rules}
    medical = [i for i in written if i.startswith("physical-therapy.medical.")]
    assert len(medical) == 10
    for rule_id in medical:
        assert generated[rule_id] == written[rule_id], rule_id
    assert set(generated) == set(written)


def test_decisions_and_basis_are_those_of_the_written_out_rules() -> None:
    engine, written = imr_policy.load(), imr_policy.load(FORMAT1.parent.parent)
    case = {
        "case_id": "row-numbers",
        "jurisdiction": "TX",
        "date_of_injury": "2010-01-01",
        "diagnoses": [{"description": "accepted lumbar sprain/strain"}],
        "requests": [{"id": "pt", "service": "physical_therapy", "quantity": 12, "date_of_service": "2010-06-01"}],
        "history": [{"service": "physical_therapy", "completed": 4, "functional_improvement": "documented"}],
        "utilization_review": [{"request": "pt", "decision": "deny"}],
    }
    for completed in (0, 4, 10, 14):
        case["history"][0]["completed"] = completed  # type: ignore[index]
        a, b = engine.evaluate(case).items[0], written.evaluate(case).items[0]
        assert (a.determination, a.approved_quantity, a.imr_outcome, a.basis, a.rationale) == (
            b.determination,
            b.approved_quantity,
            b.imr_outcome,
            b.basis,
            b.rationale,
        )
    assert [b.rule for b in a.basis] == ["physical-therapy.medical.10-over-8-weeks.reached"]


def test_what_is_said_of_a_generated_rule_points_at_the_entry() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "imr_policy", "lint", "--notes", str(ODG)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    line = next(x for x in out.stdout.splitlines() if "`physical-therapy.medical.10-over-8-weeks.reached`" in x)
    entry = 1 + ODG.read_text(encoding="utf-8").splitlines().index("      - table: medical")
    assert line.startswith(f"policies/odg-treatment/2007-05.yaml:{entry}:16: note[lint.overlap]")
    assert line.endswith("(at $.decisions[1].rules[23].table)")


def test_the_diff_reports_a_row_whose_number_changed(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for side in (old, new):
        (side / "odg-treatment").mkdir(parents=True)
        shutil.copy(ODG, side / "odg-treatment" / "2007-05.yaml")
    pack = new / "odg-treatment" / "2007-05.yaml"
    text = pack.read_text(encoding="utf-8")
    before = "    medical: {limit: physical-therapy.medical.9-over-8-weeks, over: 8 weeks}\n"
    assert text.count(before) == 4  # lumbago, cervicalgia, the two meniscus rows
    at = text.index("  - id: lumbago\n")
    moved = text[at:].replace(
        before, "    medical: {limit: physical-therapy.medical.10-over-8-weeks, over: 8 weeks}\n", 1
    )
    pack.write_text(text[:at] + moved, encoding="utf-8")

    def load(path: Path) -> PolicySet:
        result = load_editions([path], display_root=path.parent)
        assert result.ok, result.diagnostics
        return PolicySet(result.editions, result.profiles)

    [pair] = diff_policy_sets(load(old), load(new)).differing
    changes = {(c.entity, c.old_id): c for c in pair.changes}
    row = changes[("condition", "lumbago")]
    assert [(f.field, f.old, f.new, f.effect) for f in row.fields] == [
        (
            "medical",
            "physical-therapy.medical.9-over-8-weeks over 8 weeks",
            "physical-therapy.medical.10-over-8-weeks over 8 weeks",
            "decision",
        )
    ]
    # and the generated rules of both numbers read the row on one side only
    assert {
        ("rule", "physical-therapy.medical.9-over-8-weeks"),
        ("rule", "physical-therapy.medical.10-over-8-weeks"),
    } <= set(changes)


def test_the_table_view_shows_each_rows_medical_visits() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "imr_policy", "show", "physical_therapy", "--table", "--format", "markdown"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("| lumbar-sprain |"))
    assert line.endswith("| 10 visits over 8 weeks (physical-therapy.medical.10-over-8-weeks) |")
    assert next(x for x in out.stdout.splitlines() if x.startswith("| rotator-cuff-rupture |")).endswith("| - |")


def test_a_broken_entry_is_reported_once_and_its_rows_are_not_called_unread() -> None:
    _, problems, _ = check_text(
        PACK.replace('        reached: {citation: fading, reason: "{visits} over {over} reached"}\n', ""), file="x.yaml"
    )
    assert [(p.code, p.path) for p in problems] == [("policy.schema.missing-field", "$.decisions[0].rules[0]")]
    _, problems, _ = check_text(PACK.replace("{limit: nine, over", "{limit: eleven, over"), file="x.yaml")
    assert [(p.code, p.path) for p in problems if p.severity.value == "error"] == [
        ("policy.unknown-limit", "$.conditions[1].medical.limit")
    ]
