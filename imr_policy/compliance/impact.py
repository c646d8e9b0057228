"""Impact of a policy change on cases: which determinations would come out differently, and why.

Every case is evaluated under both sides (each side a policy set loaded with `imr_policy.load`). An
item *changes* when its determination, approved quantity or IMR outcome differs. Each change is
attributed to the rule that caused it by comparing the decisive basis of both sides: when other rules
decide, the cause is "rule A -> rule B"; when the same rule decides differently, the cause is that rule,
and the policy diff says what changed in it or in the limits it uses. Items whose decision is the same
but whose decisive basis differs are counted apart (`basis_only`).

Two sources of cases:

* a corpus (a directory of case files or a JSON Lines file), streamed through `runner.run`: worker
  processes (or a Dask cluster) each load both engines once; only changed cases come back with their
  text, and the collector keeps counts and at most `per_bucket` examples per (kind of change, cause),
  so memory does not grow with the corpus;
* `generated`: Hypothesis searches the region the diff changed (the services, jurisdictions, dates
  and thresholds of the changed rules and limits), then shrinks one example of each kind of change
  to a minimal case.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from imr_policy.compliance.corpus import Entry, parse
from imr_policy.compliance.diff import EntityChange, PolicyDiff, change_summary, limit_users, limits_of
from imr_policy.compliance.sides import PackSource, load_pack
from imr_policy.evaluate import Engine
from imr_policy.language.facts import FI_VALUES, SEVERITY_ORDER
from imr_policy.model.errors import CaseError, EngineError
from imr_policy.model.values import Case, Determination, ItemDetermination, leaves

BasisKey = tuple[str, str, str, str | None]  # guideline, edition, rule, exception
DEFAULT_PER_BUCKET = 3


@dataclass(frozen=True, slots=True)
class Outcome:
    determination: str
    approved: int
    imr_outcome: str | None
    decisive: tuple[BasisKey, ...]
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "determination": self.determination,
            "approved_quantity": self.approved,
            "imr_outcome": self.imr_outcome,
            "decisive": [basis_text(k) for k in self.decisive],
            "missing_facts": list(self.missing),
        }


@dataclass(frozen=True, slots=True)
class ItemChange:
    request: str
    service: str
    requested: int
    old: Outcome
    new: Outcome
    jurisdiction: str = ""
    date_of_service: str = ""  # ISO date of the request's date of service

    @property
    def approved_change(self) -> int:
        """Approved visits gained (positive) or lost (negative) by this item."""
        return self.new.approved - self.old.approved

    @property
    def kind(self) -> tuple[str, str, str]:
        """(old determination, new determination, `more`/`less`/`same` approved)."""
        diff = self.new.approved - self.old.approved
        direction = "more" if diff > 0 else "less" if diff < 0 else "same"
        return (self.old.determination, self.new.determination, direction)

    @property
    def decision_changed(self) -> bool:
        return (self.old.determination, self.old.approved, self.old.imr_outcome) != (
            self.new.determination,
            self.new.approved,
            self.new.imr_outcome,
        )


@dataclass(frozen=True, slots=True)
class CaseComparison:
    index: int
    source: str
    status: Literal["compared", "invalid", "error"]
    case_id: str | None
    changes: tuple[ItemChange, ...] = ()  # items whose decision or decisive basis differs
    text: str | None = None  # the case as given, only when something changed
    problems: tuple[str, ...] = ()


def basis_text(key: BasisKey) -> str:
    guideline, edition, rule, exception = key
    return f"{guideline}@{edition} {rule}" + (f" + exception {exception}" if exception else "")


def outcome(item: ItemDetermination) -> Outcome:
    decisive = tuple((b.guideline, b.edition, b.rule, b.exception) for b in item.basis if b.role == "decisive")
    return Outcome(item.determination, item.approved_quantity, item.imr_outcome, decisive, item.missing_facts)


def compare(old: Determination, new: Determination, case: Case | None = None) -> tuple[ItemChange, ...]:
    out = []
    dates = {r.id: r.date_of_service.isoformat() for r in case.requests} if case is not None else {}
    jurisdiction = case.jurisdiction if case is not None else ""
    for a, b in zip(old.items, new.items, strict=True):
        oa, ob = outcome(a), outcome(b)
        if (oa.determination, oa.approved, oa.imr_outcome, oa.decisive) != (
            ob.determination,
            ob.approved,
            ob.imr_outcome,
            ob.decisive,
        ):
            out.append(
                ItemChange(a.request, a.service, a.requested_quantity, oa, ob, jurisdiction, dates.get(a.request, ""))
            )
    return tuple(out)


def compare_case(old: Engine, new: Engine, case: Case, *, index: int, source: str, text: str | None) -> CaseComparison:
    try:
        changes = compare(old.evaluate(case), new.evaluate(case), case)
    except CaseError as exc:  # a jurisdiction one side has no profile of
        shown = "; ".join(d.message for d in exc.diagnostics)
        return CaseComparison(index, source, "error", case.case_id, problems=(f"{source}: {shown}",))
    except EngineError as exc:
        return CaseComparison(index, source, "error", case.case_id, problems=(f"{source}: engine error: {exc}",))
    return CaseComparison(index, source, "compared", case.case_id, changes, text if changes else None)


def compare_entry(old: Engine, new: Engine, entry: Entry) -> CaseComparison:
    try:
        case = parse(entry)
    except CaseError as exc:
        problems = tuple(d.render().splitlines()[0] for d in exc.diagnostics)
        return CaseComparison(entry.index, entry.source, "invalid", None, problems=problems)
    return compare_case(old, new, case, index=entry.index, source=entry.source, text=entry.text)


@dataclass(frozen=True, slots=True)
class ImpactJob:
    """Compare each entry under two policy sets (see imr_policy.compliance.runner.Job)."""

    old: PackSource
    new: PackSource
    engine: Literal["durable", "reference"] = "durable"

    @property
    def cache_key(self) -> str:
        packs = (self.old.name, self.old.content_hash, hash(self.old.files), self.new.name, self.new.content_hash)
        return f"impact:{self.engine}:{packs}:{hash(self.new.files)}"

    def setup(self) -> tuple[Engine, Engine]:
        return load_pack(self.old, engine=self.engine), load_pack(self.new, engine=self.engine)

    def run(self, state: tuple[Engine, Engine], entry: Entry) -> CaseComparison:
        return compare_entry(state[0], state[1], entry)

    def crashed(self, entry: Entry, reason: str) -> CaseComparison:
        """An entry whose worker process died comparing it (compliance/runner.py): an engine error, not a change."""
        return CaseComparison(
            entry.index, entry.source, "error", None, problems=(f"{entry.source}: engine error: {reason}",)
        )


# ---------------------------------------------------------------------------------------------- attribution


@dataclass(frozen=True, slots=True)
class Cause:
    guideline: str | None
    label: str  # e.g. `odg-mental-illness-stress: psychotherapy.continued-with-progress`
    rules: tuple[str, ...]  # the rule ids named
    notes: tuple[str, ...]  # what the policy diff says changed in them

    def to_dict(self) -> dict[str, Any]:
        return {
            "guideline": self.guideline,
            "label": self.label,
            "rules": list(self.rules),
            "changes": list(self.notes),
        }


def attribute(change: ItemChange, diff: PolicyDiff | None) -> Cause:
    """The rule that caused an item to change, from the decisive basis of both sides and the policy diff."""
    old_only = [k for k in change.old.decisive if k not in change.new.decisive]
    new_only = [k for k in change.new.decisive if k not in change.old.decisive]
    if not old_only and not new_only:
        same = list(change.new.decisive)
        touched = [k for k in same if diff is not None and _notes(diff, k, k)]
        keys = touched or same
        if not keys:
            return Cause(None, "no decisive rule on either side (pend)", (), ())
        g, _, rule, exc = keys[0]
        label = f"{g}: {rule}" + (f" + exception {exc}" if exc else "")
        notes = _notes(diff, keys[0], keys[0]) if diff is not None else ()
        return Cause(g, label, (rule,), notes)
    guidelines = list(dict.fromkeys(k[0] for k in (*old_only, *new_only)))
    preferred = [
        g for g in guidelines if diff is not None and any(e.guideline == g and e.differs for e in diff.editions)
    ]
    g = (preferred or guidelines)[0]
    o = next((k for k in old_only if k[0] == g), None)
    n = next((k for k in new_only if k[0] == g), None)

    def name(k: BasisKey) -> str:
        return k[2] + (f" + exception {k[3]}" if k[3] else "")

    if o and n and (o[2], o[3]) == (n[2], n[3]):
        label = f"{g}: {name(n)} (edition {o[1]} -> {n[1]})"
        rules: tuple[str, ...] = (n[2],)
    elif o and n:
        edition = f" (edition {o[1]} -> {n[1]})" if o[1] != n[1] else ""
        label = f"{g}: {name(o)} -> {name(n)}{edition}"
        rules = tuple(dict.fromkeys((o[2], n[2])))
    elif o:
        label = f"{g}: {name(o)} no longer decides"
        rules = (o[2],)
    else:
        assert n is not None
        label = f"{g}: {name(n)} now decides"
        rules = (n[2],)
    notes = _notes(diff, o, n) if diff is not None else ()
    return Cause(g, label, rules, notes)


def _notes(diff: PolicyDiff, old: BasisKey | None, new: BasisKey | None) -> tuple[str, ...]:
    g = (old or new or ("", "", "", None))[0]
    pair = diff.edition_for(g, old[1] if old else None, new[1] if new else None)
    if pair is None:
        return ()
    changes: list[EntityChange] = []
    if old is not None:
        changes += pair.for_rule(old[2], side="old")
    if new is not None:
        changes += [c for c in pair.for_rule(new[2], side="new") if c not in changes]
    header = [c for c in pair.changes if c.entity == "edition" and c.effect == "decision"]
    return tuple(change_summary(c, pair) for c in (*changes, *header))


# ---------------------------------------------------------------------------------------------- collecting


@dataclass(frozen=True, slots=True)
class Example:
    source: str
    case_id: str | None
    case: Any  # the case data as given
    change: ItemChange
    cause: Cause
    shrunk: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "case_id": self.case_id,
            "request": self.change.request,
            "service": self.change.service,
            "requested_quantity": self.change.requested,
            "old": self.change.old.to_dict(),
            "new": self.change.new.to_dict(),
            "cause": self.cause.label,
            "shrunk": self.shrunk,
            "case": self.case,
        }


@dataclass(frozen=True, slots=True)
class ImpactReport:
    mode: Literal["corpus", "generated"]
    corpus: str
    old: str  # labels of the sides as evaluated
    new: str
    notes: tuple[str, ...]
    engine: str
    entries: int
    compared: int
    invalid: int
    errors: int
    changed_cases: int
    changed_items: int
    basis_only_items: int
    by_service: tuple[tuple[str, int], ...]
    by_kind: tuple[tuple[tuple[str, str, str], int], ...]
    by_imr: tuple[tuple[tuple[str, str], int], ...]
    by_cause: tuple[tuple[Cause, int], ...]
    by_service_kind: tuple[tuple[str, tuple[str, str, str], int], ...]
    examples: tuple[Example, ...]
    problems: tuple[str, ...]  # the first few; every one is reported as it happens
    visits_gained: int = 0  # approved visits (sessions) the new side approves that the old did not
    visits_lost: int = 0  # approved visits the old side approved that the new does not (a positive number)
    by_jurisdiction: tuple[Breakdown, ...] = ()
    by_service_visits: tuple[Breakdown, ...] = ()
    by_month: tuple[Breakdown, ...] = ()  # by month of the date of service, in date order

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "corpus": self.corpus,
            "old": self.old,
            "new": self.new,
            "notes": list(self.notes),
            "engine": self.engine,
            "entries": self.entries,
            "compared": self.compared,
            "invalid": self.invalid,
            "errors": self.errors,
            "changed_cases": self.changed_cases,
            "changed_items": self.changed_items,
            "basis_only_items": self.basis_only_items,
            "by_service": [{"service": s, "items": n} for s, n in self.by_service],
            "by_kind": [{"old": k[0], "new": k[1], "approved": k[2], "items": n} for k, n in self.by_kind],
            "by_imr_outcome": [{"old": k[0], "new": k[1], "items": n} for k, n in self.by_imr],
            "by_cause": [{**c.to_dict(), "items": n} for c, n in self.by_cause],
            "by_service_and_kind": [
                {"service": s, "old": k[0], "new": k[1], "approved": k[2], "items": n}
                for s, k, n in self.by_service_kind
            ],
            "examples": [e.to_dict() for e in self.examples],
            "problems": list(self.problems),
            "visits_gained": self.visits_gained,
            "visits_lost": self.visits_lost,
            "by_jurisdiction": [b.to_dict("jurisdiction") for b in self.by_jurisdiction],
            "by_service_visits": [b.to_dict("service") for b in self.by_service_visits],
            "by_month": [b.to_dict("month") for b in self.by_month],
        }


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Changed items of one jurisdiction, service or month, with the approved visits gained and lost."""

    key: str
    items: int
    gained: int
    lost: int
    approvals_gained: int = 0  # items not approved at all before (0 approved) and approved now
    approvals_lost: int = 0  # items approved before and not at all now

    def to_dict(self, name: str) -> dict[str, Any]:
        return {
            name: self.key,
            "items": self.items,
            "visits_gained": self.gained,
            "visits_lost": self.lost,
            "approvals_gained": self.approvals_gained,
            "approvals_lost": self.approvals_lost,
        }


