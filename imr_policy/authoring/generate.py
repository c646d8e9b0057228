"""Hypothesis strategies for valid cases, focused on what a set of editions tests.

The generated cases are valid against schemas/case.schema.json by construction (and every one is
validated again by the engine). They lean on purpose towards the edges the rules care about: zero
history, every limit minus one, at and plus one, the first and last day of each edition, the codes,
body regions and procedures the conditions name. Hypothesis shrinks towards the first of each list,
so a counterexample comes out small and readable: one request, one diagnosis, one history entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from imr_policy.language.facts import SEVERITY_ORDER
from imr_policy.model.values import Edition, leaves

TODAY_CAP = dt.date(2026, 12, 31)  # open-ended editions are explored up to this day
_OTHER_CODES = ("M54.5", "F41.1", "S83.241A")
_OTHER_REGIONS = ("cervical", "knee", "shoulder")


@dataclass(frozen=True, slots=True)
class Focus:
    """What to generate: the services, jurisdictions, dates and values a set of editions tests."""

    services: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    dates: tuple[dt.date, ...]
    counts: tuple[int, ...]
    codes: tuple[str, ...]
    regions: tuple[str, ...]
    procedures: tuple[str, ...]
    words: tuple[str, ...] = ()  # phrases of the editions' tables by condition, used as diagnosis descriptions
    request_dates: tuple[dt.date, ...] = ()  # the edges of the editions' windows on the request date

    @classmethod
    def of(cls, editions: Iterable[Edition], *, jurisdictions: Iterable[str] | None = None) -> Focus:
        editions = tuple(editions)
        services = sorted({s for e in editions for r in e.rules for s in r.services})
        limits = {lim.value for e in editions for lim in e.limits}
        counts = sorted({0, *(max(0, v + d) for v in limits for d in (-2, -1, 0, 1))})
        dates: set[dt.date] = set()
        request_dates: set[dt.date] = set()
        for e in editions:
            if e.selected_by == "date_of_service":
                end = min(e.effective_to or TODAY_CAP, TODAY_CAP)
                dates.update({e.effective_from, end, e.effective_from + (end - e.effective_from) / 2})
            elif e.within is not None:  # selected by the request date: services within its second window
                dates.update(d for d in e.within[1:] if d is not None)
            bounds = e.request_date_bounds()
            if bounds is not None:
                request_dates.update(d for d in bounds if d is not None)
        conditions = [c for e in editions for r in e.rules for c in leaves(r.when)]
        conditions += [c for e in editions for x in e.exceptions for c in leaves(x.when)]
        codes = sorted(
            {v for c in conditions if c.op == "prefix_in" for v in c.value}
            | {p for e in editions for row in e.conditions for p in (*row.icd9, *row.icd10)}
        )
        words = sorted({w for e in editions for row in e.conditions for w in row.all_words})
        texts = [c for c in conditions if c.op == "contains_any"]
        regions = sorted({v for c in texts if c.fact == "body_region" for v in c.value})
        procedures = sorted({v for c in texts if c.fact == "postsurgical_procedure" for v in c.value})
        places = sorted(set(jurisdictions) if jurisdictions else {j for e in editions for j in e.jurisdictions})
        return cls(
            services=tuple(services) or ("psychotherapy",),
            jurisdictions=tuple(places) or ("CA",),
            dates=tuple(sorted(dates)),
            counts=tuple(counts),
            codes=tuple(codes),
            regions=tuple(regions),
            procedures=tuple(procedures),
            words=tuple(words),
            request_dates=tuple(sorted(request_dates)),
        )


def _code(code_prefix: str) -> str:
    """A complete-looking ICD-10-CM or ICD-9-CM code that starts with `code_prefix` (valid against the case
    schema; ICD-9-CM prefixes are written in full, as the tables print them)."""
    return code_prefix if "." in code_prefix else code_prefix.ljust(3, "0") + ".0"


@st.composite
def cases(draw: st.DrawFn, focus: Focus) -> dict[str, Any]:
    """One valid case with one request, focused on `focus`."""
    service = draw(st.sampled_from(focus.services))
    day = draw(st.sampled_from(focus.dates))
    completed = draw(st.sampled_from(focus.counts))
    quantity = draw(st.integers(1, max(focus.counts) + 4))
    request: dict[str, Any] = {"id": "r1", "service": service, "quantity": quantity, "date_of_service": day.isoformat()}
    regions = focus.regions + _OTHER_REGIONS
    region = draw(st.one_of(st.none(), st.sampled_from(regions)))
    if region:
        request["body_region"] = region
    if draw(st.booleans()) and focus.procedures:
        surgery = day - dt.timedelta(days=draw(st.sampled_from((14, 180, 186, 400))))
        request["postsurgical"] = {
            "procedure": draw(st.sampled_from(focus.procedures)),
            "surgery_date": surgery.isoformat(),
        }
    if draw(st.booleans()):
        request["employer_authorized_beyond_cap"] = True
    injury = day - dt.timedelta(days=draw(st.sampled_from((30, 730, 5000))))
    made: dt.date | None = (
        draw(st.one_of(st.none(), st.sampled_from(focus.request_dates))) if focus.request_dates else None
    )
    if made is not None and made >= injury:
        request["request_date"] = made.isoformat()
    description = draw(st.sampled_from(("diagnosis", *focus.words)))
    diagnosis: dict[str, Any] = {"description": description, "severity": draw(st.sampled_from(SEVERITY_ORDER))}
    code = draw(st.one_of(st.none(), st.sampled_from(tuple(map(_code, focus.codes)) + _OTHER_CODES)))
    if code:
        diagnosis["code"] = code
    case: dict[str, Any] = {
        "case_id": "generated",
        "jurisdiction": draw(st.sampled_from(focus.jurisdictions)),
        "date_of_injury": injury.isoformat(),
        "diagnoses": [diagnosis],
        "requests": [request],
    }
    if completed or draw(st.booleans()):
        fi = draw(st.sampled_from(("documented", "not_documented", "unknown")))
        entry: dict[str, Any] = {"service": service, "completed": completed, "functional_improvement": fi}
        if draw(st.booleans()):
            entry["postsurgical"] = True
        case["history"] = [entry]
    review = draw(st.sampled_from((None, "deny", "modify", "approve", "delay")))
    if review == "modify" and quantity > 1:
        approved = draw(st.integers(0, quantity - 1))
        case["utilization_review"] = [{"request": "r1", "decision": "modify", "approved_quantity": approved}]
    elif review is not None and review != "modify":
        case["utilization_review"] = [{"request": "r1", "decision": review}]
    return case
