"""One registry says what each condition operator is (imr_policy.language.facts.OPERATORS); the schema, the
compiler for durable_rules, the reference evaluator and every explanation are tested against it, so none
of them can know an operator the others do not."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from imr_policy.authoring import lint, why
from imr_policy.engine import compile as compiler
from imr_policy.engine.reference import check, holds
from imr_policy.explain import rationale
from imr_policy.language.facts import FACTS, OPERATORS
from imr_policy.model.values import Condition
from tests.conftest import ROOT

# one condition per operator, on a fact of the type the operator needs, with a value that holds
_CASES: dict[str, tuple[Condition, dict[str, Any]]] = {
    "eq": (Condition("completed", "eq", 3), {"completed": 3}),
    "ne": (Condition("completed", "ne", 4), {"completed": 3}),
    "lt": (Condition("completed", "lt", 4), {"completed": 3}),
    "lte": (Condition("completed", "lte", 3), {"completed": 3}),
    "gt": (Condition("completed", "gt", 2), {"completed": 3}),
    "gte": (Condition("date_of_service", "gte", dt.date(2015, 1, 1)), {"date_of_service": dt.date(2015, 7, 10)}),
    "in": (Condition("severity", "in", ("moderate", "severe")), {"severity": "severe"}),
    "not_in": (Condition("severity", "not_in", ("mild",)), {"severity": "severe"}),
    "present": (Condition("body_region", "present"), {"body_region": "lumbar"}),
    "absent": (Condition("modality", "absent"), {"modality": None}),
    "prefix_in": (Condition("diagnosis_codes", "prefix_in", ("F32",)), {"diagnosis_codes": ("F32.1",)}),
    "contains_any": (
        Condition("postsurgical_procedure", "contains_any", ("fusion",)),
        {"postsurgical_procedure": "L4-5 fusion"},
    ),
}


class _NoLimits:
    def limit(self, limit_id: str) -> Any:  # pragma: no cover - no condition here names a limit
        raise KeyError(limit_id)


def test_the_schema_enumerates_exactly_the_registry() -> None:
    schema = json.loads((ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8"))
    assert schema["$defs"]["condition"]["properties"]["op"]["enum"] == list(OPERATORS)


def test_every_operator_is_exercised_here() -> None:
    assert set(_CASES) == set(OPERATORS)
    for name, (cond, _) in _CASES.items():
        wanted = OPERATORS[name].fact_type
        if wanted is not None:  # a predicate is exercised on a fact of the one type it accepts
            assert FACTS[cond.fact].type is wanted, name


@pytest.mark.parametrize("name", list(OPERATORS))
def test_the_reference_evaluator_and_the_compiler_know_every_operator(name: str) -> None:
    cond, facts = _CASES[name]
    edition: Any = _NoLimits()
    assert holds(cond, facts, edition) is True
    compiled = compiler._condition(cond, edition)
    assert isinstance(compiled, dict) and compiled


@pytest.mark.parametrize("name", list(OPERATORS))
def test_the_compiled_reference_check_is_holds(name: str) -> None:
    cond, facts = _CASES[name]
    edition: Any = _NoLimits()
    fact = cond.fact
    other_values = (None, 0, 3, 4, 7, dt.date(2014, 1, 1), dt.date(2015, 7, 10), "mild", "severe", ("M54",), "spine")
    variants = [facts, {}, *({fact: v} for v in other_values)]
    for variant in variants:
        try:
            expected = holds(cond, variant, edition)
        except TypeError:
            continue  # a value of another type: the case contract never lets it reach either
        assert check(cond, edition)(variant) is expected, (name, variant)


@pytest.mark.parametrize("name", list(OPERATORS))
def test_every_explanation_has_words_for_every_operator(name: str) -> None:
    op = OPERATORS[name]
    assert rationale._OPWORDS[name] == op.words and op.words
    if op.kind in ("compare", "ordered", "set"):
        assert lint._WORDS[name] == op.brief
        assert why._HELD[name] == (f"{op.brief} " if op.brief else "")


def test_the_schema_offers_every_fact_and_explains_every_operator() -> None:
    """Issue 11: an editor with yaml-language-server completes `fact:` from the registry (examples) and
    shows what each fact and operator means; the lists cannot drift from imr_policy.language.facts."""
    from imr_policy.language.facts import FACTS

    schema = json.loads((ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8"))
    props = schema["$defs"]["condition"]["properties"]
    assert props["fact"]["examples"] == list(FACTS)
    for name in FACTS:
        assert f"- `{name}` (" in props["fact"]["markdownDescription"]
    assert len(props["op"]["markdownEnumDescriptions"]) == len(props["op"]["enum"])
    for name, text in zip(props["op"]["enum"], props["op"]["markdownEnumDescriptions"], strict=True):
        assert OPERATORS[name].words in text
