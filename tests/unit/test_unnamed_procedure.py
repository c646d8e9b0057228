"""A post-surgical request that names the surgery but not the procedure (`unnamed_procedure:`): the request is
read under each post-surgical entry the pack lists for the row, with the real ODG pack and both engines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import imr_policy
from imr_policy.language.conditions import match_rows, names_no_procedure
from imr_policy.loading.case import validate_case

ROOT = Path(__file__).resolve().parents[2]
ODG = "odg-treatment@2007-05"


def _case(diagnosis: str, region: str, procedure: str, completed: int, quantity: int = 12) -> dict[str, Any]:
    """A Texas post-operative physical therapy request, in the shape of the hearing decisions of this suite."""
    return {
        "case_id": "c",
        "jurisdiction": "TX",
        "date_of_injury": "2012-01-01",
        "diagnoses": [{"description": diagnosis}],
        "requests": [
            {
                "id": "pt",
                "service": "physical_therapy",
                "body_region": region,
                "quantity": quantity,
                "date_of_service": "2013-03-01",
                "postsurgical": {"procedure": procedure, "surgery_date": "2012-11-01"},
            }
        ],
        "history": [
            {
                "service": "physical_therapy",
                "completed": completed,
                "postsurgical": True,
                "functional_improvement": "documented",
            }
        ],
        "utilization_review": [{"request": "pt", "decision": "deny"}],
    }


def _shoulder(completed: int, procedure: str = "right shoulder surgery") -> dict[str, Any]:
    return _case("right shoulder impingement", "right shoulder", procedure, completed)


def _disc(completed: int, procedure: str = "lumbar spine surgery") -> dict[str, Any]:
    return _case("lumbar disc herniation", "lumbar", procedure, completed)


def _item(engine: imr_policy.Engine, case: dict[str, Any]) -> imr_policy.model.values.ItemDetermination:
    [item] = engine.evaluate(case).items
    return item


def _odg(engine: imr_policy.Engine) -> imr_policy.model.values.Edition:
    return next(e for e in engine.editions if e.key == ODG)


def test_entries_that_agree_decide_and_say_the_judgment_they_rest_on(engine: imr_policy.Engine) -> None:
    # rotator cuff syndrome: arthroscopic 24 and open 30 post-surgical visits; 8 + 12 = 20 is within both
    item = _item(engine, _shoulder(8))
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("certify", 12, "overturned")
    assert item.unstated_facts == ("requests[0].postsurgical.procedure",)
    assert item.missing_facts == ()
    assert "if the procedure was arthroscopic: certified, 12 of 12" in item.rationale
    assert "if the procedure was open: certified, 12 of 12" in item.rationale
    assert "the records name the surgery ('right shoulder surgery'), not the procedure" in item.rationale
    assert "this policy set's judgment [UNVERIFIED]" in item.rationale
    assert item.provenance == "UNVERIFIED"
    [basis] = [b for b in item.basis if b.role == "decisive"]
    assert basis.condition is not None and basis.condition.procedure_read in ("arthroscopic", "open")
    assert basis.to_dict()["condition"]["procedure_read"] == basis.condition.procedure_read


def test_entries_that_differ_pend_and_say_what_each_leads_to(engine: imr_policy.Engine) -> None:
    # disc disorders: discectomy 16, arthroplasty 26, fusion 34; 10 completed + 12 requested
    item = _item(engine, _disc(10))
    assert item.determination == "pend"
    assert item.imr_outcome is None  # discectomy upholds the denial, the others overturn it
    assert "requests[0].postsurgical.procedure" in item.missing_facts
    assert "if the procedure was discectomy: modified, 6 of 12 certified" in item.rationale
    assert "if the procedure was fusion: certified, 12 of 12" in item.rationale


def test_past_every_entry_the_request_is_decided_whatever_the_procedure(engine: imr_policy.Engine) -> None:
    item = _item(engine, _disc(40))
    assert (item.determination, item.imr_outcome) == ("non_certify", "upheld")
    # the disc row's entries all lie below the visits already given; the shoulder's too
    assert _item(engine, _shoulder(30)).determination == "non_certify"


@pytest.mark.parametrize("completed", [0, 8, 12, 20, 23, 24, 25, 29, 30, 34, 40])
@pytest.mark.parametrize("build", [_shoulder, _disc])
def test_stating_any_listed_entry_never_changes_a_decided_outcome(
    engine: imr_policy.Engine, build: Any, completed: int
) -> None:
    unnamed = _item(engine, build(completed))
    odg = _odg(engine)
    assert odg.unnamed_procedure is not None
    row = "rotator-cuff-syndrome" if build is _shoulder else "disc-without-myelopathy"
    named = [
        _item(engine, build(completed, procedure=f"{p} surgery")) for p in odg.unnamed_procedure.procedures_for(row)
    ]
    outcomes = {(n.determination, n.approved_quantity, n.imr_outcome) for n in named}
    if unnamed.determination != "pend":
        assert outcomes == {(unnamed.determination, unnamed.approved_quantity, unnamed.imr_outcome)}
    else:
        assert len({o[:2] for o in outcomes}) > 1  # pends only where a stated entry would decide differently
    if unnamed.imr_outcome is not None:
        assert {o[2] for o in outcomes} == {unnamed.imr_outcome}


def test_a_named_procedure_the_row_has_no_entry_for_is_never_read_as_one(engine: imr_policy.Engine) -> None:
    odg = _odg(engine)
    assert odg.unnamed_procedure is not None
    valid = validate_case(_shoulder(8, procedure="right shoulder capsular release"))
    [match] = match_rows(odg.conditions, valid, valid.requests[0], odg.unnamed_condition)
    assert not names_no_procedure(valid.requests[0], match.row, odg.unnamed_procedure)
    item = _item(engine, _shoulder(8, procedure="right shoulder capsular release"))
    assert item.determination == "pend"
    assert "requests[0].postsurgical.procedure" not in item.unstated_facts
    # the row's own words, the body region's and the pack's words name no procedure
    for said in ("rotator cuff surgery", "Surgery to the RIGHT shoulder (impingement)", "status post operation"):
        valid = validate_case(_shoulder(8, procedure=said))
        assert names_no_procedure(valid.requests[0], match.row, odg.unnamed_procedure), said


def test_a_row_the_pack_does_not_list_is_not_read(engine: imr_policy.Engine) -> None:
    # spinal stenosis has no post-surgical entry in the table: "lumbar surgery" for it pends as before
    item = _item(engine, _case("lumbar spinal stenosis", "lumbar", "lumbar surgery", 10))
    assert item.determination == "pend"
    assert "requests[0].postsurgical.procedure" not in item.unstated_facts


def test_both_engines_give_the_same_decisions(engine: imr_policy.Engine, reference_engine: imr_policy.Engine) -> None:
    for case in (_shoulder(8), _shoulder(26), _disc(10), _disc(30), _disc(40)):
        assert engine.evaluate(case).to_dict() == reference_engine.evaluate(case).to_dict()


def test_the_compliance_diff_reports_the_reading_as_a_decision_change(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(ROOT / "policies", old)
    shutil.copytree(ROOT / "policies", new)
    pack = old / "odg-treatment" / "2007-05.yaml"
    text = pack.read_text(encoding="utf-8")
    start, end = text.index("\nunnamed_procedure:"), text.index("\ndecisions:\n")
    pack.write_text(text[:start] + text[end:], encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "imr_policy", "diff", str(old), str(new)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 1, out.stderr  # 1: the packs differ
    assert "unnamed procedure (old): (none)" in out.stdout
    assert (
        "for rotator-cuff-syndrome the entries arthroscopic, open (the row's words naming no entry: acromioplasty, "
        "decompression, impingement, repair, repaired, subacromial) [UNVERIFIED]"
    ) in " ".join(out.stdout.split())
    assert "[affects decisions]" in out.stdout
