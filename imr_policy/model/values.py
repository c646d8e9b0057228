"""Immutable values passed between the pipeline's stages.

Policy side: Edition (one guideline edition: its citations, limits, rules, exceptions).
Case side: Case, Request, HistoryEntry, UtilizationReview.
Result side: Determination and its ItemDetermination, BasisEntry, SearchStep, TraceEntry.

Dates are `datetime.date`; collections are tuples; nothing here is mutated after construction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

from imr_policy.model.diagnostics import rename

Provenance = Literal["V-seed", "V", "V-2nd", "UNVERIFIED"]
Tier = Literal["statute", "mtus", "non_mtus"]
DecisionKind = Literal["certify", "modify", "non_certify", "pend"]


_T = TypeVar("_T")


def _quick_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass (apply above @dataclass and `_deferred_fields`) an `__init__` with the
    same parameters, defaults and effect that writes each slot through its descriptor: the generated one
    goes through `object.__setattr__` by name for every field (frozen), about twice the cost for the
    values built on every evaluation. Only for plain fields (no `__post_init__`, `InitVar`, keyword-only
    or non-init field); a default factory runs on every call, as in the generated one."""
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    params: list[str] = []
    lines: list[str] = []
    names: dict[str, Any] = {"_MISSING": dataclasses.MISSING}
    for i, f in enumerate(dataclasses.fields(cast(Any, cls))):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name} is not a plain field")
        slot = cls.__dict__[f.name]
        names[f"_set{i}"] = getattr(slot, "_slot", slot).__set__  # a deferred field's own slot
        if f.default_factory is not dataclasses.MISSING:
            names[f"_make{i}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            lines.append(f"    _set{i}(self, _make{i}() if {f.name} is _MISSING else {f.name})")
            continue
        if f.default is not dataclasses.MISSING:
            names[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        else:
            params.append(f.name)
        lines.append(f"    _set{i}(self, {f.name})")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines) + "\n", names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.quick = True  # what tests/unit/test_quick_init.py looks for
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010
    return cls


# ---------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class Citation:
    id: str
    section: str
    pages: str | None
    quote: str
    provenance: Provenance
    source: str


@dataclass(frozen=True, slots=True)
class Limit:
    id: str
    value: int
    range: tuple[int, int] | None
    unit: str
    citation: str
    provenance: Provenance
    description: str

    @property
    def stated(self) -> str:
        """The number as the guideline states it: `6-10` or `4`."""
        return f"{self.range[0]}-{self.range[1]}" if self.range else str(self.value)


@dataclass(frozen=True, slots=True)
class Condition:
    """`fact op value`, where value is a literal or (for `limit`) a named limit of the edition.

    Date literals are stored as `datetime.date`; `in`/`not_in` values as tuples.
    """

    fact: str
    op: str
    value: Any = None
    limit: str | None = None


@dataclass(frozen=True, slots=True)
class AnyOf:
    """`any:`: holds when at least one of its clauses holds (each clause a condition or a nested clause)."""

    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class NotOf:
    """`not:`: holds when its clause does not. A condition on an absent fact does not hold, so
    `not: {fact: condition, op: eq, value: x}` holds when the condition is absent too."""

    clause: Clause


Clause = Condition | AnyOf | NotOf


def leaves(clauses: tuple[Clause, ...] | Clause) -> tuple[Condition, ...]:
    """Every condition in `clauses`, in order, however deeply nested in `any:` and `not:`: what a rule
    reads (its facts, its limits, its predicates), whatever it concludes from them."""
    out: list[Condition] = []
    stack: list[Clause] = list(reversed(clauses)) if isinstance(clauses, tuple) else [clauses]
    while stack:
        c = stack.pop()
        if isinstance(c, Condition):
            out.append(c)
        elif isinstance(c, AnyOf):
            stack.extend(reversed(c.clauses))
        else:
            stack.append(c.clause)
    return tuple(out)


def clause_text(clause: Clause, leaf: Callable[[Condition], str]) -> str:
    """A clause in words, each condition as `leaf` writes it: `any:` as "(a, or b)", `not:` as "not (a)"."""
    if isinstance(clause, Condition):
        return leaf(clause)
    if isinstance(clause, AnyOf):
        return "(" + ", or ".join(clause_text(c, leaf) for c in clause.clauses) + ")"
    inner = clause_text(clause.clause, leaf)
    return f"not {inner}" if inner.startswith("(") else f"not ({inner})"


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Literal["certify", "non_certify", "pend", "not_applicable", "not_addressed"]
    reason: str
    up_to_total: str | None = None
    up_to_per_request: str | None = None
    ceiling: str | None = None
    missing: tuple[str, ...] = ()
    counts: str = "completed"  # the count of prior visits a total limit is measured against


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    services: tuple[str, ...]
    citation: str
    when: tuple[Clause, ...]
    outcome: Outcome
    description: str = ""
    provenance: Provenance | None = None
    # an `over:` exception read as a rule (imr_policy.loading.packformat): the rule (or exception) it overrides; it
    # stands just before it and holds only where that holds, so it decides there instead
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleException:
    id: str
    rules: tuple[str, ...]
    citation: str
    when: tuple[Clause, ...]
    raises_total: str
    description: str = ""
    provenance: Provenance | None = None


@dataclass(frozen=True, slots=True)
class Invariant:
    """A property every decision of the edition must keep (checked by `imr-policy verify`)."""

    id: str
    description: str
    kind: Literal["max_total"]
    services: tuple[str, ...]
    max: int
    citation: str
    counts: str = "completed"
    unless: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Silence:
    """A service the guideline is known not to address, with the citation that says so."""

    service: str
    citation: str


@dataclass(frozen=True, slots=True)
class RowNumbers:
    """A number a row of a table by condition carries: a limit of the edition and the time it spans."""

    limit: str
    over: str


@dataclass(frozen=True, slots=True)
class ConditionRow:
    """One row of a guideline's table by condition (`conditions:`): what names the condition in a case.

    `icd9` and `icd10` are code prefixes in their own system; `words` are phrases matched against the
    diagnosis descriptions (imr_policy/language/conditions.py says how); `regions` restricts the row to requests
    for those body regions (or with none)."""

    id: str
    title: str
    regions: tuple[str, ...] = ()
    icd9: tuple[str, ...] = ()
    icd10: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    citation: str | None = None
    note: str = ""
    # phrases that name the condition only within the row's body regions ("disc degeneration" names the
    # lumbar disc row only for a lumbar request): matched when the request's body region is one of `regions`
    words_in_region: tuple[str, ...] = ()
    # phrases that name the condition without telling it from the other rows that list them ("rotator cuff"
    # names three shoulder rows): tried for a diagnosis that no row's `words` or `words_in_region` match, so a
    # description matched only by them names every such row, and the rows are read one by one (combine rule 7)
    general_words: tuple[str, ...] = ()
    # phrases that name the condition in a post-surgical request's procedure ("tenosynovectomy" names the
    # tenosynovitis row): tried when no diagnosis names a row by its code or the row's own words
    procedure_words: tuple[str, ...] = ()
    # the row's medical visits (`medical:`): the limit and the time they are spread over ("8 weeks"); the
    # rules a `table: medical` entry generates from them decide (imr_policy.loading.packformat.table_rules)
    medical: RowNumbers | None = None

    @property
    def all_words(self) -> tuple[str, ...]:
        return self.words + self.words_in_region


@dataclass(frozen=True, slots=True)
class RegionRows:
    """The rows of a table by condition read for a request of one of `regions` whose diagnoses name no
    condition (`unnamed_condition.regions[]`)."""

    regions: tuple[str, ...]
    rows: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnnamedCondition:
    """What a table by condition does when the diagnoses name only the injured part (`unnamed_condition:`).

    A diagnosis description all of whose words are `words` (or words of the request's body region), or no
    diagnosis at all, names no condition: for a request whose body region is one of a group's `regions`,
    the rows of that group are read one by one (imr_policy.engine.combine, rule 7), so the guideline decides when
    every row gives the same result. That the rows held are the ones that can apply is the pack's judgment,
    graded by `provenance` (a decision read so rests on it)."""

    words: tuple[str, ...]
    regions: tuple[RegionRows, ...]
    citation: str
    provenance: Provenance
    note: str = ""


@dataclass(frozen=True, slots=True)
class RowProcedures:
    """The post-surgical entries of one row of a table by condition that a surgery whose procedure the
    records do not name can be (`unnamed_procedure.rows[]`): each a value of `postsurgical_procedure`
    that the row's post-surgical rules read."""

    row: str
    procedures: tuple[str, ...]
    # words that, for this row, name the surgery but not which of its entries it was (a "repair" or a
    # "decompression" for rotator cuff syndrome, whose entries are the arthroscopic and the open approach)
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UnnamedProcedure:
    """What a table by condition does when a post-surgical request names the surgery but not the procedure
    (`unnamed_procedure:`).

    A procedure all of whose words are `words`, words of the request's body region or words of the row
    ("right shoulder surgery", "surgery for the rotator cuff") names none of the row's post-surgical
    entries: for a row listed in `rows`, the request is read under each of its `procedures` (imr_policy.engine.combine,
    rule 7), so the guideline decides when every entry gives the same result. That the entries listed are
    the ones the surgery can have been is the pack's judgment, graded by `provenance`."""

    words: tuple[str, ...]
    rows: tuple[RowProcedures, ...]
    citation: str
    provenance: Provenance
    note: str = ""

    def procedures_for(self, row: str) -> tuple[str, ...]:
        return next((r.procedures for r in self.rows if r.row == row), ())

    def words_for(self, row: str) -> tuple[str, ...]:
        """The row's own words for a surgery that names none of its entries (`rows[].words`)."""
        return next((r.words for r in self.rows if r.row == row), ())


@dataclass(frozen=True, slots=True)
class CountedTogether:
    """Services whose visits a guideline counts against one number (`counted_together:`): ODG's physical
    medicine tables count physical and occupational therapy together. For a request of one of them, the
    edition's count facts (`completed`, `total`, `completed_postsurgical`, `completed_toward_cap`) take in
    the visits of every service of the group."""

    services: tuple[str, ...]
    citation: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class SeverityScale:
    """The severities a guideline distinguishes for some services (`severity_scales:`), e.g. ODG's
    chiropractic wording has "Mild" and "Severe" only. An unstated severity is read as each of these
    values and no other (imr_policy.engine.combine, rule 7)."""

    services: tuple[str, ...]
    values: tuple[str, ...]
    citation: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Edition:
    """One guideline edition, loaded from one rule file."""

    guideline_id: str
    guideline_title: str
    family: str
    tier: Tier
    jurisdictions: tuple[str, ...]
    edition_id: str
    edition_title: str
    effective_from: dt.date
    effective_to: dt.date | None
    selected_by: str
    citations: tuple[Citation, ...]
    limits: tuple[Limit, ...]
    rules: tuple[Rule, ...]
    exceptions: tuple[RuleException, ...]
    file: str
    sha256: str
    silent_on: tuple[Silence, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    more_permissive_than_previous: bool = False
    conditions: tuple[ConditionRow, ...] = ()
    # the table's reading of diagnoses that name no condition, only the injured part (`unnamed_condition:`)
    unnamed_condition: UnnamedCondition | None = None
    # the table's reading of a post-surgical request that names the surgery, not the procedure (`unnamed_procedure:`)
    unnamed_procedure: UnnamedProcedure | None = None
    # services whose visits this edition counts against one number (`counted_together:`)
    counted_together: tuple[CountedTogether, ...] = ()
    # a second window on the other case date (`effective.within`): (key, from, to)
    within: tuple[str, dt.date | None, dt.date | None] | None = None
    severity_scales: tuple[SeverityScale, ...] = ()
    # per service, `unique` where no two rules may hold together (`hit_policies:`); `first` is the default
    hit_policies: tuple[tuple[str, str], ...] = ()
    # the rule-file format (1 or 2) and, for format 2, where each internal path (`$.rules[3]`) is in the file
    # as written (`$.decisions[1].rules[0]`): imr_policy.loading.packformat
    # the services the guideline (or chapter) is about (`guideline.scope`); empty: any service
    scope: tuple[str, ...] = ()
    format: int = 1
    paths: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    # lookup tables derived from the fields above, built once (every evaluation asks these questions)
    _limits: dict[str, Limit] = field(init=False, repr=False, compare=False)
    _citations: dict[str, Citation] = field(init=False, repr=False, compare=False)
    _by_service: dict[str, tuple[Rule, ...]] = field(init=False, repr=False, compare=False)
    _silent: frozenset[str] = field(init=False, repr=False, compare=False)
    _rules_by_id: dict[str, Rule] = field(init=False, repr=False, compare=False)
    _key: str = field(init=False, repr=False, compare=False)
    _hit_policies: dict[str, str] = field(init=False, repr=False, compare=False)
    _exceptions_by_service: dict[str, tuple[RuleException, ...]] = field(init=False, repr=False, compare=False)
    _facts_by_service: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_service: dict[str, list[Rule]] = {}
        for rule in self.rules:
            for service in rule.services:
                by_service.setdefault(service, []).append(rule)
        object.__setattr__(self, "_limits", {lim.id: lim for lim in self.limits})
        object.__setattr__(self, "_citations", {c.id: c for c in self.citations})
        object.__setattr__(self, "_by_service", {k: tuple(v) for k, v in by_service.items()})
        object.__setattr__(self, "_silent", frozenset(s.service for s in self.silent_on))
        object.__setattr__(self, "_rules_by_id", {r.id: r for r in self.rules})
        object.__setattr__(self, "_key", f"{self.guideline_id}@{self.edition_id}")
        object.__setattr__(self, "_hit_policies", dict(self.hit_policies))
        exceptions: dict[str, tuple[RuleException, ...]] = {}
        tested: dict[str, frozenset[str]] = {}
        for service, rules in by_service.items():
            ids = {r.id for r in rules}
            exceptions[service] = tuple(e for e in self.exceptions if ids.intersection(e.rules))
            tested[service] = frozenset(c.fact for r in rules for c in leaves(r.when)) | frozenset(
                c.fact for e in exceptions[service] for c in leaves(e.when)
            )
        object.__setattr__(self, "_exceptions_by_service", exceptions)
        object.__setattr__(self, "_facts_by_service", tested)

    def file_path(self, path: str) -> str:
        """An internal JSON path (`$.rules[3].when`) as the rule file writes it."""
        return rename(path, dict(self.paths)) if self.paths else path

    @property
    def key(self) -> str:
        """The ruleset name: unique per edition, free of `$` (durable_rules reserves `$state`/`$flow`):
        `<guideline id>@<edition id>`."""
        return self._key

    def in_force(self, day: dt.date) -> bool:
        """Whether `day`, a date of service, lies in the edition's window on the date of service (its own
        dates, or its `within` window when the request date selects it); the request date aside."""
        start: dt.date | None
        end: dt.date | None
        if self.selected_by == "date_of_service":
            start, end = self.effective_from, self.effective_to
        elif self.within is not None and self.within[0] == "date_of_service":
            start, end = self.within[1], self.within[2]
        else:
            return True
        return (start is None or start <= day) and (end is None or day <= end)

    @property
    def reads_request_window(self) -> bool:
        """Whether `selected` reads the days the request can have been made on (`Request.request_window`)
        as well as its date of service. The engine remembers selections under these two inputs (and the
        jurisdiction): whatever else `selected` comes to read must join them (evaluate.Engine._select)."""
        return not (self.within is None and self.selected_by == "date_of_service")

    def selected(self, request: Request, case: Case) -> bool | None:
        """Whether this edition governs the request: True or False, or None when the records leave the
        request date open and some of the days it could have been made on select this edition and some not."""
        if self.within is None and self.selected_by == "date_of_service":  # the common case, on every request
            served, first, last = request.date_of_service, self.effective_from, self.effective_to
            return (first is None or first <= served) and (last is None or served <= last)
        windows: list[tuple[str, dt.date | None, dt.date | None]] = [
            (self.selected_by, self.effective_from, self.effective_to)
        ]
        if self.within is not None:
            windows.append(self.within)
        answer: bool | None = True
        for key, start, end in windows:
            lo: dt.date
            hi: dt.date | None
            if key == "date_of_service":
                lo, hi = request.date_of_service, request.date_of_service
            else:
                lo, hi = request.request_window(case)
            inside_start = start is None or start <= lo
            inside_end = end is None or (hi is not None and hi <= end)
            if (start is not None and hi is not None and hi < start) or (end is not None and lo > end):
                return False
            if not (inside_start and inside_end):
                answer = None
        return answer

    def request_date_bounds(self) -> tuple[dt.date | None, dt.date | None] | None:
        """The request dates this edition is selected by (None when the request date selects nothing)."""
        if self.selected_by == "request_date":
            return self.effective_from, self.effective_to
        if self.within is not None and self.within[0] == "request_date":
            return self.within[1], self.within[2]
        return None

    def citation(self, citation_id: str) -> Citation:
        return self._citations[citation_id]

    def limit(self, limit_id: str) -> Limit:
        return self._limits[limit_id]

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; KeyError when the edition has none (as `limit` and `citation`)."""
        found = next((r for r in self.rules if r.id == rule_id), None)
        if found is None:
            raise KeyError(rule_id)
        return found

    def addresses(self, service: str) -> bool:
        return service in self._by_service

    def silence(self, service: str) -> Silence:
        return next(s for s in self.silent_on if s.service == service)

    def coverage(self, service: str) -> Literal["rules", "silent", "not_encoded"]:
        """`rules`: this pack decides the service; `silent`: the guideline is cited as not addressing it;
        `not_encoded`: this pack says nothing either way, so the engine must not assume silence."""
        if service in self._by_service:
            return "rules"
        if service in self._silent:
            return "silent"
        return "not_encoded"

    def condition_row(self, row_id: str) -> ConditionRow:
        return next(r for r in self.conditions if r.id == row_id)

    def in_scope(self, service: str) -> bool:
        """Whether the guideline is about `service` at all (`guideline.scope`); one that is not is never
        consulted for it (neither silent nor unencoded: not its subject)."""
        return not self.scope or service in self.scope

    def rules_for(self, service: str) -> tuple[Rule, ...]:
        return self._by_service.get(service, ())

    def overridden(self, rule_id: str) -> frozenset[str]:
        """What a rule overrides, directly or through the exceptions it overrides (`over:`)."""
        out: set[str] = set()
        todo = [rule_id]
        while todo:
            rule = self._rules_by_id.get(todo.pop())
            for target in rule.overrides if rule is not None else ():
                if target not in out:
                    out.add(target)
                    todo.append(target)
        return frozenset(out)

    def tests_fact(self, service: str, fact: str) -> bool:
        """Some rule or exception for `service` tests `fact`."""
        tested = self._facts_by_service.get(service)
        return tested is not None and fact in tested

    def hit_policy(self, service: str) -> str:
        """`first` (the first rule that holds decides) or `unique` (at most one rule may hold)."""
        return self._hit_policies.get(service, "first")

    def counted_with(self, service: str) -> tuple[str, ...]:
        """The other services whose visits this edition counts with `service`'s (`counted_together:`)."""
        group = next((g for g in self.counted_together if service in g.services), None)
        return tuple(s for s in group.services if s != service) if group else ()

    def severity_scale(self, service: str) -> SeverityScale | None:
        """The severities this edition distinguishes for `service`, where it declares them."""
        return next((s for s in self.severity_scales if service in s.services), None)

    def exceptions_for(self, service: str) -> tuple[RuleException, ...]:
        """The exceptions that raise a limit of some rule for `service`, in the edition's order."""
        return self._exceptions_by_service.get(service, ())


# ---------------------------------------------------------------- case


@_quick_init
@dataclass(frozen=True, slots=True)
class Request:
    id: str
    service: str
    quantity: int
    date_of_service: dt.date
    modality: str | None = None
    body_region: str | None = None
    frequency: str | None = None
    postsurgical: bool = False
    employer_authorized_beyond_cap: bool = False
    postsurgical_procedure: str | None = None
    surgery_date: dt.date | None = None
    request_date: dt.date | None = None  # the request for authorization (RFA), when the records state it
    # how the visits relate to the case's other requests of the same service: same | separate | unknown
    concurrent_visits: str = "same"

    def request_window(self, case: Case) -> tuple[dt.date, dt.date | None]:
        """The days the request can have been made on: the stated request date, else from the date of
        injury to the decision date of the utilization review of this request and, for a prospective
        review, to the date of service (open-ended without either)."""
        if self.request_date is not None:
            return self.request_date, self.request_date
        ur = case.ur_for(self.id)
        bounds = [d for d in (ur.decision_date if ur else None,) if d is not None]
        if ur is not None and ur.review_type == "prospective":
            bounds.append(self.date_of_service)  # a prospective request comes before the service
        return case.date_of_injury, min(bounds, default=None)


@_quick_init
@dataclass(frozen=True, slots=True)
class HistoryEntry:
    service: str
    completed: int  # the count, or with `count` other than exact the least it can be
    functional_improvement: str
    modality: str | None = None
    postsurgical: bool = False
    count: Literal["exact", "at_least", "unknown"] = "exact"
    completed_at_most: int | None = None  # the most it can be, when the count is not exact and bounded


@dataclass(frozen=True, slots=True)
class RfaReceipt:
    """When and how a request for authorization was received (imr_policy/engine/timeliness.py)."""

    channel: Literal["fax", "email", "mail", "electronic"]
    received_on: dt.date | None = None  # the day of receipt, when no time is stated
    received_at: dt.datetime | None = None  # with a time: naive is the pack's local time, else aware
    mailed_on: dt.date | None = None  # mail only, when the day of receipt is not known


@dataclass(frozen=True, slots=True)
class Reviewer:
    """Who made a UR decision, as far as the records state it (`utilization_review[].reviewer`)."""

    name: str | None = None
    specialty: str | None = None
    phone: str | None = None
    organization: str | None = None


@_quick_init
@dataclass(frozen=True, slots=True)
class UtilizationReview:
    request: str
    decision: Literal["approve", "modify", "deny", "delay"]
    approved_quantity: int | None = None
    decision_date: dt.date | None = None
    review_type: Literal["prospective", "concurrent", "retrospective"] | None = None
    expedited: bool = False
    rfa: RfaReceipt | None = None
    more_information_requested_on: dt.date | None = None
    decided_at: dt.datetime | None = None  # naive is the pack's local time
    reviewer: Reviewer | None = None

    @property
    def states_procedure(self) -> bool:
        """The records state when the request was received: its timeliness can be asked."""
        return self.rfa is not None


@_quick_init
@dataclass(frozen=True, slots=True)
class Diagnosis:
    description: str
    severity: str = "unspecified"
    code: str | None = None
    code_system: str | None = None  # `ICD-9-CM` or `ICD-10-CM`: as stated, or inferred (never None with a code)


class Facts(dict[str, Any]):
    """The flat facts of one request, as the rules test them (imr_policy.language.facts.FACTS, with the
    readings' and the derivation's own entries): what passes between deriving (imr_policy.engine.derive),
    reading the facts the records leave open and matching (imr_policy.evaluate, imr_policy.engine).

    Immutable: a change is a new value, `facts | {"condition": row}`; writing into one raises. A dict
    underneath, so that looking a fact up stays a C-speed `dict.get` on the hot path and durable_rules gets
    what it is posted."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("facts are immutable: make a new value with `facts | {name: value}`")

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __ior__(self, other: Any) -> Facts:  # type: ignore[misc,override]  # `facts |= ...` would write in place
        return cast(Facts, self._refuse(other))

    def __or__(self, other: Mapping[str, Any]) -> Facts:  # type: ignore[override]
        new = Facts(self)  # one copy, then the changes written into the new value before anyone can see it
        dict.update(new, other)
        return new

    def __reduce__(self) -> tuple[type[Facts], tuple[dict[str, Any]]]:
        return Facts, (dict(self),)  # copy and pickle rebuild it whole, never item by item

    def __copy__(self) -> Facts:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Facts:
        return self  # every value is immutable too (dates, tuples, strings, numbers)


@_quick_init
@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    jurisdiction: str
    date_of_injury: dt.date
    diagnoses: tuple[Diagnosis, ...]
    requests: tuple[Request, ...]
    history: tuple[HistoryEntry, ...] = ()
    utilization_review: tuple[UtilizationReview, ...] = ()
    age: int | None = None
    sex: str | None = None

    def ur_for(self, request_id: str) -> UtilizationReview | None:
        return next((u for u in self.utilization_review if u.request == request_id), None)


# ---------------------------------------------------------------- result

# Words are paid for only when they are read. A result's rationale, basis and why-not texts are fields like
# any other (same name, same type, same equality, hash, repr, pickling and `to_dict`), but the stage that
# decides may give such a field a recipe instead of its value (`deferred(...)`): the value is put together
# from what was decided the first time the field is read, and kept. A caller that reads only the
# determination, the approved quantity and the IMR outcome never runs the recipe.


class _Deferred:
    """The recipe for one field's value, run once (several fields may share one recipe)."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make: Callable[[], Any] | None = make
        self._value: Any = None

    def get(self) -> Any:
        make = self._make
        if make is not None:
            self._value = make()
            self._make = None
        return self._value


def deferred(make: Callable[[], _T]) -> _T:
    """A value for a deferred field of a result (`_deferred_fields`): `make()`, computed when first read.
    `make` must depend only on immutable values, so that reading later gives what reading now would."""
    return cast(_T, _Deferred(make))


class _DeferredSlot:
    """The attribute of a deferred field: the dataclass's own slot, read through a recipe when it holds one."""

    __slots__ = ("_slot",)

    def __init__(self, slot: Any) -> None:
        self._slot = slot

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self._slot
        value = self._slot.__get__(obj, owner)
        if type(value) is _Deferred:
            value = value.get()
            self._slot.__set__(obj, value)  # the frozen value from now on; the recipe is let go
        return value

    def __set__(self, obj: Any, value: Any) -> None:  # only `object.__setattr__` gets here (init, unpickling)
        self._slot.__set__(obj, value)

    def raw(self, obj: Any) -> Any:
        return self._slot.__get__(obj, type(obj))


def _deferred_fields(*names: str) -> Callable[[type[_T]], type[_T]]:
    """Let the named fields of a frozen, slotted dataclass hold a `deferred` value (apply above @dataclass)."""

    def wrap(cls: type[_T]) -> type[_T]:
        for name in names:
            setattr(cls, name, _DeferredSlot(cls.__dict__[name]))
        return cls

    return wrap


_RAW: dict[type, tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def _raw_readers(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    readers = _RAW.get(cls)
    if readers is None:
        out: list[tuple[str, Callable[[Any], Any]]] = []
        for f in dataclasses.fields(cls):
            attr = cls.__dict__.get(f.name)
            out.append((f.name, attr.raw if isinstance(attr, _DeferredSlot) else operator.attrgetter(f.name)))
        readers = _RAW[cls] = tuple(out)
    return readers


def unread(obj: Any, name: str) -> Any:
    """Field `name` of a result as it was given: a recipe stays a recipe (for carrying it over unread)."""
    attr = type(obj).__dict__.get(name)
    return attr.raw(obj) if isinstance(attr, _DeferredSlot) else getattr(obj, name)


def evolve(obj: _T, **changes: Any) -> _T:
    """`dataclasses.replace` for results: a deferred field is carried over as it is, not computed."""
    for name, read in _raw_readers(type(obj)):
        if name not in changes:
            changes[name] = read(obj)
    return type(obj)(**changes)


TimelinessStatus = Literal["timely", "untimely", "cannot_decide"]
ReviewKind = Literal["prospective", "concurrent", "retrospective", "expedited"]


@dataclass(frozen=True, slots=True)
class Span:
    """Days (or instants) from `lo` to `hi`; `hi` None: the latest is unknown."""

    lo: Any
    hi: Any

    @property
    def exact(self) -> bool:
        return self.hi is not None and self.lo == self.hi

    def to_dict(self) -> dict[str, str | None]:
        def show(v: Any) -> str | None:
            if v is None:
                return None
            return v.isoformat(timespec="minutes") if isinstance(v, dt.datetime) else v.isoformat()

        return {"earliest": show(self.lo), "latest": show(self.hi)}

    def union(self, other: Span) -> Span:
        hi = None if self.hi is None or other.hi is None else max(self.hi, other.hi)
        return Span(min(self.lo, other.lo), hi)


@dataclass(frozen=True, slots=True)
class TimelinessStep:
    """One step of the computation: what (`kind`), its value, and the source it rests on."""

    kind: str
    value: str
    source: str | None = None  # a source id of the pack
    provenance: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"kind": self.kind, "value": self.value}
        if self.source is not None:
            out["source"] = self.source
        if self.provenance is not None:
            out["provenance"] = self.provenance
        return out


@dataclass(frozen=True, slots=True)
class Timeliness:
    status: TimelinessStatus
    review: ReviewKind | None  # the review kind timed; None when the records do not say and several could
    procedure: str | None  # the pack's id (None when no pack covers the day of receipt)
    procedure_file: str | None
    limit: str | None  # the time limit that decided (its id)
    rule: str | None  # the limit's rule, in the pack's words
    source: str | None  # the limit's source address
    provenance: str | None
    received: Span | None  # the day the request counts as received (day zero)
    deadline: Span | None  # dates for day limits, local date-times for hour limits
    days_counted: tuple[dt.date, ...] = ()  # the business days counted to the earliest deadline
    skipped: tuple[dt.date, ...] = ()  # non-business days passed over on the way
    extension: bool | None = None  # the 14-day extension applied (None: cannot tell, or not asked)
    decided: str | None = None  # the decision's date or date-time, as compared
    steps: tuple[TimelinessStep, ...] = ()
    reasons: tuple[str, ...] = ()  # why it cannot be decided (the pack's words for each unknown)
    needs: tuple[str, ...] = ()  # case fields that would decide it
    consequence: str | None = None  # untimely: what that means in the jurisdiction, in its words
    consequence_source: str | None = None
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (id, address) of every source used
    rationale: str = ""  # the words (imr_policy.explain.ur), set when the item is worded

    def to_dict(self) -> dict[str, Any]:
        """The `ur_timeliness` object of schemas/decision.schema.json."""
        out: dict[str, Any] = {"status": self.status}
        if self.review is not None:
            out["review"] = self.review
        if self.procedure is not None:
            out["procedure"] = {"id": self.procedure, "file": self.procedure_file}
        if self.limit is not None:
            out["limit"] = {"id": self.limit, "rule": self.rule, "source": self.source, "provenance": self.provenance}
        if self.received is not None:
            out["received"] = self.received.to_dict()
        if self.deadline is not None:
            out["deadline"] = self.deadline.to_dict()
        out["days_counted"] = [d.isoformat() for d in self.days_counted]
        out["skipped"] = [d.isoformat() for d in self.skipped]
        if self.extension is not None:
            out["extension"] = self.extension
        if self.decided is not None:
            out["decided"] = self.decided
        out["steps"] = [s.to_dict() for s in self.steps]
        out["sources"] = [{"id": i, "address": a} for i, a in self.sources]
        out["reasons"] = list(self.reasons)
        out["needs"] = list(self.needs)
        if self.consequence is not None:
            out["consequence"] = {"says": self.consequence, "source": self.consequence_source}
        out["rationale"] = self.rationale
        return out


@dataclass(frozen=True, slots=True)
class BasisCondition:
    """The row of a guideline's table by condition that decided, and how the case named it."""

    id: str
    title: str
    matched_by: Literal["code", "words", "region"]
    # the code matched, the row's phrase found in the description (never the description), or for `region`
    # the body region the row was read for (the diagnoses name no condition)
    diagnosis: str
    # the records name the surgery, not the procedure: the row's post-surgical entry this decision read it as
    # (`unnamed_procedure:`); every entry of the row gave the same result
    procedure_read: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "title": self.title, "matched_by": self.matched_by, "diagnosis": self.diagnosis}
        if self.procedure_read is not None:
            out["procedure_read"] = self.procedure_read
        return out


@_quick_init
@dataclass(frozen=True, slots=True)
class BasisEntry:
    guideline: str
    guideline_title: str
    edition: str
    rule: str
    section: str
    pages: str | None
    tier: Tier
    provenance: Provenance
    role: Literal["decisive", "supporting"]
    source: str
    exception: str | None = None
    condition: BasisCondition | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "guideline": self.guideline,
            "guideline_title": self.guideline_title,
            "edition": self.edition,
            "rule": self.rule,
            "section": self.section,
            "pages": self.pages,
            "tier": self.tier,
            "provenance": self.provenance,
            "role": self.role,
            "source": self.source,
        }
        if self.exception:
            out["exception"] = self.exception
        if self.condition is not None:
            out["condition"] = self.condition.to_dict()
        return out


@_quick_init
@dataclass(frozen=True, slots=True)
class SearchStep:
    tier: str
    guideline: str
    edition: str
    result: Literal["decided", "supporting", "not_addressed", "not_encoded", "not_applicable", "not_consulted", "pend"]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tier": self.tier,
            "guideline": self.guideline,
            "edition": self.edition,
            "result": self.result,
        }
        if self.note:
            out["note"] = self.note
        return out


