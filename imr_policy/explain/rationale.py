"""Evaluation results -> the words a reviewer reads: why a rule did not apply, and the rationale.

The rationale is written to be pasted into a determination letter: each guideline consulted with
its section and pages, the arithmetic against its limit, the exceptions considered, the
determination, and the IMR outcome.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from imr_policy.engine.combine import MAX_READINGS, Combined, Readings, result_provenance
from imr_policy.engine.derive import CONCURRENT
from imr_policy.engine.reference import clause_holds, operand
from imr_policy.language.facts import OPERATORS
from imr_policy.model.values import (
    AnyOf,
    BasisCondition,
    BasisEntry,
    Case,
    Clause,
    Condition,
    ConditionMatch,
    Edition,
    EditionResult,
    ItemDetermination,
    ReadingOutcome,
    Request,
    SearchStep,
    TraceEntry,
    clause_text,
    deferred,
)

if TYPE_CHECKING:
    from imr_policy.loading.sequence import Profile

_OPWORDS = {name: op.words for name, op in OPERATORS.items()}  # imr_policy.language.facts.OPERATORS


def show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(show(v) for v in value)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        return str(value)
    return f"`{value}`"


def describe_failure(cond: Condition, facts: Mapping[str, Any], edition: Edition) -> str:
    actual = facts.get(cond.fact)
    if cond.op == "present":
        return f"`{cond.fact}` is not given"
    if cond.op == "absent":
        return f"`{cond.fact}` is given ({show(actual)})"
    if actual is None:
        return f"`{cond.fact}` is not given"
    expected = show(operand(cond, edition))
    if cond.limit:
        expected += f" (`{cond.limit}`)"
    if cond.op == "eq":
        return f"`{cond.fact}` is {show(actual)}, not {expected}"
    if cond.op in ("prefix_in", "contains_any"):
        return f"`{cond.fact}` is {show(actual)}, none {_OPWORDS[cond.op].replace('one of', 'any of')} {expected}"
    return f"`{cond.fact}` is {show(actual)}, not {_OPWORDS[cond.op]} {expected}"


def why_not(conditions: Sequence[Clause], facts: Mapping[str, Any], edition: Edition) -> str:
    """The first condition that fails, in words (for `any:`, why each of its clauses fails; for `not:`,
    that its clause holds)."""
    for clause in conditions:
        if not clause_holds(clause, facts, edition):
            return _failure(clause, facts, edition)
    return "all conditions hold"  # pragma: no cover - only called when a rule did not fire


def _failure(clause: Clause, facts: Mapping[str, Any], edition: Edition) -> str:
    if isinstance(clause, Condition):
        return describe_failure(clause, facts, edition)
    if isinstance(clause, AnyOf):
        return "none of these holds: " + "; ".join(_failure(c, facts, edition) for c in clause.clauses)
    return "it holds that " + clause_text(clause.clause, _brief)


def _brief(cond: Condition) -> str:
    """`condition` is `ptsd`, `completed` is below `trial-visits`, `modality` is mentioning `maintenance`."""
    value = f"`{cond.limit}`" if cond.limit else show(cond.value) if cond.value is not None else ""
    brief = OPERATORS[cond.op].brief
    return " ".join(w for w in (f"`{cond.fact}` is", brief, value) if w)


def _pages(pages: str | None) -> str:
    if not pages:
        return ""
    return f", p. {pages}" if "-" not in pages and ";" not in pages else f", pp. {pages}"


def _family(edition: Edition) -> str:
    if edition.tier == "statute":
        return "Statute"
    return "MTUS" if edition.tier == "mtus" else edition.family


def noun(service: str, quantity: int) -> str:
    """`6 psychotherapy sessions`, `1 chiropractic visit`, `4 office visits` (a service that is a visit
    is not followed by the word again)."""
    words = service.replace("_", " ")
    plural = "s" if quantity != 1 else ""
    if words.endswith("visit"):
        return f"{quantity} {words}{plural}"
    unit = "session" if service == "psychotherapy" else "visit"
    return f"{quantity} {words} {unit}{plural}"


def _short(quote: str, limit: int = 160) -> str:
    text = " ".join(quote.split())
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."


_COUNTED = {
    "completed": "completed",
    "completed_toward_cap": "counted toward the cap",
    "completed_postsurgical": "post-surgical completed",
}


def _unit(unit: str, value: int) -> str:
    return unit[:-1] if value == 1 and unit.endswith("s") else unit


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def arithmetic(res: EditionResult, facts: Mapping[str, Any]) -> str:
    """`16 completed + 6 requested = 22, above the ODG limit of 20 visits (...)`."""
    assert res.rule is not None
    e, outcome = res.edition, res.rule.outcome
    completed, quantity = facts[outcome.counts], facts["quantity"]
    counted = _COUNTED[outcome.counts]
    concurrent = [
        (r, q)
        for r, q, post in facts.get(CONCURRENT) or ()
        if {"completed": True, "completed_postsurgical": post, "completed_toward_cap": not post}[outcome.counts]
    ]
    if concurrent:  # the case's other requests of the service, separate visits, counted as if given already
        ids = ", ".join(f"`{r}`" for r, _ in concurrent)
        counted += (
            f" (with the {sum(q for _, q in concurrent)} requested in request {ids} of this case, separate visits "
            "counted with those already given)"
        )
    if res.counted_with:  # the edition counts other services' visits with the request's
        own = facts["service"].replace("_", " ")
        parts = [(own, completed)] + [
            (
                s.replace("_", " "),
                {"completed": c, "completed_postsurgical": p, "completed_toward_cap": c - p}[outcome.counts],
            )
            for s, c, p in res.counted_with
        ]
        completed = sum(n for _, n in parts)
        each = " and ".join(f"{n} {name}" for name, n in parts)
        counted += f" ({each} visits, which the {_family(e)} counts together)"
    requested = [
        (r, s, q)
        for r, s, q, post in res.counted_requests
        if {"completed": True, "completed_postsurgical": post, "completed_toward_cap": not post}[outcome.counts]
    ]
    if requested:  # the case's requests of services the edition counts with the request's, as separate visits
        completed += sum(q for _, _, q in requested)
        each = " and ".join(f"{q} {s.replace('_', ' ')} visits requested in request `{r}`" for r, s, q in requested)
        counted += f" (with the {each} of this case, which the {_family(e)} counts together, as if given already)"
    if outcome.up_to_per_request:
        lim = e.limit(outcome.up_to_per_request)
        return (
            f"{quantity} requested; at most {lim.value} {_unit(lim.unit, lim.value)} per request under the "
            f"{_family(e)} ({lim.description}) [{lim.provenance}]"
        )
    limit_id = res.exception.raises_total if res.exception else (outcome.up_to_total or outcome.ceiling)
    if not limit_id:
        return ""
    lim = e.limit(limit_id)
    total = completed + quantity
    where = "above" if total > lim.value else "at" if total == lim.value else "within"
    owner = "statutory" if e.tier == "statute" else _family(e)
    text = (
        f"{completed} {counted} + {quantity} requested = {total}, {where} the {owner} maximum of "
        f"{lim.value} {_unit(lim.unit, lim.value)} ({lim.description}"
        + (f"; stated as {lim.stated}" if lim.range else "")
        + f") [{lim.provenance}]"
    )
    if res.kind in ("modify",) and outcome.up_to_total:
        text += f"; {lim.value} - {completed} = {res.approved} remain"
    elif res.kind == "non_certify" and outcome.up_to_total and completed >= lim.value:
        text += f"; the {completed} {counted} already reach it"
    return text


def exceptions_text(res: EditionResult) -> str:
    parts: list[str] = []
    for check in res.exceptions:
        exc = check.exception
        label = _lower_first(exc.description.rstrip(".")) or exc.id
        lim = res.edition.limit(exc.raises_total)
        if res.exception is exc:
            parts.append(
                f"The exception `{exc.id}` applies ({label}): the limit is raised to {lim.value} {lim.unit} "
                f"[{exc.provenance or lim.provenance}]"
            )
        elif check.holds and res.rule is not None and res.rule.id in exc.rules:
            parts.append(f"The exception `{exc.id}` ({label}) holds, but the request is within the limit without it")
        elif check.holds:
            parts.append(f"The exception `{exc.id}` holds, but the rule it raises did not decide")
        else:
            parts.append(f"The exception `{exc.id}` ({label}) does not apply: {check.why_not}")
    return ". ".join(parts)


def _row_verdict(res: EditionResult, quantity: int) -> str:
    """`certify 4 of 9`, `non-certify`, `pend (history[].functional_improvement)`."""
    if res.status == "not_applicable":
        return "not applicable"
    if res.status == "not_addressed":
        return "not addressed"
    if res.kind in ("certify", "modify"):
        return f"certify {res.approved} of {quantity}"
    if res.kind == "non_certify":
        return "non-certify"
    return "pend" + (f" ({', '.join(res.missing)})" if res.missing else "")


def rows_disagree(res: EditionResult) -> bool:
    """The diagnoses match several rows of the edition's table, and the rows decide differently."""
    return len({(r.status, r.kind, r.approved) for r in res.alternatives}) > 1


