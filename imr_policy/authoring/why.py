"""Why and why not: every rule considered for a request, with its conditions checked against the case's
values, and for each rule (or exception) that did not decide, what would have had to be different.

The counterfactuals are computed, never guessed. For a rule that did not decide, the facts its failing
conditions test (and those of the earlier rules that held and so decided first) are given other values:
the values the conditions of that edition name, one either side of each number, and the other values of
finite facts. Combinations are tried smallest first, keeping the facts consistent (`total` is always
`completed` + `quantity`; no history means nothing completed; dates stay in the edition's range), and a
combination counts only if the reference evaluator (`reference.py`), given those facts, makes the rule
the one that decides. Each change kept is then evaluated like any request of that edition to say what
the edition would decide. Changes to the jurisdiction or the service are never proposed: they change
which guidelines are asked, not what one of them says.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from imr_policy.authoring.lint import fact_bounds, fact_domain
from imr_policy.engine.derive import as_counted_by, request_facts
from imr_policy.engine.reference import ReferenceMatcher, all_hold, clause_holds, holds
from imr_policy.evaluate import Engine
from imr_policy.language.conditions import match_rows
from imr_policy.language.facts import FACTS, OPERATORS, FactType
from imr_policy.loading.case import validate_case
from imr_policy.model.values import (
    Case,
    Clause,
    Condition,
    DecisionKind,
    Edition,
    EditionResult,
    Facts,
    ReadingOutcome,
    Rule,
    RuleException,
    TraceEntry,
    leaves,
)

MAX_CHANGED_FACTS = 3
MAX_TRIALS = 20_000  # candidate fact sets tried per rule; ample for packs within the validator's limits
MAX_SHOWN = 3
_FIXED = frozenset({"service", "jurisdiction", "total"})  # never changed directly (total follows the counts)


# -------------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ConditionCheck:
    """One condition of a rule, with the case's value and whether it held."""

    fact: str
    op: str
    expected: Any  # the literal, or the value of `limit`
    limit: str | None
    actual: Any  # None when the case does not give the fact
    held: bool
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "fact": self.fact,
            "op": self.op,
            "expected": _plain(self.expected),
            "limit": self.limit,
            "actual": _plain(self.actual),
            "held": self.held,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class Change:
    fact: str
    value: Any
    was: Any

    @property
    def text(self) -> str:
        return f"`{self.fact}` were {_show(self.value)}"

    def to_dict(self) -> dict[str, Any]:
        return {"fact": self.fact, "value": _plain(self.value), "was": _plain(self.was)}


@dataclass(frozen=True, slots=True)
class Counterfactual:
    """A smallest change of facts under which the rule (or exception) decides, and what the edition would
    then decide for the request."""

    changes: tuple[Change, ...]
    determination: DecisionKind | Literal["not_applicable", "not_addressed"]
    approved_quantity: int
    requested_quantity: int

    @property
    def text(self) -> str:
        verb = {
            "certify": f"certify {self.approved_quantity} of {self.requested_quantity}",
            "modify": f"modify to {self.approved_quantity} of {self.requested_quantity}",
            "non_certify": f"not certify (0 of {self.requested_quantity})",
            "pend": "pend",
            "not_applicable": "not apply to the request",
            "not_addressed": "not address the request",
        }[self.determination]
        return f"would {verb} if " + " and ".join(c.text for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "determination": self.determination,
            "approved_quantity": self.approved_quantity,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    """One rule or exception considered for a request."""

    guideline: str
    edition: str
    rule: str
    kind: Literal["rule", "exception"]
    held: bool  # every condition held
    decided: bool  # a rule: it decided its edition; an exception: it raised the limit
    conditions: tuple[ConditionCheck, ...]
    note: str | None  # why a rule that held did not decide, or an exception did not apply
    counterfactuals: tuple[Counterfactual, ...]
    searched: bool  # whether a counterfactual was looked for (not for what decided)

    @property
    def key(self) -> str:
        return f"{self.guideline}@{self.edition}:{self.rule}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "guideline": self.guideline,
            "edition": self.edition,
            "rule": self.rule,
            "kind": self.kind,
            "held": self.held,
            "decided": self.decided,
            "conditions": [c.to_dict() for c in self.conditions],
            "note": self.note,
            "counterfactuals": [c.to_dict() for c in self.counterfactuals],
        }


