"""Editions selected by the request date (the MTUS CPMTG of 2009 and of 2016), and what happens when the
records do not state it: every edition the open request date can select is consulted, and the guideline
decides only when they agree and cover every day the request can have been made on."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

import imr_policy
from imr_policy.loading.resources import policies_dir

CASE: dict[str, Any] = {
    "case_id": "request-date",
    "jurisdiction": "CA",
    "date_of_injury": "2014-03-02",
    "diagnoses": [{"code": "F32.1", "description": "Major depressive disorder", "severity": "moderate"}],
    "requests": [{"id": "cbt", "service": "psychotherapy", "quantity": 6, "date_of_service": "2016-09-01"}],
    "history": [{"service": "psychotherapy", "completed": 4, "functional_improvement": "documented"}],
    "utilization_review": [{"request": "cbt", "decision": "deny"}],
}


def _case(**request: Any) -> dict[str, Any]:
    out = copy.deepcopy(CASE)
    out["requests"][0].update(request)
    return out


def _packs(tmp_path: Path, edit: dict[str, tuple[str, str]]) -> Path:
    """A copy of the shipped packs with text replaced in the 2016 CPMTG edition."""
    packs = tmp_path / "packs"
    shutil.copytree(policies_dir(), packs, ignore=shutil.ignore_patterns("tests"))
    path = packs / "mtus-cpmtg" / "2016.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in edit.values():
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return packs


def _deciders(item: imr_policy.ItemDetermination) -> set[str]:
    return {f"{t.guideline}@{t.edition}" for t in item.trace if t.decided}


def test_the_request_date_selects_the_edition(engine: imr_policy.Engine) -> None:
    before = engine.evaluate(_case(request_date="2016-07-28")).items[0]
    after = engine.evaluate(_case(request_date="2016-07-29")).items[0]
    assert "mtus-cpmtg@2009" in _deciders(before) and "mtus-cpmtg@2016" not in _deciders(before)
    assert "mtus-cpmtg@2016" in _deciders(after) and "mtus-cpmtg@2009" not in _deciders(after)
    # the 2016 content is assumed from 2009: the same answer, with the weaker grade
    assert (before.determination, before.approved_quantity) == (after.determination, after.approved_quantity)
    assert before.provenance == "V-seed" and after.provenance == "UNVERIFIED"


def test_an_open_request_date_consults_both_editions_and_says_so(engine: imr_policy.Engine) -> None:
    item = engine.evaluate(CASE).items[0]
    assert (item.determination, item.approved_quantity) == ("certify", 6)
    assert {t.edition for t in item.trace if t.guideline == "mtus-cpmtg"} == {"2009", "2016"}
    assert "The records do not state the date of the request for authorization" in item.rationale
    assert item.provenance == "UNVERIFIED"  # either edition may govern: the weaker grade
    strict = engine.evaluate(CASE, min_provenance="V").items[0]
    assert strict.determination == "pend"


@pytest.mark.parametrize(
    ("bound", "why"),
    [
        ({"utilization_review": [{"request": "cbt", "decision": "deny", "decision_date": "2016-07-20"}]}, "UR date"),
        (
            {
                "requests": [{"id": "cbt", "service": "psychotherapy", "quantity": 6, "date_of_service": "2016-07-01"}],
                "utilization_review": [{"request": "cbt", "decision": "deny", "review_type": "prospective"}],
            },
            "prospective",
        ),
    ],
)
def test_what_the_case_states_bounds_the_request_date(
    engine: imr_policy.Engine, bound: dict[str, Any], why: str
) -> None:
    item = engine.evaluate({**copy.deepcopy(CASE), **bound}).items[0]
    assert "mtus-cpmtg@2009" in _deciders(item), why
    assert not any(t.edition == "2016" for t in item.trace if t.guideline == "mtus-cpmtg"), why
    assert item.provenance == "V-seed", why


def test_editions_that_disagree_pend_for_the_request_date(tmp_path: Path) -> None:
    packs = _packs(tmp_path, {"max": ("value: 10\n    range: [6, 10]", "value: 8\n    range: [6, 10]")})
    engine = imr_policy.load(packs, engine="reference")
    item = engine.evaluate(CASE).items[0]
    assert item.determination == "pend"
    assert item.missing_facts == ("requests[0].request_date",)
    assert "They do not give one answer" in item.rationale
    # stating the date decides it, either way
    assert engine.evaluate(_case(request_date="2016-07-28")).items[0].approved_quantity == 6
    assert engine.evaluate(_case(request_date="2016-07-29")).items[0].approved_quantity == 4


def test_days_that_select_no_edition_pend_for_the_request_date(tmp_path: Path) -> None:
    packs = _packs(tmp_path, {"from": ("from: 2016-07-29\n    to: null", "from: 2016-08-05\n    to: null")})
    engine = imr_policy.load(packs, engine="reference")
    item = engine.evaluate(CASE).items[0]
    assert item.determination == "pend"
    assert "requests[0].request_date" in item.missing_facts
    assert "none of them is in force" in item.rationale
    # a request date in the gap selects no CPMTG edition at all; one outside it decides
    assert engine.evaluate(_case(request_date="2016-08-05")).items[0].determination == "certify"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"request_date": "2014-01-01"}, "$.requests[0].request_date"),
        ("ur-before-request", "$.utilization_review[0].decision_date"),
        ("ur-before-injury", "$.utilization_review[0].decision_date"),
    ],
)
def test_impossible_dates_are_case_errors(change: Any, path: str) -> None:
    case = copy.deepcopy(CASE)
    if change == "ur-before-request":
        case["requests"][0]["request_date"] = "2016-08-01"
        case["utilization_review"][0]["decision_date"] = "2016-07-01"
    elif change == "ur-before-injury":
        case["utilization_review"][0]["decision_date"] = "2013-01-01"
    else:
        case["requests"][0].update(change)
    with pytest.raises(imr_policy.CaseError) as err:
        imr_policy.validate_case(case)
    assert [(d.code, d.path) for d in err.value.diagnostics] == [("case.date-order", path)]


def test_an_edition_selected_by_the_request_date_knows_its_dates_of_service(engine: imr_policy.Engine) -> None:
    """`Edition.in_force(day)` asks about a date of service: for the 2016 CPMTG that is its `within` window
    (2009-07-18 to 2017-11-30), not its window on the request date (from 2016-07-29)."""
    import datetime as dt

    editions = {e.key: e for e in engine.editions}
    later, earlier = editions["mtus-cpmtg@2016"], editions["mtus-cpmtg@2009"]
    for day, expected in ((dt.date(2009, 7, 17), False), (dt.date(2015, 7, 10), True), (dt.date(2017, 12, 1), False)):
        assert later.in_force(day) is expected, day
        assert earlier.in_force(day) is expected, day