def condition_text(res: EditionResult, facts: Mapping[str, Any]) -> str:
    """How the diagnoses named the row(s) of the edition's table by condition, as sentences (or "")."""
    e = res.edition
    if res.alternatives:
        rows = "; ".join(
            f"{r.condition.row.title}: {_row_verdict(r, facts['quantity'])}" for r in res.alternatives if r.condition
        )
        n = len(res.alternatives)
        shared = sorted({r.condition.diagnosis for r in res.alternatives if r.condition and r.condition.general})
        named = (
            f"The words {', '.join(repr(p) for p in shared)} of the described diagnoses name several rows of the "
            f"{_family(e)} table, and no row's own words tell which. "
            if shared
            else ""
        )
        by_procedure = all(r.condition and r.condition.phrase_kind == "procedure_words" for r in res.alternatives)
        who = "The procedure's words match" if by_procedure else "The diagnoses match"
        first = res.alternatives[0].condition
        if first is not None and first.phrase_kind == "region":
            return _region_text(res, first, rows, n)
        if rows_disagree(res):
            return named + (
                f"{who} {n} rows of the {_family(e)} table by condition, which decide differently "
                f"({rows}); the diagnosis code says which row applies."
            )
        return named + (
            f"{who} {n} rows of the {_family(e)} table by condition ({rows}); every row gives the "
            f"same result, so the {_family(e)} decides."
        )
    match = res.condition
    if match is None:
        return ""
    if match.phrase_kind == "region":
        return _region_text(res, match, f"{match.row.title}: {_row_verdict(res, facts['quantity'])}", 1)
    how = (
        f"by the {match.code_system} code {match.diagnosis}"
        if match.matched_by == "code"
        else f"by the procedure '{match.description}' (the words '{match.diagnosis}'; no diagnosis names a row)"
        if match.phrase_kind == "procedure_words"
        else f"by the described diagnosis '{match.description}' (the words '{match.diagnosis}'"
        + (", which name this row among others; no row's own words match it)" if match.general else ")")
    )
    return f"Matched the {_family(e)} row '{match.row.title}' {how}."


