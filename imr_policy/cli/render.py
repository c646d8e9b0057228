"""Text, JSON and YAML renderings of determinations and diagnostics."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from typing import Any

import yaml

from imr_policy import explain_ur
from imr_policy.diagnostics import Diagnostic, Severity
from imr_policy.model import Determination, ItemDetermination

WIDTH = 100


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
    unit = "session" if item.service == "psychotherapy" else "visit"
    plural = "s" if item.requested_quantity != 1 else ""
    return f"{item.requested_quantity} {item.service.replace('_', ' ')} {unit}{plural} (request `{item.request}`)"


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
            "pend": "pend (missing facts)",
        }[item.determination]
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
            out.extend(_wrap(explain_ur.sentence(item.ur_timeliness), "     "))
        out.append("")
    return "\n".join(out)


def diagnostics_text(diagnostics: Iterable[Diagnostic]) -> str:
    return "\n".join(d.render() for d in diagnostics)


def summary(diagnostics: Iterable[Diagnostic], files: int) -> str:
    items = list(diagnostics)
    errors = sum(1 for d in items if d.severity is Severity.ERROR)
    warnings = len(items) - errors
    word = "file" if files == 1 else "files"
    return (
        f"{files} {word} checked: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
