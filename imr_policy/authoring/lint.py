"""Static analysis of validated rule packs: what no test would show until a case hits it.

Per edition and service, the conditions of its rules and exceptions are read as a decision table
with the "first rule that holds decides" policy, and the analysis answers, exactly:

- `lint.gap`                      which cases no rule decides (they pend without a stated reason);
- `lint.shadowed`                 which rules never decide, because earlier rules hold wherever they do;
- `lint.unsatisfiable`            which rules and exceptions can never hold (contradictory conditions, or
                                  conditions no valid case can meet);
- `lint.unique-overlap`           two rules that can hold together for a service whose hit policy is `unique`
- `lint.overlap`                  where two rules hold together with different outcomes, so their order
                                  decides (a note: the first rule wins by design, but the author should
                                  know where);
- `lint.exception-never-applies`  which exceptions can never raise a limit;
- `lint.edition-gap`              which days no edition of a guideline is in force (overlapping editions
                                  are an error of validation, `policy.overlapping-editions`);
- `lint.condition-overlap`        which rows of an edition's table by condition one diagnosis can match
                                  together (overlapping phrases or code prefixes).

How facts are reasoned about:

- finite facts (enumerations, booleans, text compared with literals, a fact being absent) value by
  value; text the rules do not name is one "any other value";
- integer facts and dates (as day numbers) by interval arithmetic, split at every number the conditions
  use, bounded as the case contract bounds them (`quantity` 1-1000, `completed` at least 0, ...), and
  `date_of_service` by the edition's effective dates;
- the relations the case contract guarantees: `total` = `completed` + `quantity`; no history of the
  service (`functional_improvement` `none`) means `completed` is 0; `date_of_injury` is not after
  `date_of_service`; `jurisdiction` is one of the edition's; post-surgical facts are given exactly
  when the request is post-surgical;
- text and code predicates (`prefix_in`, `contains_any`) as yes/no facts of their own, independent of
  each other (two predicates that overlap in meaning are not known to, so findings about them are
  conservative: a reported gap may need a code no real case has).

Findings are Diagnostics with a code, the rule's `file:line:col` (through the file's source map), a
hint, and a severity: `lint.unsatisfiable` is an error, `lint.overlap` a note, the rest warnings.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from imr_policy.language.conditions import tokens
from imr_policy.language.facts import FACTS, OPERATORS, FactType
from imr_policy.loading import resources
from imr_policy.loading.validate import LoadResult, load_editions
from imr_policy.loading.yamlsrc import SourceMap, load_text, located
from imr_policy.model.diagnostics import Diagnostic, Severity, rename_text, sort_and_cap
from imr_policy.model.values import (
    Clause,
    Condition,
    ConditionRow,
    Edition,
    NotOf,
    Rule,
    RuleException,
    clause_text,
    leaves,
)

ABSENT = "\x00absent"
OTHER = "\x00other"
MAX_REGIONS_SHOWN = 4
# The search splits at most this many times per question; packs stay far below it (the validator allows
# at most 48 distinct conditions per service), but a question that would need more is left unanswered
# rather than stalling `validate`.
SEARCH_BUDGET = 200_000


# ------------------------------------------------------------------------------------------------ cells


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """Whole numbers from `lo` to `hi`, both inclusive; None is unbounded."""

    lo: int | None
    hi: int | None

    def contains(self, n: int) -> bool:
        return (self.lo is None or self.lo <= n) and (self.hi is None or n <= self.hi)


Cell = Span | str | bool  # a piece of one variable's domain: an interval, a value (or ABSENT/OTHER), a truth value


@dataclass(frozen=True, slots=True)
class Var:
    """One thing a condition tests: a fact, or (for a text or code predicate) one predicate of a fact."""

    key: str
    fact: str
    kind: str  # `int`, `set` or `atom`
    cells: tuple[Cell, ...]
    dates: bool = False
    predicate: Condition | None = None


def _operand(cond: Condition, edition: Edition) -> Any:
    value = edition.limit(cond.limit).value if cond.limit else cond.value
    if isinstance(value, dt.date):
        return value.toordinal()
    if isinstance(value, tuple):
        return tuple(v.toordinal() if isinstance(v, dt.date) else v for v in value)
    return value


def _var_key(cond: Condition) -> str:
    """Conditions on one fact share a variable, except predicates, which each are one."""
    fact = FACTS.get(cond.fact)
    if fact is None or _is_atom(cond):
        return f"{cond.fact} {cond.op} {cond.value!r}"
    return cond.fact


_ORDERED = ("lt", "lte", "gt", "gte", "eq", "ne", "in", "not_in")


def _is_atom(cond: Condition) -> bool:
    fact = FACTS.get(cond.fact)
    if fact is None:
        return True
    if cond.op in ("present", "absent"):
        return False
    if fact.type in (FactType.INTEGER, FactType.DATE):
        return cond.op not in _ORDERED
    if fact.type in (FactType.ENUM, FactType.BOOLEAN, FactType.STRING):
        return cond.op not in ("eq", "ne", "in", "not_in")
    return True


@cache
def fact_bounds() -> dict[str, tuple[int | None, int | None]]:
    """Bounds of integer facts, from the case contract (so they cannot drift from it)."""
    props = resources.schema("case")["properties"]
    request = props["requests"]["items"]["properties"]
    history = props["history"]["items"]["properties"]
    claimant = props["claimant"]["properties"]
    quantity = (request["quantity"].get("minimum"), request["quantity"].get("maximum"))
    completed = (history["completed"].get("minimum", 0), None)
    return {
        "quantity": quantity,
        "completed": completed,
        "total": ((quantity[0] or 0) + (completed[0] or 0), None),
        "age": (claimant["age"].get("minimum"), claimant["age"].get("maximum")),
        "months_since_surgery": (0, None),
        "completed_toward_cap": completed,
        "completed_postsurgical": completed,
    }


def fact_domain(fact: str, edition: Edition) -> Span:
    """The values a fact can take in cases that `edition` decides."""
    if fact == "date_of_service":
        end = edition.effective_to.toordinal() if edition.effective_to else None
        return Span(edition.effective_from.toordinal(), end)
    lo, hi = fact_bounds().get(fact, (None, None))
    return Span(lo, hi)


def _build_vars(conds: Sequence[Condition], edition: Edition, service: str) -> dict[str, Var]:
    by_key: dict[str, list[Condition]] = {}
    for c in conds:
        by_key.setdefault(_var_key(c), []).append(c)
    out: dict[str, Var] = {}
    for key, group in by_key.items():
        first = group[0]
        fact = FACTS.get(first.fact)
        if fact is None or _is_atom(first):
            out[key] = Var(key, first.fact, "atom", (True, False), predicate=first)
            continue
        optional = not fact.always_present
        absent: tuple[Cell, ...] = (ABSENT,) if optional else ()
        if fact.type in (FactType.INTEGER, FactType.DATE):
            dom = fact_domain(first.fact, edition)
            cuts: set[int] = set()
            for c in group:
                if c.op in ("present", "absent"):
                    continue
                v = _operand(c, edition)
                points = v if isinstance(v, tuple) else (v,)
                for p in points:
                    cuts.update({"lt": (p,), "lte": (p + 1,), "gt": (p + 1,), "gte": (p,)}.get(c.op, (p, p + 1)))
            out[key] = Var(key, first.fact, "int", (*_spans(dom, cuts), *absent), dates=fact.type is FactType.DATE)
            continue
        if fact.type is FactType.BOOLEAN:
            values: tuple[Cell, ...] = (True, False)
        elif first.fact == "service":
            values = (service,)
        elif first.fact == "jurisdiction":
            values = tuple(edition.jurisdictions)
        elif first.fact == "condition":
            values = tuple(r.id for r in edition.conditions)
        elif fact.type is FactType.ENUM:
            values = tuple(fact.values)
        else:  # text compared with literals: the literals, and anything else
            named: list[str] = []
            for c in group:
                v = c.value if isinstance(c.value, tuple) else (c.value,)
                named.extend(str(x) for x in v if x is not None and str(x) not in named)
            values = (*named, OTHER)
        out[key] = Var(key, first.fact, "set", (*values, *absent))
    return out


def _spans(dom: Span, cuts: set[int]) -> list[Span]:
    inside = sorted(c for c in cuts if (dom.lo is None or c > dom.lo) and (dom.hi is None or c <= dom.hi))
    spans: list[Span] = []
    lo = dom.lo
    for c in inside:
        spans.append(Span(lo, c - 1))
        lo = c
    spans.append(Span(lo, dom.hi))
    return spans


def _truth(cond: Condition, cell: Cell, edition: Edition) -> bool:
    """Whether `cond` holds on every value of `cell` (cells are split finely enough for it to be all or none)."""
    if cond.op == "present":
        return cell != ABSENT
    if cond.op == "absent":
        return cell == ABSENT
    if isinstance(cell, bool) and _is_atom(cond):
        return cell
    if cell == ABSENT:
        return False
    v = _operand(cond, edition)
    if isinstance(cell, Span):
        probe = cell.lo if cell.lo is not None else (cell.hi if cell.hi is not None else 0)
        return _holds_int(cond.op, probe, v)
    if cell == OTHER:
        return cond.op in ("ne", "not_in")
    match cond.op:
        case "eq":
            return bool(cell == v)
        case "ne":
            return bool(cell != v)
        case "in":
            return cell in v
        case "not_in":
            return cell not in v
    return False  # pragma: no cover - _is_atom sends every other operator to an atom


def _holds_int(op: str, n: int, v: Any) -> bool:
    match op:
        case "lt":
            return bool(n < v)
        case "lte":
            return bool(n <= v)
        case "gt":
            return bool(n > v)
        case "gte":
            return bool(n >= v)
        case "eq":
            return bool(n == v)
        case "ne":
            return bool(n != v)
        case "in":
            return n in v
        case "not_in":
            return n not in v
    return False  # pragma: no cover


# ------------------------------------------------------------------------------------------------ search


Region = dict[str, Cell]
Goal = tuple[tuple[tuple[Clause, ...], bool], ...]  # conjunctions, each required true or false


class _Budget(Exception):
    pass


def _kleene(truths: Iterator[bool | None], absorbing: bool) -> bool | None:
    """Kleene's `or` (absorbing True) or `and` (absorbing False) of three-valued truths, short-circuiting."""
    result: bool | None = not absorbing
    for t in truths:
        if t is absorbing:
            return absorbing
        if t is None:
            result = None
    return result