@dataclass(frozen=True, slots=True)
class ItemExplanation:
    request: str
    service: str
    requested_quantity: int
    determination: DecisionKind
    approved_quantity: int
    facts: tuple[tuple[str, Any], ...]  # the facts the considered rules test, with the case's values
    rules: tuple[RuleExplanation, ...]  # as evaluated on the records as they are
    # the facts the records do not state, and what the request gets under each reading of them
    readings: tuple[ReadingOutcome, ...] = ()
    # per edition that counts other services' visits with the request's (`counted_together:`): its key and
    # the visits it counted, per service ((service, completed), the request's own first); its rules' checks
    # above read these counts, not `facts`
    counted_together: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "service": self.service,
            "requested_quantity": self.requested_quantity,
            "determination": self.determination,
            "approved_quantity": self.approved_quantity,
            "facts": {k: _plain(v) for k, v in self.facts},
            "rules": [r.to_dict() for r in self.rules],
            "readings": [r.to_dict() for r in self.readings],
            "counted_together": [{"edition": key, "completed": dict(counts)} for key, counts in self.counted_together],
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why each request of a case was decided as it was, rule by rule (`explain_case`)."""

    case_id: str
    items: tuple[ItemExplanation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "items": [i.to_dict() for i in self.items]}


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return f"`{value.isoformat()}`"
    if isinstance(value, tuple):
        return ", ".join(_show(v) for v in value)
    return f"`{value}`"


_HELD = {  # imr_policy.language.facts.OPERATORS: the compare, ordered and set operators' brief words
    name: f"{op.brief} " if op.brief else ""
    for name, op in OPERATORS.items()
    if op.kind in ("compare", "ordered", "set")
}


def condition_check(cond: Condition, facts: Mapping[str, Any], edition: Edition) -> ConditionCheck:
    actual = facts.get(cond.fact)
    held = holds(cond, facts, edition)
    expected = edition.limit(cond.limit).value if cond.limit else cond.value
    name = f"`{cond.fact}`"
    limit = f" (`{cond.limit}`)" if cond.limit else ""
    if cond.op in ("present", "absent"):
        text = f"{name} is given ({_show(actual)})" if actual is not None else f"{name} is not given"
    elif actual is None:
        text = f"{name} is not given"
    elif cond.op == "prefix_in":
        text = (
            f"{name} is {_show(actual)}: "
            + ("a code starts" if held else "no code starts")
            + (f" with {_show(expected)}")
        )
    elif cond.op == "contains_any":
        text = (
            f"{name} is {_show(actual)}, "
            + ("which mentions" if held else "which mentions none of")
            + (f" {_show(expected)}")
        )
    elif cond.op in _HELD:
        words = _HELD[cond.op]
        if cond.op == "eq" and held:
            text = f"{name} is {_show(actual)}"
        elif cond.op == "eq":
            text = f"{name} is {_show(actual)}, not {_show(expected)}{limit}"
        else:
            text = f"{name} is {_show(actual)}, {'' if held else 'not '}{words}{_show(expected)}{limit}"
    else:  # pragma: no cover - an operator added without words here still reads
        text = f"{name} is {_show(actual)} ({cond.op} {_show(expected)}: {'holds' if held else 'fails'})"
    return ConditionCheck(cond.fact, cond.op, expected, cond.limit, actual, held, text)


# -------------------------------------------------------------------------------------------------- search


def _int_candidates(fact: str, current: int, points: set[int], edition: Edition) -> list[int]:
    dom = fact_domain(fact, edition)
    lo, hi = fact_bounds().get(fact, (dom.lo, dom.hi)) if fact != "date_of_service" else (dom.lo, dom.hi)
    found = {p + d for p in points for d in (-1, 0, 1)}
    ok = [v for v in found if v != current and (lo is None or v >= lo) and (hi is None or v <= hi)]
    return sorted(ok, key=lambda v: (abs(v - current), v))


def _candidates(fact: str, facts: Mapping[str, Any], edition: Edition, service: str) -> list[Any]:
    """Other values worth trying for `fact`: those the edition's conditions can tell apart."""
    spec = FACTS.get(fact)
    current = facts.get(fact)
    conds = [c for r in edition.rules_for(service) for c in leaves(r.when)]
    conds += [c for e in edition.exceptions_for(service) for c in leaves(e.when)]
    mine = [c for c in conds if c.fact == fact]
    out: list[Any] = []
    if spec is None:
        return out
    if spec.type in (FactType.INTEGER, FactType.DATE):
        points: set[int] = set()
        if fact in ("quantity", "completed"):
            # the limits against which completed + quantity (or quantity alone) is measured
            other = facts.get("completed" if fact == "quantity" else "quantity")
            other = other if isinstance(other, int) else 0
            totals = {c.limit and edition.limit(c.limit).value for c in conds if c.fact == "total"}
            totals |= {c.value for c in conds if c.fact == "total" and isinstance(c.value, int)}
            for r in edition.rules_for(service):
                for lim in (r.outcome.up_to_total, r.outcome.ceiling):
                    if lim:
                        totals.add(edition.limit(lim).value)
                if fact == "quantity" and r.outcome.up_to_per_request:
                    points.add(edition.limit(r.outcome.up_to_per_request).value)
            totals |= {edition.limit(e.raises_total).value for e in edition.exceptions_for(service)}
            points |= {t - other for t in totals if isinstance(t, int)}
        for c in mine:
            if c.op in ("present", "absent"):
                continue
            v = edition.limit(c.limit).value if c.limit else c.value
            for x in v if isinstance(v, tuple) else (v,):
                if isinstance(x, dt.date):
                    points.add(x.toordinal())
                elif isinstance(x, int) and not isinstance(x, bool):
                    points.add(x)
        if spec.type is FactType.DATE:
            now = current.toordinal() if isinstance(current, dt.date) else 0
            out = [dt.date.fromordinal(v) for v in _int_candidates(fact, now, points, edition)]
        else:
            out = list(_int_candidates(fact, current if isinstance(current, int) else 0, points, edition))
    elif spec.type is FactType.BOOLEAN:
        out = [not current] if isinstance(current, bool) else [True, False]
    elif fact == "condition":
        # the rows a diagnosis could name for this request (a row for another body region never matches)
        region = facts.get("body_region")
        out = [
            r.id
            for r in edition.conditions
            if r.id != current and (not r.regions or region is None or str(region).casefold() in r.regions)
        ]
    elif spec.type is FactType.ENUM:
        out = [v for v in spec.values if v != current]
    else:
        for c in mine:
            if c.op == "prefix_in" and isinstance(c.value, tuple):
                out.extend((p,) for p in c.value)
            elif c.op == "contains_any" and isinstance(c.value, tuple):
                out.extend(str(w) for w in c.value)
            elif c.op in ("eq", "ne", "in", "not_in"):
                out.extend(c.value if isinstance(c.value, tuple) else (c.value,))
        out = [v for v in dict.fromkeys(out) if v != current]
    if not spec.always_present:
        out = [v for v in out if v is not None]
        if current is not None:
            out.append(None)
    return out


