"""A case as the caller gives it (a dict, YAML or JSON text) -> a validated, immutable Case.

The engine coerces types silently ("10" <= 6 is true in durable_rules), so nothing reaches it
before the case passes the JSON Schema strictly and the cross-field checks below. Every problem is
reported at once, each naming the JSON path and what is expected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from imr_policy.language.conditions import ICD10_START, code_systems, infer_code_system
from imr_policy.loading.limits import for_prefix
from imr_policy.loading.schemacheck import fast_validator, float_diagnostics, schema_diagnostics
from imr_policy.loading.yamlsrc import SourceMap, check_data, load_text, located, plain_within
from imr_policy.model.diagnostics import Diagnostic, did_you_mean, sort_and_cap
from imr_policy.model.errors import CaseError
from imr_policy.model.values import Case, Diagnosis, HistoryEntry, Request, Reviewer, RfaReceipt, UtilizationReview


def parse_case_text(text: str, *, file: str | None = None) -> Case:
    """Parse YAML or JSON text and validate it; raises CaseError with every problem found."""
    loaded = load_text(text, file=file, code_prefix="case")
    if loaded.diagnostics:
        raise CaseError("the case is not valid", loaded.diagnostics)
    return validate_case(loaded.data, file=file, source_map=loaded.source_map)


def case_diagnostics(data: Any, *, file: str | None = None, source_map: SourceMap | None = None) -> list[Diagnostic]:
    """Every problem with `data` as a case: its shape within the case limits (imr_policy/loading/limits.py) and
    its strings Unicode text, then the schema, then the checks a schema cannot express."""
    over = check_data(data, file=file, source_map=source_map)
    if over is not None:
        return [over]
    return _diagnostics(_normalise_dates(data), file, source_map)


def _diagnostics(data: Any, file: str | None, source_map: SourceMap | None) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    # jsonschema-rs answers "valid?" fast, but accepts some dates Python cannot represent (year 0);
    # whenever either says no, the Python validator lists every problem with its context.
    if not fast_validator("case").is_valid(data) or not _dates_parse(data):
        problems = schema_diagnostics("case", data, prefix="case", file=file, source_map=source_map)
    reported = {d.path for d in problems}
    problems.extend(
        d
        for d in float_diagnostics(data, prefix="case", file=file, source_map=source_map)
        if d.path not in reported  # one problem, one diagnostic: the schema's message wins
    )
    if problems:
        return list(sort_and_cap(problems))
    problems.extend(_cross_field(data, file, source_map))
    return list(sort_and_cap(problems))


def _dates_parse(data: dict[str, Any]) -> bool:
    values = [data.get("date_of_injury")]
    for req in data.get("requests", []):
        values.append(req.get("date_of_service"))
        values.append((req.get("postsurgical") or {}).get("surgery_date"))
        values.append(req.get("request_date"))
    for ur in data.get("utilization_review", []):
        values.append(ur.get("decision_date") if isinstance(ur, dict) else None)
    try:
        for value in values:
            if value is not None:
                dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def validate_case(data: Any, *, file: str | None = None, source_map: SourceMap | None = None) -> Case:
    """Validate `data` against the case contract and build a Case; raises CaseError."""
    fast = plain_within(data, for_prefix("case"))
    if fast is not None and not fast[1] and fast_validator("case").is_valid(fast[0]) and _dates_parse(fast[0]):
        # the common case, in one pass over the data: within the limits, plain JSON values and dates,
        # no float, valid for the schema; what is left are the checks a schema cannot express
        problems = _cross_field(fast[0], file, source_map)
        if problems:
            raise CaseError("the case is not valid", list(sort_and_cap(problems)))
        return _build(fast[0])
    over = check_data(data, file=file, source_map=source_map)
    if over is not None:
        raise CaseError("the case is not valid", [over])
    data = _normalise_dates(data)
    problems = _diagnostics(data, file, source_map)
    if problems:
        raise CaseError("the case is not valid", problems)
    return _build(data)


def _normalise_dates(data: Any) -> Any:
    """Accept `datetime.date` values from Python callers (e.g. yaml.safe_load output) as ISO strings.

    Exact type checks first: this runs on every evaluation, and isinstance against an ABC is slow."""
    kind = type(data)
    if kind is dict:
        return {k: _normalise_dates(v) for k, v in data.items()}
    if kind is list:
        return [_normalise_dates(v) for v in data]
    if kind in (str, int, bool, float) or data is None:
        return data
    if isinstance(data, Mapping):
        return {k: _normalise_dates(v) for k, v in data.items()}
    if isinstance(data, dt.date) and not isinstance(data, dt.datetime):
        return data.isoformat()
    return data


# report(code, message, path, hint): one located diagnostic of the case's cross-field checks
_Report = Callable[[str, str, str, str | None], None]


def _cross_field(data: dict[str, Any], file: str | None, smap: SourceMap | None) -> list[Diagnostic]:
    problems: list[Diagnostic] = []

    def report(code: str, message: str, path: str, hint: str | None = None) -> None:
        problems.append(located(code, message, path, file=file, source_map=smap, hint=hint))

    ids, quantities = _request_problems(data, report)
    _history_problems(data, report)
    _diagnosis_problems(data, report)
    _review_problems(data, ids, quantities, report)
    return problems


def _request_problems(data: dict[str, Any], report: _Report) -> tuple[dict[str, int], dict[str, int]]:
    """Request ids once each, dates after the injury; returns (index by id, quantity by id)."""
    injury = dt.date.fromisoformat(data["date_of_injury"])
    ids: dict[str, int] = {}
    quantities: dict[str, int] = {}
    for i, req in enumerate(data["requests"]):
        if req["id"] in ids:
            report(
                "case.duplicate-request-id",
                f"request id `{req['id']}` is used twice (first at requests[{ids[req['id']]}])",
                f"$.requests[{i}].id",
                "give every request its own id",
            )
        else:
            ids[req["id"]] = i
            quantities[req["id"]] = req["quantity"]
        service_day = dt.date.fromisoformat(req["date_of_service"])
        if service_day < injury:
            report(
                "case.date-order",
                "date_of_service is before the date of injury",
                f"$.requests[{i}].date_of_service",
                "treatment for an industrial injury follows the injury; check both dates",
            )
        if "request_date" in req and dt.date.fromisoformat(req["request_date"]) < injury:
            report(
                "case.date-order",
                "request_date is before the date of injury",
                f"$.requests[{i}].request_date",
                "a request for authorization follows the injury; check both dates",
            )
        surgery = req.get("postsurgical")
        if surgery and dt.date.fromisoformat(surgery["surgery_date"]) > service_day:
            report(
                "case.date-order",
                "surgery_date is after the date of service of this post-surgical request",
                f"$.requests[{i}].postsurgical.surgery_date",
                "post-surgical treatment follows the surgery; check both dates",
            )
    _concurrent_problems(data["requests"], report)
    return ids, quantities


def _concurrent_problems(requests: list[dict[str, Any]], report: _Report) -> None:
    """Every request of one service says the same of how their visits relate (`concurrent_visits`)."""
    first: dict[str, tuple[int, str]] = {}
    for i, req in enumerate(requests):
        said = req.get("concurrent_visits", "same")
        seen = first.setdefault(req["service"], (i, said))
        if seen[1] != said:
            report(
                "case.concurrent-visits-disagree",
                f"requests[{seen[0]}] (the same service) says `concurrent_visits: {seen[1]}`, this one `{said}`",
                f"$.requests[{i}]" + (".concurrent_visits" if "concurrent_visits" in req else ""),
                "the requests of one service are all the same visits or all separate: state one value for each",
            )


def _history_problems(data: dict[str, Any], report: _Report) -> None:
    """Prior counts: `completed_at_most` only with a count that is not exact, and not below `completed`."""
    for i, h in enumerate(data.get("history", [])):
        count, most = h.get("count", "exact"), h.get("completed_at_most")
        if count == "exact" and most is not None:
            report(
                "case.unexpected-field",
                "completed_at_most is given with an exact count",
                f"$.history[{i}].completed_at_most",
                "set `count: at_least` (the records give a range or a least number), or remove completed_at_most",
            )
        elif most is not None and most < h["completed"]:
            report(
                "case.range",
                f"completed_at_most is below completed ({h['completed']}); got `{most}`",
                f"$.history[{i}].completed_at_most",
                "completed is the least the count can be, completed_at_most the most",
            )
        if count == "unknown" and h["completed"] != 0:
            report(
                "case.range",
                f"with `count: unknown`, completed is 0 (the least it can be); got `{h['completed']}`",
                f"$.history[{i}].completed",
                'for a least number stated by the records ("at least 26") use `count: at_least`',
            )


def _diagnosis_problems(data: dict[str, Any], report: _Report) -> None:
    """Each diagnosis code of one code system: the stated one, or the one its form and the dates imply."""
    days = [dt.date.fromisoformat(r["date_of_service"]) for r in data["requests"]]
    for i, diagnosis in enumerate(data["diagnoses"]):
        code, stated = diagnosis.get("code"), diagnosis.get("code_system")
        if code is None:
            if stated is not None:
                report(
                    "case.unexpected-field",
                    "code_system is given without a code",
                    f"$.diagnoses[{i}].code_system",
                    "add the diagnosis code, or remove code_system",
                )
            continue
        if infer_code_system(code, stated, days) is not None:
            continue
        fits = code_systems(code)
        if stated is not None:
            report(
                "case.code-system",
                f"the code does not have the form of an {stated} code; it has the form of an {fits[0]} code",
                f"$.diagnoses[{i}].code",
                f"check the code, or set code_system to `{fits[0]}`",
            )
        else:
            report(
                "case.code-system-ambiguous",
                "the code has the form of both an ICD-9-CM and an ICD-10-CM code, and the requests' dates of "
                f"service fall both before and from `{ICD10_START.isoformat()}`",
                f"$.diagnoses[{i}].code",
                "state the code's system: `code_system: ICD-9-CM` or `code_system: ICD-10-CM`",
            )


def _review_problems(data: dict[str, Any], ids: dict[str, int], quantities: dict[str, int], report: _Report) -> None:
    """Each utilization review: of a known request, one per request, dated in order, its procedural facts
    consistent, an approved quantity only with (and below the request in) a modification."""
    seen_ur: dict[str, int] = {}
    for i, ur in enumerate(data.get("utilization_review", [])):
        target = ur["request"]
        if target not in ids:
            report(
                "case.unknown-request",
                f"utilization_review names request `{target}`, which is not in requests",
                f"$.utilization_review[{i}].request",
                did_you_mean(target, ids) or "expected one of: " + ", ".join(f"`{i}`" for i in ids),
            )
            continue
        if target in seen_ur:
            report(
                "case.duplicate-review",
                f"request `{target}` has two utilization_review entries "
                f"(first at utilization_review[{seen_ur[target]}])",
                f"$.utilization_review[{i}].request",
                "one UR decision per request",
            )
        seen_ur[target] = i
        decided_on = _review_date_problems(data, ur, i, data["requests"][ids[target]], report)
        _procedure_problems(ur, i, decided_on, report)
        _approved_problems(ur, i, quantities[target], report)


def _review_date_problems(
    data: dict[str, Any], ur: dict[str, Any], i: int, request: dict[str, Any], report: _Report
) -> dt.date | None:
    """The review's decision_date after the injury and the request; returns it (None when not given)."""
    decided_on = dt.date.fromisoformat(ur["decision_date"]) if "decision_date" in ur else None
    requested_on = request.get("request_date")
    if decided_on is not None and decided_on < dt.date.fromisoformat(data["date_of_injury"]):
        report(
            "case.date-order",
            "decision_date is before the date of injury",
            f"$.utilization_review[{i}].decision_date",
            "utilization review follows the injury; check both dates",
        )
    elif decided_on is not None and requested_on and dt.date.fromisoformat(requested_on) > decided_on:
        report(
            "case.date-order",
            f"decision_date is before the request_date of request `{ur['request']}`",
            f"$.utilization_review[{i}].decision_date",
            "utilization review decides a request already made; check both dates",
        )
    return decided_on


