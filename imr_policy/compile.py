"""Rule packs -> durable_rules rulesets. The only module that imports durable_rules.

durable_rules 2.0.28 is fast in C but hazardous through its Python host (see
docs/architecture.md, "The engine adapter"). This adapter owns every mitigation:

* a Host subclass whose background dispatch threads never start (the stock ones steal results);
* deep-copied definitions (`set_rulesets` deletes `run` from what it is given);
* one ruleset per edition, named `<guideline>@<edition>`, registered once per Engine;
* single-message rules, each anchored on a positive `kind` and `service` test, so the engine's own
  state fact can never match a rule (issue #302);
* a case is asserted as a fact, so *every* rule whose conditions hold fires (in priority order); the
  action only records the rule's name, then the fact is retracted, so nothing accumulates;
* one lock serialises the assert/retract pair (the GIL is never released inside the C core, so the
  lock costs no parallelism), and a per-call nonce proves that the state we read is our own;
* `None` results, exceptions stored in the state and C error codes all become EngineError.

The compiled form is plain JSON so it can be inspected (`compiled_rulesets`).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

import durable_rules_engine
from durable import engine as durable_engine

from imr_policy.errors import EngineError
from imr_policy.facts import PREDICATE_OPS
from imr_policy.model import Condition, Edition
from imr_policy.reference import holds

_ANCHOR = {"kind": "imr-request"}
_SID = "imr"


def _literal(value: Any) -> Any:
    return value.toordinal() if isinstance(value, dt.date) else value


def predicate_name(cond: Condition) -> str:
    """The message property that carries a text or code predicate's value (computed in Python)."""
    digest = hashlib.sha256(repr((cond.fact, cond.op, cond.value)).encode()).hexdigest()[:16]
    return f"pred_{digest}"


def _condition(cond: Condition, edition: Edition) -> dict[str, Any]:
    value = edition.limit(cond.limit).value if cond.limit else _literal(cond.value)
    fact = cond.fact
    match cond.op:
        case "prefix_in" | "contains_any":
            return {predicate_name(cond): True}
        case "eq":
            return {fact: value}
        case "ne":
            return {"$neq": {fact: value}}
        case "lt" | "lte" | "gt" | "gte":
            return {f"${cond.op}": {fact: value}}
        case "in":
            return {"$or": [{fact: _literal(v)} for v in cond.value]}
        case "not_in":
            return {"$and": [{"$neq": {fact: _literal(v)}} for v in cond.value]}
        case "present":
            return {"$ex": {fact: 1}}
        case "absent":
            return {"$nex": {fact: 1}}
    raise ValueError(f"unknown operator {cond.op!r}")  # pragma: no cover - validation rejects it


def _services(services: tuple[str, ...]) -> dict[str, Any]:
    if len(services) == 1:
        return {"service": services[0]}
    return {"$or": [{"service": s} for s in services]}


def rule_name(kind: str, rule_id: str) -> str:
    return f"{kind}:{rule_id}"


def compile_edition(edition: Edition) -> dict[str, Any]:
    """The durable_rules JSON definition of one edition: a rule per rule and per exception."""
    definition: dict[str, Any] = {}
    priority = itertools.count(1)
    for rule in edition.rules:
        name = rule_name("rule", rule.id)
        clauses = [_ANCHOR, _services(rule.services), *(_condition(c, edition) for c in rule.when)]
        definition[name] = {"all": [{"m": {"$and": clauses}}], "pri": next(priority), "run": name}
    for exc in edition.exceptions:
        name = rule_name("exception", exc.id)
        services = tuple(sorted({s for r in edition.rules if r.id in exc.rules for s in r.services}))
        clauses = [_ANCHOR, _services(services), *(_condition(c, edition) for c in exc.when)]
        definition[name] = {"all": [{"m": {"$and": clauses}}], "pri": next(priority), "run": name}
    return definition