def _consistent(facts: Mapping[str, Any], edition: Edition) -> bool:
    if facts.get("functional_improvement") == "none" and facts.get("completed", 0) != 0:
        return False
    for fact in ("completed_toward_cap", "completed_postsurgical"):
        if fact in facts and facts[fact] is not None and facts[fact] > facts.get("completed", 0):
            return False
    surgery = facts.get("postsurgical")
    if isinstance(surgery, bool) and any(
        (facts.get(f) is not None) is not surgery for f in ("postsurgical_procedure", "months_since_surgery")
    ):
        return False  # a post-surgical request always has its procedure and surgery date, and no other has them
    quantity = facts.get("quantity")
    q_lo, q_hi = fact_bounds()["quantity"]
    if isinstance(quantity, int) and ((q_lo is not None and quantity < q_lo) or (q_hi is not None and quantity > q_hi)):
        return False
    day, injury = facts.get("date_of_service"), facts.get("date_of_injury")
    if isinstance(day, dt.date):
        if not edition.in_force(day):
            return False
        if isinstance(injury, dt.date) and injury > day:
            return False
    return True


def _with(facts: Facts, changes: Sequence[Change]) -> Facts:
    out = dict(facts)
    for c in changes:
        out[c.fact] = c.value
    if "completed" in out and "quantity" in out:
        out["total"] = out["completed"] + out["quantity"]
    if (
        "completed_toward_cap" in out
        and "completed_postsurgical" in out
        and any(c.fact == "completed" for c in changes)
    ):
        # keep the split of completed visits consistent: the change goes to the visits counted toward the cap
        out["completed_toward_cap"] = out["completed"] - (out["completed_postsurgical"] or 0)
    return Facts(out)