def _approved_problems(ur: dict[str, Any], i: int, requested: int, report: _Report) -> None:
    approved = ur.get("approved_quantity")
    if approved is not None and ur["decision"] != "modify":
        report(
            "case.unexpected-field",
            f"approved_quantity is only given with decision `modify`, not `{ur['decision']}`",
            f"$.utilization_review[{i}].approved_quantity",
            "remove it, or set decision to modify",
        )
    if ur["decision"] == "modify" and isinstance(approved, int) and approved >= requested:
        report(
            "case.range",
            f"a modification approves less than the {requested} requested; got approved_quantity `{approved}`",
            f"$.utilization_review[{i}].approved_quantity",
            "a UR decision that approves everything requested is `approve`",
        )


def parse_moment(text: str) -> dt.date | dt.datetime | None:
    """A `date_time` of the case contract: a date, or a date-time (naive: local time); None when invalid."""
    try:
        return dt.datetime.fromisoformat(text) if "T" in text else dt.date.fromisoformat(text)
    except ValueError:
        return None


def _procedure_problems(ur: dict[str, Any], i: int, decided_on: dt.date | None, report: _Report) -> None:
    """The UR procedural facts (docs/ur-timeliness.md): one way of stating the receipt, dates in order."""
    base = f"$.utilization_review[{i}]"
    moments = _moments(ur, base, report)
    rfa = ur.get("rfa_received")
    received = None if rfa is None else _receipt_problems(rfa, moments, base, report)
    decided_at = moments.get("decided_at")
    if isinstance(decided_at, dt.datetime) and decided_on is not None and decided_at.date() != decided_on:
        report(
            "case.date-order",
            "decided_at is not on the decision_date",
            f"{base}.decided_at",
            "give the same day in both, or only decided_at",
        )
    decided_day = decided_at.date() if isinstance(decided_at, dt.datetime) else decided_at or decided_on
    if received is not None and decided_day is not None and decided_day < received:
        report(
            "case.date-order",
            "the UR decision is before the request was " + ("mailed" if "mailed_on" in (rfa or {}) else "received"),
            f"{base}.decided_at" if "decided_at" in ur else f"{base}.decision_date",
            "utilization review decides a request already received; check both dates",
        )
    asked = ur.get("more_information_requested_on")
    if asked is not None:
        asked_on = dt.date.fromisoformat(asked)
        if received is not None and asked_on < received:
            report(
                "case.date-order",
                "more_information_requested_on is before the request was received",
                f"{base}.more_information_requested_on",
                "more information is asked for after the request arrives; check both dates",
            )
        elif decided_day is not None and asked_on > decided_day:
            report(
                "case.date-order",
                "more_information_requested_on is after the UR decision",
                f"{base}.more_information_requested_on",
                "more information is asked for before the decision; check both dates",
            )


