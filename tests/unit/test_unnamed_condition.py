"""Diagnoses that name no condition, only the injured part (`unnamed_condition:`): the rows the table lists
for the request's body region are read one by one, with the real ODG pack and both engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import imr_policy
from imr_policy.compliance import audit
from imr_policy.language.conditions import match_rows, names_no_condition
from imr_policy.loading.case import validate_case

ROOT = Path(__file__).resolve().parents[2]
LUMBAR_ROWS = [
    "lumbar-sprain",
    "lumbago",
    "disc-without-myelopathy",
    "disc-with-myelopathy",
    "spinal-stenosis",
    "sciatica-radiculitis",
]


def _case(
    description: str | None, region: str | None = "lumbar", completed: int = 18, **request: Any
) -> dict[str, Any]:
    """A Texas physical therapy request in the shape of texasworker.com/mcch-decision/14044/."""
    case: dict[str, Any] = {
        "case_id": "c",
        "jurisdiction": "TX",
        "date_of_injury": "1998-06-01",
        "diagnoses": [{"description": description}],
        "requests": [
            {
                "id": "pt",
                "service": "physical_therapy",
                "quantity": 12,
                "date_of_service": "2013-05-15",
                **({"body_region": region} if region else {}),
                **request,
            }
        ],
        "history": [{"service": "physical_therapy", "completed": completed, "functional_improvement": "unknown"}],
        "utilization_review": [{"request": "pt", "decision": "deny"}],
    }
    return case


def _odg(engine: imr_policy.Engine) -> imr_policy.model.values.Edition:
    return next(e for e in engine.editions if e.key == "odg-treatment@2007-05")


def _matches(engine: imr_policy.Engine, case: dict[str, Any]) -> tuple[imr_policy.model.values.ConditionMatch, ...]:
    odg = _odg(engine)
    valid = validate_case(case)
    return match_rows(odg.conditions, valid, valid.requests[0], odg.unnamed_condition)


def _rows(engine: imr_policy.Engine, case: dict[str, Any]) -> list[tuple[str, str]]:
    odg = _odg(engine)
    valid = validate_case(case)
    return [
        (m.row.id, m.phrase_kind) for m in match_rows(odg.conditions, valid, valid.requests[0], odg.unnamed_condition)
    ]


def test_a_diagnosis_naming_only_the_part_reads_every_row_listed_for_the_region(engine: imr_policy.Engine) -> None:
    assert _rows(engine, _case("compensable lumbar injury")) == [(r, "region") for r in LUMBAR_ROWS]
    # in the table's order
    assert [r for r, _ in _rows(engine, _case("Cervical injury", region="cervical"))] == [
        "disc-with-myelopathy",
        "cervicalgia",
        "neck-sprain",
        "cervical-disc",
    ]


def test_no_diagnosis_at_all_names_no_condition_either(engine: imr_policy.Engine) -> None:
    case = _case("unused", region="cervical", completed=14) | {"diagnoses": []}
    assert [kind for _, kind in _rows(engine, case)] == ["region"] * 4
    [item] = engine.evaluate(case).items
    assert item.determination == "non_certify"
    assert "The records name no diagnosis" in item.rationale


def test_without_a_body_region_the_region_the_description_names_is_read(engine: imr_policy.Engine) -> None:
    assert [r for r, _ in _rows(engine, _case("compensable lumbar injury", region=None))] == LUMBAR_ROWS
    [item] = engine.evaluate(_case("compensable lumbar injury", region=None)).items
    assert item.determination == "non_certify"
    # a description that names no region, with no body region, names nothing to read
    assert _rows(engine, _case("compensable injury", region=None)) == []


def test_a_named_condition_a_code_or_an_unlisted_region_is_never_read_as_the_rows(engine: imr_policy.Engine) -> None:
    # a word that names something (a contusion) is a condition the table does not hold: no row is guessed
    assert _rows(engine, _case("lumbar contusion")) == []
    # a code names a condition, whatever the description says
    assert (
        _rows(engine, _case("lumbar injury") | {"diagnoses": [{"description": "lumbar injury", "code": "805.4"}]}) == []
    )
    # a row's own words still decide which row applies
    assert _rows(engine, _case("accepted lumbar sprain injury")) == [("lumbar-sprain", "words")]
    # the pack lists no rows for the knee (records name knee conditions it does not hold)
    assert _rows(engine, _case("right knee injury", region="knee")) == []
    # without a body region there is no region to read
    assert _rows(engine, _case("compensable injury", region=None)) == []


def test_the_words_of_the_region_and_the_packs_words_name_no_condition(engine: imr_policy.Engine) -> None:
    unnamed = _odg(engine).unnamed_condition
    assert unnamed is not None
    low_back, neck = (g.regions for g in unnamed.regions)
    assert names_no_condition("Injury to the LOW BACK (compensable)", low_back, unnamed)
    assert not names_no_condition("injury to the low back", neck, unnamed)  # another region's words
    assert not names_no_condition("lumbar pain", low_back, unnamed)  # a symptom is not one of the words


def test_a_body_region_with_laterality_or_more_words_names_its_region(engine: imr_policy.Engine) -> None:
    assert [r for r, _ in _rows(engine, _case("compensable injury", region="Lumbar spine"))] == LUMBAR_ROWS
    match = _matches(engine, _case("compensable injury", region="Lumbar spine"))[0]
    assert match.diagnosis == "lumbar"  # the pack's word for the region, never the record's
    # a region of both groups reads the rows of each
    both = _rows(engine, _case("injury", region="neck and low back"))
    assert {r for r, _ in both} == set(LUMBAR_ROWS) | {"cervicalgia", "neck-sprain", "cervical-disc"}


@pytest.mark.parametrize("backend", ["durable", "reference"])
def test_every_row_over_its_number_decides_and_says_on_what(backend: str) -> None:
    engine = imr_policy.load(engine=backend)  # type: ignore[arg-type]
    [item] = engine.evaluate(_case("compensable lumbar injury")).items
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("non_certify", 0, "upheld")
    [basis] = [b for b in item.basis if b.role == "decisive"]
    assert basis.condition is not None
    assert (basis.condition.matched_by, basis.condition.diagnosis) == ("region", "lumbar")
    assert item.provenance == "UNVERIFIED"
    assert "name the injured part, not a condition of the ODG table" in item.rationale
    assert "read under each of the 6 rows this policy set holds for the lumbar region" in item.rationale
    assert "every reading gives the same result" in item.rationale
    assert "this policy set's judgment [UNVERIFIED]" in item.rationale


def test_rows_that_decide_differently_pend_for_the_diagnosis_and_say_what_each_leads_to(
    engine: imr_policy.Engine,
) -> None:
    # 9 completed + 12: lumbago (9) is reached, the 10-visit rows modify, radiculitis (12) modifies to 3
    [item] = engine.evaluate(_case("lumbar injury", completed=9)).items
    assert item.determination == "pend"
    assert "diagnoses[].code" in item.missing_facts
    assert "decide differently" in item.rationale
    assert "under the row 'Lumbago; backache'" in item.rationale
    # every reading is below what was asked: the denial is upheld whichever row applies
    assert item.imr_outcome == "upheld"


def test_a_provenance_floor_above_the_judgment_pends(engine: imr_policy.Engine) -> None:
    [item] = engine.evaluate(_case("compensable lumbar injury"), min_provenance="V-2nd").items
    assert item.determination == "pend"
    assert "UNVERIFIED" in item.rationale


def test_redaction_keeps_a_description_that_names_no_condition_to_the_packs_words(engine: imr_policy.Engine) -> None:
    case = _case("compensable lumbar injury")
    redaction = audit.redact(
        case, reads=audit.facts_read(engine.editions), conditions=audit.condition_tables(engine.editions)
    )
    assert redaction.case["diagnoses"][0]["description"] == "compensable; injury; lumbar"
    # the decision is the same (the rationale quotes the description, so it quotes the redacted one)
    a, b = engine.evaluate(redaction.case).items[0], engine.evaluate(case).items[0]
    assert (a.determination, a.approved_quantity, a.imr_outcome, a.basis) == (
        b.determination,
        b.approved_quantity,
        b.imr_outcome,
        b.basis,
    )
    # a description with a word of the record's own is reduced to the placeholder and still names no row
    other = _case("lumbar contusion from a forklift")
    text = json.dumps(
        audit.redact(
            other, reads=audit.facts_read(engine.editions), conditions=audit.condition_tables(engine.editions)
        ).case
    )
    assert "forklift" not in text and "contusion" not in text


def test_the_compliance_diff_reports_the_reading_as_a_decision_change(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(ROOT / "policies", old)
    shutil.copytree(ROOT / "policies", new)
    pack = old / "odg-treatment" / "2007-05.yaml"
    text = pack.read_text(encoding="utf-8")
    start, end = text.index("\nunnamed_condition:"), text.index("\nunnamed_procedure:")
    pack.write_text(text[:start] + text[end:], encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "imr_policy", "diff", str(old), str(new)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 1, out.stderr  # 1: the packs differ
    assert "unnamed condition (old): (none)" in out.stdout
    assert "for lumbar, lumbosacral, low back the rows lumbar-sprain" in out.stdout
    assert "[affects decisions]" in out.stdout


def test_a_row_left_out_on_purpose_is_said_so_and_not_warned(tmp_path: Path) -> None:
    from imr_policy.loading.validate import load_editions

    fixture = ROOT / "tests" / "invalid" / "policy" / "policy.unnamed-condition-row-left-out.yaml"
    text = fixture.read_text(encoding="utf-8")
    codes = [d.code for d in load_editions([fixture]).diagnostics]
    assert "policy.unnamed-condition-row-left-out" in codes
    said = tmp_path / "pack.yaml"
    said.write_text(
        text.replace(
            "- {regions: [cervical], rows: [neck]}", "- {regions: [cervical], rows: [neck], not_read: [neck-sprain]}"
        ),
        encoding="utf-8",
    )
    assert "policy.unnamed-condition-row-left-out" not in [d.code for d in load_editions([said]).diagnostics]
