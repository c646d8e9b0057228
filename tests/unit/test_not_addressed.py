"""`decision: not_addressed`: a rule's cited silence for the cases it names. The evidence search moves on
to the next tier, as past a `silent_on` service, where `not_applicable` ("another guideline of this tier
governs") blocks it. Real packs: the CPMTG for a condition its physical medicine table does not name, the
Postsurgical Treatment Guidelines for a request that is not post-surgical."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import imr_policy
from tests.conftest import ROOT


def _case() -> dict[str, Any]:
    return {
        "case_id": "ca-lumbar-sprain",
        "jurisdiction": "CA",
        "date_of_injury": "2013-01-10",
        "diagnoses": [{"description": "lumbar sprain/strain"}],
        "requests": [
            {
                "id": "pt",
                "service": "physical_therapy",
                "body_region": "lumbar",
                "quantity": 12,
                "date_of_service": "2015-03-01",
            }
        ],
        "history": [{"service": "physical_therapy", "completed": 12, "functional_improvement": "unknown"}],
        "utilization_review": [{"request": "pt", "decision": "deny"}],
    }


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory) -> imr_policy.Engine:
    """The shipped packs, with the ACOEM 2nd Edition pack (only its chapter 15 is encoded) declaring the
    services that chapter is about, so that no MTUS guideline of the set is left unencoded for physical therapy."""
    root = tmp_path_factory.mktemp("pset") / "policies"
    shutil.copytree(ROOT / "policies", root)
    pack = root / "acoem-2nd-ed" / "2004-ch15.yaml"
    text = pack.read_text(encoding="utf-8")
    marker = "  tier: mtus\n  jurisdictions: [CA]\n"
    assert marker in text
    pack.write_text(
        text.replace(marker, marker + "  scope: [psychotherapy, office_visit, medication_management]\n", 1),
        encoding="utf-8",
    )
    return imr_policy.load(Path(root))


def test_shipped_packs_pend_on_the_mtus_guideline_whose_coverage_is_not_encoded(engine: imr_policy.Engine) -> None:
    item = engine.evaluate(_case()).items[0]
    assert item.determination == "pend"
    assert item.missing_facts == ()  # no code of another condition would let the CPMTG decide
    steps = {(s.guideline, s.result) for s in item.search}
    assert ("mtus-cpmtg", "not_addressed") in steps
    assert ("mtus-postsurgical", "not_addressed") in steps
    assert (
        "does not encode whether ACOEM Practice Guidelines, 2nd Ed. (2004) addresses physical therapy" in item.rationale
    )


def test_when_every_mtus_guideline_is_silent_the_next_tier_decides(scoped: imr_policy.Engine) -> None:
    item = scoped.evaluate(_case()).items[0]
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("non_certify", 0, "upheld")
    deciders = {b.guideline for b in item.basis if b.role == "decisive"}
    assert deciders == {"odg-treatment"}
    assert (
        "Chronic Pain Medical Treatment Guidelines (2009), 8 CCR 9792.24.2 does not address this request"
        in item.rationale
    )
    # the silence is cited: the rule's citation (section and provenance) is in the search step
    cpmtg = next(s for s in item.search if s.guideline == "mtus-cpmtg")
    assert cpmtg.result == "not_addressed" and "Physical Medicine" in cpmtg.note and "UNVERIFIED" in cpmtg.note


def test_a_condition_the_table_names_is_still_decided_by_the_mtus(scoped: imr_policy.Engine) -> None:
    case = _case()
    case["diagnoses"] = [{"description": "myalgia of the lumbar paraspinals"}]
    item = scoped.evaluate(case).items[0]
    assert item.determination == "non_certify"
    assert {b.guideline for b in item.basis if b.role == "decisive"} == {"mtus-cpmtg"}


def test_a_guideline_that_defers_keeps_the_request_in_its_tier(scoped: imr_policy.Engine) -> None:
    # post-surgical: the CPMTG defers to the Postsurgical Treatment Guidelines (not_applicable), whose answer (a
    # pend: no entry for a shoulder arthroplasty) is the MTUS's; ODG does not decide in the MTUS's place
    case = _case()
    case["diagnoses"] = [{"description": "right shoulder arthritis"}]
    case["requests"][0].update(
        {
            "body_region": "shoulder",
            "postsurgical": {"procedure": "total shoulder arthroplasty", "surgery_date": "2015-01-05"},
        }
    )
    case["history"] = [
        {"service": "physical_therapy", "completed": 12, "functional_improvement": "unknown", "postsurgical": True}
    ]
    item = scoped.evaluate(case).items[0]
    assert item.determination == "pend"
    results = {s.guideline: s.result for s in item.search}
    assert results["mtus-cpmtg"] == "not_applicable" and results["mtus-postsurgical"] == "pend"
    assert not any(b.guideline == "odg-treatment" and b.role == "decisive" for b in item.basis)
