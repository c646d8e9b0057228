"""Was a UR decision on time? One immutable `Timeliness` per UR decision, from a procedural pack.

Deciding happens here and nowhere else; `explain/ur.py` only puts the result into words.

Every unknown is a range, never a guess. The day a request counts as received and the deadline are
each an interval `[earliest, latest]`:

- a year without a holiday list in the pack: holidays can only move a deadline later, so the earliest
  deadline counts every business weekday and the latest is unknown;
- a receipt time not stated, a channel the cut-off is not stated for, a receipt on a non-business day,
  a limit in calendar days that ends on a non-business day, an extension asked for on a day that may
  be after the base limit: each question the pack marks `unknown` takes both answers;
- a review type not stated: every review kind the records allow.

The decision is timely when it came no later than the earliest deadline, untimely when it came after the
latest, and otherwise cannot be decided; the result then says what would decide it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from imr_policy.engine.combine import PROVENANCE_ORDER
from imr_policy.loading.procedure import Holiday, Procedure, TimeLimit
from imr_policy.model.values import ReviewKind, Span, Timeliness, evolve
from imr_policy.model.values import TimelinessStatus as Status
from imr_policy.model.values import TimelinessStep as Step

if TYPE_CHECKING:
    from imr_policy.model.values import Case, ItemDetermination, RfaReceipt, UtilizationReview

MAX_DAYS_SCANNED = 3660  # business-day arithmetic never scans more than ten years of days


# ------------------------------------------------------------------------------------ calendar


class _Calendar:
    """Business days under the pack's calendar. A day is open, closed, or unsettled (`None`): a weekday of a
    year the pack has no holidays for, or a day the pack marks uncertain. Counting runs twice: the earliest
    deadline counts an unsettled day as open; the latest counts an uncertain day as closed, and is unknown
    when a year without holidays is reached."""

    def __init__(self, procedure: Procedure) -> None:
        self.p = procedure
        self.unknown_years: set[int] = set()
        self.doubts: dict[dt.date, Holiday] = {}  # the uncertain days met, with why
        self.years_used: set[int] = set()

    def closed_weekday(self, day: dt.date) -> bool:
        return day.weekday() not in self.p.business_weekdays

    def holiday(self, day: dt.date) -> bool | None:
        listed = self.p.holiday_year(day.year)
        if listed is None:
            self.unknown_years.add(day.year)
            return None
        self.years_used.add(day.year)
        if day in listed.dates:
            return True
        doubt = listed.doubt(day)
        if doubt is not None:
            self.doubts.setdefault(day, doubt)
            return None
        return False

    def named(self, day: dt.date) -> Holiday | None:
        listed = self.p.holiday_year(day.year)
        return None if listed is None else listed.named(day)

    def business(self, day: dt.date) -> bool | None:
        """True, False, or None when the day is unsettled (an unknown year, or a day the pack marks uncertain)."""
        if self.closed_weekday(day):
            return False
        holiday = self.holiday(day)
        return None if holiday is None else not holiday

    def _open(self, day: dt.date, latest: bool) -> bool | None:
        """Whether `day` counts as a business day: on the earliest count every unsettled day is open; on the
        latest an uncertain day is closed and a day of an unknown year leaves the count unknown (None)."""
        open_day = self.business(day)
        if open_day is not None:
            return open_day
        if not latest:
            return True
        return None if self.p.holiday_year(day.year) is None else False

    def _count(self, start: dt.date, n: int, latest: bool) -> tuple[dt.date | None, list[dt.date]]:
        counted: list[dt.date] = []
        day = start
        for _ in range(MAX_DAYS_SCANNED):
            if len(counted) == n:
                break
            day += dt.timedelta(days=1)
            is_open = self._open(day, latest)
            if is_open is None:
                return None, counted
            if is_open:
                counted.append(day)
        return day, counted

    def next_business_day(self, day: dt.date) -> Span:
        """The first business day after `day`, at the earliest and at the latest."""
        lo, _ = self._count(day, 1, latest=False)
        hi, _ = self._count(day, 1, latest=True)
        assert lo is not None
        return Span(lo, hi)

    def add_business_days(self, day_zero: dt.date, n: int) -> tuple[Span, tuple[dt.date, ...]]:
        lo, counted = self._count(day_zero, n, latest=False)
        hi, _ = self._count(day_zero, n, latest=True)
        assert lo is not None
        return Span(lo, hi), tuple(counted)


# ------------------------------------------------------------------------------------ the computation


class _Work:
    def __init__(self, procedure: Procedure) -> None:
        self.p = procedure
        self.cal = _Calendar(procedure)
        self.steps: list[Step] = []
        self.reasons: list[str] = []
        self.needs: list[str] = []
        self.used: list[str] = []
        self.tz = ZoneInfo(procedure.time_zone)

    def step(self, kind: str, value: str, source: str | None = None, provenance: str | None = None) -> None:
        self.steps.append(Step(kind, value, source, provenance))
        if source is not None and source not in self.used:
            self.used.append(source)

    def unknown(self, key: str) -> None:
        why = self.p.unknown_about(key)
        text = why or f"the pack does not say ({key})"
        if text not in self.reasons:
            self.reasons.append(text)

    def need(self, what: str) -> None:
        if what not in self.needs:
            self.needs.append(what)

    # ---------------------------------------------------------------- receipt

    def local(self, moment: dt.datetime) -> dt.datetime:
        """A stated date-time in the pack's time zone (no offset: it is local time)."""
        return moment.replace(tzinfo=self.tz) if moment.tzinfo is None else moment.astimezone(self.tz)

    def received(self, rfa: RfaReceipt) -> tuple[dt.date, dt.datetime | None]:
        """The local day of receipt (before any rule) and the local instant when a time is stated."""
        if rfa.channel == "mail" and rfa.mailed_on is not None:
            day = rfa.mailed_on + dt.timedelta(days=self.p.mail_days)
            self.step("mailed", rfa.mailed_on.isoformat())
            self.step("presumed_received", day.isoformat(), self.p.mail_source, self.p.mail_provenance)
            return day, None
        if rfa.received_at is not None:
            at = self.local(rfa.received_at)
            self.step("received", at.isoformat(timespec="minutes"))
            return at.date(), at
        assert rfa.received_on is not None  # the case contract requires one of them
        self.step("received", rfa.received_on.isoformat())
        return rfa.received_on, None

    def day_zero(self, rfa: RfaReceipt, day: dt.date, at: dt.datetime | None) -> Span:
        """The day the request counts as received: the earliest and the latest day the rules allow."""
        span = Span(day, day)
        if rfa.channel != "mail" or rfa.mailed_on is None:
            after: bool | None = None if at is None else at.time() > self.p.cutoff
            if after is None:
                self.need("utilization_review[].rfa_received.at (the time of receipt)")
            if after is not False:
                certain = rfa.channel in self.p.cutoff_channels and after is True
                nxt = self.cal.next_business_day(day)
                if certain:
                    span = nxt
                    self.step("after_cutoff", nxt.lo.isoformat(), self.p.cutoff_source, self.p.cutoff_provenance)
                else:
                    if rfa.channel not in self.p.cutoff_channels:
                        self.unknown("cutoff_other_channels")
                    span = Span(day, nxt.hi)
        if span.lo == day:
            open_day = self.cal.business(day)
            if open_day is not True:
                # received on a Saturday, a Sunday or a holiday (or a weekday of a year without a holiday list)
                if open_day is None and self.p.holiday_year(day.year) is None:
                    self.holidays_unknown(day.year)
                else:  # a closed day, or one the pack marks uncertain (the calendar records why)
                    self.unknown("non_business_day_receipt")
                nxt_hi = self.cal.next_business_day(day).hi
                span = Span(day, None if span.hi is None or nxt_hi is None else max(span.hi, nxt_hi))
        self.step("day_zero", _show(span.lo), self.p.day_zero_source, self.p.day_zero_provenance)
        return span

    def holidays_unknown(self, year: int) -> None:
        text = f"the pack has no holiday calendar for {year}: {self.p.unknown_years}"
        if text not in self.reasons:
            self.reasons.append(text)

    # ---------------------------------------------------------------- deadlines

    def day_deadline(self, limit: TimeLimit, zero: Span, *, record: bool) -> tuple[Span, tuple[dt.date, ...]]:
        if limit.unit == "business_days":
            lo, counted = self.cal.add_business_days(zero.lo, limit.value)
            if zero.hi is None or lo.hi is None:
                return Span(lo.lo, None), counted
            hi, _ = self.cal.add_business_days(zero.hi, limit.value)
            return Span(lo.lo, hi.hi), counted
        # calendar days
        lo_day = zero.lo + dt.timedelta(days=limit.value)
        hi_day = None if zero.hi is None else zero.hi + dt.timedelta(days=limit.value)
        if hi_day is not None and self.cal.business(hi_day) is not True:
            if record:
                self.unknown("closed_last_day")
            hi_day = self.cal.next_business_day(hi_day).hi
        return Span(lo_day, hi_day), ()

    def hour_deadline(self, limit: TimeLimit, day: dt.date, at: dt.datetime | None) -> Span:
        hours = dt.timedelta(hours=limit.value)

        def plus(moment: dt.datetime) -> dt.datetime:
            return (moment.astimezone(dt.UTC) + hours).astimezone(self.tz)

        start_lo = at if at is not None else dt.datetime.combine(day, dt.time(0), self.tz)
        end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), self.tz)
        start_hi: dt.datetime | None = at if at is not None else end_of_day
        if at is None:
            self.need("utilization_review[].rfa_received.at (the time of receipt)")
        if at is None or at.time() > self.p.cutoff or self.cal.business(day) is not True:
            # a receipt after the cut-off, at an unknown time or on a closed day may run from the next business day
            self.unknown("cutoff_for_hour_limits")
            nxt = self.cal.next_business_day(day)
            start_hi = (
                None if nxt.hi is None else dt.datetime.combine(nxt.hi + dt.timedelta(days=1), dt.time(0), self.tz)
            )
            if nxt.hi is None:
                self.holidays_unknown(nxt.lo.year)
        return Span(plus(start_lo), None if start_hi is None else plus(start_hi))


