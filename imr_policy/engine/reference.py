"""A small pure-Python evaluator of the same rule IR, written for clarity rather than speed.

It serves three purposes: the engine checks every durable_rules answer against it at run time
(a mismatch is an EngineError, never a decision), the property tests compare the two on generated
cases, and `load(engine="reference")` uses it where durable_rules cannot be built (Python 3.13).
Semantics match the compiled rules exactly: a condition on an absent fact is false, except `absent`;
`any:` holds when one of its clauses does, `not:` when its clause does not (so `not` of a condition on
an absent fact holds).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from imr_policy.model.values import AnyOf, Clause, Condition, Edition


def operand(cond: Condition, edition: Edition) -> Any:
    return edition.limit(cond.limit).value if cond.limit else cond.value


def holds(cond: Condition, facts: Mapping[str, Any], edition: Edition) -> bool:
    value = facts.get(cond.fact)
    if cond.op == "present":
        return value is not None
    if cond.op == "absent":
        return value is None
    if value is None:
        return False
    other = operand(cond, edition)
    match cond.op:
        case "eq":
            return bool(value == other)
        case "ne":
            return bool(value != other)
        case "lt":
            return bool(value < other)
        case "lte":
            return bool(value <= other)
        case "gt":
            return bool(value > other)
        case "gte":
            return bool(value >= other)
        case "in":
            return value in other
        case "not_in":
            return value not in other
        case "prefix_in":
            return any(code.startswith(prefix) for code in value for prefix in other)
        case "contains_any":
            text = str(value).casefold()
            return any(str(word).casefold() in text for word in other)
    raise ValueError(f"unknown operator {cond.op!r}")  # pragma: no cover


def clause_holds(clause: Clause, facts: Mapping[str, Any], edition: Edition) -> bool:
    """Whether a condition, an `any:` or a `not:` holds for `facts`."""
    if isinstance(clause, Condition):
        return holds(clause, facts, edition)
    if isinstance(clause, AnyOf):
        return any(clause_holds(c, facts, edition) for c in clause.clauses)
    return not clause_holds(clause.clause, facts, edition)


def all_hold(clauses: tuple[Clause, ...], facts: Mapping[str, Any], edition: Edition) -> bool:
    """Whether every clause of a rule's `when` holds."""
    return all(clause_holds(c, facts, edition) for c in clauses)


def check_clause(clause: Clause, edition: Edition) -> Callable[[Mapping[str, Any]], bool]:
    """`clause_holds(clause, ., edition)` as a closure (`check` for a condition)."""
    if isinstance(clause, Condition):
        return check(clause, edition)
    if isinstance(clause, AnyOf):
        options = tuple(check_clause(c, edition) for c in clause.clauses)
        return lambda facts: any(test(facts) for test in options)
    inner = check_clause(clause.clause, edition)
    return lambda facts: not inner(facts)


def check(cond: Condition, edition: Edition) -> Callable[[Mapping[str, Any]], bool]:
    """`holds(cond, ., edition)` as a closure, its operand read once: the same semantics, compiled for
    the evaluator that checks every engine answer (tests/unit/test_operators.py holds it to `holds`)."""
    fact, op = cond.fact, cond.op
    if op == "present":
        return lambda facts: facts.get(fact) is not None
    if op == "absent":
        return lambda facts: facts.get(fact) is None
    if op in ("prefix_in", "contains_any"):
        return lambda facts: holds(cond, facts, edition)
    other = operand(cond, edition)
    compare = _COMPARE.get(op)
    if compare is None:
        raise ValueError(f"unknown operator {op!r}")  # pragma: no cover

    def test(facts: Mapping[str, Any]) -> bool:
        value = facts.get(fact)
        return value is not None and bool(compare(value, other))

    return test


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "in": lambda value, other: value in other,
    "not_in": lambda value, other: value not in other,
}

_Plan = tuple[tuple[str, tuple[Callable[[Mapping[str, Any]], bool], ...]], ...]


def _plans(edition: Edition) -> dict[str, _Plan]:
    """Per service, what `match` tests: each rule, then each exception, with its conditions compiled."""
    entries: list[tuple[str, frozenset[str], tuple[Callable[[Mapping[str, Any]], bool], ...]]] = [
        (f"rule:{r.id}", frozenset(r.services), tuple(check_clause(c, edition) for c in r.when)) for r in edition.rules
    ]
    for exc in edition.exceptions:
        services = frozenset(s for r in edition.rules if r.id in exc.rules for s in r.services)
        entries.append((f"exception:{exc.id}", services, tuple(check_clause(c, edition) for c in exc.when)))
    every = {s for _, services, _ in entries for s in services}
    return {s: tuple((name, checks) for name, services, checks in entries if s in services) for s in every}


class ReferenceMatcher:
    """Same interface as compile.DurableMatcher. Each edition's conditions are compiled once."""

    name = "reference"

    def __init__(self, editions: tuple[Edition, ...]) -> None:
        self._editions = editions
        self._compiled = {e.key: (e, _plans(e)) for e in editions}

    def match(self, edition: Edition, facts: Mapping[str, Any]) -> tuple[str, ...]:
        known = self._compiled.get(edition.key)
        plans = known[1] if known is not None and known[0] is edition else _plans(edition)
        plan = plans.get(facts.get("service"), ())  # type: ignore[arg-type]
        held: list[str] = []
        for name, checks in plan:  # a loop, not `all(...)` over a generator: one of these per rule is the cost
            for test in checks:
                if not test(facts):
                    break
            else:
                held.append(name)
        return tuple(held)