class _Space:
    """The cases of one edition and service, as far as a set of conditions can tell them apart."""

    def __init__(self, edition: Edition, service: str, conds: Sequence[Condition]) -> None:
        self.edition = edition
        self.service = service
        self.vars = _build_vars(conds, edition, service)
        self.steps = 0

    def truth(self, clause: Clause, region: Mapping[str, Cell]) -> bool | None:
        """True, false, or None where `region` does not settle it (Kleene's logic for `any:` and `not:`)."""
        if isinstance(clause, Condition):
            cell = region.get(_var_key(clause))
            return None if cell is None else _truth(clause, cell, self.edition)
        if isinstance(clause, NotOf):
            inner = self.truth(clause.clause, region)
            return None if inner is None else not inner
        return _kleene((self.truth(c, region) for c in clause.clauses), True)

    def conj(self, conds: tuple[Clause, ...], region: Mapping[str, Cell]) -> bool | None:
        return _kleene((self.truth(c, region) for c in conds), False)

    def _span(self, fact: str, region: Mapping[str, Cell]) -> Span:
        cell = region.get(fact)
        if isinstance(cell, Span):
            return cell
        return fact_domain(fact, self.edition)

    def feasible(self, region: Mapping[str, Cell]) -> bool:
        """Whether some valid case lies in `region` (the relations between facts, see the module docstring)."""
        # completed = completed_toward_cap + completed_postsurgical, total = completed + quantity, and no
        # history (functional_improvement `none`) means completed = 0. Each relation narrows the interval of
        # `completed`; the other facts of each relation are free given it, so a non-empty result is exact.
        completed = self._span("completed", region)
        if region.get("functional_improvement") == "none":
            completed = _cap(completed, Span(0, 0))
        if "total" in region:
            quantity, total = self._span("quantity", region), self._span("total", region)
            completed = _cap(completed, _minus(total, quantity))
        if "completed_toward_cap" in region or "completed_postsurgical" in region:
            parts = _plus(self._span("completed_toward_cap", region), self._span("completed_postsurgical", region))
            completed = _cap(completed, parts)
        if completed.lo is not None and completed.hi is not None and completed.lo > completed.hi:
            return False
        injury, service_day = region.get("date_of_injury"), self._span("date_of_service", region)
        if (
            isinstance(injury, Span)
            and injury.lo is not None
            and service_day.hi is not None
            and injury.lo > service_day.hi
        ):
            return False
        for var in self.vars.values():
            cell = region.get(var.key)
            if var.kind == "atom" and cell is True and region.get(var.fact) == ABSENT:
                return False
        postsurgical = region.get("postsurgical")
        for fact in ("months_since_surgery", "postsurgical_procedure"):
            cell = region.get(fact)
            if cell is None or postsurgical is None:
                continue
            if (cell != ABSENT) != (postsurgical is True):
                return False
        return True

    def solutions(self, goal: Goal, *, first: bool = False) -> Iterator[Region]:
        """Regions (partial assignments) in which every conjunction of `goal` has its required truth."""
        yield from self._search(goal, {}, first)

    def _search(self, goal: Goal, region: Region, first: bool) -> Iterator[Region]:
        self.steps += 1
        if self.steps > SEARCH_BUDGET:
            raise _Budget
        undecided: tuple[Clause, ...] | None = None
        for conds, want in goal:
            t = self.conj(conds, region)
            if t is None:
                undecided = undecided or conds
            elif t is not want:
                return
        if not self.feasible(region):
            return
        if undecided is None:
            yield dict(region)
            return
        cond = next(c for c in leaves(undecided) if self.truth(c, region) is None)
        var = self.vars[_var_key(cond)]
        for cell in var.cells:
            region[var.key] = cell
            for found in self._search(goal, region, first):
                yield found
                if first:
                    del region[var.key]
                    return
            del region[var.key]

    def sat(self, goal: Goal) -> bool:
        return next(self.solutions(goal, first=True), None) is not None