ROW_FIELDS = (
    "case_id",
    "source",
    "request",
    "service",
    "jurisdiction",
    "date_of_service",
    "requested_quantity",
    "old_determination",
    "old_approved_quantity",
    "new_determination",
    "new_approved_quantity",
    "approved_change",
    "old_imr_outcome",
    "new_imr_outcome",
    "cause",
)


def change_row(cmp: CaseComparison, change: ItemChange, cause: Cause) -> dict[str, Any]:
    """One changed item as a flat record (the columns of `--impact-out`; ROW_FIELDS)."""
    return {
        "case_id": cmp.case_id,
        "source": cmp.source,
        "request": change.request,
        "service": change.service,
        "jurisdiction": change.jurisdiction,
        "date_of_service": change.date_of_service,
        "requested_quantity": change.requested,
        "old_determination": change.old.determination,
        "old_approved_quantity": change.old.approved,
        "new_determination": change.new.determination,
        "new_approved_quantity": change.new.approved,
        "approved_change": change.approved_change,
        "old_imr_outcome": change.old.imr_outcome,
        "new_imr_outcome": change.new.imr_outcome,
        "cause": cause.label,
    }


@dataclass
class _Tally:
    items: int = 0
    gained: int = 0
    lost: int = 0
    approvals_gained: int = 0
    approvals_lost: int = 0

    def add(self, change: ItemChange) -> None:
        self.items += 1
        self.gained += max(0, change.approved_change)
        self.lost += max(0, -change.approved_change)
        self.approvals_gained += change.old.approved == 0 < change.new.approved
        self.approvals_lost += change.new.approved == 0 < change.old.approved

    def breakdown(self, key: str) -> Breakdown:
        return Breakdown(key, self.items, self.gained, self.lost, self.approvals_gained, self.approvals_lost)