def _distance(changes: Sequence[Change]) -> int:
    total = 0
    for c in changes:
        if isinstance(c.value, int) and isinstance(c.was, int) and not isinstance(c.value, bool):
            total += abs(c.value - c.was)
        elif isinstance(c.value, dt.date) and isinstance(c.was, dt.date):
            total += abs((c.value - c.was).days)
    return total


def _facts_to_vary(target: Sequence[Clause], blockers: Sequence[Rule], facts: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for c in (*leaves(tuple(target)), *(c for r in blockers for c in leaves(r.when))):
        name = c.fact
        if name == "total":  # total follows completed and quantity
            names.extend(("quantity", "completed"))
        elif name not in _FIXED:
            names.append(name)
    return [n for n in dict.fromkeys(names) if n in facts or n in FACTS]


def _search(
    facts: Facts,
    names: Sequence[str],
    edition: Edition,
    service: str,
    accept: Any,
) -> list[tuple[Change, ...]]:
    """The smallest sets of changes (fewest facts, then nearest values) that `accept`."""
    options = {n: _candidates(n, facts, edition, service) for n in names}
    trials = 0
    for size in range(1, min(MAX_CHANGED_FACTS, len(names)) + 1):
        found: list[tuple[Change, ...]] = []
        for combo in itertools.combinations(names, size):
            best: tuple[Change, ...] | None = None
            for values in itertools.product(*(options[n] for n in combo)):
                trials += 1
                if trials > MAX_TRIALS:
                    return found
                changes = tuple(Change(n, v, facts.get(n)) for n, v in zip(combo, values, strict=True))
                changed = _with(facts, changes)
                if not _consistent(changed, edition) or not accept(changed):
                    continue
                if best is None or _distance(changes) < _distance(best):
                    best = changes
            if best is not None:
                found.append(best)
        if found:
            return sorted(found, key=_distance)
    return []


# -------------------------------------------------------------------------------------------------- explain


def explain_case(
    engine: Engine,
    case: Mapping[str, Any] | Case,
    *,
    request: str | None = None,
    rule: str | None = None,
) -> Explanation:
    """Why `engine` decides each request of `case` as it does (`request`: one request id only; `rule`: only
    the rules named `rule-id`, `guideline:rule-id` or `guideline@edition:rule-id`).

    Raises CaseError for an invalid case and ValueError for an unknown request id, or a rule that was
    not considered for any request explained.
    """
    valid = case if isinstance(case, Case) else validate_case(case)
    determination = engine.evaluate(valid)
    ids = [r.id for r in valid.requests]
    if request is not None and request not in ids:
        raise ValueError(f"the case has no request `{request}`; its requests are: {', '.join(ids)}")
    reference = Engine(engine.editions, engine.policy_set, ReferenceMatcher(engine.editions), engine.profiles)
    items = []
    for index, req in enumerate(valid.requests):
        if request is not None and req.id != request:
            continue
        item = determination.item(req.id)
        facts = request_facts(valid, req)
        # the evaluation on the records as they are; each reading of unstated facts is summed up below it
        entries = [t for t in item.trace if not t.reading and (rule is None or _named(t, rule))]
        explained = tuple(_entry(t, facts, valid, index, engine, reference, req.quantity) for t in entries)
        tested = dict.fromkeys(c.fact for r in explained for c in r.conditions)
        shown = dict.fromkeys(("quantity", "completed", "total", *tested))
        items.append(
            ItemExplanation(
                request=req.id,
                service=req.service,
                requested_quantity=req.quantity,
                determination=item.determination,
                approved_quantity=item.approved_quantity,
                facts=tuple((k, facts.get(k)) for k in shown if k in facts),
                rules=explained,
                readings=item.readings,
                counted_together=_counted_together(engine, {(t.guideline, t.edition) for t in entries}, facts),
            )
        )
    if rule is not None and not any(i.rules for i in items):
        considered = sorted({f"{t.guideline}:{t.rule}" for i in determination.items for t in i.trace})
        raise ValueError(
            f"no rule `{rule}` was considered for "
            + (f"request `{request}`" if request else "this case")
            + (f"; considered: {', '.join(considered)}" if considered else "; no rule was considered")
        )
    return Explanation(valid.case_id, tuple(items))


def _counted_together(
    engine: Engine, consulted: set[tuple[str, str]], facts: Facts
) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    """The editions explained that count other services' visits with the request's, and what they counted."""
    out = []
    for e in engine.editions:
        others = as_counted_by(facts, e)[1] if (e.guideline_id, e.edition_id) in consulted else ()
        if others:
            out.append((e.key, ((facts["service"], facts["completed"]), *((s, c) for s, c, _ in others))))
    return tuple(out)


def _named(t: TraceEntry, name: str) -> bool:
    head, _, rule_id = name.rpartition(":")
    guideline, _, edition = head.partition("@")
    return t.rule == rule_id and (not guideline or t.guideline == guideline) and (not edition or t.edition == edition)


def _entry(
    t: TraceEntry,
    facts: Facts,
    case: Case,
    index: int,
    engine: Engine,
    reference: Engine,
    quantity: int,
) -> RuleExplanation:
    edition = next(e for e in engine.editions if e.guideline_id == t.guideline and e.edition_id == t.edition)
    if edition.conditions and "condition" not in facts:
        # the row this entry was evaluated for (or the first row the diagnoses name): a fact of the edition
        rows = [m.row.id for m in match_rows(edition.conditions, case, case.requests[index], edition.unnamed_condition)]
        facts = facts | {"condition": t.condition or (rows[0] if rows else None)}
    service = facts["service"]
    facts, _ = as_counted_by(facts, edition)  # the count facts as this edition makes them (`counted_together:`)
    matcher = ReferenceMatcher((edition,))
    item: Rule | RuleException = (
        edition.rule(t.rule) if t.kind == "rule" else next(x for x in edition.exceptions if x.id == t.rule)
    )
    checks = tuple(condition_check(c, facts, edition) for c in leaves(item.when))
    held = all_hold(item.when, facts, edition)
    note: str | None = None
    if held and not t.decided:
        note = t.why_not or "it holds, but an earlier rule decides"
        if t.kind == "rule":
            first = next((r for r in edition.rules_for(service) if all_hold(r.when, facts, edition)), None)
            if first is not None and first.id != t.rule:
                note = f"it holds, but `{first.id}` comes first and decides"
    if t.decided:
        return RuleExplanation(t.guideline, t.edition, t.rule, t.kind, held, True, checks, note, (), False)
    if t.condition is not None:
        # the diagnoses name several rows and the edition decides only where they agree: a change that makes
        # this rule decide for one row says nothing of what the edition would decide, so none is searched
        note = f"considered for the row `{t.condition}`; the diagnoses name several rows of the table"
        return RuleExplanation(t.guideline, t.edition, t.rule, t.kind, held, False, checks, note, (), False)

    rules = edition.rules_for(service)
    if isinstance(item, Rule):
        target_rule = item

        def accept(changed: Facts) -> bool:
            fired = matcher.match(edition, changed)
            first_rule = next((f for f in fired if f.startswith("rule:")), None)
            return first_rule == f"rule:{target_rule.id}"

        earlier = [r for r in rules[: rules.index(item)] if all_hold(r.when, facts, edition)]
        failing = [c for c in item.when if not clause_holds(c, facts, edition)]
        names = _facts_to_vary(failing, earlier, facts)
    else:
        exc = item

        def accept(changed: Facts) -> bool:
            res = reference.edition_result(edition, case, index, changed)
            return res.exception is not None and res.exception.id == exc.id

        targets = [edition.rule(r) for r in exc.rules if any(x.id == r for x in rules)]
        first_target = min((rules.index(r) for r in targets), default=len(rules))
        blockers = [r for r in rules[:first_target] if all_hold(r.when, facts, edition)]
        failing = [c for c in exc.when if not clause_holds(c, facts, edition)]
        failing += [c for r in targets for c in r.when if not clause_holds(c, facts, edition)]
        names = _facts_to_vary(failing, blockers, facts)
        names = list(dict.fromkeys([*names, "quantity", "completed"]))  # it must also raise the approved quantity
    found = _search(facts, names, edition, service, accept)
    counterfactuals = []
    for changes in found[:MAX_SHOWN]:
        result: EditionResult = reference.edition_result(edition, case, index, _with(facts, changes))
        kind = result.status if result.status in ("not_applicable", "not_addressed") else result.kind
        counterfactuals.append(Counterfactual(changes, kind, result.approved, _changed_quantity(changes, quantity)))
    return RuleExplanation(
        t.guideline, t.edition, t.rule, t.kind, held, False, checks, note, tuple(counterfactuals), True
    )


def _changed_quantity(changes: Sequence[Change], quantity: int) -> int:
    return next((int(c.value) for c in changes if c.fact == "quantity"), quantity)


__all__ = ["Explanation", "explain_case"]
