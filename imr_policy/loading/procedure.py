"""UR procedural packs: the time limits, receipt rules and calendar of one jurisdiction and era.

A procedural pack (`policies/<jurisdiction>-ur-procedure/<from>.yaml`, schema
`schemas/ur-procedure.schema.json`) is law, like a jurisdiction profile: it is parsed with a source map,
checked against its schema, then for meaning (references, holidays in their years, one time limit per
review kind), and packs of one jurisdiction are checked against each other (no two in force on one day).
What the sources do not give is data too (`unknown`, `unknown_years`); `timeliness.py` decides only
where it cannot matter. Nothing here computes a deadline.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any, Literal

from imr_policy.loading.schemacheck import float_diagnostics, schema_diagnostics
from imr_policy.loading.yamlsrc import SourceMap, child_path, load_text, located, parent_path
from imr_policy.model.diagnostics import Diagnostic, did_you_mean
from imr_policy.model.values import ReviewKind

Unit = Literal["business_days", "calendar_days", "hours"]
REVIEW_KINDS: tuple[ReviewKind, ...] = ("prospective", "concurrent", "retrospective", "expedited")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    title: str
    address: str


@dataclass(frozen=True, slots=True)
class TimeLimit:
    id: str
    applies_to: tuple[ReviewKind, ...]
    value: int
    unit: Unit
    provenance: str
    source: str
    rule: str
    when: Literal["more_information"] | None = None
    requested_within: str | None = None


@dataclass(frozen=True, slots=True)
class Holiday:
    """One day of a year's calendar that is not a business day (`why` is None) or may not be one."""

    day: dt.date
    name: str
    source: str
    why: str | None = None  # set when the sources do not settle whether the day is a business day


@dataclass(frozen=True, slots=True)
class HolidayYear:
    dates: frozenset[dt.date]  # the days that are certainly not business days (besides closed weekdays)
    provenance: str
    source: str
    basis: Literal["rules", "list"] = "list"
    holidays: tuple[Holiday, ...] = ()  # the named days of `dates`
    uncertain: tuple[Holiday, ...] = ()  # days that may or may not be business days, each with why

    def named(self, day: dt.date) -> Holiday | None:
        return next((h for h in self.holidays if h.day == day), None)

    def doubt(self, day: dt.date) -> Holiday | None:
        return next((h for h in self.uncertain if h.day == day), None)


