"""Which required elements of a UR decision letter (8 CCR 9792.9.1) a letter's facts hold, and which they lack.

The list of elements is data (`letter:` in the procedural pack in force). A letter's facts are the case
and the determination; for each element this module says which field holds it, or why none does (the
case does not state the reviewer; the engine does not write the IMR notice or enclose the form). An
element is never filled by a guess: what the case does not state is reported missing. It checks facts,
not a rendered text: `imr-policy evaluate` prints the basis and the rationale, but not the UR decision's
date, which the case may hold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from imr_policy.engine.timeliness import select
from imr_policy.loading.procedure import Procedure
from imr_policy.model.values import Case, Determination, ItemDetermination

NOT_IN_CONTRACT = "the case does not state it (utilization_review[].reviewer), and the engine never invents one"
# the letter elements a UR entry's `reviewer` holds, and its field for each
_REVIEWER = {"reviewer_name": "name", "reviewer_specialty": "specialty", "reviewer_phone": "phone"}
NOT_WRITTEN = "the engine's letter does not include it: the claims administrator's notice must"


@dataclass(frozen=True, slots=True)
class Element:
    id: str
    says: str  # the pack's words for the element
    present: bool
    source: str | None = None  # where the letter takes it from (a case field or a determination field)
    missing: str | None = None  # why it is missing


@dataclass(frozen=True, slots=True)
class LetterCheck:
    request: str
    procedure: str | None  # the pack whose list was used; None when none covers the request
    address: str | None  # the source of the list
    elements: tuple[Element, ...]
    reason: str | None = None  # no pack: why there is no list

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.elements if not e.present)

    @property
    def complete(self) -> bool:
        return self.procedure is not None and not self.missing

    def to_dict(self) -> dict[str, object]:
        return {
            "request": self.request,
            "procedure": self.procedure,
            "source": self.address,
            "complete": self.complete,
            "elements": [
                {"id": e.id, "says": e.says, "present": e.present}
                | ({"from": e.source} if e.source else {})
                | ({"missing": e.missing} if e.missing else {})
                for e in self.elements
            ],
            "missing": list(self.missing),
            **({"reason": self.reason} if self.reason else {}),
        }


def _day(case: Case, index: int) -> dt.date:
    """The day that selects the pack: the RFA's receipt, else the request date, the UR decision date,
    the date of service."""
    request = case.requests[index]
    ur = case.ur_for(request.id)
    if ur is not None and ur.rfa is not None:
        rfa = ur.rfa
        stated = rfa.mailed_on or rfa.received_on or (rfa.received_at.date() if rfa.received_at else None)
        if stated is not None:
            return stated
    if request.request_date is not None:
        return request.request_date
    if ur is not None and ur.decision_date is not None:
        return ur.decision_date
    return request.date_of_service


def _element(eid: str, says: str, case: Case, index: int, item: ItemDetermination) -> Element:
    request = case.requests[index]
    ur = case.ur_for(request.id)
    base = f"utilization_review[{case.utilization_review.index(ur)}]" if ur is not None else None
    if eid == "decision_date":
        if ur is not None and (ur.decision_date is not None or ur.decided_at is not None):
            return Element(eid, says, True, f"{base}.decision_date")
        return Element(eid, says, False, missing="the case does not state the date of the UR decision")
    if eid == "rfa_date":
        if request.request_date is not None:
            return Element(eid, says, True, f"requests[{index}].request_date")
        if ur is not None and ur.rfa is not None:
            return Element(eid, says, True, f"{base}.rfa_received")
        return Element(eid, says, False, missing="the case states neither the request_date nor rfa_received")
    if eid == "treatment_requested":
        return Element(eid, says, True, f"requests[{index}] (service and quantity)")
    if eid == "decision":
        if item.determination == "pend":
            return Element(
                eid, says, False, missing="the determination pends: nothing was approved, modified or denied"
            )
        return Element(eid, says, True, "determination and approved_quantity")
    if eid == "reasons":
        ok = bool(item.rationale.strip()) and item.determination != "pend"
        return Element(eid, says, ok, "rationale" if ok else None, None if ok else "the determination pends")
    if eid == "criteria":
        decisive = [b for b in item.basis if b.role == "decisive"]
        if decisive and all(b.section for b in decisive):
            return Element(eid, says, True, "basis (guideline, edition, section and pages of each decisive rule)")
        return Element(eid, says, False, missing="no decisive guideline rule with its section")
    if eid == "clinical_reasons":
        ok = any(b.role == "decisive" for b in item.basis) and item.determination != "pend"
        return Element(
            eid,
            says,
            ok,
            "rationale (the facts the decisive rule rests on)" if ok else None,
            None if ok else "no decided medical-necessity rule to give the clinical reasons of",
        )
    if eid in _REVIEWER:
        said = getattr(ur.reviewer, _REVIEWER[eid]) if ur is not None and ur.reviewer is not None else None
        if said is not None:
            return Element(eid, says, True, f"{base}.reviewer.{_REVIEWER[eid]}")
        return Element(eid, says, False, missing=NOT_IN_CONTRACT)
    return Element(eid, says, False, missing=NOT_WRITTEN)  # imr_rights, imr_form, imr_deadline


def check(case: Case, determination: Determination, procedures: tuple[Procedure, ...]) -> tuple[LetterCheck, ...]:
    """One LetterCheck per item the letter would modify, delay or deny (an approval needs no such letter)."""
    out = []
    for index, item in enumerate(determination.items):
        if item.determination == "certify":
            continue
        procedure = select(procedures, case.jurisdiction, _day(case, index))
        if procedure is None or not procedure.letter:
            out.append(
                LetterCheck(
                    item.request,
                    None,
                    None,
                    (),
                    f"no UR procedural pack with a letter list covers request `{item.request}`",
                )
            )
            continue
        address = procedure.source(procedure.letter_source).address if procedure.letter_source else None
        elements = tuple(_element(eid, says, case, index, item) for eid, says in procedure.letter)
        out.append(LetterCheck(item.request, procedure.id, address, elements))
    return tuple(out)