def _cap(a: Span, b: Span) -> Span:
    lo = max((x for x in (a.lo, b.lo) if x is not None), default=None)
    hi = min((x for x in (a.hi, b.hi) if x is not None), default=None)
    return Span(lo, hi)


def _plus(a: Span, b: Span) -> Span:
    return Span(
        None if a.lo is None or b.lo is None else a.lo + b.lo, None if a.hi is None or b.hi is None else a.hi + b.hi
    )


def _minus(a: Span, b: Span) -> Span:
    return Span(
        None if a.lo is None or b.hi is None else a.lo - b.hi, None if a.hi is None or b.lo is None else a.hi - b.lo
    )


# ------------------------------------------------------------------------------------------------ words


_WORDS = {n: op.brief for n, op in OPERATORS.items() if op.kind in ("compare", "ordered", "set")}  # facts.OPERATORS


_MAX_LISTED = 6  # a longer list of values reads as its first few and a count (the rule file has them all)


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        if len(value) > _MAX_LISTED:
            shown = ", ".join(_value_text(v) for v in value[: _MAX_LISTED - 2])
            return f"{shown} and {len(value) - (_MAX_LISTED - 2)} more"
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dt.date):
        return f"`{value.isoformat()}`"
    if isinstance(value, int):
        return str(value)
    return f"`{value}`"


def condition_text(cond: Condition, edition: Edition) -> str:
    """`completed` is below 4 (`psychotherapy.trial-visits`)."""
    if cond.op == "present":
        return f"`{cond.fact}` is given"
    if cond.op == "absent":
        return f"`{cond.fact}` is not given"
    if cond.op == "prefix_in":
        return f"`{cond.fact}` has a code starting with {_value_text(cond.value)}"
    if cond.op == "contains_any":
        return f"`{cond.fact}` mentions {_value_text(cond.value)}"
    if cond.op not in _WORDS:
        return f"`{cond.fact}` {cond.op} {_value_text(cond.value)}"
    value = edition.limit(cond.limit).value if cond.limit else cond.value
    op = cond.op
    if isinstance(value, tuple) and len(value) == 1 and op in ("in", "not_in"):
        op, value = ("eq" if op == "in" else "ne"), value[0]
    words = _WORDS[op]
    text = f"`{cond.fact}` is {words + ' ' if words else ''}{_value_text(value)}"
    return text + (f" (`{cond.limit}`)" if cond.limit else "")