def _easter(year: int) -> dt.date:
    """Western (Gregorian) Easter Sunday: the anonymous Gregorian computus (Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def rule_days(rule: dict[str, Any], year: int) -> list[tuple[dt.date, str]]:
    """The days one holiday rule gives in `year`: its own day, and the day it is observed on when it moves.

    A rule that has no day in `year` (outside `from_year`..`to_year`) gives none. Nothing here is a guess: the
    rule says which day; `between` gives every day of its span (an uncertain holiday whose date is not given).
    """
    if year < rule.get("from_year", year) or year > rule.get("to_year", year):
        return []
    name = rule["name"]
    if "between" in rule:
        lo, hi = (dt.date(year, *map(int, mmdd.split("-"))) for mmdd in rule["between"])
        return [(lo + dt.timedelta(days=n), name) for n in range((hi - lo).days + 1)]
    if "easter" in rule:
        day = _easter(year) + dt.timedelta(days=rule["easter"])
    elif "day" in rule:
        day = dt.date(year, rule["month"], rule["day"])
    else:
        wd = WEEKDAYS.index(rule["weekday"])
        if rule["nth"] == -1:
            nxt = dt.date(year + 1, 1, 1) if rule["month"] == 12 else dt.date(year, rule["month"] + 1, 1)
            day = nxt - dt.timedelta(days=1)
            day -= dt.timedelta(days=(day.weekday() - wd) % 7)
        else:
            first = dt.date(year, rule["month"], 1)
            day = first + dt.timedelta(days=(wd - first.weekday()) % 7 + 7 * (rule["nth"] - 1))
    day += dt.timedelta(days=rule.get("plus_days", 0))
    out = [(day, name)]
    if day.weekday() == 6 and rule.get("sunday") == "next_monday":
        out.append((day + dt.timedelta(days=1), f"{name} (observed)"))
    if day.weekday() == 5 and rule.get("saturday") == "previous_friday":
        out.append((day - dt.timedelta(days=1), f"{name} (observed)"))
    return [(d, n) for d, n in out if d.year == year]


@dataclass(frozen=True, slots=True)
class Procedure:
    id: str
    jurisdiction: str
    title: str
    effective_from: dt.date
    effective_to: dt.date | None
    time_zone: str
    business_weekdays: frozenset[int]  # 0 = Monday, as datetime.date.weekday()
    holidays: tuple[tuple[int, HolidayYear], ...]  # by year; a year not listed is unknown
    unknown_years: str
    cutoff: dt.time
    cutoff_channels: frozenset[str]
    cutoff_provenance: str
    cutoff_source: str
    day_zero_provenance: str
    day_zero_source: str
    mail_days: int
    mail_provenance: str
    mail_source: str
    unknown: tuple[tuple[str, str], ...]  # receipt questions the sources do not answer: key -> why
    limits: tuple[TimeLimit, ...]
    consequence: str
    consequence_source: str
    sources: tuple[Source, ...]
    letter: tuple[tuple[str, str], ...]  # required letter elements: (id, what it says)
    letter_source: str | None
    letter_provenance: str | None
    not_covered_before: str | None
    not_covered_after: str | None
    file: str
    sha256: str
    lines: tuple[tuple[str, int], ...] = ()  # JSON path -> line in `file` (a key's line, else its value's)
    weekdays_provenance: str = ""  # of `business_weekdays_basis`
    weekdays_source: str = ""
    holiday_rules_provenance: str | None = None  # of `holidays.rules`, when the pack has rules
    holiday_rules_source: str | None = None

    def line(self, path: str) -> int | None:
        """The line of `path` in the pack's file, or of its nearest ancestor that has one."""
        table = dict(self.lines)
        while path not in table:
            if path in ("$", ""):
                return None
            path = parent_path(path)
        return table[path]

    def covers(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def holiday_year(self, year: int) -> HolidayYear | None:
        return next((h for y, h in self.holidays if y == year), None)

    def unknown_about(self, key: str) -> str | None:
        return next((why for k, why in self.unknown if k == key), None)

    def source(self, source_id: str) -> Source:
        return next(s for s in self.sources if s.id == source_id)

    def base_limit(self, kind: ReviewKind) -> TimeLimit:
        return next(lim for lim in self.limits if kind in lim.applies_to and lim.when is None)

    def extension(self, kind: ReviewKind) -> TimeLimit | None:
        return next((lim for lim in self.limits if kind in lim.applies_to and lim.when == "more_information"), None)

    def limit(self, limit_id: str) -> TimeLimit:
        return next(lim for lim in self.limits if lim.id == limit_id)


def is_procedure(parent_name: str, text: str) -> bool:
    """Procedural packs live in a `*-ur-procedure/` directory or declare their schema for editors."""
    return parent_name.endswith("-ur-procedure") or "schemas/ur-procedure.schema.json" in text[:2000]


def check_procedure_text(
    text: str, *, file: str, sha256: str
) -> tuple[Procedure | None, list[Diagnostic], SourceMap | None]:
    """Validate one procedural pack; the Procedure only when it has no errors."""
    loaded = load_text(text, file=file, code_prefix="policy")
    if loaded.data is None or loaded.diagnostics:
        return None, list(loaded.diagnostics), loaded.source_map
    problems = schema_diagnostics(
        "ur-procedure", loaded.data, prefix="policy.schema", file=file, source_map=loaded.source_map
    )
    reported = {d.path for d in problems}
    problems += [
        d
        for d in float_diagnostics(loaded.data, prefix="policy.schema", file=file, source_map=loaded.source_map)
        if d.path not in reported
    ]
    if problems:
        return None, problems, loaded.source_map
    checker = _Semantics(loaded.data, file, loaded.source_map)
    procedure = checker.run(sha256)
    return (None if checker.problems else procedure), checker.problems, loaded.source_map


class _Semantics:
    def __init__(self, data: dict[str, Any], file: str, smap: SourceMap) -> None:
        self.data = data
        self.file = file
        self.smap = smap
        self.problems: list[Diagnostic] = []
        self.source_ids: set[str] = set()

    def report(self, code: str, message: str, path: str, hint: str) -> None:
        self.problems.append(located(code, message, path, file=self.file, source_map=self.smap, hint=hint))

    def _unique(self, items: list[dict[str, Any]], base: str, what: str) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if item["id"] in seen:
                self.report(
                    "policy.duplicate-id",
                    f"duplicate {what} id `{item['id']}` (first at {base}[{seen[item['id']]}])",
                    f"{base}[{i}].id",
                    f"each {what} needs its own id",
                )
            else:
                seen[item["id"]] = i

    def run(self, sha256: str) -> Procedure:
        d = self.data
        self._unique(d["sources"], "$.sources", "source")
        self._unique(d["limits"], "$.limits", "time limit")
        self.source_ids = {s["id"] for s in d["sources"]}
        proc, cal, receipt = d["procedure"], d["calendar"], d["receipt"]
        start, end = self._effective(proc)
        self._cite(cal["business_weekdays_basis"]["source"], "$.calendar.business_weekdays_basis.source")
        holidays = self._holidays(cal["holidays"])
        self._cite(receipt["day_zero"]["source"], "$.receipt.day_zero.source")
        self._cite(receipt["cutoff"]["source"], "$.receipt.cutoff.source")
        self._cite(receipt["mail"]["source"], "$.receipt.mail.source")
        limits = self._limits(d["limits"])
        self._one_limit_per_kind(d["limits"])
        self._cite(d["consequence"]["source"], "$.consequence.source")
        letter = d.get("letter")
        if letter is not None:
            self._cite(letter["source"], "$.letter.source")
        gaps = proc.get("not_covered", {})
        hh, mm = receipt["cutoff"]["after"].split(":")
        return Procedure(
            id=proc["id"],
            jurisdiction=proc["jurisdiction"],
            title=proc["title"],
            effective_from=start,
            effective_to=end,
            time_zone=d["time_zone"],
            business_weekdays=frozenset(WEEKDAYS.index(w) for w in cal["business_weekdays"]),
            holidays=tuple(sorted(holidays, key=lambda h: h[0])),
            unknown_years=cal["holidays"]["unknown_years"],
            cutoff=dt.time(int(hh), int(mm)),
            cutoff_channels=frozenset(receipt["cutoff"]["channels"]),
            cutoff_provenance=receipt["cutoff"]["provenance"],
            cutoff_source=receipt["cutoff"]["source"],
            day_zero_provenance=receipt["day_zero"]["provenance"],
            day_zero_source=receipt["day_zero"]["source"],
            mail_days=receipt["mail"]["presumed_received_after_days"],
            mail_provenance=receipt["mail"]["provenance"],
            mail_source=receipt["mail"]["source"],
            unknown=tuple(sorted(receipt.get("unknown", {}).items())),
            limits=tuple(limits),
            consequence=d["consequence"]["untimely"],
            consequence_source=d["consequence"]["source"],
            sources=tuple(Source(s["id"], s["title"], s["address"]) for s in d["sources"]),
            letter=tuple((e["id"], e["says"]) for e in letter["elements"]) if letter else (),
            letter_source=letter["source"] if letter else None,
            letter_provenance=letter["provenance"] if letter else None,
            not_covered_before=gaps["before"]["says"] if "before" in gaps else None,
            not_covered_after=gaps["after"]["says"] if "after" in gaps else None,
            file=self.file,
            sha256=sha256,
            lines=self._lines(),
            weekdays_provenance=cal["business_weekdays_basis"]["provenance"],
            weekdays_source=cal["business_weekdays_basis"]["source"],
            holiday_rules_provenance=cal["holidays"].get("rules", {}).get("provenance"),
            holiday_rules_source=cal["holidays"].get("rules", {}).get("source"),
        )

    def _lines(self) -> tuple[tuple[str, int], ...]:
        at = {path: pos[0] for path, pos in self.smap.values.items()}
        at.update((path, pos[0]) for path, pos in self.smap.keys.items())
        return tuple(sorted(at.items()))

    def _cite(self, source_id: str | None, path: str) -> None:
        if source_id is not None and source_id not in self.source_ids:
            self.report(
                "policy.unknown-citation",
                f"source `{source_id}` is not defined in this file",
                path,
                did_you_mean(source_id, self.source_ids) or "add it under `sources:` with its address",
            )

    def _effective(self, proc: dict[str, Any]) -> tuple[dt.date, dt.date | None]:
        """The pack's window, in order, and the sources of it and of what is said outside it."""
        effective = proc["effective"]
        start = dt.date.fromisoformat(effective["from"])
        end = dt.date.fromisoformat(effective["to"]) if effective["to"] else None
        if end is not None and end < start:
            self.report(
                "policy.effective-range",
                f"the pack ends (`{effective['to']}`) before it starts (`{effective['from']}`)",
                "$.procedure.effective.to",
                "`from` and `to` are both inclusive; swap them or fix the year",
            )
        self._cite(effective.get("source"), "$.procedure.effective.source")
        gaps = proc.get("not_covered", {})
        for side in ("before", "after"):
            if side in gaps:
                self._cite(gaps[side].get("source"), f"$.procedure.not_covered.{side}.source")
        return start, end

    def _limits(self, raw: list[dict[str, Any]]) -> list[TimeLimit]:
        """The time limits, each citing a source and naming (in `requested_within`) only limits of this file."""
        limit_ids = {lim["id"] for lim in raw}
        limits: list[TimeLimit] = []
        for i, lim in enumerate(raw):
            self._cite(lim["source"], f"$.limits[{i}].source")
            within = lim.get("requested_within")
            if within is not None and within not in limit_ids:
                self.report(
                    "policy.unknown-limit",
                    f"time limit `{within}` is not defined in this file",
                    f"$.limits[{i}].requested_within",
                    did_you_mean(within, limit_ids) or "name the time limit within which more information is asked",
                )
            limits.append(
                TimeLimit(
                    lim["id"],
                    tuple(lim["applies_to"]),
                    lim["value"],
                    lim["unit"],
                    lim["provenance"],
                    lim["source"],
                    lim["rule"],
                    lim.get("when"),
                    within,
                )
            )
        return limits

    def _rules(self, rules: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The calendar rule's holidays, each with exactly one way of giving its day."""
        if rules is None:
            return []
        self._cite(rules["source"], "$.calendar.holidays.rules.source")
        good = []
        for i, rule in enumerate(rules["days"]):
            base = f"$.calendar.holidays.rules.days[{i}]"
            self._cite(rule.get("source"), f"{base}.source")
            ways = [k for k in ("day", "weekday", "easter", "between") if k in rule]
            problem = None
            if len(ways) != 1:
                problem = "give the day one way: `month` and `day`, `month` `weekday` and `nth`, `easter`, or `between`"
            elif ways == ["day"] and "month" not in rule:
                problem = "a fixed day needs its `month`"
            elif ways == ["weekday"] and ("month" not in rule or "nth" not in rule or rule["nth"] == 0):
                problem = "an nth weekday needs its `month` and `nth` (1 to 5, or -1 for the last)"
            elif ways == ["between"] and rule["status"] != "uncertain":
                problem = "`between` says only that an uncertain holiday falls in a span: give `status: uncertain`"
            elif ways == ["day"]:
                try:
                    dt.date(2000, rule["month"], rule["day"])  # a leap year: February 29 is a day
                except ValueError:
                    problem = f"month {rule['month']} has no day {rule['day']}"
            if rule["status"] == "uncertain" and "why" not in rule:
                problem = "an uncertain holiday must say `why` the sources do not settle it"
            if problem is not None:
                self.report("policy.holiday-rule", f"holiday rule `{rule['name']}`: {problem}", base, problem)
                continue
            good.append(rule | {"source": rule.get("source", rules["source"])})
        return good

    def _holidays(self, spec: dict[str, Any]) -> list[tuple[int, HolidayYear]]:
        before = len(self.problems)
        rules = self._rules(spec.get("rules"))
        rules_ok = len(self.problems) == before  # a broken rule would make every list disagree: say it once
        out: list[tuple[int, HolidayYear]] = []
        for year_key, entry in spec["years"].items():
            base = child_path("$.calendar.holidays.years", year_key)
            self._cite(entry["source"], f"{base}.source")
            if not (len(year_key) == 4 and year_key.isdigit()):
                self.report(
                    "policy.holiday-year",
                    f"`{year_key}` is not a year",
                    base,
                    "key each year's holidays by its year, e.g. `2015:`",
                )
                continue
            year = int(year_key)
            certain: dict[dt.date, Holiday] = {}
            doubtful: dict[dt.date, Holiday] = {}
            for rule in rules:
                for day, name in rule_days(rule, year):
                    if rule["status"] == "holiday":
                        certain.setdefault(day, Holiday(day, name, rule["source"]))
                    else:
                        doubtful.setdefault(day, Holiday(day, name, rule["source"], rule["why"]))
            if entry["basis"] == "rules" and not rules:
                self.report(
                    "policy.holiday-rule",
                    f"the holidays of {year_key} are to be computed from `rules`, but the pack has no rules",
                    f"{base}.basis",
                    "add `rules:` under `holidays:`, or list the year's `dates` with `basis: list`",
                )
            if entry["basis"] == "list":
                if "dates" not in entry:
                    self.report(
                        "policy.holiday-year",
                        f"the list of {year_key} has no `dates`",
                        base,
                        "give the dated list, or `basis: rules`",
                    )
                listed = self._listed(entry.get("dates", []), year_key, base)
                if rules and rules_ok:
                    self._agree(listed, certain, year_key, base)
                certain = {day: certain.get(day, Holiday(day, "holiday", entry["source"])) for day in listed}
            for i, extra in enumerate(entry.get("uncertain", [])):
                self._cite(extra["source"], f"{base}.uncertain[{i}].source")
                day = self._listed([extra["date"]], year_key, f"{base}.uncertain[{i}]", field="date")[0]
                doubtful.setdefault(day, Holiday(day, extra["name"], extra["source"], extra["why"]))
            doubtful = {day: h for day, h in doubtful.items() if day not in certain}
            out.append(
                (
                    year,
                    HolidayYear(
                        frozenset(certain),
                        entry["provenance"],
                        entry["source"],
                        entry["basis"],
                        tuple(sorted(certain.values(), key=lambda h: h.day)),
                        tuple(sorted(doubtful.values(), key=lambda h: h.day)),
                    ),
                )
            )
        return sorted(out, key=lambda h: h[0])

    def _listed(self, texts: list[str], year_key: str, base: str, field: str = "dates") -> list[dt.date]:
        days = []
        for i, text in enumerate(texts):
            day = dt.date.fromisoformat(text)
            if day.year != int(year_key):
                self.report(
                    "policy.holiday-year",
                    f"holiday `{text}` is listed under the year `{year_key}`",
                    f"{base}.{field}[{i}]" if field == "dates" else f"{base}.{field}",
                    f"move it to the list of {day.year}, or fix the date",
                )
            days.append(day)
        return days

    def _agree(self, listed: list[dt.date], computed: dict[dt.date, Holiday], year_key: str, base: str) -> None:
        """A dated list and the pack's rules must give the same weekdays (a weekend day changes no count)."""
        weekday = {d for d in listed if d.weekday() < 5}
        ruled = {d for d in computed if d.weekday() < 5}
        if weekday != ruled:
            missing = ", ".join(f"{d} ({computed[d].name})" for d in sorted(ruled - weekday))
            extra = ", ".join(str(d) for d in sorted(weekday - ruled))
            said = "; ".join(
                part
                for part in (f"the rules give {missing} and the list does not" if missing else "",
                             f"the list gives {extra} and the rules do not" if extra else "")
                if part
            )  # fmt: skip
            self.report(
                "policy.holiday-list-disagrees",
                f"the dated list of {year_key} and the pack's holiday rules disagree: {said}",
                f"{base}.dates",
                "check the list against its source and the rules against theirs; never make one agree by guessing",
            )

    def _one_limit_per_kind(self, limits: list[dict[str, Any]]) -> None:
        """Every review kind has exactly one time limit of its own, and at most one extension."""
        for when in (None, "more_information"):
            first: dict[str, int] = {}
            for i, lim in enumerate(limits):
                if lim.get("when") != when:
                    continue
                for kind in lim["applies_to"]:
                    if kind in first:
                        self.report(
                            "policy.duplicate-time-limit",
                            f"`{kind}` review has two "
                            + ("time limits" if when is None else "extensions")
                            + f" (first at $.limits[{first[kind]}])",
                            f"$.limits[{i}].applies_to",
                            "give each review kind one time limit, and at most one for more information",
                        )
                    else:
                        first[kind] = i
            if when is None:
                for kind in REVIEW_KINDS:
                    if kind not in first:
                        self.report(
                            "policy.missing-time-limit",
                            f"no time limit for `{kind}` review",
                            "$.limits",
                            "add a limit that applies to it, with its value, unit, source and provenance",
                        )


def check_procedure_set(procedures: list[Procedure], maps: dict[str, SourceMap | None]) -> list[Diagnostic]:
    """Two packs of one jurisdiction must never both govern one day of receipt."""
    problems: list[Diagnostic] = []
    by_jurisdiction = sorted(procedures, key=lambda p: (p.jurisdiction, p.effective_from, p.file))
    for _, group in itertools.groupby(by_jurisdiction, key=lambda p: p.jurisdiction):
        for earlier, later in itertools.combinations(list(group), 2):
            if earlier.effective_to is None or later.effective_from <= earlier.effective_to:
                ends = earlier.effective_to.isoformat() if earlier.effective_to else "open-ended (`to: null`)"
                problems.append(
                    located(
                        "policy.overlapping-editions",
                        f"procedural pack `{later.id}` starts `{later.effective_from.isoformat()}` while "
                        f"`{earlier.id}` (`{earlier.file}`) is still in force (to {ends})",
                        "$.procedure.effective",
                        file=later.file,
                        source_map=maps.get(later.file),
                        hint="end the earlier pack the day before the later one starts",
                    )
                )
    return problems
