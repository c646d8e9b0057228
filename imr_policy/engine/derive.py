"""Case + one request -> the flat facts the rules test (facts.FACTS), including derived facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from imr_policy.language.facts import SEVERITY_ORDER, UNSTATED
from imr_policy.model.values import Case, Edition, Facts, Request


def functional_improvement(case: Case, service: str) -> str:
    """`none` without history; `documented` only if every entry documents it; `not_documented` if any
    entry says so; otherwise `unknown`. Order-independent by construction."""
    values = {h.functional_improvement for h in case.history if h.service == service}
    if not values:
        return "none"
    if "not_documented" in values:
        return "not_documented"
    if values == {"documented"}:
        return "documented"
    return "unknown"


def months_begun(start: dt.date, end: dt.date) -> int:
    """Calendar months from `start` to `end`, counting a begun month as one: 6 on the six-month
    anniversary itself, 7 from the day after. So `months_since_surgery lte 6` means "within 6 months"."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    # an earlier day of the month: the calendar difference already counts the begun month
    return months if end.day <= start.day else months + 1


# not a fact of the registry (no rule tests it): every history entry's (service, completed, post-surgical), so
# that an edition counting several services together (`counted_together:`) can take in the others' visits, and
# a reading of an entry's count (combine rule 7) can move them (imr_policy.evaluate)
ENTRIES = "history:entries"
# the case's other requests of the request's service counted with its visits (`concurrent_visits: separate`):
# per request, (id, quantity, post-surgical)
CONCURRENT = "requests:concurrent"
# the case's requests of other services: per request, (id, service, quantity, post-surgical); an edition that
# counts a service with the request's (`counted_together:`) counts them as separate visits, as if given already
OTHER_REQUESTS = "requests:others"
# the requests of other services an edition's count facts took in (`as_counted_by`)
POOLED_REQUESTS = "requests:pooled"


def concurrent_requests(case: Case, request: Request) -> tuple[tuple[str, int, bool], ...]:
    """The case's other requests of the same service: (id, quantity, post-surgical) each."""
    return tuple(
        (r.id, r.quantity, r.postsurgical) for r in case.requests if r.service == request.service and r.id != request.id
    )


def with_concurrent(facts: Facts, others: tuple[tuple[str, int, bool], ...]) -> Facts:
    """`facts` with the visits of `others` (separate visits requested in the same case) counted as if given
    already: so the requests together never pass a number that each alone would stay within."""
    extra = sum(q for _, q, _ in others)
    post = sum(q for _, q, p in others if p)
    return facts | {
        CONCURRENT: others,
        "completed": facts["completed"] + extra,
        "total": facts["total"] + extra,
        "completed_postsurgical": facts["completed_postsurgical"] + post,
        "completed_toward_cap": facts["completed_toward_cap"] + extra - post,
    }


def request_facts(case: Case, request: Request) -> Facts:
    facts = _request_facts(case, request)
    if request.concurrent_visits == "separate":
        others = concurrent_requests(case, request)
        if others:
            return with_concurrent(facts, others)
    return facts


def _request_facts(case: Case, request: Request) -> Facts:
    completed = sum(h.completed for h in case.history if h.service == request.service)
    postsurgical = sum(h.completed for h in case.history if h.service == request.service and h.postsurgical)
    severity = max((d.severity for d in case.diagnoses), key=SEVERITY_ORDER.index, default="unspecified")
    codes = tuple(sorted({d.code for d in case.diagnoses if d.code and d.code_system == "ICD-10-CM"}))
    icd9 = tuple(sorted({d.code for d in case.diagnoses if d.code and d.code_system == "ICD-9-CM"}))
    return Facts(
        {
            "service": request.service,
            "modality": request.modality,
            "body_region": request.body_region,
            "frequency": request.frequency,
            "quantity": request.quantity,
            "date_of_service": request.date_of_service,
            "request_date": request.request_date,
            "date_of_injury": case.date_of_injury,
            "jurisdiction": case.jurisdiction,
            "postsurgical": request.postsurgical,
            "employer_authorized_beyond_cap": request.employer_authorized_beyond_cap,
            "age": case.age,
            "sex": case.sex,
            "completed": completed,
            "total": completed + request.quantity,
            "completed_postsurgical": postsurgical,
            "completed_toward_cap": completed - postsurgical,
            "functional_improvement": functional_improvement(case, request.service),
            "severity": severity,
            "diagnosis_codes": codes or None,
            "icd9_codes": icd9 or None,
            "postsurgical_procedure": request.postsurgical_procedure,
            "months_since_surgery": months_begun(request.surgery_date, request.date_of_service)
            if request.surgery_date
            else None,
            ENTRIES: tuple((h.service, h.completed, h.postsurgical) for h in case.history),
            OTHER_REQUESTS: tuple(
                (r.id, r.service, r.quantity, r.postsurgical) for r in case.requests if r.service != request.service
            ),
        }
    )


