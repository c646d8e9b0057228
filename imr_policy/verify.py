"""`imr-policy verify`: check the invariants the rule packs declare, on generated cases.

For every edition and each invariant it declares, Hypothesis searches cases focused on that edition
(its services, its dates, the values its conditions test) for one whose determination breaks the
invariant, and shrinks it to a small case that a policy author can paste into a test. Two checks
apply to every edition without being declared: an approval never exceeds the request, and a newer
edition of a guideline never approves more than the previous one for the same request unless the
newer edition declares `more_permissive_than_previous`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, find, settings
from hypothesis import errors as hypothesis_errors
from hypothesis import strategies as st

from imr_policy.case import validate_case
from imr_policy.derive import request_facts
from imr_policy.evaluate import Engine
from imr_policy.generate import Focus, cases
from imr_policy.model import Edition, Invariant, ItemDetermination


@dataclass(frozen=True, slots=True)
class Check:
    """One property of one edition, and what the search found."""

    edition: str
    name: str
    description: str
    examples: int
    counterexample: dict[str, Any] | None = None
    detail: str = ""

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
            prior = request_facts(case, request)[inv.counts]
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


def _violates_monotone(engine: Engine, older: Edition, newer: Edition) -> Callable[[dict[str, Any]], str | None]:
    """The same request decided by each edition alone: the newer may not approve more."""

    def check(data: dict[str, Any]) -> str | None:
        case = validate_case(data)
        request = case.requests[0]
        if not older.addresses(request.service):
            return None
        results = []
        for edition in (older, newer):
            moved = dataclasses.replace(request, date_of_service=_inside(edition, request.date_of_service))
            shifted = dataclasses.replace(case, requests=(moved, *case.requests[1:]))
            results.append(engine.edition_result(edition, shifted, 0))
        old, new = results
        if old.status == new.status == "decided" and new.approved > old.approved and old.kind != "pend":
            return (
                f"edition `{newer.edition_id}` approves {new.approved} where `{older.edition_id}` approves "
                f"{old.approved} (rules `{new.rule.id if new.rule else '-'}` vs `{old.rule.id if old.rule else '-'}`)"
            )
        return None

    return check


def _inside(edition: Edition, day: dt.date) -> dt.date:
    if day < edition.effective_from:
        return edition.effective_from
    if edition.effective_to is not None and day > edition.effective_to:
        return edition.effective_to
    return day


def _search(
    strategy: st.SearchStrategy[dict[str, Any]],
    violates: Callable[[dict[str, Any]], str | None],
    *,
    examples: int,
    seed: int | None,
) -> tuple[dict[str, Any] | None, str]:
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
        return None, ""
    return found, violates(found) or ""


def _random(seed: int | None) -> Any:
    if seed is None:
        return None
    import random  # noqa: PLC0415 - only when a seed is given

    return random.Random(seed)


def verify(
    engine: Engine, *, examples: int = 200, seed: int | None = None, only: Iterable[str] | None = None
) -> Iterator[Check]:
    """Every declared invariant of every edition (or of the editions named `<guideline>@<edition>` in
    `only`), plus the built-in checks, as Checks."""
    editions = sorted(engine.editions, key=lambda e: (e.guideline_id, e.effective_from))
    wanted = set(only) if only is not None else {e.key for e in editions}
    for edition in editions:
        if edition.key not in wanted:
            continue
        profiles = {x.jurisdiction: x for x in engine.profiles}
        places = [p for p in edition.jurisdictions if p in profiles]
        # cases where the edition decides (or caps), not only supports: ODG in Texas, the MTUS in California
        preferred = [
            p
            for p in places
            if any(
                step.role in ("decide", "cap")
                and step.tier == edition.tier
                and (step.families is None or edition.family in step.families)
                for step in profiles[p].steps
            )
        ] or places
        focus = Focus.of([edition], jurisdictions=preferred)
        strategy = cases(focus)
        for inv in edition.invariants:
            found, detail = _search(strategy, _violates_max_total(engine, edition, inv), examples=examples, seed=seed)
            yield Check(edition.key, inv.id, inv.description, examples, found, detail)
        found, detail = _search(strategy, _violates_request_bound(engine), examples=examples, seed=seed)
        yield Check(
            edition.key, "approved-within-request", "approved quantity never above the request", examples, found, detail
        )
    for older, newer in itertools.pairwise(editions):
        if older.guideline_id != newer.guideline_id or newer.more_permissive_than_previous or newer.key not in wanted:
            continue
        focus = Focus.of([older, newer])
        found, detail = _search(cases(focus), _violates_monotone(engine, older, newer), examples=examples, seed=seed)
        yield Check(
            newer.key,
            f"not-more-permissive-than-{older.edition_id}",
            f"never approves more than edition `{older.edition_id}` for the same request",
            examples,
            found,
            detail,
        )
