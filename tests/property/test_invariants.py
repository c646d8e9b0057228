"""Invariants every shipped policy set must keep, checked on generated cases."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import imr_policy
from imr_policy.authoring import generate
from imr_policy.evaluate import Engine
from tests.property.strategies import cases, counts

ENGINE = imr_policy.load()
REFERENCE = imr_policy.load(engine="reference")
ODG = "odg-mental-illness-stress"
ODG_MAX = 20

# cases focused on what the shipped editions test: their services, first and last days, every limit
# minus one, at and plus one, the codes and text their conditions name (imr_policy.authoring.generate)
FOCUSED = generate.cases(generate.Focus.of(ENGINE.editions))


def completed(case: dict[str, Any], service: str) -> int:
    return sum(h["completed"] for h in case.get("history", []) if h["service"] == service)


@given(st.one_of(cases(jurisdiction="TX", service="psychotherapy"), cases()))
def test_odg_never_certifies_more_than_20_psychotherapy_sessions_without_the_severity_exception(
    case: dict[str, Any],
) -> None:
    det = ENGINE.evaluate(case)
    for request, item in zip(case["requests"], det.items, strict=True):
        odg = [b for b in item.basis if b.guideline == ODG and b.role == "decisive"]
        if request["service"] == "psychotherapy" and odg and not any(b.exception for b in odg):
            assert item.approved_quantity == 0 or completed(case, "psychotherapy") + item.approved_quantity <= ODG_MAX


@given(cases(jurisdiction="TX", service="psychotherapy"))
def test_separate_requests_together_never_pass_odgs_20_sessions_without_the_exception(case: dict[str, Any]) -> None:
    """Several psychotherapy requests of one case that are separate visits: together with the sessions given,
    what ODG certifies never passes 20 unless the severity exception decided."""
    for r in case["requests"]:
        r["concurrent_visits"] = "separate"
    items = ENGINE.evaluate(case).items
    decisive = [b for item in items for b in item.basis if b.role == "decisive"]
    if any(b.exception for b in decisive) or not all(b.guideline == ODG for b in decisive):
        return
    approved = sum(i.approved_quantity for i in items if i.determination in ("certify", "modify"))
    assert approved == 0 or completed(case, "psychotherapy") + approved <= ODG_MAX


@given(st.one_of(FOCUSED, cases()))
def test_approved_quantity_is_within_the_request_and_consistent(case: dict[str, Any]) -> None:
    det = ENGINE.evaluate(case)
    for request, item in zip(case["requests"], det.items, strict=True):
        assert 0 <= item.approved_quantity <= request["quantity"]
        assert item.medically_necessary is (item.determination == "certify")
        assert (item.determination == "certify") is (item.approved_quantity == request["quantity"])
        if item.determination == "pend":
            assert item.approved_quantity == 0
            if item.imr_outcome is not None:
                # only when every reading of the unstated facts decides, and on the same IMR outcome
                assert item.readings and {r.imr_outcome for r in item.readings} == {item.imr_outcome}
                assert all(r.determination != "pend" for r in item.readings)


def _supply(case: dict[str, Any], service: str, assumed: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    """The case with the records stating `assumed` where they were silent."""
    supplied = copy.deepcopy(case)
    for fact, value in assumed:
        if fact == "functional_improvement":
            for h in supplied.get("history", []):
                if h["service"] == service and h["functional_improvement"] == "unknown":
                    h["functional_improvement"] = value
        elif fact == "severity":
            if not supplied["diagnoses"]:
                supplied["diagnoses"] = [{"description": "the condition under review"}]
            for d in supplied["diagnoses"]:
                d["severity"] = value
        elif fact == "concurrent_visits":
            # stated alike on every request of the service, as the contract requires
            for r in supplied["requests"]:
                if r["service"] == service:
                    r["concurrent_visits"] = value
        elif fact.startswith("condition:"):
            # the row the reading names, stated as its guideline's first ICD-9-CM code for it
            [edition] = [e for e in ENGINE.editions if e.guideline_id == fact.split(":", 1)[1]][:1] or [None]
            row = next((r for r in edition.conditions if r.id == value), None) if edition else None
            if row is None or not row.icd9:
                return None  # a row named by words only: no code states it
            for d in supplied["diagnoses"]:
                d["code"] = row.icd9[0]
                d.pop("code_system", None)
        else:  # pragma: no cover - a new unstated fact needs its line here
            raise AssertionError(f"no way to supply {fact}")
    return supplied


@given(st.one_of(FOCUSED, cases()), st.data())
def test_supplying_an_unstated_fact_never_changes_a_decided_outcome(case: dict[str, Any], data: st.DataObject) -> None:
    det = ENGINE.evaluate(case)
    for index, item in enumerate(det.items):
        if not item.readings:
            continue
        reading = data.draw(st.sampled_from(item.readings))
        supplied = _supply(case, item.service, reading.assumed)
        if supplied is None:
            continue
        after = ENGINE.evaluate(supplied).items[index]
        # the reading predicted exactly what the supplied fact gives
        assert (after.determination, after.approved_quantity, after.imr_outcome) == (
            reading.determination,
            reading.approved_quantity,
            reading.imr_outcome,
        )
        if item.determination != "pend":
            assert (after.determination, after.approved_quantity) == (item.determination, item.approved_quantity)
        if item.imr_outcome is not None:
            assert after.imr_outcome == item.imr_outcome


@given(st.one_of(FOCUSED, cases()))
def test_durable_rules_and_the_reference_evaluator_agree(case: dict[str, Any]) -> None:
    assert ENGINE.evaluate(case).to_dict() == REFERENCE.evaluate(case).to_dict()


@given(cases(), st.randoms(use_true_random=False))
def test_order_of_requests_diagnoses_and_history_does_not_matter(case: dict[str, Any], rnd: random.Random) -> None:
    before = {i.request: i.to_dict() for i in ENGINE.evaluate(case).items}
    shuffled = copy.deepcopy(case)
    for key in ("requests", "diagnoses", "history"):
        rnd.shuffle(shuffled[key])
    after = {i.request: i.to_dict() for i in ENGINE.evaluate(shuffled).items}
    # missing_facts name history entries by index; compare everything else
    for item in (*before.values(), *after.values()):
        item["missing_facts"] = len(item["missing_facts"])
        item["unstated_facts"] = len(item.get("unstated_facts", ()))
        item["rationale"] = ""
    assert before == after


def _psych(prior: int, fi: str, quantity: int, severity: str, jurisdiction: str) -> dict[str, Any]:
    return {
        "case_id": "mono",
        "jurisdiction": jurisdiction,
        "date_of_injury": "2010-01-01",
        "diagnoses": [{"description": "d", "severity": severity}],
        "requests": [{"id": "r", "service": "psychotherapy", "quantity": quantity, "date_of_service": "2015-07-10"}],
        "history": [{"service": "psychotherapy", "completed": prior, "functional_improvement": fi}],
    }


@pytest.mark.parametrize("jurisdiction", ["CA", "TX"])
@given(counts, counts, st.integers(1, 30), st.sampled_from(["moderate", "severe"]))
def test_without_improvement_more_sessions_never_increase_the_approval(
    jurisdiction: str, a: int, b: int, quantity: int, severity: str
) -> None:
    low, high = sorted((a, b))

    def approved(prior: int) -> int:
        return (
            ENGINE.evaluate(_psych(prior, "not_documented", quantity, severity, jurisdiction))
            .items[0]
            .approved_quantity
        )

    assert approved(high) <= approved(low)


@pytest.mark.parametrize("jurisdiction", ["CA", "TX"])
@given(counts, st.integers(1, 30), st.sampled_from(["moderate", "severe"]))
def test_documenting_improvement_never_decreases_the_approval(
    jurisdiction: str, prior: int, quantity: int, severity: str
) -> None:
    def approved(fi: str) -> int:
        return ENGINE.evaluate(_psych(prior, fi, quantity, severity, jurisdiction)).items[0].approved_quantity

    assert approved("documented") >= approved("not_documented")


@given(cases())
def test_evaluation_is_deterministic(case: dict[str, Any]) -> None:
    assert ENGINE.evaluate(case).to_dict() == ENGINE.evaluate(copy.deepcopy(case)).to_dict()


BREAKERS = [
    lambda c: c["requests"][0].update(quantity=str(c["requests"][0]["quantity"])),
    lambda c: c["requests"][0].update(quantity=0),
    lambda c: c["requests"][0].update(service="massage"),
    lambda c: c.update(unexpected=True),
    lambda c: c["requests"][0].update(date_of_service="2015-13-01"),
    lambda c: c.update(date_of_injury=20120517),
    lambda c: c["requests"].append(dict(c["requests"][0])),
    lambda c: c.setdefault("utilization_review", []).append({"request": "nope", "decision": "deny"}),
    lambda c: c["requests"][0].update(quantity=float(c["requests"][0]["quantity"])),
]


@given(cases(), st.sampled_from(range(len(BREAKERS))))
def test_invalid_input_never_yields_a_determination(case: dict[str, Any], which: int) -> None:
    bad = copy.deepcopy(case)
    BREAKERS[which](bad)
    with pytest.raises(imr_policy.CaseError):
        ENGINE.evaluate(bad)


def test_engine_fixture_types() -> None:
    assert isinstance(ENGINE, Engine) and ENGINE.backend == "durable"


@given(st.lists(cases(), min_size=2, max_size=6))
def test_interleaved_cases_never_see_each_others_facts(batch: list[dict[str, Any]]) -> None:
    forward = [ENGINE.evaluate(c).to_dict() for c in batch]
    backward = [ENGINE.evaluate(c).to_dict() for c in reversed(batch)][::-1]
    isolated = [imr_policy.load(engine="reference").evaluate(c).to_dict() for c in batch[:1]] + [
        REFERENCE.evaluate(c).to_dict() for c in batch[1:]
    ]
    assert forward == backward == isolated


def _rows_cases() -> st.SearchStrategy[dict[str, Any]]:
    """Physical medicine under ODG with diagnoses in words that name two rows of one region's table (so
    the rows are read one by one, rule 7), counts around the rows' ceilings, any functional improvement."""
    odg = next(e for e in ENGINE.editions if e.guideline_id == "odg-treatment")
    regional = [r for r in odg.conditions if r.regions and r.words and r.icd9]
    pairs = [(a, b) for a in regional for b in regional if a.id < b.id and set(a.regions) & set(b.regions)]

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        a, b = draw(st.sampled_from(pairs))
        region = draw(st.sampled_from(sorted(set(a.regions) & set(b.regions))))
        described = f"{draw(st.sampled_from(a.words))} and {draw(st.sampled_from(b.words))}"
        improvement = draw(st.sampled_from(["documented", "not_documented", "unknown"]))
        return _therapy_case(draw, "rows", described, region, "physical_therapy", improvement)

    return build()