Counted = tuple[tuple[str, int, int], ...]  # per other service counted: (service, completed, of which post-surgical)


def as_counted_by(facts: Facts, edition: Edition) -> tuple[Facts, Counted]:
    """The request's facts as `edition` counts visits (`counted_together:`: its count facts take in the visits
    of the services it counts with the request's, and the visits the case's requests of those services ask
    for, as separate visits given already, `POOLED_REQUESTS`), and those services' visits given (`facts` as
    is when the edition counts nothing more)."""
    services = edition.counted_with(facts["service"])
    if not services:
        return facts, ()
    others = counted_with(facts, services)
    requested = tuple(r for r in facts.get(OTHER_REQUESTS, ()) if r[1] in services)
    if not others and not requested:
        return facts, ()
    out = pooled(facts, others) if others else facts
    if requested:
        extra = sum(q for _, _, q, _ in requested)
        post = sum(q for _, _, q, p in requested if p)
        out = out | {
            POOLED_REQUESTS: requested,
            OTHER_REQUESTS: tuple(r for r in facts.get(OTHER_REQUESTS, ()) if r[1] not in services),
            "completed": out["completed"] + extra,
            "total": out["total"] + extra,
            "completed_postsurgical": out["completed_postsurgical"] + post,
            "completed_toward_cap": out["completed_toward_cap"] + extra - post,
        }
    return out, others


def counted_with(facts: Mapping[str, Any], services: tuple[str, ...]) -> Counted:
    """Per service of `services` with history: its visits completed and, of them, post-surgical."""
    out = []
    for service in services:
        entries = [(c, p) for s, c, p in facts.get(ENTRIES, ()) if s == service]
        if entries:
            out.append((service, sum(c for c, _ in entries), sum(c for c, p in entries if p)))
    return tuple(out)


def pooled(facts: Facts, others: Counted) -> Facts:
    """`facts` with the count facts taking in `others` (`counted_with`). The entries taken in leave the
    history entries, so that facts already pooled are never pooled again."""
    extra = sum(c for _, c, _ in others)
    post = sum(p for _, _, p in others)
    taken = {s for s, _, _ in others}
    return facts | {
        ENTRIES: tuple(e for e in facts.get(ENTRIES, ()) if e[0] not in taken),
        "completed": facts["completed"] + extra,
        "total": facts["total"] + extra,
        "completed_postsurgical": facts["completed_postsurgical"] + post,
        "completed_toward_cap": facts["completed_toward_cap"] + extra - post,
    }


def missing_case_fields(case: Case, request_index: int, fact: str) -> list[str]:
    """The case fields a reviewer must fill in to supply `fact` for one request."""
    request = case.requests[request_index]
    if fact == "functional_improvement":
        unknown = [
            f"history[{i}].functional_improvement"
            for i, h in enumerate(case.history)
            if h.service == request.service and h.functional_improvement == "unknown"
        ]
        return unknown or ["history[].functional_improvement"]
    if fact in ("completed", "total", "completed_postsurgical", "completed_toward_cap"):
        return ["history[].completed"]
    if fact == "severity":
        return ["diagnoses[].severity"]
    if fact in ("diagnosis_codes", "icd9_codes", "condition"):
        return ["diagnoses[].code"]
    if fact == "concurrent_visits":
        return [f"requests[{request_index}].concurrent_visits"]
    if fact in ("postsurgical_procedure", "months_since_surgery"):
        return [f"requests[{request_index}].postsurgical"]
    if fact in ("age", "sex"):
        return [f"claimant.{fact}"]
    if fact in ("date_of_injury", "jurisdiction"):
        return [fact]
    return [f"requests[{request_index}].{fact}"]


def unstated_facts(facts: dict[str, Any] | Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The facts of one request that the records leave unstated, each with the values it can take."""
    return tuple((f.name, f.readings) for f in UNSTATED if facts.get(f.name) == f.unstated)