def procedure_text(res: EditionResult, facts: Mapping[str, Any]) -> str:
    """Why the request was read with a post-surgical entry the records do not name (`unnamed_procedure:`), as a
    sentence (or "")."""
    unnamed = res.edition.unnamed_procedure
    if res.procedure_read is None or unnamed is None or res.condition is None:
        return ""
    entries = ", ".join(unnamed.procedures_for(res.condition.row.id))
    return (
        f"The records name the surgery ('{facts.get('postsurgical_procedure') or ''}') but not which of the row's "
        f"post-surgical entries ({entries}) it was; this reading takes it as {res.procedure_read}. That these "
        f"entries are the ones the surgery can have been is this policy set's judgment [{unnamed.provenance}]."
    )


def _region_text(res: EditionResult, match: ConditionMatch, rows: str, n: int) -> str:
    """The sentences for rows read because the diagnoses name no condition, only the injured part."""
    e = res.edition
    unnamed = e.unnamed_condition
    said = (
        f"The diagnoses as described ('{match.description}') name the injured part, not a condition of the "
        if match.description
        else "The records name no diagnosis, so no condition of the "
    )
    which = "the row this policy set holds" if n == 1 else f"each of the {n} rows this policy set holds"
    judgment = (
        f" That these rows are the ones that can apply is this policy set's judgment [{unnamed.provenance}]."
        if unnamed is not None
        else ""
    )
    if rows_disagree(res):
        return (
            f"{said}{_family(e)} table by condition; read under {which} for the {match.diagnosis} region, they "
            f"decide differently ({rows}); the diagnosis says which row applies.{judgment}"
        )
    return (
        f"{said}{_family(e)} table by condition; read under {which} for the {match.diagnosis} region "
        f"({rows}), every reading gives the same result, so the {_family(e)} decides.{judgment}"
    )