@dataclass
class ImpactCollector:
    """Folds case comparisons into counts and a bounded set of examples."""

    diff: PolicyDiff | None
    per_bucket: int = DEFAULT_PER_BUCKET
    keep_problems: int = 20
    entries: int = 0
    compared: int = 0
    invalid: int = 0
    errors: int = 0
    changed_cases: int = 0
    changed_items: int = 0
    basis_only: int = 0
    by_service: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    by_imr: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_cause: Counter[str] = field(default_factory=Counter)
    by_service_kind: Counter[tuple[str, tuple[str, str, str]]] = field(default_factory=Counter)
    causes: dict[str, Cause] = field(default_factory=dict)
    examples: dict[tuple[tuple[str, str, str], str], list[Example]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # every changed item goes to `sink` as it is counted (change_row), so the complete list of what flips
    # can be written out without holding it in memory
    sink: Callable[[dict[str, Any]], None] | None = None
    visits_gained: int = 0
    visits_lost: int = 0
    jurisdictions: dict[str, _Tally] = field(default_factory=dict)
    services: dict[str, _Tally] = field(default_factory=dict)
    months: dict[str, _Tally] = field(default_factory=dict)

    def add(self, cmp: CaseComparison, *, case_data: Any = None, shrunk: bool = False) -> list[tuple[Any, Cause]]:
        """Count one comparison; returns the (bucket, cause) of each changed item."""
        self.entries += 1
        if cmp.status != "compared":
            self.invalid += cmp.status == "invalid"
            self.errors += cmp.status == "error"
            if len(self.problems) < self.keep_problems:
                self.problems.extend(cmp.problems[: self.keep_problems - len(self.problems)])
            return []
        self.compared += 1
        buckets = []
        changed = False
        for change in cmp.changes:
            if not change.decision_changed:
                self.basis_only += 1
                continue
            changed = True
            self.changed_items += 1
            cause = attribute(change, self.diff)
            self.causes.setdefault(cause.label, cause)
            kind = change.kind
            self.by_service[change.service] += 1
            self.by_kind[kind] += 1
            self.by_service_kind[(change.service, kind)] += 1
            self.by_cause[cause.label] += 1
            self.visits_gained += max(0, change.approved_change)
            self.visits_lost += max(0, -change.approved_change)
            self.jurisdictions.setdefault(change.jurisdiction or "unknown", _Tally()).add(change)
            self.services.setdefault(change.service, _Tally()).add(change)
            self.months.setdefault(change.date_of_service[:7] or "unknown", _Tally()).add(change)
            if self.sink is not None:
                self.sink(change_row(cmp, change, cause))
            if change.old.imr_outcome != change.new.imr_outcome:
                self.by_imr[(change.old.imr_outcome or "none", change.new.imr_outcome or "none")] += 1
            bucket = (kind, cause.label)
            buckets.append((bucket, cause))
            kept = self.examples.setdefault(bucket, [])
            if len(kept) < self.per_bucket:
                data = case_data if case_data is not None else _case_data(cmp.text)
                kept.append(Example(cmp.source, cmp.case_id, data, change, cause, shrunk))
        self.changed_cases += changed
        return buckets

    def report(
        self,
        *,
        mode: Literal["corpus", "generated"],
        corpus: str,
        old: str,
        new: str,
        notes: Iterable[str],
        engine: str,
    ) -> ImpactReport:
        def ranked(counter: Counter[Any]) -> list[tuple[Any, int]]:
            return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))

        examples = [
            e for _, kept in sorted(self.examples.items(), key=lambda kv: -self.by_kind[kv[0][0]]) for e in kept
        ]
        return ImpactReport(
            mode=mode,
            corpus=corpus,
            old=old,
            new=new,
            notes=tuple(n for n in notes if n),
            engine=engine,
            entries=self.entries,
            compared=self.compared,
            invalid=self.invalid,
            errors=self.errors,
            changed_cases=self.changed_cases,
            changed_items=self.changed_items,
            basis_only_items=self.basis_only,
            by_service=tuple(ranked(self.by_service)),
            by_kind=tuple(ranked(self.by_kind)),
            by_imr=tuple(ranked(self.by_imr)),
            by_cause=tuple((self.causes[label], n) for label, n in ranked(self.by_cause)),
            by_service_kind=tuple((s, k, n) for (s, k), n in ranked(self.by_service_kind)),
            examples=tuple(examples),
            problems=tuple(self.problems),
            visits_gained=self.visits_gained,
            visits_lost=self.visits_lost,
            by_jurisdiction=tuple(
                t.breakdown(k) for k, t in sorted(self.jurisdictions.items(), key=lambda kv: (-kv[1].items, kv[0]))
            ),
            by_service_visits=tuple(
                t.breakdown(k) for k, t in sorted(self.services.items(), key=lambda kv: (-kv[1].items, kv[0]))
            ),
            by_month=tuple(t.breakdown(k) for k, t in sorted(self.months.items())),
        )


