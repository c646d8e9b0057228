"""The shipped California holiday calendars (policies/ca-ur-procedure/*.yaml) at the boundaries the issue names.

Every date here is a consequence of the packs' sourced rules (Government Code 6700/6701 for 2013-2019; CalHR's
list under LC 4600.4(b) from 2020); the expected deadlines are counted by hand in each comment.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from imr_policy.engine.timeliness import assess
from imr_policy.loading.validate import load_editions
from imr_policy.model.values import RfaReceipt, UtilizationReview

ROOT = Path(__file__).resolve().parents[2]
PACKS = load_editions([ROOT / "policies" / "ca-ur-procedure"]).procedures
D = dt.date.fromisoformat


def ur(at: str, decided: str | None = None, **kw: object) -> UtilizationReview:
    return UtilizationReview(
        "r1",
        "deny",
        decision_date=D(decided) if decided else None,
        review_type=kw.get("review_type", "prospective"),  # type: ignore[arg-type]
        expedited=bool(kw.get("expedited", False)),
        rfa=RfaReceipt("fax", received_at=dt.datetime.fromisoformat(at)),  # type: ignore[arg-type]
        more_information_requested_on=D(str(kw["more_info"])) if "more_info" in kw else None,
        decided_at=dt.datetime.fromisoformat(str(kw["decided_at"])) if "decided_at" in kw else None,
    )


def status(at: str, decided: str | None = None, **kw: object) -> str:
    return assess(ur(at, decided, **kw), "CA", PACKS).status


def test_friday_after_the_cutoff_before_a_state_holiday() -> None:
    # Friday 2021-01-15 17:31 Pacific, Monday 01-18 is Martin Luther King Jr. Day: received Tuesday 01-19;
    # counted Wed 20, Thu 21, Fri 22, Mon 25, Tue 26
    t = assess(ur("2021-01-15T17:31", "2021-01-26"), "CA", PACKS)
    assert (t.status, t.procedure) == ("timely", "ca-ur-2020")
    assert (t.received.lo, t.received.hi) == (D("2021-01-19"), D("2021-01-19"))
    assert (t.deadline.lo, t.deadline.hi) == (D("2021-01-26"), D("2021-01-26"))
    assert ("holiday", "2021-01-18 Martin Luther King Jr. Day", "calhr-rule") in [
        (s.kind, s.value, s.source) for s in t.steps
    ]
    assert t.provenance == "V-2nd"
    assert status("2021-01-15T17:31", "2021-01-27") == "untimely"  # the day after the deadline
    untimely = assess(ur("2021-01-15T17:31", "2021-01-27"), "CA", PACKS)
    assert untimely.consequence is not None and "WCAB" in untimely.consequence


def test_the_minute_before_and_after_the_cutoff() -> None:
    # 17:29 and 17:30 count Friday as day zero: Tue 19, Wed 20, Thu 21, Fri 22, Mon 25
    for minute in ("17:29", "17:30"):
        assert status(f"2021-01-15T{minute}", "2021-01-25") == "timely"
        assert status(f"2021-01-15T{minute}", "2021-01-26") == "untimely"
    assert status("2021-01-15T17:31", "2021-01-26") == "timely"


def test_a_year_boundary_with_christmas_and_new_year() -> None:
    # Thursday 2020-12-24 10:00: Fri 12-25 Christmas; Mon 28, Tue 29, Wed 30, Thu 31, (Fri 01-01), Mon 2021-01-04
    t = assess(ur("2020-12-24T10:00", "2021-01-04"), "CA", PACKS)
    assert t.status == "timely" and (t.deadline.lo, t.deadline.hi) == (D("2021-01-04"), D("2021-01-04"))
    assert {D("2020-12-25"), D("2021-01-01")} <= set(t.skipped)
    assert status("2020-12-24T10:00", "2021-01-05") == "untimely"


def test_the_day_after_thanksgiving_before_and_from_2020() -> None:
    # 2015 (Government Code 6700; Gomez): Fri 11-20 10:00 -> Mon 23, Tue 24, Wed 25, (Thu 26), Fri 27, Mon 30
    assert status("2015-11-20T10:00", "2015-11-30") == "timely"
    assert status("2015-11-20T10:00", "2015-12-01") == "untimely"
    # 2021 (CalHR): Fri 11-19 10:00 -> Mon 22, Tue 23, Wed 24, (Thu 25, Fri 26), Mon 29, Tue 30
    assert status("2021-11-19T10:00", "2021-11-30") == "timely"
    assert status("2021-11-19T10:00", "2021-12-01") == "untimely"


def test_expedited_72_hours_over_thanksgiving() -> None:
    kw = {"expedited": True, "review_type": None}
    assert status("2021-11-24T10:00", "2021-11-27", decided_at="2021-11-27T10:00", **kw) == "timely"
    assert status("2021-11-24T10:00", "2021-11-27", decided_at="2021-11-27T10:01", **kw) == "untimely"


def test_retrospective_30_days_ending_on_a_holiday() -> None:
    # Wed 2021-10-27 + 30 days = Fri 11-26, the day after Thanksgiving: whether the limit runs to Monday 11-29 is
    # not in the sources (the pack's `closed_last_day`), so 11-29 cannot be decided and 11-30 is late
    kw = {"review_type": "retrospective"}
    assert status("2021-10-27T10:00", "2021-11-26", **kw) == "timely"
    between = assess(ur("2021-10-27T10:00", "2021-11-29", **kw), "CA", PACKS)
    assert between.status == "cannot_decide"
    assert any("calendar days that ends on a non-business day" in r for r in between.reasons)
    assert status("2021-10-27T10:00", "2021-11-30", **kw) == "untimely"


def test_an_extension_for_more_information() -> None:
    # Mon 2021-11-01 10:00, more information asked Wed 11-03: 14 days from receipt, Monday 11-15
    assert status("2021-11-01T10:00", "2021-11-15", more_info="2021-11-03") == "timely"
    assert status("2021-11-01T10:00", "2021-11-16", more_info="2021-11-03") == "untimely"
    # without the extension the 5 business days end Mon 11-08
    assert status("2021-11-01T10:00", "2021-11-09") == "untimely"


def test_an_uncertain_day_refuses_only_where_it_matters() -> None:
    # Native American Day (Fri 2021-09-24) may be listed by CalHR: Mon 09-20 10:00 -> Mon 09-27 or Tue 09-28
    assert status("2021-09-20T10:00", "2021-09-27") == "timely"
    t = assess(ur("2021-09-20T10:00", "2021-09-28"), "CA", PACKS)
    assert t.status == "cannot_decide" and t.needs == ()
    assert any(r.startswith("Friday 2021-09-24 (Native American Day) may not be a business day") for r in t.reasons)
    assert status("2021-09-20T10:00", "2021-09-29") == "untimely"
    # Columbus Day 2015 under Government Code 6700: Wed 10-07 10:00 -> Wed 10-14 or Thu 10-15
    assert status("2015-10-07T10:00", "2015-10-14") == "timely"
    assert status("2015-10-07T10:00", "2015-10-15") == "cannot_decide"
    assert status("2015-10-07T10:00", "2015-10-16") == "untimely"
    # the federal closing of 2019-12-24 (EO 13900) is uncertain; a 2020 day after it is unknown to the 2013 pack
    assert status("2019-12-16T10:00", "2019-12-23") == "timely"


def test_the_lunar_new_year_whose_date_is_not_in_the_sources() -> None:
    # 2025: every weekday from 01-21 to 02-20 may be the Lunar New Year; a decision within the earliest deadline
    # is timely, a later one cannot be decided, never untimely for want of its date
    assert status("2025-01-27T10:00", "2025-02-03") == "timely"
    t = assess(ur("2025-01-27T10:00", "2025-02-04"), "CA", PACKS)
    assert t.status == "cannot_decide"
    assert any("Lunar New Year" in r for r in t.reasons)
    # 2024: it fell on a Saturday and nothing is uncertain in late January
    assert status("2024-01-22T10:00", "2024-01-30") == "untimely"


def test_the_computed_years_agree_with_calhr_lists_of_2013_and_2014() -> None:
    # CalHR's lists (calhr-2013-2014), less the day after Thanksgiving, a working day before 2020 (Gomez)
    calhr = {
        2013: "01-01 01-21 02-18 04-01 05-27 07-04 09-02 11-11 11-28 12-25",
        2014: "01-01 01-20 02-17 03-31 05-26 07-04 09-01 11-11 11-27 12-25",
    }
    pack = next(p for p in PACKS if p.id == "ca-ur-2013")
    for year, days in calhr.items():
        listed = pack.holiday_year(year)
        assert listed is not None and listed.basis == "rules"
        weekdays = {d for d in listed.dates if d.weekday() < 5}
        assert weekdays == {D(f"{year}-{md}") for md in days.split()}


def test_every_shipped_year_has_a_source_and_a_grade() -> None:
    for pack in PACKS:
        for year, listed in pack.holidays:
            assert listed.source in {s.id for s in pack.sources}, (pack.id, year)
            assert listed.provenance in ("V", "V-2nd", "UNVERIFIED"), (pack.id, year)
            for doubt in listed.uncertain:
                assert doubt.why, (pack.id, doubt.day)
    years = {p.id: [y for y, _ in p.holidays] for p in PACKS}
    assert years == {"ca-ur-2013": list(range(2013, 2020)), "ca-ur-2020": list(range(2020, 2027))}