def request_date_text(res: EditionResult, facts: Mapping[str, Any]) -> str:
    """Why several editions of the guideline were consulted (the records leave the request date open), as a
    sentence (or "")."""
    if not res.by_request_date:
        return ""

    def made(e: Edition) -> str:
        start, end = e.request_date_bounds() or (None, None)
        if start and end:
            return f"requests made from {start.isoformat()} to {end.isoformat()}"
        if end:
            return f"requests made up to {end.isoformat()}"
        return f"requests made from {start.isoformat()}" if start else "any request"

    each = "; ".join(f"{r.edition.edition_title}: {made(r.edition)}" for r in res.by_request_date)
    head = (
        f"The records do not state the date of the request for authorization, which selects the edition of "
        f"the {_family(res.edition)} in force ({each})"
    )
    if res.status == "gap" and (res.request_date_uncovered or len(res.by_request_date) > 1):
        verdicts = "; ".join(
            f"{r.edition.edition_title}: {_row_verdict(r, facts['quantity'])}" for r in res.by_request_date
        )
        gap = (
            "; on some of the days the request can have been made on, none of them is in force"
            if res.request_date_uncovered
            else ""
        )
        return f"{head}. They do not give one answer ({verdicts}){gap}; the request date says which governs."
    return (
        f"{head}. Every one of them gives this result, so the {_family(res.edition)} decides without the "
        f"request date; the words here are those of {res.edition.edition_title}."
    )


def edition_paragraph(res: EditionResult, facts: Mapping[str, Any], *, role: str) -> str:
    dated = request_date_text(res, facts)
    text = _edition_paragraph(res, facts, role=role)
    return f"{text} {dated}" if dated else text