def compiled_rulesets(editions: tuple[Edition, ...]) -> dict[str, dict[str, Any]]:
    return {e.key: compile_edition(e) for e in editions}


def predicates(edition: Edition) -> tuple[Condition, ...]:
    conds = [c for r in edition.rules for c in r.when] + [c for e in edition.exceptions for c in e.when]
    unique = {predicate_name(c): c for c in conds if c.op in PREDICATE_OPS}
    return tuple(unique.values())


def engine_message(
    facts: Mapping[str, Any], edition: Edition | None = None, preds: tuple[Condition, ...] | None = None
) -> dict[str, Any]:
    """Facts -> the message the engine sees: dates as day numbers, absent facts and lists left out, and
    one boolean per text or code predicate of `edition`, computed by the reference semantics."""
    # a list-valued fact (diagnosis codes) reaches the engine as its length, enough for present/absent;
    # every other test of it is a predicate computed below
    message = {k: len(v) if isinstance(v, tuple) else _literal(v) for k, v in facts.items() if v is not None}
    if edition is not None:
        for cond in predicates(edition) if preds is None else preds:
            message[predicate_name(cond)] = holds(cond, facts, edition)
    return message


class _QuietHost(durable_engine.Host):  # type: ignore[misc]
    """A Host with no background threads and actions resolved from our own table."""

    def __init__(self, actions: dict[str, Callable[[Any], None]]) -> None:
        self._imr_actions = actions
        super().__init__()

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        return self._imr_actions[action_name]

    def _run(self) -> None:
        """Never start the stock dispatch threads: they race with post() and lose results."""


def _recorder(name: str) -> Callable[[Any], None]:
    def action(c: Any) -> None:
        state = c.s._d
        nonce = c.m.nonce
        if state.get("nonce") != nonce:
            state["nonce"] = nonce
            state["fired"] = []
        state["fired"].append(name)

    return action


class DurableMatcher:
    """Answers "which rules and exceptions of this edition hold for these facts?" with durable_rules."""

    name = "durable"

    def __init__(self, editions: tuple[Edition, ...]) -> None:
        definitions = compiled_rulesets(editions)
        actions = {rule: _recorder(rule) for d in definitions.values() for rule in d}
        self._host = _QuietHost(actions)
        try:
            self._host.set_rulesets(copy.deepcopy(definitions))
        except durable_rules_engine.error as exc:
            raise EngineError(f"durable_rules rejected the compiled rulesets: {exc}") from exc
        self._lock = threading.Lock()
        self._nonce = itertools.count(1)
        self._predicates = {e.key: predicates(e) for e in editions}

    def match(self, edition: Edition, facts: Mapping[str, Any]) -> tuple[str, ...]:
        """Names (`rule:<id>`, `exception:<id>`) of everything that holds, in priority order."""
        with self._lock:
            nonce = next(self._nonce)
            body = engine_message(facts, edition, self._predicates.get(edition.key, ()))
            message = {"sid": _SID, **_ANCHOR, **body, "nonce": nonce}
            try:
                state = self._host.assert_fact(edition.key, message)
            except durable_engine.MessageNotHandledException:
                return ()
            except durable_rules_engine.error as exc:
                raise EngineError(f"durable_rules failed on `{edition.key}`: {exc}") from None
            try:
                self._host.retract_fact(edition.key, message)
            except (durable_rules_engine.error, durable_engine.MessageNotHandledException) as exc:
                raise EngineError(f"durable_rules could not retract the case from `{edition.key}`: {exc}") from None
        if state is None or not isinstance(state, dict):
            raise EngineError(f"durable_rules returned no result for `{edition.key}`")
        if "exception" in state:
            raise EngineError(f"an engine action failed on `{edition.key}`")
        if state.get("nonce") != nonce:
            raise EngineError(f"durable_rules returned another evaluation's result for `{edition.key}`")
        return tuple(state["fired"])
