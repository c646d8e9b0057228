"""The combining rules: what the editions consulted for one request decide together.

This is the one place where a determination is made from per-edition results; `explain` only puts
what is decided here into words. The rules, in order (docs/architecture.md states them for users):

1. Within an edition, the first rule that holds decides (evaluate.Engine._edition).
2. The editions of the jurisdiction's first deciding tier that address the service decide together:
   any of them pending pends the request; otherwise the smallest approved quantity wins.
3. Statutes cap whatever the guidelines approve (never approve anything themselves): a pending statute
   pends the request; a lower statutory number lowers the approved quantity.
4. Lower tiers consulted as a fallback are supporting evidence only and never change the number.
5. When nothing decides (a required tier is missing, or no edition addresses the service), the request
   pends.
6. The IMR outcome compares the result with the UR decision under dispute: upheld when the request as
   a whole is not medically necessary, overturned when it is; no outcome when UR approved or when the
   request pends.
7. A request pending only for facts the records do not state is decided under every value those facts
   can take (evaluate.Engine._branch): one outcome for all of them decides; otherwise it pends and says
   what each value would lead to. When every decided reading gives the same IMR outcome, that outcome
   is given although the determination itself waits.
8. A decision rests on the weakest grade of the numbers its deciding editions used (V, V-seed, V-2nd,
   UNVERIFIED, strongest first). With a provenance floor, a decision that rests on a weaker grade pends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from imr_policy.model.values import (
    DecisionKind,
    EditionResult,
    ItemDetermination,
    Provenance,
    UtilizationReview,
    _quick_init,
    evolve,
)

Role = Literal["decisive", "supporting"]
ImrOutcome = Literal["upheld", "overturned"]

# strongest first: a decision rests on its weakest number
PROVENANCE_ORDER: tuple[Provenance, ...] = ("V", "V-seed", "V-2nd", "UNVERIFIED")


def kind_of(approved: int, quantity: int) -> Literal["certify", "modify", "non_certify"]:
    if approved >= quantity:
        return "certify"
    return "modify" if approved > 0 else "non_certify"


_RANK = {grade: i for i, grade in enumerate(PROVENANCE_ORDER)}


def weakest(*grades: Provenance) -> Provenance:
    return max(grades, key=_RANK.__getitem__)


def result_provenance(res: EditionResult) -> Provenance:
    """The weakest grade among the numbers an edition's result used: its rule, its exception, its limits;
    where the open request date left several editions to agree, the weakest of theirs."""
    if res.by_request_date:
        return weakest(*(result_provenance(evolve(r, by_request_date=())) for r in res.by_request_date))
    assert res.rule is not None
    e = res.edition
    provenance = res.rule.provenance or e.citation(res.rule.citation).provenance
    if res.exception is not None:
        provenance = weakest(provenance, res.exception.provenance or e.citation(res.exception.citation).provenance)
    for limit_id in (res.rule.outcome.up_to_total, res.rule.outcome.up_to_per_request, res.rule.outcome.ceiling):
        if limit_id:
            provenance = weakest(provenance, e.limit(limit_id).provenance)
    if res.condition is not None and res.condition.phrase_kind == "region" and e.unnamed_condition is not None:
        # the rows were read for the body region, on the pack's judgment that they are the ones that apply
        provenance = weakest(provenance, e.unnamed_condition.provenance)
    if res.procedure_read is not None and e.unnamed_procedure is not None:
        # the surgery was read as one of the row's post-surgical entries, on the pack's judgment that they are
        # the ones it can have been
        provenance = weakest(provenance, e.unnamed_procedure.provenance)
    if res.counted_with or res.counted_requests:  # other services' visits counted with the request's
        service = res.counted_with[0][0] if res.counted_with else res.counted_requests[0][1]
        group = next(g for g in e.counted_together if service in g.services)
        provenance = weakest(provenance, e.citation(group.citation).provenance)
    for alt in res.alternatives:  # several rows agreed: the decision rests on each row's numbers
        if alt.status == "decided" and alt.rule is not None:
            provenance = weakest(provenance, result_provenance(evolve(alt, alternatives=())))
    return provenance


@dataclass(frozen=True, slots=True)
class CapStep:
    """A statute that lowered the number the guidelines supported."""

    result: EditionResult
    before: int
    after: int


@_quick_init
@dataclass(frozen=True, slots=True)
class Combined:
    """The decision for one request, with its reasons as data."""

    kind: DecisionKind
    approved: int
    medically_necessary: bool
    imr_outcome: ImrOutcome | None
    missing: tuple[str, ...]
    guideline_approved: int  # what the deciding tier supported, before any statute
    cap_steps: tuple[CapStep, ...]
    basis: tuple[tuple[EditionResult, Role], ...]  # in the order the basis lists them
    blocked: str | None = None  # why nothing could decide, when a needed guideline is missing
    rests_on: Provenance | None = None  # the weakest grade of the numbers a decided request rests on
    floor: Provenance | None = None  # set when the decision was pended for resting below the caller's floor


def combine(
    *,
    quantity: int,
    decisive: tuple[EditionResult, ...],
    supporting: tuple[EditionResult, ...],
    caps: tuple[EditionResult, ...],
    blocked: str | None,
    ur: UtilizationReview | None,
    readings: Readings | None = None,
    floor: Provenance | None = None,
) -> Combined:
    """Rules 2-6 of the module docstring; with `readings` (rule 7) that do not agree, the request pends
    for the facts that matter and carries the IMR outcome every reading shares."""
    missing: list[str] = []
    cap_steps: list[CapStep] = []
    kind: DecisionKind
    if blocked is not None or not decisive:
        kind, approved, guideline_approved = "pend", 0, 0
    else:
        for res in decisive:
            if res.missing:
                missing.extend(m for m in res.missing if m not in missing)
        if any(r.kind == "pend" for r in decisive):
            kind, approved = "pend", 0
        else:
            approved = min(r.approved for r in decisive)
            kind = kind_of(approved, quantity)
        guideline_approved = approved
        for res in caps:
            if res.missing:
                missing.extend(m for m in res.missing if m not in missing)
            if res.kind == "pend":
                kind, approved = "pend", 0
            elif kind != "pend" and res.approved < approved:
                cap_steps.append(CapStep(res, approved, res.approved))
                approved = res.approved
                kind = kind_of(approved, quantity)
    medically_necessary = kind == "certify"
    outcome = imr_outcome(ur, kind, medically_necessary)
    if readings is not None and not readings.decided:
        kind, approved, medically_necessary = "pend", 0, readings.medically_necessary
        missing, outcome = list(readings.missing), readings.imr_outcome
    limiting = {id(s.result) for s in cap_steps}
    basis: list[tuple[EditionResult, Role]] = [
        (res, "decisive" if id(res) in limiting else "supporting") for res in caps if res.rule
    ]
    if decisive and blocked is None:
        decided = [r for r in decisive if r.status == "decided"]
        lowest = min(r.approved for r in decided) if decided else 0
        basis.extend(
            (res, "decisive" if res.approved == lowest or kind == "pend" else "supporting")
            for res in decisive
            if res.rule is not None
        )
    basis.extend((res, "supporting") for res in supporting)
    rests_on = (
        weakest(*(result_provenance(res) for res, role in basis if role == "decisive"))
        if kind != "pend" and any(role == "decisive" for _, role in basis)
        else None
    )
    below = floor is not None and rests_on is not None and weakest(rests_on, floor) != floor
    if below:
        # rule 8: a decision that rests on a number weaker than the caller's floor is for a person
        kind, approved, medically_necessary, outcome = "pend", 0, False, None
    return Combined(
        kind=kind,
        approved=approved,
        medically_necessary=medically_necessary,
        imr_outcome=outcome,
        missing=tuple(missing),
        guideline_approved=guideline_approved,
        cap_steps=tuple(cap_steps),
        basis=tuple(basis),
        blocked=blocked,
        rests_on=rests_on,
        floor=floor if below else None,
    )


def imr_outcome(ur: UtilizationReview | None, kind: DecisionKind, medically_necessary: bool) -> ImrOutcome | None:
    """Rule 6: IMR reviews modified, delayed or denied requests, and only a decided request has an outcome."""
    if ur is None or ur.decision == "approve" or kind == "pend":
        return None
    return "overturned" if medically_necessary else "upheld"


# ---------------------------------------------------------------------- rule 7: unstated facts

# the product of the unstated facts' values: the registry's facts give at most 6, a table's rows a few, a
# count as many as the thresholds its guidelines test (each +-1); beyond this the request pends, saying so
MAX_READINGS = 256


@dataclass(frozen=True, slots=True)
class Unstated:
    """One fact the records leave open, and the values a reading may give it.

    Most are facts of the registry (imr_policy.language.facts: functional improvement, severity); one more kind
    is the row of an edition's table by condition when the diagnoses name several rows
    (`condition:<guideline id>`), and a third a count of prior visits the records give as a least number
    or not at all (`history[<i>].completed`, whose values are counts).

    `labels` put a value into a reading's words ("if mild"); `fields` are
    the case fields that would state it; `note` says why the values are what they are, where that is
    not plain (a guideline that distinguishes only some severities)."""

    name: str
    values: tuple[str, ...]
    question: str
    labels: tuple[tuple[str, str], ...]
    fields: tuple[str, ...]
    note: str = ""
    # a count of prior visits the records do not state exactly (`history[i].completed`): the entry read,
    # and whether the count has no most (then the last value stands for every larger count)
    entry: int | None = None
    unbounded: bool = False

    def label(self, value: str) -> str:
        return dict(self.labels).get(value, value)


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of the unstated facts and what the request gets under it."""

    values: tuple[tuple[str, str], ...]  # (fact, value assumed)
    item: ItemDetermination

    @property
    def key(self) -> tuple[str, int, str | None]:
        return (self.item.determination, self.item.approved_quantity, self.item.imr_outcome)


