"""Rule packs -> durable_rules rulesets. The only module that imports durable_rules.

durable_rules 2.0.28 is fast in C but hazardous through its Python host (see
docs/architecture.md, "The engine adapter"). This adapter owns every mitigation:

* no `durable.engine.Host` at all: each ruleset is created in the C core and driven from the caller's
  thread (assert, start and complete each action, retract), so no background dispatch thread exists
  to steal a result, and none of the Host's per-action Python plumbing is paid for;
* one ruleset per edition, named `<guideline>@<edition>`, created once per Engine, `run` left out;
* single-message rules, each anchored on a positive `kind` and `service` test, so the engine's own
  state fact can never match a rule (issue #302);
* a case is asserted as a fact, so *every* rule whose conditions hold fires (in priority order); each
  action is only read for the rule's name, then the fact is retracted, so nothing accumulates;
* one lock serialises the assert/retract pair (the GIL is never released inside the C core, so the
  lock costs no parallelism), and a per-call nonce that every action's message must carry proves that
  the answer read is our own;
* result codes other than "fired" and "nothing holds", malformed actions, a foreign nonce and C
  errors all become EngineError, and a failure abandons the action in hand.

The compiled form is plain JSON so it can be inspected (`compiled_rulesets`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import durable_rules_engine

from imr_policy.engine.reference import holds
from imr_policy.language.facts import PREDICATE_OPS
from imr_policy.model.errors import EngineError
from imr_policy.model.values import AnyOf, Clause, Condition, Edition, leaves

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


# a condition's complement where its fact is present (`not` of it also holds where the fact is absent)
_COMPLEMENT = {
    "eq": "ne",
    "ne": "eq",
    "lt": "gte",
    "gte": "lt",
    "lte": "gt",
    "gt": "lte",
    "in": "not_in",
    "not_in": "in",
}


def _clause(clause: Clause, edition: Edition, negated: bool = False) -> dict[str, Any]:
    """A condition, `any:` or `not:` as one durable_rules expression, negations pushed to the conditions
    (durable_rules has no negation of an expression on one message). A condition on an absent fact does
    not hold (`$neq` on a missing property does not match either), so its negation is "absent, or the
    complement holds"."""
    if isinstance(clause, AnyOf):
        parts = [_clause(c, edition, negated) for c in clause.clauses]
        return {"$and" if negated else "$or": parts}
    if not isinstance(clause, Condition):
        return _clause(clause.clause, edition, not negated)
    if not negated:
        return _condition(clause, edition)
    match clause.op:
        case "present":
            return _condition(Condition(clause.fact, "absent"), edition)
        case "absent":
            return _condition(Condition(clause.fact, "present"), edition)
        case "prefix_in" | "contains_any":
            return {predicate_name(clause): False}  # every predicate of the edition is in every message
    flipped = Condition(clause.fact, _COMPLEMENT[clause.op], clause.value, clause.limit)
    return {"$or": [{"$nex": {clause.fact: 1}}, _condition(flipped, edition)]}


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
        clauses = [_ANCHOR, _services(rule.services), *(_clause(c, edition) for c in rule.when)]
        definition[name] = {"all": [{"m": {"$and": clauses}}], "pri": next(priority), "run": name}
    for exc in edition.exceptions:
        name = rule_name("exception", exc.id)
        services = tuple(sorted({s for r in edition.rules if r.id in exc.rules for s in r.services}))
        clauses = [_ANCHOR, _services(services), *(_clause(c, edition) for c in exc.when)]
        definition[name] = {"all": [{"m": {"$and": clauses}}], "pri": next(priority), "run": name}
    return definition


def compiled_rulesets(editions: tuple[Edition, ...]) -> dict[str, dict[str, Any]]:
    return {e.key: compile_edition(e) for e in editions}


