"""The UR determination letter, written from a determination: every element the procedural pack lists.

8 CCR 9792.9.1 lists what a decision to modify, delay or deny must say; the list is data (`letter:` in
the procedural pack in force, imr_policy/explain/ur_letter.py reads it). This module fills each element from the
case, the determination and the policy set, and says for each one it cannot fill why not (the case
case does not state the reviewer; the engine does not write the IMR notice). Nothing is ever left silently
empty, and nothing is invented: a missing element is printed as missing, in the text and in the HTML.

Deciding is not done here: the letter only formats what `Engine.evaluate` decided.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imr_policy.evaluate import Engine
from imr_policy.explain import ur_letter
from imr_policy.explain.rationale import noun
from imr_policy.loading.case import validate_case
from imr_policy.model.values import Case, Determination, ItemDetermination


@dataclass(frozen=True, slots=True)
class Section:
    """One element of the letter: the pack's words for it, and its text or why it has none."""

    id: str
    says: str
    text: str | None  # None: missing
    source: str | None = None  # the case or determination field it comes from
    missing: str | None = None


@dataclass(frozen=True, slots=True)
class ItemLetter:
    """The part of the letter for one requested item."""

    request: str
    treatment: str
    determination: str
    procedure: str | None  # the procedural pack whose list was used
    address: str | None  # that list's source
    sections: tuple[Section, ...]
    reason: str | None = None  # why the item has no list of required elements (certified, or no pack)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.sections if s.text is None)


@dataclass(frozen=True, slots=True)
class Letter:
    case_id: str
    jurisdiction: str
    policy_set: str
    policy_hash: str
    engine_version: str
    items: tuple[ItemLetter, ...]

    @property
    def complete(self) -> bool:
        """Every item that needs the regulation's elements has a list, and every element is filled."""
        return all(not i.missing and (i.procedure is not None or i.determination == "certify") for i in self.items)

    def to_dict(self) -> dict[str, object]:
        return {
            "case_id": self.case_id,
            "jurisdiction": self.jurisdiction,
            "policy_set": {"id": self.policy_set, "content_hash": self.policy_hash},
            "engine_version": self.engine_version,
            "complete": self.complete,
            "items": [
                {
                    "request": i.request,
                    "treatment": i.treatment,
                    "determination": i.determination,
                    "procedure": i.procedure,
                    "source": i.address,
                    "missing": list(i.missing),
                    "sections": [
                        {"id": s.id, "says": s.says, "text": s.text}
                        | ({"from": s.source} if s.source else {})
                        | ({"missing": s.missing} if s.missing else {})
                        for s in i.sections
                    ],
                }
                | ({"reason": i.reason} if i.reason else {})
                for i in self.items
            ],
        }


_DECISION_WORDS = {
    "certify": "Certified",
    "modify": "Modified",
    "non_certify": "Not certified",
    "pend": "Not decided (pended)",
}


def write(engine: Engine, case: Case | Mapping[str, Any], determination: Determination | None = None) -> Letter:
    """The letter for every item of the case's determination (evaluated here when not given); a certified
    item needs none of the elements. Raises CaseError for an invalid case, as `Engine.evaluate` does."""
    if not isinstance(case, Case):
        case = validate_case(case)
    if determination is None:
        determination = engine.evaluate(case)
    checks = {c.request: c for c in ur_letter.check(case, determination, engine.procedures)}
    items = []
    for index, item in enumerate(determination.items):
        treatment = _treatment(case, index)
        check = checks.get(item.request)
        if check is None:  # certified: the regulation's list is for decisions to modify, delay or deny
            items.append(ItemLetter(item.request, treatment, item.determination, None, None, (), "certified in full"))
            continue
        sections = tuple(_section(e, case, index, item, engine) for e in check.elements)
        items.append(
            ItemLetter(
                item.request, treatment, item.determination, check.procedure, check.address, sections, check.reason
            )
        )
    return Letter(
        case.case_id,
        case.jurisdiction,
        determination.policy_set.id,
        determination.policy_set.content_hash,
        determination.engine_version,
        tuple(items),
    )


def _treatment(case: Case, index: int) -> str:
    request = case.requests[index]
    details = [d for d in (request.modality, request.frequency, request.body_region) if d]
    text = noun(request.service, request.quantity) + (f" ({', '.join(details)})" if details else "")
    return f"{text}, date of service {request.date_of_service.isoformat()}"


def _section(e: ur_letter.Element, case: Case, index: int, item: ItemDetermination, engine: Engine) -> Section:
    if not e.present:
        return Section(e.id, e.says, None, missing=e.missing)
    return Section(e.id, e.says, _text(e.id, case, index, item, engine), e.source)


