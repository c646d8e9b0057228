"""Services a guideline counts against one number (`counted_together:`): ODG's physical medicine tables count
physical and occupational therapy visits together, while the Labor Code's caps count each service on its own.
Real rule packs, both engines."""

from __future__ import annotations

from typing import Any

import pytest

import imr_policy
from imr_policy.loading.case import validate_case


def _case(history: list[dict[str, Any]], quantity: int = 12, jurisdiction: str = "TX") -> dict[str, Any]:
    """Occupational therapy for right shoulder impingement, in the shape of texasworker.com/mcch-decision/12063/."""
    return {
        "case_id": "c",
        "jurisdiction": jurisdiction,
        "date_of_injury": "2011-03-01",
        "diagnoses": [{"description": "right shoulder subacromial impingement"}],
        "requests": [
            {
                "id": "ot",
                "service": "occupational_therapy",
                "body_region": "shoulder",
                "quantity": quantity,
                "date_of_service": "2012-01-23",
            }
        ],
        "history": history,
        "utilization_review": [{"request": "ot", "decision": "deny"}],
    }


PT = {"service": "physical_therapy", "completed": 6, "functional_improvement": "unknown"}


@pytest.mark.parametrize("backend", ["durable", "reference"])
def test_the_physical_therapy_visits_count_against_the_occupational_therapy_request(backend: str) -> None:
    engine = imr_policy.load(engine=backend)  # type: ignore[arg-type]
    [item] = engine.evaluate(_case([PT])).items
    # the rotator cuff syndrome row: 10 visits; 6 physical therapy visits leave 4
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("modify", 4, "upheld")
    assert "6 completed (0 occupational therapy and 6 physical therapy visits, which the ODG counts together)" in (
        item.rationale
    )
    # without the earlier physical therapy, the row allows 10 of the 12
    [alone] = engine.evaluate(_case([])).items
    assert (alone.determination, alone.approved_quantity) == ("modify", 10)


def test_a_request_within_the_number_alone_is_not_certified_past_it(engine: imr_policy.Engine) -> None:
    # 6 OT asked for after 8 PT: 8 + 6 = 14 > 10, so 2 remain (counted apart, all 6 would be certified)
    [item] = engine.evaluate(_case([PT | {"completed": 8}], quantity=6)).items
    assert (item.determination, item.approved_quantity) == ("modify", 2)


def test_the_statutory_cap_counts_each_service_apart(engine: imr_policy.Engine) -> None:
    cap = next(e for e in engine.editions if e.key == "ca-labor-code-4604.5@2004")
    odg = next(e for e in engine.editions if e.key == "odg-treatment@2007-05")
    assert cap.counted_with("occupational_therapy") == ()
    assert odg.counted_with("occupational_therapy") == ("physical_therapy",)
    assert odg.counted_with("chiropractic") == ()
    case = validate_case(_case([PT | {"completed": 30}], jurisdiction="CA"))
    res = engine.edition_result(cap, case, 0)
    assert res.counted_with == ()  # 30 physical therapy visits do not reach the 24 occupational therapy visits


def test_a_count_of_the_other_service_the_records_do_not_state_is_read_at_every_count_that_matters(
    engine: imr_policy.Engine,
) -> None:
    unknown = PT | {"completed": 0, "count": "unknown"}
    [item] = engine.evaluate(_case([unknown])).items
    assert item.determination == "pend"
    assert item.missing_facts == ("history[0].completed",)
    assert item.imr_outcome == "upheld"  # 12 exceed the row's 10 at every count
    # a least count that already reaches the row decides, whatever the most
    [reached] = engine.evaluate(_case([PT | {"completed": 10, "count": "at_least"}])).items
    assert (reached.determination, reached.approved_quantity) == ("non_certify", 0)


def test_explain_says_which_edition_counted_which_visits(engine: imr_policy.Engine) -> None:
    from imr_policy.authoring.why import explain_case

    [item] = explain_case(engine, _case([PT])).items
    assert item.to_dict()["counted_together"] == [
        {"edition": "odg-treatment@2007-05", "completed": {"occupational_therapy": 0, "physical_therapy": 6}}
    ]
    # the rules' checks read the edition's count (6), not the request's own (0)
    reached = next(r for r in item.rules if r.rule == "physical-therapy.medical.10-over-8-weeks.reached")
    assert any(c.fact == "completed" and c.actual == 6 for c in reached.conditions)
    assert explain_case(engine, _case([])).items[0].counted_together == ()