def _case_data(text: str | None) -> Any:
    if text is None:
        return None
    from imr_policy.loading.yamlsrc import load_text, strict_json  # noqa: PLC0415

    try:
        return strict_json(text)  # bounded (docs/limits.md); StrictJsonError is a ValueError
    except ValueError:
        return load_text(text, file=None, code_prefix="case").data


# ---------------------------------------------------------------------------------------------- generated


@dataclass(frozen=True, slots=True)
class Region:
    """Where the two sides can differ: the facts a generated case varies over."""

    services: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    thresholds: tuple[int, ...]
    dates: tuple[dt.date, ...]

    @property
    def empty(self) -> bool:
        return not self.services or not self.dates


def region(diff: PolicyDiff, old: Engine, new: Engine) -> Region:
    """The services, jurisdictions, thresholds and dates of every decision-relevant change."""
    services: set[str] = set()
    jurisdictions: set[str] = set()
    thresholds: set[int] = set()
    guidelines: set[str] = set()
    for pair in diff.editions:
        if not any(c.effect == "decision" for c in pair.changes) and pair.relation not in ("added", "removed"):
            continue
        editions = [e for e in (pair.old, pair.new) if e is not None]
        guidelines.add(pair.guideline)
        for e in editions:
            jurisdictions.update(e.jurisdictions)
        whole = pair.relation in ("added", "removed") or any(
            c.entity in ("edition", "jurisdiction") and c.effect == "decision" for c in pair.changes
        )
        rules: set[str] = set()
        for c in pair.changes:
            if c.effect != "decision":
                continue
            if c.entity == "rule":
                rules.update(x for x in (c.old_id, c.new_id) if x)
            elif c.entity == "limit":
                for side, lid in ((pair.old, c.old_id), (pair.new, c.new_id)):
                    if side is not None and lid:
                        rules.update(u.split(" ", 1)[1] for u in limit_users(side, lid) if u.startswith("rule "))
            elif c.entity == "exception":
                for x in (c.old, c.new):
                    rules.update(getattr(x, "rules", ()))
            elif c.entity == "silence":
                services.add(str(c.id))
            elif c.entity == "condition":  # a row's codes or words: every rule of the edition's table
                whole = True
        for e in editions:
            for r in e.rules:
                if whole or r.id in rules:
                    services.update(r.services)
                    for lid in limits_of(e, r.id):
                        thresholds.add(e.limit(lid).value)
                    thresholds.update(
                        c.value for c in leaves(r.when) if isinstance(c.value, int) and not isinstance(c.value, bool)
                    )
    for c in diff.jurisdictions:
        jurisdictions.add(str(c.id))
    dates: set[dt.date] = set()
    for engine in (old, new):
        for e in engine.editions:
            if e.guideline_id in guidelines:
                dates.add(e.effective_from)
                if e.effective_to is not None:
                    dates.add(e.effective_to)
                    dates.add(e.effective_from + (e.effective_to - e.effective_from) / 2)
                else:
                    dates.add(e.effective_from + dt.timedelta(days=180))
    return Region(
        tuple(sorted(services)),
        tuple(sorted(jurisdictions or {"CA"})),
        tuple(sorted(thresholds or {0})),
        tuple(sorted(dates)),
    )