@dataclass(frozen=True, slots=True)
class _Result:
    kind: ReviewKind
    limit: TimeLimit
    deadline: Span
    counted: tuple[dt.date, ...]
    extension: bool | None


def _kinds(ur: UtilizationReview) -> tuple[ReviewKind, ...]:
    if ur.expedited:
        return ("expedited",)
    if ur.review_type is not None:
        return (ur.review_type,)
    return ("prospective", "concurrent", "retrospective")


def select(procedures: tuple[Procedure, ...], jurisdiction: str, day: dt.date) -> Procedure | None:
    return next((p for p in procedures if p.jurisdiction == jurisdiction and p.covers(day)), None)


def _not_covered(procedures: tuple[Procedure, ...], jurisdiction: str, day: dt.date) -> str:
    own = sorted((p for p in procedures if p.jurisdiction == jurisdiction), key=lambda p: p.effective_from)
    if not own:
        return f"no UR procedural pack for {jurisdiction}"
    if day < own[0].effective_from:
        return (
            own[0].not_covered_before
            or f"no UR procedural pack covers requests received before {own[0].effective_from}"
        )
    last = own[-1]
    if last.effective_to is not None and day > last.effective_to:
        return last.not_covered_after or f"no UR procedural pack covers requests received after {last.effective_to}"
    return f"no UR procedural pack covers requests received on {day.isoformat()}"