def _edition_paragraph(res: EditionResult, facts: Mapping[str, Any], *, role: str) -> str:
    e = res.edition
    rows = condition_text(res, facts)
    read = procedure_text(res, facts)
    if read:
        rows = f"{rows} {read}" if rows else read
    if rows_disagree(res):
        return f"{_family(e)}, {e.guideline_title}, {e.edition_title}: {rows}" + (
            f" The case does not give {', '.join(res.missing)}." if res.missing else ""
        )
    if res.status == "gap":
        return (
            f"{_family(e)}, {e.guideline_title}, {e.edition_title}: no rule decides this request"
            + (f"; the case does not give {', '.join(res.missing)}" if res.missing else "")
            + "."
            + (f" {rows}" if rows else "")
        )
    assert res.rule is not None
    citation = e.citation(res.rule.citation)
    head = f"{_family(e)}" + (" (consulted as supporting evidence)" if role == "supporting" else "")
    if role == "statute":
        head = "Statute (outranks every guideline)"
    sentence = (
        f"{head}: {e.edition_title}, {citation.section}{_pages(citation.pages)} "
        f"[{res.rule.provenance or citation.provenance}]: {res.rule.outcome.reason}."
    )
    if rows:
        sentence += f" {rows}"
    sums = arithmetic(res, facts)
    if sums:
        sentence += f" {sums[0].upper()}{sums[1:]}."
    exc = exceptions_text(res)
    if exc:
        sentence += f" {exc}."
    if role == "statute":
        verdict = {
            "certify": "allows the full request",
            "modify": f"allows {res.approved} of {facts['quantity']}",
            "non_certify": "allows none of the request",
            "pend": "cannot be applied without " + ", ".join(res.missing) if res.missing else "is not applied",
        }[res.kind]
        return sentence + f" The statute {verdict}."
    verdict = {
        "certify": "supports the full request",
        "modify": f"supports {res.approved} of {facts['quantity']}",
        "non_certify": "does not support the request",
        # a pend without missing facts is a rule that leaves the request to the reviewer (its reason says why)
        "pend": "cannot decide without " + ", ".join(res.missing) if res.missing else "does not decide the request",
    }[res.kind]
    return sentence + f" The {_family(e)} {verdict}."


def item(
    *,
    case: Case,
    request: Request,
    facts: Mapping[str, Any],
    decided: Combined,
    decisive: tuple[EditionResult, ...],
    supporting: tuple[EditionResult, ...],
    caps: tuple[EditionResult, ...],
    search: tuple[SearchStep, ...],
    trace: tuple[TraceEntry, ...],
    in_force: tuple[Edition, ...],
    profile: Profile | None,
    stated: Mapping[str, Any] | None = None,
    readings: Readings | None = None,
) -> ItemDetermination:
    """One request's combined decision (combine.combine made it) as a result; its basis and rationale are
    put into words when first read (`model.deferred`), from the same values.

    `stated`: the facts as the case gives them, when `facts` carries values assumed for facts the
    records do not state (the request line describes the records, not the assumption)."""
    words = functools.partial(
        rationale,
        case=case,
        request=request,
        facts=facts,
        decided=decided,
        decisive=decisive,
        supporting=supporting,
        caps=caps,
        search=search,
        in_force=in_force,
        profile=profile,
        stated=stated,
        readings=readings,
    )
    return ItemDetermination(
        request=request.id,
        service=request.service,
        requested_quantity=request.quantity,
        determination=decided.kind,
        approved_quantity=decided.approved,
        medically_necessary=decided.medically_necessary,
        imr_outcome=decided.imr_outcome,
        basis=deferred(functools.partial(basis, decided)),
        rationale=deferred(words),
        search=search,
        trace=trace,
        missing_facts=decided.missing,
        provenance=decided.rests_on,
        unstated_facts=readings.fields if readings else (),
        readings=tuple(
            ReadingOutcome(r.values, r.item.determination, r.item.approved_quantity, r.item.imr_outcome)
            for r in readings.readings
        )
        if readings
        else (),
    )


def basis(decided: Combined) -> tuple[BasisEntry, ...]:
    """The editions a decision rests on, each with its role, in the order combine.combine gives them."""
    return tuple(basis_entry(res, role) for res, role in decided.basis)