def case_strategy(reg: Region) -> Any:
    """A Hypothesis strategy for one-request cases in the region; shrinks towards small, plain cases."""
    from hypothesis import strategies as st  # noqa: PLC0415 - only for `--impact generated`

    completed_values = sorted({0, *(max(0, t + d) for t in reg.thresholds for d in (-2, -1, 0, 1, 2))})
    top = max(reg.thresholds) + 4

    @st.composite
    def cases(draw: st.DrawFn) -> dict[str, Any]:
        service = draw(st.sampled_from(reg.services))
        day = draw(st.sampled_from(reg.dates))
        completed = draw(st.sampled_from(completed_values))
        # a request that brings the total to a threshold, or near it, as often as any other quantity: a
        # changed limit is crossed by the total, which plain draws seldom land on
        near = sorted({q for t in reg.thresholds for d in (-1, 0, 1) if 1 <= (q := t - completed + d) <= top})
        quantity = draw(st.one_of(st.sampled_from(near), st.integers(1, top)) if near else st.integers(1, top))
        request = {"id": "r1", "service": service, "quantity": quantity, "date_of_service": day.isoformat()}
        case: dict[str, Any] = {
            "case_id": "generated",
            "jurisdiction": draw(st.sampled_from(reg.jurisdictions)),
            "date_of_injury": (day - dt.timedelta(days=730)).isoformat(),
            "diagnoses": [{"description": "diagnosis", "severity": draw(st.sampled_from(SEVERITY_ORDER))}],
            "requests": [request],
        }
        if completed or draw(st.booleans()):
            fi = draw(st.sampled_from([v for v in FI_VALUES if v != "none"]))
            case["history"] = [{"service": service, "completed": completed, "functional_improvement": fi}]
        ur = draw(st.sampled_from([None, "deny", "modify", "approve", "delay"]))
        if ur == "modify" and quantity > 1:
            approved = draw(st.integers(0, quantity - 1))
            case["utilization_review"] = [{"request": "r1", "decision": "modify", "approved_quantity": approved}]
        elif ur is not None and ur != "modify":
            case["utilization_review"] = [{"request": "r1", "decision": ur}]
        return case

    return cases()