@_quick_init
@dataclass(frozen=True, slots=True)
class TraceEntry:
    guideline: str
    edition: str
    rule: str
    kind: Literal["rule", "exception"]
    applied: bool
    decided: bool = False
    why_not: str | None = None
    reading: tuple[tuple[str, str], ...] = ()  # the values assumed for unstated facts, when under a reading
    condition: str | None = None  # the condition row this entry was evaluated for, when the case names several

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "guideline": self.guideline,
            "edition": self.edition,
            "rule": self.rule,
            "kind": self.kind,
            "applied": self.applied,
            "decided": self.decided,
        }
        if self.why_not is not None:
            out["why_not"] = self.why_not
        if self.reading:
            out["reading"] = dict(self.reading)
        if self.condition is not None:
            out["condition"] = self.condition
        return out


@_quick_init
@dataclass(frozen=True, slots=True)
class ReadingOutcome:
    """What the request gets under one reading of the facts the records do not state."""

    assumed: tuple[tuple[str, str], ...]  # (fact, value)
    determination: DecisionKind
    approved_quantity: int
    imr_outcome: Literal["upheld", "overturned"] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "assumed": dict(self.assumed),
            "determination": self.determination,
            "approved_quantity": self.approved_quantity,
        }
        if self.imr_outcome is not None:
            out["imr_outcome"] = self.imr_outcome
        return out