def rationale(
    *,
    case: Case,
    request: Request,
    facts: Mapping[str, Any],
    decided: Combined,
    decisive: tuple[EditionResult, ...],
    supporting: tuple[EditionResult, ...],
    caps: tuple[EditionResult, ...],
    search: tuple[SearchStep, ...],
    in_force: tuple[Edition, ...],
    profile: Profile | None,
    stated: Mapping[str, Any] | None = None,
    readings: Readings | None = None,
) -> str:
    """One request's rationale: the paragraphs a reviewer reads, from what was decided."""
    quantity = request.quantity
    paragraphs: list[str] = [_request_line(case, request, stated if stated is not None else facts)]
    if readings is not None and readings.decided:
        paragraphs.append(_readings_agree(readings))
    paragraphs.extend(_first_tier_notes(request.service, search, in_force, profile, bool(decisive)))
    if decided.blocked is not None:
        paragraphs.append(decided.blocked)
    elif not decisive:
        paragraphs.append(_nothing_decides(case, request, in_force, profile))
    else:
        if readings is not None and not readings.decided and any(d.entry is not None for d in readings.dimensions):
            counted = ", ".join(str(n) for n in (facts["completed"],))
            paragraphs.append(f"Read at the least count the records allow ({counted} completed):")
        paragraphs.extend(edition_paragraph(res, facts, role="decisive") for res in decisive)
        for res in supporting:
            paragraphs.append(edition_paragraph(res, facts, role="supporting"))
            if res.approved > decided.guideline_approved:
                paragraphs.append(
                    f"The {_family(res.edition)} would support {res.approved} of {quantity}; "
                    + _sentence(profile, "departing_from_first_decider")
                )
        steps = {id(s.result): s for s in decided.cap_steps}
        for res in caps:
            paragraphs.append(edition_paragraph(res, facts, role="statute"))
            step = steps.get(id(res))
            if step is not None:
                paragraphs.append(
                    f"The statute outranks the guidelines: {step.before} supported by the guidelines, "
                    f"{step.after} allowed by the statute."
                )
    if readings is not None and not readings.decided:
        paragraphs.append(_readings_differ(readings))
    if decided.floor is not None:
        paragraphs.append(
            f"The decision would rest on a number graded {decided.rests_on}, weaker than the provenance floor "
            f"({decided.floor}) set for this evaluation, so it is pended for a reviewer."
        )
    paragraphs.append(_conclusion(decided.kind, decided.approved, quantity, list(decided.missing)))
    ur_text = _imr_text(case, request, decided)
    if ur_text:
        paragraphs.append(ur_text)
    return "\n\n".join(paragraphs)


def _outcome_words(item: ItemDetermination) -> str:
    n, q = item.approved_quantity, item.requested_quantity
    return {
        "certify": f"certified, {n} of {q}",
        "modify": f"modified, {n} of {q} certified",
        "non_certify": "not certified",
        "pend": "still pended" + (f" (for {', '.join(item.missing_facts)})" if item.missing_facts else ""),
    }[item.determination]


def _unstated_text(readings: Readings) -> str:
    parts = [f"{d.question} ({', '.join(d.fields)})" + (f" ({d.note})" if d.note else "") for d in readings.dimensions]
    return "; nor ".join(parts)


_MAX_LISTED_READINGS = 8  # beyond this the readings are listed by outcome, not one by one


def _listing(readings: Readings) -> str:
    """Each reading and what it leads to. A count read alone becomes runs of neighbouring counts with one
    outcome ("if 10 to 18 or more were completed: not certified": the readings of a count are exact, so
    every count between two neighbours that agree agrees too); many readings are grouped by outcome."""
    rs = readings.readings
    dims = readings.dimensions
    if len(dims) == 1 and dims[0].entry is not None:
        runs: list[list[str]] = []  # [first count, last count, outcome]
        for r in rs:
            words, n = _outcome_words(r.item), r.values[0][1]
            if runs and runs[-1][2] == words:
                runs[-1][1] = n
            else:
                runs.append([n, n, words])
        parts = []
        for first, last, words in runs:
            if dims[0].unbounded and last == dims[0].values[-1]:  # the last reading stands for every larger count
                parts.append(f"if {first} or more were completed: {words}")
                continue
            span = first if first == last else f"{first} to {last}"
            parts.append(f"if {span} were completed: {words}")
        return "; ".join(parts)
    if len(rs) > _MAX_LISTED_READINGS:
        groups: dict[str, list[str]] = {}
        for r in rs:
            groups.setdefault(_outcome_words(r.item), []).append(readings.label(r.values))
        return "; ".join(
            f"{words} ({', '.join(labels[:3])}{f' and {len(labels) - 3} more readings' if len(labels) > 3 else ''})"
            for words, labels in groups.items()
        )
    return "; ".join(f"{readings.label(r.values)}: {_outcome_words(r.item)}" for r in rs)


