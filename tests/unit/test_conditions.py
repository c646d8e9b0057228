"""Diagnosis code systems and condition tables: inference, matching by code and by words, rows that
agree or disagree, and the durable_rules and reference engines agreeing on `condition`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import imr_policy
from imr_policy.engine.derive import request_facts
from imr_policy.language.conditions import code_systems, infer_code_system, match_rows, phrase_matches, tokens
from imr_policy.loading.case import validate_case

BEFORE, AFTER = dt.date(2015, 9, 30), dt.date(2015, 10, 1)


@pytest.mark.parametrize(
    ("code", "systems"),
    [
        ("847.2", ("ICD-9-CM",)),
        ("722.10", ("ICD-9-CM",)),
        ("E880.9", ("ICD-9-CM",)),
        ("V58.81", ("ICD-9-CM", "ICD-10-CM")),
        ("V58", ("ICD-9-CM", "ICD-10-CM")),
        ("V43.52XA", ("ICD-10-CM",)),
        ("V58.812", ("ICD-10-CM",)),
        ("E88.09", ("ICD-10-CM",)),
        ("M54.16", ("ICD-10-CM",)),
        ("296.222", ()),
        ("8472", ()),
    ],
)
def test_code_forms(code: str, systems: tuple[str, ...]) -> None:
    assert code_systems(code) == systems


def test_a_shared_form_is_read_by_the_dates_of_service() -> None:
    assert infer_code_system("V58.81", None, [BEFORE]) == "ICD-9-CM"
    assert infer_code_system("V58.81", None, [AFTER, AFTER]) == "ICD-10-CM"
    assert infer_code_system("V58.81", None, [BEFORE, AFTER]) is None
    assert infer_code_system("V58.81", "ICD-10-CM", [BEFORE]) == "ICD-10-CM"
    assert infer_code_system("847.2", None, [AFTER]) == "ICD-9-CM"  # a legacy code keeps its form's system
    assert infer_code_system("M54.16", "ICD-9-CM", [BEFORE]) is None


def test_words_fold_case_punctuation_and_plurals() -> None:
    assert tokens("Accepted LUMBAR sprain/strain") == {"accepted", "lumbar", "sprain", "strain"}
    assert phrase_matches("lumbar sprain", "accepted lumbar sprain/strain")
    assert phrase_matches("lumbar sprain", "Lumbar sprains and strains")
    assert phrase_matches("low back pain", "pain in the low back")
    assert not phrase_matches("lumbar sprain", "lumbar stenosis")
    assert not phrase_matches("/", "anything")


def _case(**over: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "case_id": "c",
        "jurisdiction": "TX",
        "date_of_injury": "2010-03-15",
        "diagnoses": [{"description": "accepted lumbar sprain/strain"}],
        "requests": [
            {
                "id": "r",
                "service": "physical_therapy",
                "body_region": "lumbar",
                "quantity": 9,
                "date_of_service": "2010-09-01",
            }
        ],
    }
    case.update(over)
    return case


def test_facts_keep_icd10_and_icd9_apart() -> None:
    valid = validate_case(
        _case(diagnoses=[{"description": "a", "code": "847.2"}, {"description": "b", "code": "M54.16"}])
    )
    facts = request_facts(valid, valid.requests[0])
    assert facts["diagnosis_codes"] == ("M54.16",)
    assert facts["icd9_codes"] == ("847.2",)
    assert valid.diagnoses[0].code_system == "ICD-9-CM"


def test_rows_by_code_then_words_and_by_region(engine: imr_policy.Engine) -> None:
    odg = next(e for e in engine.editions if e.key == "odg-treatment@2007-05")
    valid = validate_case(_case())
    [m] = match_rows(odg.conditions, valid, valid.requests[0])
    assert (m.row.id, m.matched_by, m.diagnosis) == ("lumbar-sprain", "words", "lumbar sprain")
    coded = validate_case(_case(diagnoses=[{"description": "whatever", "code": "724.2"}]))
    assert [x.row.id for x in match_rows(odg.conditions, coded, coded.requests[0])] == ["lumbago"]
    knee = validate_case(
        _case(
            requests=[
                {
                    "id": "r",
                    "service": "physical_therapy",
                    "body_region": "knee",
                    "quantity": 9,
                    "date_of_service": "2010-09-01",
                }
            ]
        )
    )
    assert match_rows(odg.conditions, knee, knee.requests[0]) == ()


@pytest.mark.parametrize("backend", ["durable", "reference"])
def test_engines_agree_on_condition(backend: str) -> None:
    engine = imr_policy.load(engine=backend)  # type: ignore[arg-type]
    item = engine.evaluate(
        _case(history=[{"service": "physical_therapy", "completed": 13, "functional_improvement": "unknown"}])
    ).items[0]
    assert (item.determination, item.approved_quantity) == ("non_certify", 0)
    assert item.basis[0].condition is not None and item.basis[0].condition.id == "lumbar-sprain"


def test_rows_that_disagree_pend_and_say_what_each_would_give(engine: imr_policy.Engine) -> None:
    item = engine.evaluate(
        _case(
            diagnoses=[{"description": "low back pain with lumbar strain"}],
            requests=[
                {
                    "id": "r",
                    "service": "physical_therapy",
                    "body_region": "lumbar",
                    "quantity": 3,
                    "date_of_service": "2010-09-01",
                }
            ],
            history=[{"service": "physical_therapy", "completed": 9, "functional_improvement": "documented"}],
        )
    ).items[0]
    assert item.determination == "pend"
    assert item.missing_facts == ("diagnoses[].code",)
    assert "Lumbar sprains and strains: certify 1 of 3; Lumbago; backache: non-certify" in item.rationale
    assert {t.condition for t in item.trace if t.guideline == "odg-treatment"} == {"lumbar-sprain", "lumbago"}
    # on the records as they are nothing decides; each reading of the rows decides under its own row
    assert not any(t.decided for t in item.trace if t.guideline == "odg-treatment" and t.reading is None)
    assert [(r.assumed, r.determination, r.approved_quantity) for r in item.readings] == [
        ((("condition:odg-treatment", "lumbar-sprain"),), "modify", 1),
        ((("condition:odg-treatment", "lumbago"),), "non_certify", 0),
    ]
    assert "under the row 'Lumbar sprains and strains': modified, 1 of 3 certified" in item.rationale
    assert item.imr_outcome is None  # no UR decision under dispute


def test_rows_that_disagree_still_give_the_imr_outcome_every_row_gives(engine: imr_policy.Engine) -> None:
    """Rule 7 over the rows: 9 completed + 6 requested exceed both rows (10 and 9), with different
    approved numbers (1 and 0): the determination waits for the code, the denial is upheld either way."""
    item = engine.evaluate(
        _case(
            diagnoses=[{"description": "low back pain with lumbar strain"}],
            requests=[
                {
                    "id": "r",
                    "service": "physical_therapy",
                    "body_region": "lumbar",
                    "quantity": 6,
                    "date_of_service": "2010-09-01",
                }
            ],
            history=[{"service": "physical_therapy", "completed": 9, "functional_improvement": "documented"}],
            utilization_review=[{"request": "r", "decision": "deny"}],
        )
    ).items[0]
    assert (item.determination, item.imr_outcome) == ("pend", "upheld")
    assert item.missing_facts == ("diagnoses[].code",)
    assert {(r.determination, r.approved_quantity) for r in item.readings} == {("modify", 1), ("non_certify", 0)}
    assert "every reading leads to the same IMR outcome" in item.rationale


def test_a_code_that_names_one_of_the_rows_never_changes_a_decided_outcome(engine: imr_policy.Engine) -> None:
    """Supplying the missing fact (a code selecting one row) gives one of the readings' outcomes."""
    base = {
        "requests": [
            {
                "id": "r",
                "service": "physical_therapy",
                "body_region": "lumbar",
                "quantity": 6,
                "date_of_service": "2010-09-01",
            }
        ],
        "history": [{"service": "physical_therapy", "completed": 9, "functional_improvement": "documented"}],
        "utilization_review": [{"request": "r", "decision": "deny"}],
    }
    open_ = engine.evaluate(_case(diagnoses=[{"description": "low back pain with lumbar strain"}], **base)).items[0]
    outcomes = {(r.determination, r.approved_quantity, r.imr_outcome) for r in open_.readings}
    for code in ("847.2", "724.2"):
        coded = engine.evaluate(
            _case(diagnoses=[{"description": "low back pain with lumbar strain", "code": code}], **base)
        )
        item = coded.items[0]
        assert (item.determination, item.approved_quantity, item.imr_outcome) in outcomes
        assert item.imr_outcome == open_.imr_outcome