@_quick_init
@_deferred_fields("basis", "rationale", "trace")
@dataclass(frozen=True, slots=True)
class ItemDetermination:
    request: str
    service: str
    requested_quantity: int
    determination: DecisionKind
    approved_quantity: int
    medically_necessary: bool
    imr_outcome: Literal["upheld", "overturned"] | None
    basis: tuple[BasisEntry, ...]
    rationale: str
    search: tuple[SearchStep, ...]
    trace: tuple[TraceEntry, ...]
    missing_facts: tuple[str, ...] = ()
    provenance: Provenance | None = None  # the weakest grade of the numbers the decision rests on
    unstated_facts: tuple[str, ...] = ()  # case fields the records do not state (decided or not)
    readings: tuple[ReadingOutcome, ...] = ()  # the outcome under each reading of them
    # the UR decision's timeliness (imr_policy/engine/timeliness.py), when the records state when the request was
    # received; it never changes the determination or imr_outcome (docs/ur-timeliness.md)
    ur_timeliness: Timeliness | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request": self.request,
            "service": self.service,
            "requested_quantity": self.requested_quantity,
            "determination": self.determination,
            "approved_quantity": self.approved_quantity,
            "medically_necessary": self.medically_necessary,
        }
        if self.imr_outcome is not None:
            out["imr_outcome"] = self.imr_outcome
        out["basis"] = [b.to_dict() for b in self.basis]
        out["rationale"] = self.rationale
        out["search"] = [s.to_dict() for s in self.search]
        out["trace"] = [t.to_dict() for t in self.trace]
        out["missing_facts"] = list(self.missing_facts)
        if self.provenance is not None:
            out["provenance"] = self.provenance
        if self.readings:
            out["unstated_facts"] = list(self.unstated_facts)
            out["readings"] = [r.to_dict() for r in self.readings]
        if self.ur_timeliness is not None:
            out["ur_timeliness"] = self.ur_timeliness.to_dict()
        return out