def _therapy_case(
    draw: st.DrawFn, case_id: str, described: str, region: str, prior_service: str, improvement: str
) -> dict[str, Any]:
    """A Texas physical or occupational therapy request (disputed) with one course of prior visits."""
    return {
        "case_id": case_id,
        "jurisdiction": "TX",
        "date_of_injury": "2010-03-15",
        "diagnoses": [{"description": described}],
        "requests": [
            {
                "id": "r",
                "service": draw(st.sampled_from(["physical_therapy", "occupational_therapy"])),
                "body_region": region,
                "quantity": draw(st.integers(1, 24)),
                "date_of_service": "2010-09-01",
            }
        ],
        "history": [
            {"service": prior_service, "completed": draw(st.integers(0, 30)), "functional_improvement": improvement}
        ],
        "utilization_review": [{"request": "r", "decision": "deny"}],
    }


@given(_rows_cases(), st.data())
def test_supplying_the_row_never_changes_a_decided_outcome(case: dict[str, Any], data: st.DataObject) -> None:
    """The same property over the rows of a table by condition: stating the code of any row the
    diagnoses name gives exactly what that row's reading said."""
    test_supplying_an_unstated_fact_never_changes_a_decided_outcome.hypothesis.inner_test(case, data)  # type: ignore[attr-defined]


