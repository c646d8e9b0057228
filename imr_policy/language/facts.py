"""The facts a rule may test: the case contract's fields, per requested item, plus derived facts.

This registry is the single place that says which facts exist, their type, and which case field a
reviewer must supply when one is missing. Validation, the compiler, the reference evaluator, the
explanations and docs/policy-authoring.md all read it, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

SERVICES: tuple[str, ...] = (
    "psychotherapy",
    "medication_management",
    "office_visit",
    "physical_therapy",
    "occupational_therapy",
    "chiropractic",
    "acupuncture",
)
SEVERITY_ORDER: tuple[str, ...] = ("unspecified", "mild", "moderate", "severe")
# what a limit's unit measures: a visit and a session are one encounter each, so they count together;
# durations are measured in their own unit (a count is never compared with a duration)
UNIT_KINDS: dict[str, str] = {
    "visits": "count",
    "sessions": "count",
    "weeks": "weeks",
    "days": "days",
    "months": "months",
}
# what an integer fact measures, in the same terms (age is in years, which no limit unit is)
FACT_UNIT_KINDS: dict[str, str] = {
    "quantity": "count",
    "completed": "count",
    "total": "count",
    "completed_postsurgical": "count",
    "completed_toward_cap": "count",
    "months_since_surgery": "months",
    "age": "years",
}
FI_VALUES: tuple[str, ...] = ("none", "documented", "not_documented", "unknown")


class FactType(StrEnum):
    INTEGER = "integer"
    DATE = "date"
    ENUM = "enum"
    STRING = "string"
    BOOLEAN = "boolean"
    CODES = "codes"  # a set of ICD-10-CM (or ICD-9-CM) codes, tested by prefix


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    type: FactType
    description: str
    case_field: str  # what a reviewer must supply when the fact is absent
    values: tuple[str, ...] = ()
    always_present: bool = True
    # A fact the records may leave unstated: the value that means so, the values it can really take
    # (most favourable to the request first), and the words for each in a rationale. A request that
    # pends while such a fact is unstated is decided under every reading (imr_policy.engine.combine, rule 7).
    unstated: str | None = None
    readings: tuple[str, ...] = ()
    question: str = ""
    reading_words: tuple[tuple[str, str], ...] = ()


FACTS: dict[str, Fact] = {
    f.name: f
    for f in (
        Fact("service", FactType.ENUM, "the requested service", "requests[].service", SERVICES),
        Fact(
            "modality",
            FactType.STRING,
            "the requested modality, e.g. `cbt`",
            "requests[].modality",
            always_present=False,
        ),
        Fact(
            "body_region",
            FactType.STRING,
            "the body region, e.g. `lumbar`",
            "requests[].body_region",
            always_present=False,
        ),
        Fact(
            "frequency",
            FactType.STRING,
            "the requested frequency, e.g. `weekly`",
            "requests[].frequency",
            always_present=False,
        ),
        Fact("quantity", FactType.INTEGER, "sessions or visits requested", "requests[].quantity"),
        Fact("date_of_service", FactType.DATE, "the requested date of service", "requests[].date_of_service"),
        Fact(
            "request_date",
            FactType.DATE,
            "the date of the request for authorization (absent when the records do not state it)",
            "requests[].request_date",
            always_present=False,
        ),
        Fact("date_of_injury", FactType.DATE, "the date of injury", "date_of_injury"),
        Fact(
            "jurisdiction",
            FactType.STRING,
            "the two-letter code of the jurisdiction (one with a profile in the policy set)",
            "jurisdiction",
        ),
        Fact(
            "postsurgical",
            FactType.BOOLEAN,
            "the request is post-surgical physical medicine",
            "requests[].postsurgical",
        ),
        Fact(
            "employer_authorized_beyond_cap",
            FactType.BOOLEAN,
            "the employer authorized visits beyond the statutory cap in writing",
            "requests[].employer_authorized_beyond_cap",
        ),
        Fact("age", FactType.INTEGER, "the claimant's age", "claimant.age", always_present=False),
        Fact(
            "sex",
            FactType.ENUM,
            "the claimant's sex",
            "claimant.sex",
            ("female", "male", "other", "unknown"),
            always_present=False,
        ),
        Fact(
            "diagnosis_codes",
            FactType.CODES,
            "the ICD-10-CM codes of all diagnoses (absent when no diagnosis has a code); test with `prefix_in`",
            "diagnoses[].code",
            always_present=False,
        ),
        Fact(
            "icd9_codes",
            FactType.CODES,
            "the ICD-9-CM codes of all diagnoses (absent when no diagnosis has one); test with `prefix_in`",
            "diagnoses[].code",
            always_present=False,
        ),
        Fact(
            "condition",
            FactType.ENUM,
            "derived, per edition: the id of the row of the edition's `conditions:` table that the diagnoses "
            "match (absent when none does; values: the edition's row ids)",
            "diagnoses[].code",
            always_present=False,
        ),
        Fact(
            "postsurgical_procedure",
            FactType.STRING,
            "the post-surgical request's procedure (free text); test with `contains_any`",
            "requests[].postsurgical.procedure",
            always_present=False,
        ),
        # derived facts
        Fact(
            "months_since_surgery",
            FactType.INTEGER,
            "derived: months from requests[].postsurgical.surgery_date to the date of service, a begun month "
            "counting as one (6 on the six-month anniversary, 7 the day after)",
            "requests[].postsurgical.surgery_date",
            always_present=False,
        ),
        Fact(
            "completed",
            FactType.INTEGER,
            "derived: sessions of the same service already received (sum of history[].completed)",
            "history[].completed",
        ),
        Fact("total", FactType.INTEGER, "derived: completed + quantity", "history[].completed"),
        Fact(
            "completed_postsurgical",
            FactType.INTEGER,
            "derived: visits of the same service marked `postsurgical` in history[]",
            "history[].postsurgical",
        ),
        Fact(
            "completed_toward_cap",
            FactType.INTEGER,
            "derived: completed minus completed_postsurgical (the visits a statutory cap counts)",
            "history[].completed",
        ),
        Fact(
            "functional_improvement",
            FactType.ENUM,
            "derived from history[] of the same service: `none` without history, `documented` when every "
            "entry documents it, `not_documented` when any entry says so, else `unknown`",
            "history[].functional_improvement",
            FI_VALUES,
            unstated="unknown",
            readings=("documented", "not_documented"),
            question="whether objective functional improvement from the prior treatment is documented",
            reading_words=(
                ("documented", "if objective functional improvement is documented"),
                ("not_documented", "if it is not documented"),
            ),
        ),
        Fact(
            "severity",
            FactType.ENUM,
            "derived: the highest diagnoses[].severity (`unspecified` without diagnoses)",
            "diagnoses[].severity",
            SEVERITY_ORDER,
            unstated="unspecified",
            readings=("severe", "moderate", "mild"),
            question="the severity of the condition",
            reading_words=(
                ("severe", "if the condition is severe"),
                ("moderate", "if moderate"),
                ("mild", "if mild"),
            ),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Operator:
    """What one condition operator means, in one place: its kind, the fact type it needs, and its words.

    `kind`: `compare` (eq, ne: any fact), `ordered` (integers and dates), `set` (a list of values),
    `presence` (no operand), `predicate` (text and code tests, computed in Python: the engine sees one
    boolean per condition, so durable_rules never matches patterns on free text).
    `words`: the comparison as a rationale states it ("at most"); `brief`: as a one-line condition
    summary does ("" for eq, "not" for ne).
    """

    name: str
    kind: Literal["compare", "ordered", "set", "presence", "predicate"]
    words: str
    brief: str
    fact_type: FactType | None = None  # the one fact type a predicate accepts


OPERATORS: dict[str, Operator] = {
    o.name: o
    for o in (
        Operator("eq", "compare", "equal to", ""),
        Operator("ne", "compare", "different from", "not"),
        Operator("lt", "ordered", "below", "below"),
        Operator("lte", "ordered", "at most", "at most"),
        Operator("gt", "ordered", "above", "above"),
        Operator("gte", "ordered", "at least", "at least"),
        Operator("in", "set", "one of", "one of"),
        Operator("not_in", "set", "outside", "none of"),
        Operator("present", "presence", "given", "given"),
        Operator("absent", "presence", "not given", "not given"),
        Operator("prefix_in", "predicate", "starting with one of", "starting with one of", FactType.CODES),
        Operator("contains_any", "predicate", "containing one of", "mentioning", FactType.STRING),
    )
}


def _ops(kind: str) -> frozenset[str]:
    return frozenset(o.name for o in OPERATORS.values() if o.kind == kind)


ORDERED_OPS = _ops("ordered")
SET_OPS = _ops("set")
PRESENCE_OPS = _ops("presence")
PREDICATE_OPS = _ops("predicate")


UNSTATED: tuple[Fact, ...] = tuple(f for f in FACTS.values() if f.unstated is not None)
