"""A compiled policy set x a case -> a Determination with its basis, rationale and trace.

Per request: derive the facts, select the editions in force on its date of service, walk the
jurisdiction's evidence search sequence, ask the matcher (durable_rules, checked against the
reference evaluator) which rules hold in each edition, and apply the first rule that holds.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import functools
import itertools
import math
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

from imr_policy.engine import timeliness
from imr_policy.engine.combine import (
    MAX_READINGS,
    PROVENANCE_ORDER,
    Reading,
    Readings,
    Unstated,
    combine,
    combine_readings,
    kind_of,
    too_many,
)
from imr_policy.engine.derive import (
    ENTRIES,
    POOLED_REQUESTS,
    as_counted_by,
    concurrent_requests,
    missing_case_fields,
    request_facts,
    unstated_facts,
    with_concurrent,
)
from imr_policy.engine.reference import ReferenceMatcher
from imr_policy.explain import rationale, ur
from imr_policy.language.conditions import match_rows, names_no_procedure
from imr_policy.language.facts import FACTS, PREDICATE_OPS, PRESENCE_OPS
from imr_policy.loading.case import validate_case
from imr_policy.loading.procedure import Procedure
from imr_policy.loading.resources import policies_dir
from imr_policy.loading.sequence import Profile, Step
from imr_policy.loading.validate import LoadResult, load_editions
from imr_policy.model.diagnostics import Diagnostic
from imr_policy.model.errors import CaseError, EngineError, PolicyError
from imr_policy.model.values import (
    Case,
    Clause,
    ConditionMatch,
    DecisionKind,
    Determination,
    Edition,
    EditionResult,
    ExceptionCheck,
    Facts,
    HistoryEntry,
    ItemDetermination,
    PolicySetInfo,
    Provenance,
    Request,
    Rule,
    RuleException,
    SearchStep,
    TraceEntry,
    deferred,
    evolve,
    leaves,
)

try:
    ENGINE_VERSION = metadata.version("imr-policy")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    ENGINE_VERSION = "0.0.0+checkout"


class Matcher(Protocol):
    name: str

    def match(self, edition: Edition, facts: Mapping[str, Any]) -> tuple[str, ...]: ...


class Engine:
    """A loaded, validated and compiled policy set. Safe to share between threads."""

    def __init__(
        self,
        editions: tuple[Edition, ...],
        policy_set: PolicySetInfo,
        matcher: Matcher,
        profiles: tuple[Profile, ...] = (),
        procedures: tuple[Procedure, ...] = (),
    ) -> None:
        self._editions = editions
        self._procedures = procedures
        self._profiles = {p.jurisdiction: p for p in profiles}
        self._policy_set = policy_set
        self._matcher = matcher
        # the reference evaluator checks every durable_rules answer; it need not check itself
        self._reference = matcher if isinstance(matcher, ReferenceMatcher) else ReferenceMatcher(editions)
        # the facts each edition's rules and exceptions read: within one evaluation, an edition asked
        # again about the same values of them (readings, rows, open request dates) answers from memory
        self._tested = {e.key: _tested_facts(e) for e in editions}
        self._own = {e.key: e for e in editions}
        # the reference evaluator's answers, by edition and the values of the facts it reads (`_fired`)
        self._checks: dict[tuple[Any, ...], frozenset[str]] = {}
        self._by_jurisdiction: dict[str, tuple[tuple[Edition, ...], bool]] = {}
        # what the dates of a request select, and each step's editions for a service, remembered across
        # evaluations (a few inputs decide them, and every request asks): `_select`, `_steps`
        self._selections: dict[tuple[Any, ...], _Selected] = {}
        self._step_plans: dict[tuple[int, int, str], tuple[_Selected, Profile, tuple[_StepPlan, ...]]] = {}
        # per service, the services some edition counts with it (`counted_together:`), itself included
        self._counted = {
            s: frozenset({s}.union(*(e.counted_with(s) for e in editions)))
            for s in {s for e in editions for g in e.counted_together for s in g.services}
        }

    @property
    def editions(self) -> tuple[Edition, ...]:
        return self._editions

    @property
    def policy_set(self) -> PolicySetInfo:
        return self._policy_set

    @property
    def profiles(self) -> tuple[Profile, ...]:
        return tuple(self._profiles.values())

    @property
    def procedures(self) -> tuple[Procedure, ...]:
        """The UR procedural packs (imr_policy/loading/procedure.py)."""
        return self._procedures

    @property
    def backend(self) -> str:
        return self._matcher.name

    def evaluate(self, case: Mapping[str, Any] | Case, *, min_provenance: Provenance | None = None) -> Determination:
        """Decide every request of `case` (a dict per the case contract, or a validated Case).

        `min_provenance`: the weakest grade a decision may rest on (`V`, `V-seed`, `V-2nd`, `UNVERIFIED`,
        strongest first); a decision resting on a weaker number pends, saying so. Default: no floor.
        Raises CaseError (with every problem) for invalid input and EngineError when the engine fails;
        neither ever yields a determination.
        """
        if min_provenance is not None and min_provenance not in PROVENANCE_ORDER:
            raise ValueError(
                f"unknown provenance grade {min_provenance!r}; expected one of {', '.join(PROVENANCE_ORDER)}"
            )
        valid = case if isinstance(case, Case) else validate_case(case)
        if valid.jurisdiction not in self._profiles:
            known = ", ".join(f"`{j}`" for j in sorted(self._profiles)) or "none"
            raise CaseError(
                "the case is not valid",
                [
                    Diagnostic(
                        code="case.unknown-jurisdiction",
                        message=f"jurisdiction `{valid.jurisdiction}` has no profile in this policy set",
                        path="$.jurisdiction",
                        hint=f"expected one of: {known} (a new jurisdiction is a profile under "
                        "policies/jurisdictions/)",
                    )
                ],
            )
        token = _ANSWERS.set({})
        try:
            items = tuple(self._decide(valid, i, r, min_provenance) for i, r in enumerate(valid.requests))
        finally:
            _ANSWERS.reset(token)
        # UR timeliness: decided in its own module, never changing the outcome, then put in words
        items = tuple(ur.worded(i) for i in timeliness.attach(valid, items, self._procedures))
        return Determination(valid.case_id, ENGINE_VERSION, self._policy_set, items)

    def edition_result(self, edition: Edition, case: Case, index: int, facts: Facts | None = None) -> EditionResult:
        """What one edition alone says about request `index` of a validated case (for `verify` and
        explanations; ignores the search sequence and the edition's dates). `facts`, when given, replace
        the request's derived facts (a counterfactual: what the edition would say were they so)."""
        if facts is None:
            facts = request_facts(case, case.requests[index])
        return self._edition(edition, facts, case, index)

    # ------------------------------------------------------------------ per request

    def _decide(self, case: Case, index: int, request: Request, floor: Provenance | None = None) -> ItemDetermination:
        facts = request_facts(case, request)
        selected = self._select(case, request)  # once per request: every reading has the same dates
        first = self._decide_with(case, index, request, facts, floor=floor, selected=selected)
        # a count the records give as a least number is read at its least here, so even a decision on it
        # is only one reading: such a request is always read at every count that can matter
        counted = self._counted_services(request.service)
        inexact = any(h.service in counted and h.count != "exact" for h in case.history) or _concurrent_unknown(
            case, request
        )
        if first.determination != "pend" and not inexact:
            return first
        unstated = self._unstated(case, index, request, facts, selected)
        return self._branch(case, index, request, facts, unstated, first, floor, selected) if unstated else first

    def _unstated(
        self, case: Case, index: int, request: Request, facts: Facts, selected: _Selected
    ) -> tuple[Unstated, ...]:
        """What the records leave open for one request: the registry's unstated facts (a severity only
        among the values the guidelines consulted distinguish, where each declares them), each count of
        prior visits the records do not state exactly, and, per guideline with a table by condition, the
        rows when the diagnoses name more than one."""
        in_force, undated = selected
        service = request.service
        dims: list[Unstated] = []
        for name, registry_values in unstated_facts(facts):
            if not any(e.tests_fact(service, name) for e in in_force):
                continue  # no guideline consulted asks it: no reading can differ
            fact = FACTS[name]
            values, note = registry_values, ""
            if name == "severity":
                values, note = _severity_readings(in_force, service, values)
            dims.append(
                Unstated(
                    name, values, fact.question, fact.reading_words, tuple(missing_case_fields(case, index, name)), note
                )
            )
        consulted = in_force + tuple(e for g in undated.values() for e in g.editions if e not in in_force)
        counted = {service}.union(*(e.counted_with(service) for e in consulted))
        for i, h in enumerate(case.history):
            if h.service in counted and h.count != "exact":
                dims.append(_count_readings(i, h, consulted, service, facts, request.quantity))
        if _concurrent_unknown(case, request):
            others = ", ".join(f"`{r}`" for r, _, _ in concurrent_requests(case, request))
            dims.append(
                Unstated(
                    CONCURRENT_READING,
                    ("same", "separate"),
                    f"whether request {others} is for the same visits",
                    (
                        ("same", f"if request {others} is for the same visits"),
                        ("separate", f"if request {others} is for separate visits"),
                    ),
                    tuple(missing_case_fields(case, index, "concurrent_visits")),
                    f"the case asks for more {service.replace('_', ' ')} in request {others}",
                )
            )
        seen: set[str] = set()
        for e in in_force:
            if not e.conditions or e.guideline_id in seen or not e.tests_fact(service, "condition"):
                continue
            seen.add(e.guideline_id)
            matches = match_rows(e.conditions, case, request, e.unnamed_condition)
            procedure = _procedure_dimension(e, matches, case, index)
            if procedure is not None and e.tests_fact(service, "postsurgical_procedure"):
                dims.append(procedure)
            if len(matches) > 1:
                dims.append(
                    Unstated(
                        ROW_READING + e.guideline_id,
                        tuple(m.row.id for m in matches),
                        f"which row of the {e.family} table by condition applies",
                        tuple((m.row.id, f"under the row '{m.row.title}'") for m in matches),
                        tuple(missing_case_fields(case, index, "condition")),
                    )
                )
        return tuple(dims)

    def _branch(
        self,
        case: Case,
        index: int,
        request: Request,
        facts: Facts,
        unstated: tuple[Unstated, ...],
        first: ItemDetermination,
        floor: Provenance | None,
        selected: _Selected,
    ) -> ItemDetermination:
        """Rule 7 of imr_policy.engine.combine: decide a pending request under every reading of the facts the
        records do not state. The readings are few and finite (at most MAX_READINGS, counted before any is
        built); beyond that the request pends as it is, saying so."""
        names = tuple(d.name for d in unstated)
        count = math.prod(len(d.values) for d in unstated)
        if count > MAX_READINGS:
            return self._decide_with(
                case, index, request, facts, facts, too_many(unstated, count), floor, selected=selected
            )
        combos = list(itertools.product(*(d.values for d in unstated)))
        read = [_read(case, request, facts, unstated, combo) for combo in combos]
        readings = tuple(
            Reading(
                tuple(zip(names, combo, strict=True)),
                self._decide_with(case, index, request, f, facts, floor=floor, selected=selected),
            )
            for combo, f in zip(combos, read, strict=True)
        )
        summary = combine_readings(readings, unstated)
        if not summary.decided and not summary.matters and summary.imr_outcome is None:
            return first  # every reading pends alike: the unstated facts are not what it waits for
        rep = summary.representative
        # by identity: equal readings would do, but comparing whole determinations is needless work
        assumed = next(f for r, f in zip(readings, read, strict=True) if r is rep) if summary.decided else facts
        final = self._decide_with(case, index, request, assumed, facts, summary, floor, selected=selected)
        # the trace shows the evaluation on the records as they are, then each reading's
        return evolve(final, trace=deferred(functools.partial(_read_trace, first, readings)))

    def _decide_with(
        self,
        case: Case,
        index: int,
        request: Request,
        facts: Facts,
        stated: Facts | None = None,
        readings: Readings | None = None,
        floor: Provenance | None = None,
        *,
        selected: _Selected | None = None,
    ) -> ItemDetermination:
        """One pass of the jurisdiction's evidence search sequence over the editions the request's dates
        select, then the combining rules (imr_policy.engine.combine) and the words (imr_policy.explain.rationale)."""
        profile = self._profiles[case.jurisdiction]  # evaluate() refuses a jurisdiction without one
        if selected is None:
            selected = self._select(case, request)
        in_force, undated = selected
        walk = _Walk(
            request.service, profile.first_decider.label, lambda e: self._consult(e, undated, facts, case, index)
        )
        for step, members, editions in self._steps(selected, profile, request.service):
            if step.role == "cap":
                walk.cap_step(step, editions)
            elif step.role == "fallback" and (walk.decisive or walk.blocked):
                walk.supporting_step(step, editions, request.quantity)
            elif not (walk.decisive or walk.blocked):
                if step.required and not editions:
                    walk.blocked = _no_required_edition(step, list(members), case, request)
                else:
                    walk.deciding_step(step, editions)
        search, trace = walk.search, deferred(functools.partial(_joined_trace, tuple(walk.asked)))
        caps, decisive, supporting, blocked = walk.caps, walk.decisive, walk.supporting, walk.blocked
        decided = combine(
            quantity=request.quantity,
            decisive=tuple(decisive),
            supporting=tuple(supporting),
            caps=tuple(caps),
            blocked=blocked,
            ur=case.ur_for(request.id),
            readings=readings,
            floor=floor,
        )
        return rationale.item(
            case=case,
            request=request,
            facts=facts,
            decided=decided,
            decisive=tuple(decisive),
            supporting=tuple(supporting),
            caps=tuple(caps),
            search=tuple(search),
            trace=trace,
            in_force=in_force,
            profile=profile,
            stated=stated,
            readings=readings,
        )

    def _counted_services(self, service: str) -> frozenset[str]:
        """`service` and every service an edition of the policy set counts with it (`counted_together:`)."""
        return self._counted.get(service) or frozenset((service,))

    def _select(self, case: Case, request: Request) -> _Selected:
        """The editions that govern the request. Where the records leave the request date open and it
        selects between editions of one guideline, the guideline's first such edition stands for all of
        them (consulted through `_consult`), keyed by its `key` in the second value.

        Remembered under what `Edition.selected` reads: the jurisdiction, the date of service and, where
        an edition of the jurisdiction is selected by the request date (`Edition.reads_request_window`),
        the days the request can have been made on. The answer is shared: never changed by its readers."""
        editions, windowed = self._in_jurisdiction(case.jurisdiction)
        key = (case.jurisdiction, request.date_of_service, request.request_window(case) if windowed else None)
        found = self._selections.get(key)
        if found is None:
            found = self._select_afresh(editions, case, request)
            if len(self._selections) >= _REMEMBERED:
                self._selections.clear()
                self._step_plans.clear()
            self._selections[key] = found
        return found

    def _select_afresh(self, editions: tuple[Edition, ...], case: Case, request: Request) -> _Selected:
        chosen: list[Edition] = []
        open_: dict[str, list[Edition]] = {}
        for e in editions:
            selected = e.selected(request, case)
            if selected is None:
                if e.guideline_id not in open_:
                    chosen.append(e)  # in the policy set's order, where the guideline's first edition is
                open_.setdefault(e.guideline_id, []).append(e)
            elif selected:
                chosen.append(e)
        undated = {}
        for group in open_.values():
            group.sort(key=lambda e: e.effective_from)
            undated[group[0].key] = Undated(tuple(group), not _covers(group, request.request_window(case)))
        return tuple(chosen), undated

    def _in_jurisdiction(self, jurisdiction: str) -> tuple[tuple[Edition, ...], bool]:
        """The editions that apply in `jurisdiction`, in the policy set's order, and whether one of them is
        selected by the request date (found once per jurisdiction)."""
        found = self._by_jurisdiction.get(jurisdiction)
        if found is None:
            editions = tuple(e for e in self._editions if jurisdiction in e.jurisdictions)
            found = self._by_jurisdiction[jurisdiction] = (editions, any(e.reads_request_window for e in editions))
        return found

    def _steps(self, selected: _Selected, profile: Profile, service: str) -> tuple[_StepPlan, ...]:
        """Per step of the evidence search sequence: its editions in force (whatever their scope), and those
        about `service`, each with its coverage and, where it has no rules, the search step saying so.
        Remembered per selection (`_select`'s answer, kept alive by the entry, so its id names it)."""
        key = (id(selected), id(profile), service)
        found = self._step_plans.get(key)
        if found is not None and found[0] is selected and found[1] is profile:
            return found[2]
        in_force, undated = selected
        plans: list[_StepPlan] = []
        for step in profile.steps:
            tier, families = step.tier, step.families
            members = tuple(e for e in in_force if e.tier == tier and (families is None or e.family in families))
            entries = []
            for e in members:
                if e.in_scope(service):
                    coverage = _coverage(e, undated, service)
                    said = (
                        None
                        if coverage == "rules"
                        else _coverage_step(step, e, coverage, service, quiet=step.role == "cap")
                    )
                    entries.append((e, coverage, said))
            plans.append((step, members, tuple(entries)))
        if len(self._step_plans) >= _REMEMBERED:
            self._step_plans.clear()
        self._step_plans[key] = (selected, profile, tuple(plans))
        return tuple(plans)

    def _consult(
        self, edition: Edition, undated: Mapping[str, Undated], facts: Facts, case: Case, index: int
    ) -> EditionResult:
        """One edition's answer, or, where the request date is open, the answer of every edition it can
        select: the guideline decides only if they all agree and cover every day the request can have been
        made on; otherwise it pends for the request date."""
        group = undated.get(edition.key)
        if group is None:
            return self._edition(edition, facts, case, index)
        results = [self._edition(e, facts, case, index) for e in group.editions]
        agree = not group.uncovered and len({(r.status, r.kind, r.approved) for r in results}) == 1
        trace = deferred(functools.partial(_dated_trace, tuple(results), agree))
        if agree:
            return evolve(results[0], trace=trace, by_request_date=tuple(results))
        return EditionResult(
            edition,
            "gap",
            kind="pend",
            missing=tuple(missing_case_fields(case, index, "request_date")),
            trace=trace,
            by_request_date=tuple(results),
            request_date_uncovered=group.uncovered,
        )

    def _edition(self, edition: Edition, facts: Facts, case: Case, index: int) -> EditionResult:
        """One edition's answer. An edition with a table by condition is asked once per row the diagnoses
        match (the `condition` fact); `facts` that already give `condition` (a counterfactual) are used as
        is, and a reading of the rows (`condition:<guideline id>`, rule 7) asks only the row it reads."""
        counted, others = as_counted_by(facts, edition)
        if (
            counted is not facts
        ):  # the edition counts other services' visits with the request's: its count facts take them in
            return evolve(
                self._edition_rows(edition, counted, case, index),
                counted_with=others,
                counted_requests=counted.get(POOLED_REQUESTS, ()),
            )
        return self._edition_rows(edition, facts, case, index)

    def _edition_rows(self, edition: Edition, facts: Facts, case: Case, index: int) -> EditionResult:
        if not edition.conditions or "condition" in facts:
            return self._edition_once(edition, _without_row_readings(facts), case, index)
        matches = match_rows(edition.conditions, case, case.requests[index], edition.unnamed_condition)
        raw, read = facts, facts.get(ROW_READING + edition.guideline_id)
        facts = _without_row_readings(facts)
        if read is not None and any(m.row.id == read for m in matches):
            matches = tuple(m for m in matches if m.row.id == read)
        if not matches:
            return self._edition_once(edition, facts | {"condition": None}, case, index)
        unnamed = edition.unnamed_procedure  # a reading of the post-surgical entry (rule 7) sets the procedure
        read_procedure = raw.get(PROCEDURE_READING + edition.guideline_id) if unnamed is not None else None
        results = []
        for m in matches:
            asked = facts | {"condition": m.row.id}
            procedure = None
            if (
                unnamed is not None
                and read_procedure in unnamed.procedures_for(m.row.id)
                and names_no_procedure(case.requests[index], m.row, unnamed)
            ):
                procedure = read_procedure
                asked = asked | {"postsurgical_procedure": procedure}
            results.append(
                evolve(self._edition_once(edition, asked, case, index), condition=m, procedure_read=procedure)
            )
        if len(results) == 1:
            res = results[0]
            if read is None:
                return res
            return evolve(res, trace=deferred(functools.partial(_row_trace, res, read)))
        return _over_rows(edition, results, missing_case_fields(case, index, "condition"))

    def _fired(self, edition: Edition, facts: Mapping[str, Any]) -> frozenset[str]:
        """What holds in `edition` for `facts`: the matcher's answer, checked against the reference
        evaluator, remembered for the rest of the evaluation under the values of the facts it reads.

        The reference evaluator's own answer (a pure function of those values, for one of this engine's
        editions) is remembered across evaluations: every matcher answer is still checked against it."""
        memo = _ANSWERS.get()
        key: tuple[Any, ...] | None = None
        tested = self._tested.get(edition.key)
        if tested is not None and self._own.get(edition.key) is edition:
            key = (edition.key, *map(facts.get, tested))
            try:
                hash(key)
            except TypeError:  # a value that cannot be a key (a counterfactual's): ask afresh
                key = None
            if memo is not None and key is not None:
                known = memo.get(key)
                if known is not None:
                    return known
        fired = frozenset(self._matcher.match(edition, facts))
        if self._matcher is not self._reference:
            expected = self._checks.get(key) if key is not None else None
            if expected is None:
                expected = frozenset(self._reference.match(edition, facts))
                if key is not None:
                    if len(self._checks) >= _CHECKS_REMEMBERED:
                        self._checks.clear()
                    self._checks[key] = expected
            if fired != expected:
                raise EngineError(
                    f"durable_rules and the reference evaluator disagree on `{edition.key}`: "
                    f"{sorted(fired)} vs {sorted(expected)}; the case is not decided"
                )
        if memo is not None and key is not None:
            memo[key] = fired
        return fired

    def _edition_once(self, edition: Edition, facts: Facts, case: Case, index: int) -> EditionResult:
        service = facts["service"]
        fired = self._fired(edition, facts)
        # the ids of what holds (`rule:<id>`, `exception:<id>`), read once rather than a name built per rule
        held = {name[5:] for name in fired if name.startswith("rule:")}
        if len(held) > 1 and edition.hit_policy(service) == "unique":  # one rule alone is never ambiguous
            _refuse_ambiguous(edition, service, fired)
        deciding = next((r for r in edition.rules_for(service) if r.id in held), None) if held else None
        raised_by = {name[10:] for name in fired if name.startswith("exception:")}
        checks: list[ExceptionCheck] = []
        for exc in edition.exceptions_for(service):
            ok = exc.id in raised_by
            checks.append(ExceptionCheck(exc, ok, None if ok else deferred(_why_not(exc.when, facts, edition))))
        applicable = [
            c.exception for c in checks if c.holds and deciding is not None and deciding.id in c.exception.rules
        ]
        exception: RuleException | None = None
        kind: DecisionKind = "pend"
        approved = 0
        missing: tuple[str, ...] = ()
        if deciding is not None:
            if len(applicable) > 1 and len({edition.limit(e.raises_total).value for e in applicable}) > 1:
                raise EngineError(
                    f"exceptions {', '.join(e.id for e in applicable)} of `{edition.key}` all apply but raise "
                    "the limit differently; the rule pack is ambiguous"
                )
            kind, approved, missing = _apply(deciding, None, edition, facts, case, index)
            if applicable:
                # An exception is used only when it changes the result, so its (often weaker) numbers
                # never enter a basis that does not need them.
                raised = _apply(deciding, applicable[0], edition, facts, case, index)
                if raised[1] > approved:
                    exception = applicable[0]
                    kind, approved, missing = raised
        trace = deferred(functools.partial(_edition_trace, edition, facts, fired, deciding, tuple(checks), exception))
        if deciding is None:
            absent = sorted(
                {c.fact for r in edition.rules_for(service) for c in leaves(r.when) if facts.get(c.fact) is None}
            )
            gap_missing = tuple(f for name in absent for f in missing_case_fields(case, index, name))
            return EditionResult(
                edition, "gap", kind="pend", missing=gap_missing, exceptions=tuple(checks), trace=trace
            )
        if deciding.outcome.decision in ("not_applicable", "not_addressed"):
            status: Literal["not_applicable", "not_addressed"] = deciding.outcome.decision
            return EditionResult(edition, status, deciding, exceptions=tuple(checks), trace=trace)
        return EditionResult(edition, "decided", deciding, exception, kind, approved, missing, tuple(checks), trace)


def _why_not(conditions: tuple[Clause, ...], facts: Mapping[str, Any], edition: Edition) -> Callable[[], str]:
    return functools.partial(rationale.why_not, conditions, facts, edition)


def _edition_trace(
    edition: Edition,
    facts: Mapping[str, Any],
    fired: frozenset[str],
    deciding: Rule | None,
    checks: tuple[ExceptionCheck, ...],
    exception: RuleException | None,
) -> tuple[TraceEntry, ...]:
    """What one edition's answer shows, rule by rule and exception by exception (rule 1: the first rule
    that holds decides; an exception is used only when it changed the result). Built when first read, with
    its why-not texts: whoever reads a trace reads them (a deferred field costs a Python call per read)."""
    g, e = edition.guideline_id, edition.edition_id
    trace: list[TraceEntry] = []
    seen = False
    for rule in edition.rules_for(facts["service"]):
        applied = f"rule:{rule.id}" in fired
        why = None if applied else rationale.why_not(rule.when, facts, edition)
        trace.append(TraceEntry(g, e, rule.id, "rule", applied, applied and not seen, why))
        seen = seen or applied
    for c in checks:
        used = c.exception is exception
        note: str | None
        if not c.holds:
            note = c.why_not
        elif used:
            note = None
        elif deciding is None or deciding.id not in c.exception.rules:
            note = "it holds, but the rule it raises did not decide"
        else:
            note = "it holds, but the request is within the limit without it"
        trace.append(TraceEntry(g, e, c.exception.id, "exception", c.holds, used, note))
    return tuple(trace)


# the facts a count of prior visits moves: every visit counts toward `completed` and `total`; a
# post-surgical one toward `completed_postsurgical`, any other toward `completed_toward_cap` (derive.py)
_COUNTED = ("completed", "total")


def _moved(entry: HistoryEntry) -> tuple[str, ...]:
    return (*_COUNTED, "completed_postsurgical" if entry.postsurgical else "completed_toward_cap")


def _read(case: Case, request: Request, facts: Facts, dims: tuple[Unstated, ...], combo: tuple[str, ...]) -> Facts:
    """The facts under one reading: a fact set to its value, a row chosen, a count of prior visits moved, the
    case's other requests of the service counted as separate visits."""
    out = dict(facts)  # a local draft: the reading is one new value, made at the end
    service = facts["service"]
    for d, value in zip(dims, combo, strict=True):
        if d.name == CONCURRENT_READING:
            if value == "separate":
                out = dict(with_concurrent(Facts(out), concurrent_requests(case, request)))
            continue
        if d.entry is None:
            out[d.name] = value
            continue
        entry = case.history[d.entry]
        entries = list(out[ENTRIES])
        entries[d.entry] = (entry.service, int(value), entry.postsurgical)
        out[ENTRIES] = tuple(entries)
        if entry.service == service:  # another service's visits count only where an edition counts them with it
            delta = int(value) - entry.completed
            for name in _moved(entry):
                out[name] = out[name] + delta
    return Facts(out)


def _count_readings(
    i: int, entry: HistoryEntry, editions: tuple[Edition, ...], service: str, facts: Facts, quantity: int
) -> Unstated:
    """The counts a count of prior visits that is not exact is read as: its least and its most, and every
    count at or next to a threshold of the editions consulted (each number a condition on a count compares
    with, and where a total limit's approved visits reach the request or none). Between two such counts
    every condition keeps its truth and the approved visits change monotonically, so if two neighbouring
    readings agree, every count between them agrees too: the readings are exact, not a sample. Without a
    most, the last reading stands for every larger count, past every threshold."""
    moved = _moved(entry)
    offsets: set[int] = set()
    for e in editions:
        if entry.service != service and entry.service not in e.counted_with(service):
            continue  # this edition does not count the entry's visits for the request
        seen, _ = as_counted_by(facts, e)  # the count facts as this edition makes them
        rules = e.rules_for(service)
        exceptions = e.exceptions_for(service)
        for cond in [c for r in rules for c in leaves(r.when)] + [c for x in exceptions for c in leaves(x.when)]:
            if cond.fact not in moved or cond.op in PRESENCE_OPS or cond.op in PREDICATE_OPS:
                continue
            raw = e.limit(cond.limit).value if cond.limit else cond.value
            for v in raw if isinstance(raw, tuple) else (raw,):
                if isinstance(v, int) and not isinstance(v, bool):
                    at = v - seen[cond.fact]
                    offsets.update((at - 1, at, at + 1))
        totals = [(r.outcome.up_to_total, r.outcome.counts) for r in rules]
        totals += [(x.raises_total, r.outcome.counts) for x in exceptions for r in rules if r.id in x.rules]
        for limit_id, counted in totals:
            if limit_id and counted in moved:
                none_left = e.limit(limit_id).value - seen[counted]
                offsets.update(
                    (none_left - quantity - 1, none_left - quantity, none_left - quantity + 1, none_left - 1, none_left)
                )
    least = entry.completed
    span = entry.completed_at_most - least if entry.completed_at_most is not None else max(offsets | {0}) + 1
    counts = sorted({least + d for d in offsets | {0, span} if 0 <= d <= span})
    open_top = entry.completed_at_most is None
    labels = tuple(
        (str(n), f"if {n}{' or more' if open_top and n == counts[-1] else ''} were completed") for n in counts
    )
    if entry.count == "unknown":
        said = "the records give no number" + (f", at most {entry.completed_at_most}" if not open_top else "")
    elif open_top:
        said = f"the records say at least {least}"
    else:
        said = f"the records say {least} to {entry.completed_at_most}"
    return Unstated(
        f"history[{i}].completed",
        tuple(str(n) for n in counts),
        f"how many {service.replace('_', ' ')} visits were completed",
        labels,
        (f"history[{i}].completed",),
        said,
        entry=i,
        unbounded=open_top,
    )


_Selected = tuple[tuple[Edition, ...], dict[str, "Undated"]]  # what Engine._select returns
# one step's editions about the service: each with its coverage and, without rules, its search step
_StepEntry = tuple[Edition, str, "SearchStep | None"]
_StepPlan = tuple[Step, tuple[Edition, ...], tuple[_StepEntry, ...]]  # what Engine._steps gives per step
_REMEMBERED = 4096  # selections (and step plans) an Engine remembers before it starts afresh
_CHECKS_REMEMBERED = 16384  # reference answers an Engine remembers before it starts afresh

ROW_READING = "condition:"  # a reading of the rows of one guideline's table: `condition:<guideline id>`
# a reading of how the request's visits relate to the case's other requests of its service (`concurrent_visits`)
CONCURRENT_READING = "concurrent_visits"
# a reading of the post-surgical entry of a row, where the records name the surgery, not the procedure
PROCEDURE_READING = "procedure:"
_READINGS = (ROW_READING, PROCEDURE_READING)


def _without_row_readings(facts: Facts) -> Facts:
    # only names outside the fact registry can be readings of rows (a set difference, not a loop)
    if not any(k.startswith(_READINGS) for k in facts.keys() - FACTS.keys()):
        return facts
    return Facts({k: v for k, v in facts.items() if not k.startswith(_READINGS)})


def _procedure_dimension(
    edition: Edition, matches: tuple[ConditionMatch, ...], case: Case, index: int
) -> Unstated | None:
    """The post-surgical entries a surgery whose procedure the records do not name can be, for the rows the
    diagnoses match (`unnamed_procedure:`): one value per entry of any such row, in the pack's order."""
    unnamed = edition.unnamed_procedure
    request = case.requests[index]
    if unnamed is None or not request.postsurgical:
        return None
    values: dict[str, None] = {}
    for m in matches:
        if names_no_procedure(request, m.row, unnamed):
            values.update(dict.fromkeys(unnamed.procedures_for(m.row.id)))
    if not values:
        return None
    return Unstated(
        PROCEDURE_READING + edition.guideline_id,
        tuple(values),
        f"which post-surgical entry of the {edition.family} table the surgery was",
        tuple((v, f"if the procedure was {v}") for v in values),
        (f"requests[{index}].postsurgical.procedure",),
        f"the records name the surgery ('{request.postsurgical_procedure}'), not the procedure",
    )


# per evaluation (and per thread: an Engine is shared), what each edition said for the facts it reads
_ANSWERS: contextvars.ContextVar[dict[tuple[Any, ...], frozenset[str]] | None] = contextvars.ContextVar(
    "imr_policy_answers", default=None
)


def _concurrent_unknown(case: Case, request: Request) -> bool:
    """The records do not say whether the case's other requests of the service are the same visits."""
    return (
        request.concurrent_visits == "unknown" and len(case.requests) > 1 and bool(concurrent_requests(case, request))
    )


def _tested_facts(edition: Edition) -> tuple[str, ...]:
    """Every fact a rule or exception of `edition` reads (with `service`, which selects its rules)."""
    names = {c.fact for r in edition.rules for c in leaves(r.when)} | {
        c.fact for x in edition.exceptions for c in leaves(x.when)
    }
    return ("service", *sorted(names - {"service"}))


def _severity_readings(
    in_force: tuple[Edition, ...], service: str, values: tuple[str, ...]
) -> tuple[tuple[str, ...], str]:
    """The severities an unstated severity is read as: where every edition whose rules for `service` test
    the severity declares the severities it distinguishes, only those (a guideline that classifies a
    case as mild or severe has no third reading); otherwise every severity."""
    testing = [e for e in in_force if e.tests_fact(service, "severity")]
    scales = [e.severity_scale(service) for e in testing]
    if not testing or any(scale is None for scale in scales):
        return values, ""
    allowed = {v for scale in scales if scale is not None for v in scale.values}
    narrowed = tuple(v for v in values if v in allowed)
    if narrowed == values or not narrowed:
        return values, ""
    families = sorted({e.family for e in testing})
    return narrowed, f"{' and '.join(families)} distinguishes {' and '.join(narrowed[::-1])} only"


def _over_rows(edition: Edition, results: list[EditionResult], missing: list[str]) -> EditionResult:
    """The diagnoses match several rows: the edition decides only if every row gives the same answer.

    Every row's trace is kept, each entry marked with its row; only the row whose answer is used counts
    as deciding. When the rows disagree, nothing decides and the edition pends for the diagnosis code."""
    agree = len({(r.status, r.kind, r.approved) for r in results}) == 1
    trace = deferred(functools.partial(_rows_trace, tuple(results), agree))
    if agree:
        return evolve(results[0], trace=trace, alternatives=tuple(results))
    return EditionResult(edition, "gap", kind="pend", missing=tuple(missing), trace=trace, alternatives=tuple(results))


def _rows_trace(results: tuple[EditionResult, ...], agree: bool) -> tuple[TraceEntry, ...]:
    """Every row's trace, each entry marked with its row; only the first row's counts as deciding, and
    only when the rows agree."""

    def tagged(res: EditionResult, *, deciding: bool) -> tuple[TraceEntry, ...]:
        row = res.condition.row.id if res.condition else None
        return tuple(evolve(t, condition=row, decided=t.decided and deciding) for t in res.trace)

    return tuple(t for i, r in enumerate(results) for t in tagged(r, deciding=agree and i == 0))


def _row_trace(res: EditionResult, row: str) -> tuple[TraceEntry, ...]:
    """The trace of one row read (rule 7), each entry marked with the row."""
    return tuple(evolve(t, condition=row) for t in res.trace)


def _dated_trace(results: tuple[EditionResult, ...], agree: bool) -> tuple[TraceEntry, ...]:
    """The trace of each edition an open request date can select; only the first's counts as deciding, and
    only when they agree."""
    return tuple(evolve(t, decided=t.decided and agree and i == 0) for i, r in enumerate(results) for t in r.trace)


def _joined_trace(results: tuple[EditionResult, ...]) -> tuple[TraceEntry, ...]:
    """The trace of one pass of the evidence search: every edition asked, in the order asked."""
    return tuple(t for r in results for t in r.trace)


def _read_trace(first: ItemDetermination, readings: tuple[Reading, ...]) -> tuple[TraceEntry, ...]:
    """The evaluation on the records as they are, then each reading's, each entry marked with its reading."""
    return first.trace + tuple(evolve(t, reading=r.values) for r in readings for t in r.item.trace)


def _not_applicable_step(step: Step, res: EditionResult) -> SearchStep:
    """A rule said its guideline does not govern the request (`not_applicable`: another guideline of the tier
    does) or does not address it (`not_addressed`: cited silence for this request, as `silent_on` is for a
    service, so the search moves on)."""
    reason = res.rule.outcome.reason if res.rule else "not applicable to this request"
    if res.status == "not_addressed" and res.rule is not None:
        cite = res.edition.citation(res.rule.citation)
        where = f"{cite.section}{', p. ' + cite.pages if cite.pages else ''}; {cite.provenance}"
        return SearchStep(
            step.tier, res.edition.guideline_id, res.edition.edition_id, "not_addressed", f"{reason} ({where})"
        )
    return SearchStep(step.tier, res.edition.guideline_id, res.edition.edition_id, "not_applicable", reason)


def _coverage_step(step: Step, edition: Edition, coverage: str, service: str, *, quiet: bool = False) -> SearchStep:
    readable = service.replace("_", " ")
    if quiet:  # a statute that does not limit this service: nothing to say beyond that
        return SearchStep(
            step.tier, edition.guideline_id, edition.edition_id, "not_addressed", f"does not limit {readable}"
        )
    if coverage == "silent":
        cite = edition.citation(edition.silence(service).citation)
        return SearchStep(
            step.tier,
            edition.guideline_id,
            edition.edition_id,
            "not_addressed",
            f"does not address {readable} ({cite.section}{', p. ' + cite.pages if cite.pages else ''}; "
            f"{cite.provenance})",
        )
    return SearchStep(
        step.tier,
        edition.guideline_id,
        edition.edition_id,
        "not_encoded",
        f"this policy set encodes no rules of this edition for {readable}",
    )


@dataclasses.dataclass(slots=True)
class _Walk:
    """What one pass of the evidence search sequence has found so far (mutable within that pass only)."""

    service: str
    first_decider: str
    consult: Callable[[Edition], EditionResult]
    search: list[SearchStep] = dataclasses.field(default_factory=list)
    asked: list[EditionResult] = dataclasses.field(default_factory=list)  # every answer, in the order asked
    caps: list[EditionResult] = dataclasses.field(default_factory=list)
    decisive: list[EditionResult] = dataclasses.field(default_factory=list)
    supporting: list[EditionResult] = dataclasses.field(default_factory=list)
    blocked: str | None = None  # why no decision can be made, when a needed guideline is missing

    def _seen(self, step: Step, e: Edition, result: Any, note: str = "") -> None:
        self.search.append(SearchStep(step.tier, e.guideline_id, e.edition_id, result, note))

    def _ask(self, edition: Edition) -> EditionResult:
        res = self.consult(edition)
        self.asked.append(res)
        return res

    def cap_step(self, step: Step, editions: tuple[_StepEntry, ...]) -> None:
        """A statute limits whatever the guidelines approve; it never approves anything itself."""
        for e, _, said in editions:
            if said is not None:  # no rules for the service (Engine._steps wrote the step)
                self.search.append(said)
                continue
            res = self._ask(e)
            if res.stands_aside:
                self.search.append(_not_applicable_step(step, res))
                continue
            self.caps.append(res)
            self._seen(step, e, "pend" if res.kind == "pend" else "decided", "a statute outranks every guideline")

    def supporting_step(self, step: Step, editions: tuple[_StepEntry, ...], quantity: int) -> None:
        """A higher tier decided (or could not): lower tiers can only be supporting evidence, and are
        consulted when the higher tier did not support the full request (as IMR does)."""
        outcome = combine_kind(self.decisive, quantity) if self.decisive else "pend"
        for e, _, said in editions:
            if said is not None:
                self.search.append(said)
                continue
            if outcome not in ("modify", "non_certify"):
                why = "supports the full request" if outcome == "certify" else "cannot decide yet"
                self._seen(step, e, "not_consulted", f"not consulted: the {self.first_decider} {why}")
                continue
            res = self._ask(e)
            if res.stands_aside:
                self.search.append(_not_applicable_step(step, res))
            elif res.status == "decided" and res.kind != "pend":
                self.supporting.append(res)
                self._seen(
                    step,
                    e,
                    "supporting",
                    f"consulted as supporting evidence; the {self.first_decider} is presumed correct",
                )
            else:
                self._seen(step, e, "not_consulted", "consulted, but it cannot decide without missing facts")

    def deciding_step(self, step: Step, editions: tuple[_StepEntry, ...]) -> None:
        """The first tier with an answer decides; a tier whose guidelines defer to one that is not in force
        or not encoded blocks every lower tier."""
        results: list[EditionResult] = []
        unencoded: list[Edition] = []
        deferred: list[EditionResult] = []
        for e, coverage, said in editions:
            if said is not None:
                self.search.append(said)
                if coverage == "not_encoded":
                    unencoded.append(e)
                continue
            res = self._ask(e)
            if res.status == "not_addressed":  # cited silence for this request: the search moves on
                self.search.append(_not_applicable_step(step, res))
                continue
            if res.status == "not_applicable":
                deferred.append(res)
                self.search.append(_not_applicable_step(step, res))
                continue
            results.append(res)
            self._seen(step, e, "pend" if res.kind == "pend" else "decided")
        if results:
            self.decisive = results
        elif deferred:
            reasons = "; ".join(
                f"{r.edition.edition_title}: {r.rule.outcome.reason if r.rule else 'not applicable'}" for r in deferred
            )
            self.blocked = (
                f"No {step.label} guideline in this policy set decides this request ({reasons}); "
                "lower-ranked guidelines cannot be consulted, so the request is not decided."
            )
        elif unencoded:
            names = "; ".join(e.edition_title for e in unencoded)
            self.blocked = (
                f"This policy set does not encode whether {names} addresses {self.service.replace('_', ' ')}; "
                f"until it does, lower-ranked guidelines cannot be consulted, so the request is not decided."
            )


def _no_required_edition(step: Step, members: list[Edition], case: Case, request: Request) -> str:
    """Why a required step of the search sequence has no edition: none in force, or none about the service
    (`members`: the step's editions in force, whatever their scope)."""
    day, service = request.date_of_service.isoformat(), request.service.replace("_", " ")
    elsewhere = [e for e in members if not e.in_scope(request.service)]
    if elsewhere:
        about = "; ".join(  # once per guideline, however many of its editions an open date selects
            dict.fromkeys(
                f"{e.guideline_title} is about {', '.join(s.replace('_', ' ') for s in e.scope)}" for e in elsewhere
            )
        )
        return (
            f"No {step.label} edition in this policy set that addresses {service} is in force in "
            f"{case.jurisdiction} on {day} ({about}), so the evidence search sequence cannot start; the request "
            "is not decided."
        )
    return (
        f"No {step.label} edition in this policy set is in force in {case.jurisdiction} on {day}, so the evidence "
        "search sequence cannot start; the request is not decided."
    )


def _refuse_ambiguous(edition: Edition, service: str, fired: frozenset[str]) -> None:
    """Under hit policy `unique`, at most one rule may hold, an `over:` exception counting instead of what
    it overrides; more is an EngineError (the pack is ambiguous), never a decision."""
    held = [r.id for r in edition.rules_for(service) if f"rule:{r.id}" in fired]
    beaten = {t for r in held for t in edition.overridden(r)}  # an exception that holds decides instead
    held = [r for r in held if r not in beaten]
    if len(held) > 1:
        raise EngineError(
            f"rules {', '.join(f'`{r}`' for r in held)} of `{edition.key}` all hold for this case, but its hit "
            f"policy for {service} is `unique`; the rule pack is ambiguous and the case is not decided"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Undated:
    """The editions of one guideline that the open request date can select, oldest first."""

    editions: tuple[Edition, ...]
    uncovered: bool  # some days the request can have been made on select none of them


def _covers(group: list[Edition], window: tuple[dt.date, dt.date | None]) -> bool:
    """Whether every day of `window` (the days the request can have been made on) selects one of `group`."""
    day, last = window  # `day`: the first day not yet covered
    for e in group:  # oldest first; editions of one guideline never overlap (validate.py)
        start, end = e.request_date_bounds() or (None, None)
        if start is not None and start > day:
            return False  # a gap before this edition
        if end is None:
            return True
        day = max(day, end + dt.timedelta(days=1))
        if last is not None and day > last:
            return True
    return False


def _coverage(edition: Edition, undated: Mapping[str, Undated], service: str) -> str:
    """Whether the edition has rules for, is silent on, or does not encode the service; for an open
    request date, the common answer of its editions (else `rules`, so that each is asked and they differ)."""
    group = undated.get(edition.key)
    if group is None:
        return edition.coverage(service)
    answers = {e.coverage(service) for e in group.editions}
    return answers.pop() if len(answers) == 1 and not group.uncovered else "rules"


def _apply(
    rule: Rule,
    exception: RuleException | None,
    edition: Edition,
    facts: Facts,
    case: Case,
    index: int,
) -> tuple[Literal["certify", "modify", "non_certify", "pend"], int, tuple[str, ...]]:
    outcome = rule.outcome
    quantity: int = facts["quantity"]
    if outcome.decision == "pend":
        missing = tuple(f for name in outcome.missing for f in missing_case_fields(case, index, name))
        return "pend", 0, missing
    if outcome.decision in ("non_certify", "not_applicable", "not_addressed"):
        return "non_certify", 0, ()
    if outcome.up_to_total is not None:
        limit_id = exception.raises_total if exception else outcome.up_to_total
        approved = max(0, min(quantity, edition.limit(limit_id).value - facts[outcome.counts]))
    elif outcome.up_to_per_request is not None:
        approved = min(quantity, edition.limit(outcome.up_to_per_request).value)
    else:
        approved = quantity
    return kind_of(approved, quantity), approved, ()


def combine_kind(results: list[EditionResult], quantity: int) -> str:
    if any(r.kind == "pend" for r in results):
        return "pend"
    return kind_of(min(r.approved for r in results), quantity)


# ---------------------------------------------------------------------- loading


def load(path: str | Path | None = None, *, engine: Literal["durable", "reference"] = "durable") -> Engine:
    """Load, validate and compile a policy set.

    `path`: a directory of rule packs or one rule file; default: the packs shipped with the package.
    `engine`: `durable` (durable_rules, checked against the reference evaluator on every call) or
    `reference` (pure Python, for platforms where durable_rules cannot be built).
    Raises PolicyError with every problem found in the rule files.
    """
    root = Path(path) if path is not None else policies_dir()
    result = load_editions([root], display_root=root if root.is_dir() else root.parent)
    return engine_from(with_shipped_profiles(result), policy_set_id=_policy_set_id(path, root), engine=engine)


def with_shipped_profiles(result: LoadResult) -> LoadResult:
    """Jurisdiction profiles are law, not guideline content: a policy set without its own profile for a
    jurisdiction uses the shipped one (and its hash becomes part of the content hash)."""
    have = {p.jurisdiction for p in result.profiles}
    shipped = load_editions([policies_dir() / "jurisdictions"])
    extra = tuple(p for p in shipped.profiles if p.jurisdiction not in have)
    result = dataclasses.replace(result, profiles=result.profiles + extra) if extra else result
    return _with_shipped_procedures(result)


def _policy_set_id(path: str | Path | None, root: Path) -> str:
    return "imr-policy:builtin" if path is None else root.name or str(root)


def engine_from(
    result: LoadResult, *, policy_set_id: str, engine: Literal["durable", "reference"] = "durable"
) -> Engine:
    if not result.ok:
        raise PolicyError("the rule files are not valid", result.diagnostics)
    info = PolicySetInfo(policy_set_id, result.content_hash)
    if engine == "reference":
        return Engine(result.editions, info, ReferenceMatcher(result.editions), result.profiles, result.procedures)
    if engine != "durable":
        raise ValueError(f"unknown engine {engine!r}; expected 'durable' or 'reference'")
    # imported here so that engine="reference" works where durable_rules cannot be built (Python 3.13)
    from imr_policy.engine.compile import DurableMatcher  # noqa: PLC0415

    return Engine(result.editions, info, DurableMatcher(result.editions), result.profiles, result.procedures)


__all__ = ["Engine", "load"]


def _with_shipped_procedures(result: LoadResult) -> LoadResult:
    """Procedural packs are law, like jurisdiction profiles: a policy set without its own for a
    jurisdiction uses the shipped ones (and their hashes become part of the content hash)."""

    have = {p.jurisdiction for p in result.procedures}
    shipped = load_editions(sorted(policies_dir().glob("*-ur-procedure")))
    extra = tuple(p for p in shipped.procedures if p.jurisdiction not in have)
    return dataclasses.replace(result, procedures=result.procedures + extra) if extra else result