def _clause_text(clause: Clause, edition: Edition) -> str:
    return clause_text(clause, lambda c: condition_text(c, edition))


def _cells_text(var: Var, cells: frozenset[Cell]) -> str | None:
    """What a region says about one variable, or None when it says nothing (every value is in it)."""
    if set(var.cells) <= cells:
        return None
    name = f"`{var.fact}`"
    if var.kind == "atom":
        assert var.predicate is not None
        holds = condition_text(var.predicate, _NO_EDITION)
        return holds if True in cells else f"not ({holds})"
    parts: list[str] = []
    if var.kind == "int":
        spans = sorted(c for c in cells if isinstance(c, Span))
        merged: list[Span] = []
        for s in spans:
            if merged and merged[-1].hi is not None and s.lo is not None and merged[-1].hi + 1 == s.lo:
                merged[-1] = Span(merged[-1].lo, s.hi)
            else:
                merged.append(s)
        full = var.cells[0]
        lo_bound = full.lo if isinstance(full, Span) else None
        last = [c for c in var.cells if isinstance(c, Span)][-1]
        hi_bound = last.hi
        for s in merged:
            parts.append(_span_text(s, lo_bound, hi_bound, var.dates))
    else:
        named = [c for c in var.cells if c in cells and isinstance(c, str) and c not in (ABSENT, OTHER)]
        bools = [c for c in var.cells if c in cells and isinstance(c, bool)]
        shown = [_value_text(c) for c in (*bools, *named)]
        if len(shown) == 1:
            parts.append(shown[0])
        elif shown:
            parts.append("one of " + ", ".join(shown))
        if OTHER in cells:
            parts.append("another value")
    text = f"{name} is " + " or ".join(parts) if parts else ""
    if ABSENT in cells:
        text = f"{text} or not given" if text else f"{name} is not given"
    return text


def _span_text(s: Span, lo_bound: int | None, hi_bound: int | None, dates: bool) -> str:
    def show(n: int) -> str:
        return f"`{dt.date.fromordinal(n).isoformat()}`" if dates else str(n)

    lo = None if s.lo == lo_bound else s.lo
    hi = None if s.hi == hi_bound else s.hi
    if lo is not None and lo == hi:
        return show(lo)
    if lo is None and hi is None:
        return "any value"
    if lo is None:
        assert hi is not None
        return f"at most {show(hi)}"
    if hi is None:
        return f"at least {show(lo)}"
    return f"from {show(lo)} to {show(hi)}"


class _NoEdition:
    """condition_text needs an edition only for limits, which predicates never use."""

    def limit(self, limit_id: str) -> Any:  # pragma: no cover - predicates have no limit
        raise KeyError(limit_id)


_NO_EDITION: Any = _NoEdition()


def region_text(space: _Space, region: Mapping[str, frozenset[Cell]]) -> str:
    parts = [t for key, cells in region.items() if (t := _cells_text(space.vars[key], cells))]
    return " and ".join(parts) if parts else "every case"


def _merge_regions(regions: list[Region]) -> list[dict[str, frozenset[Cell]]]:
    """Disjoint regions -> fewer, larger ones: two that differ in one variable only become one."""
    merged: list[dict[str, frozenset[Cell]]] = [{k: frozenset([v]) for k, v in r.items()} for r in regions]
    changed = True
    while changed:
        changed = False
        for a, b in itertools.combinations(range(len(merged)), 2):
            ra, rb = merged[a], merged[b]
            if ra.keys() != rb.keys():
                continue
            diff = [k for k in ra if ra[k] != rb[k]]
            if len(diff) == 1:
                ra[diff[0]] = ra[diff[0]] | rb[diff[0]]
                del merged[b]
                changed = True
                break
    return merged


# ------------------------------------------------------------------------------------------------ analysis


@dataclass(frozen=True, slots=True)
class _Finding:
    code: str
    message: str
    path: str
    hint: str
    severity: Severity


def _outcome_text(rule: Rule) -> str:
    o = rule.outcome
    limit = o.up_to_total or o.up_to_per_request or o.ceiling
    text = o.decision.replace("_", "-")
    if o.up_to_total:
        text += f" up to `{limit}` in total"
    elif o.up_to_per_request:
        text += f" up to `{limit}` per request"
    return text


def _same_outcome(a: Rule, b: Rule) -> bool:
    x, y = a.outcome, b.outcome
    return (x.decision, x.up_to_total, x.up_to_per_request, x.ceiling, x.missing) == (
        y.decision,
        y.up_to_total,
        y.up_to_per_request,
        y.ceiling,
        y.missing,
    )


def _ids(items: Sequence[Rule | RuleException]) -> str:
    return ", ".join(f"`{i.id}`" for i in items)