def _text(eid: str, case: Case, index: int, item: ItemDetermination, engine: Engine) -> str:
    """The element's text; called only for an element ur_letter found present."""
    request = case.requests[index]
    ur = case.ur_for(request.id)
    if eid == "decision_date":
        assert ur is not None
        moment = ur.decided_at or ur.decision_date
        assert moment is not None  # ur_letter found it present
        return moment.isoformat()
    if eid == "rfa_date":
        if request.request_date is not None:
            return request.request_date.isoformat()
        assert ur is not None and ur.rfa is not None
        rfa = ur.rfa
        day = rfa.received_at or rfa.received_on or rfa.mailed_on
        how = "mailed" if rfa.mailed_on and not (rfa.received_at or rfa.received_on) else "received"
        return f"{how} {day.isoformat() if day else ''} ({rfa.channel})"
    if eid == "treatment_requested":
        return _treatment(case, index)
    if eid in ("reviewer_name", "reviewer_specialty", "reviewer_phone"):
        assert ur is not None and ur.reviewer is not None  # ur_letter found it present
        said = getattr(ur.reviewer, eid.removeprefix("reviewer_"))
        assert said is not None
        return str(said)
    if eid == "decision":
        words = _DECISION_WORDS[item.determination]
        if item.determination == "modify":
            return f"{words}: {item.approved_quantity} of {item.requested_quantity} certified"
        return words
    if eid == "reasons":
        return item.rationale
    if eid == "criteria":
        lines = []
        for b in item.basis:
            if b.role != "decisive":
                continue
            pages = f", pages {b.pages}" if b.pages else ""
            lines.append(f"{b.guideline_title} ({b.edition}), {b.section}{pages} [{b.provenance}]; source: {b.source}")
        return "\n".join(lines)
    if eid == "clinical_reasons":
        # the facts of the request, then the reason each decisive rule gives (the rule pack's words)
        editions = {e.key: e for e in engine.editions}
        facts = item.rationale.split("\n\n", 1)[0]
        reasons = []
        for b in item.basis:
            edition = editions.get(f"{b.guideline}@{b.edition}")
            if b.role == "decisive" and edition is not None:
                reasons.append(f"{edition.family}: {edition.rule(b.rule).outcome.reason}")
        return "\n".join([facts, *reasons])
    raise AssertionError(f"no text for letter element `{eid}`")  # pragma: no cover - ur_letter marks it missing


# ------------------------------------------------------------------------------------------------ rendering


def render_text(letter: Letter) -> str:
    out = [
        "UTILIZATION REVIEW DETERMINATION",
        f"Case: {letter.case_id} ({letter.jurisdiction})",
        f"Policy set: {letter.policy_set} ({letter.policy_hash}); imr-policy {letter.engine_version}",
        "",
    ]
    for item in letter.items:
        out.append(f"== Request {item.request}: {item.treatment}")
        if item.reason:
            out.append(f"   ({item.reason})")
        for s in item.sections:
            out.append(f"-- {s.says}")
            if s.text is None:
                out.append(f"   MISSING: {s.missing}")
            else:
                out.extend(f"   {line}" if line else "" for line in s.text.splitlines())
        out.append("")
    missing = [f"{i.request}: {', '.join(i.missing)}" for i in letter.items if i.missing]
    out.append(
        "Every required element is present." if letter.complete else "Required elements missing: " + "; ".join(missing)
    )
    return "\n".join(out) + "\n"


_CSS = """
body { font: 11pt/1.45 Georgia, "Times New Roman", serif; max-width: 46em; margin: 2em auto; color: #111; }
h1 { font-size: 15pt; letter-spacing: .04em; }
h2 { font-size: 12.5pt; border-top: 1px solid #999; padding-top: .6em; }
dt { font-weight: bold; margin-top: .8em; }
dd { margin-left: 1.2em; white-space: pre-wrap; }
.missing { color: #8a1c1c; font-style: italic; }
.meta { color: #444; font-size: 9.5pt; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-before: auto; break-after: avoid; }
  dt { break-after: avoid; }
  .missing { color: #000; }
}
"""


def render_html(letter: Letter) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>UR determination, case {e(letter.case_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Utilization review determination</h1>",
        f'<p class="meta" id="letter-meta">Case {e(letter.case_id)} ({e(letter.jurisdiction)}); policy set '
        f"{e(letter.policy_set)} ({e(letter.policy_hash)}); imr-policy {e(letter.engine_version)}</p>",
    ]
    for item in letter.items:
        parts.append(f'<h2 id="request-{e(item.request)}">Request {e(item.request)}: {e(item.treatment)}</h2>')
        if item.reason:
            parts.append(f"<p>{e(item.reason)}</p>")
        parts.append("<dl>")
        for s in item.sections:
            parts.append(f'<dt data-element="{e(s.id)}">{e(s.says)}</dt>')
            if s.text is None:
                parts.append(f'<dd class="missing" data-missing="{e(s.id)}">Missing: {e(s.missing or "")}</dd>')
            else:
                parts.append(f"<dd>{e(s.text)}</dd>")
        parts.append("</dl>")
    status = "complete" if letter.complete else "incomplete"
    summary = (
        "Every required element is present."
        if letter.complete
        else "Required elements missing: "
        + "; ".join(f"{i.request}: {', '.join(i.missing)}" for i in letter.items if i.missing)
    )
    parts.append(f'<p id="letter-status" data-status="{status}">{e(summary)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def check_dict(letter: Letter) -> dict[str, object]:
    """What `--check` reports, as JSON: whether the letter is complete, and each required element it lacks."""
    return {
        "case_id": letter.case_id,
        "complete": letter.complete,
        "missing": [
            {"request": i.request, "element": s.id, "says": s.says, "why": s.missing}
            for i in letter.items
            for s in i.sections
            if s.text is None
        ],
    }


def render_check(letter: Letter) -> str:
    """What `--check` reports, as text: one line per missing element, then whether the letter is complete."""
    lines = [
        f"{i.request}: missing {s.id} ({s.says}): {s.missing}"
        for i in letter.items
        for s in i.sections
        if s.text is None
    ]
    lines.append("letter complete" if letter.complete else f"letter incomplete: {len(lines)} elements missing")
    return "\n".join(lines) + "\n"


__all__ = ["ItemLetter", "Letter", "Section", "check_dict", "render_check", "render_html", "render_text", "write"]