def _moments(ur: dict[str, Any], base: str, report: _Report) -> dict[str, dt.date | dt.datetime]:
    """`decided_at` and `rfa_received.at`, read (each a date or a date and time); a bad one is reported."""
    moments: dict[str, dt.date | dt.datetime] = {}
    for key, path in (("decided_at", f"{base}.decided_at"), ("at", f"{base}.rfa_received.at")):
        text = ur.get("rfa_received", {}).get("at") if key == "at" else ur.get(key)
        if text is None:
            continue
        value = parse_moment(text)
        if value is None:
            report("case.date", "not a real date or date and time", path, "check the month, day and hour")
        else:
            moments[key] = value
    return moments


def _receipt_problems(
    rfa: dict[str, Any], moments: dict[str, dt.date | dt.datetime], base: str, report: _Report
) -> dt.date | None:
    """One way of stating the receipt for its channel; returns the day the request counts from (the day of
    mailing, else the day of receipt), None when neither is known."""
    if rfa["channel"] == "mail":
        if "at" in rfa and "mailed_on" in rfa:
            report(
                "case.unexpected-field",
                "mailed_on is given with the day of receipt `at`; the day of mailing only matters when the "
                "day of receipt is not known",
                f"{base}.rfa_received.mailed_on",
                "remove mailed_on, or remove `at` when the day of receipt is not known",
            )
        elif "at" not in rfa and "mailed_on" not in rfa:
            report(
                "case.missing-field",
                "a mailed request needs the day of receipt `at` or the day of mailing `mailed_on`",
                f"{base}.rfa_received",
                "add `at: YYYY-MM-DD` (received) or `mailed_on: YYYY-MM-DD` (mailed)",
            )
    else:
        if "mailed_on" in rfa:
            report(
                "case.unexpected-field",
                f"mailed_on is only given with channel `mail`, not `{rfa['channel']}`",
                f"{base}.rfa_received.mailed_on",
                "remove it, or set channel to mail",
            )
        if "at" not in rfa:
            report(
                "case.missing-field",
                f"a request received by `{rfa['channel']}` needs the date (and time) of receipt `at`",
                f"{base}.rfa_received",
                "add `at: YYYY-MM-DDTHH:MM` (Pacific time), or `at: YYYY-MM-DD` when the time is not known",
            )
    if "mailed_on" in rfa:
        return dt.date.fromisoformat(rfa["mailed_on"])
    if "at" in moments:
        stated = moments["at"]
        return stated.date() if isinstance(stated, dt.datetime) else stated
    return None


