"""Words are put together only when read (issue 13, item 3), and read exactly as if they had been built.

A result's rationale, basis and trace (with its why-not texts) may hold a recipe
(`imr_policy.model.values.deferred`) until first read; whoever reads them, and however (attribute, equality,
hash, repr, pickling, `dataclasses.replace`, `to_dict`), gets the same values as from a result built
with the words in hand.
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
from imr_policy.explain import rationale
from imr_policy.model.values import ItemDetermination, _Deferred, deferred, evolve, unread

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cases" / "imr-2015-psych-example.yaml"


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def engine() -> imr_policy.Engine:
    return imr_policy.load()


def test_the_words_wait_until_read(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    item = engine.evaluate(case).items[1]
    assert type(unread(item, "rationale")) is _Deferred
    assert type(unread(item, "basis")) is _Deferred
    assert type(unread(item, "trace")) is _Deferred
    # reading the decision does not put anything into words
    assert (item.determination, item.approved_quantity, item.imr_outcome) == ("non_certify", 0, "upheld")
    assert type(unread(item, "rationale")) is _Deferred
    words = item.rationale
    assert isinstance(words, str) and words.startswith("Requested: ")
    assert unread(item, "rationale") is words  # kept: the recipe ran once and is let go
    assert item.rationale is words
    assert any(t.why_not for t in item.trace if not t.applied)


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
    assert type(unread(carried, "rationale")) is _Deferred  # carried over, not computed
    assert carried.rationale == expected.items[1].rationale


def test_a_deferred_field_is_still_frozen(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    item = engine.evaluate(case).items[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.rationale = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.trace = ()  # type: ignore[misc]


def test_one_recipe_shared_runs_once(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    calls: list[int] = []

    def words() -> str:
        calls.append(1)
        return "the words"

    a = evolve(engine.evaluate(case).items[0], rationale=deferred(words))
    b = evolve(a, service="other")
    assert (a.rationale, b.rationale, a.rationale) == ("the words",) * 3
    assert calls == [1]
    assert a == dataclasses.replace(engine.evaluate(case).items[0], rationale="the words")


def test_the_rationale_is_the_one_explain_writes(engine: imr_policy.Engine, case: dict[str, Any]) -> None:
    # the public dataclass takes plain values as before
    item = engine.evaluate(case).items[0]
    plain = ItemDetermination(**{f.name: getattr(item, f.name) for f in dataclasses.fields(item)})
    assert plain == item and plain.rationale == item.rationale
    assert rationale.basis is not None and rationale.rationale is not None