def _rows_for(engine: imr_policy.Engine, description: str, region: str | None) -> list[str]:
    odg = next(e for e in engine.editions if e.key == "odg-treatment@2007-05")
    request: dict[str, Any] = {"id": "r", "service": "physical_therapy", "quantity": 9, "date_of_service": "2010-09-01"}
    if region is not None:
        request["body_region"] = region
    valid = validate_case(_case(diagnoses=[{"description": description}], requests=[request]))
    return [m.row.id for m in match_rows(odg.conditions, valid, valid.requests[0])]


def test_words_in_region_match_only_where_the_request_names_a_region_of_the_row(engine: imr_policy.Engine) -> None:
    # `disc degeneration` names the lumbar disc row only for a low-back request: without a region (or in
    # the neck) the same words name no row, since a cervical disc would be another condition
    assert _rows_for(engine, "mild disc degeneration at L4-5", "lumbar") == ["disc-without-myelopathy"]
    assert _rows_for(engine, "mild disc degeneration at L4-5", None) == []
    assert _rows_for(engine, "mild disc degeneration at C5-6", "cervical") == []
    # the row's ordinary words match with or without a region
    assert _rows_for(engine, "lumbar disc degeneration", None) == ["disc-without-myelopathy"]


def test_the_request_body_region_is_compared_ignoring_case_and_spacing(engine: imr_policy.Engine) -> None:
    # packs store regions casefolded; a case's "Lumbar" or "LOW  BACK" names the same region
    assert _rows_for(engine, "accepted lumbar sprain/strain", "Lumbar") == ["lumbar-sprain"]
    assert _rows_for(engine, "mild disc degeneration", "LOW  BACK") == ["disc-without-myelopathy"]
    assert _rows_for(engine, "accepted lumbar sprain/strain", "Knee") == []
    # a body region names a row's region when every word of the region is among its words
    assert _rows_for(engine, "medial meniscus tear", "Right knee") == ["meniscus-tear"]
    assert _rows_for(engine, "mild disc degeneration", "lumbar spine") == ["disc-without-myelopathy"]
    assert _rows_for(engine, "right subacromial bursitis", "left shoulder") == ["rotator-cuff-syndrome"]
    assert _rows_for(engine, "medial meniscus tear", "kneecap") == []


