"""Words are put together only when read (issue 13, item 3), and read exactly as if they had been built.

A result's rationale, basis and why-not texts may hold a recipe (`imr_policy.model.deferred`) until first
read; whoever reads them, and however (attribute, equality, hash, repr, pickling, `dataclasses.replace`,
`to_dict`), gets the same values as from a result built with the words in hand.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

import imr_policy
from imr_policy import explain
from imr_policy.model import ItemDetermination, TraceEntry, _Deferred, deferred, evolve

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cases" / "imr-2015-psych-example.yaml"


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def engine() -> imr_policy.Engine:
    return imr_policy.load()


def _raw(obj: Any, name: str) -> Any:
    return type(obj).__dict__[name].raw(obj)


def test_the_words_wait_until_read(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    item = engine.evaluate(case).items[1]
    assert type(_raw(item, "rationale")) is _Deferred
    assert type(_raw(item, "basis")) is _Deferred
    not_applied = [t for t in item.trace if not t.applied]
    assert not_applied and all(type(_raw(t, "why_not")) is _Deferred for t in not_applied)
    # reading the decision does not put anything into words
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("non_certify", 0, "upheld")
    assert type(_raw(item, "rationale")) is _Deferred
    words = item.rationale
    assert isinstance(words, str) and words.startswith("Requested: ")
    assert _raw(item, "rationale") is words  # kept: the recipe ran once and is let go
    assert item.rationale is words


def test_read_late_or_at_once_the_same(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    lazy, other = engine.evaluate(case), engine.evaluate(case)
    built = other.to_dict()  # every word of `other` read now
    assert lazy == other and hash(lazy.items[0].trace[0]) == hash(other.items[0].trace[0])
    assert lazy.to_dict() == built
    assert repr(engine.evaluate(case)) == repr(other)


def test_copies_pickles_and_replacements_carry_the_words(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    expected = engine.evaluate(case)
    assert pickle.loads(pickle.dumps(engine.evaluate(case))) == expected
    assert copy.deepcopy(engine.evaluate(case)) == expected
    item = engine.evaluate(case).items[1]
    replaced = dataclasses.replace(item, service="other")
    assert replaced.rationale == expected.items[1].rationale and replaced.basis == expected.items[1].basis
    carried = evolve(engine.evaluate(case).items[1], service="other")
    assert type(_raw(carried, "rationale")) is _Deferred  # carried over, not computed
    assert carried.rationale == expected.items[1].rationale


def test_a_deferred_field_is_still_frozen(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    item = engine.evaluate(case).items[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.rationale = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.trace[0].why_not = "changed"  # type: ignore[misc]


def test_one_recipe_shared_runs_once() -> None:
    calls: list[int] = []

    def words() -> str:
        calls.append(1)
        return "it is not given"

    why = deferred(words)
    a = TraceEntry("g", "e", "r", "rule", False, why_not=why)
    b = evolve(a, kind="exception")
    assert (a.why_not, b.why_not, a.why_not) == ("it is not given",) * 3
    assert calls == [1]
    assert a == TraceEntry("g", "e", "r", "rule", False, why_not="it is not given")


def test_the_rationale_is_the_one_explain_writes(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    # the public dataclass takes plain values as before
    item = engine.evaluate(case).items[0]
    plain = ItemDetermination(**{f.name: getattr(item, f.name) for f in dataclasses.fields(item)})
    assert plain == item and plain.rationale == item.rationale
    assert explain.basis is not None and explain.rationale is not None
