"""Every bundled example case decides as documented, and its output is a valid determination."""

from __future__ import annotations

import jsonschema
import pytest

import imr_policy
from imr_policy.loading.resources import schema
from tests.conftest import EXAMPLES, load_example

# file -> [(request, determination, approved_quantity, imr_outcome, missing_facts)]
EXPECTED = {
    "imr-2015-psych-example.yaml": [
        ("med-management", "modify", 1, "upheld", ()),
        ("cbt", "non_certify", 0, "upheld", ()),
    ],
    "ur-timeliness-friday-fax.yaml": [
        ("med-management", "modify", 1, "upheld", ()),
        ("cbt", "non_certify", 0, "upheld", ()),
    ],
    "certify-psychotherapy-initial-trial.yaml": [("cbt-trial", "certify", 4, None, ())],
    "modify-psychotherapy-with-improvement.yaml": [("cbt-continued", "modify", 4, "upheld", ())],
    "non-certify-psychotherapy-without-improvement.yaml": [("more-cbt", "non_certify", 0, "upheld", ())],
    "pend-psychotherapy-improvement-unknown.yaml": [
        # documented: 5 of 6; not documented: none; either way not medically necessary, so UR is upheld
        ("cbt-more", "pend", 0, "upheld", ("history[0].functional_improvement",))
    ],
    "overturned-psychotherapy-trial-denied.yaml": [("cbt-start", "certify", 3, "overturned", ())],
    "texas-odg-psychotherapy.yaml": [("cbt-tx", "certify", 6, None, ())],
    "pend-not-encoded-office-visit.yaml": [("follow-up", "pend", 0, None, ())],
    "physical-therapy-myalgia-2016.yaml": [("pt", "modify", 4, "upheld", ())],
    "physical-therapy-aquatic-radiculitis.yaml": [("aquatic", "modify", 6, None, ())],
    "occupational-therapy-statute-cap.yaml": [("ot", "modify", 2, "upheld", ())],
    "physical-therapy-postsurgical-meniscectomy.yaml": [("post-op-pt", "certify", 12, "overturned", ())],
    "chiropractic-manipulation-2016.yaml": [("chiro", "certify", 8, None, ())],
    "acupuncture-low-back-2019.yaml": [("acu", "modify", 6, "upheld", ())],
    "texas-office-visits.yaml": [("visits", "modify", 2, None, ())],
    "texas-psychotherapy-2019-severe.yaml": [("cbt", "certify", 10, None, ())],
}


def test_every_example_has_an_expectation() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_decides_as_documented(name: str, engine: imr_policy.Engine) -> None:
    det = engine.evaluate(load_example(name))
    actual = [(i.request, i.determination, i.approved_quantity, i.imr_outcome, i.missing_facts) for i in det.items]
    assert actual == EXPECTED[name]
    jsonschema.Draft202012Validator(schema("decision")).validate(det.to_dict())
    for item in det.items:
        assert item.medically_necessary is (item.determination == "certify")
        if item.determination != "pend":
            assert item.basis, "a decided item names the rules that decided it"
            assert any(b.role == "decisive" for b in item.basis)


def test_modify_notes_that_odg_would_allow_more(engine: imr_policy.Engine) -> None:
    item = engine.evaluate(load_example("modify-psychotherapy-with-improvement.yaml")).items[0]
    assert "10 - 6 = 4 remain" in item.rationale
    assert "The ODG would support 6 of 6" in item.rationale
    assert "presumption of correctness" in item.rationale


def test_a_service_the_packs_do_not_encode_pends_instead_of_falling_back(engine: imr_policy.Engine) -> None:
    item = engine.evaluate(load_example("pend-not-encoded-office-visit.yaml")).items[0]
    assert "does not encode whether" in item.rationale
    assert item.basis == ()
    assert {s.result for s in item.search if s.tier == "mtus"} == {"not_encoded"}
    # ODG does address office visits, but a lower tier never decides because the MTUS is not encoded
    assert ("odg-treatment", "not_consulted") in {(s.guideline, s.result) for s in item.search if s.tier == "non_mtus"}
    assert not [s for s in item.search if s.result in ("decided", "supporting")]


@pytest.mark.parametrize(
    ("jurisdiction", "day", "expected"),
    [
        ("CA", "2009-07-17", "No MTUS edition in this policy set is in force in CA on 2009-07-17"),
        ("TX", "2007-04-30", "No ODG edition in this policy set is in force in TX on 2007-04-30"),
    ],
)
def test_no_edition_in_force_pends_with_an_explanation(
    engine: imr_policy.Engine, jurisdiction: str, day: str, expected: str
) -> None:
    case = load_example("certify-psychotherapy-initial-trial.yaml")
    case["jurisdiction"] = jurisdiction
    case["date_of_injury"] = "2006-01-01"
    case["requests"][0]["date_of_service"] = day
    # a prospective review: the request was made before the service, so no later edition selected by the
    # request date (the 2016 CPMTG, for requests from 2016-07-29) can govern it
    case["utilization_review"] = [
        {"request": case["requests"][0]["id"], "decision": "deny", "review_type": "prospective"}
    ]
    item = engine.evaluate(case).items[0]
    assert (item.determination, item.approved_quantity, item.basis) == ("pend", 0, ())
    assert expected in item.rationale


@pytest.mark.parametrize("day", ["2017-12-01", "2019-04-18", "2021-11-23"])
def test_the_acoem_based_mtus_pends_and_never_falls_back_to_odg(engine: imr_policy.Engine, day: str) -> None:
    case = load_example("certify-psychotherapy-initial-trial.yaml")
    case["requests"][0]["date_of_service"] = day
    case["utilization_review"] = [{"request": case["requests"][0]["id"], "decision": "deny"}]
    item = engine.evaluate(case).items[0]
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("pend", 0, None)
    assert [(b.guideline, b.edition) for b in item.basis] == [("mtus-acoem", day)]
    assert "The MTUS does not decide the request." in item.rationale
    assert "the IMR outcome waits for a reviewer's determination" in item.rationale
    assert ("odg-mental-illness-stress", "not_consulted") in {(s.guideline, s.result) for s in item.search}


@pytest.mark.parametrize(
    ("day", "decides"), [("2009-07-17", False), ("2009-07-18", True), ("2017-11-30", True), ("2017-12-01", False)]
)
def test_cpmtg_edition_boundaries(engine: imr_policy.Engine, day: str, decides: bool) -> None:
    case = load_example("certify-psychotherapy-initial-trial.yaml")
    case["date_of_injury"] = "2008-01-01"
    case["requests"][0]["date_of_service"] = day
    item = engine.evaluate(case).items[0]
    assert (item.determination == "certify") is decides


def test_texas_uses_only_odg(engine: imr_policy.Engine) -> None:
    item = engine.evaluate(load_example("texas-odg-psychotherapy.yaml")).items[0]
    assert {s.guideline for s in item.search} == {"odg-mental-illness-stress", "odg-treatment"}
    assert [b.guideline for b in item.basis] == ["odg-mental-illness-stress"]


def test_ur_timeliness_example(engine: imr_policy.Engine) -> None:
    det = engine.evaluate(load_example("ur-timeliness-friday-fax.yaml"))
    assert det.items[0].ur_timeliness is None
    t = det.items[1].ur_timeliness
    assert t is not None and t.status == "timely"
    assert (t.received.lo.isoformat(), t.deadline.lo.isoformat()) == ("2015-07-06", "2015-07-13")