def test_general_words_name_every_row_that_lists_them_only_when_no_row_s_own_words_match(
    engine: imr_policy.Engine,
) -> None:
    # "rotator cuff" names three shoulder rows (general_words); a diagnosis that says no more names all three
    described = "status post right shoulder surgery (rotator cuff protocol)"
    assert _rows_for(engine, described, "shoulder") == [
        "shoulder-sprain",
        "rotator-cuff-syndrome",
        "rotator-cuff-rupture",
    ]
    # a row's own words win: "rotator cuff tear" is the rupture row, and the shared phrase is not tried
    assert _rows_for(engine, "right rotator cuff tear", "shoulder") == ["rotator-cuff-rupture"]
    # regions still apply to shared phrases: no shoulder row for a knee request
    assert _rows_for(engine, described, "knee") == []
    # the knee's meniscus rows share "meniscus"
    assert _rows_for(engine, "medial meniscus injury", "knee") == ["meniscus-tear", "meniscus-derangement"]


def test_a_match_by_general_words_is_marked_and_ranks_after_every_other_match(engine: imr_policy.Engine) -> None:
    odg = next(e for e in engine.editions if e.key == "odg-treatment@2007-05")
    request = {
        "id": "r",
        "service": "physical_therapy",
        "body_region": "shoulder",
        "quantity": 9,
        "date_of_service": "2010-09-01",
    }
    valid = validate_case(
        _case(
            diagnoses=[{"description": "rotator cuff problem"}, {"description": "right rotator cuff tear"}],
            requests=[request],
        )
    )
    matches = {m.row.id: m for m in match_rows(odg.conditions, valid, valid.requests[0])}
    # the second diagnosis names the rupture row by its own words; the first names all three by the shared phrase
    assert set(matches) == {"shoulder-sprain", "rotator-cuff-syndrome", "rotator-cuff-rupture"}
    assert not matches["rotator-cuff-rupture"].general  # the stronger match is kept for the row
    assert matches["rotator-cuff-rupture"].diagnosis == "rotator cuff tear"
    assert matches["shoulder-sprain"].general and matches["shoulder-sprain"].diagnosis == "rotator cuff"