def _readings_agree(readings: Readings) -> str:
    rep = readings.representative
    assert rep is not None  # a decided set of readings has tried every reading
    listed = _listing(readings)
    which = "least" if rep.item.determination == "certify" else "most"
    return (
        f"The records do not state {_unstated_text(readings)}. It cannot change the outcome ({listed}), so the "
        f"request is decided without it; the reasoning below takes the reading {which} favourable to the "
        f"request ({readings.label(rep.values)})."
    )


def _readings_differ(readings: Readings) -> str:
    if readings.too_many:
        return (
            f"The records do not state {_unstated_text(readings)}. The {readings.too_many} readings are too many "
            f"to try one by one (at most {MAX_READINGS}), so the request stays pending until the records state them."
        )
    listed = _listing(readings)
    return f"The records do not state {_unstated_text(readings)}. What each reading would lead to: {listed}."


def _first_tier_notes(
    service: str,
    search: tuple[SearchStep, ...],
    in_force: tuple[Edition, ...],
    profile: Profile | None,
    decided: bool,
) -> list[str]:
    """What the first deciding tier says it does not address, or does not govern."""
    out: list[str] = []
    first_tier = profile.first_decider.tier if profile else None
    by_key = {(e.guideline_id, e.edition_id): e for e in in_force}
    for step in search:
        if step.result != "not_addressed" or not (step.tier == first_tier or not decided):
            continue
        e = by_key[(step.guideline, step.edition)]
        if e.coverage(service) != "silent":
            if e.coverage(service) == "rules":  # a rule's cited silence for this request
                out.append(f"{_family(e)}: {e.edition_title} does not address this request: {step.note}.")
            continue
        cite = e.citation(e.silence(service).citation)
        out.append(
            f"{_family(e)}: {e.edition_title} does not address {service.replace('_', ' ')} "
            f'("{_short(cite.quote)}" [{cite.provenance}]).'
        )
    for step in search:
        if step.result == "not_applicable" and step.tier == first_tier:
            e = by_key[(step.guideline, step.edition)]
            out.append(f"{_family(e)}: {e.edition_title} does not govern this request: {step.note}.")
    return out


def _nothing_decides(case: Case, request: Request, in_force: tuple[Edition, ...], profile: Profile | None) -> str:
    day = request.date_of_service.isoformat()
    if not in_force:
        return (
            f"No guideline edition in this policy set is in force in {case.jurisdiction} on {day}; "
            "the request cannot be decided without one."
        )
    return f"No guideline edition in force on {day} addresses {request.service.replace('_', ' ')}. " + _sentence(
        profile, "no_guideline_addresses"
    )


# What a rationale says about a jurisdiction's law comes from its profile (policies/jurisdictions/);
# these neutral words stand in for a profile that does not say.
_NEUTRAL = {
    "no_guideline_addresses": "The request is not decided.",
    "departing_from_first_decider": "the guideline consulted first governs, which is for the reviewer.",
}


def _sentence(profile: Profile | None, key: str) -> str:
    if profile is not None and key in profile.sentences:
        return profile.sentences[key]
    return _NEUTRAL[key]


