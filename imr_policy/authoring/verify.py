"""`imr-policy verify`: check the invariants the rule packs declare, on generated cases.

For every edition and each invariant it declares, Hypothesis searches cases focused on that edition
(its services, its dates, the values its conditions test) for one whose determination breaks the
invariant, and shrinks it to a small case that a policy author can paste into a test. Two checks
apply to every edition without being declared: an approval never exceeds the request, and a newer
edition of a guideline never approves more than the previous one for the same request unless the
newer edition declares `more_permissive_than_previous`.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, find, settings
from hypothesis import errors as hypothesis_errors
from hypothesis import strategies as st

from imr_policy.authoring.generate import Focus, cases
from imr_policy.engine.derive import as_counted_by, request_facts
from imr_policy.evaluate import Engine
from imr_policy.loading.case import validate_case
from imr_policy.model.errors import CaseError
from imr_policy.model.values import Edition, Invariant, ItemDetermination


@dataclass(frozen=True, slots=True)
class Check:
    """One property of one edition, and what the search found."""

    edition: str
    name: str
    description: str
    examples: int
    counterexample: dict[str, Any] | None = None
    detail: str = ""
    # for a comparison of two editions: the same request dated into the older edition's window
    baseline: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.counterexample is None


def _decided_by(item: ItemDetermination, edition: Edition) -> list[Any]:
    return [
        b
        for b in item.basis
        if b.guideline == edition.guideline_id
        and b.edition == edition.edition_id
        and (b.role == "decisive" or edition.tier == "statute")
    ]


def _violates_max_total(engine: Engine, edition: Edition, inv: Invariant) -> Callable[[dict[str, Any]], str | None]:
    limit = inv.max

    def check(data: dict[str, Any]) -> str | None:
        case = validate_case(data)
        determination = engine.evaluate(case)
        for request, item in zip(case.requests, determination.items, strict=True):
            if request.service not in inv.services:
                continue
            basis = _decided_by(item, edition)
            if not basis or any(b.exception in inv.unless for b in basis if b.exception):
                continue
            prior = as_counted_by(request_facts(case, request), edition)[0][inv.counts]  # as the edition counts
            if item.approved_quantity and prior + item.approved_quantity > limit:
                rules = ", ".join(
                    f"`{b.rule}`" + (f" (exception `{b.exception}`)" if b.exception else "") for b in basis
                )
                return (
                    f"{prior} {inv.counts} + {item.approved_quantity} approved = {prior + item.approved_quantity}, "
                    f"above the invariant's maximum of {limit}; decided by {rules}"
                )
        return None

    return check


def _violates_request_bound(engine: Engine) -> Callable[[dict[str, Any]], str | None]:
    def check(data: dict[str, Any]) -> str | None:
        case = validate_case(data)
        for request, item in zip(case.requests, engine.evaluate(case).items, strict=True):
            if not 0 <= item.approved_quantity <= request.quantity:
                return f"approved {item.approved_quantity} of {request.quantity} requested"
            if item.determination == "pend" and item.approved_quantity:
                return "a pended item approves visits"
        return None

    return check


def _violates_monotone(engine: Engine, older: Edition, newer: Edition) -> Callable[[dict[str, Any]], _Found | None]:
    """The same request dated into each edition's window and decided by `Engine.evaluate` (the
    jurisdiction's search sequence included, as `imr-policy evaluate` decides it): where each edition
    decides, the newer may not approve more. A violation is the detail, the case under the newer edition
    and the case under the older; both reproduce when evaluated."""

    def check(data: dict[str, Any]) -> _Found | None:
        if not older.addresses(data["requests"][0]["service"]):
            return None
        placed = [_placed(data, edition) for edition in (older, newer)]
        items = []
        for edition, case in zip((older, newer), placed, strict=True):
            try:
                item = engine.evaluate(case).items[0]
            except CaseError:
                return None  # the dates cannot be moved into this edition's window
            if item.determination == "pend" or not _decided_by(item, edition):
                return None  # this edition does not decide the request there: nothing to compare
            items.append(item)
        old, new = items
        if new.approved_quantity > old.approved_quantity:
            rules = [next(b.rule for b in _decided_by(i, e)) for i, e in ((new, newer), (old, older))]
            detail = (
                f"edition `{newer.edition_id}` approves {new.approved_quantity} where `{older.edition_id}` approves "
                f"{old.approved_quantity} (rules `{rules[0]}` vs `{rules[1]}`)"
            )
            return _Found(detail, placed[1], placed[0])
        return None

    return check


def _clamp(day: dt.date, window: tuple[dt.date | None, dt.date | None]) -> dt.date:
    start, end = window
    if start is not None and day < start:
        return start
    if end is not None and day > end:
        return end
    return day


def _placed(data: dict[str, Any], edition: Edition) -> dict[str, Any]:
    """`data` (a one-request case) with its dates moved into `edition`'s windows: every date shifted by
    the days that bring the date of service into the edition's window on it, then the request date (stated
    where the edition is selected by it) into its window on the request date."""
    window: tuple[dt.date | None, dt.date | None] = (None, None)
    if edition.selected_by == "date_of_service":
        window = (edition.effective_from, edition.effective_to)
    elif edition.within is not None and edition.within[0] == "date_of_service":
        window = (edition.within[1], edition.within[2])
    case = copy.deepcopy(data)
    request = case["requests"][0]
    day = dt.date.fromisoformat(request["date_of_service"])
    shift = _clamp(day, window) - day

    def moved(text: str) -> str:
        return (dt.date.fromisoformat(text) + shift).isoformat()

    request["date_of_service"] = moved(request["date_of_service"])
    case["date_of_injury"] = moved(case["date_of_injury"])
    if "postsurgical" in request:
        request["postsurgical"]["surgery_date"] = moved(request["postsurgical"]["surgery_date"])
    if "request_date" in request:
        request["request_date"] = moved(request["request_date"])
    bounds = edition.request_date_bounds()
    if bounds is not None:
        made = dt.date.fromisoformat(request.get("request_date", request["date_of_service"]))
        made = _clamp(made, bounds)
        request["request_date"] = made.isoformat()
        if made < dt.date.fromisoformat(case["date_of_injury"]):
            case["date_of_injury"] = made.isoformat()
    return case


@dataclass(frozen=True, slots=True)
class _Found:
    detail: str
    case: dict[str, Any]
    baseline: dict[str, Any] | None = None


def _on_the_case(violates: Callable[[dict[str, Any]], str | None]) -> Callable[[dict[str, Any]], _Found | None]:
    """A check of the generated case itself: the case found is the counterexample."""

    def check(data: dict[str, Any]) -> _Found | None:
        detail = violates(data)
        return None if detail is None else _Found(detail, data)

    return check


def _search(
    strategy: st.SearchStrategy[dict[str, Any]],
    violates: Callable[[dict[str, Any]], _Found | None],
    *,
    examples: int,
    seed: int | None,
) -> _Found | None:
    config = settings(
        max_examples=examples,
        database=None,
        derandomize=seed is None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    try:
        found = find(strategy, lambda c: violates(c) is not None, settings=config, random=_random(seed))
    except (hypothesis_errors.NoSuchExample, hypothesis_errors.Unsatisfiable):
        return None
    return violates(found)


def _check(edition: str, name: str, description: str, examples: int, found: _Found | None) -> Check:
    if found is None:
        return Check(edition, name, description, examples)
    return Check(edition, name, description, examples, found.case, found.detail, found.baseline)


def _deciding_places(engine: Engine, editions: Iterable[Edition]) -> list[str]:
    """The jurisdictions (with a profile) where every one of `editions` decides or caps, not only supports
    (ODG in Texas, the MTUS in California); where there are none, every jurisdiction of theirs."""
    editions = tuple(editions)
    profiles = {x.jurisdiction: x for x in engine.profiles}
    places = sorted({p for e in editions for p in e.jurisdictions if p in profiles})
    preferred = [
        p
        for p in places
        if all(
            p in edition.jurisdictions
            and any(
                step.role in ("decide", "cap")
                and step.tier == edition.tier
                and (step.families is None or edition.family in step.families)
                for step in profiles[p].steps
            )
            for edition in editions
        )
    ]
    return preferred or places


def _random(seed: int | None) -> Any:
    if seed is None:
        return None
    import random  # noqa: PLC0415 - only when a seed is given

    return random.Random(seed)


@dataclass(frozen=True, slots=True)
class _Planned:
    edition: str
    name: str
    description: str
    focus: Focus
    violates: Callable[[dict[str, Any]], _Found | None]


def _plan(engine: Engine, only: Iterable[str] | None) -> list[_Planned]:
    editions = sorted(engine.editions, key=lambda e: (e.guideline_id, e.effective_from))
    wanted = set(only) if only is not None else {e.key for e in editions}
    planned: list[_Planned] = []
    for edition in editions:
        if edition.key not in wanted:
            continue
        focus = Focus.of([edition], jurisdictions=_deciding_places(engine, [edition]))
        for inv in edition.invariants:
            violates = _on_the_case(_violates_max_total(engine, edition, inv))
            planned.append(_Planned(edition.key, inv.id, inv.description, focus, violates))
        planned.append(
            _Planned(
                edition.key,
                "approved-within-request",
                "approved quantity never above the request",
                focus,
                _on_the_case(_violates_request_bound(engine)),
            )
        )
    for older, newer in itertools.pairwise(editions):
        if older.guideline_id != newer.guideline_id or newer.more_permissive_than_previous or newer.key not in wanted:
            continue
        focus = Focus.of([older, newer], jurisdictions=_deciding_places(engine, [older, newer]))
        planned.append(
            _Planned(
                newer.key,
                f"not-more-permissive-than-{older.edition_id}",
                f"never approves more than edition `{older.edition_id}` for the same request",
                focus,
                _violates_monotone(engine, older, newer),
            )
        )
    return planned


def verify(
    engine: Engine,
    *,
    examples: int = 200,
    seed: int | None = None,
    only: Iterable[str] | None = None,
    on_start: Callable[[int, int, str], None] | None = None,
) -> Iterator[Check]:
    """Every declared invariant of every edition (or of the editions named `<guideline>@<edition>` in
    `only`), plus the built-in checks, as Checks. `on_start(done, total, label)`, when given, is called
    before each check is searched (a progress line)."""
    planned = _plan(engine, only)
    for done, check in enumerate(planned):
        if on_start is not None:
            on_start(done, len(planned), f"{check.edition}  {check.name}")
        found = _search(cases(check.focus), check.violates, examples=examples, seed=seed)
        yield _check(check.edition, check.name, check.description, examples, found)
