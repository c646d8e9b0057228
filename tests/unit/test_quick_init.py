"""`values._quick_init`: the faster `__init__` of the values built on every evaluation means the same."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from imr_policy.engine import combine
from imr_policy.model import values

QUICK = [
    cls
    for module in (values, combine)
    for cls in vars(module).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and getattr(cls.__init__, "quick", False)
]


def test_the_hot_values_have_it() -> None:
    names = {cls.__name__ for cls in QUICK}
    assert {"Request", "Case", "EditionResult", "ItemDetermination", "Determination", "Combined"} <= names


@pytest.mark.parametrize("cls", QUICK, ids=lambda c: c.__name__)
def test_same_parameters_and_defaults_as_the_dataclass(cls: type) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        assert (p.default is inspect.Parameter.empty) == (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        if f.default is not dataclasses.MISSING:
            assert p.default == f.default


def test_values_built_are_equal_frozen_and_defaults_are_fresh() -> None:
    a = values.SearchStep("mtus", "g", "e", "decided")
    assert a == values.SearchStep(tier="mtus", guideline="g", edition="e", result="decided", note="")
    assert a.note == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.note = "x"  # type: ignore[misc]
    info = values.PolicySetInfo("p", "h")
    d = values.Determination("c", "v", info)
    assert d.items == () and d == values.Determination("c", "v", info, ())
    with pytest.raises(TypeError):
        values.SearchStep("mtus", "g", "e")  # type: ignore[call-arg]


def test_a_deferred_field_still_defers() -> None:
    calls: list[int] = []

    def make() -> tuple[Any, ...]:
        calls.append(1)
        return ()

    e = values.ExceptionCheck(None, False, values.deferred(make))  # type: ignore[arg-type]
    assert calls == []
    assert e.why_not == () and calls == [1]
    assert e.why_not == () and calls == [1]


def test_it_refuses_what_it_cannot_copy() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithPost:
        a: int

        def __post_init__(self) -> None:
            pass

    with pytest.raises(TypeError):
        values._quick_init(WithPost)

    @dataclasses.dataclass(frozen=True, slots=True)
    class NotInit:
        a: int
        b: int = dataclasses.field(init=False, default=0)

    with pytest.raises(TypeError):
        values._quick_init(NotInit)