def _rows_after_surgery(
    engine: imr_policy.Engine, description: str, procedure: str, region: str | None
) -> list[tuple[str, str]]:
    odg = next(e for e in engine.editions if e.key == "odg-treatment@2007-05")
    request: dict[str, Any] = {
        "id": "r",
        "service": "physical_therapy",
        "quantity": 9,
        "date_of_service": "2010-09-01",
        "postsurgical": {"procedure": procedure, "surgery_date": "2010-07-01"},
    }
    if region is not None:
        request["body_region"] = region
    valid = validate_case(_case(diagnoses=[{"description": description}], requests=[request]))
    return [(m.row.id, m.phrase_kind) for m in match_rows(odg.conditions, valid, valid.requests[0])]


def test_procedure_words_name_rows_only_when_no_diagnosis_names_one(engine: imr_policy.Engine) -> None:
    injury = "compensable injury to the left wrist and hand"
    procedure = "left wrist flexor tenosynovectomy and carpal tunnel release"
    assert _rows_after_surgery(engine, injury, procedure, "wrist") == [
        ("tenosynovitis", "procedure_words"),
        ("carpal-tunnel", "procedure_words"),
    ]
    # a diagnosis that names a row by its own words decides the row; the procedure is not read
    assert _rows_after_surgery(engine, "De Quervain tenosynovitis", procedure, "wrist") == [("tenosynovitis", "words")]
    # regions apply: the same words in a knee request name no row
    assert _rows_after_surgery(engine, injury, procedure, "knee") == []
    # a diagnosis matched only by shared (general) words gives way to the procedure's rows (no region: every
    # row is usable, and "rotator cuff" alone would name the three shoulder rows)
    assert len(_rows_after_surgery(engine, "rotator cuff", "shoulder surgery", None)) == 3
    assert _rows_after_surgery(engine, "rotator cuff", "left carpal tunnel release", None) == [
        ("carpal-tunnel", "procedure_words")
    ]
    # without a post-surgical procedure nothing is read from it
    assert _rows_for(engine, injury, "wrist") == []