@given(st.one_of(FOCUSED, cases()), st.data())
def test_a_count_read_at_every_value_agrees_with_every_exact_count(case: dict[str, Any], data: st.DataObject) -> None:
    """A prior count the records give as a least number (or a range) is read at every count that can matter
    (rule 7). Whatever the true count, a decided outcome and an IMR outcome stay what they were; and the
    readings are exact: a count between two neighbouring readings that agree gets what they got."""
    history = case.get("history", [])
    if not history:
        return
    i = data.draw(st.integers(0, len(history) - 1))
    least = history[i]["completed"]
    most = data.draw(st.one_of(st.none(), st.integers(least, least + 30)))
    inexact = copy.deepcopy(case)
    inexact["history"][i]["count"] = "at_least"
    if most is not None:
        inexact["history"][i]["completed_at_most"] = most
    det = ENGINE.evaluate(inexact)
    true = data.draw(st.integers(least, most if most is not None else least + 60))
    exact = copy.deepcopy(case)
    exact["history"][i]["completed"] = true
    after = ENGINE.evaluate(exact)
    name = f"history[{i}].completed"
    for item, got in zip(det.items, after.items, strict=True):
        if item.determination != "pend":
            assert (got.determination, got.approved_quantity) == (item.determination, item.approved_quantity)
        if item.imr_outcome is not None:
            assert got.imr_outcome == item.imr_outcome
        alone = [r for r in item.readings if [k for k, _ in r.assumed] == [name]]
        if not alone or len(alone) != len(item.readings):
            continue
        counts = [int(r.assumed[0][1]) for r in alone]
        below = max((j for j, n in enumerate(counts) if n <= true), default=None)
        above = min((j for j, n in enumerate(counts) if n >= true), default=None)
        if below is None:
            continue
        if above is None:  # past the last reading, which stands for every larger count
            above = below if most is None else None
        if above is None:
            continue
        lo_r, hi_r = alone[below], alone[above]
        if (lo_r.determination, lo_r.approved_quantity) == (hi_r.determination, hi_r.approved_quantity):
            assert (got.determination, got.approved_quantity) == (lo_r.determination, lo_r.approved_quantity)