def analyse(edition: Edition) -> list[_Finding]:
    """Every finding about one edition (its rules, exceptions and services)."""
    findings: list[_Finding] = []
    rule_index = {r.id: i for i, r in enumerate(edition.rules)}
    dead: dict[str, set[str]] = {}  # rule -> the services for which its conditions can never hold
    overlaps: dict[str, dict[str, tuple[str, str]]] = {}  # later rule -> earlier rule -> (it, where both hold)
    for service in sorted({s for r in edition.rules for s in r.services}):
        findings.extend(_service_findings(edition, service, rule_index, dead, overlaps))
    unsatisfiable = {r for r, where in dead.items() if where >= set(edition.rule(r).services)}
    for rule in edition.rules:  # a condition on `service` may narrow a rule of several services: not dead
        if rule.id in unsatisfiable:
            findings.append(
                _Finding(
                    "lint.unsatisfiable",
                    "rule `{}` can never hold: no {} case meets all of {}".format(
                        rule.id,
                        " or ".join(s.replace("_", " ") for s in rule.services),
                        "; ".join(_clause_text(c, edition) for c in rule.when),
                    ),
                    f"$.rules[{rule_index[rule.id]}].id",
                    "remove the rule, or correct the condition that contradicts the others (or the edition's dates "
                    "and jurisdictions)",
                    Severity.ERROR,
                )
            )
    for rule_id, earlier_rules in overlaps.items():
        rule = edition.rule(rule_id)
        findings.append(
            _Finding(
                "lint.overlap",
                f"rule `{rule_id}` ({_outcome_text(rule)}) overlaps {_overlapped(earlier_rules)}",
                f"$.rules[{rule_index[rule_id]}].id",
                "nothing to fix if the earlier rules should win there; otherwise reorder the rules or narrow one "
                "of them",
                Severity.NOTE,
            )
        )
    findings.extend(_exceptions(edition, unsatisfiable))
    findings.extend(_condition_overlaps(edition))
    findings.extend(_limit_texts(edition))
    return list(dict.fromkeys(findings))


def _service_findings(
    edition: Edition,
    service: str,
    rule_index: dict[str, int],
    dead: dict[str, set[str]],
    overlaps: dict[str, dict[str, tuple[str, str]]],
) -> list[_Finding]:
    """One service's rules in their order: each dead (into `dead`), shadowed, or overlapping earlier rules
    with another outcome (into `overlaps`); then the cases no rule decides. Past the search budget, what was
    found stands and one finding says the rest was too complex."""
    findings: list[_Finding] = []
    rules = edition.rules_for(service)
    space = _Space(edition, service, [c for r in rules for c in leaves(r.when)])
    try:
        for k, rule in enumerate(rules):
            if not space.sat(((rule.when, True),)):
                dead.setdefault(rule.id, set()).add(service)
                continue
            earlier = [e for e in rules[:k] if service not in dead.get(e.id, ())]
            goal = ((rule.when, True), *((e.when, False) for e in earlier))
            if not space.sat(goal):
                covering = [e for e in earlier if space.sat(((rule.when, True), (e.when, True)))]
                findings.append(
                    _Finding(
                        "lint.shadowed",
                        f"rule `{rule.id}` never decides {service.replace('_', ' ')}: wherever it holds, "
                        f"an earlier rule holds first ({_ids(covering)})",
                        f"$.rules[{rule_index[rule.id]}].id",
                        "move it before the rules that hide it, narrow their conditions, or remove it",
                        Severity.WARNING,
                    )
                )
                continue
            # an exception and what it overrides hold together by design: it decides there (`over:`)
            related = [e for e in earlier if not _overrides(edition, rule, e)]
            if edition.hit_policy(service) == "unique":
                findings.extend(_unique_overlaps(edition, space, service, rule, related, rule_index))
            else:
                findings.extend(_exception_conflicts(edition, space, rule, related, rule_index))
                _note_overlaps(edition, space, rule, related, overlaps)
        gap_goal = tuple((r.when, False) for r in rules if service not in dead.get(r.id, ()))
        gaps = list(space.solutions(gap_goal))
    except _Budget:
        findings.append(_too_complex(edition, service, rules, rule_index))
        return findings
    if gaps:
        merged = _merge_regions(gaps)
        shown = [region_text(space, r) for r in merged[:MAX_REGIONS_SHOWN]]
        more = f" (and {len(merged) - MAX_REGIONS_SHOWN} more)" if len(merged) > MAX_REGIONS_SHOWN else ""
        findings.append(
            _Finding(
                "lint.gap",
                f"no rule decides {service.replace('_', ' ')} when " + "; or when ".join(shown) + more,
                f"$.rules[{rule_index[rules[-1].id]}].id",
                "such cases pend without a reason; add a rule for them (a `pend` rule if the guideline "
                "says nothing), or widen a rule's conditions",
                Severity.WARNING,
            )
        )
    return findings


def _overrides(edition: Edition, a: Rule, b: Rule) -> bool:
    return b.id in edition.overridden(a.id) or a.id in edition.overridden(b.id)


def _exception_conflicts(
    edition: Edition, space: _Space, rule: Rule, earlier: list[Rule], rule_index: dict[str, int]
) -> list[_Finding]:
    """Two exceptions over one rule that can hold together and disagree: which one decides would rest on
    their order alone, so it is an error before any case meets it (Catala's conflicting exceptions)."""
    out = []
    for before in earlier:
        shared = set(rule.overrides) & set(before.overrides)
        if not shared or _same_outcome(before, rule) or not space.sat(((before.when, True), (rule.when, True))):
            continue
        out.append(
            _Finding(
                "lint.exception-conflict",
                f"exceptions `{before.id}` and `{rule.id}` both override `{sorted(shared)[0]}` and can hold together, "
                f"but decide differently ({_outcome_text(before)}; {_outcome_text(rule)})",
                f"$.rules[{rule_index[rule.id]}].id",
                "narrow one so they exclude each other, or make one an exception to the other (`over:` it)",
                Severity.ERROR,
            )
        )
    return out