def test_a_procedure_names_the_rows_of_its_entries(engine: imr_policy.Engine) -> None:
    """The rows' post-surgical entries, as the table names them, select the row when no diagnosis does."""
    none = "compensable injury"
    assert _rows_after_surgery(engine, none, "L4-5 fusion", "lumbar") == [
        ("disc-without-myelopathy", "procedure_words")
    ]
    assert _rows_after_surgery(engine, none, "ACDF C5-6", "cervical") == [("cervical-disc", "procedure_words")]
    # a laminectomy is an operation of two rows: both are read
    assert _rows_after_surgery(engine, none, "lumbar laminectomy", "lumbar") == [
        ("disc-without-myelopathy", "procedure_words"),
        ("spinal-stenosis", "procedure_words"),
    ]
    # one operation of two procedures names the row of each
    assert _rows_after_surgery(engine, none, "ACL reconstruction and partial medial meniscectomy", "knee") == [
        ("meniscus-tear", "procedure_words"),
        ("knee-sprain", "procedure_words"),
    ]
    # an operation the table names no entry for names no row
    assert _rows_after_surgery(engine, none, "total knee arthroplasty", "knee") == []


def test_without_a_body_region_the_procedures_own_region_words_narrow_the_rows(engine: imr_policy.Engine) -> None:
    none = "compensable injury"
    assert _rows_after_surgery(engine, none, "cervical fusion", None) == [("cervical-disc", "procedure_words")]
    assert _rows_after_surgery(engine, none, "lumbar fusion", None) == [("disc-without-myelopathy", "procedure_words")]
    # a procedure that names no region keeps every row it names
    assert _rows_after_surgery(engine, none, "fusion", None) == [
        ("disc-without-myelopathy", "procedure_words"),
        ("cervical-disc", "procedure_words"),
    ]
    # a body region, where given, is what selects (the procedure's words are not asked again)
    assert _rows_after_surgery(engine, none, "cervical fusion", "lumbar") == [
        ("disc-without-myelopathy", "procedure_words")
    ]


def test_a_rows_own_words_for_an_unnamed_entry(engine: imr_policy.Engine) -> None:
    """`unnamed_procedure.rows[].words`: a repair or a decompression for rotator cuff syndrome names the
    operation, not the approach (arthroscopic or open); for the other rows those words name a procedure."""
    from imr_policy.language.conditions import names_no_procedure

    odg = next(e for e in engine.editions if e.key == "odg-treatment@2007-05")
    assert odg.unnamed_procedure is not None
    rows = {r.id: r for r in odg.conditions}

    def unnamed(procedure: str, row: str) -> bool:
        request = {
            "id": "r",
            "service": "physical_therapy",
            "body_region": "shoulder",
            "quantity": 9,
            "date_of_service": "2010-09-01",
            "postsurgical": {"procedure": procedure, "surgery_date": "2010-07-01"},
        }
        valid = validate_case(_case(requests=[request]))
        return names_no_procedure(valid.requests[0], rows[row], odg.unnamed_procedure)

    assert unnamed("right rotator cuff repair", "rotator-cuff-syndrome")
    assert unnamed("subacromial decompression", "rotator-cuff-syndrome")
    assert not unnamed("arthroscopic subacromial decompression", "rotator-cuff-syndrome")  # the approach is named
    assert not unnamed("labral repair", "rotator-cuff-syndrome")  # another operation
    assert odg.unnamed_procedure.words_for("disc-without-myelopathy") == ()


def test_the_phrase_caches_are_bounded_and_never_answer_for_another_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reload brings new rows: the per-row caches of conditions.py stay within their bound, and a row
    loaded again (a new object with the same content) is matched exactly as the first was."""
    from imr_policy.language import conditions

    monkeypatch.setattr(conditions, "_ROW_PHRASES_MAX", 30)
    valid = validate_case(_case())
    answers = []
    for _ in range(4):  # four loads: four sets of row objects
        odg = next(e for e in imr_policy.load().editions if e.key == "odg-treatment@2007-05")
        answers.append([(m.row.id, m.diagnosis) for m in match_rows(odg.conditions, valid, valid.requests[0])])
        assert len(conditions._ROW_PHRASES) <= 30 and len(conditions._USABLE) <= 30
    assert answers == [[("lumbar-sprain", "lumbar sprain")]] * 4
