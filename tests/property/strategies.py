"""Hypothesis strategies for valid cases, biased towards the edges the rule packs care about."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from imr_policy.language.facts import SERVICES

EDGE_DATES = [
    dt.date(2009, 7, 17),
    dt.date(2009, 7, 18),
    dt.date(2015, 2, 28),
    dt.date(2015, 3, 1),
    dt.date(2015, 7, 10),
    dt.date(2017, 11, 30),
    dt.date(2017, 12, 1),
]
EDGE_COUNTS = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 19, 20, 21, 49, 50, 51]

dates_of_service = st.one_of(st.sampled_from(EDGE_DATES), st.dates(dt.date(2008, 1, 1), dt.date(2020, 12, 31)))
counts = st.one_of(st.sampled_from(EDGE_COUNTS), st.integers(0, 60))
services = st.one_of(st.sampled_from(["psychotherapy", "medication_management"]), st.sampled_from(SERVICES))
fi = st.sampled_from(["documented", "not_documented", "unknown"])
severity = st.sampled_from(["mild", "moderate", "severe", "unspecified"])


@st.composite
def cases(draw: st.DrawFn, *, jurisdiction: str | None = None, service: str | None = None) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    requests = []
    for i in range(n):
        request: dict[str, Any] = {
            "id": f"r{i}",
            "service": service or draw(services),
            "quantity": draw(st.one_of(st.sampled_from([1, 2, 3, 4, 6, 10, 12]), st.integers(1, 30))),
            "date_of_service": draw(dates_of_service).isoformat(),
        }
        if draw(st.booleans()):
            request["modality"] = draw(st.sampled_from(["cbt", "group", "biofeedback"]))
        requests.append(request)
    # how the requests of one service relate (`concurrent_visits`), stated alike for each of them, or left out
    for svc in sorted({r["service"] for r in requests}):
        visits = draw(st.sampled_from([None, "same", "separate", "unknown"]))
        for r in requests:
            if visits and r["service"] == svc:
                r["concurrent_visits"] = visits
    history = [
        {"service": service or draw(services), "completed": draw(counts), "functional_improvement": draw(fi)}
        for _ in range(draw(st.integers(0, 3)))
    ]
    # descriptions and codes that name rows of ODG's table by condition (one row, two rows, none), so the
    # differential test covers the `condition` fact
    described = st.sampled_from(
        ["diagnosis", "accepted lumbar sprain/strain", "low back pain with lumbar strain", "Tear of medial meniscus"]
    )
    coded = st.sampled_from([None, "847.2", "724.2", "836.0", "M54.16"])
    diagnoses = []
    for _ in range(draw(st.integers(0, 3))):
        diagnosis: dict[str, Any] = {"description": draw(described), "severity": draw(severity)}
        code = draw(coded)
        if code:
            diagnosis["code"] = code
        diagnoses.append(diagnosis)
    case: dict[str, Any] = {
        "case_id": "generated",
        "jurisdiction": jurisdiction or draw(st.sampled_from(["CA", "TX"])),
        "date_of_injury": "2007-06-01",
        "diagnoses": diagnoses,
        "requests": requests,
        "history": history,
    }
    reviews = []
    for r in requests:
        decision = draw(st.sampled_from([None, "approve", "modify", "deny", "delay"]))
        if decision == "modify" and r["quantity"] > 1:
            reviews.append(
                {"request": r["id"], "decision": "modify", "approved_quantity": draw(st.integers(0, r["quantity"] - 1))}
            )
        elif decision in ("approve", "deny", "delay"):
            reviews.append({"request": r["id"], "decision": decision})
    if reviews:
        case["utilization_review"] = reviews
    return case