def _rfa(rfa: dict[str, Any] | None) -> RfaReceipt | None:
    if rfa is None:
        return None
    at = parse_moment(rfa["at"]) if "at" in rfa else None
    return RfaReceipt(
        rfa["channel"],
        received_on=at if at is not None and not isinstance(at, dt.datetime) else None,
        received_at=at if isinstance(at, dt.datetime) else None,
        mailed_on=dt.date.fromisoformat(rfa["mailed_on"]) if "mailed_on" in rfa else None,
    )


def _moment(text: str) -> dt.datetime | None:
    value = parse_moment(text)
    return value if isinstance(value, dt.datetime) else None


def _build(data: dict[str, Any]) -> Case:
    claimant = data.get("claimant", {})
    days = [dt.date.fromisoformat(r["date_of_service"]) for r in data["requests"]]
    return Case(
        case_id=data["case_id"],
        jurisdiction=data.get("jurisdiction", "CA"),
        date_of_injury=dt.date.fromisoformat(data["date_of_injury"]),
        diagnoses=tuple(
            Diagnosis(
                d["description"],
                d.get("severity", "unspecified"),
                d.get("code"),
                infer_code_system(d["code"], d.get("code_system"), days) if "code" in d else None,
            )
            for d in data["diagnoses"]
        ),
        requests=tuple(
            Request(
                id=r["id"],
                service=r["service"],
                quantity=r["quantity"],
                date_of_service=dt.date.fromisoformat(r["date_of_service"]),
                modality=r.get("modality"),
                body_region=r.get("body_region"),
                frequency=r.get("frequency"),
                postsurgical="postsurgical" in r,
                employer_authorized_beyond_cap=r.get("employer_authorized_beyond_cap", False),
                postsurgical_procedure=r["postsurgical"]["procedure"] if "postsurgical" in r else None,
                surgery_date=dt.date.fromisoformat(r["postsurgical"]["surgery_date"]) if "postsurgical" in r else None,
                request_date=dt.date.fromisoformat(r["request_date"]) if "request_date" in r else None,
                concurrent_visits=r.get("concurrent_visits", "same"),
            )
            for r in data["requests"]
        ),
        history=tuple(
            HistoryEntry(
                h["service"],
                h["completed"],
                h["functional_improvement"],
                h.get("modality"),
                h.get("postsurgical", False),
                h.get("count", "exact"),
                h.get("completed_at_most"),
            )
            for h in data.get("history", [])
        ),
        utilization_review=tuple(
            UtilizationReview(
                u["request"],
                u["decision"],
                u.get("approved_quantity"),
                dt.date.fromisoformat(u["decision_date"]) if "decision_date" in u else None,
                u.get("review_type"),
                u.get("expedited", False),
                _rfa(u.get("rfa_received")),
                dt.date.fromisoformat(u["more_information_requested_on"])
                if "more_information_requested_on" in u
                else None,
                _moment(u["decided_at"]) if "decided_at" in u else None,
                Reviewer(**u["reviewer"]) if "reviewer" in u else None,
            )
            for u in data.get("utilization_review", [])
        ),
        age=claimant.get("age"),
        sex=claimant.get("sex"),
    )