def _request_line(case: Case, request: Request, facts: Mapping[str, Any]) -> str:
    details = [d for d in (request.modality, request.frequency, request.body_region) if d]
    text = f"Requested: {noun(request.service, request.quantity)}"
    if details:
        text += f" ({', '.join(details)})"
    text += f", date of service {request.date_of_service.isoformat()}"
    # the visits given (not the case's other requests counted with them: the arithmetic says those)
    completed = facts["completed"] - sum(q for _, q, _ in facts.get(CONCURRENT) or ())
    fi = facts["functional_improvement"]
    if completed or fi != "none":
        fi_text = {
            "documented": "objective functional improvement documented",
            "not_documented": "objective functional improvement not documented",
            "unknown": "functional improvement not stated",
            "none": "",
        }[fi]
        text += f"; {_completed_words(case, request, completed)}" + (f", {fi_text}" if fi_text else "")
    return text + "."


def _completed_words(case: Case, request: Request, completed: int) -> str:
    """ "12 already completed", or as the records give a count that is not exact ("at least 26", "14 to 18",
    "a number not stated")."""
    entries = [h for h in case.history if h.service == request.service]
    if all(h.count == "exact" for h in entries):
        return f"{completed} already completed"
    most = [h.completed_at_most if h.count != "exact" else h.completed for h in entries]
    if any(m is None for m in most):
        return f"at least {completed} already completed" if completed else "a number not stated already completed"
    return f"{completed} to {sum(m for m in most if m is not None)} already completed"


def _conclusion(kind: str, approved: int, quantity: int, missing: list[str]) -> str:
    if kind == "certify":
        return f"Determination: certified, {approved} of {quantity}. The request is medically necessary."
    if kind == "modify":
        return (
            f"Determination: modified, {approved} of {quantity} certified. The request as a whole is not "
            "medically necessary."
        )
    if kind == "non_certify":
        return f"Determination: not certified, 0 of {quantity}. The request is not medically necessary."
    if missing:
        return f"Determination: pended until the case states: {', '.join(missing)}."
    return "Determination: pended; the request is not decided."


def _imr_text(case: Case, request: Request, decided: Combined) -> str:
    ur = case.ur_for(request.id)
    if ur is None:
        return ""
    did = {
        "approve": "approved the request",
        "modify": f"modified the request to {ur.approved_quantity}",
        "deny": "denied the request",
        "delay": "delayed the request",
    }[ur.decision]
    if ur.decision == "approve":
        return (
            f"Utilization review {did}; IMR reviews only modified, delayed or denied requests "
            "(Labor Code 4610.5), so there is no IMR outcome."
        )
    if decided.imr_outcome is None:
        waits = "the missing facts" if decided.missing else "a reviewer's determination"
        return f"Utilization review {did}; the IMR outcome waits for {waits}."
    if decided.kind == "pend":
        return (
            f"Utilization review {did}; every reading leads to the same IMR outcome, so the UR decision is "
            f"{decided.imr_outcome} although the determination waits for the missing facts."
        )
    return f"Utilization review {did}; the UR decision is {decided.imr_outcome}."


def basis_entry(res: EditionResult, role: Literal["decisive", "supporting"]) -> BasisEntry:
    assert res.rule is not None
    e = res.edition
    citation = e.citation(res.rule.citation)
    provenance = result_provenance(res)
    return BasisEntry(
        guideline=e.guideline_id,
        guideline_title=e.guideline_title,
        edition=e.edition_id,
        rule=res.rule.id,
        section=citation.section,
        pages=citation.pages,
        tier=e.tier,
        provenance=provenance,
        role=role,
        source=citation.source,
        exception=res.exception.id if res.exception else None,
        condition=BasisCondition(
            res.condition.row.id,
            res.condition.row.title,
            res.condition.matched_by,
            res.condition.diagnosis,
            res.procedure_read,
        )
        if res.condition is not None
        else None,
    )