def assess(ur: UtilizationReview, jurisdiction: str, procedures: tuple[Procedure, ...]) -> Timeliness:
    """The timeliness of one UR decision under the procedural pack in force on its day of receipt."""
    try:
        return _assess(ur, jurisdiction, procedures)
    except OverflowError:  # a deadline past 9999-12-31 (only a pack open-ended to then can reach it)
        return Timeliness(
            "cannot_decide", None, None, None, None, None, None, None, None, None,
            reasons=("the deadline falls after the last day the calendar can count (9999-12-31)",),
        )  # fmt: skip


def _assess(ur: UtilizationReview, jurisdiction: str, procedures: tuple[Procedure, ...]) -> Timeliness:
    if ur.rfa is None:
        return Timeliness(
            "cannot_decide", _kinds(ur)[0] if len(_kinds(ur)) == 1 else None, None, None, None, None, None, None,
            None, None, needs=("utilization_review[].rfa_received",),
            reasons=("the records do not say when the request for authorization was received",),
        )  # fmt: skip
    stated = ur.rfa.mailed_on or ur.rfa.received_on or (ur.rfa.received_at.date() if ur.rfa.received_at else None)
    assert stated is not None
    procedure = select(procedures, jurisdiction, stated)
    if procedure is None:
        return Timeliness(
            "cannot_decide", None, None, None, None, None, None, None, None, None,
            reasons=(_not_covered(procedures, jurisdiction, stated),),
        )  # fmt: skip
    w = _Work(procedure)
    day, at = w.received(ur.rfa)
    kinds = _kinds(ur)
    if len(kinds) > 1:
        w.need("utilization_review[].review_type")
        w.reasons.append("the records do not say whether the review was prospective, concurrent or retrospective")
    zero: Span | None = None
    if any(procedure.base_limit(k).unit != "hours" for k in kinds):
        zero = w.day_zero(ur.rfa, day, at)
    results = [_result(w, ur, kind, zero, day, at) for kind in kinds]
    for result in results:
        w.step("deadline", _show(result.deadline.lo), result.limit.source, result.limit.provenance)
    deadline = results[0].deadline
    for result in results[1:]:
        deadline = deadline.union(result.deadline)
    hours = results[0].limit.unit == "hours"
    status, decided = _decided(w, ur, deadline, hours=hours)
    # the limit the result rests on: late under the most lenient limit the records allow, on time under the strictest
    pick = max if status == "untimely" else min
    chosen = pick(results, key=lambda r: r.deadline.lo)
    limit = chosen.limit
    _doubts(w, results)
    if status != "cannot_decide":
        reasons: tuple[str, ...] = ()
        needs: tuple[str, ...] = ()
    else:
        reasons, needs = tuple(w.reasons), tuple(w.needs)
    if limit.source not in w.used:
        w.used.append(limit.source)
    if status == "untimely" and procedure.consequence_source not in w.used:
        w.used.append(procedure.consequence_source)
    skipped = () if hours else _skipped(w, day, chosen.deadline.lo)
    grades = [limit.provenance] + [
        h.provenance for y in sorted(w.cal.years_used) if (h := procedure.holiday_year(y)) is not None
    ]
    return Timeliness(
        status=status,
        review=kinds[0] if len(kinds) == 1 else None,
        procedure=procedure.id,
        procedure_file=procedure.file,
        limit=limit.id,
        rule=limit.rule,
        source=procedure.source(limit.source).address,
        provenance=max(grades, key=PROVENANCE_ORDER.index),
        received=zero,
        deadline=deadline,
        days_counted=chosen.counted,
        skipped=skipped,
        extension=chosen.extension,
        decided=decided,
        steps=tuple(w.steps),
        reasons=reasons,
        needs=needs,
        consequence=procedure.consequence if status == "untimely" else None,
        consequence_source=procedure.source(procedure.consequence_source).address if status == "untimely" else None,
        sources=tuple((s, procedure.source(s).address) for s in dict.fromkeys(w.used)),
    )