def predicates(edition: Edition) -> tuple[Condition, ...]:
    conds = [c for r in edition.rules for c in leaves(r.when)] + [c for e in edition.exceptions for c in leaves(e.when)]
    unique = {predicate_name(c): c for c in conds if c.op in PREDICATE_OPS}
    return tuple(unique.values())


def tested_facts(edition: Edition) -> tuple[str, ...]:
    """The facts the edition's compiled rules read: `service` and every fact a condition names."""
    names = (
        {"service"}
        | {c.fact for r in edition.rules for c in leaves(r.when)}
        | {c.fact for e in edition.exceptions for c in leaves(e.when)}
    )
    return tuple(sorted(names))


def engine_message(
    facts: Mapping[str, Any],
    edition: Edition | None = None,
    preds: tuple[Condition, ...] | None = None,
    tested: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Facts -> the message the engine sees: dates as day numbers, absent facts and lists left out, and
    one boolean per text or code predicate of `edition`, computed by the reference semantics. With
    `tested` (`tested_facts(edition)`), only those facts: no rule reads any other, and a smaller message
    costs less to encode, parse and echo back."""
    # a list-valued fact (diagnosis codes) reaches the engine as its length, enough for present/absent;
    # every other test of it is a predicate computed below
    if tested is None:
        message = {k: len(v) if isinstance(v, tuple) else _literal(v) for k, v in facts.items() if v is not None}
    else:
        message = {}
        for k in tested:
            v = facts.get(k)
            if v is not None:
                message[k] = len(v) if isinstance(v, tuple) else _literal(v)
    if edition is not None:
        for cond in predicates(edition) if preds is None else preds:
            message[predicate_name(cond)] = holds(cond, facts, edition)
    return message


class _Network:
    """One compiled ruleset in the durable_rules C core, driven directly (durable-rules.md §2.13).

    No `durable.engine.Host` is involved: it is the Host whose background dispatch threads race with
    `post()` and lose results, and whose per-action Python plumbing (a Closure, two clock reads, the
    state serialised out and back in) costs about three times the C work. What is kept of it is what
    matters: the ruleset is created from a JSON definition without `run`, every queued action is
    started, read and completed in the caller's thread, and a failure abandons the action in hand."""

    __slots__ = ("handle", "key")

    def __init__(self, key: str, definition: dict[str, Any]) -> None:
        rules = {name: {k: v for k, v in rule.items() if k != "run"} for name, rule in definition.items()}
        self.key = key
        self.handle = durable_rules_engine.create_ruleset(key, json.dumps(rules, ensure_ascii=False))

    def fire(self, text: str, nonce: int) -> tuple[str, ...]:
        """Assert the fact `text`, collect the name of every rule it fires (priority order), retract it.

        Each action's message must carry `nonce`: it proves the answer is this call's own."""
        handle = self.handle
        code, state = durable_rules_engine.assert_fact(handle, text)
        if code == _NOT_HANDLED:
            return ()  # no rule holds; the engine stored nothing
        if code != _OK:
            raise EngineError(f"durable_rules did not take the case for `{self.key}` (result {code})")
        try:
            fired = self._drain(state, nonce)
        finally:
            code, state = durable_rules_engine.retract_fact(handle, text)
            if code not in (_OK, _NOT_HANDLED):
                raise EngineError(f"durable_rules could not retract the case from `{self.key}` (result {code})")
            if code == _OK and durable_rules_engine.start_action_for_state(handle, state):
                # a retraction never fires our rules (none is negated); if one did, refuse the answer
                durable_rules_engine.abandon_action(handle, state)
                raise EngineError(f"durable_rules fired a rule on retracting the case from `{self.key}`")
        return fired

    def _drain(self, state: int, nonce: int) -> tuple[str, ...]:
        handle = self.handle
        started = durable_rules_engine.start_action_for_state(handle, state)
        if not started:
            raise EngineError(f"durable_rules returned no result for `{self.key}`")
        fired: list[str] = []
        text = started[1]
        try:
            while text:
                action = _decode(text)
                if type(action) is not dict or len(action) != 1:
                    raise EngineError(f"durable_rules returned a malformed action for `{self.key}`")
                ((name, frame),) = action.items()
                if not isinstance(frame, dict) or frame.get("m", {}).get("nonce") != nonce:
                    raise EngineError(f"durable_rules returned another evaluation's result for `{self.key}`")
                fired.append(name)
                text = durable_rules_engine.complete_and_start_action(handle, state)
        except BaseException:
            with contextlib.suppress(durable_rules_engine.error):  # already completed: nothing is held
                durable_rules_engine.abandon_action(handle, state)
            raise
        return tuple(fired)


_OK, _NOT_HANDLED = 0, 1  # durable_rules' result codes (src/rules/rules.h: RULES_OK, ERR_EVENT_NOT_HANDLED)


class DurableMatcher:
    """Answers "which rules and exceptions of this edition hold for these facts?" with durable_rules."""

    name = "durable"

    def __init__(self, editions: tuple[Edition, ...]) -> None:
        try:
            self._networks = {key: _Network(key, d) for key, d in compiled_rulesets(editions).items()}
        except durable_rules_engine.error as exc:
            raise EngineError(f"durable_rules rejected the compiled rulesets: {exc}") from exc
        self._lock = threading.Lock()
        self._nonce = itertools.count(1)
        self._predicates = {e.key: predicates(e) for e in editions}
        self._tested = {e.key: tested_facts(e) for e in editions}
        # per edition, in one look-up: its network, the facts its rules read, its predicates by message name
        self._plans = {
            e.key: (
                self._networks[e.key],
                self._tested[e.key],
                tuple((predicate_name(c), c) for c in self._predicates[e.key]),
            )
            for e in editions
        }

    def match(self, edition: Edition, facts: Mapping[str, Any]) -> tuple[str, ...]:
        """Names (`rule:<id>`, `exception:<id>`) of everything that holds, in priority order."""
        plan = self._plans.get(edition.key)
        if plan is None:
            raise EngineError(f"no ruleset is compiled for `{edition.key}`")
        network, tested, preds = plan
        # the message `engine_message` gives, between the anchor and the nonce, built in place
        message: dict[str, Any] = {"sid": _SID, **_ANCHOR}
        for k in tested:
            v = facts.get(k)
            if v is not None:
                message[k] = len(v) if isinstance(v, tuple) else _literal(v)
        for name, cond in preds:
            message[name] = holds(cond, facts, edition)
        with self._lock:
            nonce = next(self._nonce)
            message["nonce"] = nonce
            text = _encode(message)
            try:
                fired = network.fire(text, nonce)
            except durable_rules_engine.error as exc:
                raise EngineError(f"durable_rules failed on `{edition.key}`: {exc}") from None
        # a rule whose `any:` holds in several ways fires once per way (durable_rules expands each `$or`
        # into its own chain of nodes): it holds once
        return tuple(dict.fromkeys(fired)) if len(fired) > 1 else fired


def _encoder() -> Callable[[Any], str]:
    """`json.JSONEncoder(ensure_ascii=False).encode` for a flat message: the same text, without building the
    C encoder anew on every call (falls back to the encoder itself where the C accelerator is missing)."""
    plain = json.JSONEncoder(ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    quote = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or quote is None:  # pragma: no cover - CPython always has them
        return plain.encode
    fast = make(None, plain.default, quote, None, ": ", ", ", False, False, True)
    return lambda message: "".join(fast(message, 0))


def _decoder() -> Callable[[str], Any]:
    """`json.loads` for an action's text: the C scanner called directly; anything it does not read whole is
    read by `json.loads` itself (which then raises as it always does)."""
    scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner json.loads uses

    def decode(text: str) -> Any:
        try:
            value, end = scan(text, 0)
        except StopIteration:
            return json.loads(text)
        return value if end == len(text) else json.loads(text)

    return decode


_encode = _encoder()
_decode = _decoder()