def _unique_overlaps(
    edition: Edition, space: _Space, service: str, rule: Rule, earlier: list[Rule], rule_index: dict[str, int]
) -> list[_Finding]:
    """Under hit policy `unique` no two rules may hold together, whatever their outcomes: each earlier rule
    `rule` can hold with is an error (the engine would refuse such a case at run time)."""
    out = []
    for before in earlier:
        if space.sat(((before.when, True), (rule.when, True))):
            both = list(dict.fromkeys(_clause_text(c, edition) for c in (*before.when, *rule.when)))
            where = " and ".join(both) if both else "in every case"
            out.append(
                _Finding(
                    "lint.unique-overlap",
                    f"rules `{before.id}` and `{rule.id}` both hold when {where}, but the hit policy for "
                    f"{service.replace('_', ' ')} is `unique`",
                    f"$.rules[{rule_index[rule.id]}].when",
                    "narrow one rule's conditions so they exclude each other, or set the hit policy to `first`",
                    Severity.ERROR,
                )
            )
    return out


def _note_overlaps(
    edition: Edition,
    space: _Space,
    rule: Rule,
    earlier: list[Rule],
    overlaps: dict[str, dict[str, tuple[str, str]]],
) -> None:
    """Into `overlaps`: each earlier rule with another outcome that `rule` holds together with, where no rule
    before both does, and where that is."""
    for j, before in enumerate(earlier):
        if _same_outcome(before, rule):
            continue
        overlap = (
            (before.when, True),
            (rule.when, True),
            *((e.when, False) for e in earlier[:j]),
        )
        if space.sat(overlap):
            both = list(dict.fromkeys(_clause_text(c, edition) for c in (*before.when, *rule.when)))
            where = " and ".join(both) if both else "in every case"
            overlaps.setdefault(rule.id, {})[before.id] = (
                f"`{before.id}` ({_outcome_text(before)})",
                where,
            )


# the words that count a limit's unit in its text ("6-10 visits", "24 PT visits", "one follow-up visit")
_UNIT_WORDS = {
    "visits": ("visit", "visits", "session", "sessions", "treatment", "treatments"),
    "sessions": ("visit", "visits", "session", "sessions", "treatment", "treatments"),
    "months": ("month", "months"),
}
_NUMBER_WORDS = {
    word: n
    for n, word in enumerate(
        (
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
            *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"),
            *("nineteen", "twenty"),
        )
    )
}
_NUMBER = r"(\d+|" + "|".join(_NUMBER_WORDS) + r")"


def stated_counts(text: str, unit: str) -> set[int]:
    """The numbers `text` states in `unit` (`6-10 visits` gives 6 and 10; `24 PT visits`, `a 6-month
    period` count too); empty when the unit is not one counted in words or the text states none."""
    words = _UNIT_WORDS.get(unit)
    if words is None:
        return set()
    pattern = re.compile(
        rf"\b{_NUMBER}(?:\s*(?:-|\u2013|to|or)\s*{_NUMBER})?(?:[\s-]+[A-Za-z]+){{0,2}}?[\s-]+(?:{'|'.join(words)})\b",
        re.IGNORECASE,
    )
    found: set[int] = set()
    for match in pattern.finditer(text):
        for group in match.groups():
            if group is not None:
                found.add(int(group) if group.isdigit() else _NUMBER_WORDS[group.lower()])
    return found


def _limit_texts(edition: Edition) -> list[_Finding]:
    """A limit whose description, or the quote of a citation only it cites, states numbers in its unit
    none of which is its value (or an end of its range): the number was edited without its text, and
    the rationale quoting both would contradict itself."""
    findings: list[_Finding] = []
    cited_by: dict[str, int] = {}
    for lim in edition.limits:
        cited_by[lim.citation] = cited_by.get(lim.citation, 0) + 1
    for i, lim in enumerate(edition.limits):
        wanted = {lim.value, *(lim.range or ())}
        texts = [("description", lim.description, f"$.limits[{i}].value")]
        if cited_by.get(lim.citation) == 1:  # a quote shared by a table of limits states all of theirs
            quote = next((c.quote for c in edition.citations if c.id == lim.citation), "")
            texts.append((f"citation `{lim.citation}`'s quote", quote, ""))
        for name, text, _ in texts:
            stated = stated_counts(text, lim.unit)
            if stated and not wanted <= stated:
                missing = sorted(wanted - stated)
                findings.append(
                    _Finding(
                        "lint.limit-text",
                        f"limit `{lim.id}` is {lim.stated} {lim.unit}, but its {name} states "
                        + ", ".join(map(str, sorted(stated)))
                        + f" {lim.unit} and not {', '.join(map(str, missing))}",
                        f"$.limits[{i}].value",
                        "a limit's value and its text must agree: correct the number to what the cited text says, "
                        "or update the description (and quote) with it",
                        Severity.WARNING,
                    )
                )
    return findings


OVERLAPS_SHOWN = 3  # earlier rules named in one lint.overlap note (a fallback rule can overlap dozens)


