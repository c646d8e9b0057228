"""Rule 7 (imr_policy.engine.combine): readings of what the records leave open, over the real packs and engine.

Severity: ODG's chiropractic wording has "Mild" and "Severe" only (`severity_scales:` in
policies/odg-treatment/2007-05.yaml), so an unstated severity is read as those two and never as
"moderate", which no rule of that guideline can decide.
"""

from __future__ import annotations

from typing import Any

import pytest

import imr_policy


@pytest.fixture(scope="module")
def engine() -> imr_policy.Engine:
    return imr_policy.load()


def _chiro(completed: int, quantity: int, **over: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "case_id": "chiro",
        "jurisdiction": "TX",
        "date_of_injury": "2008-01-10",
        "diagnoses": [{"description": "lumbar strain"}],
        "requests": [
            {
                "id": "r",
                "service": "chiropractic",
                "body_region": "lumbar",
                "quantity": quantity,
                "date_of_service": "2008-08-18",
            }
        ],
        "history": [{"service": "chiropractic", "completed": completed, "functional_improvement": "unknown"}],
        "utilization_review": [{"request": "r", "decision": "deny"}],
    }
    case.update(over)
    return case


def test_an_unstated_severity_is_read_only_as_the_severities_the_guideline_distinguishes(
    engine: imr_policy.Engine,
) -> None:
    item = engine.evaluate(_chiro(8, 12)).items[0]
    severities = {dict(r.assumed).get("severity") for r in item.readings}
    assert severities == {"mild", "severe"}
    assert "(ODG distinguishes mild and severe only)" in item.rationale
    # documented + severe allows 18 in all: 10 of 12; every other reading denies; every reading upholds
    assert {
        (dict(r.assumed)["functional_improvement"], dict(r.assumed)["severity"]): r.approved_quantity
        for r in item.readings
    } == {
        ("documented", "severe"): 10,
        ("documented", "mild"): 0,
        ("not_documented", "severe"): 0,
        ("not_documented", "mild"): 0,
    }
    assert (item.determination, item.imr_outcome) == ("pend", "upheld")
    assert set(item.missing_facts) == {"history[0].functional_improvement", "diagnoses[].severity"}


def test_a_request_past_every_readings_ceiling_is_decided(engine: imr_policy.Engine) -> None:
    item = engine.evaluate(_chiro(20, 6)).items[0]
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("non_certify", 0, "upheld")
    assert "It cannot change the outcome" in item.rationale


def test_a_stated_moderate_severity_still_pends(engine: imr_policy.Engine) -> None:
    """ "Moderate" in the records is not ODG's mild or severe; classifying it is the reviewer's call."""
    case = _chiro(8, 12, diagnoses=[{"description": "lumbar strain", "severity": "moderate"}])
    case["history"][0]["functional_improvement"] = "documented"
    item = engine.evaluate(case).items[0]
    assert item.determination == "pend"
    assert "diagnoses[].severity" in item.missing_facts


@pytest.mark.parametrize("severity", ["mild", "severe"])
@pytest.mark.parametrize("fi", ["documented", "not_documented"])
def test_stating_a_value_gives_the_outcome_of_its_reading(engine: imr_policy.Engine, severity: str, fi: str) -> None:
    open_ = engine.evaluate(_chiro(8, 12)).items[0]
    by_reading = {
        (dict(r.assumed)["functional_improvement"], dict(r.assumed)["severity"]): (
            r.determination,
            r.approved_quantity,
            r.imr_outcome,
        )
        for r in open_.readings
    }
    case = _chiro(8, 12, diagnoses=[{"description": "lumbar strain", "severity": severity}])
    case["history"][0]["functional_improvement"] = fi
    item = engine.evaluate(case).items[0]
    assert (item.determination, item.approved_quantity, item.imr_outcome) == by_reading[(fi, severity)]


def test_a_fact_no_consulted_guideline_tests_is_not_read(engine: imr_policy.Engine) -> None:
    """Physical therapy rules never test severity: an unstated severity adds no readings."""
    case = {
        "case_id": "pt",
        "jurisdiction": "TX",
        "date_of_injury": "2010-03-15",
        "diagnoses": [{"description": "low back pain with lumbar strain"}],
        "requests": [
            {
                "id": "r",
                "service": "physical_therapy",
                "body_region": "lumbar",
                "quantity": 6,
                "date_of_service": "2010-09-01",
            }
        ],
        "history": [{"service": "physical_therapy", "completed": 9, "functional_improvement": "unknown"}],
    }
    item = engine.evaluate(case).items[0]
    assert item.readings
    assert all("severity" not in dict(r.assumed) for r in item.readings)