@dataclass(frozen=True, slots=True)
class Readings:
    """Every reading of the unstated facts, combined."""

    readings: tuple[Reading, ...]
    decided: bool  # every reading gives the same decided outcome
    representative: Reading | None  # the reading whose reasoning the rationale shows (None: none was tried)
    matters: tuple[str, ...]  # the facts whose value changes the outcome
    dimensions: tuple[Unstated, ...]  # the unstated facts, in the order of each reading's values
    imr_outcome: ImrOutcome | None  # the same in every reading, else None
    medically_necessary: bool  # true only when every reading certifies
    missing: tuple[str, ...]  # for a pend: the case fields that would decide it
    too_many: int = 0  # the readings there would have been, when they were too many to try (none is)

    @property
    def fields(self) -> tuple[str, ...]:
        """The case fields that would state the unstated facts, each once."""
        return tuple(dict.fromkeys(f for d in self.dimensions for f in d.fields))

    def label(self, values: tuple[tuple[str, str], ...]) -> str:
        """One reading in words: "if mild and if it is not documented"."""
        by_name = {d.name: d for d in self.dimensions}
        return " and ".join(by_name[name].label(value) for name, value in values)


def combine_readings(readings: tuple[Reading, ...], dimensions: tuple[Unstated, ...]) -> Readings:
    """Readings come in the order of the facts' values, most favourable to the request first."""
    fields = {d.name: d.fields for d in dimensions}
    keys = {r.key for r in readings}
    first_key = readings[0].key
    decided = len(keys) == 1 and first_key[0] != "pend"
    # the strongest argument for an outcome: a denial under the most favourable reading, a
    # certification under the least favourable one
    representative = readings[-1] if decided and first_key[0] == "certify" else readings[0]
    names = tuple(name for name, _ in readings[0].values)
    matters = tuple(n for i, n in enumerate(names) if _matters(readings, i))
    all_decided = all(r.item.determination != "pend" for r in readings)
    outcomes = {r.item.imr_outcome for r in readings}
    imr = next(iter(outcomes)) if all_decided and len(outcomes) == 1 else None
    missing: list[str] = []
    if not decided:
        for name in matters:
            missing.extend(f for f in fields[name] if f not in missing)
        for r in readings:
            missing.extend(f for f in r.item.missing_facts if f not in missing)
    return Readings(
        readings=readings,
        decided=decided,
        representative=representative,
        matters=matters,
        dimensions=dimensions,
        imr_outcome=imr,
        medically_necessary=all(r.item.medically_necessary for r in readings),
        missing=tuple(missing),
    )


def too_many(dimensions: tuple[Unstated, ...], count: int) -> Readings:
    """Rule 7 when the readings are more than MAX_READINGS: none is tried, and the request pends for every
    unstated fact, whatever the records as they are would give (a count read at its least, for one, is not
    a decision)."""
    return Readings(
        readings=(),
        decided=False,
        representative=None,
        matters=tuple(d.name for d in dimensions),
        dimensions=dimensions,
        imr_outcome=None,
        medically_necessary=False,
        missing=tuple(dict.fromkeys(f for d in dimensions for f in d.fields)),
        too_many=count,
    )


def _matters(readings: tuple[Reading, ...], index: int) -> bool:
    """Two readings that differ only in fact `index` lead to different outcomes."""
    groups: dict[tuple[tuple[str, str], ...], set[tuple[str, int, str | None]]] = {}
    for r in readings:
        rest = r.values[:index] + r.values[index + 1 :]
        groups.setdefault(rest, set()).add(r.key)
    return any(len(keys) > 1 for keys in groups.values())