def _result(
    w: _Work, ur: UtilizationReview, kind: ReviewKind, zero: Span | None, day: dt.date, at: dt.datetime | None
) -> _Result:
    """The deadline under one review kind: its base limit, or its extension when more information was asked
    for within the time the pack allows (both, when that depends on the unknowns)."""
    limit = w.p.base_limit(kind)
    if limit.unit == "hours" or zero is None:
        return _Result(kind, limit, w.hour_deadline(limit, day, at), (), None)
    base, counted = w.day_deadline(limit, zero, record=True)
    ext_limit = w.p.extension(kind)
    asked = ur.more_information_requested_on
    if ext_limit is None or asked is None:
        return _Result(kind, limit, base, counted, False)
    within, _ = w.day_deadline(w.p.limit(ext_limit.requested_within or limit.id), zero, record=False)
    w.step("more_information_requested", asked.isoformat())
    if within.hi is not None and asked > within.hi:
        return _Result(kind, limit, base, counted, False)
    extended, _ = w.day_deadline(ext_limit, zero, record=True)
    if asked <= within.lo:
        w.step("extension", _show(extended.lo), ext_limit.source, ext_limit.provenance)
        return _Result(kind, ext_limit, extended, (), True)
    w.reasons.append(
        f"whether more information was asked for within the time limit `{ext_limit.requested_within}` "
        "depends on the unknowns above"
    )
    return _Result(kind, limit, base.union(extended), counted, None)