def _unnamed_cases() -> st.SearchStrategy[dict[str, Any]]:
    """Physical medicine under ODG whose diagnosis names only the injured part of a region the table reads
    row by row (`unnamed_condition:`), counts around the rows' ceilings."""
    odg = next(e for e in ENGINE.editions if e.guideline_id == "odg-treatment")
    assert odg.unnamed_condition is not None
    regions = [r for g in odg.unnamed_condition.regions for r in g.regions]

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        region = draw(st.sampled_from(regions))
        words = draw(st.sampled_from(["injury", "compensable {} injury", "accepted injury to the {}", "{} injury"]))
        prior = draw(st.sampled_from(["physical_therapy", "occupational_therapy"]))
        return _therapy_case(draw, "unnamed", words.format(region), region, prior, "unknown")

    return build()


@given(_unnamed_cases(), st.data())
def test_naming_the_condition_never_changes_what_the_regions_rows_decided(
    case: dict[str, Any], data: st.DataObject
) -> None:
    """A request decided under every row a region's unnamed condition can be gives the same answer once any
    of those rows is stated by its code; one that pends says, per row, exactly what stating it gives."""
    item = ENGINE.evaluate(case).items[0]
    odg = next(e for e in ENGINE.editions if e.guideline_id == "odg-treatment")
    assert odg.unnamed_condition is not None
    region = case["requests"][0]["body_region"]
    rows = next(g.rows for g in odg.unnamed_condition.regions if region in g.regions)
    row = odg.condition_row(data.draw(st.sampled_from(rows)))
    supplied = copy.deepcopy(case)
    supplied["diagnoses"][0]["code"] = row.icd9[0]
    after = ENGINE.evaluate(supplied).items[0]
    if item.determination != "pend":
        assert (after.determination, after.approved_quantity) == (item.determination, item.approved_quantity)
    else:
        reading = next(r for r in item.readings if (f"condition:{odg.guideline_id}", row.id) in r.assumed)
        assert (after.determination, after.approved_quantity) == (reading.determination, reading.approved_quantity)
    if item.imr_outcome is not None:
        assert after.imr_outcome == item.imr_outcome


def _unnamed_surgery_cases() -> st.SearchStrategy[tuple[dict[str, Any], str]]:
    """Post-surgical physical medicine under ODG for a row whose entries the table reads one by one when the
    records name the surgery, not the procedure (`unnamed_procedure:`), counts around the entries' numbers."""
    odg = next(e for e in ENGINE.editions if e.guideline_id == "odg-treatment")
    assert odg.unnamed_procedure is not None
    listed = [r.row for r in odg.unnamed_procedure.rows]

    @st.composite
    def build(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
        row = odg.condition_row(draw(st.sampled_from(listed)))
        region = row.regions[0]
        case = _therapy_case(draw, "surgery", row.title, region, "physical_therapy", "unknown")
        case["diagnoses"][0]["code"] = row.icd9[0]
        case["history"][0]["postsurgical"] = True
        case["history"][0]["completed"] = draw(st.integers(0, 40))
        said = draw(st.sampled_from(["surgery", "{} surgery", "status post right {} surgery", "operation"]))
        case["requests"][0]["postsurgical"] = {"procedure": said.format(region), "surgery_date": "2010-06-01"}
        return case, row.id

    return build()


@given(_unnamed_surgery_cases(), st.data())
def test_naming_the_procedure_never_changes_what_the_entries_decided(
    built: tuple[dict[str, Any], str], data: st.DataObject
) -> None:
    """A request decided under every post-surgical entry of its row gives the same answer once any of those
    entries is named as the procedure; one that pends says, per entry, exactly what naming it gives."""
    case, row = built
    item = ENGINE.evaluate(case).items[0]
    odg = next(e for e in ENGINE.editions if e.guideline_id == "odg-treatment")
    assert odg.unnamed_procedure is not None
    procedure = data.draw(st.sampled_from(odg.unnamed_procedure.procedures_for(row)))
    named = copy.deepcopy(case)
    named["requests"][0]["postsurgical"]["procedure"] = procedure
    after = ENGINE.evaluate(named).items[0]
    # decided at once (the visits given reach every entry: the row's own rule says so), or read per entry
    assert item.unstated_facts in ((), ("requests[0].postsurgical.procedure",))
    if item.determination != "pend":
        assert (after.determination, after.approved_quantity) == (item.determination, item.approved_quantity)
    else:
        reading = next(r for r in item.readings if (f"procedure:{odg.guideline_id}", procedure) in r.assumed)
        assert (after.determination, after.approved_quantity) == (reading.determination, reading.approved_quantity)
    if item.imr_outcome is not None:
        assert after.imr_outcome == item.imr_outcome