def search_generated(
    old: Engine,
    new: Engine,
    diff: PolicyDiff,
    *,
    examples: int = 400,
    seed: int | None = None,
    per_bucket: int = DEFAULT_PER_BUCKET,
    shrink: int = 12,
    progress: Callable[[int], None] | None = None,
    sink: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[ImpactCollector, Region]:
    """Search the changed region with Hypothesis; one shrunk example leads each kind of change found."""
    from hypothesis import HealthCheck, Phase, given, settings  # noqa: PLC0415
    from hypothesis import errors as hypothesis_errors  # noqa: PLC0415
    from hypothesis import find as hypothesis_find  # noqa: PLC0415
    from hypothesis import seed as hypothesis_seed  # noqa: PLC0415

    reg = region(diff, old, new)
    collector = ImpactCollector(diff, per_bucket=per_bucket, sink=sink)
    if reg.empty:
        return collector, reg
    strategy = case_strategy(reg)
    counter = iter(range(1, 10**9))

    def evaluate(case: dict[str, Any], number: int) -> CaseComparison:
        case = {**case, "case_id": f"generated-{number}"}
        return compare_case(old, new, _valid(case), index=number, source=f"generated #{number}", text=json.dumps(case))

    base = settings(
        database=None,
        deadline=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        max_examples=examples,
        phases=[Phase.generate],
    )
    found: dict[Any, Cause] = {}

    @base
    @given(strategy)
    def explore(case: dict[str, Any]) -> None:
        number = next(counter)
        for bucket, cause in collector.add(evaluate(case, number)):
            found.setdefault(bucket, cause)
        if progress is not None:
            progress(1)

    (hypothesis_seed(seed)(explore) if seed is not None else explore)()

    shrunk_numbers = iter(range(1, 10**9))
    shrinking = settings(base, max_examples=max(examples, 200), phases=[Phase.generate, Phase.shrink], derandomize=True)
    for bucket in list(found)[:shrink]:
        kind, label = bucket

        def flips(case: dict[str, Any], kind: Any = kind, label: str = label) -> bool:
            changes = compare(old.evaluate(_valid(case)), new.evaluate(_valid(case)))
            return any(c.decision_changed and c.kind == kind and attribute(c, diff).label == label for c in changes)

        try:
            minimal = hypothesis_find(strategy, flips, settings=shrinking)
        except (hypothesis_errors.NoSuchExample, hypothesis_errors.Unsatisfiable):
            continue
        minimal = {**minimal, "case_id": f"shrunk-{next(shrunk_numbers)}"}
        cmp = compare_case(old, new, _valid(minimal), index=0, source="shrunk", text=None)
        for change in cmp.changes:
            if change.decision_changed and change.kind == kind:
                cause = attribute(change, diff)
                if cause.label == label:
                    collector.examples[bucket].insert(
                        0, Example("shrunk", minimal["case_id"], minimal, change, cause, True)
                    )
                    del collector.examples[bucket][per_bucket:]
                    break
    return collector, reg


def _valid(case: dict[str, Any]) -> Case:
    from imr_policy.loading.case import validate_case  # noqa: PLC0415

    return validate_case(case)


__all__ = [
    "CaseComparison",
    "Cause",
    "Example",
    "ImpactCollector",
    "ImpactJob",
    "ImpactReport",
    "ItemChange",
    "Outcome",
    "Region",
    "attribute",
    "compare",
    "compare_case",
    "compare_entry",
    "region",
    "search_generated",
]
