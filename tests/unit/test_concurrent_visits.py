"""Several requests of one service in one case (`requests[].concurrent_visits`): the same visits (the default,
each decided as made), separate visits (counted with those already given, so together they never pass a
guideline's number), or not stated (read both ways), with the real packs and both engines."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import imr_policy

ODG_LUMBAR_SPRAIN = 10  # ODG physical therapy, lumbar sprains and strains: 10 visits over 8 weeks (UNVERIFIED)


def _case(visits: str | None, completed: int = 2, quantities: tuple[int, ...] = (6, 6)) -> dict[str, Any]:
    """Texas, lumbar sprain (ICD-9-CM 847.2), physical therapy requests under dispute."""
    requests = []
    for i, q in enumerate(quantities):
        r: dict[str, Any] = {
            "id": "ab"[i] if i < 2 else f"r{i}",
            "service": "physical_therapy",
            "body_region": "lumbar",
            "quantity": q,
            "date_of_service": "2013-03-01",
        }
        if visits is not None:
            r["concurrent_visits"] = visits
        requests.append(r)
    return {
        "case_id": "c",
        "jurisdiction": "TX",
        "date_of_injury": "2012-01-01",
        "diagnoses": [{"description": "lumbar sprain", "code": "847.2"}],
        "requests": requests,
        "history": [{"service": "physical_therapy", "completed": completed, "functional_improvement": "documented"}],
        "utilization_review": [{"request": r["id"], "decision": "deny"} for r in requests],
    }


def test_by_default_each_request_is_decided_as_made(engine: imr_policy.Engine) -> None:
    for said in (None, "same"):
        items = engine.evaluate(_case(said)).items
        assert [(i.determination, i.approved_quantity) for i in items] == [("certify", 6), ("certify", 6)]
        assert all(i.unstated_facts == () for i in items)


def test_separate_visits_are_counted_with_those_already_given(engine: imr_policy.Engine) -> None:
    a, b = engine.evaluate(_case("separate")).items
    assert [(i.determination, i.approved_quantity, i.imr_outcome) for i in (a, b)] == [
        ("modify", 2, "upheld"),
        ("modify", 2, "upheld"),
    ]
    assert "2 already completed" in a.rationale  # the visits given, as the records give them
    assert "8 completed (with the 6 requested in request `b` of this case, separate visits" in a.rationale
    assert "request `a` of this case" in b.rationale


@pytest.mark.parametrize("completed", [0, 2, 4, 7, 10, 12])
@pytest.mark.parametrize("quantities", [(6, 6), (3, 9), (2, 2, 2), (12, 1)])
def test_separate_requests_together_never_pass_the_guidelines_number(
    engine: imr_policy.Engine, completed: int, quantities: tuple[int, ...]
) -> None:
    items = engine.evaluate(_case("separate", completed, quantities)).items
    approved = sum(i.approved_quantity for i in items if i.determination in ("certify", "modify"))
    assert approved <= max(0, ODG_LUMBAR_SPRAIN - completed)
    if completed + sum(quantities) <= ODG_LUMBAR_SPRAIN:  # within the number together: all of each
        assert [i.determination for i in items] == ["certify"] * len(quantities)


def test_unstated_is_read_both_ways(engine: imr_policy.Engine) -> None:
    a, _ = engine.evaluate(_case("unknown")).items
    assert a.determination == "pend"
    assert a.imr_outcome is None  # the same visits overturn the denial, separate visits uphold it
    assert a.missing_facts == ("requests[0].concurrent_visits",)
    assert "if request `b` is for the same visits: certified, 6 of 6" in a.rationale
    assert "if request `b` is for separate visits: modified, 2 of 6 certified" in a.rationale
    # where both readings agree, it is decided, and the rationale says the fact could not matter
    a, _ = engine.evaluate(_case("unknown", completed=10)).items
    assert (a.determination, a.imr_outcome) == ("non_certify", "upheld")
    assert a.unstated_facts == ("requests[0].concurrent_visits",)
    assert "It cannot change the outcome" in a.rationale


def test_stating_the_relation_gives_what_its_reading_said(engine: imr_policy.Engine) -> None:
    unknown = engine.evaluate(_case("unknown", completed=4)).items[0]
    for said in ("same", "separate"):
        stated = engine.evaluate(_case(said, completed=4)).items[0]
        reading = next(r for r in unknown.readings if ("concurrent_visits", said) in r.assumed)
        assert (stated.determination, stated.approved_quantity) == (reading.determination, reading.approved_quantity)


def test_the_order_of_the_requests_does_not_matter(engine: imr_policy.Engine) -> None:
    case = _case("separate", completed=3, quantities=(3, 9))
    flipped = copy.deepcopy(case)
    flipped["requests"].reverse()
    first = {i.request: (i.determination, i.approved_quantity) for i in engine.evaluate(case).items}
    again = {i.request: (i.determination, i.approved_quantity) for i in engine.evaluate(flipped).items}
    assert first == again


def test_the_statute_counts_separate_visits_too(engine: imr_policy.Engine) -> None:
    # California, Labor Code 4604.5: 24 physical therapy visits per injury; 20 given, two separate requests of 4
    case = _case("separate", completed=20, quantities=(4, 4))
    case |= {"jurisdiction": "CA", "date_of_injury": "2010-01-01"}
    for r in case["requests"]:
        r["date_of_service"] = "2011-03-01"
    items = engine.evaluate(case).items
    assert sum(i.approved_quantity for i in items) <= 4


def test_both_engines_give_the_same_decisions(engine: imr_policy.Engine, reference_engine: imr_policy.Engine) -> None:
    for case in (_case("separate"), _case("unknown"), _case("unknown", completed=10), _case(None)):
        assert engine.evaluate(case).to_dict() == reference_engine.evaluate(case).to_dict()


def _therapies(pt: int, ot: int, completed: int = 2, jurisdiction: str = "TX") -> dict[str, Any]:
    """A physical therapy and an occupational therapy request in one case (separate visits by nature)."""
    case = _case(None, completed=completed, quantities=(pt, ot))
    case["requests"][1] |= {"id": "ot", "service": "occupational_therapy"}
    case["requests"][0]["id"] = "pt"
    case["utilization_review"] = [{"request": "pt", "decision": "deny"}, {"request": "ot", "decision": "deny"}]
    if jurisdiction == "CA":
        case |= {"jurisdiction": "CA", "date_of_injury": "2010-01-01"}
        for r in case["requests"]:
            r["date_of_service"] = "2011-03-01"
    return case


@pytest.mark.parametrize(("pt", "ot", "completed"), [(6, 6, 2), (3, 3, 2), (12, 1, 0), (1, 1, 9), (4, 8, 0)])
def test_odg_counts_the_other_therapys_request_with_the_visits_given(
    engine: imr_policy.Engine, pt: int, ot: int, completed: int
) -> None:
    # ODG counts physical and occupational therapy together (counted_together:): a request of the other
    # service in the same case is other visits, counted as if given already
    items = engine.evaluate(_therapies(pt, ot, completed)).items
    approved = sum(i.approved_quantity for i in items if i.determination in ("certify", "modify"))
    assert approved <= max(0, ODG_LUMBAR_SPRAIN - completed)
    if completed + pt + ot <= ODG_LUMBAR_SPRAIN:
        assert [i.determination for i in items] == ["certify", "certify"]


def test_the_rationale_names_the_other_request_counted(engine: imr_policy.Engine) -> None:
    pt, ot = engine.evaluate(_therapies(6, 6)).items
    assert (pt.determination, pt.approved_quantity) == ("modify", 2)
    assert "with the 6 occupational therapy visits requested in request `ot` of this case" in pt.rationale
    assert "with the 6 physical therapy visits requested in request `pt` of this case" in ot.rationale


def test_a_statute_that_caps_each_service_apart_does_not_count_the_other(engine: imr_policy.Engine) -> None:
    # Labor Code 4604.5 caps physical and occupational therapy at 24 visits each: its count facts for the
    # physical therapy request are the physical therapy visits alone, whatever occupational therapy is asked for
    from imr_policy.engine.derive import as_counted_by, request_facts

    case = imr_policy.validate_case(_therapies(4, 12, completed=20, jurisdiction="CA"))
    facts = request_facts(case, case.requests[0])
    statute = next(e for e in engine.editions if e.tier == "statute")
    odg = next(e for e in engine.editions if e.key == "odg-treatment@2007-05")
    assert as_counted_by(facts, statute)[0]["completed"] == 20
    assert as_counted_by(facts, odg)[0]["completed"] == 32