def _overlapped(earlier: dict[str, tuple[str, str]]) -> str:
    """The earlier rules a rule overlaps, in a few words: with one, where both hold; with several, the
    first OVERLAPS_SHOWN by id and how many more (a note is one line, not a page)."""
    named = list(earlier.values())
    if len(named) == 1:
        (it, where), *_ = named
        return f"an earlier rule with another outcome, which decides where both hold: {it} when {where}"
    shown = ", ".join(f"`{rule_id}`" for rule_id in list(earlier)[:OVERLAPS_SHOWN])
    more = f" and {len(named) - OVERLAPS_SHOWN} more" if len(named) > OVERLAPS_SHOWN else ""
    return f"{len(named)} earlier rules with another outcome, which decide where both hold: {shown}{more}"


def _row_words(row: ConditionRow, other: ConditionRow) -> tuple[str, ...]:
    """The phrases of `row` that can match where `other` is usable: its `words_in_region` only where the
    two rows share a body region (a row without regions is usable in every region)."""
    shared = not other.regions or bool(set(row.regions) & set(other.regions))
    return row.all_words if shared else row.words


def _condition_overlaps(edition: Edition) -> list[_Finding]:
    """Rows of the table by condition that one diagnosis can match together: a phrase of one row whose
    words all occur in a phrase of another (the same phrase, or a wider one), or a code prefix of one row
    that starts another row's prefix in the same system. Such a case is decided only if both rows agree.
    Rows for disjoint body regions never meet."""
    out: list[_Finding] = []
    rows = edition.conditions
    for (_, a), (j, b) in itertools.combinations(enumerate(rows), 2):
        if a.regions and b.regions and not set(a.regions) & set(b.regions):
            continue
        clash: str | None = None
        severity = Severity.WARNING
        for pa, pb in itertools.product(_row_words(a, b), _row_words(b, a)):
            ta, tb = tokens(pa), tokens(pb)
            if ta <= tb or tb <= ta:
                clash = f"the phrases `{pa}` and `{pb}` match the same descriptions"
                break
        if clash is None:
            clash, severity = _procedure_overlap(a, b)
        if clash is None:
            for system, ca, cb in (("ICD-9-CM", a.icd9, b.icd9), ("ICD-10-CM", a.icd10, b.icd10)):
                pair = next(((x, y) for x in ca for y in cb if x.startswith(y) or y.startswith(x)), None)
                if pair:
                    clash = f"the {system} prefixes `{pair[0]}` and `{pair[1]}` match the same codes"
                    break
        if clash:
            out.append(
                _Finding(
                    "lint.condition-overlap",
                    f"condition rows `{a.id}` and `{b.id}` overlap: {clash}",
                    f"$.conditions[{j}].id",
                    f"make the phrases or codes of `{b.id}` specific to it, or merge the rows; a diagnosis that "
                    "matches both is decided only where both rows agree",
                    severity,
                )
            )
    return out


def _procedure_overlap(a: ConditionRow, b: ConditionRow) -> tuple[str | None, Severity]:
    """Procedure phrases of two rows that match the same procedures. The same phrase in both is the pack
    saying that the operation can be either row's (a laminectomy, for a disc disorder or a stenosis): a
    note, since the evaluator reads both rows; a phrase inside a wider one of the other row is a warning."""
    pairs = [
        (pa, pb)
        for pa, pb in itertools.product(a.procedure_words, b.procedure_words)
        if tokens(pa) <= tokens(pb) or tokens(pb) <= tokens(pa)
    ]
    wider = next(((pa, pb) for pa, pb in pairs if tokens(pa) != tokens(pb)), None)
    if wider is not None:
        return f"the procedure phrases `{wider[0]}` and `{wider[1]}` match the same procedures", Severity.WARNING
    if pairs:
        shared = ", ".join(f"`{pa}`" for pa, _ in pairs)
        return (
            f"both list the procedure phrase {shared}, so such an operation reads both rows (as the pack intends, "
            "if the operation can be either row's)",
            Severity.NOTE,
        )
    return None, Severity.WARNING


def _too_complex(edition: Edition, service: str, rules: Sequence[Rule], index: Mapping[str, int]) -> _Finding:
    return _Finding(
        "lint.too-complex",
        f"the rules for {service.replace('_', ' ')} combine too many conditions to analyse within "
        f"{SEARCH_BUDGET} steps; gaps and overlaps were not checked",
        f"$.rules[{index[rules[0].id]}].id",
        "split the rules into simpler ones, or into one file per chapter",
        Severity.NOTE,
    )


