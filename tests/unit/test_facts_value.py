"""The facts between deriving and matching are one immutable, typed value (`Facts`, issue 10): every reading
and every row asked is a new value, and what reaches the matcher is always a `Facts`."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping
from typing import Any

import pytest

import imr_policy
from imr_policy.engine.derive import request_facts
from imr_policy.engine.reference import ReferenceMatcher
from imr_policy.evaluate import Engine
from imr_policy.loading.case import validate_case
from imr_policy.model.values import Edition, Facts
from tests.conftest import load_example


def _facts() -> Facts:
    case = validate_case(load_example("imr-2015-psych-example.yaml"))
    return request_facts(case, case.requests[1])


def test_derived_facts_are_a_facts_value_that_refuses_writes() -> None:
    facts = _facts()
    assert type(facts) is Facts and facts["service"] == "psychotherapy" and facts["completed"] == 16
    for write in (
        lambda: facts.__setitem__("completed", 0),
        lambda: facts.__delitem__("completed"),
        lambda: facts.update(completed=0),
        lambda: facts.pop("completed"),
        facts.popitem,
        lambda: facts.setdefault("x", 1),
        facts.clear,
    ):
        with pytest.raises(TypeError, match="facts are immutable"):
            write()
    with pytest.raises(TypeError, match="facts are immutable"):
        facts |= {"completed": 0}
    assert facts["completed"] == 16


def test_a_change_is_a_new_value() -> None:
    facts = _facts()
    changed = facts | {"completed": 0}
    assert type(changed) is Facts and changed["completed"] == 0 and facts["completed"] == 16
    assert copy.copy(facts) is facts and copy.deepcopy(facts) is facts
    again = pickle.loads(pickle.dumps(facts))
    assert type(again) is Facts and again == facts


def test_every_facts_value_the_matcher_sees_is_a_facts() -> None:
    """A pended case read under several readings, rows and counts: each is asked as a `Facts`."""
    seen: list[type] = []

    class Spy(ReferenceMatcher):
        def match(self, edition: Edition, facts: Mapping[str, Any]) -> tuple[str, ...]:
            seen.append(type(facts))
            return super().match(edition, facts)

    loaded = imr_policy.load()
    engine = Engine(loaded.editions, loaded.policy_set, Spy(loaded.editions), loaded.profiles)
    case = {
        "case_id": "facts",
        "jurisdiction": "TX",
        "date_of_injury": "2011-01-01",
        "diagnoses": [{"description": "status post right shoulder surgery (rotator cuff protocol)"}],
        "requests": [
            {
                "id": "pt",
                "service": "physical_therapy",
                "body_region": "shoulder",
                "quantity": 12,
                "date_of_service": "2012-05-01",
                "postsurgical": {"procedure": "right shoulder surgery", "surgery_date": "2012-02-01"},
            }
        ],
        "history": [
            {"service": "physical_therapy", "completed": 20, "count": "at_least", "functional_improvement": "unknown"}
        ],
        "utilization_review": [{"request": "pt", "decision": "deny"}],
    }
    engine.evaluate(case)
    assert len(seen) > 5 and set(seen) == {Facts}