# ---------------------------------------------------------------- evaluation


@_quick_init
@_deferred_fields("why_not")
@dataclass(frozen=True, slots=True)
class ExceptionCheck:
    exception: RuleException
    holds: bool
    why_not: str | None


@dataclass(frozen=True, slots=True)
class ConditionMatch:
    """One row of a table that the case's diagnoses name, and how it was matched."""

    row: ConditionRow
    matched_by: Literal["code", "words", "region"]
    # the code matched, or the row's phrase found in the description; for `region`, the request's body
    # region as the pack names it (policy words: never the record's)
    diagnosis: str
    description: str  # the diagnosis as the case describes it (for the rationale, never logged)
    code_system: str | None = None
    # which of the row's phrases matched: its own `words` (or `words_in_region`), its `general_words` (no row's
    # own words matched the diagnosis), or its `procedure_words` in the request's procedure (`description` is
    # then the procedure as the case gives it); `region`: no diagnosis names a condition, and the row is one
    # the table reads for the request's body region (`unnamed_condition:`)
    phrase_kind: Literal["words", "general_words", "procedure_words", "region"] = "words"

    @property
    def general(self) -> bool:
        return self.phrase_kind == "general_words"


@_quick_init
@_deferred_fields("trace")
@dataclass(frozen=True, slots=True)
class EditionResult:
    """What one edition says about one request."""

    edition: Edition
    status: Literal["decided", "gap", "not_applicable", "not_addressed"]
    rule: Rule | None = None
    exception: RuleException | None = None
    kind: DecisionKind = "pend"
    approved: int = 0
    missing: tuple[str, ...] = ()
    exceptions: tuple[ExceptionCheck, ...] = ()
    trace: tuple[TraceEntry, ...] = ()
    # the row of the edition's table by condition the result was reached for (None without a table, or
    # when the diagnoses match no row), and, when they match several, what the edition says for each
    condition: ConditionMatch | None = None
    alternatives: tuple[EditionResult, ...] = ()
    # the records leave the request date open and it selects between editions of this guideline: what
    # each of them says (this result is the first's when they agree), and whether some of the days the
    # request can have been made on select none of them
    by_request_date: tuple[EditionResult, ...] = ()
    request_date_uncovered: bool = False
    # the visits of other services the edition counted with the request's (`counted_together:`), per service:
    # (service, completed, of which post-surgical); the count facts it was decided on include them
    counted_with: tuple[tuple[str, int, int], ...] = ()
    # the case's requests of those services the edition counted as separate visits given already:
    # (request id, service, quantity, post-surgical)
    counted_requests: tuple[tuple[str, str, int, bool], ...] = ()
    # the records name the surgery, not the procedure: the post-surgical entry of the row this result read
    # (`unnamed_procedure:`, one reading of rule 7), and the procedure as the records give it
    procedure_read: str | None = None

    @property
    def stands_aside(self) -> bool:
        """The edition says it does not govern the request (`not_applicable`) or does not address it
        (`not_addressed`): it neither decides nor supports, and the search step records why."""
        return self.status in ("not_applicable", "not_addressed")


@dataclass(frozen=True, slots=True)
class PolicySetInfo:
    id: str
    content_hash: str


@_quick_init
@dataclass(frozen=True, slots=True)
class Determination:
    """The result for one case: one ItemDetermination per request, in request order."""

    case_id: str
    engine_version: str
    policy_set: PolicySetInfo
    items: tuple[ItemDetermination, ...] = field(default_factory=tuple)

    def item(self, request_id: str) -> ItemDetermination:
        return next(i for i in self.items if i.request == request_id)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict valid against schemas/decision.schema.json."""
        return {
            "case_id": self.case_id,
            "engine_version": self.engine_version,
            "policy_set": {"id": self.policy_set.id, "content_hash": self.policy_set.content_hash},
            "items": [i.to_dict() for i in self.items],
        }