def _decided(w: _Work, ur: UtilizationReview, deadline: Span, *, hours: bool) -> tuple[Status, str | None]:
    """The status of the decision against `deadline`, and when it was decided (as the result shows it)."""
    decided_at = w.local(ur.decided_at) if ur.decided_at is not None else None
    decided_day = decided_at.date() if decided_at is not None else ur.decision_date
    if decided_day is None:
        w.need("utilization_review[].decision_date")
        return "cannot_decide", None
    if not hours:
        return _compare(decided_day, decided_day, deadline), decided_day.isoformat()
    d_lo = decided_at or dt.datetime.combine(decided_day, dt.time(0), w.tz)
    d_hi = decided_at or (
        dt.datetime.combine(decided_day + dt.timedelta(days=1), dt.time(0), w.tz) - dt.timedelta(microseconds=1)
    )
    decided = decided_at.isoformat(timespec="minutes") if decided_at else decided_day.isoformat()
    if decided_at is None:
        w.need("utilization_review[].decided_at (the time of the decision)")
    return _compare(d_lo, d_hi, deadline), decided


def _doubts(w: _Work, results: list[_Result]) -> None:
    """The reasons the calendar gives: years without holidays (when a deadline is open-ended), uncertain days."""
    if any(r.deadline.hi is None for r in results):
        for year in sorted(w.cal.unknown_years):
            w.holidays_unknown(year)
    for day_, doubt in sorted(w.cal.doubts.items()):
        w.reasons.append(f"{_day_name(day_)} ({doubt.name}) may not be a business day: {doubt.why}")
        if doubt.source not in w.used:
            w.used.append(doubt.source)


def _skipped(w: _Work, day: dt.date, last: dt.date) -> tuple[dt.date, ...]:
    """The closed days after `day` up to `last`; each named holiday among them is a step."""
    skipped = tuple(
        day + dt.timedelta(days=n)
        for n in range(1, (last - day).days + 1)
        if w.cal.business(day + dt.timedelta(days=n)) is False
    )
    for closed in skipped:
        named = w.cal.named(closed)
        if named is not None:
            listed = w.p.holiday_year(closed.year)
            assert listed is not None
            w.step("holiday", f"{closed.isoformat()} {named.name}", named.source, listed.provenance)
    return skipped


def _day_name(day: dt.date) -> str:
    return f"{day.strftime('%A')} {day.isoformat()}"


def _compare(lo: Any, hi: Any, deadline: Span) -> Status:
    """Decided between `lo` and `hi`, against a deadline between `deadline.lo` and `deadline.hi`."""
    if hi <= deadline.lo:
        return "timely"
    if deadline.hi is not None and lo > deadline.hi:
        return "untimely"
    return "cannot_decide"


def _show(value: dt.date | dt.datetime) -> str:
    return value.isoformat(timespec="minutes") if isinstance(value, dt.datetime) else value.isoformat()


def attach(
    case: Case, items: tuple[ItemDetermination, ...], procedures: tuple[Procedure, ...]
) -> tuple[ItemDetermination, ...]:
    """Each item whose UR entry states when the request was received gains `ur_timeliness`; nothing else
    of the item changes (an untimely UR says so in its own object, docs/ur-timeliness.md)."""
    out = []
    for item in items:
        ur = case.ur_for(item.request)
        if ur is None or not ur.states_procedure:
            out.append(item)
        else:
            found = assess(ur, case.jurisdiction, procedures)
            at = f"utilization_review[{case.utilization_review.index(ur)}]"
            needs = tuple(n.replace("utilization_review[]", at) for n in found.needs)
            out.append(evolve(item, ur_timeliness=dataclasses.replace(found, needs=needs)))
    return tuple(out)