# ---------------------------------------------------------------- prior counts the records do not state exactly


def _pt(history: list[dict[str, Any]], quantity: int, **over: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "case_id": "pt",
        "jurisdiction": "TX",
        "date_of_injury": "2010-03-15",
        "diagnoses": [{"description": "accepted lumbar sprain/strain"}],
        "requests": [
            {
                "id": "r",
                "service": "physical_therapy",
                "body_region": "lumbar",
                "quantity": quantity,
                "date_of_service": "2010-09-01",
            }
        ],
        "history": history,
        "utilization_review": [{"request": "r", "decision": "deny"}],
    }
    case.update(over)
    return case


def _entry(completed: int, **over: Any) -> dict[str, Any]:
    return {"service": "physical_therapy", "completed": completed, "functional_improvement": "unknown", **over}


def test_at_least_26_completed_past_every_ceiling_is_decided(engine: imr_policy.Engine) -> None:
    """'at least twenty-six' + 12 requested: ODG's lumbar sprain row allows 10 in all, whatever the count."""
    item = engine.evaluate(_pt([_entry(26, count="at_least")], 12)).items[0]
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("non_certify", 0, "upheld")
    assert "at least 26 already completed" in item.rationale
    assert "(the records say at least 26)" in item.rationale
    assert "if 26 or more were completed: not certified" in item.rationale
    assert item.unstated_facts == ("history[0].completed",)


def test_a_range_within_the_ceiling_is_decided_and_overturns(engine: imr_policy.Engine) -> None:
    """'4-6 sessions' + 4 requested: at most 10 in all under every count, so the denial is overturned."""
    item = engine.evaluate(_pt([_entry(4, count="at_least", completed_at_most=6)], 4)).items[0]
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("certify", 4, "overturned")
    assert [r.assumed for r in item.readings] == [
        (("history[0].completed", "4"),),
        (("history[0].completed", "5"),),
        (("history[0].completed", "6"),),
    ]
    # a certification is argued from the reading least favourable to it
    assert "the reading least favourable to the request (if 6 were completed)" in item.rationale


def test_a_least_count_is_never_a_decision_by_itself(engine: imr_policy.Engine) -> None:
    """At its least (4) the request would be certified; at 10 or more it would not: it pends and says so."""
    exact = engine.evaluate(_pt([_entry(4)], 2)).items[0]
    assert exact.determination == "certify"
    item = engine.evaluate(_pt([_entry(4, count="at_least")], 2)).items[0]
    assert (item.determination, item.imr_outcome) == ("pend", None)
    assert item.missing_facts == ("history[0].completed",)
    assert "Read at the least count the records allow (4 completed):" in item.rationale
    assert (
        "if 4 to 8 were completed: certified, 2 of 2; if 9 were completed: modified, 1 of 2 certified; "
        "if 10 or more were completed: not certified"
    ) in item.rationale


def test_an_unknown_count_is_read_from_zero(engine: imr_policy.Engine) -> None:
    item = engine.evaluate(_pt([_entry(0, count="unknown")], 6)).items[0]
    assert item.determination == "pend"
    assert "a number not stated already completed" in item.rationale
    assert "(the records give no number)" in item.rationale
    assert "if 0 to 4 were completed: certified, 6 of 6" in item.rationale


@pytest.mark.parametrize(
    ("entry", "code", "path"),
    [
        (_entry(4, completed_at_most=6), "case.unexpected-field", "$.history[0].completed_at_most"),
        (_entry(6, count="at_least", completed_at_most=4), "case.range", "$.history[0].completed_at_most"),
        (_entry(3, count="unknown"), "case.range", "$.history[0].completed"),
    ],
)
def test_inconsistent_counts_are_refused(entry: dict[str, Any], code: str, path: str) -> None:
    from imr_policy.loading.case import case_diagnostics

    found = [(d.code, d.path) for d in case_diagnostics(_pt([entry], 2))]
    assert (code, path) in found


def test_too_many_readings_pend_without_building_them(engine: imr_policy.Engine) -> None:
    """Four open counts of about ten readings each are 10,000 readings: counted first, refused, pended."""
    history = [_entry(0, count="unknown") for _ in range(4)]
    item = engine.evaluate(_pt(history, 6)).items[0]
    assert item.determination == "pend"
    assert "readings are too many to try one by one (at most 256)" in item.rationale
    assert item.missing_facts == tuple(f"history[{i}].completed" for i in range(4))
    assert item.readings == ()
