"""A small pure-Python evaluator of the same rule IR, written for clarity rather than speed.

It serves three purposes: the engine checks every durable_rules answer against it at run time
(a mismatch is an EngineError, never a decision), the property tests compare the two on generated
cases, and `load(engine="reference")` uses it where durable_rules cannot be built (Python 3.13).
Semantics match the compiled rules exactly: a condition on an absent fact is false, except `absent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imr_policy.model import Condition, Edition


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


class ReferenceMatcher:
    """Same interface as compile.DurableMatcher."""

    name = "reference"

    def __init__(self, editions: tuple[Edition, ...]) -> None:
        self._editions = editions

    def match(self, edition: Edition, facts: Mapping[str, Any]) -> tuple[str, ...]:
        service = facts.get("service")
        fired = [
            f"rule:{r.id}"
            for r in edition.rules
            if service in r.services and all(holds(c, facts, edition) for c in r.when)
        ]
        for exc in edition.exceptions:
            services = {s for r in edition.rules if r.id in exc.rules for s in r.services}
            if service in services and all(holds(c, facts, edition) for c in exc.when):
                fired.append(f"exception:{exc.id}")
        return tuple(fired)