def _exceptions(edition: Edition, unsatisfiable: set[str]) -> list[_Finding]:
    findings: list[_Finding] = []
    for j, exc in enumerate(edition.exceptions):
        path = f"$.exceptions[{j}].id"
        raised = edition.limit(exc.raises_total).value
        targets = [edition.rule(r) for r in exc.rules if any(x.id == r for x in edition.rules)]
        holds_somewhere = False
        reasons: list[str] = []
        applies = False
        for rule in targets:
            for service in rule.services:
                rules = edition.rules_for(service)
                earlier = rules[: rules.index(rule)]
                own = rule.outcome.up_to_total
                base = edition.limit(own).value if own else None
                extra: tuple[Condition, ...] = ()
                counted = getattr(rule.outcome, "counts", "completed")
                if base is not None and counted == "completed":
                    # the raised limit approves more only when completed < raised and completed + quantity > base
                    extra = (Condition("completed", "lt", raised), Condition("total", "gt", base))
                conds = [c for r in rules for c in leaves(r.when)] + list(leaves(exc.when)) + list(extra)
                space = _Space(edition, service, conds)
                try:
                    if not space.sat(((exc.when, True),)):
                        continue
                    holds_somewhere = True
                    if base is None or raised <= base:
                        reasons.append(
                            f"it raises the limit to `{exc.raises_total}` ({raised}), which is not above "
                            f"`{own}` ({base}) of rule `{rule.id}`"
                        )
                        continue
                    decides = ((rule.when, True), *((e.when, False) for e in earlier))
                    if not space.sat((*decides, (exc.when, True))):
                        reasons.append(f"rule `{rule.id}` never decides where the exception holds")
                        continue
                    if space.sat((*decides, (exc.when, True), (extra, True))):
                        applies = True
                    else:
                        reasons.append(
                            f"where rule `{rule.id}` decides and the exception holds, no request goes beyond "
                            f"{base} in total with fewer than {raised} completed"
                        )
                except _Budget:
                    applies = True  # not known: say nothing rather than guess
        if not holds_somewhere and targets:
            findings.append(
                _Finding(
                    "lint.unsatisfiable",
                    f"exception `{exc.id}` can never hold: no case meets all of "
                    + "; ".join(_clause_text(c, edition) for c in exc.when),
                    path,
                    "remove the exception, or correct the condition that contradicts the others",
                    Severity.ERROR,
                )
            )
        elif not applies and targets:
            findings.append(
                _Finding(
                    "lint.exception-never-applies",
                    f"exception `{exc.id}` can never raise a limit: " + "; ".join(dict.fromkeys(reasons)),
                    path,
                    "an exception applies only when its rule decides, its conditions hold and the raised limit "
                    "approves more; check its rules, conditions and `raises`",
                    Severity.WARNING,
                )
            )
    return findings


def always_decides(edition: Edition, rule: Rule) -> bool:
    """Whether `rule` decides every case in which it is considered (so no test can see it not decide)."""
    if rule not in edition.rules:
        return False
    for service in rule.services:
        rules = edition.rules_for(service)
        earlier = rules[: rules.index(rule)]
        space = _Space(edition, service, [c for r in rules for c in leaves(r.when)])
        try:
            if space.sat(((rule.when, False),)) or any(space.sat(((e.when, True),)) for e in earlier):
                return False
        except _Budget:
            return False
    return True


def _edition_gaps(editions: Sequence[Edition]) -> list[tuple[Edition, _Finding]]:
    out: list[tuple[Edition, _Finding]] = []
    by_guideline: dict[str, list[Edition]] = {}
    for e in editions:
        by_guideline.setdefault(e.guideline_id, []).append(e)
    for gid, group in sorted(by_guideline.items()):
        group.sort(key=lambda e: e.effective_from)
        for earlier, later in itertools.pairwise(group):
            if earlier.effective_to is None:
                continue  # an overlap: validation reports it (policy.overlapping-editions)
            first_gap_day = earlier.effective_to + dt.timedelta(days=1)
            if first_gap_day < later.effective_from:
                last_gap_day = later.effective_from - dt.timedelta(days=1)
                out.append(
                    (
                        later,
                        _Finding(
                            "lint.edition-gap",
                            f"no edition of `{gid}` is in force from `{first_gap_day}` to `{last_gap_day}`: "
                            f"edition `{earlier.edition_id}` ends `{earlier.effective_to}` and edition "
                            f"`{later.edition_id}` starts `{later.effective_from}`",
                            "$.edition.effective.from",
                            f"start edition `{later.edition_id}` on `{first_gap_day}`, end edition "
                            f"`{earlier.edition_id}` on `{last_gap_day}`, or encode the edition in force between them",
                            Severity.WARNING,
                        ),
                    )
                )
    return out


def lint(editions: Sequence[Edition], *, source_maps: Mapping[str, SourceMap] | None = None) -> tuple[Diagnostic, ...]:
    """Every finding about `editions` (validated Editions), located through each file's source map."""
    maps = source_maps or {}
    found: list[tuple[Edition, _Finding]] = [(e, f) for e in editions for f in analyse(e)]
    found.extend(_edition_gaps(editions))
    return sort_and_cap(
        [
            located(
                f.code,
                rename_text(f.message, dict(e.paths)),
                e.file_path(f.path),
                file=e.file,
                source_map=maps.get(e.file),
                hint=f.hint,
                severity=f.severity,
            )
            for e, f in found
        ]
    )


def source_maps(result: LoadResult, display_root: Path | None) -> dict[str, SourceMap]:
    """The source map of every edition's file, parsed again (parsing is cheap; validation keeps no maps)."""
    maps: dict[str, SourceMap] = {}
    for e in result.editions:
        path = Path(e.file)
        if not path.is_absolute() and display_root is not None:
            path = display_root / path
        try:
            maps[e.file] = load_text(path.read_text(encoding="utf-8"), file=e.file, code_prefix="policy").source_map
        except (OSError, UnicodeDecodeError):  # pragma: no cover - the file was just read by validation
            continue
    return maps


def lint_paths(paths: Sequence[Path], *, display_root: Path | None = None) -> tuple[LoadResult, tuple[Diagnostic, ...]]:
    """Validate the rule files under `paths` and analyse the editions that are valid."""
    result = load_editions(list(paths), display_root=display_root)
    return result, lint(result.editions, source_maps=source_maps(result, display_root))


__all__ = ["always_decides", "analyse", "condition_text", "lint", "lint_paths"]
