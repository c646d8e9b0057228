"""Text, JSON and YAML renderings of determinations and diagnostics."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable
from typing import Any

import yaml

from imr_policy.explain import rationale, ur
from imr_policy.loading.limits import TooLarge, for_prefix, read_limited
from imr_policy.model.diagnostics import Diagnostic, Severity
from imr_policy.model.values import Determination, ItemDetermination

WIDTH = 100


def count(n: int, word: str) -> str:
    """`1 worker`, `4 workers`, `0 workers`."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=WIDTH)


def _wrap(text: str, indent: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        lines.extend(textwrap.wrap(paragraph, WIDTH, initial_indent=indent, subsequent_indent=indent))
        lines.append("")
    return lines[:-1]


def _title(item: ItemDetermination) -> str:
    return f"{rationale.noun(item.service, item.requested_quantity)} (request `{item.request}`)"


def determination_text(det: Determination) -> str:
    """Reads like the "IMR ISSUES, DECISIONS AND RATIONALES" section of a determination letter."""
    out = [
        "IMR ISSUES, DECISIONS AND RATIONALES",
        "",
        f"Case: {det.case_id}",
        f"Policy set: {det.policy_set.id} ({det.policy_set.content_hash}); imr-policy {det.engine_version}",
        "",
    ]
    for n, item in enumerate(det.items, 1):
        headline = f"{n}. {_title(item)}"
        if item.imr_outcome:
            headline += f": {item.imr_outcome.capitalize()}"
        out.append(headline)
        decision = {
            "certify": f"certify, {item.approved_quantity} of {item.requested_quantity}",
            "modify": f"modify, {item.approved_quantity} of {item.requested_quantity} certified",
            "non_certify": f"non-certify, 0 of {item.requested_quantity}",
            "pend": "pend, not decided",
        }[item.determination]
        if item.determination == "pend":
            # a pend decides nothing, so it says nothing about medical necessity; what it waits for, if
            # facts, is listed under "Missing facts" below and the reason in the rationale
            waits = "; waiting for facts the records do not state" if item.missing_facts else ""
            out.append(f"   Determination: {decision}{waits}")
        else:
            necessary = "medically necessary" if item.medically_necessary else "not medically necessary"
            out.append(f"   Determination: {decision}; {necessary}")
        if item.basis:
            out.append("   Guideline basis:")
            for b in item.basis:
                tier = "MTUS" if b.tier == "mtus" else "Non-MTUS"
                pages = f", Page(s): {b.pages}" if b.pages else ""
                role = "" if b.role == "decisive" else " (supporting)"
                exc = f", exception `{b.exception}`" if b.exception else ""
                out.extend(
                    textwrap.wrap(
                        f"- Decision based on {tier}: {b.guideline_title}, edition {b.edition}, {b.section}"
                        f"{pages} [{b.provenance}]{role}; rule `{b.rule}`{exc}",
                        WIDTH,
                        initial_indent="     ",
                        subsequent_indent="       ",
                    )
                )
        if item.missing_facts:
            out.append("   Missing facts: " + ", ".join(item.missing_facts))
        out.append("   Decision rationale:")
        out.extend(_wrap(item.rationale, "     "))
        if item.ur_timeliness is not None:
            out.append(f"   UR timeliness: {item.ur_timeliness.status.replace('_', ' ')}")
            out.extend(_wrap(ur.sentence(item.ur_timeliness), "     "))
        out.append("")
    return "\n".join(out)


def diagnostics_text(diagnostics: Iterable[Diagnostic], *, frames: bool = True) -> str:
    """Each diagnostic with, for a rule file, a code frame (the line with a caret under the column).
    Cases and policy tests get none: their lines may hold what a clinician wrote."""
    sources = _Sources()
    return "\n".join(d.render(sources.line(d) if frames else None) for d in diagnostics)


_FRAMED = ("policy.", "lint.")
_PACK_KEY = re.compile(r'^(?:format|guideline|rules|citations)\s*:|"(?:guideline|rules|citations)"\s*:', re.MULTILINE)
_CASE_KEY = re.compile(
    r'^(?:case_id|requests|date_of_injury|utilization_review)\s*:|"(?:case_id|requests|date_of_injury)"\s*:',
    re.MULTILINE,
)


def _rule_pack(text: str) -> bool:
    """Whether a file reads as a rule pack, whose lines may be quoted. A case given to `validate` by
    mistake (or anything that is not recognisably a rule pack) may hold what a clinician wrote, and gets
    no code frame."""
    return _PACK_KEY.search(text) is not None and _CASE_KEY.search(text) is None


class _Sources:
    """The lines of the rule files diagnostics point into, each file read once and within the rule-file
    size limit; a file that cannot be read again simply gets no frame."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str] | None] = {}

    def line(self, d: Diagnostic) -> str | None:
        if d.file is None or d.line is None or not d.code.startswith(_FRAMED):
            return None
        if d.file not in self._lines:
            try:
                text = read_limited(d.file, for_prefix("policy")).decode("utf-8")
                self._lines[d.file] = text.splitlines() if _rule_pack(text) else None
            except (OSError, UnicodeDecodeError, TooLarge):
                self._lines[d.file] = None
        lines = self._lines[d.file]
        if lines is None or not 1 <= d.line <= len(lines):
            return None
        return lines[d.line - 1]


def summary(diagnostics: Iterable[Diagnostic], files: int) -> str:
    items = list(diagnostics)
    errors = sum(1 for d in items if d.severity is Severity.ERROR)
    warnings = len(items) - errors
    word = "file" if files == 1 else "files"
    return (
        f"{files} {word} checked: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
